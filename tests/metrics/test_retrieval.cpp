// Retrieval metrics: hand-made cases with known answers, and the blocked gemm path against a
// brute-force reference (double-precision direct distances, full sort) on random sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include "metrics/retrieval.hpp"
#include "tensor/error.hpp"
#include "tensor/random.hpp"

using namespace semigrad;

namespace {

// ---- brute force: every distance directly, every ranking by a full sort -------------------

// Indices of `refs` rows by (distance to query row q, index), skipping `skip`.
std::vector<std::size_t> ranked(const Tensor& queries, std::size_t q, const Tensor& refs,
                                std::size_t skip) {
    const std::size_t D = queries.dim(1);
    std::vector<std::pair<double, std::size_t>> all;
    for (std::size_t j = 0; j < refs.dim(0); ++j) {
        if (j == skip) continue;
        double s = 0.0;
        for (std::size_t d = 0; d < D; ++d) {
            const double diff = static_cast<double>(queries[q * D + d]) - refs[j * D + d];
            s += diff * diff;
        }
        all.emplace_back(s, j);
    }
    std::sort(all.begin(), all.end());
    std::vector<std::size_t> out;
    for (const auto& p : all) out.push_back(p.second);
    return out;
}

std::size_t count_of(const std::vector<int>& labels, int l) {
    return static_cast<std::size_t>(std::count(labels.begin(), labels.end(), l));
}

float brute_precision_at_1(const Tensor& x, const std::vector<int>& labels) {
    double sum = 0.0;
    std::size_t n = 0;
    for (std::size_t q = 0; q < x.dim(0); ++q) {
        if (count_of(labels, labels[q]) < 2) continue;
        sum += labels[ranked(x, q, x, q)[0]] == labels[q];
        ++n;
    }
    return static_cast<float>(sum / static_cast<double>(n));
}

float brute_knn_accuracy(const Tensor& queries, const std::vector<int>& qlabels, const Tensor& refs,
                         const std::vector<int>& rlabels, int k) {
    double correct = 0.0;
    for (std::size_t q = 0; q < queries.dim(0); ++q) {
        const std::vector<std::size_t> order = ranked(queries, q, refs, refs.dim(0));
        std::map<int, int> votes;
        for (int i = 0; i < k; ++i) ++votes[rlabels[order[i]]];
        int best = -1, best_votes = 0;
        for (const auto& [label, v] : votes) best_votes = std::max(best_votes, v);
        for (int i = 0; i < k && best < 0; ++i)  // the nearest of the tied labels
            if (votes[rlabels[order[i]]] == best_votes) best = rlabels[order[i]];
        correct += best == qlabels[q];
    }
    return static_cast<float>(correct / static_cast<double>(queries.dim(0)));
}

float brute_map_at_r(const Tensor& x, const std::vector<int>& labels) {
    double sum = 0.0;
    std::size_t n = 0;
    for (std::size_t q = 0; q < x.dim(0); ++q) {
        const std::size_t R = count_of(labels, labels[q]) - 1;
        if (R == 0) continue;
        const std::vector<std::size_t> order = ranked(x, q, x, q);
        double ap = 0.0;
        std::size_t hits = 0;
        for (std::size_t i = 0; i < R; ++i)
            if (labels[order[i]] == labels[q])
                ap += static_cast<double>(++hits) / static_cast<double>(i + 1);
        sum += ap / static_cast<double>(R);
        ++n;
    }
    return static_cast<float>(sum / static_cast<double>(n));
}

// ---- data -----------------------------------------------------------------------------------

// Small-integer coordinates: every distance is exact in float, so gemm and brute force agree
// bit for bit, and many distances tie (which exercises the lower-index tie rule).
Tensor integer_points(std::size_t n, std::size_t D, Rng& rng) {
    Tensor t(Shape{n, D});
    for (std::size_t i = 0; i < t.size(); ++i)
        t[i] = static_cast<float>(static_cast<int>(rng.below(7)) - 3);
    return t;
}

Tensor normal_points(std::size_t n, std::size_t D, Rng& rng) {
    Tensor t(Shape{n, D});
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = rng.normal();
    return t;
}

std::vector<int> random_labels(std::size_t n, int classes, Rng& rng) {
    std::vector<int> l(n);
    for (int& v : l) v = static_cast<int>(rng.below(static_cast<std::uint32_t>(classes)));
    return l;
}

// 1-D points.
Tensor line(const std::vector<float>& xs) { return Tensor(Shape{xs.size(), 1}, xs); }

}  // namespace

