// Tests of tensor/conv_block.cpp: the fused Conv2D(relu) -> MaxPool2D -> Dropout kernels against
// the four-layer reference on random geometries (odd sizes, padding edges, overlapping and
// padded pools, dropout on and off, with and without bias), bit for bit against the unfused fast
// kernels, the record bytes, thread-count and batch-slicing independence, and bad operands.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tensor/conv2d_lowering.hpp"
#include "tensor/conv_block.hpp"
#include "tensor/conv_block_kernels.hpp"
#include "tensor/dropout.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace semigrad;

namespace {

struct Case {
    std::size_t N, C, H, W, OC;
    int K, stride;
    Padding conv_padding;
    int pool, pool_stride;
    Padding pool_padding;
    float rate;
    bool bias;
};

std::string describe(const Case& c) {
    return "x [" + std::to_string(c.N) + "," + std::to_string(c.C) + "," + std::to_string(c.H) +
           "," + std::to_string(c.W) + "] OC " + std::to_string(c.OC) + " K " +
           std::to_string(c.K) + " stride " + std::to_string(c.stride) +
           (c.conv_padding == Padding::Same ? " same" : " valid") + " pool " +
           std::to_string(c.pool) + "/" + std::to_string(c.pool_stride) +
           (c.pool_padding == Padding::Same ? " same" : " valid") + " rate " +
           std::to_string(c.rate) + (c.bias ? " bias" : " no bias");
}

ConvBlockSpec spec_of(const Case& c, std::uint64_t key = 0x1234abcd5678ef90ULL) {
    ConvBlockSpec s;
    s.conv.stride_h = s.conv.stride_w = c.stride;
    s.conv.pad = tf_padding(c.conv_padding, int(c.H), int(c.W), c.K, c.K, c.stride, c.stride);
    const Shape conv = conv2d_output_shape({c.N, c.C, c.H, c.W}, {c.OC, c.C, std::size_t(c.K),
                                                                  std::size_t(c.K)}, s.conv);
    s.pool = {c.pool, c.pool, c.pool_stride, c.pool_stride,
              tf_padding(c.pool_padding, int(conv[2]), int(conv[3]), c.pool, c.pool,
                         c.pool_stride, c.pool_stride)};
    s.rate = c.rate;
    s.dropout_key = key;
    return s;
}

// Relative-or-absolute closeness: |a - b| <= tol * max(1, |b|).
void expect_close(const Tensor& got, const Tensor& want, float tol, const std::string& what) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], tol * std::max(1.0f, std::fabs(want[i])))
            << what << " at " << i;
}

struct Operands {
    Tensor x, weight, bias, dout;
};

Operands operands(const Case& c, std::uint64_t seed) {
    Rng rng(seed);
    Operands o;
    o.x = random_uniform({c.N, c.C, c.H, c.W}, rng);
    o.weight = random_uniform({c.OC, c.C, std::size_t(c.K), std::size_t(c.K)}, rng);
    o.bias = c.bias ? random_uniform({c.OC}, rng, -0.3f, 0.3f) : Tensor();
    const Shape out = conv_block_output_shape(o.x.shape(), o.weight.shape(), o.bias, spec_of(c));
    o.dout = random_uniform(out, rng);
    return o;
}

const Case kCases[] = {
    // the tutorial's two blocks, at batch 3
    {3, 1, 28, 28, 8, 2, 1, Padding::Same, 2, 2, Padding::Valid, 0.3f, true},
    {3, 6, 14, 14, 5, 2, 1, Padding::Same, 2, 2, Padding::Valid, 0.3f, true},
    // odd sizes: the pool leaves the last row and column out (valid) or pads them (same)
    {2, 2, 7, 9, 3, 2, 1, Padding::Same, 2, 2, Padding::Valid, 0.5f, true},
    {2, 2, 7, 9, 3, 2, 1, Padding::Same, 2, 2, Padding::Same, 0.5f, false},
    {1, 3, 11, 5, 4, 3, 1, Padding::Same, 3, 2, Padding::Same, 0.0f, true},  // overlapping windows
    {2, 3, 10, 13, 4, 3, 2, Padding::Valid, 2, 1, Padding::Valid, 0.2f, true},  // strided conv
    {1, 2, 9, 9, 2, 2, 1, Padding::Valid, 3, 3, Padding::Same, 0.0f, false},
    // one channel, a 2x2 kernel at stride 1 and a 2x2 pool: the conv fused into the pool
    // (conv_block_kernels.hpp, ConvPool), on odd sizes and on rows of 17 outputs (two vector
    // groups with AVX-512's 16 lanes, three with AVX2's 8)
    {2, 1, 9, 7, 3, 2, 1, Padding::Same, 2, 2, Padding::Valid, 0.5f, false},
    {2, 1, 7, 35, 4, 2, 1, Padding::Valid, 2, 2, Padding::Valid, 0.3f, true},
    // 8 channels or more at stride 1: the winograd lowering for 2x2 kernels, shifted for the
    // 3x3 ones (conv2d_lowering.hpp, with junk columns beside odd widths), padding on every
    // side, and a 3x3 kernel padded top and left
    {3, 16, 14, 14, 5, 2, 1, Padding::Same, 2, 2, Padding::Valid, 0.3f, true},
    {2, 9, 7, 9, 3, 2, 1, Padding::Same, 2, 2, Padding::Valid, 0.5f, true},
    {2, 8, 7, 9, 3, 2, 1, Padding::Same, 2, 2, Padding::Same, 0.5f, false},
    {1, 8, 11, 5, 4, 3, 1, Padding::Same, 3, 2, Padding::Same, 0.0f, true},
    {1, 10, 9, 9, 2, 2, 1, Padding::Valid, 3, 3, Padding::Same, 0.2f, false},
};

}  // namespace

