// UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426), steps 2-4 of umap.hpp; the
// neighbours come from nearest_neighbours.cpp. Equation numbers refer to the paper's v3.
//
// Letters: n points, D input dimensions, k = n_neighbors - 1 neighbours per point, E epochs.
//
// The layout and its determinism. umap-learn runs its SGD "hogwild": threads move points while
// others read them, so a map differs from run to run. Here each epoch reads the positions the
// previous epoch ended with (a snapshot) and every point moves only itself: point i walks its
// own edges in order, taking each attraction and negative sample against the snapshot and
// applying it to its own position at once, as umap-learn's sequential loop does. Each point
// owns its edges' sampling schedule and its own random stream (Rng(seed, stream i)), so a point's
// moves in an epoch depend on nothing another thread does: the map is the same on every thread
// count, with no atomics and no locks. The price is that neighbours are seen one epoch late,
// which at 200-500 epochs of small steps changes nothing visible (the tests measure the maps).
// umap-learn keeps both (i, j) and (j, i) and moves both ends of each; here i moves only along
// its own (i, j), so its one attraction step is doubled to stand for the two it gets there.
#include "examples/umap.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "tensor/error.hpp"
#include "tensor/random.hpp"

namespace semigrad::viz {

namespace {

void check_options(const UmapOptions& o, std::size_t n) {
    auto fail = [](const std::string& what) { throw ValueError("umap: " + what); };
    if (o.n_neighbors < 2 || o.n_neighbors >= n)
        fail("n_neighbors " + std::to_string(o.n_neighbors) + " is invalid for " + std::to_string(n) +
             " points (need 2 <= n_neighbors < n)");
    if (!(o.spread > 0) || !(o.min_dist >= 0) || !(o.min_dist < 3 * o.spread) || !std::isfinite(o.spread))
        fail("min_dist " + std::to_string(o.min_dist) + ", spread " + std::to_string(o.spread) +
             " are invalid (need spread > 0 and 0 <= min_dist < 3 spread)");
    if (o.epochs < 0 || o.negative_sample_rate < 0 || !(o.learning_rate > 0) || !std::isfinite(o.learning_rate))
        fail("epochs " + std::to_string(o.epochs) + ", negative_sample_rate " + std::to_string(o.negative_sample_rate) +
             ", learning_rate " + std::to_string(o.learning_rate) +
             " are invalid (need epochs >= 0, negative_sample_rate >= 0, learning_rate > 0)");
}

void check_input(const Tensor& x, const UmapOptions& options) {
    if (x.ndim() != 2 || x.dim(1) < 1)
        throw ShapeError("umap: x has shape " + to_string(x.shape()) + ", expected [n, D] with D >= 1");
    const std::size_t D = x.dim(1);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x[i]))
            throw ValueError("umap: x " + to_string(x.shape()) + " has a non-finite value (" + std::to_string(x[i]) +
                             ") in row " + std::to_string(i / D) + ", column " + std::to_string(i % D));
    check_options(options, x.dim(0));
}

// umap-learn's clip: no single step moves a coordinate by more than 4 learning rates.
float clip(float v) { return std::clamp(v, -4.0f, 4.0f); }

}  // namespace

