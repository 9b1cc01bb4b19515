#include "tensor/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tensor/error.hpp"

namespace fs = std::filesystem;

namespace semigrad {

namespace {

constexpr const char* kTmpInfix = ".semigrad-tmp.";

void fail(const std::string& path, const std::string& tmp, const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw IoError("cannot write '" + path + "': " + what + ": " + std::strerror(err));
}

// The pid in "<base><infix><pid>", or 0 when `name` is not of that form.
pid_t pid_suffix(const std::string& name, const std::string& prefix) {
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
    pid_t pid = 0;
    for (std::size_t i = prefix.size(); i < name.size(); ++i) {
        if (name[i] < '0' || name[i] > '9' || pid > 100'000'000) return 0;
        pid = pid * 10 + (name[i] - '0');
    }
    return pid;
}

// A temporary of this scheme or the earlier "<name>.tmp.<pid>" one.
bool is_temporary_name(const std::string& name) {
    if (name.find(kTmpInfix) != std::string::npos) return true;
    const std::size_t at = name.rfind(".tmp.");
    return at != std::string::npos && pid_suffix(name, name.substr(0, at + 5)) != 0;
}

bool process_runs(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// "out/", "./out", "." as one absolute spelling without a trailing slash, so that the staged
// folder lands beside the folder, never inside it.
std::string folder_path(const std::string& path) {
    fs::path p = fs::absolute(path).lexically_normal();
    if (p.filename().empty() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
    return p.string();
}

fs::path parent_of(const std::string& path) {
    const fs::path parent = fs::path(path).parent_path();
    return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

std::string temporary_name(const std::string& path) {
    return path + kTmpInfix + std::to_string(::getpid());
}

std::size_t remove_stale_temporaries(const std::string& path) {
    const fs::path folder = parent_of(path);
    const std::string base = fs::path(path).filename().string();
    std::error_code ec;
    std::size_t removed = 0;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
        const std::string name = entry.path().filename().string();
        pid_t pid = pid_suffix(name, base + kTmpInfix);
        if (pid == 0) pid = pid_suffix(name, base + ".tmp.");
        if (pid == 0 || pid == ::getpid() || process_runs(pid)) continue;
        if (fs::remove_all(entry.path(), ec) > 0 && !ec) ++removed;
    }
    return removed;
}

void sync_folder(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw IoError("cannot open folder '" + path + "': " + std::strerror(errno));
    const int rc = ::fsync(fd), err = errno;
    ::close(fd);
    if (rc != 0) throw IoError("cannot sync folder '" + path + "': " + std::strerror(err));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
    const std::string tmp = temporary_name(path);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError("cannot write '" + path + "': " + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            fail(path, tmp, "write failed", err);
        }
        done += static_cast<std::size_t>(n);
    }
    // fsync before rename: otherwise a power loss can leave the new name pointing at no data.
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        fail(path, tmp, "fsync failed", err);
    }
    if (::close(fd) != 0) fail(path, tmp, "close failed", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, tmp, "rename failed", errno);
}

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
    // Streamed straight into the temporary file: a 64 MB vecs.tsv must not be held in memory.
    const std::string tmp = temporary_name(path);
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw IoError("cannot write '" + path + "': " + std::strerror(errno));
        try {
            write(out);
            out.flush();
        } catch (...) {
            out.close();
            ::unlink(tmp.c_str());
            throw;
        }
        if (!out) fail(path, tmp, "write failed", errno != 0 ? errno : EIO);
        out.close();
        if (out.fail()) fail(path, tmp, "close failed", errno != 0 ? errno : EIO);
    }
    // fsync before rename, as above (fsync reaches the file's data through any descriptor).
    const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, tmp, "reopen failed", errno);
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        fail(path, tmp, "fsync failed", err);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, tmp, "rename failed", errno);
}

// --- a folder swapped in whole ---------------------------------------------------------------

