// The triplet losses' kernels with AVX-512 (losses/loss_kernels.hpp): 16 lanes, masks for the
// loop tails, compress for the splits, gathers for the rank lookup. Each function computes what
// its portable twin in kernels_portable.cpp does, lane for lane. Compiled for any x86-64; the
// functions carry the target attribute and run only where tensor/simd.hpp says the CPU can.
#include "losses/loss_kernels.hpp"

#if SEMIGRAD_X86
#include <immintrin.h>

#include <bit>
#include <cmath>

SEMIGRAD_KERNELS_BEGIN

namespace semigrad::losses::detail {

namespace {

// The first `count` of 16 lanes (all of them when count >= 16), for loop tails.
SEMIGRAD_AVX512 inline __mmask16 first_lanes(std::size_t count) {
    return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1u);
}

SEMIGRAD_AVX512 inline __m512i iota16() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

// Compress in registers, then a plain store (the arrays have kSlack room) rather than the
// compress-to-memory form, which is slow on some CPUs.
SEMIGRAD_AVX512 SplitRow split(const float* row, const int* labels, std::size_t B, std::size_t a, float* nd,
                               std::uint32_t* ncol, float* pd, std::uint32_t* pcol) {
    SplitRow s;
    std::size_t n = 0, m = 0;
    const __m512i label = _mm512_set1_epi32(labels[a]), step = _mm512_set1_epi32(16);
    __m512i column = iota16();
    __m512 mx = _mm512_set1_ps(-INFINITY), mn = _mm512_set1_ps(INFINITY), sum = _mm512_setzero_ps();
    __m512 positive_max = mx, positive_min = mn;
    for (std::size_t k = 0; k < B; k += 16) {
        const __mmask16 live = first_lanes(B - k);
        const __m512 d = _mm512_maskz_loadu_ps(live, row + k);
        const __mmask16 negative =
            _mm512_mask_cmpneq_epi32_mask(live, _mm512_maskz_loadu_epi32(live, labels + k), label);
        __mmask16 positive = live & ~negative;
        if (a >= k && a < k + 16) positive &= __mmask16(~(1u << (a - k)));
        mx = _mm512_mask_max_ps(mx, live, mx, d);
        mn = _mm512_mask_min_ps(mn, live, mn, d);
        positive_max = _mm512_mask_max_ps(positive_max, positive, positive_max, d);
        positive_min = _mm512_mask_min_ps(positive_min, positive, positive_min, d);
        sum = _mm512_mask_add_ps(sum, live, sum, d);
        _mm512_storeu_ps(nd + n, _mm512_maskz_compress_ps(negative, d));
        _mm512_storeu_si512(ncol + n, _mm512_maskz_compress_epi32(negative, column));
        n += std::size_t(std::popcount(unsigned(negative)));
        _mm512_storeu_ps(pd + m, _mm512_maskz_compress_ps(positive, d));
        _mm512_storeu_si512(pcol + m, _mm512_maskz_compress_epi32(positive, column));
        m += std::size_t(std::popcount(unsigned(positive)));
        column = _mm512_add_epi32(column, step);
    }
    s.row_max = _mm512_reduce_max_ps(mx);
    s.row_min = _mm512_reduce_min_ps(mn);
    s.positive_max = _mm512_reduce_max_ps(positive_max);
    s.positive_min = _mm512_reduce_min_ps(positive_min);
    _mm512_storeu_ps(s.lane_sum, sum);
    s.n = n, s.m = m;
    return s;
}

// Sixteen at a time: the in-register scan (add the vector shifted up by 1, 2, 4, 8 lanes), plus
// the running total (through memory it would be a chain of store-to-load forwards).
SEMIGRAD_AVX512 void prefix_sum(std::uint32_t* x, std::size_t n) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i carry = zero;
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 live = first_lanes(n - i);
        __m512i v = _mm512_maskz_loadu_epi32(live, x + i);
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 15));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 14));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 12));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 8));
        v = _mm512_add_epi32(v, carry);
        _mm512_mask_storeu_epi32(x + i, live, v);
        carry = _mm512_permutexvar_epi32(_mm512_set1_epi32(15), v);
    }
}

