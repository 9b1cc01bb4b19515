// Exact t-SNE (van der Maaten & Hinton 2008, JMLR 9, https://jmlr.org/papers/v9/vandermaaten08a.html)
// with the optimisation schedule of van der Maaten 2014 (JMLR 15, §5): learning rate 200, early
// exaggeration 12 for 250 iterations, momentum 0.5 then 0.8, and the adaptive per-coordinate
// gains of Jacobs 1988 as in van der Maaten's reference tsne.py and bhtsne.
//
// Letters: n points, D input dimensions. Memory is one [n, n] float matrix (the affinities);
// each iteration recomputes the Student-t kernel row by row instead of storing Q, so the O(n^2)
// work streams through P once. Every parallel loop runs over rows, each row writing only its own
// outputs, and cross-row sums are taken serially afterwards: the result does not depend on the
// thread count.
#include "examples/tsne.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "examples/nearest_neighbours.hpp"  // squared_distance
#include "tensor/error.hpp"
#include "tensor/random.hpp"

namespace semigrad::viz {

namespace {

void check_points(const char* op, const Tensor& x) {
    if (x.ndim() != 2 || x.dim(0) < 2 || x.dim(1) < 1)
        throw ShapeError(std::string(op) + ": x has shape " + to_string(x.shape()) +
                         ", expected [n, D] with n >= 2 and D >= 1");
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x[i]))
            throw ValueError(std::string(op) + ": x " + to_string(x.shape()) + " has a non-finite value at flat index " +
                             std::to_string(i));
}

void check_perplexity(const char* op, double perplexity, std::size_t n) {
    // bhtsne's rule: a Gaussian covering 3 * perplexity neighbours must fit among the n - 1 others.
    if (!(perplexity > 0) || 3 * perplexity > double(n - 1))
        throw ValueError(std::string(op) + ": perplexity " + std::to_string(perplexity) + " is invalid for " +
                         std::to_string(n) + " points (need 0 < perplexity <= (n - 1) / 3)");
}

// x [n, D] -> squared Euclidean distances [n, n], d_ij = sum_d (x_id - x_jd)^2, summed directly
// rather than as |a|^2 + |b|^2 - 2 a.b through a GEMM: OpenBLAS splits a GEMM differently at
// different thread counts on some CPUs (its Haswell/Zen kernels), which changes the last bits of
// a.b and, through 1,000 iterations of a chaotic optimisation, the whole map. Here every entry is
// one fixed-order sum, exact in its symmetry (d_ij and d_ji add the same terms in the same
// order) and the same for any thread count. O(n^2 D): 0.2 s for 3,000 points of 256 floats.
Tensor squared_distances(const Tensor& x) {
    const std::size_t n = x.dim(0), D = x.dim(1);
    Tensor dist({n, n});
    const float* px = x.data();
    float* g = dist.data();
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) {
        const float* a = px + std::size_t(i) * D;
        for (std::size_t j = 0; j < n; ++j) g[std::size_t(i) * n + j] = squared_distance(a, px + j * D, D);
    }
    return dist;
}

// Row i of P_{j|i} = exp(-beta d_ij) / W, W = sum_k exp(-beta d_ik), in place over the squared
// distances `row` [n]. beta (= 1 / 2 sigma_i^2) is chosen so that the entropy
// H = log W + beta E[d] equals `target` = log(perplexity). H falls as beta grows, with
// dH/d(log beta) = -beta^2 Var[d], so Newton's method on log beta converges in a handful of
// steps; a bracket [lo, hi] around the root catches the steps that overshoot, falling back to
// bisection as in van der Maaten's reference code. Distances are shifted by their minimum so that
// the largest weight is exp(0) = 1 and W >= 1.
void calibrate_row(float* row, std::size_t n, std::size_t i, double target) {
    double dmin = std::numeric_limits<double>::infinity(), dmean = 0.0;
    for (std::size_t j = 0; j < n; ++j)
        if (j != i) dmin = std::min(dmin, double(row[j])), dmean += row[j];
    dmean = dmean / double(n - 1) - dmin;
    std::vector<double> w(n, 0.0);
    // Start at the scale of the data, so that the search does not depend on the units of x.
    double beta = dmean > 0 ? 1.0 / dmean : 1.0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
    double sum_w = 1.0;
    for (int step = 0; step < 100; ++step) {
        sum_w = 0.0;
        double sum_wd = 0.0, sum_wdd = 0.0;
        for (std::size_t j = 0; j < n; ++j) {
            const double d = j == i ? 0.0 : double(row[j]) - dmin;
            w[j] = j == i ? 0.0 : std::exp(-beta * d);
            sum_w += w[j], sum_wd += w[j] * d, sum_wdd += w[j] * d * d;
        }
        const double mean = sum_wd / sum_w, var = std::max(0.0, sum_wdd / sum_w - mean * mean);
        const double entropy = std::log(sum_w) + beta * mean;
        if (std::abs(entropy - target) < 1e-5) break;
        (entropy > target ? lo : hi) = beta;
        // Newton step on log beta, at most a factor e^2 at a time.
        double next = beta * std::exp(std::clamp((entropy - target) / (beta * beta * var), -2.0, 2.0));
        if (!(next > lo && next < hi)) next = std::isinf(hi) ? 2 * beta : lo == 0 ? beta / 2 : std::sqrt(lo * hi);
        beta = next;
    }
    for (std::size_t j = 0; j < n; ++j) row[j] = float(w[j] / sum_w);
}

