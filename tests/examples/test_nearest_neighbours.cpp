// Tests of examples/nearest_neighbours.cpp: the GEMM-proposed neighbours against brute force
// (bit for bit, with duplicates and exact ties), the same on any thread count, trustworthiness
// and k-NN accuracy against their definitions written out, and argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "examples/nearest_neighbours.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace semigrad;
using namespace semigrad::viz;

namespace {

// n points in D dimensions, most near one of a few centres, with exact duplicates and points on
// an integer lattice (many exactly tied distances): everything that could make a GEMM's ranking
// differ from the exact one.
Tensor awkward_points(std::size_t n, std::size_t D, std::uint64_t seed) {
    Rng rng(seed);
    Tensor x({n, D});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t d = 0; d < D; ++d) {
            const float centre = float(i % 4) * 3.0f;
            x[i * D + d] = i % 7 == 0 ? std::round(2 * rng.normal()) : centre + 0.3f * rng.normal();
        }
    for (std::size_t i = 5; i < n; i += 11)  // duplicates of earlier points
        std::copy_n(x.data() + (i / 2) * D, D, x.data() + i * D);
    return x;
}

void expect_same(const Neighbours& a, const Neighbours& b) {
    ASSERT_EQ(a.n, b.n);
    ASSERT_EQ(a.k, b.k);
    for (std::size_t e = 0; e < a.index.size(); ++e) {
        ASSERT_EQ(a.index[e], b.index[e]) << "row " << e / a.k << ", neighbour " << e % a.k;
        ASSERT_EQ(a.distance[e], b.distance[e]) << "row " << e / a.k << ", neighbour " << e % a.k;
    }
}

// Trustworthiness as sklearn writes it: full rankings in both spaces, in double.
double trustworthiness_by_definition(const Tensor& x, const Tensor& y, std::size_t k) {
    const std::size_t n = x.dim(0);
    auto ranking = [&](const Tensor& p, std::size_t i) {
        const std::size_t D = p.dim(1);
        std::vector<double> d(n);
        for (std::size_t j = 0; j < n; ++j) {
            d[j] = 0;
            for (std::size_t c = 0; c < D; ++c) d[j] += double(p[i * D + c] - p[j * D + c]) * (p[i * D + c] - p[j * D + c]);
        }
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::size_t u, std::size_t v) { return d[u] < d[v]; });
        order.erase(std::find(order.begin(), order.end(), i));
        return order;  // others, nearest first
    };
    double t = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto high = ranking(x, i), low = ranking(y, i);
        std::vector<std::size_t> rank(n);
        for (std::size_t r = 0; r < high.size(); ++r) rank[high[r]] = r + 1;
        for (std::size_t m = 0; m < k; ++m) t += std::max<double>(0, double(rank[low[m]]) - double(k));
    }
    return 1 - 2.0 / (double(n) * k * (2.0 * n - 3.0 * k - 1)) * t;
}

}  // namespace

TEST(NearestNeighbours, EqualBruteForceBitForBit) {
    for (const auto& [n, D, k] : {std::tuple{700, 33, 15}, {300, 2, 10}, {64, 1, 63}, {520, 256, 14}}) {
        const Tensor x = awkward_points(std::size_t(n), std::size_t(D), std::uint64_t(n + D));
        expect_same(nearest_neighbours(x, std::size_t(k)), nearest_neighbours_naive(x, std::size_t(k)));
    }
}

TEST(NearestNeighbours, RowsAreSortedWithTiesToTheLowerIndexAndNeverSelf) {
    // Points 0..5 on a line at 0, 1, 2, 3, 4, 5: point 2's neighbours at distance 1 are 1 and 3.
    Tensor x({6, 1}, {0, 1, 2, 3, 4, 5});
    const Neighbours nb = nearest_neighbours(x, 4);
    EXPECT_EQ(std::vector<std::uint32_t>(nb.index.begin() + 8, nb.index.begin() + 12),
              (std::vector<std::uint32_t>{1, 3, 0, 4}));
    EXPECT_EQ(std::vector<float>(nb.distance.begin() + 8, nb.distance.begin() + 12), (std::vector<float>{1, 1, 2, 2}));
    for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t m = 0; m < 4; ++m) EXPECT_NE(nb.index[i * 4 + m], i);
}

