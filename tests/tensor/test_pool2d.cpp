// Tests of tensor/pool2d.cpp: shapes and errors, a small pooling by hand, argmax routing, ties,
// same padding, the fast kernel against the reference on random shapes, finite differences,
// and thread-count independence.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/pool2d.hpp"
#include "tensor/random.hpp"

using namespace semigrad;

namespace {

// Distinct values k * 0.01 in random places, so every window has a unique max that moves by
// no more than 0.01 when any one element moves by less than 0.005.
Tensor distinct_tensor(const Shape& shape, Rng& rng) {
    Tensor t(shape);
    const auto order = rng.permutation(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = 0.01f * float(order[i]) - 1.0f;
    return t;
}

}  // namespace

TEST(MaxPool2dShape, TutorialAndPaddedShapes) {
    EXPECT_EQ(max_pool2d_output_shape({32, 64, 28, 28}, {}), (Shape{32, 64, 14, 14}));
    EXPECT_EQ(max_pool2d_output_shape({32, 32, 14, 14}, {}), (Shape{32, 32, 7, 7}));
    // 7x7, pool 2, stride 2, "same": pads 0 before, 1 after -> 4x4.
    Pool2dSpec same{};
    same.pad = tf_padding(Padding::Same, 7, 7, 2, 2, 2, 2);
    EXPECT_EQ(max_pool2d_output_shape({1, 1, 7, 7}, same), (Shape{1, 1, 4, 4}));
    // pool 3x2, stride 1x3, valid: (5 - 3) / 1 + 1 = 3, (8 - 2) / 3 + 1 = 3.
    EXPECT_EQ(max_pool2d_output_shape({2, 3, 5, 8}, {3, 2, 1, 3, {}}), (Shape{2, 3, 3, 3}));
}

TEST(MaxPool2dShape, ErrorsNameOpAndShape) {
    const auto expect_message = [](auto f, const std::string& a, const std::string& b) {
        try {
            f();
            ADD_FAILURE() << "no exception";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(a), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(b), std::string::npos) << e.what();
        }
    };
    EXPECT_THROW(max_pool2d_output_shape({1, 28, 28}, {}), ShapeError);
    expect_message([] { max_pool2d_output_shape({1, 28, 28}, {}); }, "max_pool2d", "[1,28,28]");
    EXPECT_THROW(max_pool2d_output_shape({1, 1, 1, 4}, {}), ShapeError);
    expect_message([] { max_pool2d_output_shape({1, 1, 1, 4}, {}); }, "max_pool2d", "[1,1,1,4]");
    EXPECT_THROW(max_pool2d_output_shape({1, 1, 4, 4}, {2, 2, 0, 2, {}}), ValueError);
    EXPECT_THROW(max_pool2d_output_shape({1, 1, 4, 4}, {2, 2, 2, 2, {2, 0, 0, 0}}), ValueError);

    std::vector<std::int64_t> argmax(4, 0);
    Tensor dx({1, 1, 4, 4});
    expect_message([&] { max_pool2d_backward(Tensor({1, 1, 3, 3}), argmax, dx); }, "[1,1,3,3]",
                   "[1,1,4,4]");
    EXPECT_THROW(max_pool2d_backward(Tensor({1, 2, 2, 2}), std::vector<std::int64_t>(8, 0), dx),
                 ShapeError);
    // An argmax pointing outside its own plane is rejected, not scattered.
    Tensor dx2({1, 2, 2, 2});
    EXPECT_THROW(max_pool2d_backward(Tensor({1, 2, 1, 1}), {0, 1}, dx2), ValueError);
}

// x 4x4 (values below), pool 2, stride 2:
//   3 1 | 0 2      max 3 at (0,0), 5 at (1,3)
//   0 2 | 4 5
//   ----+----
//   7 6 | 1 1      max 7 at (2,0), 9 at (3,2)
//   0 7 | 9 8
TEST(MaxPool2d, SmallPoolingByHandAndBackwardRouting) {
    const Tensor x({1, 1, 4, 4}, {3, 1, 0, 2, 0, 2, 4, 5, 7, 6, 1, 1, 0, 7, 9, 8});
    std::vector<std::int64_t> argmax;
    const Tensor out = max_pool2d_forward(x, {}, argmax);
    ASSERT_EQ(out.shape(), (Shape{1, 1, 2, 2}));
    const std::vector<float> expected = {3, 5, 7, 9};
    const std::vector<std::int64_t> expected_argmax = {0, 7, 8, 14};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(out[i], expected[i]);
        EXPECT_EQ(argmax[i], expected_argmax[i]);
    }
    EXPECT_EQ(max_abs_diff(out, max_pool2d_forward_naive(x, {})), 0.0f);

    Tensor dx = Tensor::ones(x.shape());  // backward accumulates
    max_pool2d_backward(Tensor({1, 1, 2, 2}, {10, 20, 30, 40}), argmax, dx);
    for (std::size_t i = 0; i < 16; ++i) {
        const float routed = i == 0 ? 10 : i == 7 ? 20 : i == 8 ? 30 : i == 14 ? 40 : 0;
        EXPECT_EQ(dx[i], 1 + routed) << i;
    }
}

