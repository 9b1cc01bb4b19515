// Writes the fuzz targets' seed inputs: a few valid files and a few that are nearly valid (one
// field or one byte off), so the fuzzer starts from inputs that reach every check.
//
//   make_seeds OUT_DIR    writes OUT_DIR/idx_raw/*, OUT_DIR/idx_gzip/*, OUT_DIR/checkpoint/*
//
// The checkpoints come from nn::save_checkpoint itself, so the seeds follow the format as it
// changes: `fuzz/make-corpus` runs this program into fuzz/corpus/, and the test suite and CI
// run it afresh too. Every number in a seed is set here (no training step, no float
// arithmetic), so the bytes are the same on every CPU.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/checkpoint_model.hpp"
#include "tensor/error.hpp"

namespace {

namespace fs = std::filesystem;
using namespace semigrad;
using Bytes = std::vector<std::uint8_t>;

fs::path out_dir;

void put(const std::string& target, const std::string& name, const Bytes& bytes) {
    const fs::path dir = out_dir / target;
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw IoError("make_seeds: cannot write " + (dir / name).string());
}

Bytes read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// --- IDX -----------------------------------------------------------------------------------------

void be32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

Bytes idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
    Bytes b = {0, 0, 0x08, 3};
    be32(b, count), be32(b, rows), be32(b, cols);
    for (std::uint32_t i = 0; i < count * rows * cols; ++i) b.push_back(static_cast<std::uint8_t>(37 * i));
    return b;
}

Bytes idx_labels(std::uint32_t count) {
    Bytes b = {0, 0, 0x08, 1};
    be32(b, count);
    for (std::uint32_t i = 0; i < count; ++i) b.push_back(static_cast<std::uint8_t>(i % 10));
    return b;
}

// The targets' input: 2-byte little-endian label-file length, the label file, the image file.
Bytes pair_input(const Bytes& labels, const Bytes& images) {
    Bytes b(2 + labels.size() + images.size());
    b[0] = static_cast<std::uint8_t>(labels.size() & 0xff);
    b[1] = static_cast<std::uint8_t>(labels.size() >> 8);
    std::copy(labels.begin(), labels.end(), b.begin() + 2);
    std::copy(images.begin(), images.end(), b.begin() + 2 + static_cast<std::ptrdiff_t>(labels.size()));
    return b;
}

Bytes gzip(const Bytes& raw) {
    z_stream z{};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw Error("make_seeds: deflateInit2 failed");
    Bytes out(deflateBound(&z, raw.size()) + 32);
    z.next_in = const_cast<Bytef*>(raw.data());
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw Error("make_seeds: deflate failed");
    out.resize(z.total_out);
    return out;
}

