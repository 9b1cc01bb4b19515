// The fast triplet losses against (a) a brute-force reference written the way TFA's own test
// writes it (tensorflow_addons/losses/tests/triplet_test.py), (b) the literal O(B^3) port, for
// values and gradients, (c) TFA's docstring values and the special batches of docs/triplet-losses.md, and
// (d) central differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/var.hpp"
#include "grad_helpers.hpp"
#include "losses/triplet.hpp"
#include "losses/semihard_mining.hpp"
#include "losses/triplet_readable.hpp"
#include "losses/triplet_reference.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

using namespace semigrad;
using namespace semigrad::losses;
using namespace semigrad::losses::testing;

static const Distance kMetrics[] = {Distance::L2, Distance::SquaredL2, Distance::Angular};

// ---- brute-force references (TFA's test style), on a given distance matrix -----------------

// For every positive pair sort the anchor's negative distances and take the first one greater
// than d(a,p), else the largest; average the hinge over positive pairs.
static double semihard_brute_force(const Tensor& pdist, const std::vector<int>& labels, double margin) {
    const std::size_t B = labels.size();
    double loss = 0, num_positives = 0;
    for (std::size_t i = 0; i < B; ++i)
        for (std::size_t j = 0; j < B; ++j) {
            if (labels[i] != labels[j] || i == j) continue;
            num_positives += 1;
            const double pos_distance = pdist.at({i, j});
            std::vector<double> neg_distances;
            for (std::size_t k = 0; k < B; ++k)
                if (labels[i] != labels[k]) neg_distances.push_back(pdist.at({i, k}));
            std::sort(neg_distances.begin(), neg_distances.end());
            double chosen = neg_distances.empty() ? 0.0 : neg_distances[0];
            for (double d : neg_distances) {
                chosen = d;
                if (chosen > pos_distance) break;
            }
            loss += std::max(0.0, margin - chosen + pos_distance);
        }
    return loss / num_positives;
}

// Per anchor: farthest positive minus closest negative, averaged over all anchors.
static double hard_brute_force(const Tensor& pdist, const std::vector<int>& labels, double margin, bool soft) {
    const std::size_t B = labels.size();
    double loss = 0;
    for (std::size_t a = 0; a < B; ++a) {
        double row_min = INFINITY, row_max = -INFINITY, hard_pos = -INFINITY, hard_neg = INFINITY;
        for (std::size_t k = 0; k < B; ++k) {
            const double d = pdist.at({a, k});
            row_min = std::min(row_min, d), row_max = std::max(row_max, d);
            if (labels[k] != labels[a]) hard_neg = std::min(hard_neg, d);
            else if (k != a) hard_pos = std::max(hard_pos, d);
        }
        if (std::isinf(hard_neg)) hard_neg = row_max;
        if (std::isinf(hard_pos)) hard_pos = row_min;
        const double z = hard_pos - hard_neg;
        loss += soft ? std::log1p(std::exp(z)) : std::max(z + margin, 0.0);
    }
    return loss / double(B);
}

struct Batch {
    Tensor x;
    std::vector<int> labels;
};

static Batch random_batch(std::size_t B, std::size_t D, int classes, Rng& rng, bool normalise) {
    Batch b{random_normal(B, D, rng), random_labels(B, classes, rng)};
    if (normalise) b.x = normalise_rows(std::move(b.x));
    return b;
}

static float loss_value(const Batch& b, bool hard, float margin, Distance m, bool soft = false) {
    NoGradGuard no_grad;
    Var x(b.x);
    return (hard ? triplet_hard_loss(x, b.labels, margin, soft, m) : triplet_semihard_loss(x, b.labels, margin, m))
        .value()
        .item();
}

struct LossAndGrad {
    float loss;
    Tensor grad;
};

static LossAndGrad loss_and_grad(const Batch& b, bool hard, float margin, Distance m, bool soft = false,
                                 TripletStats* stats = nullptr, Isa isa = active_isa()) {
    Var x(b.x, true);
    Var loss = hard ? triplet_hard_loss(x, b.labels, margin, soft, m, stats, isa)
                    : triplet_semihard_loss(x, b.labels, margin, m, stats, isa);
    backward(loss);
    return {loss.value().item(), x.grad()};
}

// ---- (a) brute force ----------------------------------------------------------------------

TEST(TripletSemihard, MatchesBruteForceOnManySizes) {
    Rng rng(10);
    struct Case { std::size_t B, D; int classes; };
    const Case cases[] = {{2, 2, 2}, {3, 1, 2}, {5, 3, 2}, {8, 6, 4}, {10, 6, 4}, {17, 5, 3}, {32, 16, 10},
                          {33, 8, 5}, {64, 32, 10}, {100, 3, 7}, {127, 64, 10}, {256, 128, 10}, {512, 256, 10}};
    for (const Case& c : cases)
        for (Distance m : kMetrics) {
            if (c.B == 512 && m != Distance::L2) continue;  // the brute force is O(B^3 log B)
            for (bool normalise : {false, true}) {
                Batch b = random_batch(c.B, c.D, c.classes, rng, normalise);
                // At least one positive pair, and one negative when B > 2.
                b.labels[0] = 0, b.labels[1] = c.B == 2 ? 0 : 1;
                if (c.B > 2) b.labels[2] = 0;
                const double want = semihard_brute_force(pairwise_distance(b.x, m), b.labels, 1.0);
                const float got = loss_value(b, false, 1.0f, m);
                EXPECT_NEAR(got, want, 2e-6 * std::max(1.0, std::fabs(want)))
                    << "B=" << c.B << " D=" << c.D << " " << distance_name(m) << " normalised=" << normalise;
            }
        }
}

