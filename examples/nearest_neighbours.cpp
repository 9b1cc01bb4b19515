// Exact k nearest neighbours, fast through a blocked GEMM yet independent of the GEMM's bits,
// and the map-quality measures built on them.
//
// Letters: n points, D dimensions, k neighbours, R query rows per GEMM block.
//
// Why not just rank the GEMM's distances: OpenBLAS splits a product differently at different
// thread counts on some CPUs (its Haswell/Zen kernels), so |a|^2 + |b|^2 - 2 a.b changes in its
// last bits, and two nearly tied neighbours can swap; UMAP's graph, and through 500 epochs of
// SGD the whole map, would then depend on the thread count. So the GEMM only proposes
// candidates; each candidate's distance is then recomputed directly in a fixed order, and the
// final choice is made on those exact values (ties to the lower index).
//
// Why the candidates are enough. Let a_j be the GEMM's squared distance from point i to j and
// e_j the direct sum, and suppose |a_j - e_j| <= delta for every j. Let A be the k-th smallest
// a_j. k points have a_j <= A, so at least k have e_j <= A + delta: the k-th smallest e_j is at
// most A + delta. Every true neighbour j therefore has a_j <= e_j + delta <= A + 2 delta. The
// candidates {j : a_j <= A + 2 delta} hold all k true neighbours, whatever the GEMM's rounding.
// delta comes from the classic bound on a float dot product of D terms (Higham, "Accuracy and
// Stability of Numerical Algorithms", 2nd ed., §3.1): |error| <= D u sum|a_d b_d| with unit
// roundoff u = 2^-24, applied to the GEMM's a.b, to the two norms and to the direct sum, with
// a few u for the additions: delta = (4 D + 8) u (|a|^2 + max_j |x_j|^2). For unit vectors in
// 256-D that is a window of ~2.5e-4 in squared distance: a handful of extra candidates per row.
#include "examples/nearest_neighbours.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"

namespace semigrad::viz {

namespace {

constexpr std::size_t kBlockRows = 256;  // R: the [R, n] block of a.b is 10 MB at n = 10,000

void check_points(const char* op, const Tensor& x, std::size_t k) {
    if (x.ndim() != 2 || x.dim(1) < 1)
        throw ShapeError(std::string(op) + ": x has shape " + to_string(x.shape()) + ", expected [n, D] with D >= 1");
    const std::size_t n = x.dim(0), D = x.dim(1);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x[i]))
            throw ValueError(std::string(op) + ": x " + to_string(x.shape()) + " has a non-finite value (" +
                             std::to_string(x[i]) + ") in row " + std::to_string(i / D) + ", column " +
                             std::to_string(i % D));
    if (k < 1 || k >= n)
        throw ValueError(std::string(op) + ": " + std::to_string(k) + " neighbours asked of " + std::to_string(n) +
                         " points (need 1 <= k < n)");
    if (n > std::numeric_limits<std::uint32_t>::max())
        throw ValueError(std::string(op) + ": " + std::to_string(n) + " points is more than 32-bit indices hold");
}

// (squared distance, index) pairs order by distance, then index.
using Candidate = std::pair<float, std::uint32_t>;

void keep_first_k(std::vector<Candidate>& c, std::size_t k, std::size_t i, Neighbours& out) {
    std::partial_sort(c.begin(), c.begin() + std::ptrdiff_t(k), c.end());
    for (std::size_t m = 0; m < k; ++m) {
        out.index[i * k + m] = c[m].second;
        out.distance[i * k + m] = std::sqrt(c[m].first);
    }
}

}  // namespace

float squared_distance(const float* a, const float* b, std::size_t D) {
    // Eight partial sums in a fixed order: the compiler may vectorise this loop without
    // -ffast-math because the reassociation is written out here, not left to it.
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t d = 0;
    for (; d + 8 <= D; d += 8)
        for (std::size_t l = 0; l < 8; ++l) {
            const float t = a[d + l] - b[d + l];
            part[l] += t * t;
        }
    float s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; d < D; ++d) s += (a[d] - b[d]) * (a[d] - b[d]);
    return s;
}

Neighbours nearest_neighbours_naive(const Tensor& x, std::size_t k) {
    check_points("nearest_neighbours_naive", x, k);
    const std::size_t n = x.dim(0), D = x.dim(1);
    Neighbours out{n, k, std::vector<std::uint32_t>(n * k), std::vector<float>(n * k)};
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<Candidate> row;
        for (std::size_t j = 0; j < n; ++j)
            if (j != i) row.emplace_back(squared_distance(x.data() + i * D, x.data() + j * D, D), std::uint32_t(j));
        keep_first_k(row, k, i, out);
    }
    return out;
}