// ---- known answers ------------------------------------------------------------------------

TEST(PrecisionAt1, HandMadeLine) {
    // Nearest others: 0->1 (same), 1->0 (same), 5->1 (other), 10->11 (other), 11->10 (other).
    const Tensor x = line({0, 1, 5, 10, 11});
    const std::vector<int> labels = {0, 0, 1, 1, 0};
    EXPECT_FLOAT_EQ(metrics::precision_at_1(x, labels), 2.0f / 5.0f);
    // A lone label (7) has nothing relevant to retrieve and is skipped.
    const Tensor y = line({0, 1, 5, 10, 11, 100});
    const std::vector<int> labels_y = {0, 0, 1, 1, 0, 7};
    EXPECT_FLOAT_EQ(metrics::precision_at_1(y, labels_y), 2.0f / 5.0f);
}

TEST(PrecisionAt1, TiesGoToTheLowerIndexAndDuplicatesAreNeighbours) {
    // Query 1 (at 0) is equally far from 0 (at -1) and 2 (at +1): index 0 wins, so it scores
    // when 0 shares its label (3/4) and misses when 2 does (1/4); the other way round both
    // would score 2/4.
    const Tensor x = line({-1, 0, 1, 5});
    EXPECT_FLOAT_EQ(metrics::precision_at_1(x, std::vector<int>{5, 5, 6, 6}), 3.0f / 4.0f);
    EXPECT_FLOAT_EQ(metrics::precision_at_1(x, std::vector<int>{6, 5, 5, 6}), 1.0f / 4.0f);
    // Two copies of one point are each other's nearest (leave-one-out is by index, not by a
    // zero distance): 0 <-> 1 score, 2 (tied 0 and 1) -> 0 misses, 3 -> 2 scores.
    EXPECT_FLOAT_EQ(metrics::precision_at_1(line({3, 3, 3.5f, 9}), std::vector<int>{1, 1, 2, 2}),
                    3.0f / 4.0f);
}

TEST(KnnAccuracy, HandMadeVotes) {
    const Tensor query = line({0});
    const Tensor refs = line({1, 2, 3, 4});
    const std::vector<int> ref_labels = {0, 1, 1, 0};  // A B B A at increasing distance
    EXPECT_FLOAT_EQ(metrics::knn_accuracy(query, std::vector<int>{0}, refs, ref_labels, 1), 1.0f);
    EXPECT_FLOAT_EQ(metrics::knn_accuracy(query, std::vector<int>{1}, refs, ref_labels, 3),
                    1.0f);  // B 2:1
    // 2:2 tie: the label of the nearest neighbour (A) wins.
    EXPECT_FLOAT_EQ(metrics::knn_accuracy(query, std::vector<int>{0}, refs, ref_labels, 4), 1.0f);
    EXPECT_FLOAT_EQ(metrics::knn_accuracy(query, std::vector<int>{1}, refs, ref_labels, 4), 0.0f);
    // Equidistant references: the lower index is nearer.
    const Tensor q2 = line({0, 0});
    EXPECT_FLOAT_EQ(
        metrics::knn_accuracy(q2, std::vector<int>{7, 8}, line({1, -1}), std::vector<int>{7, 8}, 1),
        0.5f);
}