TEST(TripletSemihard, MatchesBruteForceForOtherMargins) {
    Rng rng(11);
    for (float margin : {0.0f, 0.2f, 2.5f})
        for (Distance m : kMetrics) {
            const Batch b = random_batch(40, 8, 4, rng, true);
            const double want = semihard_brute_force(pairwise_distance(b.x, m), b.labels, margin);
            EXPECT_NEAR(loss_value(b, false, margin, m), want, 2e-6 * std::max(1.0, want)) << margin;
        }
}

TEST(TripletHard, MatchesBruteForceOnManySizes) {
    Rng rng(12);
    for (std::size_t B : {1, 2, 5, 16, 33, 100, 300})
        for (Distance m : kMetrics)
            for (bool soft : {false, true}) {
                const Batch b = random_batch(B, 12, 5, rng, true);
                const double want = hard_brute_force(pairwise_distance(b.x, m), b.labels, 1.0, soft);
                EXPECT_NEAR(loss_value(b, true, 1.0f, m, soft), want, 2e-6 * std::max(1.0, want))
                    << "B=" << B << " " << distance_name(m) << " soft=" << soft;
            }
}

// ---- (b) the literal port: values and gradients -------------------------------------------

static void expect_matches_reference(const Batch& b, bool hard, bool soft, Distance m, float margin,
                                     const std::string& what) {
    const LossAndGrad fast = loss_and_grad(b, hard, margin, m, soft);
    const reference::TripletResult ref = hard ? reference::triplet_hard_loss(b.x, b.labels, margin, soft, m)
                                              : reference::triplet_semihard_loss(b.x, b.labels, margin, m);
    EXPECT_NEAR(fast.loss, ref.loss, 1e-6 * std::max(1.0f, std::fabs(ref.loss))) << what;
    EXPECT_LT(scaled_error(fast.grad, ref.dembeddings, 1e-7, 1e-4), 1.0) << what;
}

// Random unit embeddings put the distances on a ~1e-7 grid, so at B = 256 rows hold exact ties;
// both implementations split a tied gradient evenly (TF's reduce_min/max rule).
TEST(TripletReference, FastSemihardMatchesLiteralPort) {
    Rng rng(20);
    for (std::size_t B : {2, 3, 9, 31, 64, 128, 256})
        for (Distance m : kMetrics)
            for (bool normalise : {false, true}) {
                if (B == 256 && !normalise) continue;
                Batch b = random_batch(B, B == 2 ? 3 : 24, B < 10 ? 2 : 6, rng, normalise);
                b.labels[0] = 0, b.labels[1] = B == 2 ? 0 : 1;
                if (B > 2) b.labels[2] = 0;
                expect_matches_reference(b, false, false, m, 1.0f,
                                         "B=" + std::to_string(B) + " " + distance_name(m) + (normalise ? " unit" : ""));
            }
}

TEST(TripletReference, FastHardMatchesLiteralPort) {
    Rng rng(21);
    for (std::size_t B : {1, 2, 7, 40, 128})
        for (Distance m : kMetrics)
            for (bool soft : {false, true}) {
                const Batch b = random_batch(B, 10, 4, rng, true);
                expect_matches_reference(b, true, soft, m, 0.5f,
                                         "B=" + std::to_string(B) + " " + distance_name(m) + (soft ? " soft" : ""));
            }
}

// A semi-hard negative that is also the anchor's farthest point makes masked_minimum's shifted
// minimum 0, tied with every masked-out entry: TF still sends the whole gradient to it.
TEST(TripletReference, SemihardNegativeThatIsTheRowMaximum) {
    Tensor x({3, 1}, {0.0f, 1.0f, 3.0f});
    const Batch b{x, {0, 0, 1}};
    // (1-D angular distances are all 0, 1 or 2: nothing but ties, so L2 and squared-L2 only.)
    for (Distance m : {Distance::L2, Distance::SquaredL2}) expect_matches_reference(b, false, false, m, 1.0f, distance_name(m));
}

// ---- (c) documented values and special batches ----------------------------------------------

TEST(TripletSemihard, TfaDocstringExample) {
    const Batch b{Tensor({2, 2}, {0.0f, 1.0f, 1.0f, 0.0f}), {0, 0}};
    EXPECT_FLOAT_EQ(loss_value(b, false, 1.0f, Distance::L2), 2.4142137f);  // 1 + sqrt(2)
    EXPECT_FLOAT_EQ(reference::triplet_semihard_loss(b.x, b.labels).loss, 2.4142137f);
}

TEST(TripletHard, TfaDocstringExample) {
    const Batch b{Tensor({2, 2}, {0.0f, 1.0f, 1.0f, 0.0f}), {0, 0}};
    EXPECT_FLOAT_EQ(loss_value(b, true, 1.0f, Distance::L2), 1.0f);
    const LossAndGrad r = loss_and_grad(b, true, 1.0f, Distance::L2);
    for (std::size_t i = 0; i < r.grad.size(); ++i) EXPECT_EQ(r.grad[i], 0.0f);  // hp and hn cancel
}

