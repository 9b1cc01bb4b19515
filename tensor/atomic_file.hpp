// Atomic file and folder writes: nothing the user wrote is ever lost or half-written.
//
// A file's bytes go to a temporary file in the destination's folder (same file system, so the
// rename is atomic on POSIX), are flushed to disk, and the temporary is renamed over the
// destination. A crash or an error at any point leaves either the old file or the new one, never
// a mix; on error the temporary is removed and IoError names the destination.
//
// A set of files that belong together (a program's outputs) is written into a staged folder
// beside the destination folder and swapped in whole (StagedFolder::publish): a reader sees the
// old set or the new set, never a mix of the two.
//
// Temporaries are named "<destination>.semigrad-tmp.<pid>". A process killed mid-write (SIGKILL,
// power loss) leaves one behind; remove_stale_temporaries(destination) removes those whose
// process no longer runs, so the next run cleans up after the killed one.
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

// This process's temporary name for `path`.
std::string temporary_name(const std::string& path);

// Removes the temporaries of `path` (files or folders) left by processes that no longer run,
// and those of the form "<path>.tmp.<pid>" an earlier semigrad used; returns how many.
std::size_t remove_stale_temporaries(const std::string& path);

// fsync of a folder: makes the renames and creations inside it durable.
void sync_folder(const std::string& path);

// A folder of new files that replaces the folder `path` in one step. The constructor creates
// temporary_name(path) (and the missing parents of `path`); files are written into path() with
// write_file_atomically (each fsynced); publish() syncs the staged folder and swaps it with
// `path` by renameat2(RENAME_EXCHANGE) (or renames it into place when `path` does not exist),
// then removes the old set and syncs the parent. Regular files in the old folder that the new
// set does not hold (the user's own) are hard-linked into the new set first, so they survive;
// an old folder holding anything else (a subfolder, a device) is refused by check_replaceable.
// Destroyed without publish() (an error, a signal), it removes the staged folder: `path` is
// untouched.
class StagedFolder {
  public:
    explicit StagedFolder(std::string path);
    ~StagedFolder();
    StagedFolder(const StagedFolder&) = delete;
    StagedFolder& operator=(const StagedFolder&) = delete;

    const std::string& path() const { return staged_; }
    void publish();

    // IoError naming `what` (e.g. "--out") unless `path` can be replaced by a StagedFolder:
    // it does not exist, or it is a folder holding regular files only; and the folder that will
    // hold it (or its nearest existing ancestor) is writable.
    static void check_replaceable(const std::string& path, const std::string& what);

  private:
    std::string target_, staged_;
    bool published_ = false;
};

}  // namespace semigrad