TEST(MapAtR, HandMadeLine) {
    // x = 0 1 2 3, labels 0 1 0 0. Query 0: R=2, ranks 1(x) 2(v): AP = (1/2)(1/2).
    // Query 1: lone label, skipped. Query 2: R=2, 1 and 3 tie at distance 1, index 1 first:
    // ranks 1(x) 3(v): AP = 1/4. Query 3: R=2, ranks 2(v) 1(x): AP = (1/2)(1/1).
    EXPECT_FLOAT_EQ(metrics::map_at_r(line({0, 1, 2, 3}), std::vector<int>{0, 1, 0, 0}),
                    (0.25f + 0.25f + 0.5f) / 3.0f);
    // Perfect clusters score 1; MAP@R, unlike precision@1, sees a cluster that is merely close.
    const Tensor clusters = line({0, 0.1f, 0.2f, 10, 10.1f, 10.2f});
    EXPECT_FLOAT_EQ(metrics::map_at_r(clusters, std::vector<int>{0, 0, 0, 1, 1, 1}), 1.0f);
    const Tensor mixed = line({0, 1, 2, 3});  // labels alternate: every neighbour is wrong first
    EXPECT_FLOAT_EQ(metrics::precision_at_1(mixed, std::vector<int>{0, 1, 0, 1}), 0.0f);
    // Query 0: R=1, nearest 1(x): 0. Query 1: 0(x) vs 2(x) tie -> 0: 0. Same for 2, 3: MAP@R = 0.
    EXPECT_FLOAT_EQ(metrics::map_at_r(mixed, std::vector<int>{0, 1, 0, 1}), 0.0f);
}

// ---- against brute force ------------------------------------------------------------------

TEST(Retrieval, MatchesBruteForceOnIntegerPointsWithTies) {
    Rng rng(11);
    for (std::size_t D : {1u, 4u, 7u}) {
        const Tensor x = integer_points(157, D, rng);
        const std::vector<int> labels = random_labels(157, 5, rng);
        EXPECT_EQ(metrics::precision_at_1(x, labels), brute_precision_at_1(x, labels)) << "D " << D;
        EXPECT_EQ(metrics::map_at_r(x, labels), brute_map_at_r(x, labels)) << "D " << D;
        const Tensor refs = integer_points(203, D, rng);
        const std::vector<int> ref_labels = random_labels(203, 5, rng);
        for (int k : {1, 2, 5, 10})
            EXPECT_EQ(metrics::knn_accuracy(x, labels, refs, ref_labels, k),
                      brute_knn_accuracy(x, labels, refs, ref_labels, k))
                << "D " << D << " k " << k;
    }
}

TEST(Retrieval, MatchesBruteForceOnGaussianPoints) {
    Rng rng(12);
    const Tensor x = normal_points(211, 13, rng);
    const std::vector<int> labels = random_labels(211, 4, rng);
    EXPECT_NEAR(metrics::precision_at_1(x, labels), brute_precision_at_1(x, labels), 1e-6);
    EXPECT_NEAR(metrics::map_at_r(x, labels), brute_map_at_r(x, labels), 1e-6);
    const Tensor refs = normal_points(97, 13, rng);
    const std::vector<int> ref_labels = random_labels(97, 4, rng);
    for (int k : {1, 3, 97})
        EXPECT_NEAR(metrics::knn_accuracy(x, labels, refs, ref_labels, k),
                    brute_knn_accuracy(x, labels, refs, ref_labels, k), 1e-6)
            << "k " << k;
}

// More than one block of queries (1,024) and of references (4,096), with ties across blocks.
TEST(Retrieval, MatchesBruteForceAcrossBlocks) {
    Rng rng(13);
    const Tensor queries = integer_points(1100, 3, rng);
    const std::vector<int> qlabels = random_labels(1100, 10, rng);
    const Tensor refs = integer_points(4500, 3, rng);
    const std::vector<int> rlabels = random_labels(4500, 10, rng);
    EXPECT_EQ(metrics::knn_accuracy(queries, qlabels, refs, rlabels, 3),
              brute_knn_accuracy(queries, qlabels, refs, rlabels, 3));
    EXPECT_EQ(metrics::precision_at_1(refs, rlabels), brute_precision_at_1(refs, rlabels));
    const Tensor big = integer_points(2100, 2, rng);  // 2 blocks of full rows
    const std::vector<int> big_labels = random_labels(2100, 3, rng);
    EXPECT_EQ(metrics::map_at_r(big, big_labels), brute_map_at_r(big, big_labels));
}