Smoothing umap_smoothing(const Neighbours& nb, std::size_t n_neighbors) {
    const std::size_t n = nb.n, k = n_neighbors - 1;
    if (n_neighbors < 2 || k > nb.k)
        throw ValueError("umap_smoothing: n_neighbors " + std::to_string(n_neighbors) + " needs " + std::to_string(k) +
                         " neighbours per point, have " + std::to_string(nb.k));
    // The point counts as its own first neighbour at distance 0, as in umap-learn: it enters the
    // mean distances below but not the sums.
    double mean_all = 0.0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t m = 0; m < k; ++m) mean_all += nb.distance[i * nb.k + m];
    mean_all /= double(n * (k + 1));
    const double target = std::log2(double(n_neighbors));
    constexpr double kMinScale = 1e-3;  // umap-learn's MIN_K_DIST_SCALE

    Smoothing s{std::vector<float>(n), std::vector<float>(n)};
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t si = 0; si < std::ptrdiff_t(n); ++si) {
        const std::size_t i = std::size_t(si);
        const float* d = nb.distance.data() + i * nb.k;
        // rho_i: the distance to the nearest neighbour that is not a duplicate (local
        // connectivity 1, §3.1): every point is then fully connected to at least one other.
        double rho = 0.0, mean_i = 0.0;
        for (std::size_t m = 0; m < k; ++m) mean_i += d[m];
        mean_i /= double(k + 1);
        for (std::size_t m = 0; m < k; ++m)
            if (d[m] > 0) {
                rho = d[m];
                break;
            }
        // sum_j exp(-max(0, d_ij - rho) / sigma) grows with sigma from (#ties at rho) towards k:
        // bisect for the sigma that makes it log2(n_neighbors) (§3.1, eq. for sigma_i).
        double lo = 0.0, hi = std::numeric_limits<double>::infinity(), sigma = 1.0;
        for (int step = 0; step < 64; ++step) {
            double psum = 0.0;
            for (std::size_t m = 0; m < k; ++m) {
                const double t = d[m] - rho;
                psum += t > 0 ? std::exp(-t / sigma) : 1.0;
            }
            if (std::abs(psum - target) < 1e-5) break;
            if (psum > target) {
                hi = sigma;
                sigma = (lo + hi) / 2;
            } else {
                lo = sigma;
                sigma = std::isinf(hi) ? sigma * 2 : (lo + hi) / 2;
            }
        }
        // A floor on sigma keeps duplicates and tight clumps from giving exp(-t / ~0).
        const double floor = kMinScale * (rho > 0 ? mean_i : mean_all);
        s.rho[i] = float(rho);
        s.sigma[i] = float(std::max(sigma, floor));
    }
    return s;
}

FuzzyGraph umap_fuzzy_graph(const Neighbours& nb, std::size_t n_neighbors) {
    const Smoothing s = umap_smoothing(nb, n_neighbors);
    const std::size_t n = nb.n, k = n_neighbors - 1;
    // Each directed membership a_ij enters twice: as (i, j)'s own and as the transpose of (j, i).
    // Sorted by (row, column), the two meet and combine into the probabilistic t-conorm
    // w_ij = a_ij + a_ji - a_ij a_ji (§3.1, the fuzzy union), exactly symmetric.
    struct Entry {
        std::uint32_t row, col;
        float own, transposed;
    };
    std::vector<Entry> entries;
    entries.reserve(2 * n * k);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t m = 0; m < k; ++m) {
            const std::uint32_t j = nb.index[i * nb.k + m];
            const float t = nb.distance[i * nb.k + m] - s.rho[i];
            const float a = t <= 0 ? 1.0f : std::exp(-t / s.sigma[i]);
            entries.push_back({std::uint32_t(i), j, a, 0.0f});
            entries.push_back({j, std::uint32_t(i), 0.0f, a});
        }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& x, const Entry& y) { return std::tie(x.row, x.col) < std::tie(y.row, y.col); });

    FuzzyGraph g;
    g.n = n;
    g.row_start.assign(n + 1, 0);
    for (std::size_t e = 0; e < entries.size();) {
        float own = 0, transposed = 0;
        const std::size_t first = e;
        for (; e < entries.size() && entries[e].row == entries[first].row && entries[e].col == entries[first].col; ++e)
            own += entries[e].own, transposed += entries[e].transposed;
        const float w = own + transposed - own * transposed;
        if (w > 0) {
            g.column.push_back(entries[first].col);
            g.weight.push_back(w);
            ++g.row_start[entries[first].row + 1];
        }
    }
    for (std::size_t i = 0; i < n; ++i) g.row_start[i + 1] += g.row_start[i];
    return g;
}

