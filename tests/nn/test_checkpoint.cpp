// Checkpoints: the round trip, and every way a bad file must be refused without touching the model.
// The model here is a stack of small "Toy" modules (two parameters and a generator each), so these
// tests depend only on the checkpoint code; test_training.cpp resumes the real model bit-exactly.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/checkpoint.hpp"
#include "tensor/atomic_file.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::nn;
namespace fs = std::filesystem;

namespace {

// kernel [in, out] and bias [out] drawn from init_rng, plus a generator of its own (like Dropout).
class Toy : public Module {
  public:
    Toy(std::size_t in, std::size_t out) : Module("toy"), in_(in), out_(out) {}
    Var forward(const Var& x) override { return x; }
    std::vector<Parameter> parameters() override {
        return {{name() + "/kernel", kernel_}, {name() + "/bias", bias_}};
    }
    std::vector<NamedRng> generators() override { return {{name() + "/rng", &rng_}}; }
    Shape build(const Shape&, Rng& init_rng) override {
        Tensor k(Shape{in_, out_}), b(Shape{out_});
        for (std::size_t i = 0; i < k.size(); ++i) k[i] = init_rng.normal();
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = init_rng.normal();
        kernel_ = Var(k, true);
        bias_ = Var(b, true);
        rng_ = Rng(init_rng.next_u32());
        built_ = true;
        return Shape{out_};
    }
    std::string type() const override { return "Toy"; }
    Rng& rng() { return rng_; }

  private:
    std::size_t in_, out_;
    Var kernel_, bias_;
    Rng rng_;
};

std::unique_ptr<Sequential> toy_model(std::vector<std::pair<std::size_t, std::size_t>> dims,
                                      std::uint64_t seed) {
    auto m = std::make_unique<Sequential>();
    for (auto [in, out] : dims) m->add(Toy(in, out));
    Rng init(seed);
    m->build({dims.front().first}, init);
    return m;
}

// A few Adam steps with made-up gradients, and some draws from every generator, so that every
// part of the state is non-trivial.
void advance(Sequential& model, Optimizer& opt, int steps) {
    for (int s = 0; s < steps; ++s) {
        for (Parameter& p : model.parameters()) {
            Tensor g(p.var.shape());
            for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::sin(float(i + 3 * s) + p.var.value()[i]);
            p.var.zero_grad();
            p.var.accumulate_grad(g);
        }
        opt.step();
        for (NamedRng& g : model.generators()) g.rng->next_u32();
    }
}

// Every float and word of state, for "bit-identical" and "unchanged" comparisons.
std::vector<std::uint64_t> snapshot(Sequential& model, const Optimizer& opt) {
    std::vector<std::uint64_t> s;
    auto add = [&](const Tensor& t) {
        for (std::size_t i = 0; i < t.size(); ++i) s.push_back(std::bit_cast<std::uint32_t>(t[i]));
    };
    for (Parameter& p : model.parameters()) add(p.var.value());
    for (std::size_t k = 0; k < opt.slot_names().size(); ++k)
        for (std::size_t i = 0; i < opt.parameters().size(); ++i) add(opt.slot(k, i));
    for (NamedRng& g : model.generators()) {
        s.push_back(g.rng->state().state);
        s.push_back(g.rng->state().inc);
    }
    s.push_back(static_cast<std::uint64_t>(opt.iterations()));
    return s;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// Recomputes the trailing crc32 so that an edit is seen by the field checks, not the checksum.
void fix_crc(std::string& bytes) {
    const std::size_t body = bytes.size() - 4;
    const auto crc = static_cast<std::uint32_t>(
        crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), body));
    for (int b = 0; b < 4; ++b) bytes[body + b] = static_cast<char>((crc >> (8 * b)) & 0xffu);
}

class Checkpoint : public ::testing::Test {
  protected:
    fs::path dir = fs::temp_directory_path() / ("semigrad_ckpt_" + std::to_string(::getpid()));
    std::string path = (dir / "model.ckpt").string();
    void SetUp() override { fs::create_directories(dir); }
    void TearDown() override { fs::remove_all(dir); }