TEST(TripletSemihard, AllLabelsEqualGivesMarginPlusMeanPositiveDistance) {
    Rng rng(30);
    for (Distance m : kMetrics) {
        const Batch b{normalise_rows(random_normal(7, 5, rng)), std::vector<int>(7, 3)};
        const Tensor pdist = pairwise_distance(b.x, m);
        double mean = 0;
        for (std::size_t a = 0; a < 7; ++a)
            for (std::size_t p = 0; p < 7; ++p)
                if (a != p) mean += pdist.at({a, p}) / 42.0;
        // No negatives: the fallback is the row minimum (0 for L2; the ~0 diagonal for angular).
        EXPECT_NEAR(loss_value(b, false, 0.7f, m), 0.7 + mean, 1e-6) << distance_name(m);
        expect_matches_reference(b, false, false, m, 0.7f, distance_name(m));
    }
}

TEST(TripletSemihard, AllLabelsUniqueGivesZeroAndZeroGradientWhereTfaGivesNaN) {
    Rng rng(31);
    const Batch b{random_normal(6, 4, rng), {0, 1, 2, 3, 4, 5}};
    for (Distance m : kMetrics) {
        TripletStats stats;
        const LossAndGrad r = loss_and_grad(b, false, 1.0f, m, false, &stats);
        EXPECT_EQ(r.loss, 0.0f);
        ASSERT_EQ(r.grad.shape(), b.x.shape());
        for (std::size_t i = 0; i < r.grad.size(); ++i) EXPECT_EQ(r.grad[i], 0.0f);
        EXPECT_TRUE(stats.no_positive_pair);
        EXPECT_EQ(stats.positive_pairs, 0u);
        EXPECT_EQ(stats.active_pairs, 0u);
        EXPECT_GT(stats.mean_negative_distance, 0.0f);
        // TFA (and the literal port) divide 0 by 0.
        EXPECT_TRUE(std::isnan(reference::triplet_semihard_loss(b.x, b.labels, 1.0f, m).loss));
    }
    // A batch of one is the same case.
    const Batch one{Tensor({1, 3}, {1.0f, 2.0f, 3.0f}), {4}};
    EXPECT_EQ(loss_value(one, false, 1.0f, Distance::L2), 0.0f);
}

TEST(TripletHard, NoPositivePairKeepsTfasFiniteValue) {
    Rng rng(32);
    const Batch b{normalise_rows(random_normal(5, 3, rng)), {0, 1, 2, 3, 4}};
    TripletStats stats;
    const LossAndGrad r = loss_and_grad(b, true, 1.0f, Distance::L2, false, &stats);
    EXPECT_TRUE(stats.no_positive_pair);
    EXPECT_NEAR(r.loss, hard_brute_force(pairwise_distance(b.x, Distance::L2), b.labels, 1.0, false), 1e-6);
    expect_matches_reference(b, true, false, Distance::L2, 1.0f, "unique labels");
}

// Duplicated embeddings: zero distances (no NaN from sqrt'(0)) and exactly tied distances, whose
// gradient TF splits evenly between the duplicates.
TEST(TripletSemihard, DuplicateEmbeddingsGiveFiniteGradientsSplitLikeTf) {
    Rng rng(33);
    Tensor x = normalise_rows(random_normal(12, 6, rng));
    for (std::size_t d = 0; d < 6; ++d) x[5 * 6 + d] = x[2 * 6 + d], x[9 * 6 + d] = x[2 * 6 + d];
    const Batch b{x, {0, 1, 0, 1, 2, 1, 2, 0, 2, 1, 0, 2}};
    for (bool hard : {false, true})
        for (Distance m : kMetrics) {
            const LossAndGrad fast = loss_and_grad(b, hard, 1.0f, m);
            for (std::size_t i = 0; i < fast.grad.size(); ++i) ASSERT_TRUE(std::isfinite(fast.grad[i]));
            expect_matches_reference(b, hard, false, m, 1.0f, std::string(hard ? "hard " : "semi-hard ") + distance_name(m));
        }
}

TEST(TripletSemihard, CollapsedEmbeddingsShowInTheStats) {
    // Every embedding equal: all distances 0, every pair active at exactly the margin.
    Tensor x({6, 3});
    for (std::size_t i = 0; i < 6; ++i) x[i * 3] = 1.0f;
    const Batch b{x, {0, 0, 1, 1, 2, 2}};
    TripletStats stats;
    const LossAndGrad r = loss_and_grad(b, false, 1.0f, Distance::L2, false, &stats);
    EXPECT_FLOAT_EQ(r.loss, 1.0f);
    EXPECT_EQ(stats.positive_pairs, 6u);
    EXPECT_EQ(stats.active_pairs, 6u);
    EXPECT_FLOAT_EQ(stats.fraction_active, 1.0f);
    EXPECT_EQ(stats.mean_positive_distance, 0.0f);
    EXPECT_EQ(stats.mean_negative_distance, 0.0f);
    for (std::size_t i = 0; i < r.grad.size(); ++i) EXPECT_EQ(r.grad[i], 0.0f);
}

