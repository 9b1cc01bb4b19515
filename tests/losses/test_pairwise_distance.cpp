// pairwise_distance: TFA's values (against differences in double and against the literal port,
// bit for bit), its special entries (diagonal, duplicates, clamping) and its backward.
#include <gtest/gtest.h>

#include <cmath>

#include "grad_helpers.hpp"
#include "losses/pairwise_distance.hpp"
#include "losses/triplet_reference.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

using namespace semigrad;
using namespace semigrad::losses;
using namespace semigrad::losses::testing;

static const Distance kMetrics[] = {Distance::L2, Distance::SquaredL2, Distance::Angular};

// The textbook definitions, from differences, in double.
static double naive_distance(const Tensor& x, std::size_t i, std::size_t j, Distance metric) {
    const std::size_t D = x.dim(1);
    double d2 = 0, dot = 0, ni = 0, nj = 0;
    for (std::size_t d = 0; d < D; ++d) {
        const double a = x[i * D + d], b = x[j * D + d];
        d2 += (a - b) * (a - b), dot += a * b, ni += a * a, nj += b * b;
    }
    switch (metric) {
        case Distance::L2: return std::sqrt(d2);
        case Distance::SquaredL2: return d2;
        case Distance::Angular: return std::max(1.0 - dot / std::sqrt(ni * nj), 0.0);
    }
    return 0;
}

TEST(PairwiseDistance, MatchesDifferencesInDouble) {
    Rng rng(1);
    for (std::size_t B : {1, 2, 7, 33}) {
        for (std::size_t D : {1, 3, 64}) {
            const Tensor x = random_normal(B, D, rng);
            for (Distance m : kMetrics) {
                const Tensor dist = pairwise_distance(x, m);
                ASSERT_EQ(dist.shape(), (Shape{B, B}));
                for (std::size_t i = 0; i < B; ++i)
                    for (std::size_t j = 0; j < B; ++j) {
                        const double want = naive_distance(x, i, j, m), got = dist.at({i, j});
                        // The expansion form loses ~1e-7 of |x|^2 ~ D to cancellation, so compare
                        // squared distances for L2 (sqrt amplifies that error near 0).
                        if (m == Distance::Angular)
                            EXPECT_NEAR(got, want, 1e-5) << "B=" << B << " D=" << D << " i=" << i << " j=" << j;
                        else if (m == Distance::L2)
                            EXPECT_NEAR(got * got, want * want, 1e-5 * double(D + 1)) << "B=" << B << " D=" << D << " i=" << i << " j=" << j;
                        else
                            EXPECT_NEAR(got, want, 1e-5 * double(D + 1)) << "B=" << B << " D=" << D << " i=" << i << " j=" << j;
                    }
            }
        }
    }
}

TEST(PairwiseDistance, BitIdenticalToTheLiteralPort) {
    Rng rng(2);
    for (std::size_t B : {1, 5, 64, 129}) {
        const Tensor x = random_normal(B, 17, rng);
        for (Distance m : kMetrics)
            EXPECT_EQ(max_abs_diff(pairwise_distance(x, m), reference::pairwise_distance(x, m)), 0.0f)
                << distance_name(m) << " B=" << B;
    }
}

TEST(PairwiseDistance, DiagonalAndDuplicatesAreExactlyZeroForL2) {
    // Rows 0 and 2 are equal: their distance cancels exactly and is forced to 0 (no 1e-8 from the
    // 1e-16 guard).
    Tensor x({3, 2}, {0.3f, -1.2f, 2.0f, 0.5f, 0.3f, -1.2f});
    for (Distance m : {Distance::L2, Distance::SquaredL2}) {
        const Tensor dist = pairwise_distance(x, m);
        for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(dist.at({i, i}), 0.0f);
        EXPECT_EQ(dist.at({0, 2}), 0.0f);
        EXPECT_EQ(dist.at({2, 0}), 0.0f);
        EXPECT_GT(dist.at({0, 1}), 0.0f);
    }
}

TEST(PairwiseDistance, AngularClampsAtZeroAndKeepsItsDiagonal) {
    // Opposite vectors: 1 - (-1) = 2. Parallel vectors of different length: 1 - 1 -> clamped 0.
    Tensor x({3, 2}, {3.0f, 4.0f, -0.6f, -0.8f, 6.0f, 8.0f});
    const Tensor dist = pairwise_distance(x, Distance::Angular);
    EXPECT_FLOAT_EQ(dist.at({0, 1}), 2.0f);
    EXPECT_GE(dist.at({0, 2}), 0.0f);
    EXPECT_LT(dist.at({0, 2}), 1e-6f);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_GE(dist.at({i, i}), 0.0f);  // max(1 - |x_hat|^2, 0): ~0, not forced
        EXPECT_LT(dist.at({i, i}), 1e-6f);
    }
}

