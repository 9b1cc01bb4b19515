// Tests of tensor/conv2d.cpp: TF padding by hand, shapes and their errors, a tiny convolution by
// hand, the im2col/GEMM kernels against the direct loops on random geometries, the references
// against central differences, and thread-count independence.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <string>
#include <vector>

#include "tensor/block_gemm.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/conv2d_lowering.hpp"
#include "tensor/conv2d_scatter.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/simd.hpp"

using namespace semigrad;

namespace {

void expect_pad(const Pad2d& p, int top, int bottom, int left, int right) {
    EXPECT_EQ(p.top, top);
    EXPECT_EQ(p.bottom, bottom);
    EXPECT_EQ(p.left, left);
    EXPECT_EQ(p.right, right);
}

// Runs `f`, which must throw E with a message containing every string of `parts`.
template <class E, class F>
void expect_throw_naming(F f, std::initializer_list<std::string> parts) {
    try {
        f();
        ADD_FAILURE() << "no exception";
    } catch (const E& e) {
        for (const auto& part : parts)
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
                << "'" << e.what() << "' does not name " << part;
    }
}

}  // namespace

// out = ceil(in / s), total = max((out - 1) * s + k - in, 0), split total / 2 before.
TEST(TfPadding, SameMatchesHandWorkedValues) {
    // 28, k=2, s=1: out 28, total 27 + 2 - 28 = 1 -> 0 before, 1 after (the tutorial's conv).
    expect_pad(tf_padding(Padding::Same, 28, 28, 2, 2, 1, 1), 0, 1, 0, 1);
    // 28, k=3, s=1: total 2 -> 1, 1.
    expect_pad(tf_padding(Padding::Same, 28, 28, 3, 3, 1, 1), 1, 1, 1, 1);
    // 28, k=2, s=2 (the tutorial's pool): out 14, total 13 * 2 + 2 - 28 = 0.
    expect_pad(tf_padding(Padding::Same, 28, 28, 2, 2, 2, 2), 0, 0, 0, 0);
    // 7, k=3, s=2: out 4, total 3 * 2 + 3 - 7 = 2 -> 1, 1.  8, k=3, s=2: out 4, total 1 -> 0, 1.
    expect_pad(tf_padding(Padding::Same, 7, 8, 3, 3, 2, 2), 1, 1, 0, 1);
    // 5, k=4, s=1: total 3 -> 1, 2.  1, k=5, s=3: out 1, total 4 -> 2, 2.
    expect_pad(tf_padding(Padding::Same, 5, 1, 4, 5, 1, 3), 1, 2, 2, 2);
    // 14, k=2, s=2 (pool on conv2's output): total 0.  15, k=2, s=2: out 8, total 1 -> 0, 1.
    expect_pad(tf_padding(Padding::Same, 14, 15, 2, 2, 2, 2), 0, 0, 0, 1);
    // Stride larger than the kernel: 10, k=1, s=3: out 4, total 9 + 1 - 10 = 0.
    expect_pad(tf_padding(Padding::Same, 10, 10, 1, 1, 3, 3), 0, 0, 0, 0);
}

TEST(TfPadding, ValidPadsNothingAndBadArgumentsThrow) {
    expect_pad(tf_padding(Padding::Valid, 28, 28, 3, 2, 2, 1), 0, 0, 0, 0);
    EXPECT_THROW(tf_padding(Padding::Same, 28, 28, 2, 2, 0, 1), ValueError);
    EXPECT_THROW(tf_padding(Padding::Same, 28, 28, 2, 2, 1, -1), ValueError);
    EXPECT_THROW(tf_padding(Padding::Same, 28, 28, 0, 2, 1, 1), ValueError);
}

TEST(Conv2dShape, TutorialShapesAndStrides) {
    const Conv2dSpec same{1, 1, {0, 1, 0, 1}};
    EXPECT_EQ(conv2d_output_shape({32, 1, 28, 28}, {64, 1, 2, 2}, same), (Shape{32, 64, 28, 28}));
    EXPECT_EQ(conv2d_output_shape({32, 64, 14, 14}, {32, 64, 2, 2}, same), (Shape{32, 32, 14, 14}));
    // (9 + 1 + 2 - 3) / 2 + 1 = 5 and (7 - 2) / 3 + 1 = 2.
    EXPECT_EQ(conv2d_output_shape({2, 3, 9, 7}, {4, 3, 3, 2}, {2, 3, {1, 2, 0, 0}}),
              (Shape{2, 4, 5, 2}));
}