TEST(TripletStats, CountsAndMeansMatchTheirDefinitions) {
    Rng rng(34);
    const Batch b = random_batch(30, 8, 4, rng, true);
    const Tensor pdist = pairwise_distance(b.x, Distance::L2);
    std::size_t positives = 0, negatives = 0;
    double pos_sum = 0, neg_sum = 0;
    for (std::size_t a = 0; a < 30; ++a)
        for (std::size_t k = 0; k < 30; ++k) {
            if (b.labels[a] != b.labels[k]) ++negatives, neg_sum += pdist.at({a, k});
            else if (a != k) ++positives, pos_sum += pdist.at({a, k});
        }
    TripletStats semi, hard;
    loss_and_grad(b, false, 0.3f, Distance::L2, false, &semi);
    loss_and_grad(b, true, 0.3f, Distance::L2, false, &hard);
    for (const TripletStats* s : {&semi, &hard}) {
        EXPECT_EQ(s->positive_pairs, positives);
        EXPECT_NEAR(s->mean_positive_distance, pos_sum / double(positives), 1e-5);
        EXPECT_NEAR(s->mean_negative_distance, neg_sum / double(negatives), 1e-5);
        EXPECT_FALSE(s->no_positive_pair);
    }
    EXPECT_GT(semi.active_pairs, 0u);
    EXPECT_LE(semi.active_pairs, positives);
    EXPECT_FLOAT_EQ(semi.fraction_active, float(double(semi.active_pairs) / double(positives)));
    EXPECT_LE(hard.active_pairs, 30u);
    EXPECT_FLOAT_EQ(hard.fraction_active, float(double(hard.active_pairs) / 30.0));
}

// ---- (d) central differences --------------------------------------------------------------

// A batch whose distances are, per anchor row, pairwise at least `gap` apart and at least `gap`
// from every hinge kink (d_ap - d_an = -margin), so a step of h << gap crosses no kink.
static Batch batch_away_from_kinks(std::size_t B, std::size_t D, const std::vector<int>& labels, Distance m,
                                   float margin, Rng& rng, float gap) {
    for (int attempt = 0; attempt < 10000; ++attempt) {
        Batch b{random_normal(B, D, rng), labels};
        const Tensor pdist = pairwise_distance(b.x, m);
        bool ok = true;
        for (std::size_t a = 0; a < B && ok; ++a)
            for (std::size_t i = 0; i < B && ok; ++i)
                for (std::size_t j = 0; j < B && ok; ++j) {
                    if (i == j || i == a || j == a) continue;
                    const float di = pdist.at({a, i}), dj = pdist.at({a, j});
                    ok = std::fabs(di - dj) > gap && std::fabs(margin + di - dj) > gap;
                }
        if (ok) return b;
    }
    ADD_FAILURE() << "no batch away from kinks";
    return {};
}

TEST(TripletGradcheck, SemihardAndHardMatchCentralDifferences) {
    Rng rng(40);
    const std::vector<int> labels = {0, 1, 0, 1, 2, 0, 2};
    for (Distance m : kMetrics)
        for (int variant = 0; variant < 3; ++variant) {
            const bool hard = variant > 0, soft = variant == 2;
            const float margin = m == Distance::Angular ? 0.3f : 1.0f;
            const Batch b = batch_away_from_kinks(7, 3, labels, m, margin, rng, 0.004f);
            const LossAndGrad analytic = loss_and_grad(b, hard, margin, m, soft);
            const Tensor numeric = numeric_gradient(
                [&](const Tensor& probe) { return loss_value({probe, labels}, hard, margin, m, soft); }, b.x, 5e-4f);
            EXPECT_LT(scaled_error(analytic.grad, numeric, 1e-3, 1e-2), 1.0)
                << distance_name(m) << (hard ? (soft ? " soft" : " hard") : " semi-hard");
            double norm = 0;
            for (std::size_t i = 0; i < numeric.size(); ++i) norm += std::fabs(numeric[i]);
            EXPECT_GT(norm, 1e-3) << "the check is vacuous: no active triplet";
        }
}

// ---- threads, errors ----------------------------------------------------------------------

TEST(TripletThreads, OneAndTwoThreadsGiveIdenticalResults) {
    Rng rng(50);
    const Batch b = random_batch(300, 32, 10, rng, true);
    const int before = num_threads();
    for (bool hard : {false, true})
        for (Distance m : kMetrics) {
            set_num_threads(1);
            const LossAndGrad one = loss_and_grad(b, hard, 1.0f, m);
            set_num_threads(2);
            const LossAndGrad two = loss_and_grad(b, hard, 1.0f, m);
            // The mining and every reduction are thread-count independent, but the distances
            // come from OpenBLAS's sgemm, which promises nothing about the last bits at another
            // thread count (its Haswell/Zen kernels do change them for some shapes): equal to
            // float rounding of the distances, not bit for bit.
            EXPECT_NEAR(one.loss, two.loss, 1e-6f * std::max(1.0f, std::abs(one.loss)))
                << distance_name(m);
            // The gradient's [B,B] x [B,D] sgemm is OpenBLAS's, whose blocking changes with the
            // thread count: equal to float rounding, not bit for bit.
            EXPECT_LT(scaled_error(one.grad, two.grad, 0.0, 1e-5), 1.0) << distance_name(m);
        }
    set_num_threads(before);
}