SEMIGRAD_AVX512 std::size_t rank(const float* nd, std::size_t n, const RankTable& t, std::uint32_t* rank,
                                 std::uint32_t* several) {
    const __m512 lo = _mm512_set1_ps(t.lo), scale = _mm512_set1_ps(t.scale), top = _mm512_set1_ps(t.top);
    const __m512 zero = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1), step = _mm512_set1_epi32(16);
    __m512i index = iota16();
    std::size_t count = 0;
    for (std::size_t q = 0; q < n; q += 16) {
        const __mmask16 live = first_lanes(n - q);
        const __m512 d = _mm512_maskz_loadu_ps(live, nd + q);
        // RankTable::cell: max(t, 0) gives 0 for NaN t, as the portable ?: does.
        const __m512i c = _mm512_cvttps_epi32(
            _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_sub_ps(d, lo), scale), zero), top));
        // Two independent gathers (no chain of dependent lookups).
        const __m512i first = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, c, t.first, 4);
        const __m512 positive = _mm512_mask_i32gather_ps(zero, live, c, t.cell_positive, 4);
        const __m512i k = _mm512_mask_add_epi32(first, _mm512_mask_cmp_ps_mask(live, d, positive, _CMP_GT_OQ), first, one);
        _mm512_mask_storeu_epi32(rank + q, live, k);
        const __mmask16 many = _mm512_mask_cmp_ps_mask(live, positive, zero, _CMP_LT_OQ);
        _mm512_storeu_si512(several + count, _mm512_maskz_compress_epi32(many, index));
        count += std::size_t(std::popcount(unsigned(many)));
        index = _mm512_add_epi32(index, step);
    }
    return count;
}

SEMIGRAD_AVX512 Farthest farthest(const float* nd, std::size_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (std::size_t q = 0; q < n; q += 16)
        mx = _mm512_mask_max_ps(mx, first_lanes(n - q), mx, _mm512_maskz_loadu_ps(first_lanes(n - q), nd + q));
    Farthest f{_mm512_reduce_max_ps(mx), 0, 0};
    const __m512 target = _mm512_set1_ps(f.distance);
    for (std::size_t q = 0; q < n; q += 16) {
        const __mmask16 live = first_lanes(n - q);
        const unsigned equal = _mm512_mask_cmp_ps_mask(live, _mm512_maskz_loadu_ps(live, nd + q), target, _CMP_EQ_OQ);
        if (equal && f.ties == 0) f.first = q + std::size_t(std::countr_zero(equal));
        f.ties += std::uint32_t(std::popcount(equal));
    }
    return f;
}

SEMIGRAD_AVX512 std::size_t take_nonzero(float* c, std::size_t B, std::uint32_t* columns, float* values) {
    std::size_t count = 0;
    const __m512i step = _mm512_set1_epi32(16);
    __m512i column = iota16();
    for (std::size_t k = 0; k < B; k += 16) {
        const __mmask16 live = first_lanes(B - k);
        const __m512 v = _mm512_maskz_loadu_ps(live, c + k);
        const __mmask16 nonzero = _mm512_mask_cmp_ps_mask(live, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_si512(columns + count, _mm512_maskz_compress_epi32(nonzero, column));
        _mm512_storeu_ps(values + count, _mm512_maskz_compress_ps(nonzero, v));
        _mm512_mask_storeu_ps(c + k, live, _mm512_setzero_ps());
        count += std::size_t(std::popcount(unsigned(nonzero)));
        column = _mm512_add_epi32(column, step);
    }
    return count;
}

SEMIGRAD_AVX512 void distance_row(float sq_i, const float* __restrict sq, bool squared, std::size_t n,
                                  float* __restrict row) {
    const __m512 si = _mm512_set1_ps(sq_i), two = _mm512_set1_ps(2.0f), zero = _mm512_setzero_ps();
    for (std::size_t j = 0; j < n; j += 16) {
        const __mmask16 live = first_lanes(n - j);
        const __m512 d2 = _mm512_sub_ps(_mm512_add_ps(si, _mm512_maskz_loadu_ps(live, sq + j)),
                                        _mm512_mul_ps(two, _mm512_maskz_loadu_ps(live, row + j)));
        const __m512 clamped = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d2, zero, _CMP_GT_OQ), d2);
        _mm512_mask_storeu_ps(row + j, live, squared ? clamped : _mm512_sqrt_ps(clamped));
    }
}

SEMIGRAD_AVX512 void combine_rows(const std::uint32_t* columns, const float* values, std::size_t count,
                                  const float* x, std::size_t ld, std::size_t width, float* out) {
    combine_rows_loops(columns, values, count, x, ld, width, out);
}

}  // namespace

const LossKernels kAvx512Kernels = {split, prefix_sum, rank, farthest, take_nonzero, distance_row, combine_rows};

}  // namespace semigrad::losses::detail

SEMIGRAD_KERNELS_END

#endif  // SEMIGRAD_X86