// Every instruction-set path this CPU runs (tensor/simd.hpp), each against the reference.
std::vector<Isa> paths() {
    std::vector<Isa> all;
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512})
        if (cpu_runs(isa)) all.push_back(isa);
    return all;
}

TEST(ConvBlock, FastMatchesTheFourLayerReference) {
  for (const Isa isa : paths()) {
    SCOPED_TRACE(isa_name(isa));
    std::uint64_t seed = 1;
    for (const Case& c : kCases) {
        SCOPED_TRACE(describe(c));
        const Operands o = operands(c, seed++);
        const ConvBlockSpec s = spec_of(c);
        ConvBlockRecord record;
        const Tensor out = conv_block_forward(o.x, o.weight, o.bias, s, &record, isa);
        expect_close(out, conv_block_forward_reference(o.x, o.weight, o.bias, s), 1e-5f, "out");
        // Evaluation (no record) computes the same values.
        expect_close(conv_block_forward(o.x, o.weight, o.bias, s, nullptr, isa), out, 0.0f,
                     "out, no record");

        // Accumulates: both sides start from the same non-zero gradients.
        Rng rng(seed++);
        const Tensor dx0 = random_uniform(o.x.shape(), rng), dw0 = random_uniform(o.weight.shape(), rng);
        const Tensor db0 = random_uniform({c.OC}, rng);
        Tensor dx = dx0, dw = dw0, db = db0, rdx = dx0, rdw = dw0, rdb = db0;
        conv_block_backward(o.dout, o.x, o.weight, s, record, &dx, &dw, c.bias ? &db : nullptr, isa);
        conv_block_backward_reference(o.dout, o.x, o.weight, o.bias, s, &rdx, &rdw,
                                      c.bias ? &rdb : nullptr);
        expect_close(dx, rdx, 1e-4f, "dx");
        expect_close(dw, rdw, 1e-4f, "dweight");
        expect_close(db, rdb, 1e-4f, "dbias");
        if (!c.bias) {
            EXPECT_EQ(max_abs_diff(db, db0), 0.0f);
        }
    }
  }
}