TEST(TripletErrors, BadInputsNameTheOpAndShape) {
    const std::vector<int> labels = {0, 1, 0};
    auto message = [](auto&& fn) {
        try {
            fn();
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    const std::string rank = message([&] { triplet_semihard_loss(Var(Tensor({3})), labels); });
    EXPECT_NE(rank.find("triplet_semihard_loss"), std::string::npos) << rank;
    EXPECT_NE(rank.find("[3]"), std::string::npos) << rank;
    const std::string count = message([&] { triplet_hard_loss(Var(Tensor({4, 2})), labels); });
    EXPECT_NE(count.find("triplet_hard_loss: 3 labels for embeddings [4,2]"), std::string::npos) << count;
    EXPECT_THROW(triplet_semihard_loss(Var(Tensor({0, 2})), std::vector<int>{}), ShapeError);
    EXPECT_THROW(triplet_semihard_loss(Var(Tensor({3, 2})), labels, NAN), ValueError);
}

// ---- the fast paths' own corners -----------------------------------------------------------

// Integer coordinates in {0,1,2}: distances take a handful of values, so nearly every selected
// negative (semi-hard bucket minimum, farthest negative) is tied with others and positives tie
// with positives. (The literal port's gradient differs here in TF's corner cases that the header
// of losses/triplet.cpp lists, so: values against the brute force, and the gradient's sum,
// which is 0 for any function of distances, i.e. the tie shares add up.)
TEST(TripletSemihard, ManyExactTiesMatchBruteForce) {
    Rng rng(60);
    for (std::size_t B : {24, 65}) {
        Batch b{Tensor({B, 3}), random_labels(B, 4, rng)};
        for (std::size_t i = 0; i < b.x.size(); ++i) b.x[i] = float(rng.below(3));
        for (Distance m : {Distance::L2, Distance::SquaredL2})
            for (float margin : {0.5f, 3.0f}) {
                const double want = semihard_brute_force(pairwise_distance(b.x, m), b.labels, margin);
                const LossAndGrad r = loss_and_grad(b, false, margin, m);
                EXPECT_NEAR(r.loss, want, 2e-6 * std::max(1.0, want)) << "B=" << B << " " << distance_name(m);
                double norm = 0;
                for (std::size_t k = 0; k < 3; ++k) {
                    double sum = 0;
                    for (std::size_t i = 0; i < B; ++i) sum += r.grad[i * 3 + k], norm += std::fabs(r.grad[i * 3 + k]);
                    EXPECT_NEAR(sum, 0.0, 1e-5) << "B=" << B << " " << distance_name(m);
                }
                EXPECT_GT(norm, 1e-3);
            }
    }
}

// All positives of an anchor at one distance (the rank table's range is 0) and negatives on
// both sides of it.
TEST(TripletReference, PositivesAllAtOneDistance) {
    // Anchor 0 at the origin; its positives on the unit circle; negatives at 1 (not > 1), 1.5, 3.
    Tensor x({7, 2}, {0, 0, 1, 0, 0, 1, -1, 0, 0, -1, 0, 1.5f, -3, 0});
    const Batch b{x, {0, 0, 0, 0, 1, 1, 1}};
    for (Distance m : {Distance::L2, Distance::SquaredL2}) expect_matches_reference(b, false, false, m, 1.0f, distance_name(m));
}

// B >= 1024 takes the ssyrk distances and large rank tables, out of the literal port's reach
// (O(B^3) memory): the value against a per-anchor sort-and-search (TFA's test algorithm with
// the negatives sorted once), on the loss's own distance matrix.
TEST(TripletSemihard, LargeBatchMatchesSortAndSearch) {
    Rng rng(61);
    const std::size_t B = 1031;
    const Batch b = random_batch(B, 16, 10, rng, true);
    for (Distance m : kMetrics) {
        const Tensor pdist = pairwise_distance(b.x, m);
        double loss = 0, num_positives = 0;
        for (std::size_t a = 0; a < B; ++a) {
            std::vector<float> negatives;
            for (std::size_t k = 0; k < B; ++k)
                if (b.labels[k] != b.labels[a]) negatives.push_back(pdist.at({a, k}));
            std::sort(negatives.begin(), negatives.end());
            for (std::size_t p = 0; p < B; ++p) {
                if (p == a || b.labels[p] != b.labels[a]) continue;
                num_positives += 1;
                const float d_ap = pdist.at({a, p});
                auto it = std::upper_bound(negatives.begin(), negatives.end(), d_ap);
                const double chosen = it != negatives.end() ? *it : negatives.back();
                loss += std::max(0.0, 1.0 + d_ap - chosen);
            }
        }
        TripletStats stats;
        const LossAndGrad r = loss_and_grad(b, false, 1.0f, m, false, &stats);
        EXPECT_NEAR(r.loss, loss / num_positives, 2e-6) << distance_name(m);
        EXPECT_EQ(double(stats.positive_pairs), num_positives);
        for (std::size_t i = 0; i < r.grad.size(); ++i) ASSERT_TRUE(std::isfinite(r.grad[i]));
    }
}

// ---- the two mining implementations -------------------------------------------------------

// The instruction-set paths this CPU runs (tensor/simd.hpp), portable first.
static std::vector<Isa> cpu_paths() {
    std::vector<Isa> paths;
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512})
        if (cpu_runs(isa)) paths.push_back(isa);
    return paths;
}

