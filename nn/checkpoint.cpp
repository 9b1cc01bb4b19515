// Checkpoint writer and the validating reader; the file format is documented in checkpoint.hpp.
#include "nn/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <bit>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "tensor/atomic_file.hpp"
#include "tensor/error.hpp"

namespace semigrad::nn {

namespace {

constexpr char kMagic[6] = {'S', 'G', 'C', 'K', 'P', 'T'};
constexpr std::uint32_t kMaxNameBytes = 4096;
constexpr std::uint32_t kMaxRank = 8;
constexpr std::uint8_t kMetaInteger = 0, kMetaDouble = 1;

std::uint32_t crc32_of(const char* data, std::size_t n) {
    return static_cast<std::uint32_t>(
        crc32_z(crc32_z(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data), n));
}

std::string slot_tensor_name(const Optimizer& opt, std::size_t k, std::size_t i) {
    return "optimizer/" + opt.slot_names()[k] + "/" + opt.parameters()[i].name;
}

// --- writing -----------------------------------------------------------------------------------

struct Writer {
    std::string bytes;

    void u32(std::uint32_t v) {
        for (int b = 0; b < 4; ++b) bytes += static_cast<char>((v >> (8 * b)) & 0xffu);
    }
    void u64(std::uint64_t v) {
        for (int b = 0; b < 8; ++b) bytes += static_cast<char>((v >> (8 * b)) & 0xffu);
    }
    void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
    void u8(std::uint8_t v) { bytes += static_cast<char>(v); }
    void str(const std::string& s) {
        u32(static_cast<std::uint32_t>(s.size()));
        bytes += s;
    }
    void tensor(const std::string& name, const Tensor& t) {
        str(name);
        u32(static_cast<std::uint32_t>(t.ndim()));
        for (std::size_t d : t.shape()) u64(d);
        for (std::size_t i = 0; i < t.size(); ++i) u32(std::bit_cast<std::uint32_t>(t[i]));
    }
};

// --- reading -----------------------------------------------------------------------------------

struct Contents {
    std::string optimizer;
    std::int64_t iterations = 0;
    std::map<std::string, Tensor> tensors;
    std::map<std::string, Rng::State> rngs;
    Metadata metadata;
};

class Reader {
  public:
    Reader(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw FormatError("checkpoint '" + path_ + "': " + what);
    }
    void need(std::size_t n, const std::string& what) const {
        if (n > bytes_.size() - pos_)
            fail("truncated: " + std::to_string(bytes_.size()) + " bytes, ended at byte " +
                 std::to_string(pos_) + " while reading " + what);
    }
    std::uint64_t uint(int nbytes, const std::string& what) {
        need(static_cast<std::size_t>(nbytes), what);
        std::uint64_t v = 0;
        for (int b = 0; b < nbytes; ++b)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + b])) << (8 * b);
        pos_ += static_cast<std::size_t>(nbytes);
        return v;
    }
    std::uint8_t u8(const std::string& what) { return static_cast<std::uint8_t>(uint(1, what)); }
    std::uint32_t u32(const std::string& what) { return static_cast<std::uint32_t>(uint(4, what)); }
    std::uint64_t u64(const std::string& what) { return uint(8, what); }
    std::int64_t i64(const std::string& what) { return static_cast<std::int64_t>(uint(8, what)); }
    std::string str(const std::string& what) {
        const std::uint32_t n = u32(what + " length");
        if (n > kMaxNameBytes)
            fail(what + " is " + std::to_string(n) + " bytes long (limit " +
                 std::to_string(kMaxNameBytes) + "); the file is corrupt");
        need(n, what);
        std::string s = bytes_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    Tensor tensor(const std::string& name) {
        const std::uint32_t rank = u32("rank of tensor '" + name + "'");
        if (rank > kMaxRank) fail("tensor '" + name + "' has rank " + std::to_string(rank));
        Shape shape(rank);
        std::size_t size = 1, extent = 1;
        for (std::uint32_t d = 0; d < rank; ++d) {
            shape[d] = u64("shape of tensor '" + name + "'");
            // Check before multiplying so a corrupt dimension cannot overflow or allocate wildly.
            // The bound is on the product with zeros counted as 1: a zero makes the tensor empty,
            // but xtensor still multiplies every dimension into its strides (found by fuzzing).
            const std::size_t dim = std::max<std::size_t>(shape[d], 1);
            if (extent > (bytes_.size() - pos_) / 4 / dim)
                fail("tensor '" + name + "' of shape " + to_string(shape) +
                     " does not fit in the rest of the file (truncated or corrupt)");
            extent *= dim;
            size *= shape[d];
        }
        need(4 * size, "values of tensor '" + name + "'");
        Tensor t(shape);
        const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data() + pos_);
        for (std::size_t i = 0; i < size; ++i, p += 4)
            t[i] = std::bit_cast<float>(std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
                                        std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24);
        pos_ += 4 * size;
        return t;
    }
    std::size_t pos() const { return pos_; }
    std::size_t remaining() const { return bytes_.size() - pos_; }

  private:
    const std::string& bytes_;
    const std::string& path_;
    std::size_t pos_ = 0;
};