Neighbours nearest_neighbours(const Tensor& x, std::size_t k) {
    check_points("nearest_neighbours", x, k);
    const std::size_t n = x.dim(0), D = x.dim(1);
    const float* px = x.data();
    std::vector<float> norm(n);
    const std::vector<float> zero(D, 0.0f);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(n); ++i)
        norm[std::size_t(i)] = squared_distance(px + std::size_t(i) * D, zero.data(), D);
    const float max_norm = *std::max_element(norm.begin(), norm.end());
    const double u = std::ldexp(1.0, -24);

    Neighbours out{n, k, std::vector<std::uint32_t>(n * k), std::vector<float>(n * k)};
    std::vector<float> dot(std::min(kBlockRows, n) * n);
    for (std::size_t start = 0; start < n; start += kBlockRows) {
        const std::size_t R = std::min(kBlockRows, n - start);
        // dot [R, n] = x[start : start + R] x^T
        gemm(false, true, int(R), int(n), int(D), 1.0f, px + start * D, int(D), px, int(D), 0.0f, dot.data(), int(n));
#pragma omp parallel
        {
            std::vector<float> approx(n), kth(n);
            std::vector<Candidate> candidates;
#pragma omp for schedule(static)
            for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(R); ++r) {
                const std::size_t i = start + std::size_t(r);
                const float* g = dot.data() + std::size_t(r) * n;
                for (std::size_t j = 0; j < n; ++j) approx[j] = norm[i] + norm[j] - 2.0f * g[j];
                approx[i] = std::numeric_limits<float>::infinity();
                const double delta = (4.0 * double(D) + 8.0) * u * (double(norm[i]) + double(max_norm));
                double window = std::numeric_limits<double>::infinity();  // overflowed norms: take every point
                if (std::isfinite(delta)) {
                    kth = approx;
                    std::nth_element(kth.begin(), kth.begin() + std::ptrdiff_t(k - 1), kth.end());
                    window = double(kth[k - 1]) + 2.0 * delta;
                }
                candidates.clear();
                for (std::size_t j = 0; j < n; ++j)
                    if (j != i && !(double(approx[j]) > window))
                        candidates.emplace_back(squared_distance(px + i * D, px + j * D, D), std::uint32_t(j));
                keep_first_k(candidates, k, i, out);
            }
        }
    }
    return out;
}

double trustworthiness(const Tensor& x, const Tensor& y, std::size_t k) {
    if (x.ndim() != 2 || y.ndim() != 2 || y.dim(0) != x.dim(0))
        throw ShapeError("trustworthiness: x " + to_string(x.shape()) + " and y " + to_string(y.shape()) +
                         " must be [n, D] and [n, d] with the same n");
    const std::size_t n = x.dim(0), D = x.dim(1);
    if (k < 1 || 2 * k >= n)
        throw ValueError("trustworthiness: k = " + std::to_string(k) + " for " + std::to_string(n) +
                         " points (need 1 <= k < n / 2)");
    const Neighbours in_map = nearest_neighbours(y, k);
    double penalty = 0.0;
#pragma omp parallel
    {
        std::vector<float> row(n);
#pragma omp for schedule(static) reduction(+ : penalty)
        for (std::ptrdiff_t s = 0; s < std::ptrdiff_t(n); ++s) {
            const std::size_t i = std::size_t(s);
            for (std::size_t j = 0; j < n; ++j) row[j] = squared_distance(x.data() + i * D, x.data() + j * D, D);
            for (std::size_t m = 0; m < k; ++m) {
                const std::size_t j = in_map.index[i * k + m];
                // r(i, j): 1 + the points l != i that come before j around i in x.
                std::size_t rank = 1;
                for (std::size_t l = 0; l < n; ++l)
                    rank += l != i && (row[l] < row[j] || (row[l] == row[j] && l < j));
                if (rank > k) penalty += double(rank - k);
            }
        }
    }
    const double nd = double(n), kd = double(k);
    return 1.0 - 2.0 / (nd * kd * (2.0 * nd - 3.0 * kd - 1.0)) * penalty;
}

double knn_class_accuracy(const Neighbours& nb, std::span<const int> labels, std::size_t k) {
    if (labels.size() != nb.n)
        throw ShapeError("knn_class_accuracy: " + std::to_string(labels.size()) + " labels for " +
                         std::to_string(nb.n) + " points");
    if (k > nb.k)
        throw ValueError("knn_class_accuracy: k = " + std::to_string(k) + " but only " + std::to_string(nb.k) +
                         " neighbours per point");
    if (k == 0) k = nb.k;
    int classes = 0;
    for (int label : labels) {
        if (label < 0) throw ValueError("knn_class_accuracy: negative label " + std::to_string(label));
        classes = std::max(classes, label + 1);
    }
    std::size_t correct = 0;
    std::vector<int> votes(static_cast<std::size_t>(classes));
    for (std::size_t i = 0; i < nb.n; ++i) {
        std::fill(votes.begin(), votes.end(), 0);
        int best = -1;
        // Count, then walk the neighbours nearest first, switching only to a label with strictly
        // more votes: of tied labels, the one with the nearest neighbour wins.
        for (std::size_t m = 0; m < k; ++m) ++votes[std::size_t(labels[nb.index[i * nb.k + m]])];
        for (std::size_t m = 0; m < k; ++m) {
            const int label = labels[nb.index[i * nb.k + m]];
            if (best < 0 || votes[std::size_t(label)] > votes[std::size_t(best)]) best = label;
        }
        correct += best == labels[i];
    }
    return double(correct) / double(nb.n);
}

}  // namespace semigrad::viz