// The first maximum in row-major order of the window wins, so a tie sends the whole gradient to
// one element, never splits it.
TEST(MaxPool2d, TiesGoToTheFirstElement) {
    const Tensor x({1, 1, 2, 4}, {5, 5, 0, 1, 5, 5, 1, 1});
    std::vector<std::int64_t> argmax;
    max_pool2d_forward(x, {}, argmax);
    EXPECT_EQ(argmax[0], 0);
    EXPECT_EQ(argmax[1], 3);  // 1 at (0,3) before 1 at (1,2) and (1,3)
    Tensor dx(x.shape());
    max_pool2d_backward(Tensor({1, 1, 1, 2}, {4, 6}), argmax, dx);
    const std::vector<float> expected = {4, 0, 0, 6, 0, 0, 0, 0};
    for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(dx[i], expected[i]) << i;
}

// Overlapping windows (pool 2, stride 1) that share their max both route to it, and the two
// contributions add up.
TEST(MaxPool2d, OverlappingWindowsAccumulateIntoASharedMax) {
    const Tensor x({1, 1, 2, 4}, {1, 9, 0, 2, 0, 3, 1, 1});
    std::vector<std::int64_t> argmax;
    const Tensor out = max_pool2d_forward(x, {2, 2, 1, 1, {}}, argmax);
    ASSERT_EQ(out.shape(), (Shape{1, 1, 1, 3}));
    EXPECT_EQ(argmax, (std::vector<std::int64_t>{1, 1, 3}));
    Tensor dx(x.shape());
    max_pool2d_backward(Tensor({1, 1, 1, 3}, {0.5f, 0.25f, 2.0f}), argmax, dx);
    const std::vector<float> expected = {0, 0.75f, 0, 2, 0, 0, 0, 0};
    for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(dx[i], expected[i]) << i;
}

// Padded positions never win, even when every real value in the window is negative.
TEST(MaxPool2d, SamePaddingNeverPicksThePadding) {
    Tensor x({1, 1, 3, 3});
    for (std::size_t i = 0; i < 9; ++i) x[i] = -1.0f - float(i);
    Pool2dSpec same{};
    same.pad = tf_padding(Padding::Same, 3, 3, 2, 2, 2, 2);  // 0 before, 1 after
    std::vector<std::int64_t> argmax;
    const Tensor out = max_pool2d_forward(x, same, argmax);
    ASSERT_EQ(out.shape(), (Shape{1, 1, 2, 2}));
    // Windows {0,1,3,4}, {2,5}, {6,7}, {8}: the max is the smallest index.
    const std::vector<std::int64_t> expected_argmax = {0, 2, 6, 8};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(argmax[i], expected_argmax[i]);
        EXPECT_EQ(out[i], x[std::size_t(expected_argmax[i])]);
    }
    EXPECT_EQ(max_abs_diff(out, max_pool2d_forward_naive(x, same)), 0.0f);
}

// A random pooling (1..3 in each direction, pool and stride independent, so windows may
// overlap or skip) over a random input at least one window large; SAME padding if asked.
static std::pair<Pool2dSpec, Shape> random_pool_case(Rng& rng, bool same_padding) {
    Pool2dSpec spec{1 + int(rng.below(3)), 1 + int(rng.below(3)), 1 + int(rng.below(3)),
                    1 + int(rng.below(3)), {}};
    const int H = spec.pool_h + int(rng.below(8)), W = spec.pool_w + int(rng.below(8));
    if (same_padding)
        spec.pad = tf_padding(Padding::Same, H, W, spec.pool_h, spec.pool_w, spec.stride_h, spec.stride_w);
    return {spec, Shape{1 + rng.below(3), 1 + rng.below(4), std::size_t(H), std::size_t(W)}};
}