Contents parse(const std::string& bytes, const std::string& path) {
    Reader r(bytes, path);
    r.need(sizeof kMagic, "the magic \"SGCKPT\"");
    if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        r.fail("not a semigrad checkpoint (the file does not start with \"SGCKPT\")");
    r.uint(sizeof kMagic, "magic");
    const std::uint32_t version = r.u32("version");
    if (version == 1)
        r.fail("format version 1, written by an older semigrad whose metadata held integers only; "
               "this build reads version " + std::to_string(kCheckpointVersion) +
               " (resume it with the build that wrote it, or start the run again)");
    if (version != kCheckpointVersion)
        r.fail("format version " + std::to_string(version) + ", this build reads version " +
               std::to_string(kCheckpointVersion));

    Contents c;
    c.optimizer = r.str("optimizer type");
    c.iterations = r.i64("optimizer iterations");
    if (c.iterations < 0) r.fail("negative optimizer iterations " + std::to_string(c.iterations));
    const std::uint32_t n_tensors = r.u32("tensor count");
    for (std::uint32_t i = 0; i < n_tensors; ++i) {
        std::string name = r.str("tensor name");
        Tensor t = r.tensor(printable(name));
        if (!c.tensors.emplace(name, std::move(t)).second)
            r.fail("tensor '" + printable(name) + "' appears twice");
    }
    const std::uint32_t n_rngs = r.u32("generator count");
    for (std::uint32_t i = 0; i < n_rngs; ++i) {
        std::string name = r.str("generator name");
        Rng::State s{};
        s.state = r.u64("state of generator '" + printable(name) + "'");
        s.inc = r.u64("state of generator '" + printable(name) + "'");
        if (!c.rngs.emplace(name, s).second)
            r.fail("generator '" + printable(name) + "' appears twice");
    }
    const std::uint32_t n_meta = r.u32("metadata count");
    for (std::uint32_t i = 0; i < n_meta; ++i) {
        std::string key = r.str("metadata key");
        const std::string what = "metadata '" + printable(key) + "'";
        const std::uint8_t type = r.u8("type of " + what);
        MetaValue value;
        if (type == kMetaInteger)
            value = r.i64(what);
        else if (type == kMetaDouble)
            value = std::bit_cast<double>(r.u64(what));
        else
            r.fail(what + " has type " + std::to_string(type) + " (0: integer, 1: double)");
        if (!c.metadata.emplace(key, value).second) r.fail(what + " appears twice");
    }
    const std::size_t body = r.pos();
    const std::uint32_t stored = r.u32("the crc32 checksum");
    if (r.remaining() != 0)
        r.fail(std::to_string(r.remaining()) + " unexpected bytes after the checksum");
    const std::uint32_t actual = crc32_of(bytes.data(), body);
    if (stored != actual) {
        std::ostringstream msg;
        msg << "checksum mismatch (stored crc32 " << std::hex << stored << ", computed " << actual
            << "): the file is corrupt";
        r.fail(msg.str());
    }
    return c;
}

std::size_t first_non_finite(const Tensor& t) {
    for (std::size_t i = 0; i < t.size(); ++i)
        if (!std::isfinite(t[i])) return i;
    return t.size();
}

std::string describe(float x) { return std::isnan(x) ? "NaN" : x > 0 ? "+inf" : "-inf"; }

std::string kind_of(mode_t mode) {
    return S_ISDIR(mode)    ? "a folder"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "a special file";
}

// Opened without blocking and checked with fstat before reading: a FIFO or a terminal at the
// path would otherwise block the reader forever, and a device could be read without end.
std::string read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        throw IoError("cannot open checkpoint '" + path + "' for reading: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const std::string kind = kind_of(st.st_mode);
        ::close(fd);
        throw IoError("checkpoint '" + path + "' is " + kind + ", not a regular file");
    }
    std::string bytes;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            throw IoError("error while reading checkpoint '" + path + "': " + std::strerror(err));
        }
        bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return bytes;
}

}  // namespace

