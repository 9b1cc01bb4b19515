#include <gtest/gtest.h>

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"
#include "tensor/random.hpp"

using namespace semigrad;

TEST(Gemm, SmallProductByHand) {
    Tensor a({2, 3}, {1, 2, 3, 4, 5, 6}), b({3, 2}, {7, 8, 9, 10, 11, 12});
    Tensor c = matmul(a, b);
    EXPECT_EQ(c.shape(), (Shape{2, 2}));
    EXPECT_FLOAT_EQ(c.at({0, 0}), 58);
    EXPECT_FLOAT_EQ(c.at({0, 1}), 64);
    EXPECT_FLOAT_EQ(c.at({1, 0}), 139);
    EXPECT_FLOAT_EQ(c.at({1, 1}), 154);
}

// Every transpose combination, odd sizes, alpha and beta, against the triple loop.
TEST(Gemm, MatchesNaiveOnRandomShapes) {
    Rng rng(7);
    for (int trial = 0; trial < 24; ++trial) {
        const int M = 1 + int(rng.below(37)), N = 1 + int(rng.below(41)), K = 1 + int(rng.below(53));
        const bool ta = trial & 1, tb = trial & 2;
        Tensor A = random_uniform(ta ? Shape{std::size_t(K), std::size_t(M)} : Shape{std::size_t(M), std::size_t(K)}, rng);
        Tensor B = random_uniform(tb ? Shape{std::size_t(N), std::size_t(K)} : Shape{std::size_t(K), std::size_t(N)}, rng);
        Tensor C0 = random_uniform({std::size_t(M), std::size_t(N)}, rng), C1 = C0;
        const float alpha = 0.5f + rng.uniform(), beta = (trial % 3) * 0.5f;
        gemm(ta, tb, M, N, K, alpha, A.data(), int(A.dim(1)), B.data(), int(B.dim(1)), beta, C0.data(), N);
        gemm_naive(ta, tb, M, N, K, alpha, A.data(), int(A.dim(1)), B.data(), int(B.dim(1)), beta, C1.data(), N);
        EXPECT_LT(max_abs_diff(C0, C1), 1e-4f) << "M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb;
    }
}

TEST(Gemm, MatmulShapeErrorNamesBothShapes) {
    try {
        (void)matmul(Tensor({2, 3}), Tensor({4, 5}));
        FAIL();
    } catch (const ShapeError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("[2,3]"), std::string::npos) << m;
        EXPECT_NE(m.find("[4,5]"), std::string::npos) << m;
    }
    EXPECT_THROW((void)matmul(Tensor({2, 3, 1}), Tensor({3, 2})), ShapeError);
}