TEST(MaxPool2d, FastMatchesNaiveOnRandomShapes) {
    Rng rng(77);
    for (int trial = 0; trial < 60; ++trial) {
        const auto [spec, xs] = random_pool_case(rng, trial % 2 == 1);
        SCOPED_TRACE("x " + to_string(xs) + " pool " + std::to_string(spec.pool_h) + "x" +
                     std::to_string(spec.pool_w) + " stride " + std::to_string(spec.stride_h) +
                     "x" + std::to_string(spec.stride_w));
        const Tensor x = random_uniform(xs, rng);
        std::vector<std::int64_t> argmax;
        const Tensor out = max_pool2d_forward(x, spec, argmax);
        EXPECT_EQ(max_abs_diff(out, max_pool2d_forward_naive(x, spec)), 0.0f);
        ASSERT_EQ(argmax.size(), out.size());
        for (std::size_t i = 0; i < out.size(); ++i)
            ASSERT_EQ(x[std::size_t(argmax[i])], out[i]) << "argmax does not hold the max at " << i;
    }
}

// The fast backward (scatter through the recorded argmax) against the naive one (each window's
// first maximum found again), bit for bit: random shapes, strides smaller than the pool
// (overlapping windows share a maximum and add), SAME padding, and ties (values from {0,1,2}),
// which both must send to the window's first maximum.
TEST(MaxPool2d, BackwardMatchesNaiveOnRandomShapesWithTies) {
    Rng rng(78);
    for (int trial = 0; trial < 60; ++trial) {
        const auto [spec, xs] = random_pool_case(rng, trial % 2 == 1);
        SCOPED_TRACE("trial " + std::to_string(trial) + " x " + to_string(xs));
        Tensor x = random_uniform(xs, rng);
        if (trial % 3 == 0)
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(rng.below(3));
        std::vector<std::int64_t> argmax;
        const Tensor out = max_pool2d_forward(x, spec, argmax);
        const Tensor dout = random_uniform(out.shape(), rng);
        Tensor dx(x.shape());
        max_pool2d_backward(dout, argmax, dx);
        EXPECT_EQ(max_abs_diff(dx, max_pool2d_backward_naive(x, spec, dout)), 0.0f);
    }
}

// dx against central differences of the reference forward, for L = sum(out * r), on distinct
// values (away from the kinks where two window elements tie).
TEST(MaxPool2d, BackwardMatchesFiniteDifferences) {
    Rng rng(3);
    const Pool2dSpec spec{3, 2, 2, 1, {1, 1, 0, 1}};
    Tensor x = distinct_tensor({2, 2, 5, 4}, rng);
    std::vector<std::int64_t> argmax;
    const Tensor out = max_pool2d_forward(x, spec, argmax);
    const Tensor r = random_uniform(out.shape(), rng);
    Tensor dx(x.shape());
    max_pool2d_backward(r, argmax, dx);
    const auto loss = [&] {
        const Tensor o = max_pool2d_forward_naive(x, spec);
        double s = 0.0;
        for (std::size_t i = 0; i < o.size(); ++i) s += double(o[i]) * r[i];
        return s;
    };
    const float eps = 1e-3f;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float v = x[i];
        x[i] = v + eps;
        const double up = loss();
        x[i] = v - eps;
        const double down = loss();
        x[i] = v;
        EXPECT_NEAR((up - down) / (2 * eps), dx[i], 2e-3) << i;
    }
}

TEST(MaxPool2d, SameResultWithOneAndTwoThreads) {
    Rng rng(8);
    const Tensor x = random_uniform({3, 5, 9, 8}, rng);
    const Pool2dSpec spec{3, 3, 2, 2, {1, 1, 1, 0}};
    const Tensor dout = random_uniform(max_pool2d_output_shape(x.shape(), spec), rng);
    const int before = num_threads();
    Tensor out[2], dx[2];
    std::vector<std::int64_t> argmax[2];
    for (int t = 0; t < 2; ++t) {
        set_num_threads(t + 1);
        out[t] = max_pool2d_forward(x, spec, argmax[t]);
        dx[t] = Tensor(x.shape());
        max_pool2d_backward(dout, argmax[t], dx[t]);
    }
    set_num_threads(before);
    EXPECT_EQ(max_abs_diff(out[0], out[1]), 0.0f);
    EXPECT_EQ(argmax[0], argmax[1]);
    EXPECT_EQ(max_abs_diff(dx[0], dx[1]), 0.0f);
}