void save_checkpoint(const std::string& path, Sequential& model, const Optimizer& opt,
                     const Metadata& metadata) {
    if (!model.built()) throw Error("save_checkpoint: the model is not built");
    const std::vector<Parameter> params = model.parameters();
    const std::vector<NamedRng> gens = model.generators();
    auto check_finite = [&](const std::string& name, const Tensor& t) {
        if (const std::size_t bad = first_non_finite(t); bad < t.size())
            throw ValueError("save_checkpoint '" + path + "': tensor '" + name + "' holds " +
                             describe(t[bad]) + " at index " + std::to_string(bad) +
                             "; not saved, the previous checkpoint is kept");
    };
    for (const Parameter& p : params) check_finite(p.name, p.var.value());
    for (std::size_t k = 0; k < opt.slot_names().size(); ++k)
        for (std::size_t i = 0; i < opt.parameters().size(); ++i)
            check_finite(slot_tensor_name(opt, k, i), opt.slot(k, i));

    Writer w;
    w.bytes.append(kMagic, sizeof kMagic);
    w.u32(kCheckpointVersion);
    w.str(opt.type());
    w.i64(opt.iterations());
    w.u32(static_cast<std::uint32_t>(params.size() + opt.slot_names().size() * opt.parameters().size()));
    for (const Parameter& p : params) w.tensor(p.name, p.var.value());
    for (std::size_t k = 0; k < opt.slot_names().size(); ++k)
        for (std::size_t i = 0; i < opt.parameters().size(); ++i)
            w.tensor(slot_tensor_name(opt, k, i), opt.slot(k, i));
    w.u32(static_cast<std::uint32_t>(gens.size()));
    for (const NamedRng& g : gens) {
        w.str(g.name);
        w.u64(g.rng->state().state);
        w.u64(g.rng->state().inc);
    }
    w.u32(static_cast<std::uint32_t>(metadata.size()));
    for (const auto& [key, value] : metadata) {
        w.str(key);
        if (const auto* i = std::get_if<std::int64_t>(&value)) {
            w.u8(kMetaInteger);
            w.i64(*i);
        } else {
            w.u8(kMetaDouble);
            w.u64(std::bit_cast<std::uint64_t>(std::get<double>(value)));
        }
    }
    w.u32(crc32_of(w.bytes.data(), w.bytes.size()));
    write_file_atomically(path, w.bytes);
}

bool looks_like_checkpoint(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    char head[sizeof kMagic] = {};
    const bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                    ::read(fd, head, sizeof head) == ssize_t(sizeof head) &&
                    std::memcmp(head, kMagic, sizeof kMagic) == 0;
    ::close(fd);
    return ok;
}

Metadata load_checkpoint(const std::string& path, Sequential& model, Optimizer& opt) {
    if (!model.built()) throw Error("load_checkpoint: build the model before loading '" + path + "'");
    const Contents c = parse(read_file(path), path);
    auto fail = [&](const std::string& what) -> void {
        throw FormatError("checkpoint '" + path + "': " + what);
    };

    if (c.optimizer != opt.type())
        fail("saved with optimizer " + printable(c.optimizer) + ", cannot load into " + opt.type());

    // Everything the file must hold, by name, with the tensor it restores.
    std::vector<std::pair<std::string, Tensor*>> targets;
    std::map<std::string, const Node*> model_nodes;
    for (Parameter& p : model.parameters()) {
        targets.emplace_back(p.name, &p.var.value());
        model_nodes[p.name] = p.var.node().get();
    }
    for (const Parameter& p : opt.parameters()) {
        auto it = model_nodes.find(p.name);
        if (it == model_nodes.end() || it->second != p.var.node().get())
            throw ValueError("load_checkpoint: the optimizer's parameter '" + p.name +
                             "' is not a tensor of this model (create the optimizer after build())");
    }
    for (std::size_t k = 0; k < opt.slot_names().size(); ++k)
        for (std::size_t i = 0; i < opt.parameters().size(); ++i)
            targets.emplace_back(slot_tensor_name(opt, k, i), &opt.slot(k, i));

    // Validate everything before assigning anything.
    std::set<std::string> expected;
    for (const auto& [name, tensor] : targets) {
        if (!expected.insert(name).second) fail("the model has two tensors named '" + name + "'");
        auto it = c.tensors.find(name);
        if (it == c.tensors.end())
            fail("tensor '" + name + "' is missing (the file has " +
                 std::to_string(c.tensors.size()) + " tensors)");
        if (it->second.shape() != tensor->shape())
            fail("tensor '" + name + "' has shape " + to_string(it->second.shape()) +
                 " in the file but " + to_string(tensor->shape()) + " in the model");
        if (const std::size_t bad = first_non_finite(it->second); bad < it->second.size())
            fail("tensor '" + name + "' holds " + describe(it->second[bad]) + " at index " +
                 std::to_string(bad) + " (saved from a diverged run?)");
    }
    for (const auto& [name, t] : c.tensors)
        if (!expected.count(name))
            fail("tensor '" + printable(name) +
                 "' in the file has no counterpart in the model or optimizer");
    const std::vector<NamedRng> gens = model.generators();
    for (const NamedRng& g : gens)
        if (!c.rngs.count(g.name)) fail("generator '" + g.name + "' is missing");
    if (c.rngs.size() != gens.size())
        fail("the file has " + std::to_string(c.rngs.size()) + " generators, the model " +
             std::to_string(gens.size()));

    for (auto& [name, tensor] : targets) {
        const Tensor& saved = c.tensors.at(name);
        std::copy(saved.data(), saved.data() + saved.size(), tensor->data());
    }
    for (const NamedRng& g : gens) g.rng->set_state(c.rngs.at(g.name));
    opt.set_iterations(c.iterations);
    return c.metadata;
}

}  // namespace semigrad::nn
