// IDX reading: zlib's gz* functions read gzip'd and plain files alike; everything a header
// claims is checked against the bytes that really follow it.
#include "data/idx.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <filesystem>

#include "tensor/error.hpp"

namespace semigrad::data {
namespace {

// A header may claim up to 2^96 bytes; refuse anything above 4 GiB (MNIST's training images are
// 47 MB) before allocating, and read in chunks so that even an allowed but false claim costs
// only as much memory as the file really holds.
constexpr std::uint64_t kMaxDataBytes = std::uint64_t{1} << 32;
constexpr std::size_t kChunkBytes = std::size_t{1} << 20;

std::string where(const std::string& path) { return "load_idx: " + path + ": "; }

std::string dims_string(const std::vector<std::uint32_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
    return s + "]";
}

std::string hex_byte(unsigned b) {
    const char* digits = "0123456789abcdef";
    return std::string("0x") + digits[(b >> 4) & 15] + digits[b & 15];
}

// Opens `path` for reading if it is a regular file. O_NONBLOCK so that a FIFO without a writer
// cannot block the open; it is cleared once fstat has shown a regular file.
int open_regular_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw IoError(where(path) + "cannot open the file: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw IoError(where(path) + "not a regular file");
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

// A gzip file ends with ISIZE, the decompressed length mod 2^32 (RFC 1952 §2.3.1). Read before
// inflating anything, it lets a stream that would decompress to more than the header claims (a
// "gzip bomb") be refused at once instead of after gigabytes. 0 when `fd` is not gzip.
std::uint64_t gzip_isize(int fd) {
    unsigned char head[2] = {}, tail[4] = {};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size < 18) return 0;
    if (::pread(fd, head, 2, 0) != 2 || head[0] != 0x1f || head[1] != 0x8b) return 0;
    if (::pread(fd, tail, 4, st.st_size - 4) != 4) return 0;
    return std::uint64_t{tail[0]} | std::uint64_t{tail[1]} << 8 | std::uint64_t{tail[2]} << 16 |
           std::uint64_t{tail[3]} << 24;
}

// One open gzFile. gzread returns short counts at the end of the input; a stream that stops in
// the middle (Z_BUF_ERROR) or fails its CRC/inflate (-1) is an error, not an end; a failing
// read of the file itself (EIO) is reported as that, not as corrupt data.
class GzFile {
  public:
    explicit GzFile(const std::string& path) : path_(path) {
        const int fd = open_regular_file(path);
        isize_ = gzip_isize(fd);
        struct stat st {};
        if (::fstat(fd, &st) == 0) file_bytes_ = std::uint64_t(st.st_size);
        file_ = gzdopen(fd, "rb");
        if (!file_) {
            ::close(fd);
            throw IoError(where(path) + "cannot open the file");
        }
        gzbuffer(file_, 256 * 1024);
        const bool named_gz = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
        if (named_gz && gzdirect(file_)) {
            gzclose(file_);
            throw FormatError(where(path) + "is named .gz but is not gzip data");
        }
    }
    ~GzFile() { gzclose(file_); }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;

    std::size_t read(void* dst, std::size_t n) {
        errno = 0;
        const int got = gzread(file_, dst, static_cast<unsigned>(n));
        const int read_errno = errno;
        int errnum = Z_OK;
        const char* message = gzerror(file_, &errnum);
        if (errnum == Z_ERRNO)
            throw IoError(where(path_) + "read error: " + std::strerror(read_errno));
        if (got < 0 || errnum == Z_DATA_ERROR || errnum == Z_STREAM_ERROR)
            throw FormatError(where(path_) + "corrupt gzip data (zlib: " + message + ")");
        if (errnum == Z_BUF_ERROR)
            throw FormatError(where(path_) + "the gzip stream ends early (truncated .gz file)");
        return static_cast<std::size_t>(got);
    }

    // The gzip trailer's decompressed size mod 2^32; 0 for a plain file.
    std::uint64_t isize() const { return isize_; }
    // The most bytes reading can yield: a plain file's length, or for gzip its length times
    // deflate's largest ratio, 1032:1 (zlib's technical notes, "Maximum compression factor").
    std::uint64_t max_read_bytes() const { return isize_ ? file_bytes_ * 1032 : file_bytes_; }

