// The per-anchor machinery of the fast semi-hard triplet loss (losses/triplet.cpp): split one
// row of the distance matrix into positives and negatives, sort the positives, and drop every
// negative into the bucket of the positives it exceeds. Internal to losses/ (not installed).
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
// Two implementations of the same steps, with identical results: portable C++, and AVX-512
// (16 lanes: compress-stores for the split, gathers for the rank lookup) on CPUs that have it.
// The caller names the path (tensor/simd.hpp); tests run each one the CPU has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/simd.hpp"

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
    // This thread's miner, ready for rows of B entries. It persists across calls (OpenMP's
    // threads do): at B = 2048 a fresh one is ~200 KB of page faults per thread per call.
    static SemihardMiner& for_this_thread(std::size_t B, Isa isa);
    // Mines row a of the [B,B] distance matrix (labels [B]) into result().
    void mine(const float* row, const int* labels, std::size_t a);
    const MinedRow& result() const { return r_; }

  private:
    void prepare(std::size_t B, Isa isa);  // sizes the scratch for B (grows, never shrinks capacity)
    void split(const float* row, const int* labels, std::size_t a);
    void sort_positives_into_cells();
    void prefix_sum(std::uint32_t* x, std::size_t n) const;
    void fill_buckets();
    void find_farthest();
#if SEMIGRAD_X86
    SEMIGRAD_AVX512 void split_avx512(const float* row, const int* labels, std::size_t a, float* lane_sum);
    SEMIGRAD_AVX512 void rank_avx512();
    SEMIGRAD_AVX512 void prefix_sum_avx512(std::uint32_t* x, std::size_t n) const;
    SEMIGRAD_AVX512 void find_farthest_avx512(float& far, std::uint32_t& ties, std::size_t& first) const;
#endif

    std::size_t B_ = 0;
    bool avx512_ = false;  // the path chosen when prepared
    MinedRow r_;
    // The split's positives, before sorting, their range, and each one's cell.
    float positive_min_ = 0, positive_max_ = 0;
    std::vector<float> positive_distance_;
    std::vector<std::uint32_t> positive_column_, cell_of_;
    // The rank table (see sort_positives_into_cells): cells over the positives' range.
    static constexpr std::size_t kCellsPerPositive = 8;
    std::vector<std::uint32_t> first_;
    std::vector<float> cell_positive_;
    float lo_ = 0, scale_ = 0;
    std::size_t cells_ = 1;
    std::vector<std::uint64_t> bucket_key_;  // fill_buckets' scratch
    // The cell of distance d: monotone in d; NaN (scale 0 with d = inf) goes to cell 0.
    std::uint32_t cell(float d) const {
        float t = (d - lo_) * scale_;
        t = t > 0.0f ? t : 0.0f;
        const float top = float(cells_ - 1);
        return std::uint32_t(std::int32_t(t < top ? t : top));  // via int32: no slow float -> uint64
    }
    std::uint32_t rank_by_search(float d, std::uint32_t c) const;
};

// Moves the non-zero entries of c[0..B) to columns/values in increasing column order (room for
// B + 16 entries each) and zeroes c; returns how many there were. One anchor's row of dD, built
// densely, becomes a CSR row this way (the distance backward wants columns in order).
std::size_t take_nonzero(float* c, std::size_t B, std::uint32_t* columns, float* values, Isa isa);

}  // namespace semigrad::losses::detail
