// A main() for a fuzz target built without libFuzzer (any compiler, the ordinary test build):
// runs the target once on every file named on the command line, or found in a folder named
// there, in name order. `meson test` runs each target this way over its corpus in
// fuzz/corpus/<target>/, which holds the seeds and every input that ever found a bug, so each
// such bug stays a regression test. A finding aborts the process (fuzz_common.hpp).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg = argv[i];
        if (fs::is_directory(arg)) {
            for (const fs::directory_entry& e : fs::directory_iterator(arg))
                if (e.is_regular_file()) files.push_back(e.path());
        } else if (fs::is_regular_file(arg)) {
            files.push_back(arg);
        } else {
            std::fprintf(stderr, "error: %s is neither a file nor a folder\n", argv[i]);
            return 2;
        }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::fprintf(stderr, "error: no input files (usage: %s FILE_OR_FOLDER...)\n", argv[0]);
        return 2;
    }
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (in.bad()) {
            std::fprintf(stderr, "error: cannot read %s\n", f.c_str());
            return 2;
        }
        semigrad::fuzz::expect_valid = f.filename().string().starts_with("valid");
        std::printf("%s (%zu bytes%s)\n", f.c_str(), bytes.size(),
                    semigrad::fuzz::expect_valid ? ", must load" : "");
        std::fflush(stdout);
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("%zu inputs, no finding\n", files.size());
    return 0;
}