// The backward of sum(W * D(x)) for a random W against central differences.
TEST(PairwiseDistance, BackwardMatchesFiniteDifferences) {
    Rng rng(3);
    for (Distance m : kMetrics) {
        const std::size_t B = 6, D = 4;
        const Tensor x = random_normal(B, D, rng), W = random_normal(B, B, rng);
        auto f = [&](const Tensor& probe) {
            const Tensor dist = pairwise_distance(probe, m);
            double s = 0;
            for (std::size_t i = 0; i < dist.size(); ++i) s += double(W[i]) * dist[i];
            return float(s);
        };
        const Tensor analytic = PairwiseDistance(x, m).backward(W);
        const Tensor numeric = numeric_gradient(f, x, 1e-3f);
        EXPECT_LT(scaled_error(analytic, numeric, 2e-3, 2e-3), 1.0) << distance_name(m);
    }
}

TEST(PairwiseDistance, DuplicateRowsGetFiniteGradients) {
    Tensor x({3, 2}, {0.3f, -1.2f, 2.0f, 0.5f, 0.3f, -1.2f});
    for (Distance m : kMetrics) {
        const Tensor dx = PairwiseDistance(x, m).backward(Tensor::ones({3, 3}));
        for (std::size_t i = 0; i < dx.size(); ++i) EXPECT_TRUE(std::isfinite(dx[i])) << distance_name(m);
    }
}

TEST(PairwiseDistance, RejectsBadShapes) {
    EXPECT_THROW(pairwise_distance(Tensor({4}), Distance::L2), ShapeError);
    try {
        PairwiseDistance pd(Tensor({2, 3}), Distance::L2);
        pd.backward(Tensor({3, 3}));
        FAIL() << "expected ShapeError";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("[3,3]"), std::string::npos) << e.what();
    }
}

// The sparse dD (CSR rows, what the semi-hard loss passes) against the same entries as a dense
// dD: bit for bit, on odd sizes (below and above the parallel threshold, and on the ssyrk path),
// for 1 and 2 threads.
TEST(PairwiseDistance, SparseBackwardIsTheDenseBackwardBitForBit) {
    Rng rng(7);
    const int before = num_threads();
    for (std::size_t B : {1, 7, 130, 1029})
        for (Distance m : kMetrics) {
            const Tensor x = random_normal(B, 3 + B % 4, rng);
            Tensor W({B, B});
            SparseRows sparse;
            sparse.start.push_back(0);
            for (std::size_t i = 0; i < B; ++i) {
                // A third of the columns, some of them exactly zero.
                for (std::size_t j = 0; j < B; ++j) {
                    if (rng.below(3) != 0) continue;
                    const float v = rng.below(5) == 0 ? 0.0f : rng.normal();
                    W.at({i, j}) = v;
                    sparse.column.push_back(std::uint32_t(j));
                    sparse.value.push_back(v);
                }
                sparse.start.push_back(sparse.column.size());
            }
            const PairwiseDistance pd(x, m);
            for (int threads : {1, 2}) {
                set_num_threads(threads);
                const Tensor dense = pd.backward(W, 0.37f), got = pd.backward(sparse, 0.37f);
                ASSERT_EQ(got.shape(), dense.shape());
                for (std::size_t k = 0; k < got.size(); ++k)
                    ASSERT_EQ(got[k], dense[k]) << distance_name(m) << " B=" << B << " threads=" << threads << " k=" << k;
            }
        }
    set_num_threads(before);
}

// A PairwiseDistance hands its [B,B] buffer back to the scratch it was made with, and the next
// one of the same size takes it (the very same memory): the next one's values (diagonal
// included) are its own, not the previous batch's. A size change drops the spare.
TEST(PairwiseDistance, ReusedBufferHoldsOnlyTheNewBatch) {
    Rng rng(8);
    const std::size_t B = 67, D = 3;
    auto scratch = std::make_shared<DistanceScratch>();
    for (Distance m : kMetrics) {
        const Tensor x1 = random_normal(B, D, rng), x2 = random_normal(B, D, rng);
        const float* first_buffer = nullptr;
        {
            const PairwiseDistance first(x1, m, true, active_isa(), scratch);
            first_buffer = first.distances().data();
        }
        EXPECT_EQ(scratch->spare.size(), B * B);
        const PairwiseDistance second(x2, m, true, active_isa(), scratch);
        EXPECT_EQ(second.distances().data(), first_buffer) << "the spare was not reused";
        EXPECT_EQ(scratch->spare.size(), 0u);
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t j = 0; j < B; ++j)
                ASSERT_NEAR(second.distances().at({i, j}), naive_distance(x2, i, j, m), 1e-5)
                    << distance_name(m) << " i=" << i << " j=" << j;
    }
    { const PairwiseDistance other_size(random_normal(B + 1, D, rng), Distance::L2, true, active_isa(), scratch); }
    EXPECT_EQ(scratch->spare.size(), (B + 1) * (B + 1));
    scratch->release();
    EXPECT_EQ(scratch->bytes(), 0u);
}

