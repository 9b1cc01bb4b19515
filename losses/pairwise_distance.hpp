// Pairwise distances between the rows of an embedding batch, as TensorFlow Addons computes them
// for its triplet losses (tensorflow_addons/losses/metric_learning.py; docs/triplet-losses.md §2-§3), plus
// the analytic backward the losses need.
//
// Dimension letters: B batch size, D embedding width.
//   embeddings [B, D]  ->  distances [B, B]
//
// This is the forward/backward kernel pair only; it records no graph. The triplet losses
// (losses/triplet.hpp) wrap it in one autograd node together with the mining.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <memory>
#include <string_view>

#include "tensor/memory.hpp"
#include "tensor/simd.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::losses {

// TFA's `distance_metric` strings: "L2" (Euclidean, NOT squared; the default), "squared-L2",
// "angular" (1 - cosine similarity).
enum class Distance { L2, SquaredL2, Angular };

// "L2", "squared-L2", "angular" (TFA's strings), for messages and tables.
const char* distance_name(Distance metric);
// The inverse of distance_name; throws ValueError naming `name` and the three choices.
Distance parse_distance(std::string_view name);

// The [B,B] distance matrix with TFA's exact steps:
//   L2, SquaredL2: d2 = (|x_i|^2 + |x_j|^2) - 2 x_i.x_j (one gemm), clamped at 0; entries that
//                  are then 0 stay exactly 0; L2 takes sqrt(d2 + 1e-16 * [d2 <= 0]); the
//                  diagonal is forced to 0.
//   Angular:       x_hat = l2_normalize(x) (x * rsqrt(max(|x|^2, 1e-12))), D = max(1 - x_hat
//                  x_hat^T, 0); the diagonal is NOT forced to 0 (TFA does not).
// Throws ShapeError unless `embeddings` has rank 2.
Tensor pairwise_distance(const Tensor& embeddings, Distance metric);

// A sparse dD [B,B] by rows (CSR), for a loss whose gradient touches few entries of each row (the
// semi-hard triplet loss: an anchor's positives and at most one negative per positive): row i's
// entries are (column[k], value[k]) for k in [start[i], start[i+1]), columns strictly increasing
// within a row (so each appears once, and the backward can find a row's entries in a range of
// columns without searching).
struct SparseRows {
    std::vector<std::size_t> start;  // B + 1
    std::vector<std::uint32_t> column;
    std::vector<float> value;
};

// Memory that PairwiseDistance instances made with it reuse, one after the other: a spare
// [B,B] distance buffer (an instance hands its own back when destroyed) and the backward's
// scratch. At B = 4096 each is 64 MiB, which a fresh allocation page-faults and zero-fills on
// every training step. Owned by the caller (the triplet losses' TripletWorkspace) and shared
// with the instances; one thread at a time. Holds the largest buffers it was asked for until
// it is destroyed or release()d.
struct DistanceScratch {
    // One thread's share of S's rows, sparse (the backward's product S x runs over them): row
    // q of the share is row `row[q]` of S, with sum `sum[q]` and entries [start[q], start[q+1]).
    struct RowsOfS {
        std::vector<std::size_t> row, start;
        std::vector<float> sum;
        std::vector<std::uint32_t> column;
        std::vector<float> value;
    };
    Tensor spare;                         // [B,B], or empty
    HugeBuffer s;                         // the backward's S = G + G^T, on huge pages (all of it for a
                                          // dense dD, a block of rows per thread for a sparse one)
    std::size_t s_size = 0;
    std::vector<float> g;                 // sparse backward: G at each entry of dD
    std::vector<std::size_t> tile_first;  // sparse backward: see backward(SparseRows)
    std::vector<RowsOfS> rows_of_s;       // per thread
    std::vector<float> panels;            // the embeddings by column panels (see backward)
    void release();
    std::size_t bytes() const;
};

// The forward above plus what its backward needs. `backward(dD)` returns d(loss)/d(embeddings)
// for an incoming d(loss)/d(D), with the gradient TF's autodiff gives: zero on the diagonal
// and on entries that were clamped to 0 (no inf/NaN from sqrt'(0)), each entry D[i,j] sending
// its own gradient to both rows i and j (D is not symmetrised).
class PairwiseDistance {
  public:
    // With keep_for_backward = false only distances() is usable (no [B,B] angular buffer kept).
    // `isa` picks the distance kernel (tensor/simd.hpp); every path gives the same bits. With
    // `scratch`, the [B,B] buffer and the backward's scratch come from it and the buffer goes
    // back to it when this instance is destroyed; without, they are this instance's own.
    PairwiseDistance(const Tensor& embeddings, Distance metric, bool keep_for_backward = true,
                     Isa isa = active_isa(), std::shared_ptr<DistanceScratch> scratch = nullptr);
    ~PairwiseDistance();
    PairwiseDistance(const PairwiseDistance&) = default;
    PairwiseDistance& operator=(const PairwiseDistance&) = default;

    const Tensor& distances() const { return D_; }
    Distance metric() const { return metric_; }
    // dD [B,B] -> dembeddings [B,D], for an incoming gradient dD * scale.
    Tensor backward(const Tensor& dD, float scale = 1.0f) const;
    // The same for a sparse dD, bit for bit what the dense dD with the same entries gives,
    // without a [B,B] input and with G computed only where dD is nonzero. Throws ShapeError for
    // an inconsistent CSR matrix and ValueError for a row whose columns are out of range or
    // out of order.
    Tensor backward(const SparseRows& dD, float scale = 1.0f) const;

  private:
    using RowsOfS = DistanceScratch::RowsOfS;
    // Adds row i of the symmetric S = G + G^T (consumed: left zero) to a thread's share.
    void keep_row_of_s(RowsOfS& rows, std::size_t i, float* s_row) const;
    // The rows of dx that a thread's share of S gives (x_ by column panels in `panels`).
    void embeddings_grad(const RowsOfS& rows, const float* panels, float* dx) const;

    DistanceScratch& scratch() const;

    Distance metric_;
    Isa isa_;
    bool keep_for_backward_;
    std::shared_ptr<DistanceScratch> scratch_;  // never null after construction
    Tensor x_;       // [B,D] the embeddings (L2, SquaredL2) or x_hat (Angular)
    Tensor D_;       // [B,B]
    // Angular only: 1 - x_hat.x_hat^T before the clamp (the clamp passes the gradient where it is
    // >= 0), the raw embeddings, 1/|x| and whether |x|^2 >= 1e-12 (where max passes it to |x|^2).
    Tensor raw_;
    Tensor embeddings_;
    std::vector<float> inv_norm_;
    std::vector<unsigned char> norm_active_;
};

}  // namespace semigrad::losses