// The same bits as the unfused fast kernels one after another on the same path (conv2d_forward,
// relu, max_pool2d_forward, the dropout mask; and their backwards), which is what makes a fused
// model train exactly as the unfused one.
TEST(ConvBlock, SameBitsAsTheUnfusedFastKernels) {
  for (const Isa isa : paths()) {
    SCOPED_TRACE(isa_name(isa));
    for (const Case& c : kCases) {
        SCOPED_TRACE(describe(c));
        const Operands o = operands(c, 77);
        const ConvBlockSpec s = spec_of(c);
        const Tensor conv = conv2d_forward(o.x, o.weight, o.bias, s.conv, Conv2dLowering::automatic, isa);
        Tensor relu = conv;
        for (std::size_t i = 0; i < relu.size(); ++i) relu[i] = conv[i] > 0.0f ? conv[i] : 0.0f;
        std::vector<std::int64_t> argmax;
        const Tensor pooled = max_pool2d_forward(relu, s.pool, argmax);
        const Tensor mask = c.rate > 0 ? dropout_mask(pooled.shape(), c.rate, s.dropout_key)
                                       : Tensor::ones(pooled.shape());
        ConvBlockRecord record;
        const Tensor out = conv_block_forward(o.x, o.weight, o.bias, s, &record, isa);
        ASSERT_EQ(out.shape(), pooled.shape());
        for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], pooled[i] * mask[i]) << i;

        Tensor dpooled = o.dout;
        for (std::size_t i = 0; i < dpooled.size(); ++i) dpooled[i] *= mask[i];
        Tensor dconv(conv.shape());
        max_pool2d_backward(dpooled, argmax, dconv);
        for (std::size_t i = 0; i < dconv.size(); ++i)
            if (!(conv[i] > 0.0f)) dconv[i] = 0.0f;
        Tensor udx(o.x.shape()), udw(o.weight.shape()), udb({c.OC});
        conv2d_backward(dconv, o.x, o.weight, s.conv, &udx, &udw, &udb, Conv2dLowering::automatic, isa);
        Tensor dx(o.x.shape()), dw(o.weight.shape()), db({c.OC});
        conv_block_backward(o.dout, o.x, o.weight, s, record, &dx, &dw, &db, isa);
        EXPECT_EQ(max_abs_diff(dx, udx), 0.0f);
        EXPECT_EQ(max_abs_diff(dw, udw), 0.0f);
        if (c.bias) {
            EXPECT_EQ(max_abs_diff(db, udb), 0.0f);
        }
        // Without dx, as the first block trains (its input needs no gradient; the first conv
        // then takes its own per-plane path in conv_block.cpp).
        Tensor dw_only(o.weight.shape()), db_only({c.OC});
        conv_block_backward(o.dout, o.x, o.weight, s, record, nullptr, &dw_only, &db_only, isa);
        EXPECT_EQ(max_abs_diff(dw_only, udw), 0.0f);
        if (c.bias) {
            EXPECT_EQ(max_abs_diff(db_only, udb), 0.0f);
        }
        // dx written rather than added (the first share, autograd/var.hpp), into NaNs: every
        // entry is written, with the values the += into zeros gave.
        Tensor dx_written(o.x.shape(), std::nanf(""));
        Tensor dw_again(o.weight.shape());
        conv_block_backward(o.dout, o.x, o.weight, s, record, &dx_written, &dw_again, nullptr, isa,
                            true);
        EXPECT_EQ(max_abs_diff(dx_written, udx), 0.0f);
    }
  }
}

// One image, one channel, a 2x2 kernel of ones, bias -2.5: the record names each window's winner
// and whether its gradient passes, by hand.
TEST(ConvBlock, RecordByHand) {
    // x 3x3; same padding pads one zero row and column after, so conv is 3x3:
    //   conv[i][j] = x[i][j] + x[i][j+1] + x[i+1][j] + x[i+1][j+1] - 2.5
    const Tensor x({1, 1, 3, 3}, {1, 0, 0,
                                  0, 0, 0,
                                  0, 0, 3});
    const Tensor weight({1, 1, 2, 2}, 1.0f), bias({1}, {-2.5f});
    ConvBlockSpec s;
    s.conv.pad = tf_padding(Padding::Same, 3, 3, 2, 2, 1, 1);
    // conv = [[-1.5, -2.5, -2.5], [-2.5, 0.5, 0.5], [-2.5, 0.5, 0.5]]; pool 2x2 stride 1 valid:
    // windows at (0,0) (0,1) (1,0) (1,1) have maxima 0.5 at place 3, 2, 1, 0.
    s.pool = {2, 2, 1, 1, {}};
    ConvBlockRecord record;
    const Tensor out = conv_block_forward(x, weight, bias, s, &record);
    ASSERT_EQ(out.shape(), (Shape{1, 1, 2, 2}));
    for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(out[i], 0.5f);
    EXPECT_EQ(record, (ConvBlockRecord{0x83, 0x82, 0x81, 0x80}));
    // With bias -3.5 every maximum is -0.5: outputs 0, the same winners, no gradient (the
    // unfused pool would pick the first of the window's relu zeros; either way relu stops it).
    const Tensor low({1}, {-3.5f});
    const Tensor out0 = conv_block_forward(x, weight, low, s, &record);
    for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(out0[i], 0.0f);
    EXPECT_EQ(record, (ConvBlockRecord{0x03, 0x02, 0x01, 0x00}));
    Tensor dw(weight.shape()), db({1});
    conv_block_backward(Tensor({1, 1, 2, 2}, 1.0f), x, weight, s, record, nullptr, &dw, &db);
    EXPECT_EQ(max_abs_diff(dw, Tensor(weight.shape())), 0.0f);
    EXPECT_EQ(db[0], 0.0f);
}

