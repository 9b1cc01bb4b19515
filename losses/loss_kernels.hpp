// The instruction-set-specific kernels of the fast triplet losses, behind one table per path.
// A reader following the loss can skip this header and the three files that implement it:
//
//   losses/kernels_portable.cpp   plain C++ (SSE2 at most): the reference the others match
//   losses/kernels_avx2.cpp       AVX2 (8 lanes; compress through a permutation table)
//   losses/kernels_avx512.cpp     AVX-512 (16 lanes; compress and masks in hardware)
//
// Every kernel of every table computes the same bits (tests/losses/test_triplet.cpp,
// EveryMiningPathGivesThePortableBits, runs each path the CPU has against the portable one).
// They may: the build is ISO C++ with -ffp-contract=off (meson.build), so no a*b+c is fused
// into an FMA behind our back, and each kernel performs the same IEEE operations per element
// in the same order; only max/min reductions, which are exact in any order, are regrouped.
// Internal to losses/ (not installed).
//
// Dimension letters: B batch size; one anchor's row has m positives and n negatives.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/simd.hpp"

namespace semigrad::losses::detail {

// Every per-row array a kernel writes has this much room past its end: the vector kernels store
// whole vectors (16 lanes) and count how many of them were meant.
inline constexpr std::size_t kSlack = 16;

// What split() learns about one anchor's row besides the split itself.
struct SplitRow {
    std::size_t m = 0, n = 0;          // positives, negatives
    float row_max = 0, row_min = 0;    // over the whole row, diagonal included
    float positive_max = 0, positive_min = 0;  // over the positives (-inf / +inf when m = 0)
    float lane_sum[16] = {};           // lane_sum[l] = sum of row[k] over k = l mod 16, in k order
};

// The miner's rank table (losses/semihard_mining.cpp explains it): cells over the positives'
// range; first[c] = positives in lower cells, cell_positive[c] = the distance of the one
// positive in cell c, +inf when it has none, < 0 when it has several.
struct RankTable {
    float lo = 0, scale = 0, top = 0;  // top = cells - 1
    const std::uint32_t* first = nullptr;
    const float* cell_positive = nullptr;
    // The cell of distance d: monotone in d; NaN goes to cell 0. (Via int32: no slow
    // float -> uint64 conversion.)
    std::uint32_t cell(float d) const {
        float t = (d - lo) * scale;
        t = t > 0.0f ? t : 0.0f;
        return std::uint32_t(std::int32_t(t < top ? t : top));
    }
};

// The farthest negative of a row: its distance (-inf when n = 0), how many share it, the first.
struct Farthest {
    float distance = 0;
    std::uint32_t ties = 0;
    std::size_t first = 0;
};

struct LossKernels {
    // Row a of the distance matrix: negatives (labels[k] != labels[a]) to negative_distance /
    // negative (their columns), positives (equal label, k != a) to positive_distance /
    // positive_column, both in column order, without branches (the labels are in random order).
    SplitRow (*split)(const float* row, const int* labels, std::size_t B, std::size_t a, float* negative_distance,
                      std::uint32_t* negative, float* positive_distance, std::uint32_t* positive_column);
    // x[i] = x[0] + ... + x[i].
    void (*prefix_sum)(std::uint32_t* x, std::size_t n);
    // rank[q] = first[c] + (d[q] > cell_positive[c]) for c = cell(d[q]), exact unless c holds
    // several positives: those q go to `several` (in increasing order) for a search; returns how
    // many. (rank and several have kSlack room.)
    std::size_t (*rank)(const float* d, std::size_t n, const RankTable& table, std::uint32_t* rank,
                        std::uint32_t* several);
    Farthest (*farthest)(const float* d, std::size_t n);
    // Moves the non-zero entries of c[0..B) to columns/values in column order (room for
    // B + kSlack each), zeroes c, returns how many there were.
    std::size_t (*take_nonzero)(float* c, std::size_t B, std::uint32_t* columns, float* values);
    // One stretch of a distance row over its Gram entries g: d2 = (sq_i + sq[j]) - 2 g[j]
    // (TF's order), clamped at 0, then sqrt unless squared.
    void (*distance_row)(float sq_i, const float* sq, bool squared, std::size_t n, float* row);
    // out[l] = sum over k = 0..count-1, in that order, of values[k] * x[columns[k] * ld + l], for
    // l < width <= 64: a panel of one row of S x for a sparse row of S (the distance backward).
    // Each term is a product then an addition (no FMA), starting from 0. columns has kSlack
    // readable entries past count (combine_rows_loops below prefetches from them).
    void (*combine_rows)(const std::uint32_t* columns, const float* values, std::size_t count, const float* x,
                         std::size_t ld, std::size_t width, float* out);
};

extern const LossKernels kPortableKernels;
#if SEMIGRAD_X86
extern const LossKernels kAvx2Kernels;
extern const LossKernels kAvx512Kernels;
#endif

// The table of a path; throws ValueError when this CPU does not run it.
const LossKernels& loss_kernels(Isa isa);

// combine_rows' loop body, written once and compiled into each kernel file with that file's
// vector width (as tensor/small_gemm.hpp does): only the width differs, so the bits cannot.
// A whole panel of 64 outputs lives in eight 8-float vectors (GCC's vector extension: one
// register each with AVX2 and up, two on plain x86-64) while the rows stream past; narrower
// panels (only when D is not a multiple of 64) go one output at a time. The rows are picked at
// random from a panel in L2, so the row kPrefetch entries ahead is asked for early (12% faster;
// columns has kSlack readable entries past count, and a prefetch never faults).
[[gnu::always_inline]] inline void combine_rows_loops(const std::uint32_t* __restrict columns,
                                                      const float* __restrict values, std::size_t count,
                                                      const float* __restrict x, std::size_t ld, std::size_t width,
                                                      float* __restrict out) {
    using Lanes = float __attribute__((vector_size(32)));
    constexpr std::size_t kPrefetch = 12;
    static_assert(kPrefetch <= kSlack);
    if (width == 64) {
        Lanes acc[8] = {};
        for (std::size_t k = 0; k < count; ++k) {
            const float* ahead = x + std::size_t(columns[k + kPrefetch]) * ld;
            for (std::size_t line = 0; line < 4; ++line) __builtin_prefetch(ahead + 16 * line);
            const float v = values[k];
            const float* xr = x + std::size_t(columns[k]) * ld;
            for (std::size_t l = 0; l < 8; ++l) {
                Lanes y;
                __builtin_memcpy(&y, xr + 8 * l, sizeof y);
                acc[l] += v * y;
            }
        }
        __builtin_memcpy(out, acc, sizeof acc);
        return;
    }
    for (std::size_t l = 0; l < width; ++l) {
        float acc = 0.0f;
        for (std::size_t k = 0; k < count; ++k) acc += values[k] * x[std::size_t(columns[k]) * ld + l];
        out[l] = acc;
    }
}

}  // namespace semigrad::losses::detail
