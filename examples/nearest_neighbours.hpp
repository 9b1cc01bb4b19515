// Exact k nearest neighbours (Euclidean) of every point of a set, and two measures of how well a
// 2-D map keeps them: trustworthiness and leave-one-out k-NN class accuracy. UMAP builds its
// graph from the neighbours; the page `embeddings.html` highlights them; the tests and the
// umap-js comparison score maps with the measures.
//
// The neighbours are exact and the same on every thread count and every BLAS: candidates come
// from a blocked GEMM (|a|^2 + |b|^2 - 2 a.b), but the final distances are recomputed as one
// fixed-order sum each, and the candidate set is provably wide enough to hold the true k
// nearest whatever the GEMM's rounding (see nearest_neighbours.cpp). Not an approximate or
// indexed search (no trees, no NN-descent): O(n^2 D), which for 10,000 points of 256 floats is a
// few tenths of a second of GEMM.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tensor/tensor.hpp"

namespace semigrad::viz {

// The k nearest other points of each of n points, row i sorted by (distance, index): the
// point itself is never in its own row, and of two points at the same distance the lower index
// comes first.
struct Neighbours {
    std::size_t n = 0, k = 0;
    std::vector<std::uint32_t> index;  // [n, k]
    std::vector<float> distance;       // [n, k], Euclidean (not squared)
};

// x [n, D] -> its k nearest neighbours. Throws ShapeError unless x is [n, D] with D >= 1;
// ValueError for a non-finite value (naming its row and column) or unless 1 <= k < n.
Neighbours nearest_neighbours(const Tensor& x, std::size_t k);

// The same by brute force: every distance summed directly, every row fully sorted. The
// reference the fast version is tested equal to (bit for bit).
Neighbours nearest_neighbours_naive(const Tensor& x, std::size_t k);

// Squared Euclidean distance of two D-vectors as one fixed-order sum (eight partial sums, then
// a fixed tree): the same bits on every machine, compiler vectorisation or not.
float squared_distance(const float* a, const float* b, std::size_t D);

// Trustworthiness (Venna & Kaski 2001; as scikit-learn's sklearn.manifold.trustworthiness) of
// the map y [n, 2] of x [n, D]: 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_i} (r(i, j) - k),
// where U_i holds the points among i's k nearest in y but not in x, and r(i, j) is j's rank
// among i's neighbours in x. 1 when every map neighbourhood is a true one. Needs k < n / 2.
double trustworthiness(const Tensor& x, const Tensor& y, std::size_t k);

// Leave-one-out k-NN class accuracy: the fraction of points whose k nearest others vote for
// the point's own label; a tied vote goes to the tied label with the nearest neighbour. Uses the
// first k of each row (all of them when k is 0).
double knn_class_accuracy(const Neighbours& neighbours, std::span<const int> labels, std::size_t k = 0);

}  // namespace semigrad::viz
