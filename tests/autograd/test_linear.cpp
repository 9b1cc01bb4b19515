// Tests of autograd/linear.cpp: matmul, dense (Keras kernel layout [in, units]) and bias_add,
// against hand-worked numbers, the naive GEMM and finite differences.
#include <gtest/gtest.h>

#include <string>

#include "autograd/functions.hpp"
#include "helpers.hpp"
#include "tensor/error.hpp"
#include "tensor/gemm.hpp"

using namespace semigrad;
using namespace semigrad::testing;

TEST(Matmul, HandWorked) {
    // [[1,2,3],[4,5,6]] @ [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
    Var a(Tensor({2, 3}, {1, 2, 3, 4, 5, 6}), true), b(Tensor({3, 2}, {1, 0, 0, 1, 1, 1}), true);
    const Var c = matmul(a, b);
    EXPECT_EQ(c.shape(), (Shape{2, 2}));
    expect_values(c.value(), {4, 5, 10, 11});
    // d(sum C)/dA = ones · Bᵀ (row sums of B), d(sum C)/dB = Aᵀ · ones (column sums of A).
    backward(sum(c));
    expect_values(a.grad(), {1, 1, 2, 1, 1, 2});
    expect_values(b.grad(), {5, 5, 7, 7, 9, 9});
}

TEST(Dense, HandWorkedWithKerasLayout) {
    // x [1,2] · kernel [2,3] + bias [3]
    const Var x(Tensor({1, 2}, {1, 2})), kernel(Tensor({2, 3}, {1, 2, 3, 4, 5, 6}));
    const Var bias(Tensor({3}, {0.5f, -1, 0}));
    expect_values(dense(x, kernel, bias).value(), {9.5f, 11, 15});
    expect_values(dense(x, kernel).value(), {9, 12, 15});
}

TEST(Dense, MatchesNaiveGemmOnOddSizes) {
    Rng rng(3);
    for (auto [N, D, U] : {std::tuple{1, 1, 1}, {7, 13, 5}, {33, 65, 17}}) {
        const Var x(random_tensor({std::size_t(N), std::size_t(D)}, rng));
        const Var kernel(random_tensor({std::size_t(D), std::size_t(U)}, rng));
        const Var bias(random_tensor({std::size_t(U)}, rng));
        Tensor expected({std::size_t(N), std::size_t(U)});
        for (int n = 0; n < N; ++n)
            for (int u = 0; u < U; ++u) expected[n * U + u] = bias.value()[u];
        gemm_naive(false, false, N, U, D, 1.0f, x.value().data(), D, kernel.value().data(), U,
                   1.0f, expected.data(), U);
        EXPECT_LT(max_abs_diff(dense(x, kernel, bias).value(), expected), 1e-5f)
            << N << "x" << D << "x" << U;
    }
}

TEST(Linear, Gradcheck) {
    Rng rng(4);
    const Tensor a = random_tensor({3, 5}, rng), b = random_tensor({5, 4}, rng);
    expect_gradcheck([](const auto& v) { return matmul(v[0], v[1]); }, {a, b});
    const Tensor bias = random_tensor({4}, rng);
    expect_gradcheck([](const auto& v) { return dense(v[0], v[1], v[2]); }, {a, b, bias});
    expect_gradcheck([](const auto& v) { return dense(v[0], v[1]); }, {a, b});
    const Tensor x2 = random_tensor({3, 4}, rng);
    expect_gradcheck([](const auto& v) { return bias_add(v[0], v[1]); }, {x2, bias});
    const Tensor x4 = random_tensor({2, 4, 3, 5}, rng);
    expect_gradcheck([](const auto& v) { return bias_add(v[0], v[1]); }, {x4, bias});
}