Curve umap_fit_curve(double min_dist, double spread) {
    if (!(spread > 0) || !(min_dist >= 0) || !(min_dist < 3 * spread))
        throw ValueError("umap_fit_curve: min_dist " + std::to_string(min_dist) + ", spread " + std::to_string(spread) +
                         " are invalid (need spread > 0 and 0 <= min_dist < 3 spread)");
    constexpr int kPoints = 300;
    std::array<double, kPoints> xs, ys;
    for (int p = 0; p < kPoints; ++p) {
        xs[p] = 3 * spread * p / (kPoints - 1);
        ys[p] = xs[p] < min_dist ? 1.0 : std::exp(-(xs[p] - min_dist) / spread);
    }
    // Residuals and the Jacobian of g(x) = 1 / (1 + a x^2b): dg/da = -x^2b g^2,
    // dg/db = -2 a x^2b ln(x) g^2 (both 0 at x = 0).
    auto sum_squares = [&](double a, double b) {
        double s = 0;
        for (int p = 0; p < kPoints; ++p) {
            const double r = 1.0 / (1.0 + a * std::pow(xs[p], 2 * b)) - ys[p];
            s += r * r;
        }
        return s;
    };
    double a = 1, b = 1, lambda = 1e-3, cost = sum_squares(a, b);
    for (int iter = 0; iter < 200; ++iter) {
        double jaa = 0, jab = 0, jbb = 0, ga = 0, gb = 0;
        for (int p = 0; p < kPoints; ++p) {
            if (xs[p] == 0) continue;  // g = 1 and both derivatives 0: nothing to fit there
            const double t = std::pow(xs[p], 2 * b), g = 1.0 / (1.0 + a * t);
            const double r = g - ys[p], da = -t * g * g, db = -2 * a * t * std::log(xs[p]) * g * g;
            jaa += da * da, jab += da * db, jbb += db * db, ga += da * r, gb += db * r;
        }
        // Levenberg-Marquardt: solve (J^T J + lambda diag(J^T J)) step = -J^T r; accept the step
        // and trust the quadratic model more if the cost falls, else damp harder.
        bool moved = false;
        for (int tries = 0; tries < 30 && !moved; ++tries) {
            const double m00 = jaa * (1 + lambda), m11 = jbb * (1 + lambda), det = m00 * m11 - jab * jab;
            const double sa = -(m11 * ga - jab * gb) / det, sb = -(m00 * gb - jab * ga) / det;
            const double next = sum_squares(a + sa, b + sb);
            if (next < cost) {
                a += sa, b += sb, lambda /= 10;
                moved = std::abs(cost - next) > 1e-15 * cost;
                cost = next;
                if (!moved) return {a, b};
                break;
            }
            lambda *= 10;
        }
        if (!moved) break;
    }
    return {a, b};
}

