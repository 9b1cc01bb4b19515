// The per-anchor machinery of the fast semi-hard triplet loss (losses/triplet.cpp): split one
// row of the distance matrix into positives and negatives, sort the positives, and drop every
// negative into the bucket of the positives it exceeds. Internal to losses/ (not installed).
// The short version of the same idea is losses/triplet_readable.cpp; read that first.
//
// Dimension letters: B batch size; per anchor, m positives and n negatives (m + n + 1 = B).
//
// Why buckets: TFA's semi-hard negative of a pair (a,p) is the smallest negative distance
// strictly greater than D[a,p]. With the positives' distances sorted, v_0 <= ... <= v_{m-1}, a
// negative d is greater than exactly the positives of rank q < k(d) = #{q : v_q < d}. So bucket
// k holds the negatives with v_{k-1} < d <= v_k (bucket m: d > every positive), the buckets are
// disjoint intervals in increasing order, and the answer for the positive of rank q is the
// minimum of the first non-empty bucket after q. That needs only each bucket's minimum: O(B) per
// anchor after sorting the m ~ B/10 positives, instead of sorting every negative.
//
// The vector work (split, rank lookup, scans) goes through the kernel table of the path the
// caller names (losses/loss_kernels.hpp); every path gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "losses/loss_kernels.hpp"

namespace semigrad::losses::detail {

// What mining one anchor's row leaves behind. Arrays have slack past their end for full-vector
// stores; only the first m / n (m + 1 for buckets) entries mean anything.
struct MinedRow {
    // Over the whole row, diagonal included (TF's reduce_max / reduce_min), and its sum.
    float row_max = 0, row_min = 0;
    double row_sum = 0;
    std::size_t m = 0, n = 0;
    // Positives by increasing distance (ties by column): value[q] = D[a, positive[q]];
    // value[m] = +inf (a sentinel for the rank lookup).
    std::vector<float> value;
    std::vector<std::uint32_t> positive;
    // Negatives in column order: distance, column, bucket k(d).
    std::vector<float> negative_distance;
    std::vector<std::uint32_t> negative, rank;
    // The largest negative distance, how many negatives share it and the first one's column
    // (TFA's negatives_inside before its shift); -inf, 0, 0 when n = 0.
    float farthest = 0;
    std::uint32_t farthest_ties = 0, farthest_column = 0;
    // Bucket k = 0..m: its smallest distance (+inf when empty), how many negatives share it
    // (0 when empty), and the first one's column.
    std::vector<float> bucket_min;
    std::vector<std::uint32_t> bucket_ties, bucket_column;
};

// One thread's miner: owns the scratch for rows of B entries, reused anchor after anchor.
class SemihardMiner {
  public:
    // Throws ValueError for a path this CPU does not run.
    SemihardMiner(std::size_t B, Isa isa);
    // Mines row a of the [B,B] distance matrix (labels [B]) into result().
    void mine(const float* row, const int* labels, std::size_t a);
    const MinedRow& result() const { return r_; }
    // Room for the loss's per-anchor bookkeeping, B + 1 entries each.
    std::uint32_t* choice() { return choice_.data(); }
    float* uses() { return uses_.data(); }
    std::size_t batch_size() const { return B_; }
    Isa isa() const { return isa_; }
    std::size_t bytes() const;  // scratch held

  private:
    void sort_positives_into_cells();
    void fill_buckets();

    std::size_t B_;
    Isa isa_;
    const LossKernels& kernels_;
    MinedRow r_;
    // The split's positives, before sorting, their range, and each one's cell.
    float positive_min_ = 0, positive_max_ = 0;
    std::vector<float> positive_distance_;
    std::vector<std::uint32_t> positive_column_, cell_of_;
    // The rank table (see sort_positives_into_cells): cells over the positives' range.
    static constexpr std::size_t kCellsPerPositive = 8;
    std::vector<std::uint32_t> first_;
    std::vector<float> cell_positive_;
    RankTable table_;
    std::size_t cells_ = 1;
    std::vector<std::uint32_t> several_;     // negatives whose cell holds several positives
    std::vector<std::uint64_t> bucket_key_;  // fill_buckets' scratch
    std::vector<std::uint32_t> choice_;
    std::vector<float> uses_;
    std::uint32_t rank_by_search(float d, std::uint32_t c) const;
};

}  // namespace semigrad::losses::detail
