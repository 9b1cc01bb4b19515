// Tests of examples/umap.cpp: each step against its definition (smoothing, fuzzy union, the
// fitted curve, PCA, the forces against finite differences), then whole maps: Gaussian blobs
// kept apart and trustworthy, determinism (seed, thread count) and argument errors.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "examples/nearest_neighbours.hpp"
#include "examples/umap.hpp"
#include "tests/examples/blobs.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace semigrad;
using namespace semigrad::viz;
using semigrad::testing::Blobs;
using semigrad::testing::make_blobs;

TEST(UmapSmoothing, EachRowSumsToLog2K) {
    const Blobs b = make_blobs(3, 60, 8, 1);
    const Neighbours nb = nearest_neighbours(b.x, 14);
    const Smoothing s = umap_smoothing(nb, 15);
    for (std::size_t i = 0; i < nb.n; ++i) {
        EXPECT_EQ(s.rho[i], nb.distance[i * 14]) << "rho is the nearest distance (no duplicates here)";
        double sum = 0;
        for (std::size_t m = 0; m < 14; ++m)
            sum += std::exp(-std::max(0.0, double(nb.distance[i * 14 + m]) - s.rho[i]) / s.sigma[i]);
        EXPECT_NEAR(sum, std::log2(15.0), 1e-4) << "row " << i;
    }
}

TEST(UmapSmoothing, DuplicatesTakeTheFirstNonZeroDistance) {
    // Points 0, 0, 0, 1, 3 on a line: point 0's neighbours are 1 (0), 2 (0), 3 (1), 4 (3).
    const Tensor x({5, 1}, {0, 0, 0, 1, 3});
    const Smoothing s = umap_smoothing(nearest_neighbours(x, 4), 5);
    EXPECT_EQ(s.rho[0], 1.0f);
    EXPECT_EQ(s.rho[3], 1.0f);
    EXPECT_EQ(s.rho[4], 2.0f);
}

TEST(UmapFuzzyGraph, IsTheFuzzyUnionOfTheMemberships) {
    const Blobs b = make_blobs(2, 40, 5, 2);
    const std::size_t k = 9, n = b.x.dim(0);
    const Neighbours nb = nearest_neighbours(b.x, k);
    const Smoothing s = umap_smoothing(nb, k + 1);
    std::map<std::pair<std::size_t, std::size_t>, double> a;  // directed memberships
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t m = 0; m < k; ++m)
            a[{i, nb.index[i * k + m]}] = std::exp(-std::max(0.0f, nb.distance[i * k + m] - s.rho[i]) / s.sigma[i]);
    const FuzzyGraph g = umap_fuzzy_graph(nb, k + 1);
    ASSERT_EQ(g.row_start.size(), n + 1);
    std::size_t entries = 0;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t e = g.row_start[i]; e < g.row_start[i + 1]; ++e) {
            const std::size_t j = g.column[e];
            if (e > g.row_start[i]) {
                EXPECT_LT(g.column[e - 1], j) << "columns increase";
            }
            const double aij = a.count({i, j}) ? a[{i, j}] : 0, aji = a.count({j, i}) ? a[{j, i}] : 0;
            EXPECT_NEAR(g.weight[e], aij + aji - aij * aji, 1e-6) << i << ", " << j;
            ++entries;
        }
    }
    // Every directed membership appears, in both directions, and nothing else.
    std::size_t expected = 0;
    for (const auto& [ij, w] : a) expected += 1 + !a.count({ij.second, ij.first});
    EXPECT_EQ(entries, expected);
}

TEST(UmapCurve, MatchesUmapLearnsFit) {
    // umap-learn's find_ab_params(spread=1.0, min_dist=0.1) (scipy's curve_fit) gives
    // a = 1.5769434604, b = 0.8950608781.
    const Curve c = umap_fit_curve(0.1, 1.0);
    EXPECT_NEAR(c.a, 1.5769434604, 1e-4);
    EXPECT_NEAR(c.b, 0.8950608781, 1e-4);
    // And the fit is a least-squares minimum: nudging a or b makes it worse.
    auto cost = [](double a, double b) {
        double s = 0;
        for (int p = 0; p < 300; ++p) {
            const double x = 3.0 * p / 299, y = x < 0.1 ? 1.0 : std::exp(-(x - 0.1));
            s += std::pow(1 / (1 + a * std::pow(x, 2 * b)) - y, 2);
        }
        return s;
    };
    for (const double da : {-1e-3, 1e-3}) EXPECT_GT(cost(c.a + da, c.b), cost(c.a, c.b));
    for (const double db : {-1e-3, 1e-3}) EXPECT_GT(cost(c.a, c.b + db), cost(c.a, c.b));
    EXPECT_THROW(umap_fit_curve(3.0, 1.0), ValueError);
    EXPECT_THROW(umap_fit_curve(0.1, 0.0), ValueError);
}

