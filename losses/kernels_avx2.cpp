// The triplet losses' kernels with AVX2 (losses/loss_kernels.hpp), for CPUs without AVX-512
// (AMD Zen 2/3, Intel Haswell to Comet Lake). Eight lanes; AVX2 has no compress instruction, so
// a split goes through a permutation table: the 8-bit mask of the lanes to keep indexes the
// lane order that packs them to the front (kCompress). Loop tails load and store with lane
// masks. Each function computes what its portable twin in kernels_portable.cpp does, lane for
// lane. Compiled for any x86-64; the functions carry the target attribute and run only where
// tensor/simd.hpp says the CPU can.
#include "losses/loss_kernels.hpp"

#if SEMIGRAD_X86
#include <immintrin.h>

#include <array>
#include <bit>
#include <cmath>

SEMIGRAD_KERNELS_BEGIN

namespace semigrad::losses::detail {

namespace {

// kCompress[mask]: byte i is the lane of the i-th set bit of mask (the rest 0).
constexpr std::array<std::uint64_t, 256> make_compress_table() {
    std::array<std::uint64_t, 256> table{};
    for (unsigned mask = 0; mask < 256; ++mask) {
        unsigned out = 0;
        for (unsigned lane = 0; lane < 8; ++lane)
            if (mask >> lane & 1u) table[mask] |= std::uint64_t(lane) << (8 * out++);
    }
    return table;
}
alignas(64) constexpr std::array<std::uint64_t, 256> kCompress = make_compress_table();

// The permutation that packs the lanes set in `mask` to the front, in order.
SEMIGRAD_AVX2 inline __m256i compress_order(unsigned mask) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(&kCompress[mask])));
}

SEMIGRAD_AVX2 inline __m256i iota8() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

// All-ones in the first min(count, 8) lanes.
SEMIGRAD_AVX2 inline __m256i first_lanes(std::size_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(count < 8 ? count : 8)), iota8());
}

// Loads and stores of the first `count` lanes (all eight when count >= 8). The masked forms
// only for a loop's tail: AMD's masked stores are microcoded and many times slower.
SEMIGRAD_AVX2 inline __m256 load(const float* p, std::size_t count, __m256i live) {
    return count >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, live);
}

SEMIGRAD_AVX2 inline void store(float* p, std::size_t count, __m256i live, __m256 v) {
    if (count >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, live, v);
}

SEMIGRAD_AVX2 inline float reduce_max(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
}

SEMIGRAD_AVX2 inline float reduce_min(__m256 v) {
    __m128 x = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_min_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_min_ss(x, _mm_shuffle_ps(x, x, 1)));
}

// A split's running values for eight lanes.
struct SplitLanes {
    __m256 mx, mn, positive_max, positive_min, sum;
};

// Columns k..k+7 of the split (lanes k mod 16 .. +7 of the sums are `s`'s).
SEMIGRAD_AVX2 inline void split8(const float* row, const int* labels, std::size_t B, std::size_t k, std::size_t a,
                                 __m256i label, SplitLanes& s, float* nd, std::uint32_t* ncol, std::size_t& n,
                                 float* pd, std::uint32_t* pcol, std::size_t& m) {
    const std::size_t count = B - k;
    const __m256i live = first_lanes(count), column = _mm256_add_epi32(iota8(), _mm256_set1_epi32(int(k)));
    const __m256 live_ps = _mm256_castsi256_ps(live);
    const __m256 d = load(row + k, count, live);
    const __m256i lab = count >= 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + k))
                                   : _mm256_maskload_epi32(labels + k, live);
    const __m256i negative = _mm256_andnot_si256(_mm256_cmpeq_epi32(lab, label), live);
    const __m256i positive = _mm256_andnot_si256(
        _mm256_or_si256(negative, _mm256_cmpeq_epi32(column, _mm256_set1_epi32(int(a)))), live);
    const __m256 positive_ps = _mm256_castsi256_ps(positive);
    s.mx = _mm256_blendv_ps(s.mx, _mm256_max_ps(s.mx, d), live_ps);
    s.mn = _mm256_blendv_ps(s.mn, _mm256_min_ps(s.mn, d), live_ps);
    s.positive_max = _mm256_blendv_ps(s.positive_max, _mm256_max_ps(s.positive_max, d), positive_ps);
    s.positive_min = _mm256_blendv_ps(s.positive_min, _mm256_min_ps(s.positive_min, d), positive_ps);
    s.sum = _mm256_blendv_ps(s.sum, _mm256_add_ps(s.sum, d), live_ps);
    const unsigned negative_bits = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(negative)));
    const unsigned positive_bits = unsigned(_mm256_movemask_ps(positive_ps));
    const __m256i to_negative = compress_order(negative_bits), to_positive = compress_order(positive_bits);
    _mm256_storeu_ps(nd + n, _mm256_permutevar8x32_ps(d, to_negative));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ncol + n), _mm256_permutevar8x32_epi32(column, to_negative));
    n += std::size_t(std::popcount(negative_bits));
    _mm256_storeu_ps(pd + m, _mm256_permutevar8x32_ps(d, to_positive));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pcol + m), _mm256_permutevar8x32_epi32(column, to_positive));
    m += std::size_t(std::popcount(positive_bits));
}

