#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tensor/block_gemm.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/error.hpp"
#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/simd.hpp"
#include "tensor/small_gemm.hpp"
#include "tensor/sparse_gemm.hpp"

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

// gemm_split against the naive product, split by rows (M >= N) and by columns, with sizes that
// are not multiples of its 16-wide blocks, every transpose, beta 0 and 1, on 1 and 2 threads,
// and below its size threshold (one plain call).
TEST(Gemm, SplitMatchesNaive) {
    Rng rng(11);
    const int before = num_threads();
    struct Case {
        int M, N, K;
    };
    for (const Case c : {Case{1568, 256, 32}, Case{32, 1568, 256}, Case{203, 97, 77}, Case{33, 700, 61},
                         Case{5, 7, 3}})
        for (int flags = 0; flags < 8; ++flags)
            for (int threads = 1; threads <= 2; ++threads) {
                set_num_threads(threads);
                const bool ta = flags & 1, tb = flags & 2;
                const float beta = flags & 4 ? 1.0f : 0.0f;
                const auto shape = [](bool t, int r, int k) {
                    return t ? Shape{std::size_t(k), std::size_t(r)} : Shape{std::size_t(r), std::size_t(k)};
                };
                const Tensor A = random_uniform(shape(ta, c.M, c.K), rng),
                             B = random_uniform(shape(!tb, c.N, c.K), rng);
                Tensor C = random_uniform({std::size_t(c.M), std::size_t(c.N)}, rng), R = C;
                gemm_split(ta, tb, c.M, c.N, c.K, 0.5f, A.data(), int(A.dim(1)), B.data(),
                           int(B.dim(1)), beta, C.data(), c.N);
                gemm_naive(ta, tb, c.M, c.N, c.K, 0.5f, A.data(), int(A.dim(1)), B.data(),
                           int(B.dim(1)), beta, R.data(), c.N);
                EXPECT_LT(max_abs_diff(C, R), 1e-4f) << c.M << "x" << c.N << "x" << c.K << " ta "
                                                     << ta << " tb " << tb << " beta " << beta
                                                     << " threads " << threads;
            }
    set_num_threads(before);
}