Tensor umap_pca_init(const Tensor& x, std::uint64_t seed) {
    const std::size_t n = x.dim(0), D = x.dim(1);
    // Mean and covariance in double, each entry summed over the points in a fixed order and
    // each row of the covariance written by one thread: the same bits on any thread count.
    std::vector<double> mean(D, 0.0), cov(D * D, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t d = 0; d < D; ++d) mean[d] += x[i * D + d];
    for (double& m : mean) m /= double(n);
#pragma omp parallel
    {
        std::vector<double> centred(D);
#pragma omp for schedule(static)
        for (std::ptrdiff_t sd = 0; sd < std::ptrdiff_t(D); ++sd) {
            const std::size_t d = std::size_t(sd);
            double* row = cov.data() + d * D;
            for (std::size_t i = 0; i < n; ++i) {
                const double xd = x[i * D + d] - mean[d];
                const float* xi = x.data() + i * D;
                for (std::size_t e = 0; e < D; ++e) row[e] += xd * (xi[e] - mean[e]);
            }
        }
    }
    // The two leading eigenvectors by subspace iteration (Golub & Van Loan, "Matrix
    // Computations", §8.2.4): V <- orthonormalise(C V). The first column is a power iteration;
    // the second converges as (lambda_3 / lambda_2)^t, and an initial map needs no more than
    // a few digits. D x D = 256 x 256: 300 steps take a few milliseconds.
    Rng rng(seed, /*stream=*/3);
    std::vector<double> v(2 * D), w(2 * D);
    for (double& e : v) e = rng.normal();
    auto orthonormalise = [&](std::vector<double>& m) {
        for (int c = 0; c < 2; ++c) {
            double* col = m.data() + std::size_t(c) * D;
            if (c == 1) {
                double dot = 0;
                for (std::size_t d = 0; d < D; ++d) dot += col[d] * m[d];
                for (std::size_t d = 0; d < D; ++d) col[d] -= dot * m[d];
            }
            double norm = 0;
            for (std::size_t d = 0; d < D; ++d) norm += col[d] * col[d];
            norm = std::sqrt(norm);
            for (std::size_t d = 0; d < D; ++d) col[d] = norm > 0 ? col[d] / norm : (d == std::size_t(c));
        }
    };
    orthonormalise(v);
    for (int step = 0; step < 300; ++step) {
        for (int c = 0; c < 2; ++c)
            for (std::size_t d = 0; d < D; ++d) {
                double s = 0;
                for (std::size_t e = 0; e < D; ++e) s += cov[d * D + e] * v[std::size_t(c) * D + e];
                w[std::size_t(c) * D + d] = s;
            }
        orthonormalise(w);
        std::swap(v, w);
    }
    // Project, then scale each axis into [0, 10] as umap-learn does before its layout, and
    // jitter by N(0, 1e-4) so that duplicate points do not start (and stay) on one spot.
    Tensor y({n, 2});
    for (std::size_t c = 0; c < 2; ++c) {
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        std::vector<double> p(n);
        for (std::size_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::size_t d = 0; d < D; ++d) s += (x[i * D + d] - mean[d]) * v[c * D + d];
            p[i] = s, lo = std::min(lo, s), hi = std::max(hi, s);
        }
        const double scale = hi > lo ? 10.0 / (hi - lo) : 0.0;
        for (std::size_t i = 0; i < n; ++i) y[i * 2 + c] = float((p[i] - lo) * scale);
    }
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += 1e-4f * rng.normal();
    return y;
}

float umap_attraction(float d2, Curve curve) {
    const float a = float(curve.a), b = float(curve.b), p = std::pow(d2, b);
    return -2.0f * a * b * (p / d2) / (a * p + 1.0f);
}

float umap_repulsion(float d2, Curve curve) {
    const float a = float(curve.a), b = float(curve.b);
    return 2.0f * b / ((0.001f + d2) * (a * std::pow(d2, b) + 1.0f));
}

