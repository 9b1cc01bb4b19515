// What the fuzz targets share: a scratch folder for the files a target writes (the readers under
// test take paths, not bytes), and the rules every target enforces on top of "no crash".
//
// A reader given any bytes either returns a result that satisfies its documented invariants, or
// throws a semigrad::Error whose message names the file. Anything else is a finding:
// a crash or a sanitizer report (libFuzzer sees those itself), a std::exception that is not a
// semigrad::Error (std::out_of_range from map::at, std::length_error, std::bad_alloc: the user
// would read "error: map::at"), a message that does not say which file is wrong, or a broken
// invariant. fail() reports the finding and aborts, which libFuzzer records as a crash and
// saves the input that caused it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "tensor/error.hpp"

namespace semigrad::fuzz {

// Set by the replay driver (replay_main.cpp) for a seed whose name starts with "valid": such an
// input must load, so a reader that refuses everything cannot pass the replay tests.
inline bool expect_valid = false;

// A folder of this process's own, on tmpfs when there is one (a target writes a few files per
// input, thousands of times a second). Removed at exit.
inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                               : fs::temp_directory_path();
        fs::path d = base / ("semigrad-fuzz-" + std::to_string(::getpid()));
        fs::create_directories(d);
        std::atexit([] { std::error_code e; fs::remove_all(scratch_dir(), e); });
        return d;
    }();
    return dir;
}

[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
    std::fflush(stderr);
    std::error_code ec;
    std::filesystem::remove_all(scratch_dir(), ec);  // abort() skips the atexit handler
    std::abort();
}

inline void check(bool ok, const std::string& what) {
    if (!ok) fail(what);
}

inline std::string write_scratch(const std::string& name, const std::uint8_t* data, std::size_t n) {
    const std::string path = (scratch_dir() / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
    out.close();
    check(out.good(), "cannot write the scratch file " + path);
    return path;
}

// The error a reader threw for bad input must name one of the files it was given.
// Also: a seed known to be valid was not refused.
inline void check_names_a_file(const semigrad::Error& e, std::string_view a, std::string_view b = {}) {
    const std::string_view message = e.what();
    check(!expect_valid, "a valid seed was refused: " + std::string(message));
    const bool named = message.find(a) != std::string_view::npos ||
                       (!b.empty() && message.find(b) != std::string_view::npos);
    check(named, "error message names no input file: " + std::string(message));
}

}  // namespace semigrad::fuzz