// Every mining path the CPU runs gives the portable path's bits: loss, statistics and gradient,
// on batch sizes around the 8- and 16-lane widths, with exact ties (integer coordinates),
// duplicate rows and all-equal labels. The hard loss shares the sparse-row builder.
TEST(TripletSemihard, EveryMiningPathGivesThePortableBits) {
    if (cpu_paths().size() < 2) GTEST_SKIP() << "this CPU runs only the portable path";
    Rng rng(70);
    for (std::size_t B : {1, 2, 7, 8, 9, 15, 16, 17, 33, 100, 257, 1030})
        for (int kind = 0; kind < 3; ++kind) {
            // Widths for the distance backward's panels of 64: a tail of 8 lanes, of 7, and one narrow panel.
            const std::size_t D = B % 3 == 0 ? 200 : B % 3 == 1 ? 71 : 8;
            Batch b = random_batch(B, D, kind == 2 ? 1 : 7, rng, kind == 0);
            if (kind == 1)
                for (std::size_t i = 0; i < b.x.size(); ++i) b.x[i] = float(rng.below(3));
            for (Distance m : kMetrics)
                for (bool hard : {false, true}) {
                    TripletStats portable_stats;
                    const LossAndGrad portable = loss_and_grad(b, hard, 1.0f, m, false, &portable_stats, Isa::portable);
                    for (Isa isa : cpu_paths()) {
                        TripletStats stats;
                        const LossAndGrad fast = loss_and_grad(b, hard, 1.0f, m, false, &stats, isa);
                        const std::string where = std::string(isa_name(isa)) + (hard ? " hard" : " semi-hard") +
                                                  " B=" + std::to_string(B) + " kind " + std::to_string(kind) +
                                                  " " + distance_name(m);
                        EXPECT_EQ(fast.loss, portable.loss) << where;
                        EXPECT_EQ(stats.active_pairs, portable_stats.active_pairs) << where;
                        EXPECT_EQ(stats.mean_positive_distance, portable_stats.mean_positive_distance) << where;
                        EXPECT_EQ(stats.mean_negative_distance, portable_stats.mean_negative_distance) << where;
                        ASSERT_EQ(fast.grad.size(), portable.grad.size());
                        for (std::size_t i = 0; i < fast.grad.size(); ++i)
                            ASSERT_EQ(fast.grad[i], portable.grad[i]) << where << " i=" << i;
                    }
                }
        }
}

// A path the CPU lacks is refused with a message naming it, before any work.
TEST(TripletSemihard, RefusesAPathTheCpuLacks) {
    if (cpu_runs(Isa::avx512)) GTEST_SKIP() << "this CPU runs every path";
    Rng rng(72);
    const Batch b = random_batch(8, 4, 2, rng, true);
    Var x(b.x, true);
    try {
        triplet_semihard_loss(x, b.labels, 1.0f, Distance::L2, nullptr, Isa::avx512);
        FAIL() << "expected ValueError";
    } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("avx512"), std::string::npos) << e.what();
    }
}

// Row a mined by the given path.
static detail::MinedRow mine_row(const std::vector<float>& row, const std::vector<int>& labels, std::size_t a,
                                 Isa isa) {
    detail::SemihardMiner miner(row.size(), isa);
    miner.mine(row.data(), labels.data(), a);
    return miner.result();
}

// One row mined by hand: positives sorted with their columns, every negative's bucket and
// each bucket's minimum, tie count and first column, the farthest negative, in both
// implementations. Row of anchor 0 (label 0): columns 1..19 with labels 0,1,1,0,1,...
TEST(SemihardMiner, MinesOneRowExactly) {
    const std::size_t B = 20;
    std::vector<float> row(B);
    std::vector<int> labels(B);
    const float d[B] = {0, 3, 5, 1, 2, 2, 4, 7, 0.5f, 6, 2, 1, 9, 9, 3, 8, 2, 5, 4, 1.5f};
    for (std::size_t k = 0; k < B; ++k) row[k] = d[k], labels[k] = k % 3 == 0 ? 0 : 1;
    // Positives: columns 3, 6, 9, 12, 15, 18 -> distances 1, 4, 6, 9, 8, 4.
    for (Isa isa : cpu_paths()) {
        SCOPED_TRACE(isa_name(isa));
        const detail::MinedRow r = mine_row(row, labels, 0, isa);
        ASSERT_EQ(r.m, 6u);
        ASSERT_EQ(r.n, 13u);
        const float value[] = {1, 4, 4, 6, 8, 9};
        const std::uint32_t positive[] = {3, 6, 18, 9, 15, 12};
        for (std::size_t q = 0; q < 6; ++q) {
            EXPECT_EQ(r.value[q], value[q]) << "positive " << q;
            EXPECT_EQ(r.positive[q], positive[q]) << "positive " << q;
        }
        EXPECT_EQ(r.value[6], INFINITY);
        // Negatives (columns 1,2,4,5,7,8,10,11,13,14,16,17,19): 3,5,2,2,7,0.5,2,1,9,3,2,5,1.5.
        // Buckets: 0: d <= 1 -> {0.5, 1}; 1: (1,4] -> {3,2,2,2,3,2,1.5}; 2: (4,4] empty;
        // 3: (4,6] -> {5,5}; 4: (6,8] -> {7}; 5: (8,9] -> {9}; 6: > 9 -> empty.
        const std::uint32_t rank[] = {1, 3, 1, 1, 4, 0, 1, 0, 5, 1, 1, 3, 1};
        for (std::size_t q = 0; q < 13; ++q) EXPECT_EQ(r.rank[q], rank[q]) << "negative " << q;
        const float bmin[] = {0.5f, 1.5f, INFINITY, 5, 7, 9, INFINITY};
        const std::uint32_t ties[] = {1, 1, 0, 2, 1, 1, 0}, column[] = {8, 19, 0, 2, 7, 13, 0};
        for (std::size_t k = 0; k < 7; ++k) {
            EXPECT_EQ(r.bucket_min[k], bmin[k]) << "bucket " << k;
            EXPECT_EQ(r.bucket_ties[k], ties[k]) << "bucket " << k;
            EXPECT_EQ(r.bucket_column[k], column[k]) << "bucket " << k;
        }
        EXPECT_EQ(r.farthest, 9.0f);
        EXPECT_EQ(r.farthest_ties, 1u);
        EXPECT_EQ(r.farthest_column, 13u);
        EXPECT_EQ(r.row_max, 9.0f);
        EXPECT_EQ(r.row_min, 0.0f);
        EXPECT_EQ(r.row_sum, 75.0);
    }
}

