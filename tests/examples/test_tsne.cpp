// Tests of examples/tsne.cpp: perplexity calibration, joint affinities, the gradient against
// finite differences and a naive reference, cluster preservation on Gaussian blobs,
// determinism (seed and thread count) and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "examples/tsne.hpp"
#include "tests/examples/blobs.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace semigrad;
using namespace semigrad::viz;
using semigrad::testing::Blobs;
using semigrad::testing::make_blobs;

namespace {

Tensor random_map(std::size_t n, float scale, Rng& rng) {
    Tensor y({n, 2});
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = scale * rng.normal();
    return y;
}

double row_entropy(const Tensor& p, std::size_t i) {
    const std::size_t n = p.dim(1);
    double h = 0.0;
    for (std::size_t j = 0; j < n; ++j)
        if (p[i * n + j] > 0) h -= double(p[i * n + j]) * std::log(double(p[i * n + j]));
    return h;
}

// The gradient formula of the 2008 paper (eq. 5) written out in double, pair by pair.
std::vector<double> naive_gradient(const Tensor& p, const Tensor& y, double exaggeration) {
    const std::size_t n = y.dim(0);
    auto num = [&](std::size_t i, std::size_t j) {
        const double d0 = double(y[2 * i]) - y[2 * j], d1 = double(y[2 * i + 1]) - y[2 * j + 1];
        return 1.0 / (1.0 + d0 * d0 + d1 * d1);
    };
    double Z = 0.0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (i != j) Z += num(i, j);
    std::vector<double> dy(2 * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            if (i == j) continue;
            const double w = 4.0 * (exaggeration * p[i * n + j] - num(i, j) / Z) * num(i, j);
            dy[2 * i] += w * (double(y[2 * i]) - y[2 * j]);
            dy[2 * i + 1] += w * (double(y[2 * i + 1]) - y[2 * j + 1]);
        }
    return dy;
}

// Leave-one-out 1-nearest-neighbour accuracy of the map y [n, 2].
double knn1_accuracy(const Tensor& y, const std::vector<int>& labels) {
    const std::size_t n = y.dim(0);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
        double best = std::numeric_limits<double>::infinity();
        int best_label = -1;
        for (std::size_t j = 0; j < n; ++j) {
            if (i == j) continue;
            const double d0 = y[2 * i] - y[2 * j], d1 = y[2 * i + 1] - y[2 * j + 1];
            if (d0 * d0 + d1 * d1 < best) best = d0 * d0 + d1 * d1, best_label = labels[j];
        }
        correct += best_label == labels[i];
    }
    return double(correct) / double(n);
}

}  // namespace

TEST(TsneAffinities, EachRowHitsTheTargetEntropy) {
    const Blobs b = make_blobs(4, 75, 50, 3);
    for (double perplexity : {5.0, 30.0, 50.0}) {
        const Tensor p = tsne_conditional_affinities(b.x, perplexity);
        ASSERT_EQ(p.shape(), (Shape{300, 300}));
        for (std::size_t i : {0, 17, 150, 299}) {
            double sum = 0.0;
            for (std::size_t j = 0; j < 300; ++j) sum += p[i * 300 + j];
            EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << i;
            EXPECT_EQ(p[i * 300 + i], 0.0f) << "row " << i;
            // The bisection stops at |H - log perplexity| < 1e-5; float storage adds ~1e-6.
            EXPECT_NEAR(row_entropy(p, i), std::log(perplexity), 1e-4) << "row " << i << " perplexity " << perplexity;
        }
    }
}

TEST(TsneAffinities, RowsAreGaussianInTheSquaredDistance) {
    // Points on a line at 0, 1, 3, 4.5, 7, ...: p_{j|0} = exp(-beta d_j^2) / W, so
    // log(p_j / p_k) / (d_k^2 - d_j^2) is the same beta for every pair j, k.
    const std::vector<float> pos = {0, 1, 3, 4.5f, 7, 8, 10.5f, 12, 13};
    Tensor x({pos.size(), 1}, pos);
    const Tensor p = tsne_conditional_affinities(x, 2.5);
    const std::size_t n = pos.size();
    const double beta = std::log(double(p[1]) / p[2]) / (9.0 - 1.0);
    EXPECT_GT(beta, 0.0);
    for (std::size_t j = 2; j < 5; ++j) {
        const double dj = double(pos[j]) * pos[j], dk = double(pos[j + 1]) * pos[j + 1];
        EXPECT_NEAR(std::log(double(p[j]) / p[j + 1]) / (dk - dj), beta, 1e-3 * beta) << "j " << j;
    }
    EXPECT_NEAR(row_entropy(p, 0), std::log(2.5), 1e-4);
    // The nearer a point, the likelier it is picked as a neighbour.
    for (std::size_t j = 1; j + 1 < n; ++j) EXPECT_GT(p[j], p[j + 1]);
}

