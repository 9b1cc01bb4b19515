// Atomic file writes: nothing the user wrote is ever lost or half-written.
//
// The bytes go to a temporary file in the destination's folder (same file system, so the rename
// is atomic on POSIX), are flushed to disk, and the temporary is renamed over the destination.
// A crash or an error at any point leaves either the old file or the new one, never a mix; on
// error the temporary is removed and IoError names the destination.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace semigrad {

void write_file_atomically(const std::string& path, std::string_view bytes);
// Streams into the temporary file through `write`; an exception from `write` aborts the write
// and leaves the destination untouched.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace semigrad