// An infinite positive distance (an overflowed |x|^2) makes the rank table's range infinite:
// every positive lands in one cell, and the row must still come out sorted, with exact ranks.
TEST(SemihardMiner, InfinitePositiveDistanceStaysExact) {
    const std::vector<float> row = {0.0f, INFINITY, 1.0f, 2.0f, 0.5f};
    const std::vector<int> labels = {0, 0, 0, 1, 1};
    for (Isa isa : cpu_paths()) {
        SCOPED_TRACE(isa_name(isa));
        const detail::MinedRow r = mine_row(row, labels, 0, isa);
        ASSERT_EQ(r.m, 2u);
        ASSERT_EQ(r.n, 2u);
        EXPECT_EQ(r.value[0], 1.0f);
        EXPECT_EQ(r.positive[0], 2u);
        EXPECT_EQ(r.value[1], INFINITY);
        EXPECT_EQ(r.positive[1], 1u);
        EXPECT_EQ(r.rank[0], 1u);  // 2 > 1 only
        EXPECT_EQ(r.rank[1], 0u);  // 0.5 below both
        EXPECT_EQ(r.bucket_min[0], 0.5f);
        EXPECT_EQ(r.bucket_min[1], 2.0f);
        EXPECT_EQ(r.bucket_ties[2], 0u);
    }
}