TEST(UmapForces, AreTheNegativeGradientsOfTheCrossEntropyTerms) {
    // -log(phi) and -log(1 - phi) as functions of y_i, phi = 1 / (1 + a |y_i - y_j|^2b);
    // the force c (y_i - y_j) must be minus their gradients (the repulsion without its 0.001).
    const Curve curve{1.577, 0.895};
    const double yj[2] = {0.3, -0.2};
    auto phi = [&](double y0, double y1) {
        const double d2 = (y0 - yj[0]) * (y0 - yj[0]) + (y1 - yj[1]) * (y1 - yj[1]);
        return 1 / (1 + curve.a * std::pow(d2, curve.b));
    };
    for (const auto& yi : {std::array<double, 2>{1.1, 0.4}, {0.31, -0.15}, {-2.0, 3.0}}) {
        const double d0 = yi[0] - yj[0], d1 = yi[1] - yj[1], d2 = d0 * d0 + d1 * d1, h = 1e-6;
        const double attraction = umap_attraction(float(d2), curve);
        const double repulsion = 2 * curve.b / (d2 * (1 + curve.a * std::pow(d2, curve.b)));
        const double dlog_phi_0 = (std::log(phi(yi[0] + h, yi[1])) - std::log(phi(yi[0] - h, yi[1]))) / (2 * h);
        const double dlog_phi_1 = (std::log(phi(yi[0], yi[1] + h)) - std::log(phi(yi[0], yi[1] - h))) / (2 * h);
        const double dlog_rep_0 =
            (std::log(1 - phi(yi[0] + h, yi[1])) - std::log(1 - phi(yi[0] - h, yi[1]))) / (2 * h);
        EXPECT_NEAR(attraction * d0, dlog_phi_0, 1e-4 * (1 + std::abs(dlog_phi_0)));
        EXPECT_NEAR(attraction * d1, dlog_phi_1, 1e-4 * (1 + std::abs(dlog_phi_1)));
        EXPECT_NEAR(repulsion * d0, dlog_rep_0, 1e-4 * (1 + std::abs(dlog_rep_0)));
        // The layout's repulsion is this one with 0.001 added to d^2.
        EXPECT_NEAR(umap_repulsion(float(d2), curve), repulsion * d2 / (d2 + 0.001), 1e-5 * repulsion);
    }
}

TEST(UmapPcaInit, FollowsThePrincipalAxesWithinTheBox) {
    // Points spread 5 along (1, 1, 0, 0) / sqrt 2, 2 along (0, 0, 1, 0), 0.1 elsewhere.
    Rng rng(6);
    const std::size_t n = 300;
    Tensor x({n, 4});
    std::vector<double> u(n), v(n);
    for (std::size_t i = 0; i < n; ++i) {
        u[i] = 5 * rng.normal(), v[i] = 2 * rng.normal();
        x[i * 4 + 0] = float(u[i] / std::sqrt(2) + 0.1 * rng.normal());
        x[i * 4 + 1] = float(u[i] / std::sqrt(2) + 0.1 * rng.normal());
        x[i * 4 + 2] = float(v[i]);
        x[i * 4 + 3] = float(0.1 * rng.normal());
    }
    const Tensor y = umap_pca_init(x, 1);
    auto correlation = [&](std::size_t c, const std::vector<double>& t) {
        double my = 0, mt = 0, syy = 0, stt = 0, syt = 0;
        for (std::size_t i = 0; i < n; ++i) my += y[2 * i + c], mt += t[i];
        my /= n, mt /= n;
        for (std::size_t i = 0; i < n; ++i) {
            const double a = y[2 * i + c] - my, b = t[i] - mt;
            syy += a * a, stt += b * b, syt += a * b;
        }
        return syt / std::sqrt(syy * stt);
    };
    EXPECT_GT(std::abs(correlation(0, u)), 0.999);
    EXPECT_GT(std::abs(correlation(1, v)), 0.99);
    for (std::size_t i = 0; i < y.size(); ++i) {
        EXPECT_GE(y[i], -1e-3f);
        EXPECT_LE(y[i], 10 + 1e-3f);
    }
}

