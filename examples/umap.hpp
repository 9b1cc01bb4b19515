// UMAP: embeds high-dimensional points in 2-D for a picture, as the Embedding Projector does
// for the tutorial's vectors. Written from the paper (McInnes, Healy & Melville 2018, "UMAP:
// Uniform Manifold Approximation and Projection for Dimension Reduction", arXiv:1802.03426,
// §3 and Appendix C's algorithms), with the defaults and numerical choices of its reference
// implementation umap-learn, which the Projector's umap-js follows:
//
//   1. exact k nearest neighbours (examples/nearest_neighbours.hpp), k = n_neighbors - 1 others
//      (umap-learn counts the point itself as its own first neighbour);
//   2. the fuzzy simplicial set: per point, rho = distance to the nearest neighbour and sigma by
//      binary search so that sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(n_neighbors); then the
//      fuzzy union w = a + a^T - a * a^T;
//   3. an initial map: the data's first two principal components, scaled into [0, 10]^2;
//   4. the layout: SGD on the fuzzy cross-entropy, each edge sampled in proportion to its weight
//      and each sample followed by negative samples, with the curve 1 / (1 + a d^2b) fitted to
//      min_dist and spread.
//
// Deterministic: the result depends only on x and the options, not on the thread count or the
// BLAS (see umap.cpp for how the layout stays race-free). Not a general UMAP library: Euclidean
// distance only, 2-D maps only, no transform of new points, no supervised mode.
#pragma once

#include <cstdint>
#include <vector>

#include "examples/nearest_neighbours.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::viz {

struct UmapOptions {
    // Size of the local neighbourhood, counting the point itself (umap-learn's convention).
    std::size_t n_neighbors = 15;
    // The map's curve: points closer than min_dist are drawn as close as can be; beyond, the
    // similarity falls as exp(-(d - min_dist) / spread).
    double min_dist = 0.1;
    double spread = 1.0;
    // SGD epochs; 0 picks umap-js's (the Projector's) default: 500 up to 2,500 points, 400 up
    // to 5,000, 300 up to 7,500, 200 above. (umap-learn runs 500 up to 10,000 points: on 10,000
    // Fashion-MNIST embeddings that measured trustworthiness@10 0.985 against 0.983, for 2.5x the time.)
    int epochs = 0;
    int negative_sample_rate = 5;  // negative samples per positive sample
    double learning_rate = 1.0;    // decays linearly to 0 over the epochs
    std::uint64_t seed = 42;       // the initial map's jitter and the negative samples
};

// x [n, D] -> [n, 2]. Throws ShapeError unless x is [n, D]; ValueError for a non-finite value
// (naming its row and column), n_neighbors < 2 or >= n, min_dist < 0, spread <= 0,
// min_dist >= 3 spread, epochs < 0, negative_sample_rate < 0 or learning_rate <= 0.
Tensor umap(const Tensor& x, const UmapOptions& options = {});

// The same with x's neighbours already found (at least n_neighbors - 1 per point; only the
// first n_neighbors - 1 are used), for a caller that also needs them.
Tensor umap(const Tensor& x, const Neighbours& neighbours, const UmapOptions& options = {});

// The steps of umap(), exposed for tests and for anyone who wants to inspect them.

// The fuzzy simplicial set as a symmetric sparse matrix: row i holds columns[row_start[i] ..
// row_start[i + 1]) in increasing order with their weights in (0, 1].
struct FuzzyGraph {
    std::size_t n = 0;
    std::vector<std::size_t> row_start;  // n + 1
    std::vector<std::uint32_t> column;
    std::vector<float> weight;
};

// Per point rho and sigma (umap-learn's smooth_knn_dist) from its first n_neighbors - 1
// neighbours: sum_j exp(-max(0, d_ij - rho_i) / sigma_i) = log2(n_neighbors) within 1e-5, or
// the bisection's last step after 64; sigma_i is at least 1e-3 times the mean neighbour distance.
struct Smoothing {
    std::vector<float> rho, sigma;
};
Smoothing umap_smoothing(const Neighbours& neighbours, std::size_t n_neighbors);

// Memberships a_ij = exp(-max(0, d_ij - rho_i) / sigma_i), then w = a + a^T - a * a^T.
FuzzyGraph umap_fuzzy_graph(const Neighbours& neighbours, std::size_t n_neighbors);

// a, b of 1 / (1 + a d^2b) fitted by least squares (Levenberg-Marquardt from a = b = 1, as
// umap-learn's scipy.optimize.curve_fit) to 1 for d < min_dist, exp(-(d - min_dist) / spread)
// beyond, at 300 points evenly spaced on [0, 3 spread]. min_dist 0.1, spread 1: a 1.577, b 0.895.
struct Curve {
    double a, b;
};
Curve umap_fit_curve(double min_dist, double spread);

// The layout's two forces, as the factor c by which a point y_i moves along (y_i - y_other)
// before clipping, for squared map distance d2 = |y_i - y_other|^2 (Appendix C):
//   attraction  c = -2ab d2^(b-1) / (1 + a d2^b)
//   repulsion   c = 2b / ((0.001 + d2) (1 + a d2^b))
// i.e. the negative gradients of -log(phi) and -log(1 - phi), phi = 1 / (1 + a d2^b), divided
// by (y_i - y_other); the repulsion's 0.001 (umap-learn's) keeps it finite as d2 -> 0.
float umap_attraction(float d2, Curve curve);
float umap_repulsion(float d2, Curve curve);

// The initial map [n, 2]: the projections of x on its first two principal components, each
// axis scaled into [0, 10] (umap-learn's init="pca" and its rescaling), plus N(0, 1e-4) jitter.
Tensor umap_pca_init(const Tensor& x, std::uint64_t seed);

// The SGD layout of `graph` from the map `init` [n, 2] with curve `curve` for `epochs` epochs.
Tensor umap_layout(const FuzzyGraph& graph, const Tensor& init, Curve curve, int epochs,
                   const UmapOptions& options);

}  // namespace semigrad::viz
