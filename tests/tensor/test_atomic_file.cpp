#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/atomic_file.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
namespace fs = std::filesystem;

static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

class AtomicFile : public ::testing::Test {
  protected:
    fs::path dir = fs::temp_directory_path() / ("semigrad_atomic_" + std::to_string(::getpid()));
    void SetUp() override { fs::create_directories(dir); }
    void TearDown() override { fs::remove_all(dir); }
    std::size_t entries() const {
        return std::distance(fs::directory_iterator(dir), fs::directory_iterator{});
    }
};

TEST_F(AtomicFile, WritesAndReplaces) {
    const std::string path = (dir / "a.txt").string();
    write_file_atomically(path, std::string_view("first"));
    write_file_atomically(path, [](std::ostream& out) { out << "second " << 2; });
    EXPECT_EQ(slurp(path), "second 2");
    EXPECT_EQ(entries(), 1u) << "no temporary file may be left behind";
}

TEST_F(AtomicFile, FailingWriterLeavesTheOldFileIntact) {
    const std::string path = (dir / "keep.txt").string();
    write_file_atomically(path, std::string_view("precious"));
    EXPECT_THROW(write_file_atomically(path,
                                       [](std::ostream& out) {
                                           out << "half";
                                           throw IoError("writer failed");
                                       }),
                 IoError);
    EXPECT_EQ(slurp(path), "precious");
    EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFile, UnwritableFolderNamesTheFile) {
    const std::string path = (dir / "missing" / "x.bin").string();
    try {
        write_file_atomically(path, std::string_view("x"));
        FAIL();
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}