// gemm where OpenBLAS's small-matrix kernels make it cut a product into slices (SkylakeX and
// Cooperlake cores; elsewhere one call): the Dense layer's three products, and uneven ones whose
// last slice is shorter, every operand inside wider rows (lda, ldb, ldc past its columns, which
// must stay untouched), beta 0 and 1, against the naive product.
TEST(Gemm, SlicedProductsMatchNaive) {
    Rng rng(13);
    struct Case {
        int M, N, K;
        bool ta, tb;
    };
    for (const Case c : {Case{32, 256, 1568, false, false}, Case{1568, 256, 32, true, false},
                         Case{32, 1568, 256, false, true}, Case{33, 257, 1601, false, false},
                         Case{1601, 250, 33, true, false}, Case{20, 40, 1500, false, false},
                         Case{33, 1601, 250, false, true}, Case{100, 700, 40, false, true}})
        for (const float beta : {0.0f, 1.0f}) {
            const int pad = 3;  // floats past each row's end
            const int a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
            const int b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
            const int lda = a_cols + pad, ldb = b_cols + pad, ldc = c.N + pad;
            std::vector<float> A(std::size_t(a_rows) * lda), B(std::size_t(b_rows) * ldb),
                C(std::size_t(c.M) * ldc);
            for (float& v : A) v = rng.uniform(-1.0f, 1.0f);
            for (float& v : B) v = rng.uniform(-1.0f, 1.0f);
            for (float& v : C) v = rng.uniform(-1.0f, 1.0f);
            std::vector<float> R = C;
            gemm(c.ta, c.tb, c.M, c.N, c.K, 0.5f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
            gemm_naive(c.ta, c.tb, c.M, c.N, c.K, 0.5f, A.data(), lda, B.data(), ldb, beta,
                       R.data(), ldc);
            float worst = 0.0f;
            for (std::size_t i = 0; i < C.size(); ++i) {
                if (int(i % ldc) >= c.N) {
                    ASSERT_EQ(C[i], R[i]) << "outside C's columns, at " << i;
                }
                worst = std::max(worst, std::abs(C[i] - R[i]));
            }
            EXPECT_LT(worst, 2e-4f) << c.M << "x" << c.N << "x" << c.K << " ta " << c.ta << " tb "
                                    << c.tb << " beta " << beta;
        }
}

// block_gemm's kernels against the naive product: every row count of the 6-row blocks' rest
// (M = 1..13), every column tail (N = 1..40: 16-column blocks, then 8 or a masked vector),
// K from 0, A as stored or transposed (strides (K, 1) and (1, M)), = and +=, and operands inside
// wider rows (ldb, ldc past N) whose other columns must stay untouched.
TEST(BlockGemm, MatchesNaiveOnEveryBlockShapeAndTail) {
    int ran = 0;
    for (const Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
        const block_gemm::Fn kernel = block_gemm::kernel(isa);
        if (!kernel || !cpu_runs(isa)) continue;
        ++ran;
        SCOPED_TRACE(isa_name(isa));
        Rng rng(11);
        for (int M = 1; M <= 13; ++M)
            for (int N = 1; N <= 40; ++N) {
                const int K = int(rng.below(70)), ldb = N + int(rng.below(3)), ldc = N + 2;
                const bool transposed = rng.below(2), accumulate = rng.below(2);
                std::vector<float> a(std::size_t(M) * K + 1), b(std::size_t(K) * ldb + 1);
                for (float& v : a) v = rng.uniform(-1.0f, 1.0f);
                for (float& v : b) v = rng.uniform(-1.0f, 1.0f);
                std::vector<float> c(std::size_t(M) * ldc);
                for (float& v : c) v = rng.uniform(-1.0f, 1.0f);
                std::vector<float> want = c;
                // a as [M, K] (row stride K) or as the transpose of [K, M] (column stride M).
                gemm_naive(transposed, false, M, N, K, 1.0f, a.data(), transposed ? M : K, b.data(), ldb,
                           accumulate ? 1.0f : 0.0f, want.data(), ldc);
                kernel(M, N, K, a.data(), transposed ? 1 : K, transposed ? M : 1, b.data(), ldb,
                       accumulate, c.data(), ldc);
                for (int i = 0; i < M; ++i)
                    for (int j = 0; j < ldc; ++j) {
                        const std::size_t at = std::size_t(i) * ldc + j;
                        if (j >= N)  // past C's columns: untouched, as the naive product leaves them
                            ASSERT_EQ(c[at], want[at]) << "M=" << M << " N=" << N << " (" << i << "," << j << ")";
                        else
                            ASSERT_NEAR(c[at], want[at], 1e-5f * (K + 1))
                                << "M=" << M << " N=" << N << " K=" << K << " transposed=" << transposed
                                << " accumulate=" << accumulate << " (" << i << "," << j << ")";
                    }
            }
    }
    if (ran == 0) GTEST_SKIP() << "no block_gemm kernel for this CPU";
}

// The short column tails that go by rows of C (A's columns contiguous) give the bits of the same
// product with A's rows contiguous, which goes in blocks: the sums run k = 0..K-1 either way.
// Up to 64 rows and past (M = 70, two groups), N = 49 as the Winograd products, a tail of 1-4.
TEST(BlockGemm, TailByRowsSameBitsAsBlocks) {
    const block_gemm::Fn kernel = block_gemm::kernel(Isa::avx2);
    if (!kernel || !cpu_runs(Isa::avx2)) GTEST_SKIP() << "no AVX2";
    Rng rng(17);
    for (const int M : {1, 7, 8, 9, 32, 64, 70})
        for (const int N : {1, 4, 17, 20, 49})
            for (const bool accumulate : {false, true}) {
                const int K = 1 + int(rng.below(70));
                std::vector<float> a(std::size_t(M) * K), a_t(a.size()), b(std::size_t(K) * N);
                for (float& v : a) v = rng.uniform(-1.0f, 1.0f);
                for (int i = 0; i < M; ++i)
                    for (int k = 0; k < K; ++k) a_t[std::size_t(k) * M + i] = a[std::size_t(i) * K + k];
                for (float& v : b) v = rng.uniform(-1.0f, 1.0f);
                std::vector<float> rows(std::size_t(M) * N);
                for (float& v : rows) v = rng.uniform(-1.0f, 1.0f);
                std::vector<float> columns = rows;
                kernel(M, N, K, a.data(), K, 1, b.data(), N, accumulate, rows.data(), N);
                kernel(M, N, K, a_t.data(), 1, M, b.data(), N, accumulate, columns.data(), N);
                ASSERT_EQ(columns, rows) << "M=" << M << " N=" << N << " K=" << K;
            }
}

// A 2x3 by 3x2 product by hand, through the transposed A and with +=.
TEST(BlockGemm, ByHand) {
    const block_gemm::Fn kernel = block_gemm::kernel(Isa::avx2);
    if (!kernel || !cpu_runs(Isa::avx2)) GTEST_SKIP() << "no AVX2";
    const float a_t[6] = {1, 4, 2, 5, 3, 6};  // A = [[1, 2, 3], [4, 5, 6]] stored transposed
    const float b[6] = {7, 8, 9, 10, 11, 12};
    float c[4] = {1, 1, 1, 1};
    kernel(2, 2, 3, a_t, 1, 2, b, 2, true, c, 2);
    EXPECT_EQ(c[0], 59.0f);
    EXPECT_EQ(c[1], 65.0f);
    EXPECT_EQ(c[2], 140.0f);
    EXPECT_EQ(c[3], 155.0f);
}

// A sparse operand as a ReLU and dropout leave it: each entry zero with probability `zeros`,
// some of them -0.
std::vector<float> sparse_values(std::size_t n, double zeros, Rng& rng) {
    std::vector<float> v(n);
    for (float& x : v) {
        x = rng.uniform(-1.0f, 1.0f);
        if (rng.uniform() < zeros) x = rng.uniform() < 0.2f ? -0.0f : 0.0f;
    }
    return v;
}

// sparse_gemm's products (tensor/sparse_gemm.hpp) on the paths that have them, A at most half
// non-zero: against the naive product within rounding, and bit for bit against the chain of fused
// multiply-adds they promise, written out over every entry (zeros included) on plain floats; the
// same bits on 1 and 3 threads. Odd sizes: K past a multiple of 8 and 64, N past blocks of 64 and
// 8, M past 32 (tn's groups of rows), all-zero rows and columns, nn adding to C.
TEST(SparseGemm, ProductsMatchTheirChainsAndNaive) {
    for (const Isa isa : {Isa::avx2, Isa::avx512}) {
        if (!cpu_runs(isa)) continue;
        SCOPED_TRACE(isa_name(isa));
        Rng rng(23);
        for (int trial = 0; trial < 16; ++trial) {
            const int M = 1 + int(rng.below(70)), N = 1 + int(rng.below(150)), K = 1 + int(rng.below(140));
            const double zeros = trial % 4 == 0 ? 1.0 : 0.55 + 0.4 * rng.uniform();
            SCOPED_TRACE("M " + std::to_string(M) + " N " + std::to_string(N) + " K " +
                         std::to_string(K) + " zeros " + std::to_string(zeros));
            const std::vector<float> a = sparse_values(std::size_t(M) * K, zeros, rng);
            std::vector<float> b(std::size_t(K) * N), d(std::size_t(M) * N), c0(std::size_t(M) * N);
            for (auto* v : {&b, &d, &c0})
                for (float& x : *v) x = rng.uniform(-1.0f, 1.0f);
            // nn: C (+)= A B, row by row; tn: C = Aᵀ D.
            std::vector<float> nn_chain(c0.size()), tn_chain(std::size_t(K) * N);
            for (int i = 0; i < M; ++i)
                for (int j = 0; j < N; ++j) {
                    float acc = 0.0f;
                    for (int k = 0; k < K; ++k)
                        acc = std::fma(a[std::size_t(i) * K + k], b[std::size_t(k) * N + j], acc);
                    nn_chain[std::size_t(i) * N + j] = c0[std::size_t(i) * N + j] + acc;
                }
            for (int k = 0; k < K; ++k)
                for (int j = 0; j < N; ++j) {
                    float acc = 0.0f;
                    for (int i = 0; i < M; ++i)
                        acc = std::fma(a[std::size_t(i) * K + k], d[std::size_t(i) * N + j], acc);
                    tn_chain[std::size_t(k) * N + j] = acc;
                }
            std::vector<float> nn_naive = c0, tn_naive(tn_chain.size());
            gemm_naive(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 1.0f, nn_naive.data(), N);
            gemm_naive(true, false, K, N, M, 1.0f, a.data(), K, d.data(), N, 0.0f, tn_naive.data(), N);
            const int before = num_threads();
            for (const int threads : {1, 3}) {
                set_num_threads(threads);
                std::vector<float> nn = c0, tn(tn_chain.size(), std::nanf(""));
                sparse_gemm::nn_split(isa, M, N, K, a.data(), K, b.data(), N, true, nn.data(), N);
                sparse_gemm::tn_split(isa, M, N, K, a.data(), K, d.data(), N, tn.data(), N);
                EXPECT_EQ(nn, nn_chain) << threads << " threads";
                EXPECT_EQ(tn, tn_chain) << threads << " threads";
                for (std::size_t i = 0; i < nn.size(); ++i) ASSERT_NEAR(nn[i], nn_naive[i], 1e-4f);
                for (std::size_t i = 0; i < tn.size(); ++i) ASSERT_NEAR(tn[i], tn_naive[i], 1e-4f);
            }
            set_num_threads(before);
            // Without `accumulate`, from 0.
            std::vector<float> from_zero(c0.size(), std::nanf(""));
            sparse_gemm::nn_split(isa, M, N, K, a.data(), K, b.data(), N, false, from_zero.data(), N);
            for (std::size_t i = 0; i < from_zero.size(); ++i)
                ASSERT_NEAR(from_zero[i], nn_naive[i] - c0[i], 1e-4f);
        }
    }
}

// The choice the Dense layer makes: nn up to a third non-zero, tn up to a half, neither on the
// portable path (which has no kernel: asking for one is an error).
TEST(SparseGemm, Choice) {
    const std::vector<float> third = {0, 1, 0, 0, 2, 0, -0.0f, 0, 3}, half = {0, 1, 2, 0, 3, 0},
                             more = {0, 1, 2, 3, 0, 4, 0, 5, 6};
    EXPECT_FALSE(sparse_gemm::choose(Isa::portable, 3, 3, third.data(), 3).nn);
    EXPECT_FALSE(sparse_gemm::choose(Isa::portable, 3, 3, third.data(), 3).tn);
    std::vector<float> c(1);
    EXPECT_THROW(sparse_gemm::nn_split(Isa::portable, 1, 1, 1, c.data(), 1, c.data(), 1, false, c.data(), 1),
                 ValueError);
    if (!cpu_runs(Isa::avx2)) GTEST_SKIP() << "no AVX2";
    const sparse_gemm::Choice a = sparse_gemm::choose(Isa::avx2, 3, 3, third.data(), 3),
                              b = sparse_gemm::choose(Isa::avx2, 2, 3, half.data(), 3),
                              m = sparse_gemm::choose(Isa::avx2, 3, 3, more.data(), 3);
    EXPECT_TRUE(a.nn && a.tn);
    EXPECT_TRUE(!b.nn && b.tn);
    EXPECT_TRUE(!m.nn && !m.tn);
    // Rows lda apart: only the first K of each row count.
    const std::vector<float> wide = {0, 1, 9, 9, 0, 0, 9, 9, 0, 0, 9, 9};
    EXPECT_TRUE(sparse_gemm::choose(Isa::avx2, 3, 2, wide.data(), 4).nn);
    EXPECT_FALSE(sparse_gemm::choose(Isa::avx2, 0, 2, wide.data(), 4).tn);
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

namespace {

// small_gemm.hpp's nt order on plain floats: a's row (R rows of W columns) against b's, column c
// summed down the rows from 0, then the column sums folded as ColumnFold does (blocks of eight
// columns into two chains, even blocks and odd ones; the two added; the eight lanes pairwise).
// With b null, a's own entries (x, which is x * 1's bits).
float summed_by_columns(const float* a, const float* b, int R, int W) {
    std::vector<float> column(std::size_t((W + 7) / 8 * 8), 0.0f);
    for (int c = 0; c < W; ++c)
        for (int r = 0; r < R; ++r) {
            const int at = r * W + c;
            column[std::size_t(c)] += b ? a[at] * b[at] : a[at];
        }
    float even[8] = {}, odd[8] = {}, u[8];
    for (std::size_t q = 0; q * 8 < column.size(); ++q)
        for (int l = 0; l < 8; ++l) (q % 2 ? odd : even)[l] += column[q * 8 + std::size_t(l)];
    for (int l = 0; l < 8; ++l) u[l] = even[l] + odd[l];
    return ((u[0] + u[4]) + (u[2] + u[6])) + ((u[1] + u[5]) + (u[3] + u[7]));
}

}  // namespace

// small_gemm's loops (tensor/small_gemm.hpp): the three products against the triple loop, odd
// sizes around the 8-lane tail (rows of 1 to 40 columns for nt), nt in exactly its documented
// order, and every variant this CPU runs giving the portable one's bits.
TEST(SmallGemm, MatchesNaiveAndEveryVariantTheSameBits) {
    Rng rng(11);
    for (int trial = 0; trial < 40; ++trial) {
        const int M = 1 + int(rng.below(70)), R = 1 + int(rng.below(12)), W = 1 + int(rng.below(40));
        const int N = R * W, K = 1 + int(rng.below(9));
        SCOPED_TRACE("M=" + std::to_string(M) + " N=" + std::to_string(R) + "x" + std::to_string(W) +
                     " K=" + std::to_string(K));
        const auto shape = [](int r, int c) { return Shape{std::size_t(r), std::size_t(c)}; };
        const Tensor w = random_uniform(shape(M, K), rng), cols = random_uniform(shape(K, N), rng),
                     d = random_uniform(shape(M, N), rng), c0 = random_uniform(shape(M, K), rng);
        Tensor out[3], dw[3], acc[3], dcols[3];
        for (const Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
            if (!cpu_runs(isa)) continue;
            const small_gemm::Kernels k = small_gemm::kernels(isa);
            const int i = int(isa);
            out[i] = Tensor(shape(M, N)), dw[i] = Tensor(shape(M, K)), acc[i] = c0;
            dcols[i] = Tensor(shape(K, N));
            k.nn(M, N, K, w.data(), cols.data(), out[i].data());
            k.nt(M, R, W, K, d.data(), cols.data(), false, dw[i].data(), nullptr);
            // With the row sums: the same products, and each row's own sum added on.
            std::vector<float> sums(std::size_t(M), 0.5f);
            k.nt(M, R, W, K, d.data(), cols.data(), true, acc[i].data(), sums.data());
            for (int r = 0; r < M; ++r) {
                const float* dr = d.data() + std::size_t(r) * N;
                ASSERT_EQ(sums[std::size_t(r)], 0.5f + summed_by_columns(dr, nullptr, R, W))
                    << isa_name(isa) << " row " << r;
                for (int kk = 0; kk < K; ++kk)
                    ASSERT_EQ(dw[i][std::size_t(r * K + kk)],
                              summed_by_columns(dr, cols.data() + std::size_t(kk) * N, R, W))
                        << isa_name(isa) << " row " << r << " k " << kk;
            }
            k.tn(M, N, K, w.data(), d.data(), dcols[i].data());
            if (isa == Isa::portable) {
                Tensor r(shape(M, N)), rw(shape(M, K)), racc = c0, rcols(shape(K, N));
                gemm_naive(false, false, M, N, K, 1, w.data(), K, cols.data(), N, 0, r.data(), N);
                gemm_naive(false, true, M, K, N, 1, d.data(), N, cols.data(), N, 0, rw.data(), K);
                gemm_naive(false, true, M, K, N, 1, d.data(), N, cols.data(), N, 1, racc.data(), K);
                gemm_naive(true, false, K, N, M, 1, w.data(), K, d.data(), N, 0, rcols.data(), N);
                EXPECT_LT(max_abs_diff(out[i], r), 1e-5f);
                EXPECT_LT(max_abs_diff(dw[i], rw), 1e-4f);
                EXPECT_LT(max_abs_diff(acc[i], racc), 1e-4f);
                EXPECT_LT(max_abs_diff(dcols[i], rcols), 1e-4f);
            } else {
                SCOPED_TRACE(isa_name(isa));
                EXPECT_EQ(max_abs_diff(out[i], out[0]), 0.0f);
                EXPECT_EQ(max_abs_diff(dw[i], dw[0]), 0.0f);
                EXPECT_EQ(max_abs_diff(acc[i], acc[0]), 0.0f);
                EXPECT_EQ(max_abs_diff(dcols[i], dcols[0]), 0.0f);
            }
        }
    }
}

// One dot product by hand: 1..10 times 1 as one row of 10 columns. Columns 0-7 are the first
// block, 8-9 the second (zeros after): lanes 0 and 1 hold 1+9 and 2+10, folded pairwise
// ((10+5) + (3+7)) + ((12+6) + (4+8)) = 55.
TEST(SmallGemm, NtByHand) {
    std::vector<float> a(10), b(10, 1.0f);
    for (int j = 0; j < 10; ++j) a[std::size_t(j)] = float(j + 1);
    float c = 100.0f;
    small_gemm::kernels(Isa::portable).nt(1, 1, 10, 1, a.data(), b.data(), true, &c, nullptr);
    EXPECT_EQ(c, 155.0f);
    small_gemm::kernels(Isa::portable).nt(1, 1, 10, 1, a.data(), b.data(), false, &c, nullptr);
    EXPECT_EQ(c, 55.0f);
    // As two rows of 5 with weights 1/8: the five columns' chains (1+6)/8 .. (5+10)/8 sit in
    // lanes 0-4, folded ((7/8 + 15/8) + 11/8) + (9/8 + 13/8): exact in binary, 55/8.
    std::vector<float> eighth(10, 0.125f);
    small_gemm::kernels(Isa::portable).nt(1, 2, 5, 1, a.data(), eighth.data(), false, &c, nullptr);
    EXPECT_EQ(c, 6.875f);
}