TEST(Conv2dShape, ErrorsNameOpAndBothShapes) {
    expect_throw_naming<ShapeError>(
        [] { conv2d_output_shape({2, 3, 8, 8}, {4, 1, 2, 2}, {}); },
        {"conv2d", "[2,3,8,8]", "[4,1,2,2]"});
    expect_throw_naming<ShapeError>([] { conv2d_output_shape({3, 8, 8}, {4, 3, 2, 2}, {}); },
                                    {"conv2d", "[3,8,8]", "[4,3,2,2]"});
    expect_throw_naming<ShapeError>([] { conv2d_output_shape({1, 1, 2, 2}, {1, 1, 3, 3}, {}); },
                                    {"conv2d", "[1,1,2,2]", "[1,1,3,3]"});
    expect_throw_naming<ValueError>(
        [] { conv2d_output_shape({1, 1, 4, 4}, {1, 1, 2, 2}, {0, 1, {}}); }, {"conv2d", "stride"});
    expect_throw_naming<ValueError>(
        [] { conv2d_output_shape({1, 1, 4, 4}, {1, 1, 2, 2}, {1, 1, {0, -1, 0, 0}}); },
        {"conv2d", "padding"});
    Rng rng(1);
    const Tensor x = random_uniform({1, 2, 4, 4}, rng), w = random_uniform({3, 2, 2, 2}, rng);
    expect_throw_naming<ShapeError>([&] { conv2d_forward(x, w, Tensor({2}), {}); },
                                    {"conv2d", "bias", "[2]", "[3,2,2,2]"});
    Tensor dout({1, 3, 4, 4}), dx(x.shape());
    expect_throw_naming<ShapeError>([&] { conv2d_backward(dout, x, w, {}, &dx, nullptr, nullptr); },
                                    {"conv2d", "[1,3,4,4]", "[1,3,3,3]"});
    // The gradient buffers (check_conv_grads, shared with the fused block's backward).
    const Tensor good_dout({1, 3, 3, 3});
    Tensor dx_bad({1, 2, 4, 5}), dw_bad({3, 2, 2, 1}), db_bad({2}), db_rank({3, 1});
    expect_throw_naming<ShapeError>(
        [&] { conv2d_backward(good_dout, x, w, {}, &dx_bad, nullptr, nullptr); },
        {"conv2d backward", "dx", "[1,2,4,5]", "[1,2,4,4]"});
    expect_throw_naming<ShapeError>(
        [&] { conv2d_backward(good_dout, x, w, {}, nullptr, &dw_bad, nullptr); },
        {"conv2d backward", "dweight", "[3,2,2,1]", "[3,2,2,2]"});
    expect_throw_naming<ShapeError>(
        [&] { conv2d_backward(good_dout, x, w, {}, nullptr, nullptr, &db_bad); },
        {"conv2d backward", "dbias", "[2]", "[3]"});
    expect_throw_naming<ShapeError>(
        [&] { conv2d_backward_naive(good_dout, x, w, {}, nullptr, nullptr, &db_rank); },
        {"conv2d backward", "dbias", "[3,1]"});
    expect_throw_naming<ShapeError>(
        [&] { check_conv_grads("conv_block backward", x, w, nullptr, nullptr, &db_bad); },
        {"conv_block backward", "dbias", "[3,2,2,2]"});
}