// The t-SNE gradient for p [n, n] and the map in two coordinate arrays y0, y1 [n] (split so
// that the inner loop reads unit-stride memory and vectorises); writes dy [n, 2].
//
// One pass per row gathers the three sums the gradient needs (2008 paper, eq. 5, with
// num_ij = (1 + |y_i - y_j|^2)^-1 and q_ij = num_ij / Z):
//   z_i    = sum_j num_ij                           (Z = sum_i z_i, known only after all rows)
//   attr_i = sum_j p_ij num_ij (y_i - y_j)
//   rep_i  = sum_j num_ij^2 (y_i - y_j)             (so that sum_j q_ij num_ij (y_i - y_j) = rep_i / Z)
// and dy_i = 4 (exaggeration * attr_i - rep_i / Z). j = i is not skipped: it adds num = 1 to z_i
// (subtracted below) and nothing to attr_i, rep_i (y_i - y_i = 0, p_ii = 0), so the loop is branch-free.
void gradient_kernel(const float* p, const float* y0, const float* y1, std::size_t n, double exaggeration,
                     double* dy) {
    std::vector<double> z(n), attr(2 * n), rep(2 * n);
    // Below ~1e6 pairs an iteration takes well under a millisecond, and the fork/join of 1000
    // parallel regions costs more than it saves (much more when the cores are shared).
#pragma omp parallel for schedule(static) if (n >= 1024)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) {
        const float* p_row = p + std::size_t(i) * n;
        const float yi0 = y0[i], yi1 = y1[i];
        // float sums over one row (a few thousand terms of similar size), double across rows.
        float zi = 0, a0 = 0, a1 = 0, r0 = 0, r1 = 0;
#pragma omp simd reduction(+ : zi, a0, a1, r0, r1)
        for (std::size_t j = 0; j < n; ++j) {
            const float d0 = yi0 - y0[j], d1 = yi1 - y1[j];
            const float num = 1.0f / (1.0f + d0 * d0 + d1 * d1);
            const float pn = p_row[j] * num, nn = num * num;
            zi += num;
            a0 += pn * d0, a1 += pn * d1;
            r0 += nn * d0, r1 += nn * d1;
        }
        z[i] = double(zi) - 1.0;
        attr[2 * i] = a0, attr[2 * i + 1] = a1;
        rep[2 * i] = r0, rep[2 * i + 1] = r1;
    }
    double Z = 0.0;
    for (std::size_t i = 0; i < n; ++i) Z += z[i];
    for (std::size_t k = 0; k < 2 * n; ++k) dy[k] = 4.0 * (exaggeration * attr[k] - rep[k] / Z);
}

void check_map(const char* op, const Tensor& p, const Tensor& y) {
    if (p.ndim() != 2 || p.dim(0) != p.dim(1) || p.dim(0) < 2 || y.ndim() != 2 || y.dim(0) != p.dim(0) ||
        y.dim(1) != 2)
        throw ShapeError(std::string(op) + ": p has shape " + to_string(p.shape()) + " and y " + to_string(y.shape()) +
                         ", expected [n, n] and [n, 2] with n >= 2");
}

}  // namespace

Tensor tsne_conditional_affinities(const Tensor& x, double perplexity) {
    check_points("tsne_conditional_affinities", x);
    const std::size_t n = x.dim(0);
    check_perplexity("tsne_conditional_affinities", perplexity, n);
    Tensor p = squared_distances(x);
    const double target = std::log(perplexity);
    float* rows = p.data();
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i) calibrate_row(rows + std::size_t(i) * n, n, std::size_t(i), target);
    return p;
}

