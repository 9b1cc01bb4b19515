// Retrieval metrics of an embedding: how often, and how early, a sample's nearest neighbours
// share its label. Euclidean distance throughout (the metric the triplet loss trains).
//
// Distances come a block of query rows at a time from one gemm, ‖q‖² + ‖r‖² − 2·q·r (clamped at
// 0), never as a full [M,N] matrix, so 10,000 queries against 60,000 references fit in ~16 MB.
// Ranking uses squared distances (same order, no sqrt); ties go to the lower reference index,
// so every result is deterministic. Rows are ranked in parallel with OpenMP.
//
// Following pytorch-metric-learning's AccuracyCalculator, the within-set metrics
// (precision_at_1, map_at_r) leave each query out of its own references and skip queries whose
// label no other sample has (they cannot retrieve anything relevant). Not a classifier library:
// no cosine distances, no approximate search.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "tensor/tensor.hpp"

namespace semigrad::metrics {

// Shapes: embeddings [N,D], labels N. Fraction of samples whose nearest other sample has the
// same label (a.k.a. Recall@1 in the metric-learning literature).
float precision_at_1(const Tensor& embeddings, std::span<const int> labels);

// Shapes: queries [M,D], references [N,D]. Fraction of queries whose k nearest references vote
// for the query's label; a tied vote goes to the tied label with the nearest neighbour.
float knn_accuracy(const Tensor& queries, std::span<const int> query_labels,
                   const Tensor& references, std::span<const int> reference_labels, int k = 1);

// The same accuracy with the references arriving in chunks (the training set embedded a chunk
// at a time), so they never have to be held at once: each query keeps its k nearest so far.
// Gives exactly knn_accuracy's result over the chunks concatenated in order. Small chunks are
// gathered into blocks of kBlockRows references (4 MB at D = 256) before they meet the queries,
// so each gemm stays large. Keeps a reference to `queries`, which must outlive it.
// ShapeError/ValueError as knn_accuracy (k > the references added: at result()).
class KnnAccuracy {
  public:
    KnnAccuracy(const Tensor& queries, std::span<const int> query_labels, int k = 1);
    KnnAccuracy(Tensor&&, std::span<const int>, int = 1) = delete;
    // Shapes: references [n,D], labels n.
    void add(const Tensor& references, std::span<const int> reference_labels);
    float result();

    static constexpr std::size_t kBlockRows = 4096;

  private:
    void flush();
    const Tensor* queries_;
    std::vector<float> pending_;  // references added but not yet compared, row-major
    std::vector<int> query_labels_, reference_labels_;
    int k_;
    std::vector<std::vector<std::pair<float, std::size_t>>> nearest_;  // (squared distance, index)
};

// Shapes: embeddings [N,D], labels N. MAP@R (Musgrave, Belongie, Lim 2020, "A Metric Learning
// Reality Check", §3.2): for a query with R other samples of its label, retrieve its R nearest
// and average  (1/R) Σ_{i≤R} P(i)·rel(i), with P(i) the precision among the first i.
float map_at_r(const Tensor& embeddings, std::span<const int> labels);

}  // namespace semigrad::metrics