    // Loading `bytes` must throw FormatError containing each of `needles`, and change nothing.
    void expect_refused(const std::string& bytes, std::vector<std::string> needles = {}) {
        auto model = toy_model({{2, 3}, {3, 1}}, 99);
        Adam opt(model->parameters());
        advance(*model, opt, 1);
        const auto before = snapshot(*model, opt);
        const std::string bad = (dir / "bad.ckpt").string();
        spit(bad, bytes);
        try {
            load_checkpoint(bad, *model, opt);
            ADD_FAILURE() << "a bad checkpoint was accepted";
        } catch (const FormatError& e) {
            for (const std::string& n : needles)
                EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
                    << "message '" << e.what() << "' lacks '" << n << "'";
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
        EXPECT_EQ(snapshot(*model, opt), before) << "a refused checkpoint changed the model";
    }

    std::string saved_bytes() {
        auto model = toy_model({{2, 3}, {3, 1}}, 1);
        Adam opt(model->parameters());
        advance(*model, opt, 3);
        save_checkpoint(path, *model, opt, {{"epoch", 2}, {"seed", 42}});
        return slurp(path);
    }
};

}  // namespace

TEST_F(Checkpoint, RoundTripRestoresEverything) {
    auto model = toy_model({{2, 3}, {3, 1}}, 1);
    Adam opt(model->parameters());
    advance(*model, opt, 3);
    const Metadata meta_in = {{"epoch", 2},
                              {"seed", 42},
                              {"negative", -7},
                              {"loss", 0.1 + 0.2},  // not 0.3: every bit must survive
                              {"tiny", 5e-324},
                              {"big", -1.7976931348623157e308}};
    save_checkpoint(path, *model, opt, meta_in);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1)
        << "no temporary file may be left behind";

    auto fresh = toy_model({{2, 3}, {3, 1}}, 2);  // other seed: other weights and generators
    Adam fresh_opt(fresh->parameters());
    ASSERT_NE(snapshot(*fresh, fresh_opt), snapshot(*model, opt));
    const auto meta = load_checkpoint(path, *fresh, fresh_opt);
    EXPECT_EQ(meta, meta_in);
    EXPECT_TRUE(std::holds_alternative<std::int64_t>(meta.at("epoch")));
    EXPECT_EQ(std::get<double>(meta.at("loss")), 0.1 + 0.2);
    EXPECT_EQ(snapshot(*fresh, fresh_opt), snapshot(*model, opt));
    EXPECT_EQ(fresh_opt.iterations(), 3);

    // And they stay together afterwards.
    advance(*model, opt, 2);
    advance(*fresh, fresh_opt, 2);
    EXPECT_EQ(snapshot(*fresh, fresh_opt), snapshot(*model, opt));
}

TEST_F(Checkpoint, SGDWithMomentumRoundTrips) {
    auto model = toy_model({{4, 2}}, 5);
    SGD opt(model->parameters(), {.learning_rate = 0.1f, .momentum = 0.9f});
    advance(*model, opt, 2);
    save_checkpoint(path, *model, opt, {});
    auto fresh = toy_model({{4, 2}}, 6);
    SGD fresh_opt(fresh->parameters(), {.learning_rate = 0.1f, .momentum = 0.9f});
    EXPECT_TRUE(load_checkpoint(path, *fresh, fresh_opt).empty());
    EXPECT_EQ(snapshot(*fresh, fresh_opt), snapshot(*model, opt));
}

TEST_F(Checkpoint, EveryTruncationIsRefused) {
    const std::string bytes = saved_bytes();
    ASSERT_GT(bytes.size(), 100u);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        SCOPED_TRACE("truncated to " + std::to_string(n) + " bytes");
        expect_refused(bytes.substr(0, n), {"truncated"});
    }
}

TEST_F(Checkpoint, EveryCorruptedByteIsRefused) {
    const std::string bytes = saved_bytes();
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        SCOPED_TRACE("byte " + std::to_string(i) + " flipped");
        std::string bad = bytes;
        bad[i] = static_cast<char>(bad[i] ^ 0x10);
        expect_refused(bad);
    }
    std::string bad = bytes;
    bad[bytes.size() / 2] = static_cast<char>(bad[bytes.size() / 2] ^ 0x01);
    expect_refused(bad, {"checksum"});
    expect_refused(bytes + "x", {"after the checksum"});
}

TEST_F(Checkpoint, WrongMagicAndWrongVersionAreNamed) {
    std::string bytes = saved_bytes();
    std::string bad = bytes;
    bad[0] = 'X';
    expect_refused(bad, {"SGCKPT"});
    expect_refused("PK\x03\x04 not a checkpoint at all", {"SGCKPT"});
    bad = bytes;
    bad[6] = 3;  // version u32 little-endian at offset 6
    fix_crc(bad);
    expect_refused(bad, {"version 3", "version 2"});
    // Version 1 held integer metadata only; its files are refused by name, not misread.
    bad[6] = 1;
    fix_crc(bad);
    expect_refused(bad, {"version 1", "older semigrad"});
}