Tensor umap_layout(const FuzzyGraph& g, const Tensor& init, Curve curve, int epochs, const UmapOptions& options) {
    const std::size_t n = g.n;
    if (init.ndim() != 2 || init.dim(0) != n || init.dim(1) != 2)
        throw ShapeError("umap_layout: init has shape " + to_string(init.shape()) + ", expected [" +
                         std::to_string(n) + ", 2]");
    const std::size_t edges = g.column.size();

    // Sampling schedule (umap-learn's make_epochs_per_sample): the heaviest edge is sampled
    // every epoch, an edge of weight w every max_w / w epochs, so over the run each edge is
    // pulled in proportion to its weight (§3.2, sampling instead of weighting the gradient).
    // Edges lighter than max_w / E are never due: umap-learn removes them outright.
    const float max_w = edges ? *std::max_element(g.weight.begin(), g.weight.end()) : 1.0f;
    std::vector<double> per_sample(edges), next_sample(edges), per_negative(edges), next_negative(edges);
    for (std::size_t e = 0; e < edges; ++e) {
        per_sample[e] = double(max_w) / double(g.weight[e]);
        next_sample[e] = per_sample[e];
        per_negative[e] = per_sample[e] / std::max(options.negative_sample_rate, 1);
        next_negative[e] = per_negative[e];
    }
    std::vector<Rng> rngs;
    rngs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) rngs.emplace_back(options.seed, /*stream=*/i);

    std::vector<float> now(init.data(), init.data() + 2 * n), next(2 * n);
    for (int epoch = 0; epoch < epochs; ++epoch) {
        const float alpha = float(options.learning_rate * (1.0 - double(epoch) / epochs));
        // An epoch of a small map is a fraction of a millisecond: there the fork/join of
        // hundreds of parallel regions costs more than it saves (much more on a shared host).
#pragma omp parallel for schedule(static) if (n >= 1024)
        for (std::ptrdiff_t si = 0; si < std::ptrdiff_t(n); ++si) {
            const std::size_t i = std::size_t(si);
            float y0 = now[2 * i], y1 = now[2 * i + 1];
            for (std::size_t e = g.row_start[i]; e < g.row_start[i + 1]; ++e) {
                if (next_sample[e] > epoch) continue;
                // Attraction along the edge (the edge term of the cross entropy, §3.2).
                const std::size_t j = g.column[e];
                float d0 = y0 - now[2 * j], d1 = y1 - now[2 * j + 1];
                float d2 = d0 * d0 + d1 * d1;
                if (d2 > 0) {
                    const float coeff = umap_attraction(d2, curve);
                    y0 += 2.0f * alpha * clip(coeff * d0);
                    y1 += 2.0f * alpha * clip(coeff * d1);
                }
                next_sample[e] += per_sample[e];
                // Repulsion from points drawn at random, which are almost surely not neighbours
                // (the non-edge term, estimated by sampling).
                const auto negatives = options.negative_sample_rate == 0
                                           ? 0
                                           : int((epoch - next_negative[e]) / per_negative[e]);
                for (int s = 0; s < negatives; ++s) {
                    const std::size_t k = rngs[i].below(std::uint32_t(n));
                    if (k == i) continue;
                    d0 = y0 - now[2 * k], d1 = y1 - now[2 * k + 1];
                    d2 = d0 * d0 + d1 * d1;
                    if (d2 > 0) {
                        const float coeff = umap_repulsion(d2, curve);
                        y0 += alpha * clip(coeff * d0);
                        y1 += alpha * clip(coeff * d1);
                    }
                }
                next_negative[e] += negatives * per_negative[e];
            }
            next[2 * i] = y0, next[2 * i + 1] = y1;
        }
        std::swap(now, next);
    }
    Tensor out({n, 2});
    std::copy(now.begin(), now.end(), out.data());
    return out;
}

Tensor umap(const Tensor& x, const Neighbours& neighbours, const UmapOptions& options) {
    check_input(x, options);
    const std::size_t n = x.dim(0);
    if (neighbours.n != n || neighbours.k + 1 < options.n_neighbors)
        throw ValueError("umap: neighbours of " + std::to_string(neighbours.n) + " points, " +
                         std::to_string(neighbours.k) + " each, given for " + std::to_string(n) +
                         " points and n_neighbors " + std::to_string(options.n_neighbors));
    const int epochs = options.epochs > 0 ? options.epochs
                       : n <= 2500                 ? 500
                       : n <= 5000                 ? 400
                       : n <= 7500                 ? 300
                                                   : 200;
    const FuzzyGraph graph = umap_fuzzy_graph(neighbours, options.n_neighbors);
    const Tensor init = umap_pca_init(x, options.seed);
    return umap_layout(graph, init, umap_fit_curve(options.min_dist, options.spread), epochs, options);
}

Tensor umap(const Tensor& x, const UmapOptions& options) {
    check_input(x, options);
    return umap(x, nearest_neighbours(x, options.n_neighbors - 1), options);
}

}  // namespace semigrad::viz