SEMIGRAD_AVX2 SplitRow split(const float* row, const int* labels, std::size_t B, std::size_t a, float* nd,
                             std::uint32_t* ncol, float* pd, std::uint32_t* pcol) {
    const __m256i label = _mm256_set1_epi32(labels[a]);
    const __m256 lowest = _mm256_set1_ps(-INFINITY), highest = _mm256_set1_ps(INFINITY);
    // Two sets of eight lanes, for columns k mod 16 in 0..7 and 8..15: the row sum then adds in
    // the same sixteen running sums as the other paths.
    SplitLanes low{lowest, highest, lowest, highest, _mm256_setzero_ps()}, high = low;
    std::size_t n = 0, m = 0;
    for (std::size_t k = 0; k < B; k += 16) {
        split8(row, labels, B, k, a, label, low, nd, ncol, n, pd, pcol, m);
        if (k + 8 < B) split8(row, labels, B, k + 8, a, label, high, nd, ncol, n, pd, pcol, m);
    }
    SplitRow s;
    s.row_max = reduce_max(_mm256_max_ps(low.mx, high.mx));
    s.row_min = reduce_min(_mm256_min_ps(low.mn, high.mn));
    s.positive_max = reduce_max(_mm256_max_ps(low.positive_max, high.positive_max));
    s.positive_min = reduce_min(_mm256_min_ps(low.positive_min, high.positive_min));
    _mm256_storeu_ps(s.lane_sum, low.sum);
    _mm256_storeu_ps(s.lane_sum + 8, high.sum);
    s.n = n, s.m = m;
    return s;
}

// Eight at a time: the scan within each 128-bit half (shift by one and two lanes), the low
// half's total added to the high half, plus the running total.
SEMIGRAD_AVX2 void prefix_sum(std::uint32_t* x, std::size_t n) {
    const __m256i zero = _mm256_setzero_si256(), lane3 = _mm256_setr_epi32(0, 0, 0, 0, 3, 3, 3, 3);
    const __m256i lane7 = _mm256_set1_epi32(7);
    __m256i carry = zero;
    for (std::size_t i = 0; i < n; i += 8) {
        const __m256i live = first_lanes(n - i);
        auto* p = reinterpret_cast<int*>(x + i);
        __m256i v = n - i >= 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskload_epi32(p, live);
        v = _mm256_add_epi32(v, _mm256_slli_si256(v, 4));
        v = _mm256_add_epi32(v, _mm256_slli_si256(v, 8));
        v = _mm256_add_epi32(v, _mm256_blend_epi32(zero, _mm256_permutevar8x32_epi32(v, lane3), 0xF0));
        v = _mm256_add_epi32(v, carry);
        if (n - i >= 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
        else _mm256_maskstore_epi32(p, live, v);
        carry = _mm256_permutevar8x32_epi32(v, lane7);
    }
}

SEMIGRAD_AVX2 std::size_t rank(const float* nd, std::size_t n, const RankTable& t, std::uint32_t* rank,
                               std::uint32_t* several) {
    const __m256 lo = _mm256_set1_ps(t.lo), scale = _mm256_set1_ps(t.scale), top = _mm256_set1_ps(t.top);
    const __m256 zero = _mm256_setzero_ps();
    const int* first_table = reinterpret_cast<const int*>(t.first);
    std::size_t count = 0;
    for (std::size_t q = 0; q < n; q += 8) {
        const __m256i live = first_lanes(n - q);
        // Lanes past n load 0, whose cell is a valid index too: the gathers need no mask.
        const __m256 d = load(nd + q, n - q, live);
        // RankTable::cell: max(t, 0) gives 0 for NaN t (MAXPS returns its second operand), as
        // the portable ?: does.
        const __m256i c = _mm256_cvttps_epi32(
            _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(d, lo), scale), zero), top));
        const __m256i first = _mm256_i32gather_epi32(first_table, c, 4);
        const __m256 positive = _mm256_i32gather_ps(t.cell_positive, c, 4);
        // first + 1 where d > positive: subtracting the all-ones compare adds one.
        const __m256i k = _mm256_sub_epi32(first, _mm256_castps_si256(_mm256_cmp_ps(d, positive, _CMP_GT_OQ)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(rank + q), k);  // kSlack room past n
        const unsigned many = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(positive, zero, _CMP_LT_OQ))) &
                              unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(live)));
        if (many) {
            const __m256i index = _mm256_add_epi32(iota8(), _mm256_set1_epi32(int(q)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(several + count),
                                _mm256_permutevar8x32_epi32(index, compress_order(many)));
            count += std::size_t(std::popcount(many));
        }
    }
    return count;
}