// Dense on an input mostly zeros (ReLU'd, dropped) takes tensor/sparse_gemm.hpp's products on
// the paths that have them: the same values and gradients as the dense products within rounding,
// and the gradients against finite differences.
TEST(Dense, SparseInputMatchesNaiveAndGradcheck) {
    Rng rng(6);
    Tensor x = random_tensor({9, 70}, rng);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (i % 3 != 0) x[i] = 0.0f;  // a third non-zero
    const Tensor kernel = random_tensor({70, 67}, rng), bias = random_tensor({67}, rng);
    Tensor expected({9, 67});
    for (int n = 0; n < 9; ++n)
        for (int u = 0; u < 67; ++u) expected[n * 67 + u] = bias[u];
    gemm_naive(false, false, 9, 67, 70, 1.0f, x.data(), 70, kernel.data(), 67, 1.0f, expected.data(), 67);
    Var vx(x, true), vk(kernel, true), vb(bias, true);
    const Var y = dense(vx, vk, vb);
    EXPECT_LT(max_abs_diff(y.value(), expected), 1e-5f);
    const Tensor r = random_tensor({9, 67}, rng);
    backward(sum(mul(y, Var(r))));
    Tensor dk({70, 67});
    gemm_naive(true, false, 70, 67, 9, 1.0f, x.data(), 70, r.data(), 67, 0.0f, dk.data(), 67);
    EXPECT_LT(max_abs_diff(vk.grad(), dk), 1e-5f);
    // Finite differences move x off zero only where it is non-zero: the input stays sparse.
    Tensor small_x = random_tensor({3, 8}, rng);
    for (std::size_t i = 0; i < small_x.size(); ++i)
        if (i % 2 != 0) small_x[i] = 0.0f;
    expect_gradcheck([](const auto& v) { return dense(v[0], v[1], v[2]); },
                     {small_x, random_tensor({8, 5}, rng), random_tensor({5}, rng)});
}

TEST(BiasAdd, BroadcastsOverAxisOneAndSumsTheRestBack) {
    // x [2,2,1,2] (N, C, H, W), bias [2].
    Var x(Tensor({2, 2, 1, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), true), bias(Tensor({2}, {10, 100}), true);
    const Var y = bias_add(x, bias);
    expect_values(y.value(), {11, 12, 103, 104, 15, 16, 107, 108});
    // Weight each element by its index: dbias[c] = Σ over n, h, w of those weights.
    backward(sum(mul(y, Var(Tensor({2, 2, 1, 2}, {0, 1, 2, 3, 4, 5, 6, 7})))));
    expect_values(bias.grad(), {0 + 1 + 4 + 5, 2 + 3 + 6 + 7});
    expect_values(x.grad(), {0, 1, 2, 3, 4, 5, 6, 7});
    // Rank 2.
    expect_values(bias_add(Var(Tensor({2, 2}, {1, 2, 3, 4})), bias).value(), {11, 102, 13, 104});
}

TEST(BiasAdd, LargeInputUsesTheParallelPath) {
    Rng rng(5);
    Var x(random_tensor({4, 8, 32, 32}, rng), true), bias(random_tensor({8}, rng), true);
    backward(sum(bias_add(x, bias)));
    for (std::size_t c = 0; c < 8; ++c) EXPECT_NEAR(bias.grad()[c], 4 * 32 * 32, 1e-3f);
    EXPECT_EQ(x.grad()[12345], 1.0f);
}

TEST(Linear, ConstantsGetNoGradient) {
    Var x(Tensor({1, 2}, {1, 2}), true);
    const Var kernel(Tensor({2, 2}, {1, 2, 3, 4})), bias(Tensor({2}, {0, 0}));
    backward(sum(dense(x, kernel, bias)));
    expect_values(x.grad(), {3, 7});
    EXPECT_FALSE(kernel.has_grad());
    EXPECT_FALSE(bias.has_grad());
}

static void expect_shape_error(const std::function<void()>& f, const std::string& op,
                               const std::string& s1, const std::string& s2) {
    try {
        f();
        FAIL() << "no ShapeError from " << op;
    } catch (const ShapeError& e) {
        const std::string m = e.what();
        EXPECT_EQ(m.rfind(op + ":", 0), 0u) << m;
        EXPECT_NE(m.find(s1), std::string::npos) << m;
        EXPECT_NE(m.find(s2), std::string::npos) << m;
    }
}

TEST(Linear, ShapeErrorsNameTheOpAndShapes) {
    const Var a(Tensor({2, 3})), b(Tensor({2, 3})), v(Tensor({3}));
    expect_shape_error([&] { matmul(a, b); }, "matmul", "[2,3]", "[2,3]");
    expect_shape_error([&] { matmul(a, v); }, "matmul", "[2,3]", "[3]");
    expect_shape_error([&] { dense(a, b); }, "dense", "[2,3]", "[2,3]");
    expect_shape_error([&] { dense(a, Var(Tensor({3, 4})), v); }, "dense", "[3,4]", "[3]");
    expect_shape_error([&] { bias_add(a, Var(Tensor({2}))); }, "bias_add", "[2,3]", "[2]");
    expect_shape_error([&] { bias_add(Var(Tensor({2, 3, 4})), v); }, "bias_add", "[2,3,4]", "[3]");
}
