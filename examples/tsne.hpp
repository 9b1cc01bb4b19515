// t-SNE: embeds high-dimensional points in 2-D for a picture, as the tutorial's Embedding
// Projector does. This is exact t-SNE (van der Maaten & Hinton 2008, "Visualizing Data using
// t-SNE", JMLR 9), with the optimisation schedule of van der Maaten 2014 ("Accelerating t-SNE
// using Tree-Based Algorithms", JMLR 15): O(n^2) time per iteration and n^2 floats of memory for
// the affinities, fine for the few thousand points a figure needs (3,000 points take seconds).
// It is not Barnes-Hut or FFT t-SNE, and not a general-purpose manifold-learning library.
#pragma once

#include <cstdint>

#include "tensor/tensor.hpp"

namespace semigrad::viz {

struct TsneOptions {
    // Effective number of neighbours each point's Gaussian covers: exp(entropy of P_{.|i}).
    double perplexity = 30;
    int iterations = 1000;
    double learning_rate = 200;
    // P is multiplied by `early_exaggeration` for the first `exaggeration_iterations`, and the
    // momentum switches from 0.5 to 0.8 at the same iteration (van der Maaten 2014, §5).
    double early_exaggeration = 12;
    int exaggeration_iterations = 250;
    // Seeds the initial solution, drawn from N(0, 1e-4 I).
    std::uint64_t seed = 42;
};

// x [n, D] -> [n, 2]. The result depends only on x and the options (same value on every thread
// count). Throws ShapeError unless x is rank 2 with n >= 2 and D >= 1; ValueError for
// non-finite values, perplexity <= 0 or too large for n (3 * perplexity > n - 1, as in
// van der Maaten's reference code), iterations < 1 or learning_rate <= 0.
Tensor tsne(const Tensor& x, const TsneOptions& options = {});

// The steps of tsne(), exposed for tests and for anyone who wants to inspect them.

// The conditional affinities P_{j|i} [n, n] of x [n, D]: row i is a Gaussian over the squared
// distances to x_i, with its precision found by bisection so that the row's entropy is
// log(perplexity) nats; P_{i|i} = 0 and each row sums to 1.
Tensor tsne_conditional_affinities(const Tensor& x, double perplexity);

// The joint affinities P [n, n] that t-SNE matches: max((P_{j|i} + P_{i|j}) / 2n, 1e-12) off the
// diagonal (the floor of van der Maaten's tsne.py), symmetric, zero diagonal, summing to ~1.
Tensor tsne_joint_affinities(const Tensor& x, double perplexity);

// dC/dy [n, 2] of C = KL(P || Q) for the map y [n, 2], where q_ij = (1 + |y_i - y_j|^2)^-1 / Z
// (eq. 5 of the 2008 paper), with the attraction multiplied by `exaggeration`:
// dy_i = 4 sum_j (exaggeration * p_ij - q_ij) (1 + |y_i - y_j|^2)^-1 (y_i - y_j).
Tensor tsne_gradient(const Tensor& p, const Tensor& y, double exaggeration = 1);

// KL(P || Q) = sum_{i != j} p_ij log(p_ij / q_ij), summed plainly in double: the reference the
// gradient is checked against, and a measure of how well a map fits.
double tsne_kl_divergence(const Tensor& p, const Tensor& y);

}  // namespace semigrad::viz