TEST(PairwiseDistance, SparseBackwardRejectsABadMatrix) {
    const PairwiseDistance pd(Tensor({3, 2}, {0.3f, -1.2f, 2.0f, 0.5f, 1.0f, 0.0f}), Distance::L2);
    SparseRows ok{{0, 1, 1, 2}, {2, 0}, {1.0f, -1.0f}};
    EXPECT_NO_THROW(pd.backward(ok));
    SparseRows short_rows{{0, 1, 2}, {2, 0}, {1.0f, -1.0f}};
    SparseRows bad_values{{0, 1, 1, 2}, {2, 0}, {1.0f}};
    SparseRows unsorted{{0, 2, 1, 2}, {2, 0}, {1.0f, -1.0f}};
    for (const SparseRows* bad : {&short_rows, &bad_values, &unsorted}) {
        try {
            pd.backward(*bad);
            FAIL() << "expected ShapeError";
        } catch (const ShapeError& e) {
            EXPECT_NE(std::string(e.what()).find("sparse dD"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("[3,3]"), std::string::npos) << e.what();
        }
    }
    // Row 0 has column 3 of 3; row 1 lists column 2 before column 0; row 2 lists column 1 twice.
    const std::pair<SparseRows, const char*> bad_rows[] = {
        {SparseRows{{0, 1, 1, 2}, {3, 0}, {1.0f, -1.0f}}, "row 0 has columns {3}"},
        {SparseRows{{0, 0, 2, 2}, {2, 0}, {1.0f, -1.0f}}, "row 1 has columns {2 0}"},
        {SparseRows{{0, 0, 0, 2}, {1, 1}, {1.0f, -1.0f}}, "row 2 has columns {1 1}"}};
    for (const auto& [bad, what] : bad_rows) {
        try {
            pd.backward(bad);
            FAIL() << "expected ValueError for " << what;
        } catch (const ValueError& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("not increasing column indices below 3"), std::string::npos) << e.what();
        }
    }
}

// From B = 1024 on the Gram matrix comes from ssyrk (upper triangle, mirrored): check the
// values, exact symmetry, and the backward against the textbook gradient in double, at a size
// that is not a multiple of the 64-wide tiles.
TEST(PairwiseDistance, LargeBatchSymmetricPathMatchesDefinitions) {
    Rng rng(4);
    const std::size_t B = 1029, D = 5;
    const Tensor x = random_normal(B, D, rng);
    Tensor W({B, B});
    for (std::size_t i = 0; i < W.size(); ++i) W[i] = rng.below(8) == 0 ? rng.normal() : 0.0f;
    for (Distance m : kMetrics) {
        const PairwiseDistance pd(x, m);
        const Tensor& dist = pd.distances();
        double worst = 0;
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t j = 0; j < B; ++j) {
                ASSERT_EQ(dist.at({i, j}), dist.at({j, i})) << distance_name(m) << " i=" << i << " j=" << j;
                const double got = dist.at({i, j}), want = naive_distance(x, i, j, m);
                worst = std::max(worst, m == Distance::L2 ? std::fabs(got * got - want * want) : std::fabs(got - want));
            }
        EXPECT_LT(worst, m == Distance::Angular ? 1e-5 : 1e-5 * double(D + 1)) << distance_name(m);
        if (m == Distance::Angular) continue;  // its backward path is shared with L2's (tested below)
        // d/dx_i of sum W D: sum_j (W_ij + W_ji) dD_ij/dx_i, dD_ij/dx_i = (x_i - x_j)/D_ij (L2)
        // or 2 (x_i - x_j) (squared), 0 on the diagonal.
        const Tensor dx = pd.backward(W);
        Tensor want({B, D});
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t j = 0; j < B; ++j) {
                const double w = double(W.at({i, j})) + W.at({j, i}), d = dist.at({i, j});
                if (i == j || w == 0 || d == 0) continue;
                const double f = m == Distance::L2 ? w / d : 2 * w;
                for (std::size_t k = 0; k < D; ++k) want[i * D + k] += float(f * (double(x[i * D + k]) - x[j * D + k]));
            }
        EXPECT_LT(scaled_error(dx, want, 1e-5, 1e-4), 1.0) << distance_name(m);
    }
}