// The same degenerate cells with many positives (all of them in cell 0): the row must come out
// sorted, with exact ranks, in O(P log P) per anchor, not O(P^2).
TEST(SemihardMiner, ManyPositivesInOneCellSortAndRankExactly) {
    Rng rng(71);
    const std::size_t B = 601;
    std::vector<float> row(B);
    std::vector<int> labels(B);
    for (std::size_t k = 0; k < B; ++k) row[k] = rng.uniform() * 4.0f, labels[k] = k % 2 == 0 ? 0 : 1;
    row[0] = 0.0f, row[2] = INFINITY;  // anchor 0; an infinite positive distance
    for (Isa isa : cpu_paths()) {
        SCOPED_TRACE(isa_name(isa));
        const detail::MinedRow r = mine_row(row, labels, 0, isa);
        ASSERT_EQ(r.m, 300u);
        std::vector<std::pair<float, std::uint32_t>> want;
        for (std::uint32_t k = 2; k < B; k += 2) want.emplace_back(row[k], k);
        std::stable_sort(want.begin(), want.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        for (std::size_t q = 0; q < r.m; ++q) {
            ASSERT_EQ(r.value[q], want[q].first) << q;
            ASSERT_EQ(r.positive[q], want[q].second) << q;
        }
        for (std::size_t q = 0; q < r.n; ++q) {
            std::uint32_t below = 0;
            for (const auto& p : want) below += p.first < r.negative_distance[q];
            ASSERT_EQ(r.rank[q], below) << "negative " << q;
        }
    }
}

// The hard loss with exact ties (integer coordinates): the hardest positive's and negative's
// gradient split evenly over tied entries (TF's reduce_max/min rule), whether the loss places an
// untied extreme directly or scans the row for ties. Expected: the dense dD written out here by
// that rule, through the same distance backward.
TEST(TripletHard, TiedExtremesSplitTheGradientEvenly) {
    Rng rng(72);
    for (std::size_t B : {12, 70, 130}) {
        Batch b{Tensor({B, 2}), random_labels(B, 3, rng)};
        for (std::size_t i = 0; i < b.x.size(); ++i) b.x[i] = float(rng.below(4));
        for (int c = 0; c < 3; ++c) b.labels[std::size_t(2 * c)] = b.labels[std::size_t(2 * c + 1)] = c;  // every class twice
        const float margin = 20.0f;  // every anchor active: slope 1
        const Tensor pdist = pairwise_distance(b.x, Distance::SquaredL2);
        Tensor dD({B, B});
        for (std::size_t a = 0; a < B; ++a) {
            float hard_pos = -INFINITY, hard_neg = INFINITY;
            for (std::size_t k = 0; k < B; ++k) {
                if (b.labels[k] == b.labels[a] && k != a) hard_pos = std::max(hard_pos, pdist.at({a, k}));
                if (b.labels[k] != b.labels[a]) hard_neg = std::min(hard_neg, pdist.at({a, k}));
            }
            float pos_ties = 0, neg_ties = 0;
            for (std::size_t k = 0; k < B; ++k) {
                pos_ties += b.labels[k] == b.labels[a] && k != a && pdist.at({a, k}) == hard_pos;
                neg_ties += b.labels[k] != b.labels[a] && pdist.at({a, k}) == hard_neg;
            }
            for (std::size_t k = 0; k < B; ++k) {
                if (b.labels[k] == b.labels[a] && k != a && pdist.at({a, k}) == hard_pos) dD.at({a, k}) += 1.0f / pos_ties;
                if (b.labels[k] != b.labels[a] && pdist.at({a, k}) == hard_neg) dD.at({a, k}) -= 1.0f / neg_ties;
            }
        }
        const Tensor want = PairwiseDistance(b.x, Distance::SquaredL2).backward(dD, 1.0f / float(B));
        const LossAndGrad got = loss_and_grad(b, true, margin, Distance::SquaredL2);
        EXPECT_LT(scaled_error(got.grad, want, 1e-7, 1e-6), 1.0) << "B=" << B;
    }
}

// ---- the workspace -------------------------------------------------------------------------

// A workspace kept across calls of changing batch sizes, losses and metrics gives the bits a
// fresh one gives; nodes made with one workspace may be alive together (their backward runs
// after a later call); release() frees everything it held.
TEST(TripletWorkspace, ReuseGivesTheBitsOfAFreshOneAndReleaseFreesAll) {
    Rng rng(73);
    TripletWorkspace workspace;
    EXPECT_EQ(workspace.bytes(), 0u);
    for (std::size_t B : {300, 40, 300, 129})
        for (bool hard : {false, true})
            for (Distance m : kMetrics) {
                const Batch b = random_batch(B, 12, 5, rng, true), c = random_batch(B, 12, 5, rng, true);
                const LossAndGrad fresh_b = loss_and_grad(b, hard, 0.5f, m), fresh_c = loss_and_grad(c, hard, 0.5f, m);
                Var xb(b.x, true), xc(c.x, true);
                auto loss = [&](Var& x, const Batch& batch) {
                    return hard ? triplet_hard_loss(x, batch.labels, 0.5f, false, m, nullptr, active_isa(), &workspace)
                                : triplet_semihard_loss(x, batch.labels, 0.5f, m, nullptr, active_isa(), &workspace);
                };
                Var lb = loss(xb, b), lc = loss(xc, c);  // two nodes alive, one workspace
                backward(lc);
                backward(lb);
                const std::string where = std::string(hard ? "hard" : "semi-hard") + " B=" + std::to_string(B) + " " + distance_name(m);
                EXPECT_EQ(lb.value().item(), fresh_b.loss) << where;
                EXPECT_EQ(lc.value().item(), fresh_c.loss) << where;
                for (std::size_t i = 0; i < b.x.size(); ++i) {
                    ASSERT_EQ(xb.grad()[i], fresh_b.grad[i]) << where << " i=" << i;
                    ASSERT_EQ(xc.grad()[i], fresh_c.grad[i]) << where << " i=" << i;
                }
            }
    EXPECT_GT(workspace.bytes(), 300u * 300u * sizeof(float));  // at least the spare [B,B] buffer
    workspace.release();
    EXPECT_EQ(workspace.bytes(), 0u);
}

// ---- the readable loss ---------------------------------------------------------------------

// The fast loss is the readable one (losses/triplet_readable.cpp), faster: the same value and
// the same gradient, on batches around the vector widths and the parallel threshold, for every
// metric and some margins, with exact ties (integer coordinates), duplicate rows, one class and
// all-unique labels. Sums run in another order (and tied shares are added as k/t instead of t
// additions of 1/t), hence a float-rounding tolerance rather than equality.
TEST(TripletReadable, FastLossEqualsTheReadableOne) {
    Rng rng(74);
    for (std::size_t B : {1, 2, 3, 9, 17, 32, 65, 130, 301})
        for (int kind = 0; kind < 4; ++kind) {
            const int classes = kind == 2 ? 1 : kind == 3 ? int(B) : 6;
            Batch b = random_batch(B, 8, classes, rng, kind != 1);
            if (kind == 3)
                for (std::size_t i = 0; i < B; ++i) b.labels[i] = int(i);
            if (kind == 1)
                for (std::size_t i = 0; i < b.x.size(); ++i) b.x[i] = float(rng.below(3));
            for (Distance m : kMetrics)
                for (float margin : {1.0f, 0.2f}) {
                    const LossAndGrad fast = loss_and_grad(b, false, margin, m);
                    Var x(b.x, true);
                    Var loss = triplet_semihard_loss_readable(x, b.labels, margin, m);
                    backward(loss);
                    const std::string where = "B=" + std::to_string(B) + " kind " + std::to_string(kind) + " " +
                                              distance_name(m) + " margin " + std::to_string(margin);
                    EXPECT_NEAR(fast.loss, loss.value().item(), 1e-6f * std::max(1.0f, std::abs(fast.loss))) << where;
                    float scale = 0.0f;
                    for (std::size_t i = 0; i < fast.grad.size(); ++i) scale = std::max(scale, std::abs(fast.grad[i]));
                    for (std::size_t i = 0; i < fast.grad.size(); ++i)
                        ASSERT_NEAR(fast.grad[i], x.grad()[i], 1e-5f * std::max(scale, 1e-3f)) << where << " i=" << i;
                }
        }
}

TEST(TripletReadable, RejectsBadShapes) {
    Var x(Tensor({3, 2}, 0.5f), true);
    const std::vector<int> two = {0, 1};
    EXPECT_THROW(triplet_semihard_loss_readable(x, two), ShapeError);
    EXPECT_THROW(triplet_semihard_loss_readable(Var(Tensor({4}, 0.5f), true), std::vector<int>(4, 0)), ShapeError);
}