void StagedFolder::check_replaceable(const std::string& given, const std::string& what) {
    std::error_code ec;
    const std::string path = folder_path(given);
    // Swapping out the current folder (or one holding it) would pull the ground from under the
    // program and the shell that started it.
    const std::string cwd = fs::current_path(ec).string();
    if (!ec && (cwd == path || cwd.rfind(path + "/", 0) == 0 || path == "/"))
        throw IoError(what + " " + given + ": is the current folder or holds it; the output "
                      "folder is replaced as a whole, so give a folder of its own");
    const fs::file_status st = fs::status(path, ec);
    if (fs::exists(st)) {
        if (!fs::is_directory(st)) throw IoError(what + " " + given + ": exists and is not a folder");
        for (const auto& entry : fs::directory_iterator(path, ec)) {
            if (entry.is_regular_file(ec)) continue;
            const std::string name = entry.path().filename().string();
            if (is_temporary_name(name)) continue;
            throw IoError(what + " " + given + ": holds '" + printable(name) +
                          "', which is not a regular file; the output folder is replaced as a "
                          "whole, so give one that holds files only (or a new one)");
        }
    }
    // The nearest folder that exists must let us create entries: the staged folder goes there.
    fs::path folder = parent_of(fs::absolute(path, ec).string());
    while (!fs::exists(folder, ec) && folder.has_parent_path() && folder != folder.parent_path())
        folder = folder.parent_path();
    if (!fs::is_directory(folder, ec))
        throw IoError(what + " " + given + ": " + folder.string() + " is not a folder");
    if (::access(folder.c_str(), W_OK | X_OK) != 0)
        throw IoError(what + " " + given + ": cannot write in " + folder.string() + ": " +
                      std::strerror(errno));
}

StagedFolder::StagedFolder(std::string path) : target_(folder_path(path)) {
    std::error_code ec;
    // A symbolic link to a folder: the folder is replaced where it is, the link stays.
    if (fs::is_symlink(target_, ec) && fs::is_directory(target_, ec))
        target_ = fs::canonical(target_).string();
    fs::create_directories(parent_of(fs::absolute(target_).string()));
    remove_stale_temporaries(target_);
    staged_ = temporary_name(target_);
    fs::remove_all(staged_, ec);
    if (::mkdir(staged_.c_str(), 0755) != 0)
        throw IoError("cannot create folder '" + staged_ + "': " + std::strerror(errno));
}

StagedFolder::~StagedFolder() {
    std::error_code ec;
    if (!published_) fs::remove_all(staged_, ec);
}

void StagedFolder::publish() {
    std::error_code ec;
    const std::string parent = parent_of(fs::absolute(target_).string()).string();
    // The user's own files in the old folder: hard links keep them in the new one.
    if (fs::is_directory(target_, ec))
        for (const auto& entry : fs::directory_iterator(target_, ec)) {
            const fs::path in_new = fs::path(staged_) / entry.path().filename();
            if (!entry.is_regular_file(ec) || fs::exists(in_new, ec) ||
                is_temporary_name(entry.path().filename().string()))
                continue;
            if (::link(entry.path().c_str(), in_new.c_str()) != 0)
                throw IoError("cannot keep '" + entry.path().string() + "' in the new " + target_ +
                              ": " + std::strerror(errno) + "; " + target_ + " is unchanged");
        }
    sync_folder(staged_);
    // rename() replaces a missing or empty folder; a folder with files needs the exchange.
    if (::rename(staged_.c_str(), target_.c_str()) != 0) {
        if (errno != ENOTEMPTY && errno != EEXIST)
            throw IoError("cannot replace '" + target_ + "': " + std::strerror(errno));
        if (::renameat2(AT_FDCWD, staged_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0)
            throw IoError("cannot replace '" + target_ + "' (renameat2 RENAME_EXCHANGE): " +
                          std::strerror(errno) + "; " + target_ + " is unchanged");
        fs::remove_all(staged_, ec);  // now the old set
    }
    published_ = true;
    sync_folder(parent);
}

}  // namespace semigrad