TEST(Umap, KeepsGaussianBlobsApartAndIsTrustworthy) {
    const Blobs b = make_blobs(5, 120, 16, 7);
    const Tensor y = umap(b.x);
    const std::size_t n = b.x.dim(0);
    // Every point is nearer its own blob's centre in the map than any other blob's centre.
    std::vector<double> centre(10, 0.0);
    for (std::size_t i = 0; i < n; ++i) centre[2 * b.labels[i]] += y[2 * i] / 120.0, centre[2 * b.labels[i] + 1] += y[2 * i + 1] / 120.0;
    std::size_t misplaced = 0;
    for (std::size_t i = 0; i < n; ++i) {
        auto dist = [&](int k) { return std::hypot(y[2 * i] - centre[2 * k], y[2 * i + 1] - centre[2 * k + 1]); };
        for (int k = 0; k < 5; ++k) misplaced += k != b.labels[i] && dist(k) <= dist(b.labels[i]);
    }
    EXPECT_EQ(misplaced, 0u);
    EXPECT_DOUBLE_EQ(knn_class_accuracy(nearest_neighbours(y, 10), b.labels), 1.0);
    const double t = trustworthiness(b.x, y, 10);
    EXPECT_GE(t, 0.9);
    std::printf("blobs: trustworthiness@10 %.4f\n", t);
}

TEST(Umap, SameSeedSameMapOtherSeedOtherMap) {
    const Blobs b = make_blobs(3, 80, 10, 8);
    const UmapOptions options{.epochs = 100, .seed = 11};
    const Tensor a = umap(b.x, options), again = umap(b.x, options);
    EXPECT_EQ(max_abs_diff(a, again), 0.0f);
    UmapOptions other = options;
    other.seed = 12;
    EXPECT_GT(max_abs_diff(a, umap(b.x, other)), 1e-3f);
}

TEST(Umap, SameMapOnAnyThreadCount) {
    // Large enough for OpenBLAS to split the neighbour GEMM over threads (meson runs this also
    // under OPENBLAS_CORETYPE=Haswell, whose sums then depend on the thread count).
    const Blobs b = make_blobs(6, 250, 64, 9);
    const UmapOptions options{.epochs = 120};
    const int threads = num_threads();
    set_num_threads(1);
    const Tensor one = umap(b.x, options);
    set_num_threads(2);
    const Tensor two = umap(b.x, options);
    set_num_threads(threads);
    EXPECT_EQ(max_abs_diff(one, two), 0.0f);
}

TEST(Umap, RejectsBadArgumentsClearly) {
    auto expect_error_naming = [](auto&& call, const std::string& what) {
        try {
            call();
            ADD_FAILURE() << "no exception; expected one naming " << what;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        }
    };
    const Blobs b = make_blobs(2, 10, 3, 10);  // 20 points
    expect_error_naming([&] { umap(b.x, {.n_neighbors = 20}); }, "n_neighbors 20");
    expect_error_naming([&] { umap(b.x, {.n_neighbors = 1}); }, "n_neighbors 1");
    expect_error_naming([&] { umap(b.x, {.n_neighbors = 5, .min_dist = -1}); }, "min_dist");
    expect_error_naming([&] { umap(b.x, {.n_neighbors = 5, .spread = 0}); }, "spread");
    expect_error_naming([&] { umap(b.x, {.n_neighbors = 5, .learning_rate = 0}); }, "learning_rate");
    expect_error_naming([&] { umap(b.x, {.n_neighbors = 5, .epochs = -1}); }, "epochs");
    Tensor bad = b.x;
    bad[7 * 3 + 2] = std::numeric_limits<float>::quiet_NaN();
    expect_error_naming([&] { umap(bad, {.n_neighbors = 5}); }, "row 7, column 2");
    bad[7 * 3 + 2] = std::numeric_limits<float>::infinity();
    expect_error_naming([&] { umap(bad, {.n_neighbors = 5}); }, "non-finite");
    EXPECT_THROW(umap(Tensor({20}), {.n_neighbors = 5}), ShapeError);
    expect_error_naming([&] { umap(b.x, nearest_neighbours(b.x, 3), {.n_neighbors = 5}); }, "neighbours");
}