void idx_seeds() {
    struct Pair {
        const char* name;
        Bytes labels, images;
    };
    std::vector<Pair> pairs;
    pairs.push_back({"valid-3x2x2", idx_labels(3), idx_images(3, 2, 2)});
    pairs.push_back({"valid-1x1x1", idx_labels(1), idx_images(1, 1, 1)});
    pairs.push_back({"valid-12x3x4", idx_labels(12), idx_images(12, 3, 4)});
    {
        Pair p{"images-one-byte-short", idx_labels(3), idx_images(3, 2, 2)};
        p.images.pop_back();
        pairs.push_back(p);
    }
    {
        Pair p{"labels-trailing-byte", idx_labels(3), idx_images(3, 2, 2)};
        p.labels.push_back(0);
        pairs.push_back(p);
    }
    pairs.push_back({"count-mismatch", idx_labels(2), idx_images(3, 2, 2)});
    {
        Pair p{"label-10", idx_labels(3), idx_images(3, 2, 2)};
        p.labels.back() = 10;
        pairs.push_back(p);
    }
    {
        Pair p{"images-rank-2", idx_labels(3), idx_images(3, 2, 2)};
        p.images[3] = 2;
        pairs.push_back(p);
    }
    {
        Pair p{"images-type-float", idx_labels(3), idx_images(3, 2, 2)};
        p.images[2] = 0x0d;
        pairs.push_back(p);
    }
    {
        Pair p{"images-claim-5GiB", idx_labels(3), idx_images(3, 2, 2)};
        p.images[4] = 0x7f;  // count 0x7f000003: 2^31 * 4 bytes > 4 GiB
        pairs.push_back(p);
    }
    {
        Pair p{"images-zero-rows", idx_labels(3), idx_images(3, 2, 2)};
        p.images[11] = 0;
        pairs.push_back(p);
    }
    pairs.push_back({"images-header-only", idx_labels(3), Bytes{0, 0, 0x08, 3, 0, 0}});

    for (const Pair& p : pairs) {
        put("idx_raw", p.name, pair_input(p.labels, p.images));
        put("idx_gzip", p.name, pair_input(gzip(p.labels), gzip(p.images)));
    }
    // What only a gzip'd file can get wrong.
    const Bytes labels = gzip(idx_labels(3)), images = gzip(idx_images(3, 2, 2));
    Bytes cut = images;
    cut.resize(cut.size() - 6);  // the stream ends inside its CRC/length trailer
    put("idx_gzip", "gz-truncated-trailer", pair_input(labels, cut));
    Bytes bad_crc = images;
    bad_crc[bad_crc.size() - 8] ^= 0x01;
    put("idx_gzip", "gz-bad-crc", pair_input(labels, bad_crc));
    const Bytes raw = idx_images(3, 2, 2);
    Bytes two_members = gzip(Bytes(raw.begin(), raw.begin() + 9));  // gzip allows concatenation
    const Bytes rest = gzip(Bytes(raw.begin() + 9, raw.end()));
    two_members.insert(two_members.end(), rest.begin(), rest.end());
    put("idx_gzip", "gz-two-members", pair_input(labels, two_members));
    put("idx_gzip", "gz-not-gzip", pair_input(labels, raw));
}

// --- checkpoints --------------------------------------------------------------------------------

// Gives every parameter, slot and generator of `m` a value of its own.
void fill_state(fuzz::CheckpointModel& m) {
    float next = 0.015625f;
    const auto fill = [&](Tensor& t) {
        for (std::size_t i = 0; i < t.size(); ++i) t[i] = (next += 0.03125f) * (i % 2 ? -1.0f : 1.0f);
    };
    for (nn::Parameter& p : m.model->parameters()) fill(p.var.value());
    for (std::size_t k = 0; k < m.opt->slot_names().size(); ++k)
        for (std::size_t i = 0; i < m.opt->parameters().size(); ++i) fill(m.opt->slot(k, i));
    std::uint64_t word = 0x9e3779b97f4a7c15u;
    for (nn::NamedRng& g : m.model->generators()) g.rng->set_state({word, word | 1u}), word *= 3;
    m.opt->set_iterations(250);
}

void checkpoint_seeds() {
    const fs::path tmp = out_dir / "checkpoint.tmp";
    fuzz::CheckpointModel m = fuzz::make_checkpoint_model();
    fill_state(m);
    nn::Metadata metadata;
    metadata["epoch"] = std::int64_t{2};
    metadata["seed"] = std::int64_t{42};
    metadata["epoch_loss_0"] = 0.8155;
    nn::save_checkpoint(tmp.string(), *m.model, *m.opt, metadata);
    const Bytes valid = read_all(tmp);
    put("checkpoint", "valid", valid);

    nn::save_checkpoint(tmp.string(), *m.model, *m.opt, {});
    put("checkpoint", "valid-no-metadata", read_all(tmp));

    // The same model under SGD with momentum: refused by optimiser type, and its slots differ.
    nn::SGD sgd(m.model->parameters(), {.learning_rate = 0.1f, .momentum = 0.9f});
    nn::save_checkpoint(tmp.string(), *m.model, sgd, metadata);
    put("checkpoint", "sgd-momentum", read_all(tmp));
    fs::remove(tmp);

    put("checkpoint", "truncated-half", Bytes(valid.begin(), valid.begin() + valid.size() / 2));
    Bytes flipped = valid;
    flipped[valid.size() / 2] ^= 0x40;  // a changed value: only the checksum notices
    put("checkpoint", "one-bit-flipped", flipped);
    Bytes version = valid;
    version[6] = 99;
    put("checkpoint", "version-99", version);
    version[6] = 1;  // the previous format, refused by name
    put("checkpoint", "version-1", version);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    try {
        out_dir = argv[1];
        idx_seeds();
        checkpoint_seeds();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