// The metadata entries sit at the end: key, type byte, 8 value bytes, then the crc32.
TEST_F(Checkpoint, UnknownMetadataTypeIsNamed) {
    auto model = toy_model({{2, 3}, {3, 1}}, 1);
    Adam opt(model->parameters());
    save_checkpoint(path, *model, opt, {{"zeta", 0.5}});
    std::string bytes = slurp(path);
    const std::size_t type_at = bytes.size() - 4 - 8 - 1;
    ASSERT_EQ(bytes.substr(type_at - 4, 4), "zeta");
    ASSERT_EQ(bytes[type_at], 1);
    bytes[type_at] = 7;
    fix_crc(bytes);
    expect_refused(bytes, {"metadata 'zeta'", "type 7"});
}

// A checkpoint of a diverged run (CRC-valid, every field well formed) is not a state to resume.
TEST_F(Checkpoint, NonFiniteValuesAreRefusedOnLoad) {
    const std::string good = saved_bytes();
    // The first tensor is toy/kernel [2,3]; its first value follows name, rank and dims.
    const std::string name = "toy/kernel";
    const std::size_t name_at = good.find(name);
    ASSERT_NE(name_at, std::string::npos);
    const std::size_t values_at = name_at + name.size() + 4 + 2 * 8;
    for (const auto& [bits, word] : std::vector<std::pair<std::uint32_t, std::string>>{
             {0x7fc00000u, "NaN"}, {0x7f800000u, "+inf"}, {0xff800000u, "-inf"}}) {
        std::string bad = good;
        for (int b = 0; b < 4; ++b)
            bad[values_at + 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xffu);  // index 1
        fix_crc(bad);
        expect_refused(bad, {"'toy/kernel'", word, "index 1"});
    }
}

// Found by fuzz/checkpoint_target.cpp (fuzz/corpus/checkpoint/regress-zero-dim-huge-dims): a
// zero dimension made the tensor empty, so the size check let any other dimension through,
// and xtensor's stride computation multiplied 2^40 by 2^40 in a signed integer (UBSan).
TEST_F(Checkpoint, ZeroDimensionDoesNotLetHugeDimensionsThrough) {
    const std::string good = saved_bytes();
    const std::string name = "toy/kernel";  // rank 2, dims [2,3]
    const std::size_t rank_at = good.find(name) + name.size();
    std::string dims;
    for (std::uint64_t d : {std::uint64_t{0}, std::uint64_t{1} << 40, std::uint64_t{1} << 40})
        for (int b = 0; b < 8; ++b) dims += static_cast<char>((d >> (8 * b)) & 0xffu);
    std::string bad = good.substr(0, rank_at) + std::string("\x03\0\0\0", 4) + dims +
                      good.substr(rank_at + 4 + 2 * 8);
    fix_crc(bad);
    expect_refused(bad, {"'toy/kernel'", "[0,1099511627776,", "does not fit"});
}

TEST_F(Checkpoint, NonFiniteValuesAreNeverSaved) {
    auto model = toy_model({{2, 3}, {3, 1}}, 1);
    Adam opt(model->parameters());
    save_checkpoint(path, *model, opt, {{"epoch", 1}});
    const std::string good = slurp(path);
    model->parameters()[3].var.value()[0] = std::numeric_limits<float>::quiet_NaN();  // toy_1/bias
    try {
        save_checkpoint(path, *model, opt, {{"epoch", 2}});
        ADD_FAILURE() << "a NaN weight was saved";
    } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("'toy_1/bias' holds NaN"), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(path), good);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