  private:
    std::string path_;
    gzFile file_ = nullptr;
    std::uint64_t isize_ = 0, file_bytes_ = 0;
};

// Reads an unsigned-byte IDX file of the given rank; returns its sizes and data. With
// `max_items` > 0 only the first max_items items (along the first size) are read, and the rest
// of the file is not looked at.
std::vector<std::uint8_t> read_idx(const std::string& path, std::size_t rank, const char* layout,
                                   std::vector<std::uint32_t>& dims, std::size_t max_items) {
    GzFile file(path);
    std::array<std::uint8_t, 4> magic{};
    const std::size_t got_magic = file.read(magic.data(), 4);
    if (got_magic < 4)
        throw FormatError(where(path) + "truncated header: " + std::to_string(got_magic) +
                          " bytes, an IDX header starts with 4 magic bytes");
    if (magic[0] != 0 || magic[1] != 0)
        throw FormatError(where(path) + "bad magic: starts with " + hex_byte(magic[0]) + " " +
                          hex_byte(magic[1]) + ", an IDX file starts with 0x00 0x00");
    if (magic[2] != 0x08)
        throw FormatError(where(path) + "element type " + hex_byte(magic[2]) +
                          ", expected 0x08 (unsigned byte)");
    if (magic[3] != rank)
        throw FormatError(where(path) + "rank " + std::to_string(magic[3]) + ", expected " +
                          std::to_string(rank) + " " + layout);

    std::vector<std::uint8_t> raw(4 * rank);
    const std::size_t got_dims = file.read(raw.data(), raw.size());
    if (got_dims < raw.size())
        throw FormatError(where(path) + "truncated header: " + std::to_string(rank) +
                          " sizes need " + std::to_string(raw.size()) + " bytes, the file has " +
                          std::to_string(got_dims));
    dims.assign(rank, 0);
    for (std::size_t i = 0; i < rank; ++i)
        dims[i] = std::uint32_t{raw[4 * i]} << 24 | std::uint32_t{raw[4 * i + 1]} << 16 |
                  std::uint32_t{raw[4 * i + 2]} << 8 | std::uint32_t{raw[4 * i + 3]};
    std::uint64_t total = 1;
    for (std::uint32_t dim : dims) {
        if (dim == 0)
            throw FormatError(where(path) + "header sizes " + dims_string(dims) +
                              " contain a zero (an empty file)");
        // (2^32 + 1) * (2^32 - 1) < 2^64: the product cannot overflow.
        total = std::min(total * dim, kMaxDataBytes + 1);
    }
    if (total > kMaxDataBytes)
        throw FormatError(where(path) + "header sizes " + dims_string(dims) +
                          " claim more than 4 GiB of data");
    const std::uint64_t file_bytes = 4 + 4 * rank + total;
    // A single-member gzip stream's ISIZE is its whole length (mod 2^32); a file of several
    // members (legal, rare) ends with the last member's, which is smaller, so only "more" is
    // refused.
    if (file.isize() > (file_bytes & 0xffffffffu) && file_bytes < (std::uint64_t{1} << 32))
        throw FormatError(where(path) + "trailing bytes after the " + std::to_string(total) +
                          " bytes of data its header sizes " + dims_string(dims) +
                          " claim: the gzip trailer says " + std::to_string(file.isize()) +
                          " bytes decompressed, not " + std::to_string(file_bytes) +
                          " (refused before inflating)");
    const bool whole_file = max_items == 0 || max_items >= dims[0];
    if (!whole_file) total = total / dims[0] * max_items;

    // Allocated once, at the size the header claims unless the file cannot hold that much:
    // growing by doubling copies the data at every doubling (47 MB of training images: 32 MB
    // copied into a new 64 MB block while the old one is still held).
    std::vector<std::uint8_t> data;
    data.reserve(std::size_t(std::min(total, file.max_read_bytes())));
    std::size_t have = 0;
    while (have < total) {
        const std::size_t want = std::min<std::size_t>(kChunkBytes, total - have);
        data.resize(have + want);
        const std::size_t got = file.read(data.data() + have, want);
        have += got;
        if (got < want) break;
    }
    if (have < total)
        throw FormatError(where(path) + "truncated: header sizes " + dims_string(dims) + " claim " +
                          std::to_string(total) + " bytes of data, the file holds " +
                          std::to_string(have));
    if (!whole_file) return data;
    std::uint8_t extra = 0;
    if (file.read(&extra, 1) != 0)
        throw FormatError(where(path) + "trailing bytes after the " + std::to_string(total) +
                          " bytes of data its header sizes " + dims_string(dims) + " claim");
    return data;
}

}  // namespace

Dataset load_idx(const std::string& images_path, const std::string& labels_path, int num_classes,
                 std::size_t max_count) {
    if (num_classes < 1 || num_classes > 256)
        throw ValueError("load_idx: num_classes " + std::to_string(num_classes) +
                         " is outside [1, 256] (labels are unsigned bytes)");
    Dataset d;
    d.images_path = images_path;
    d.labels_path = labels_path;

    std::vector<std::uint32_t> image_dims, label_dims;
    // Labels first: they are small, and a bad label file fails before megabytes of images.
    const std::vector<std::uint8_t> labels =
        read_idx(labels_path, 1, "(labels: [count])", label_dims, max_count);
    d.images = read_idx(images_path, 3, "(images: [count, rows, cols])", image_dims, max_count);
    if (image_dims[0] != label_dims[0])
        throw FormatError("load_idx: " + images_path + " holds " + std::to_string(image_dims[0]) +
                          " images but " + labels_path + " holds " + std::to_string(label_dims[0]) +
                          " labels");
    d.file_count = image_dims[0];
    d.count = max_count > 0 ? std::min<std::size_t>(max_count, d.file_count) : d.file_count;
    d.rows = image_dims[1];
    d.cols = image_dims[2];

    d.labels.resize(d.count);
    for (std::size_t i = 0; i < d.count; ++i) {
        if (labels[i] >= num_classes)
            throw FormatError(where(labels_path) + "label " + std::to_string(labels[i]) +
                              " of item " + std::to_string(i) + " is outside [0, " +
                              std::to_string(num_classes) + ")");
        d.labels[i] = labels[i];
    }
    return d;
}

Split load_mnist_folder(const std::string& dir, std::size_t max_train) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw IoError("load_mnist_folder: " + dir +
                      " is not a folder (scripts/get-data makes "
                      "data/mnist and data/fashion-mnist)");