TEST(NearestNeighbours, SameOnAnyThreadCount) {
    // Run by meson also under OPENBLAS_CORETYPE=Haswell, whose GEMM splits its sums
    // differently at different thread counts: the neighbours must not notice.
    const Tensor x = awkward_points(1500, 96, 5);
    const int threads = num_threads();
    set_num_threads(1);
    const Neighbours one = nearest_neighbours(x, 15);
    set_num_threads(2);
    const Neighbours two = nearest_neighbours(x, 15);
    set_num_threads(threads);
    expect_same(one, two);
}

TEST(NearestNeighbours, RejectBadArguments) {
    Tensor x({5, 3});
    EXPECT_THROW(nearest_neighbours(x, 5), ValueError);
    EXPECT_THROW(nearest_neighbours(x, 0), ValueError);
    EXPECT_THROW(nearest_neighbours(Tensor({5}), 2), ShapeError);
    x[2 * 3 + 1] = std::numeric_limits<float>::quiet_NaN();
    try {
        nearest_neighbours(x, 2);
        ADD_FAILURE() << "no error for NaN";
    } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("row 2, column 1"), std::string::npos) << e.what();
    }
}

TEST(Trustworthiness, MatchesItsDefinition) {
    Rng rng(3);
    Tensor x({90, 6}), y({90, 2});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    for (std::size_t i = 0; i < 90; ++i) y[2 * i] = x[6 * i] + 0.5f * rng.normal(), y[2 * i + 1] = x[6 * i + 1];
    for (std::size_t k : {1, 5, 10, 20})
        EXPECT_NEAR(trustworthiness(x, y, k), trustworthiness_by_definition(x, y, k), 1e-12) << "k " << k;
}

TEST(Trustworthiness, IsOneForAFaithfulMapAndLowForARandomOne) {
    Rng rng(4);
    Tensor x({200, 2}), shuffled({200, 2});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    EXPECT_DOUBLE_EQ(trustworthiness(x, x, 10), 1.0);
    for (std::size_t i = 0; i < shuffled.size(); ++i) shuffled[i] = rng.normal();
    EXPECT_LT(trustworthiness(x, shuffled, 10), 0.6);  // ~0.5 expected for an unrelated map
    EXPECT_THROW(trustworthiness(x, x, 100), ValueError);
    EXPECT_THROW(trustworthiness(x, Tensor({199, 2}), 10), ShapeError);
}

TEST(KnnClassAccuracy, VotesAndBreaksTiesByTheNearest) {
    // Six points on a line; labels 0 0 1 1 0 1.
    Tensor x({6, 1}, {0, 1, 2, 3, 4, 10});
    const std::vector<int> labels = {0, 0, 1, 1, 0, 1};
    // k = 2: 0 <- {1, 2}: votes 0:1 1:1, nearest 1 (label 0) -> right. 1 <- {0, 2} tie -> 0 (label 0),
    // right. 2 <- {1, 3} tie -> 1 (label 0), wrong. 3 <- {2, 4} tie -> 2 (label 1), right.
    // 4 <- {3, 2}: both 1, wrong. 5 <- {4, 3}: tie -> 4 (label 0), wrong.
    EXPECT_DOUBLE_EQ(knn_class_accuracy(nearest_neighbours(x, 2), labels), 3.0 / 6.0);
    // The first 2 of 4 neighbours give the same; k = 1: 0, 1 right, 2 wrong, 3 right, 4, 5 wrong.
    EXPECT_DOUBLE_EQ(knn_class_accuracy(nearest_neighbours(x, 4), labels, 2), 3.0 / 6.0);
    EXPECT_DOUBLE_EQ(knn_class_accuracy(nearest_neighbours(x, 4), labels, 1), 3.0 / 6.0);
    EXPECT_THROW(knn_class_accuracy(nearest_neighbours(x, 2), labels, 3), ValueError);
    EXPECT_THROW(knn_class_accuracy(nearest_neighbours(x, 2), std::vector<int>{0, 1}), ShapeError);
}
