#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

// --- a folder of files swapped in whole ------------------------------------------------------

namespace {

void put(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// A pid that no longer runs: a child that has exited and been reaped.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

std::vector<std::string> names_in(const fs::path& folder) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(folder)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

TEST_F(AtomicFile, StagedFolderCreatesAMissingFolder) {
    const std::string out = (dir / "new" / "out").string();  // parent missing too
    {
        StagedFolder staged(out);
        EXPECT_FALSE(fs::exists(out));
        write_file_atomically((fs::path(staged.path()) / "a.tsv").string(), std::string_view("A"));
        staged.publish();
    }
    EXPECT_EQ(names_in(out), std::vector<std::string>{"a.tsv"});
    EXPECT_EQ(names_in(dir / "new"), std::vector<std::string>{"out"}) << "no staged folder left";
}

TEST_F(AtomicFile, StagedFolderReplacesTheOldSetAndKeepsTheUsersFiles) {
    const fs::path out = dir / "out";
    fs::create_directories(out);
    put(out / "vecs.tsv", "old vecs");
    put(out / "metrics.json", "old metrics");  // regular files the new set lacks are kept
    put(out / "notes.txt", "the user's");
    put(out / ("vecs.tsv.tmp." + std::to_string(dead_pid())), "a killed run's leftover");
    {
        StagedFolder staged(out.string());
        write_file_atomically((fs::path(staged.path()) / "vecs.tsv").string(), std::string_view("new"));
        // Until publish() the old set is what a reader sees.
        EXPECT_EQ(slurp(out / "vecs.tsv"), "old vecs");
        staged.publish();
    }
    EXPECT_EQ(slurp(out / "vecs.tsv"), "new");
    EXPECT_EQ(slurp(out / "notes.txt"), "the user's");
    EXPECT_EQ(slurp(out / "metrics.json"), "old metrics");
    EXPECT_EQ(names_in(out), (std::vector<std::string>{"metrics.json", "notes.txt", "vecs.tsv"}));
    EXPECT_EQ(names_in(dir), std::vector<std::string>{"out"}) << "the old set is removed";
}

TEST_F(AtomicFile, StagedFolderAbandonedLeavesTheOldSetUntouched) {
    const fs::path out = dir / "out";
    fs::create_directories(out);
    put(out / "vecs.tsv", "old vecs");
    try {
        StagedFolder staged(out.string());
        write_file_atomically((fs::path(staged.path()) / "vecs.tsv").string(), std::string_view("new"));
        throw IoError("disk full while writing metrics.json");
    } catch (const IoError&) {
    }
    EXPECT_EQ(names_in(out), std::vector<std::string>{"vecs.tsv"});
    EXPECT_EQ(slurp(out / "vecs.tsv"), "old vecs");
    EXPECT_EQ(names_in(dir), std::vector<std::string>{"out"});
}

TEST_F(AtomicFile, StaleTemporariesOfDeadProcessesAreRemoved) {
    const std::string ck = (dir / "run.ckpt").string();
    const pid_t gone = dead_pid();
    put(ck, "checkpoint");
    put(ck + ".semigrad-tmp." + std::to_string(gone), "torn");
    put(ck + ".tmp." + std::to_string(gone), "torn, older naming");
    fs::create_directories(dir / ("out.semigrad-tmp." + std::to_string(gone)));
    put(ck + ".semigrad-tmp." + std::to_string(::getppid()), "a live process's: kept");
    put(ck + ".tmp.notapid", "not ours: kept");
    EXPECT_EQ(remove_stale_temporaries(ck), 2u);
    EXPECT_EQ(remove_stale_temporaries((dir / "out").string()), 1u);
    EXPECT_EQ(names_in(dir),
              (std::vector<std::string>{"run.ckpt", "run.ckpt.semigrad-tmp." + std::to_string(::getppid()),
                                        "run.ckpt.tmp.notapid"}));
}

TEST_F(AtomicFile, CheckReplaceableRefusesWhatCannotBeReplacedWhole) {
    const fs::path out = dir / "out";
    EXPECT_NO_THROW(StagedFolder::check_replaceable(out.string(), "--out"));  // missing: fine
    fs::create_directories(out / "sub");
    try {
        StagedFolder::check_replaceable(out.string(), "--out");
        ADD_FAILURE() << "a folder holding a folder was accepted";
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("--out " + out.string() + ": holds 'sub'"), std::string::npos)
            << e.what();
    }
    put(dir / "file", "x");
    EXPECT_THROW(StagedFolder::check_replaceable((dir / "file").string(), "--out"), IoError);
    // The current folder, or one holding it, would be swapped out from under the program.
    const fs::path cwd = fs::current_path();
    fs::current_path(out / "sub");
    for (const std::string& p : std::vector<std::string>{".", "./", "..", (out / "sub").string() + "/"})
        EXPECT_THROW(StagedFolder::check_replaceable(p, "--out"), IoError) << p;
    fs::current_path(cwd);
}

// "out/" names the folder out: the staged folder goes beside it, not inside it.
TEST_F(AtomicFile, StagedFolderTrailingSlashMeansTheFolder) {
    const fs::path out = dir / "out";
    fs::create_directories(out);
    put(out / "vecs.tsv", "old");
    {
        StagedFolder staged(out.string() + "/");
        EXPECT_EQ(fs::path(staged.path()).parent_path(), dir);
        write_file_atomically((fs::path(staged.path()) / "vecs.tsv").string(), std::string_view("new"));
        staged.publish();
    }
    EXPECT_EQ(slurp(out / "vecs.tsv"), "new");
    EXPECT_EQ(names_in(out), std::vector<std::string>{"vecs.tsv"});
    EXPECT_EQ(names_in(dir), std::vector<std::string>{"out"});
}
