#include "tensor/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "tensor/error.hpp"

namespace semigrad {

namespace {

std::string temporary_name(const std::string& path) {
    return path + ".tmp." + std::to_string(::getpid());
}

void fail(const std::string& path, const std::string& tmp, const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw IoError("cannot write '" + path + "': " + what + ": " + std::strerror(err));
}

}  // namespace

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
    std::ostringstream buffer;
    write(buffer);
    write_file_atomically(path, buffer.view());
}

}  // namespace semigrad