    // The canonical name, e.g. train-images-idx3-ubyte, and the dotted variant
    // train-images.idx3-ubyte, each gzip'd or not.
    const auto find = [&](const std::string& stem, const std::string& idx, const char* what) {
        const std::string names[] = {stem + "-" + idx + ".gz", stem + "-" + idx,
                                     stem + "." + idx + ".gz", stem + "." + idx};
        for (const std::string& name : names) {
            const fs::path p = fs::path(dir) / name;
            if (fs::is_regular_file(p, ec)) return p.string();
        }
        std::string looked;
        for (const std::string& name : names) looked += (looked.empty() ? "" : ", ") + name;
        throw IoError("load_mnist_folder: " + dir + " has no " + what + ": looked for " + looked);
    };
    Split s;
    s.train = load_idx(find("train-images", "idx3-ubyte", "training images"),
                       find("train-labels", "idx1-ubyte", "training labels"), 10, max_train);
    s.test = load_idx(find("t10k-images", "idx3-ubyte", "test images"),
                      find("t10k-labels", "idx1-ubyte", "test labels"));
    if (s.train.rows != s.test.rows || s.train.cols != s.test.cols)
        throw FormatError("load_mnist_folder: " + dir + ": training images are " +
                          std::to_string(s.train.rows) + "x" + std::to_string(s.train.cols) +
                          ", test images " + std::to_string(s.test.rows) + "x" +
                          std::to_string(s.test.cols));
    return s;
}

namespace {

// out [N,1,H,W] with H = d.rows, W = d.cols: image n of the batch is dataset image index(n),
// scaled; every entry is written (no zero fill first).
template <typename Index>
Tensor scaled_images(const Dataset& d, std::size_t N, Index index) {
    const std::size_t HW = d.rows * d.cols;
    Tensor out = Tensor::uninitialised(Shape{N, 1, d.rows, d.cols});
    float* dst = out.data();
    for (std::size_t n = 0; n < N; ++n) {
        const std::uint8_t* src = d.images.data() + index(n) * HW;
        for (std::size_t i = 0; i < HW; ++i) dst[n * HW + i] = static_cast<float>(src[i]) / 255.0f;
    }
    return out;
}

}  // namespace

Tensor images_to_tensor(const Dataset& d, std::span<const std::size_t> indices) {
    for (std::size_t n = 0; n < indices.size(); ++n)
        if (indices[n] >= d.count)
            throw ValueError("images_to_tensor: index " + std::to_string(indices[n]) +
                             " (position " + std::to_string(n) + ") is outside a dataset of " +
                             std::to_string(d.count) + " images (" + d.images_path + ")");
    return scaled_images(d, indices.size(), [&](std::size_t n) { return indices[n]; });
}

Tensor images_to_tensor(const Dataset& d, std::size_t first, std::size_t n) {
    if (first > d.count || n > d.count - first)
        throw ValueError("images_to_tensor: " + std::to_string(n) + " images from index " +
                         std::to_string(first) + " run past a dataset of " +
                         std::to_string(d.count) + " images (" + d.images_path + ")");
    return scaled_images(d, n, [&](std::size_t i) { return first + i; });
}

}  // namespace semigrad::data