TEST(ConvBlock, SameBitsForAnyThreadCount) {
  for (const Case& c : {kCases[0], kCases[1], kCases[9], kCases[12]}) {  // fused conv, im2col, winograd, shifted
    SCOPED_TRACE(describe(c));
    const Operands o = operands(c, 5);
    const ConvBlockSpec s = spec_of(c);
    const int before = num_threads();
    Tensor out[2], dw[2], dx[2], db[2];
    ConvBlockRecord record[2];
    for (int t = 0; t < 2; ++t) {
        set_num_threads(t == 0 ? 1 : 3);
        out[t] = conv_block_forward(o.x, o.weight, o.bias, s, &record[t]);
        dx[t] = Tensor(o.x.shape()), dw[t] = Tensor(o.weight.shape()), db[t] = Tensor({c.OC});
        conv_block_backward(o.dout, o.x, o.weight, s, record[t], &dx[t], &dw[t], &db[t]);
    }
    set_num_threads(before);
    EXPECT_EQ(max_abs_diff(out[0], out[1]), 0.0f);
    EXPECT_EQ(record[0], record[1]);
    EXPECT_EQ(max_abs_diff(dx[0], dx[1]), 0.0f);
    EXPECT_EQ(max_abs_diff(dw[0], dw[1]), 0.0f);
    EXPECT_EQ(max_abs_diff(db[0], db[1]), 0.0f);
  }
}

// A slice of a batch given its global offset draws the slice of the whole batch's mask.
TEST(ConvBlock, BatchSliceWithOffsetMatchesTheWholeBatch) {
    Case c = kCases[2];
    c.N = 5;
    const Operands o = operands(c, 9);
    const ConvBlockSpec whole = spec_of(c);
    const Tensor all = conv_block_forward(o.x, o.weight, o.bias, whole, nullptr);
    const std::size_t per_x = o.x.size() / c.N, per_out = all.size() / c.N;
    Tensor slice({2, c.C, c.H, c.W});
    std::copy(o.x.data() + 3 * per_x, o.x.data() + 5 * per_x, slice.data());
    ConvBlockSpec s = whole;
    s.sample_offset = 3;
    const Tensor part = conv_block_forward(slice, o.weight, o.bias, s, nullptr);
    for (std::size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], all[3 * per_out + i]) << i;
    s.sample_offset = 0;  // the wrong offset draws another mask
    const Tensor wrong = conv_block_forward(slice, o.weight, o.bias, s, nullptr);
    EXPECT_GT(max_abs_diff(wrong, part), 0.0f);
}

TEST(ConvBlock, BadOperandsAreNamed) {
    const Case c = kCases[2];
    const Operands o = operands(c, 3);
    ConvBlockSpec s = spec_of(c);
    EXPECT_THROW(conv_block_forward(o.x, o.weight, Tensor({c.OC + 1}), s, nullptr), ShapeError);
    EXPECT_THROW(conv_block_forward(o.x, Tensor({c.OC, c.C + 1, 2, 2}), o.bias, s, nullptr),
                 ShapeError);
    ConvBlockSpec big = s;
    big.pool = {12, 12, 1, 1, {}};
    try {
        conv_block_forward(Tensor({1, 1, 20, 20}), Tensor({1, 1, 2, 2}), Tensor(), big, nullptr);
        ADD_FAILURE() << "no exception";
    } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("12x12"), std::string::npos) << e.what();
    }
    ConvBlockSpec bad_rate = s;
    bad_rate.rate = 1.0f;
    EXPECT_THROW(conv_block_forward(o.x, o.weight, o.bias, bad_rate, nullptr), ValueError);
    ConvBlockRecord record;
    conv_block_forward(o.x, o.weight, o.bias, s, &record);
    record.pop_back();
    Tensor dw(o.weight.shape());
    EXPECT_THROW(conv_block_backward(o.dout, o.x, o.weight, s, record, nullptr, &dw, nullptr),
                 ShapeError);
    record.push_back(0);
    EXPECT_THROW(conv_block_backward(Tensor({1, 1, 1, 1}), o.x, o.weight, s, record, nullptr, &dw,
                                     nullptr),
                 ShapeError);
    Tensor db_bad({c.OC + 1});
    EXPECT_THROW(conv_block_backward(o.dout, o.x, o.weight, s, record, nullptr, nullptr, &db_bad),
                 ShapeError);
}

// ---------------------------------------------------------------------------------------------
// the per-ISA row kernels of the 2x2 pool, each against the portable one, on this CPU