TEST(TsneAffinities, JointIsTheSymmetrisedConditional) {
    const Blobs b = make_blobs(3, 20, 8, 5);
    const std::size_t n = 60;
    const Tensor cond = tsne_conditional_affinities(b.x, 10);
    const Tensor joint = tsne_joint_affinities(b.x, 10);
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            const double expected = i == j ? 0.0 : std::max((double(cond[i * n + j]) + cond[j * n + i]) / (2.0 * n), 1e-12);
            EXPECT_NEAR(joint[i * n + j], expected, 1e-7 * expected) << i << "," << j;
            EXPECT_EQ(joint[i * n + j], joint[j * n + i]);
            total += joint[i * n + j];
        }
    EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(TsneGradient, MatchesTheNaiveFormulaOnOddSizes) {
    Rng rng(11);
    for (std::size_t n : {7, 37, 101}) {
        const Blobs b = make_blobs(3, n / 3 + 1, 5, n);
        const Tensor x = Tensor({n, 5}, std::vector<float>(b.x.data(), b.x.data() + n * 5));
        const Tensor p = tsne_joint_affinities(x, 2);
        const Tensor y = random_map(n, 3.0f, rng);
        for (double exaggeration : {1.0, 12.0}) {
            const Tensor dy = tsne_gradient(p, y, exaggeration);
            const std::vector<double> ref = naive_gradient(p, y, exaggeration);
            ASSERT_EQ(dy.shape(), (Shape{n, 2}));
            double scale = 0.0;
            for (double v : ref) scale = std::max(scale, std::abs(v));
            for (std::size_t k = 0; k < 2 * n; ++k)
                EXPECT_NEAR(dy[k], ref[k], 1e-4 * scale) << "n " << n << " k " << k << " exaggeration " << exaggeration;
        }
    }
}

TEST(TsneGradient, IsTheGradientOfTheKlDivergence) {
    Rng rng(5);
    const std::size_t n = 9;
    const Blobs b = make_blobs(3, 3, 4, 9);
    const Tensor p = tsne_joint_affinities(b.x, 2);
    Tensor y = random_map(n, 1.5f, rng);
    const Tensor dy = tsne_gradient(p, y);
    const float eps = 1e-2f;
    for (std::size_t k = 0; k < 2 * n; ++k) {
        const float saved = y[k];
        y[k] = saved + eps;
        const double up = tsne_kl_divergence(p, y);
        y[k] = saved - eps;
        const double down = tsne_kl_divergence(p, y);
        y[k] = saved;
        // eps is a power of two, so saved +- eps are exact in float and the step is exactly 2 eps.
        const double numeric = (up - down) / (2.0 * eps);
        EXPECT_NEAR(dy[k], numeric, 2e-3 * std::abs(numeric) + 1e-4) << "coordinate " << k;
    }
}