// Names come from the file: control bytes must not reach the user's terminal.
TEST_F(Checkpoint, NamesFromTheFileArePrintedEscaped) {
    auto model = toy_model({{2, 3}, {3, 1}}, 1);
    Adam opt(model->parameters());
    save_checkpoint(path, *model, opt, {});
    std::string bytes = slurp(path);
    const std::size_t at = bytes.find("toy_1/kernel");
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at, 3, "\x1b[2");  // same length: an escape sequence instead of "toy"
    fix_crc(bytes);
    auto fresh = toy_model({{2, 3}}, 1);  // has no toy_1: the renamed tensor is reported extra
    Adam fresh_opt(fresh->parameters());
    spit(path, bytes);
    try {
        load_checkpoint(path, *fresh, fresh_opt);
        ADD_FAILURE() << "accepted";
    } catch (const FormatError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
        EXPECT_NE(msg.find("'\\x1b[2_1/kernel'"), std::string::npos) << msg;
    }
    EXPECT_EQ(printable("a\tb\\c\xff"), "a\\x09b\\x5cc\\xff");
    EXPECT_EQ(printable(std::string(300, 'x')), std::string(200, 'x') + "...");
}

// A FIFO, a folder or a device at the path is refused at once: reading a FIFO with no writer
// would block forever.
TEST_F(Checkpoint, NonRegularFilesAreRefusedWithoutBlocking) {
    auto model = toy_model({{2, 3}}, 1);
    Adam opt(model->parameters());
    const std::string fifo = (dir / "pipe.ckpt").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (const auto& [p, kind] : std::vector<std::pair<std::string, std::string>>{
             {fifo, "a FIFO"}, {dir.string(), "a folder"}, {"/dev/null", "a character device"}}) {
        try {
            load_checkpoint(p, *model, opt);
            ADD_FAILURE() << p << " accepted";
        } catch (const IoError& e) {
            EXPECT_NE(std::string(e.what()).find(kind), std::string::npos) << e.what();
        }
    }
}

TEST_F(Checkpoint, ShapeMismatchNamesTheTensorAndBothShapes) {
    auto model = toy_model({{2, 4}, {4, 1}}, 1);
    Adam opt(model->parameters());
    save_checkpoint(path, *model, opt, {});
    expect_refused(slurp(path), {"'toy/kernel'", "[2,4]", "[2,3]"});
}

TEST_F(Checkpoint, MissingAndExtraTensorsAreNamed) {
    auto small = toy_model({{2, 3}}, 1);
    Adam small_opt(small->parameters());
    save_checkpoint(path, *small, small_opt, {});
    expect_refused(slurp(path), {"'toy_1/kernel'", "missing"});

    auto big = toy_model({{2, 3}, {3, 1}, {1, 1}}, 1);
    Adam big_opt(big->parameters());
    save_checkpoint(path, *big, big_opt, {});
    expect_refused(slurp(path), {"toy_2/", "no counterpart"});
}

TEST_F(Checkpoint, OptimizerTypeMustMatch) {
    auto model = toy_model({{2, 3}, {3, 1}}, 1);
    SGD sgd(model->parameters(), {.momentum = 0.5f});
    save_checkpoint(path, *model, sgd, {});
    expect_refused(slurp(path), {"SGD", "Adam"});
}

TEST_F(Checkpoint, UnreadableFileAndForeignOptimizer) {
    auto model = toy_model({{2, 3}}, 1);
    Adam opt(model->parameters());
    EXPECT_THROW(load_checkpoint((dir / "nope.ckpt").string(), *model, opt), IoError);

    save_checkpoint(path, *model, opt, {});
    auto other = toy_model({{2, 3}}, 1);  // same names, other tensors
    EXPECT_THROW(load_checkpoint(path, *other, opt), ValueError);

    Sequential unbuilt;
    EXPECT_THROW(save_checkpoint(path, unbuilt, opt, {}), Error);
}

TEST_F(Checkpoint, FailedSaveLeavesThePreviousCheckpointIntact) {
    auto model = toy_model({{2, 3}, {3, 1}}, 1);
    Adam opt(model->parameters());
    save_checkpoint(path, *model, opt, {{"epoch", 1}});
    const std::string good = slurp(path);
    const auto at_save = snapshot(*model, opt);

    // The temporary file cannot be created: a folder squats its name (this works as root too).
    advance(*model, opt, 1);
    fs::create_directory(temporary_name(path));
    EXPECT_THROW(save_checkpoint(path, *model, opt, {{"epoch", 2}}), IoError);
    EXPECT_EQ(slurp(path), good);

    auto fresh = toy_model({{2, 3}, {3, 1}}, 3);
    Adam fresh_opt(fresh->parameters());
    EXPECT_EQ(load_checkpoint(path, *fresh, fresh_opt).at("epoch"), MetaValue(std::int64_t{1}));
    EXPECT_EQ(snapshot(*fresh, fresh_opt), at_save);
}