// x = 1..9 in a 3x3 image, w = [[1,2],[3,4]], bias 0.5, "same" (pad 0 before, 1 after):
// out[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1] + 0.5, zero outside.
TEST(Conv2d, TinyConvolutionByHand) {
    const Tensor x({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    const Tensor w({1, 1, 2, 2}, {1, 2, 3, 4});
    const Tensor b({1}, {0.5f});
    const Conv2dSpec same{1, 1, tf_padding(Padding::Same, 3, 3, 2, 2, 1, 1)};
    const std::vector<float> expected = {37.5f, 47.5f, 21.5f, 67.5f, 77.5f,
                                         33.5f, 23.5f, 26.5f, 9.5f};
    for (const Tensor& out : {conv2d_forward(x, w, b, same, Conv2dLowering::im2col),
                              conv2d_forward(x, w, b, same, Conv2dLowering::im2col_loops),
                              conv2d_forward(x, w, b, same, Conv2dLowering::shifted),
                              conv2d_forward(x, w, b, same, Conv2dLowering::winograd),
                              conv2d_forward_naive(x, w, b, same)})
        for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(out[i], expected[i]) << i;

    // dout = 1 everywhere: dbias = 9; dweight[kh][kw] = sum of x over the outputs' taps
    // (all of x, columns 1-2, rows 1-2, the lower-right 2x2); dx[a][b] = sum of the w whose
    // output (a - kh, b - kw) exists. dx starts at 1 to check accumulation.
    const Tensor dout = Tensor::ones({1, 1, 3, 3});
    const std::vector<float> dw_expected = {45, 33, 39, 28};
    const std::vector<float> dx_expected = {2, 4, 4, 5, 11, 11, 5, 11, 11};
    for (int way = 0; way < 5; ++way) {  // naive, then the four lowerings
        Tensor dx = Tensor::ones(x.shape()), dw(w.shape()), db({1});
        const Conv2dLowering lowerings[] = {Conv2dLowering::im2col, Conv2dLowering::im2col_loops,
                                            Conv2dLowering::shifted, Conv2dLowering::winograd};
        if (way == 0)
            conv2d_backward_naive(dout, x, w, same, &dx, &dw, &db);
        else
            conv2d_backward(dout, x, w, same, &dx, &dw, &db, lowerings[way - 1]);
        EXPECT_FLOAT_EQ(db[0], 9.0f);
        for (std::size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(dw[i], dw_expected[i]) << i;
        for (std::size_t i = 0; i < 9; ++i) EXPECT_FLOAT_EQ(dx[i], dx_expected[i]) << i;
    }
}

// A stride-2 valid convolution by hand: x 4x4 = 0..15, w = [[1,-1],[0,2]] picks
// x[2i][2j] - x[2i][2j+1] + 2 x[2i+1][2j+1].
TEST(Conv2d, StrideTwoByHand) {
    std::vector<float> xv(16);
    for (int i = 0; i < 16; ++i) xv[std::size_t(i)] = float(i);
    const Tensor x({1, 1, 4, 4}, xv), w({1, 1, 2, 2}, {1, -1, 0, 2});
    const Tensor out = conv2d_forward(x, w, Tensor(), {2, 2, {}});
    ASSERT_EQ(out.shape(), (Shape{1, 1, 2, 2}));
    // (0 - 1 + 10), (2 - 3 + 14), (8 - 9 + 26), (10 - 11 + 30)
    const std::vector<float> expected = {9, 13, 25, 29};
    for (std::size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(out[i], expected[i]);
}

// im2col + GEMM against the direct loops on random geometries: odd sizes, strides 1-3, valid,
// same and asymmetric explicit padding, with and without bias; backward accumulates into
// non-zero gradients, with every subset of them requested.
TEST(Conv2d, FastMatchesNaiveOnRandomShapes) {
    Rng rng(2024);
    for (int trial = 0; trial < 60; ++trial) {
        const std::size_t N = 1 + rng.below(3), C = 1 + rng.below(4), OC = 1 + rng.below(5);
        const int KH = 1 + int(rng.below(4)), KW = 1 + int(rng.below(4));
        const int H = KH + int(rng.below(9)), W = KW + int(rng.below(9));
        const int sh = 1 + int(rng.below(3)), sw = 1 + int(rng.below(3));
        Conv2dSpec spec{sh, sw, {}};
        const int mode = trial % 3;
        if (mode == 1) spec.pad = tf_padding(Padding::Same, H, W, KH, KW, sh, sw);
        if (mode == 2)
            spec.pad = {int(rng.below(3)), int(rng.below(3)), int(rng.below(3)), int(rng.below(3))};
        const Shape xs{N, C, std::size_t(H), std::size_t(W)};
        const Shape ws{OC, C, std::size_t(KH), std::size_t(KW)};
        SCOPED_TRACE("x " + to_string(xs) + " w " + to_string(ws) + " stride " +
                     std::to_string(sh) + "x" + std::to_string(sw) + " pad " +
                     std::to_string(spec.pad.top) + "," + std::to_string(spec.pad.bottom) + "," +
                     std::to_string(spec.pad.left) + "," + std::to_string(spec.pad.right));
        const Tensor x = random_uniform(xs, rng), w = random_uniform(ws, rng);
        const Tensor b = trial % 2 ? random_uniform({OC}, rng) : Tensor();
        const Tensor dout = random_uniform(conv2d_output_shape(xs, ws, spec), rng);
        const Tensor dx0 = random_uniform(xs, rng), dw0 = random_uniform(ws, rng),
                     db0 = random_uniform({OC}, rng);
        const int which = 1 + trial % 7;  // bit 0 dx, bit 1 dweight, bit 2 dbias
        Tensor rdx = dx0, rdw = dw0, rdb = db0;
        conv2d_backward_naive(dout, x, w, spec, which & 1 ? &rdx : nullptr,
                              which & 2 ? &rdw : nullptr, which & 4 ? &rdb : nullptr);
        // Every lowering (the shifted one runs at stride 1 only).
        for (const Conv2dLowering lowering : {Conv2dLowering::im2col, Conv2dLowering::im2col_loops,
                                              Conv2dLowering::shifted}) {
            if (lowering == Conv2dLowering::shifted && (sh != 1 || sw != 1)) continue;
            SCOPED_TRACE(lowering == Conv2dLowering::im2col         ? "im2col"
                         : lowering == Conv2dLowering::im2col_loops ? "im2col_loops"
                                                                    : "shifted");
            const Tensor out = conv2d_forward(x, w, b, spec, lowering);
            ASSERT_EQ(out.shape(), conv2d_output_shape(xs, ws, spec));
            EXPECT_LT(max_abs_diff(out, conv2d_forward_naive(x, w, b, spec)), 1e-5f);

            Tensor dx = dx0, dw = dw0, db = db0;
            conv2d_backward(dout, x, w, spec, which & 1 ? &dx : nullptr, which & 2 ? &dw : nullptr,
                            which & 4 ? &db : nullptr, lowering);
            EXPECT_LT(max_abs_diff(dx, rdx), 1e-5f);
            EXPECT_LT(max_abs_diff(dw, rdw), 1e-5f);
            EXPECT_LT(max_abs_diff(db, rdb), 1e-5f);
            // Gradients not asked for are left alone.
            if (!(which & 1)) {
                EXPECT_EQ(max_abs_diff(dx, dx0), 0.0f);
            }
            if (!(which & 2)) {
                EXPECT_EQ(max_abs_diff(dw, dw0), 0.0f);
            }
            if (!(which & 4)) {
                EXPECT_EQ(max_abs_diff(db, db0), 0.0f);
            }
        }
    }
}

// Winograd's F(2x2, 2x2) against the direct loops, where its tiling has edges: 2x2 kernels at
// stride 1 on odd and even sizes, valid, same and explicit padding up to 3 on a side (so dout,
// placed at (1 - pt, 1 - pl) for dx, starts outside the plane), 1-12 channels, and more than 8
// tiles in a row (the transforms' vectors run 8 tiles at a time). Each output regroups the
// direct sum's terms, so it stays within a few float roundings of it.
TEST(Conv2d, WinogradMatchesNaiveOnRandomShapes) {
    Rng rng(77);
    for (int trial = 0; trial < 40; ++trial) {
        const std::size_t N = 1 + rng.below(3), C = 1 + rng.below(12), OC = 1 + rng.below(9);
        const int H = 1 + int(rng.below(13)), W = 1 + int(rng.below(21));
        Conv2dSpec spec{1, 1, {}};
        const int mode = trial % 3;
        if (mode == 1) spec.pad = tf_padding(Padding::Same, H, W, 2, 2, 1, 1);
        if (mode == 2)
            spec.pad = {int(rng.below(4)), int(rng.below(4)), int(rng.below(4)), int(rng.below(4))};
        if (H + spec.pad.top + spec.pad.bottom < 2 || W + spec.pad.left + spec.pad.right < 2)
            spec.pad = {1, 1, 1, 1};
        const Shape xs{N, C, std::size_t(H), std::size_t(W)}, ws{OC, C, 2, 2};
        SCOPED_TRACE("x " + to_string(xs) + " w " + to_string(ws) + " pad " +
                     std::to_string(spec.pad.top) + "," + std::to_string(spec.pad.bottom) + "," +
                     std::to_string(spec.pad.left) + "," + std::to_string(spec.pad.right));
        const Tensor x = random_uniform(xs, rng), w = random_uniform(ws, rng),
                     b = random_uniform({OC}, rng);
        const Tensor dout = random_uniform(conv2d_output_shape(xs, ws, spec), rng);
        const Tensor dx0 = random_uniform(xs, rng), dw0 = random_uniform(ws, rng),
                     db0 = random_uniform({OC}, rng);
        Tensor rdx = dx0, rdw = dw0, rdb = db0, dx = dx0, dw = dw0, db = db0;
        conv2d_backward_naive(dout, x, w, spec, &rdx, &rdw, &rdb);
        conv2d_backward(dout, x, w, spec, &dx, &dw, &db, Conv2dLowering::winograd);
        EXPECT_LT(max_abs_diff(conv2d_forward(x, w, b, spec, Conv2dLowering::winograd),
                               conv2d_forward_naive(x, w, b, spec)),
                  1e-5f);
        EXPECT_LT(max_abs_diff(dx, rdx), 1e-5f);
        EXPECT_LT(max_abs_diff(dw, rdw), 2e-5f);  // sums of N*OH*OW products
        EXPECT_LT(max_abs_diff(db, rdb), 1e-5f);
    }
}

// The transforms' AVX2 and AVX-512 variants (conv2d_winograd_*.cpp) give the portable one's
// bits, each called directly: planes whose tile rows take two vector groups (TW = 11) and end in
// a clipped column, 13 planes (the gradient transform's group of 8 and 5 left over), the pad at
// (0, 0), at (1, 1) as the input gradient places it, and at the places explicit paddings give
// (further in, or cut: (2, 3), (-1, -2)) into NaN-filled buffers (every float written), and the
// output transform writing and adding.
TEST(Conv2d, WinogradTransformsSameBitsOnEveryPath) {
    namespace wg = winograd;
    Rng rng(31);
    const int planes = 13, rows = 13, cols = 21;
    const wg::Tiling t = wg::tiling(rows, cols);
    const std::size_t stride = wg::point_stride(planes, t);
    std::vector<float> src(std::size_t(planes) * rows * cols), m(wg::kPoints * stride);
    for (float& v : src) v = rng.uniform(-1.0f, 1.0f);
    for (float& v : m) v = rng.uniform(-1.0f, 1.0f);
    struct Result {
        std::vector<float> padded, shifted, further, cut, u, v, out, added;
    };
    const auto run = [&](Isa isa) {
        const wg::Transforms& tr = wg::transforms(isa);
        const std::vector<float> unwritten(wg::padded_size(planes, t), std::nanf(""));
        Result r{unwritten, unwritten, unwritten, unwritten,
                 std::vector<float>(wg::kPoints * stride), std::vector<float>(wg::kPoints * stride),
                 std::vector<float>(src.size()), src};
        tr.pad(src.data(), planes, rows, cols, 0, 0, t, r.padded.data());
        tr.pad(src.data(), planes, rows, cols, 1, 1, t, r.shifted.data());
        tr.pad(src.data(), planes, rows, cols, 2, 3, t, r.further.data());
        tr.pad(src.data(), planes, rows, cols, -1, -2, t, r.cut.data());
        tr.input(r.padded.data(), planes, t, r.u.data(), stride);
        tr.gradient(r.shifted.data(), planes, t, r.v.data(), stride);
        tr.output(m.data(), stride, planes, t, rows, cols, r.out.data(), false);
        tr.output(m.data(), stride, planes, t, rows, cols, r.added.data(), true);
        return r;
    };
    const Result portable = run(Isa::portable);
    for (const Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!cpu_runs(isa)) continue;
        SCOPED_TRACE(isa_name(isa));
        const Result r = run(isa);
        EXPECT_EQ(r.padded, portable.padded);
        EXPECT_EQ(r.shifted, portable.shifted);
        EXPECT_EQ(r.further, portable.further);
        EXPECT_EQ(r.cut, portable.cut);
        EXPECT_EQ(r.u, portable.u);
        EXPECT_EQ(r.v, portable.v);
        EXPECT_EQ(r.out, portable.out);
        EXPECT_EQ(r.added, portable.added);
    }
}

// One image through each path's plan, forward and backward: the same bits as the portable
// path's where both run their products through OpenBLAS (AVX-512), and within float rounding
// where the path has block_gemm's kernel (AVX2), whose sums are its own.
TEST(Conv2d, WinogradPlanOnEveryPath) {
    Rng rng(31);
    const Tensor x = random_uniform({1, 9, 13, 21}, rng), w = random_uniform({13, 9, 2, 2}, rng);
    const Conv2dSpec spec{1, 1, tf_padding(Padding::Same, 13, 21, 2, 2, 1, 1)};
    const Conv2dGeometry g = conv2d_geometry(x, w, spec);
    const Tensor dout = random_uniform(conv2d_output_shape(x.shape(), w.shape(), spec), rng);
    struct Result {
        std::vector<float> out, dweight, dbias, dx;
    };
    const auto run = [&](Isa isa) {
        const Conv2dPlan plan(g, w.data(), Conv2dLowering::winograd, isa);
        std::vector<float> scratch(plan.scratch_size());
        Result r{std::vector<float>(plan.image_size()), std::vector<float>(plan.weight_size()),
                 std::vector<float>(13, 0.0f), std::vector<float>(x.size(), 0.0f)};
        plan.forward_image(x.data(), r.out.data(), scratch.data());
        plan.backward_image(dout.data(), x.data(), true, r.dweight.data(), r.dbias.data(),
                            r.dx.data(), scratch.data());
        return r;
    };
    const auto close = [](const std::vector<float>& a, const std::vector<float>& b, float tolerance) {
        float worst = 0.0f;
        for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
        return worst <= tolerance;
    };
    const Result portable = run(Isa::portable);
    for (const Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!cpu_runs(isa)) continue;
        SCOPED_TRACE(isa_name(isa));
        const Result r = run(isa);
        const float tolerance = block_gemm::kernel(isa) ? 1e-5f : 0.0f;
        EXPECT_TRUE(close(r.out, portable.out, tolerance));
        EXPECT_TRUE(close(r.dweight, portable.dweight, 2 * tolerance));  // sums of 150 products
        EXPECT_EQ(r.dbias, portable.dbias);
        EXPECT_TRUE(close(r.dx, portable.dx, tolerance));
    }
}

// A gradient as a 2x2 max-pool with stride 2 hands it back: in each window at most one entry
// (a random one) keeps its value, and about half the windows none (ReLU, dropout).
Tensor pooled_gradient(const Shape& shape, Rng& rng) {
    Tensor d = random_uniform(shape, rng);
    const std::size_t H = shape[2], W = shape[3];
    for (std::size_t plane = 0; plane < shape[0] * shape[1]; ++plane)
        for (std::size_t i = 0; i < H; i += 2)
            for (std::size_t j = 0; j < W; j += 2) {
                const std::size_t keep = rng.below(8);  // 0-3: that place of the window; else none
                for (std::size_t k = 0; k < 4; ++k) {
                    const std::size_t h = i + k / 2, w = j + k % 2;
                    if (h < H && w < W && k != keep) d[(plane * H + h) * W + w] = 0.0f;
                }
            }
    return d;
}

// The Winograd lowering's gradients of a pool's gradient (at most a quarter non-zero: its sparse
// gradient, conv2d_scatter.hpp's scatter) against the direct loops, on the shapes and paddings
// of the test above.
TEST(Conv2d, SparseGradientMatchesNaive) {
    Rng rng(78);
    for (int trial = 0; trial < 40; ++trial) {
        const std::size_t N = 1 + rng.below(3), C = 1 + rng.below(20), OC = 1 + rng.below(9);
        const int H = 2 + int(rng.below(13)), W = 2 + int(rng.below(21));
        Conv2dSpec spec{1, 1, {}};
        const int mode = trial % 3;
        if (mode == 1) spec.pad = tf_padding(Padding::Same, H, W, 2, 2, 1, 1);
        if (mode == 2)
            spec.pad = {int(rng.below(4)), int(rng.below(4)), int(rng.below(4)), int(rng.below(4))};
        const Shape xs{N, C, std::size_t(H), std::size_t(W)}, ws{OC, C, 2, 2};
        SCOPED_TRACE("x " + to_string(xs) + " w " + to_string(ws) + " pad " +
                     std::to_string(spec.pad.top) + "," + std::to_string(spec.pad.bottom) + "," +
                     std::to_string(spec.pad.left) + "," + std::to_string(spec.pad.right));
        const Tensor x = random_uniform(xs, rng), w = random_uniform(ws, rng);
        const Tensor dout = pooled_gradient(conv2d_output_shape(xs, ws, spec), rng);
        const Tensor dx0 = random_uniform(xs, rng);
        Tensor rdx = dx0, dx = dx0, rdw(ws), dw(ws), rdb({OC}), db({OC});
        conv2d_backward_naive(dout, x, w, spec, &rdx, &rdw, &rdb);
        conv2d_backward(dout, x, w, spec, &dx, &dw, &db, Conv2dLowering::winograd);
        EXPECT_LT(max_abs_diff(dx, rdx), 1e-5f);
        EXPECT_LT(max_abs_diff(dw, rdw), 2e-5f);
        EXPECT_LT(max_abs_diff(db, rdb), 1e-5f);
    }
}

// The scatter's and the transpose's AVX2 and AVX-512 variants give the portable one's bits, each
// called directly: rows of 1-40 entries (one, two or three vector groups and a tail) with
// other values between them, 1-70 channels (tails of 8 and 16), taps cut at every edge by
// (pt, pl), -0 and NaN entries among the zeros, dw and db added to, and the transpose writing
// and adding. The portable scatter against its sums written out.
TEST(Conv2d, ScatterSameBitsOnEveryPath) {
    Rng rng(79);
    for (int trial = 0; trial < 30; ++trial) {
        const int OC = 1 + int(rng.below(5)), OH = 1 + int(rng.below(9)), OW = 1 + int(rng.below(40));
        const int C = 1 + int(rng.below(70)), pt = int(rng.below(2)), pl = int(rng.below(2));
        const int H = OH + 1 - 2 * pt + int(rng.below(2)), W = OW + 1 - 2 * pl + int(rng.below(2));
        if (H < 1 || W < 1) continue;
        const int pitch = OW + int(rng.below(5));
        const std::size_t plane = std::size_t(OH) * pitch + rng.below(3), HWC = std::size_t(H) * W * C;
        // Between the rows and planes, values no variant may read.
        std::vector<float> dout(OC * plane + 16, 7.0f), taps(std::size_t(OC) * 4 * C), xt(HWC),
            dw0(std::size_t(4) * OC * C), db0(OC);
        for (auto* v : {&taps, &xt, &dw0, &db0})
            for (float& f : *v) f = rng.uniform(-1.0f, 1.0f);
        for (int oc = 0; oc < OC; ++oc)
            for (int y = 0; y < OH; ++y)
                for (int x = 0; x < OW; ++x) {
                    const std::size_t kind = rng.below(12);
                    float& v = dout[oc * plane + std::size_t(y) * pitch + x];
                    v = kind < 2 ? rng.uniform(-1.0f, 1.0f) : kind == 2 ? -0.0f : 0.0f;
                    if (kind == 3 && trial % 5 == 0) v = std::nanf("");
                }
        SCOPED_TRACE("OC " + std::to_string(OC) + " OH " + std::to_string(OH) + " OW " +
                     std::to_string(OW) + " C " + std::to_string(C) + " pad " + std::to_string(pt) +
                     "," + std::to_string(pl));
        // dxt, dw, db, dxt transposed into NaNs and added to 0.5s
        const auto run = [&](Isa isa) {
            const scatter::Kernels k = scatter::kernels(isa);
            std::vector<float> dxt(HWC, std::nanf("")), dw = dw0, db = db0, written(HWC, std::nanf("")),
                added(HWC, 0.5f);
            k.scatter({dout.data(), plane, pitch, OC, OH, OW, C, H, W, pt, pl, taps.data(), xt.data(),
                       dxt.data(), dw.data(), db.data()});
            k.transpose(dxt.data(), H * W, C, written.data(), false);
            k.transpose(dxt.data(), H * W, C, added.data(), true);
            return std::vector<std::vector<float>>{dxt, dw, db, written, added};
        };
        // Bits, NaN included: compare the floats' representations.
        const auto bits = [](const std::vector<std::vector<float>>& r) {
            std::vector<std::uint32_t> b;
            for (const auto& v : r)
                for (float f : v) b.push_back(std::bit_cast<std::uint32_t>(f));
            return b;
        };
        const auto portable = run(Isa::portable);
        for (const Isa isa : {Isa::avx2, Isa::avx512}) {
            if (!cpu_runs(isa)) continue;
            SCOPED_TRACE(isa_name(isa));
            EXPECT_EQ(bits(run(isa)), bits(portable));
        }
        // Every entry's products, zeros included, in the order of the entries.
        std::vector<float> dxt(HWC, 0.0f), dw = dw0, db = db0;
        for (int oc = 0; oc < OC; ++oc)
            for (int y = 0; y < OH; ++y)
                for (int x = 0; x < OW; ++x) {
                    const float g = dout[oc * plane + std::size_t(y) * pitch + x];
                    for (int t = 0; t < 4; ++t) {
                        const int h = y + t / 2 - pt, w = x + t % 2 - pl;
                        if (h < 0 || h >= H || w < 0 || w >= W) continue;
                        const std::size_t at = std::size_t(h * W + w) * C;
                        for (int c = 0; c < C; ++c) {
                            dxt[at + c] += g * taps[(std::size_t(oc) * 4 + t) * C + c];
                            dw[(std::size_t(t) * OC + oc) * C + c] += g * xt[at + c];
                        }
                    }
                    db[oc] += g;
                }
        EXPECT_EQ(bits({portable[0], portable[1], portable[2]}), bits({dxt, dw, db}));
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < H * W; ++p) {
                const float v = dxt[std::size_t(p) * C + c];
                EXPECT_EQ(std::bit_cast<std::uint32_t>(portable[3][std::size_t(c) * H * W + p]),
                          std::bit_cast<std::uint32_t>(v));
                EXPECT_EQ(std::bit_cast<std::uint32_t>(portable[4][std::size_t(c) * H * W + p]),
                          std::bit_cast<std::uint32_t>(0.5f + v));
            }
    }
}

// The reference backward against central differences of the reference forward, for
// L = sum(out * r). Convolution is linear in x, w and b, so the differences are exact up to
// float rounding and a large step is fine.
TEST(Conv2d, NaiveBackwardMatchesFiniteDifferences) {
    Rng rng(9);
    const Conv2dSpec spec{2, 1, {1, 0, 2, 1}};
    Tensor x = random_uniform({2, 2, 5, 4}, rng), w = random_uniform({3, 2, 3, 2}, rng),
           b = random_uniform({3}, rng);
    const Tensor r = random_uniform(conv2d_output_shape(x.shape(), w.shape(), spec), rng);
    const auto loss = [&] {
        const Tensor out = conv2d_forward_naive(x, w, b, spec);
        double s = 0.0;
        for (std::size_t i = 0; i < out.size(); ++i) s += double(out[i]) * r[i];
        return s;
    };
    Tensor dx(x.shape()), dw(w.shape()), db(b.shape());
    conv2d_backward_naive(r, x, w, spec, &dx, &dw, &db);
    const float eps = 0.25f;
    for (auto [t, d] : {std::pair{&x, &dx}, std::pair{&w, &dw}, std::pair{&b, &db}})
        for (std::size_t i = 0; i < t->size(); ++i) {
            const float v = (*t)[i];
            (*t)[i] = v + eps;
            const double up = loss();
            (*t)[i] = v - eps;
            const double down = loss();
            (*t)[i] = v;
            EXPECT_NEAR((up - down) / (2 * eps), (*d)[i], 1e-4) << i;
        }
}

TEST(Conv2d, SameResultWithOneAndTwoThreads) {
    Rng rng(5);
    const Conv2dSpec spec{1, 1, {0, 1, 0, 1}};
    const Tensor x = random_uniform({7, 9, 9, 9}, rng), w = random_uniform({6, 9, 2, 2}, rng),
                 b = random_uniform({6}, rng);
    const Tensor dout = random_uniform({7, 6, 9, 9}, rng);
    for (const Conv2dLowering lowering : {Conv2dLowering::im2col, Conv2dLowering::im2col_loops,
                                          Conv2dLowering::shifted, Conv2dLowering::winograd}) {
        const int before = num_threads();
        Tensor out[2], dx[2], dw[2], db[2];
        for (int t = 0; t < 2; ++t) {
            set_num_threads(t + 1);
            out[t] = conv2d_forward(x, w, b, spec, lowering);
            dx[t] = Tensor(x.shape()), dw[t] = Tensor(w.shape()), db[t] = Tensor(b.shape());
            conv2d_backward(dout, x, w, spec, &dx[t], &dw[t], &db[t], lowering);
        }
        set_num_threads(before);
        EXPECT_EQ(max_abs_diff(out[0], out[1]), 0.0f);
        EXPECT_EQ(max_abs_diff(dx[0], dx[1]), 0.0f);
        EXPECT_EQ(max_abs_diff(dw[0], dw[1]), 0.0f);
        EXPECT_EQ(max_abs_diff(db[0], db[1]), 0.0f);
    }
}

// Which lowering runs: the loops up to K = C*KH*KW = 8 (the tutorial's first conv, C = 1), then
// at stride 1 from 8 channels on winograd for a 2x2 kernel (its second) and shifted for others,
// im2col otherwise; asking for shifted or winograd where they do not apply is an error.
TEST(Conv2d, LoweringChoice) {
    const auto geometry = [](std::size_t C, int stride, std::size_t k = 2) {
        return conv2d_geometry(Tensor({2, C, 14, 14}), Tensor({4, C, k, k}),
                               {stride, stride, {0, int(k) - 1, 0, int(k) - 1}});
    };
    EXPECT_EQ(conv2d_lowering(geometry(64, 1)), Conv2dLowering::winograd);
    EXPECT_EQ(conv2d_lowering(geometry(8, 1)), Conv2dLowering::winograd);
    EXPECT_EQ(conv2d_lowering(geometry(64, 1, 3)), Conv2dLowering::shifted);
    EXPECT_EQ(conv2d_lowering(geometry(8, 1, 3)), Conv2dLowering::shifted);
    EXPECT_EQ(conv2d_lowering(geometry(7, 1)), Conv2dLowering::im2col);
    EXPECT_EQ(conv2d_lowering(geometry(3, 1)), Conv2dLowering::im2col);
    EXPECT_EQ(conv2d_lowering(geometry(2, 1)), Conv2dLowering::im2col_loops);
    EXPECT_EQ(conv2d_lowering(geometry(1, 1)), Conv2dLowering::im2col_loops);
    EXPECT_EQ(conv2d_lowering(geometry(1, 2)), Conv2dLowering::im2col_loops);
    EXPECT_EQ(conv2d_lowering(geometry(64, 2)), Conv2dLowering::im2col);
    const Tensor w({4, 64, 2, 2});
    const Conv2dPlan shifted(geometry(64, 1), w.data(), Conv2dLowering::shifted);
    EXPECT_EQ(shifted.row(), 15);  // 14 columns and one of wrap-around
    EXPECT_EQ(Conv2dPlan(geometry(64, 1), w.data()).row(), 14);  // winograd's: no junk
    expect_throw_naming<ValueError>(
        [&] { Conv2dPlan(geometry(64, 2), w.data(), Conv2dLowering::shifted); },
        {"conv2d", "shifted", "stride 1", "2x2"});
    expect_throw_naming<ValueError>(
        [&] { Conv2dPlan(geometry(64, 2), w.data(), Conv2dLowering::winograd); },
        {"conv2d", "winograd", "2x2 kernel at stride 1", "stride 2x2"});
    const Tensor w3({4, 64, 3, 3});
    expect_throw_naming<ValueError>(
        [&] { Conv2dPlan(geometry(64, 1, 3), w3.data(), Conv2dLowering::winograd); },
        {"conv2d", "winograd", "got 3x3"});
}
