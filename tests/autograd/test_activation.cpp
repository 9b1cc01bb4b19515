// Tests of autograd/activation.cpp: relu (derivative 0 at 0, as TF) and l2_normalize (as
// tf.math.l2_normalize(axis=1), both branches of its clamp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/functions.hpp"
#include "helpers.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::testing;

TEST(Relu, ValuesAndDerivativeZeroAtZero) {
    Var x(Tensor({5}, {-2, -0.0f, 0, 0.5f, 3}), true);
    const Var y = relu(x);
    expect_values(y.value(), {0, 0, 0, 0.5f, 3});
    backward(sum(scale(y, 2.0f)));
    expect_values(x.grad(), {0, 0, 0, 2, 2});
}

TEST(Relu, Gradcheck) {
    Rng rng(6);
    expect_gradcheck([](const auto& v) { return relu(v[0]); }, {away_from_zero({4, 3, 2}, rng)});
    // Large enough for the parallel loop.
    const Tensor big = away_from_zero({40000}, rng);
    Var x(big, true);
    backward(sum(relu(x)));
    for (std::size_t i = 0; i < big.size(); ++i) ASSERT_EQ(x.grad()[i], big[i] > 0 ? 1.0f : 0.0f);
}

// The first gradient to reach x is written, later ones are added (autograd/var.hpp): x used
// twice, small and above the parallel threshold.
TEST(Relu, InputUsedTwiceAddsBothGradients) {
    Rng rng(7);
    for (std::size_t n : {6, 40000}) {
        const Tensor t = away_from_zero({n}, rng);
        Var x(t, true);
        backward(sum(add(relu(x), scale(relu(x), 3.0f))));
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(x.grad()[i], t[i] > 0 ? 4.0f : 0.0f) << "n=" << n << " i=" << i;
    }
}

TEST(L2Normalize, RowsBecomeUnitVectors) {
    const Var x(Tensor({3, 2}, {3, 4, -6, 8, 0, 0}));
    const Var y = l2_normalize(x);
    // A zero row stays zero: 0 * rsqrt(epsilon).
    expect_values(y.value(), {0.6f, 0.8f, -0.6f, 0.8f, 0, 0});
}

TEST(L2Normalize, HandWorkedGradient) {
    // x = [3, 4], y = [0.6, 0.8], dy = [1, 0]: y·dy = 0.6, dx = (dy - 0.6 y) / 5 = [0.128, -0.096].
    Var x(Tensor({1, 2}, {3, 4}), true);
    backward(l2_normalize(x), Tensor({1, 2}, {1, 0}));
    expect_values(x.grad(), {0.128f, -0.096f});
}

TEST(L2Normalize, ClampedRowsAreScaledByRsqrtEpsilon) {
    // Σx² = 0.02 < ε = 0.5: y = x / sqrt(0.5) and dx = dy / sqrt(0.5).
    Var x(Tensor({1, 2}, {0.1f, -0.1f}), true);
    const Var y = l2_normalize(x, 0.5f);
    const float r = 1.0f / std::sqrt(0.5f);
    expect_values(y.value(), {0.1f * r, -0.1f * r});
    backward(y, Tensor({1, 2}, {1, 2}));
    expect_values(x.grad(), {r, 2 * r});
}

TEST(L2Normalize, Gradcheck) {
    Rng rng(7);
    expect_gradcheck([](const auto& v) { return l2_normalize(v[0]); }, {random_tensor({4, 6}, rng)});
    // The clamped branch, with rows well inside the clamp (Σx² ≤ 0.16 < ε = 1).
    expect_gradcheck([](const auto& v) { return l2_normalize(v[0], 1.0f); },
                     {random_tensor({3, 4}, rng, -0.2f, 0.2f)});
}

TEST(L2Normalize, ParallelRowsMatchRowByRow) {
    // [64, 600] = 38400 elements takes the parallel loops; a single [1, 600] row does not.
    Rng rng(8);
    const std::size_t N = 64, D = 600;
    Var x(random_tensor({N, D}, rng), true);
    const Tensor dy = random_tensor({N, D}, rng);
    const Var y = l2_normalize(x);
    backward(y, dy);
    for (std::size_t n = 0; n < N; ++n) {
        Tensor row({1, D}), drow({1, D});
        std::copy(x.value().data() + n * D, x.value().data() + (n + 1) * D, row.data());
        std::copy(dy.data() + n * D, dy.data() + (n + 1) * D, drow.data());
        Var xr(row, true);
        const Var yr = l2_normalize(xr);
        backward(yr, drow);
        for (std::size_t j = 0; j < D; ++j) {
            ASSERT_EQ(y.value()[n * D + j], yr.value()[j]) << n << "," << j;
            ASSERT_EQ(x.grad()[n * D + j], xr.grad()[j]) << n << "," << j;
        }
    }
}

TEST(L2Normalize, Errors) {
    EXPECT_THROW(l2_normalize(Var(Tensor({2, 3, 4}))), ShapeError);
    EXPECT_THROW(l2_normalize(Var(Tensor({6}))), ShapeError);
    EXPECT_THROW(l2_normalize(Var(Tensor({2, 3})), 0.0f), ValueError);
}