namespace {

namespace k = conv_block_kernels;

const Isa kSimd[] = {Isa::avx2, Isa::avx512};

}  // namespace

// Every row length 1..40 (full vectors, tails, both), ties (values drawn from a coarse grid so
// windows often hold equal maxima), all-negative windows, dropout on and off: outputs, records
// and the unpooled rows must be the portable kernel's bits. Output slots past the row must be
// left alone.
TEST(ConvBlockRowKernels, SimdEqualsPortable) {
    Rng rng(31);
    int ran = 0;
    for (const Isa isa : kSimd) {
        if (!cpu_runs(isa)) {
            std::printf("skipping %s: this CPU lacks it\n", isa_name(isa));
            continue;
        }
        ++ran;
        SCOPED_TRACE(isa_name(isa));
        const k::RowKernels kernel = k::row_kernels(isa);
        for (int OW = 1; OW <= 40; ++OW)
            for (const bool dropout : {false, true}) {
                SCOPED_TRACE("OW " + std::to_string(OW) + (dropout ? " dropout" : ""));
                std::vector<float> r0(2 * OW + 1), r1(2 * OW + 1);
                for (auto* r : {&r0, &r1})
                    for (float& v : *r) v = float(int(rng.below(9)) - 5) * 0.25f;  // ties, signs
                const float bias = rng.uniform(-0.3f, 0.3f);
                const std::uint64_t key = (std::uint64_t(rng.next_u32()) << 32) | rng.next_u32();
                const std::uint64_t first = rng.below(1u << 30);
                std::vector<float> out_p(OW + 8, -7.0f), out_s(OW + 8, -7.0f);
                std::vector<std::uint8_t> rec_p(OW + 8, 0x55), rec_s(OW + 8, 0x55);
                const auto row = [&](float* out, std::uint8_t* rec) {
                    return k::PoolRow{r0.data(), r1.data(), bias, OW,
                                      {dropout, key, first, dropout_threshold(0.4f), 1.0f / 0.6f,
                                       out, rec}};
                };
                k::pool_row_portable(row(out_p.data(), rec_p.data()));
                kernel.pool(row(out_s.data(), rec_s.data()));
                for (int j = 0; j < OW + 8; ++j) {
                    ASSERT_EQ(out_s[j], out_p[j]) << "out " << j;
                    ASSERT_EQ(rec_s[j], rec_p[j]) << "record " << j;
                }
                std::vector<float> dout(OW);
                for (float& d : dout) d = rng.uniform(-1.0f, 1.0f);
                std::vector<float> d0_p(2 * OW + 8, -7.0f), d1_p = d0_p, d0_s = d0_p, d1_s = d0_p;
                k::unpool_row_portable({dout.data(), rec_p.data(), 1.0f / 0.6f, OW, d0_p.data(), d1_p.data()});
                kernel.unpool({dout.data(), rec_p.data(), 1.0f / 0.6f, OW, d0_s.data(), d1_s.data()});
                for (int i = 0; i < 2 * OW + 8; ++i) {
                    ASSERT_EQ(d0_s[i], d0_p[i]) << "d0 " << i;
                    ASSERT_EQ(d1_s[i], d1_p[i]) << "d1 " << i;
                }
            }
    }
    if (ran == 0) GTEST_SKIP() << "no SIMD row kernel runs on this CPU";
}

// The portable row kernel against the general epilogue's rule, by hand on one row: places, the
// first maximum winning a tie, ReLU, and dropout's integer threshold.
TEST(ConvBlockRowKernels, PortableByHand) {
    const float r0[] = {1, 3, -1, -2, 2, 2, 0.5f, 0};
    const float r1[] = {2, 0, -3, -1, 2, 1, 0, 4};
    float out[4];
    std::uint8_t rec[4];
    k::pool_row_portable({r0, r1, 0.5f, 4, {false, 0, 0, 0, 2.0f, out, rec}});
    // windows (1,3,2,0) (-1,-2,-3,-1) (2,2,2,1) (0.5,0,0,4), +0.5: maxima 3.5, -0.5, 2.5, 4.5
    EXPECT_EQ(out[0], 7.0f);
    EXPECT_EQ(out[1], 0.0f);
    EXPECT_EQ(out[2], 5.0f);
    EXPECT_EQ(out[3], 9.0f);
    EXPECT_EQ(rec[0], 0x81);
    EXPECT_EQ(rec[1], 0x00);  // -1 at place 0 and 3: the first wins; <= 0 does not pass
    EXPECT_EQ(rec[2], 0x80);  // a three-way tie: place 0
    EXPECT_EQ(rec[3], 0x83);
}