// ---- bad input ----------------------------------------------------------------------------

TEST(Retrieval, RejectsBadInput) {
    const Tensor x = line({0, 1, 2});
    const std::vector<int> labels = {0, 0, 1};
    EXPECT_THROW(metrics::precision_at_1(x, std::vector<int>{0, 0}), ShapeError);
    EXPECT_THROW(metrics::map_at_r(Tensor(Shape{3}), labels), ShapeError);
    EXPECT_THROW(metrics::knn_accuracy(x, labels, Tensor(Shape{3, 2}), labels, 1), ShapeError);
    EXPECT_THROW(metrics::knn_accuracy(x, labels, x, labels, 0), ValueError);
    EXPECT_THROW(metrics::knn_accuracy(x, labels, x, labels, 4), ValueError);
    EXPECT_THROW(metrics::precision_at_1(x, std::vector<int>{0, 1, 2}), ValueError);  // all lone
    Tensor nan = x;
    nan[1] = std::numeric_limits<float>::quiet_NaN();
    try {
        metrics::map_at_r(nan, labels);
        ADD_FAILURE() << "no error for NaN embeddings";
    } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("non-finite value in row 1"), std::string::npos)
            << e.what();
    }
}

// References fed in uneven chunks (as the trainer embeds the training set) give exactly the
// whole set's result: integer points tie often, and ties must still go to the earliest reference
// across chunk boundaries. k > the references seen so far is refused at result().
TEST(Retrieval, KnnAccuracyOverChunksEqualsWholeSet) {
    Rng rng(17);
    const Tensor queries = integer_points(300, 2, rng);
    const std::vector<int> qlabels = random_labels(300, 4, rng);
    const Tensor refs = integer_points(1000, 2, rng);
    const std::vector<int> rlabels = random_labels(1000, 4, rng);
    for (int k : {1, 4}) {
        metrics::KnnAccuracy acc(queries, qlabels, k);
        EXPECT_THROW(acc.result(), ValueError);
        const std::size_t bounds[] = {0, 1, 7, 400, 999, 1000};
        for (std::size_t c = 0; c + 1 < std::size(bounds); ++c) {
            const std::size_t b = bounds[c], e = bounds[c + 1];
            Tensor chunk({e - b, 2});
            std::copy_n(refs.data() + b * 2, (e - b) * 2, chunk.data());
            acc.add(chunk, std::span<const int>(rlabels).subspan(b, e - b));
        }
        EXPECT_EQ(acc.result(), brute_knn_accuracy(queries, qlabels, refs, rlabels, k)) << "k " << k;
    }
    // Past one gathered block of references (kBlockRows), in chunks that straddle its end.
    const Tensor many = integer_points(5000, 2, rng);
    const std::vector<int> many_labels = random_labels(5000, 4, rng);
    metrics::KnnAccuracy blocks(queries, qlabels, 2);
    for (std::size_t b = 0; b < 5000; b += 333) {
        const std::size_t e = std::min<std::size_t>(b + 333, 5000);
        Tensor chunk({e - b, 2});
        std::copy_n(many.data() + b * 2, (e - b) * 2, chunk.data());
        blocks.add(chunk, std::span<const int>(many_labels).subspan(b, e - b));
    }
    EXPECT_EQ(blocks.result(), brute_knn_accuracy(queries, qlabels, many, many_labels, 2));

    metrics::KnnAccuracy acc(queries, qlabels, 1);
    EXPECT_THROW(acc.add(Tensor(Shape{3, 5}), std::vector<int>{0, 1, 2}), ShapeError);
    EXPECT_THROW(acc.add(Tensor(Shape{3, 2}), std::vector<int>{0, 1}), ShapeError);
}