SEMIGRAD_AVX2 Farthest farthest(const float* nd, std::size_t n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (std::size_t q = 0; q < n; q += 8) {
        const __m256i live = first_lanes(n - q);
        mx = _mm256_blendv_ps(mx, _mm256_max_ps(mx, load(nd + q, n - q, live)), _mm256_castsi256_ps(live));
    }
    Farthest f{reduce_max(mx), 0, 0};
    const __m256 target = _mm256_set1_ps(f.distance);
    for (std::size_t q = 0; q < n; q += 8) {
        const __m256i live = first_lanes(n - q);
        const unsigned equal = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(load(nd + q, n - q, live), target, _CMP_EQ_OQ))) &
                               unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(live)));
        if (equal && f.ties == 0) f.first = q + std::size_t(std::countr_zero(equal));
        f.ties += std::uint32_t(std::popcount(equal));
    }
    return f;
}

SEMIGRAD_AVX2 std::size_t take_nonzero(float* c, std::size_t B, std::uint32_t* columns, float* values) {
    std::size_t count = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (std::size_t k = 0; k < B; k += 8) {
        const __m256i live = first_lanes(B - k);
        const __m256 v = load(c + k, B - k, live);
        const unsigned nonzero = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ))) &
                                 unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(live)));
        if (nonzero) {
            const __m256i order = compress_order(nonzero);
            const __m256i column = _mm256_add_epi32(iota8(), _mm256_set1_epi32(int(k)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(columns + count), _mm256_permutevar8x32_epi32(column, order));
            _mm256_storeu_ps(values + count, _mm256_permutevar8x32_ps(v, order));
            count += std::size_t(std::popcount(nonzero));
        }
        store(c + k, B - k, live, zero);  // -0.0 too, as the portable path does
    }
    return count;
}

// Whole vectors here, and the last n mod 8 entries by the portable kernel (the same operations
// on one lane, so the same bits; no masked store).
SEMIGRAD_AVX2 void distance_row(float sq_i, const float* __restrict sq, bool squared, std::size_t n,
                                float* __restrict row) {
    const __m256 si = _mm256_set1_ps(sq_i), two = _mm256_set1_ps(2.0f), zero = _mm256_setzero_ps();
    std::size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 d2 = _mm256_sub_ps(_mm256_add_ps(si, _mm256_loadu_ps(sq + j)), _mm256_mul_ps(two, _mm256_loadu_ps(row + j)));
        const __m256 clamped = _mm256_and_ps(_mm256_cmp_ps(d2, zero, _CMP_GT_OQ), d2);
        _mm256_storeu_ps(row + j, squared ? clamped : _mm256_sqrt_ps(clamped));
    }
    kPortableKernels.distance_row(sq_i, sq + j, squared, n - j, row + j);
}

SEMIGRAD_AVX2 void combine_rows(const std::uint32_t* columns, const float* values, std::size_t count,
                                const float* x, std::size_t ld, std::size_t width, float* out) {
    combine_rows_loops(columns, values, count, x, ld, width, out);
}

}  // namespace

const LossKernels kAvx2Kernels = {split, prefix_sum, rank, farthest, take_nonzero, distance_row, combine_rows};

}  // namespace semigrad::losses::detail

SEMIGRAD_KERNELS_END

#endif  // SEMIGRAD_X86