Tensor tsne_joint_affinities(const Tensor& x, double perplexity) {
    Tensor p = tsne_conditional_affinities(x, perplexity);
    const std::size_t n = x.dim(0);
    float* v = p.data();
    // p_ij = (p_{j|i} + p_{i|j}) / 2n (2008 paper, §3.1): every point gets at least 1/2n of the
    // mass, so outliers still pull on the map. Floored at 1e-12 as in van der Maaten's tsne.py
    // (and scikit-learn, at machine epsilon): besides keeping log p finite, the floor keeps
    // denormal floats (p of far-apart pairs underflows to ~1e-40) out of the gradient loop, where
    // each one costs a microcode assist and made the whole loop ~8x slower.
    const double scale = 1.0 / (2.0 * double(n));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j) {
            const float s = float(std::max((double(v[i * n + j]) + double(v[j * n + i])) * scale, 1e-12));
            v[i * n + j] = s, v[j * n + i] = s;
        }
    return p;
}

Tensor tsne_gradient(const Tensor& p, const Tensor& y, double exaggeration) {
    check_map("tsne_gradient", p, y);
    const std::size_t n = y.dim(0);
    std::vector<float> y0(n), y1(n);
    for (std::size_t i = 0; i < n; ++i) y0[i] = y[2 * i], y1[i] = y[2 * i + 1];
    std::vector<double> dy(2 * n);
    gradient_kernel(p.data(), y0.data(), y1.data(), n, exaggeration, dy.data());
    Tensor out({n, 2});
    for (std::size_t k = 0; k < 2 * n; ++k) out[k] = float(dy[k]);
    return out;
}

double tsne_kl_divergence(const Tensor& p, const Tensor& y) {
    check_map("tsne_kl_divergence", p, y);
    const std::size_t n = y.dim(0);
    auto num = [&](std::size_t i, std::size_t j) {
        const double d0 = double(y[2 * i]) - y[2 * j], d1 = double(y[2 * i + 1]) - y[2 * j + 1];
        return 1.0 / (1.0 + d0 * d0 + d1 * d1);
    };
    double Z = 0.0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (i != j) Z += num(i, j);
    double kl = 0.0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            const double pij = p[i * n + j];
            if (i != j && pij > 0) kl += pij * std::log(pij / (num(i, j) / Z));
        }
    return kl;
}

Tensor tsne(const Tensor& x, const TsneOptions& options) {
    check_points("tsne", x);
    const std::size_t n = x.dim(0);
    check_perplexity("tsne", options.perplexity, n);
    if (options.iterations < 1 || !(options.learning_rate > 0) || !(options.early_exaggeration >= 1) ||
        options.exaggeration_iterations < 0)
        throw ValueError("tsne: need iterations >= 1, learning_rate > 0, early_exaggeration >= 1 and "
                         "exaggeration_iterations >= 0; got " + std::to_string(options.iterations) + ", " +
                         std::to_string(options.learning_rate) + ", " + std::to_string(options.early_exaggeration) +
                         ", " + std::to_string(options.exaggeration_iterations));
    const Tensor p = tsne_joint_affinities(x, options.perplexity);

    // y ~ N(0, 1e-4 I): a tiny map, so that early exaggeration can form the clusters before
    // the repulsion between them matters (2008 paper, §3.4).
    Rng rng(options.seed);
    std::vector<double> y(2 * n), update(2 * n, 0.0), gains(2 * n, 1.0), dy(2 * n);
    for (double& v : y) v = 1e-2 * rng.normal();
    std::vector<float> y0(n), y1(n);

    for (int iter = 0; iter < options.iterations; ++iter) {
        const bool early = iter < options.exaggeration_iterations;
        const double exaggeration = early ? options.early_exaggeration : 1.0;
        const double momentum = early ? 0.5 : 0.8;
        for (std::size_t i = 0; i < n; ++i) y0[i] = float(y[2 * i]), y1[i] = float(y[2 * i + 1]);
        gradient_kernel(p.data(), y0.data(), y1.data(), n, exaggeration, dy.data());
        for (std::size_t k = 0; k < 2 * n; ++k) {
            // Jacobs' delta-bar-delta gains: grow a coordinate's step while the gradient keeps
            // pointing against the last update (still descending), shrink it when they agree
            // (overshoot), never below 0.01.
            gains[k] = (dy[k] > 0) != (update[k] > 0) ? gains[k] + 0.2 : gains[k] * 0.8;
            gains[k] = std::max(gains[k], 0.01);
            update[k] = momentum * update[k] - options.learning_rate * gains[k] * dy[k];
            y[k] += update[k];
        }
        // The cost is translation invariant; re-centring keeps the map from drifting.
        double m0 = 0.0, m1 = 0.0;
        for (std::size_t i = 0; i < n; ++i) m0 += y[2 * i], m1 += y[2 * i + 1];
        m0 /= double(n), m1 /= double(n);
        for (std::size_t i = 0; i < n; ++i) y[2 * i] -= m0, y[2 * i + 1] -= m1;
    }

    Tensor out({n, 2});
    for (std::size_t k = 0; k < 2 * n; ++k) out[k] = float(y[k]);
    return out;
}

}  // namespace semigrad::viz