TEST(Tsne, KeepsGaussianBlobsApart) {
    const std::size_t clusters = 5, per = 60, n = clusters * per;
    const Blobs b = make_blobs(clusters, per, 50, 1);
    const Tensor y = tsne(b.x);
    ASSERT_EQ(y.shape(), (Shape{n, 2}));
    EXPECT_GE(knn1_accuracy(y, b.labels), 0.99);

    // Every blob is a tight island: the closest two centroids are much farther apart than any
    // blob's RMS radius.
    std::vector<double> c(2 * clusters, 0.0), radius(clusters, 0.0);
    for (std::size_t i = 0; i < n; ++i) c[2 * b.labels[i]] += y[2 * i] / per, c[2 * b.labels[i] + 1] += y[2 * i + 1] / per;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = std::size_t(b.labels[i]);
        radius[k] += (std::pow(y[2 * i] - c[2 * k], 2) + std::pow(y[2 * i + 1] - c[2 * k + 1], 2)) / per;
    }
    double max_radius = 0.0, min_between = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < clusters; ++k) {
        max_radius = std::max(max_radius, std::sqrt(radius[k]));
        for (std::size_t l = k + 1; l < clusters; ++l)
            min_between = std::min(min_between, std::hypot(c[2 * k] - c[2 * l], c[2 * k + 1] - c[2 * l + 1]));
    }
    EXPECT_GT(min_between, 3.0 * max_radius) << "closest centroids " << min_between << ", widest blob " << max_radius;

    // Optimising longer fits P better.
    const Tensor p = tsne_joint_affinities(b.x, 30);
    const Tensor early = tsne(b.x, {.iterations = 50});
    EXPECT_LT(tsne_kl_divergence(p, y), 0.5 * tsne_kl_divergence(p, early));
}

TEST(Tsne, SameSeedSameMap) {
    const Blobs b = make_blobs(3, 40, 10, 2);
    const TsneOptions options{.perplexity = 15, .iterations = 300, .seed = 7};
    const Tensor a = tsne(b.x, options);
    const Tensor again = tsne(b.x, options);
    EXPECT_EQ(max_abs_diff(a, again), 0.0f);
    const Tensor other = tsne(b.x, {.perplexity = 15, .iterations = 300, .seed = 8});
    EXPECT_GT(max_abs_diff(a, other), 1e-3f);
}

TEST(Tsne, SameMapOnAnyThreadCount) {
    // Large enough (n >= 1024) for the gradient loop to run in parallel. Rows are summed
    // serially after the parallel loop, so the thread count changes nothing.
    const Blobs b = make_blobs(4, 300, 10, 4);
    const TsneOptions options{.iterations = 40};
    const Tensor a = tsne(b.x, options);
    const int threads = num_threads();
    set_num_threads(1);
    const Tensor single = tsne(b.x, options);
    set_num_threads(threads);
    EXPECT_EQ(max_abs_diff(a, single), 0.0f);
}

TEST(Tsne, RejectsBadShapesAndArguments) {
    auto expect_error_naming = [](auto&& call, const char* op, const char* what) {
        try {
            call();
            ADD_FAILURE() << "no exception for " << what;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << e.what();
        }
    };
    EXPECT_THROW(tsne(Tensor({10})), ShapeError);
    EXPECT_THROW(tsne(Tensor({4, 3, 2})), ShapeError);
    EXPECT_THROW(tsne(Tensor({1, 3}), {.perplexity = 0.1}), ShapeError);
    EXPECT_THROW(tsne(Tensor({20, 0})), ShapeError);
    expect_error_naming([] { tsne(Tensor({10, 3})); }, "tsne", "perplexity 30 for 10 points");
    expect_error_naming([] { tsne(Tensor({4, 3, 2})); }, "[4,3,2]", "shape in message");

    const Blobs b = make_blobs(2, 10, 3, 1);  // n = 20: perplexity at most 19 / 3
    EXPECT_THROW(tsne(b.x, {.perplexity = 7}), ValueError);
    EXPECT_THROW(tsne(b.x, {.perplexity = 0}), ValueError);
    EXPECT_THROW(tsne(b.x, {.perplexity = 5, .iterations = 0}), ValueError);
    EXPECT_THROW(tsne(b.x, {.perplexity = 5, .learning_rate = -1}), ValueError);
    EXPECT_THROW(tsne_conditional_affinities(b.x, std::nan("")), ValueError);
    Tensor bad = b.x;
    bad[7] = std::numeric_limits<float>::infinity();
    EXPECT_THROW(tsne(bad, {.perplexity = 5}), ValueError);

    EXPECT_THROW(tsne_gradient(Tensor({5, 5}), Tensor({4, 2})), ShapeError);
    EXPECT_THROW(tsne_gradient(Tensor({5, 4}), Tensor({5, 2})), ShapeError);
    EXPECT_THROW(tsne_kl_divergence(Tensor({5, 5}), Tensor({5, 3})), ShapeError);
}
