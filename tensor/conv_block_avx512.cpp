// The 2x2 conv block's row kernels in AVX-512 (F, BW, DQ, VL): sixteen outputs per step, the tail
// by masks. Lane for lane what conv_block_kernels.cpp computes (see conv_block_kernels.hpp); the
// SplitMix64 dropout hash runs in 64-bit lanes (vpmullq, AVX-512 DQ).
#include "tensor/conv_block_kernels.hpp"

#if SEMIGRAD_X86
#include <algorithm>

#include <immintrin.h>

#include "tensor/conv2d_winograd.hpp"
#include "tensor/conv_block.hpp"
#include "tensor/dropout.hpp"


SEMIGRAD_KERNELS_BEGIN
namespace semigrad::conv_block_kernels {

namespace {

// dropout_pair_hash (tensor/dropout.hpp) of eight pairs, from their first states
// z = key + (pair+1)·γ (mod 2^64), which the caller steps by additions (consecutive pairs'
// states differ by γ): one 64-bit multiply of three fewer per hash.
SEMIGRAD_AVX512 inline __m512i hash8(__m512i z) {
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                           _mm512_set1_epi64(std::int64_t(0xBF58476D1CE4E5B9ULL)));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                           _mm512_set1_epi64(std::int64_t(0x94D049BB133111EBULL)));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

// dropout_hash of the sixteen elements from `first`, as 32-bit lanes: the pairs from first / 2,
// each 64-bit lane [low, high] swapped to [high, low] (the pair's even element, then its odd
// one) and shifted to its top 24 bits. From an odd first, the lanes move down by one and the
// last is the even element of the ninth pair.
SEMIGRAD_AVX512 inline __m512i dropout_draws(std::uint64_t key, std::uint64_t first) {
    constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ULL;  // dropout_pair_hash's increment
    const std::uint64_t pair = first >> 1;
    const __m512i state = _mm512_add_epi64(
        _mm512_set1_epi64(std::int64_t(key + (pair + 1) * gamma)),
        _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
                           _mm512_set1_epi64(std::int64_t(gamma))));
    const __m512i draws = _mm512_srli_epi32(_mm512_shuffle_epi32(hash8(state), _MM_PERM_CDAB), 8);
    if (!(first & 1)) return draws;
    const int ninth = int(dropout_pair_hash(key, pair + 8) >> 40);
    return _mm512_alignr_epi32(_mm512_set1_epi32(ninth), draws, 1);
}

SEMIGRAD_AVX512 inline __mmask16 first(int count) {
    return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1u);
}

}  // namespace

namespace {

// One window value of the fused first conv: ((w0 x00 + w1 x01) + w2 x10) + w3 x11, then the
// bias, in small_gemm nn's order and then PoolRow's (see ConvPool).
SEMIGRAD_AVX512 inline __m512 window(__m512 w0, __m512 w1, __m512 w2, __m512 w3, __m512 x00, __m512 x01, __m512 x10,
                                __m512 x11, __m512 bias) {
    const __m512 s = _mm512_add_ps(_mm512_mul_ps(w0, x00), _mm512_mul_ps(w1, x01));
    const __m512 t = _mm512_add_ps(_mm512_add_ps(s, _mm512_mul_ps(w2, x10)), _mm512_mul_ps(w3, x11));
    return _mm512_add_ps(t, bias);
}

// The epilogue of sixteen outputs (m of them real) from their windows' four values, bias
// included: the first maximum and its place, the dropout decision, the output and its record byte
// (to's outputs 0..15).
SEMIGRAD_AVX512 inline void finish(const __m512 v[4], int m, const PoolOutput& to) {
    const bool recorded = to.record != nullptr;
    __m512 best = v[0];
    __m512i place = _mm512_setzero_si512();
    for (int k = 1; k < 4; ++k) {
        const __mmask16 gt = _mm512_cmp_ps_mask(v[k], best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gt, v[k]);
        if (recorded) place = _mm512_mask_mov_epi32(place, gt, _mm512_set1_epi32(k));
    }
    __mmask16 kept = 0xffff;
    if (to.dropout)  // kept when the draw is at least the threshold
        kept = _mm512_cmpge_epu32_mask(dropout_draws(to.key, to.first),
                                       _mm512_set1_epi32(int(to.threshold)));
    const __mmask16 passes = kept & _mm512_cmp_ps_mask(best, _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_mask_storeu_ps(to.out, first(m), _mm512_maskz_mul_ps(passes, best, _mm512_set1_ps(to.scale)));
    if (!recorded) return;
    const __m512i bytes = _mm512_mask_or_epi32(place, passes, place, _mm512_set1_epi32(kConvBlockPasses));
    _mm_mask_storeu_epi8(to.record, first(m), _mm512_cvtepi32_epi8(bytes));
}

}  // namespace

SEMIGRAD_AVX512 void pool_row_avx512(const PoolRow& a) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 bias = _mm512_set1_ps(a.bias);
    for (int j = 0; j < a.OW; j += 16) {
        const int m = std::min(16, a.OW - j);
        const __mmask16 lo = first(2 * m), hi = first(std::max(2 * m - 16, 0));
        // Window places 0..3 of sixteen outputs: even and odd columns of the two rows.
        const __m512 a0 = _mm512_maskz_loadu_ps(lo, a.r0 + 2 * j);
        const __m512 a1 = _mm512_maskz_loadu_ps(hi, a.r0 + 2 * j + 16);
        const __m512 b0 = _mm512_maskz_loadu_ps(lo, a.r1 + 2 * j);
        const __m512 b1 = _mm512_maskz_loadu_ps(hi, a.r1 + 2 * j + 16);
        const __m512 v[4] = {_mm512_add_ps(_mm512_permutex2var_ps(a0, even, a1), bias),
                             _mm512_add_ps(_mm512_permutex2var_ps(a0, odd, a1), bias),
                             _mm512_add_ps(_mm512_permutex2var_ps(b0, even, b1), bias),
                             _mm512_add_ps(_mm512_permutex2var_ps(b0, odd, b1), bias)};
        finish(v, m, a.to.from(std::size_t(j)));
    }
}

SEMIGRAD_AVX512 void conv_pool_avx512(const ConvPool& a) {
    for (int oh = 0; oh < a.OH; ++oh)
        for (int j = 0; j < a.OW; j += 16) {
            const int m = std::min(16, a.OW - j);
            // Rows 2oh..2oh+2 of the windows' columns 2j (e), 2j+1 (o) and 2j+2 (n): read once,
            // used by every output channel.
            __m512 e[3], o[3], n[3];
            for (int r = 0; r < 3; ++r) {
                const float* er = a.even + std::ptrdiff_t(2 * oh + r) * a.pitch + j;
                e[r] = _mm512_loadu_ps(er), n[r] = _mm512_loadu_ps(er + 1);
                o[r] = _mm512_loadu_ps(a.odd + std::ptrdiff_t(2 * oh + r) * a.pitch + j);
            }
            for (int oc = 0; oc < a.OC; ++oc) {
                const float* w = a.weight + 4 * oc;
                const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]),
                             w2 = _mm512_set1_ps(w[2]), w3 = _mm512_set1_ps(w[3]);
                const __m512 bias = _mm512_set1_ps(a.bias ? a.bias[oc] : 0.0f);
                // Window places (0,0), (0,1), (1,0), (1,1): their 2x2 patches of the input.
                const __m512 v[4] = {window(w0, w1, w2, w3, e[0], o[0], e[1], o[1], bias),
                                     window(w0, w1, w2, w3, o[0], n[0], o[1], n[1], bias),
                                     window(w0, w1, w2, w3, e[1], o[1], e[2], o[2], bias),
                                     window(w0, w1, w2, w3, o[1], n[1], o[2], n[2], bias)};
                const std::size_t at = (std::size_t(oc) * a.OH + oh) * a.OW + j;
                finish(v, m, a.to.from(at));
            }
        }
}

SEMIGRAD_AVX512 void pool_tiles_avx512(const PoolTiles& a) {
    for (int oc = 0; oc < a.OC; ++oc) {
        const __m512 bias = _mm512_set1_ps(a.bias ? a.bias[oc] : 0.0f);
        for (int i = 0; i < a.OH; ++i)
            for (int j = 0; j < a.OW; j += 16) {
                const int n = std::min(16, a.OW - j);
                const float* in = a.m + std::size_t(oc) * a.tiles + std::size_t(i) * a.TW + j;
                __m512 mp[winograd::kPoints];
                for (int p = 0; p < winograd::kPoints; ++p)
                    mp[p] = _mm512_maskz_loadu_ps(first(n), in + p * a.stride);
                // Aᵀ M A, as winograd's output transform, then the bias.
                const __m512 a0 = _mm512_add_ps(mp[0], mp[3]), a1 = _mm512_add_ps(mp[1], mp[4]),
                             a2 = _mm512_add_ps(mp[2], mp[5]), b0 = _mm512_add_ps(mp[3], mp[6]),
                             b1 = _mm512_add_ps(mp[4], mp[7]), b2 = _mm512_add_ps(mp[5], mp[8]);
                const __m512 v[4] = {_mm512_add_ps(_mm512_add_ps(a0, a1), bias),
                                     _mm512_add_ps(_mm512_add_ps(a1, a2), bias),
                                     _mm512_add_ps(_mm512_add_ps(b0, b1), bias),
                                     _mm512_add_ps(_mm512_add_ps(b1, b2), bias)};
                const std::size_t at = (std::size_t(oc) * a.OH + i) * a.OW + j;
                finish(v, n, a.to.from(at));
            }
    }
}

SEMIGRAD_AVX512 void unpool_row_avx512(const UnpoolRow& a) {
    // Output j's places 0 and 1 go to d0[2j], d0[2j+1]: interleave two vectors of sixteen.
    const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 scale = _mm512_set1_ps(a.scale);
    for (int j = 0; j < a.OW; j += 16) {
        const int m = std::min(16, a.OW - j);
        const __m512 d = _mm512_maskz_loadu_ps(first(m), a.dout + j);
        const __m512i r = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(first(m), a.record + j));
        const __mmask16 passes = _mm512_test_epi32_mask(r, _mm512_set1_epi32(kConvBlockPasses));
        const __m512 g = _mm512_maskz_mul_ps(passes, d, scale);
        const __m512i place = _mm512_and_si512(r, _mm512_set1_epi32(3));
        __m512 at[4];
        for (int k = 0; k < 4; ++k)
            at[k] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(place, _mm512_set1_epi32(k)), g);
        const __mmask16 lo = first(2 * m), hi = first(std::max(2 * m - 16, 0));
        _mm512_mask_storeu_ps(a.d0 + 2 * j, lo, _mm512_permutex2var_ps(at[0], low, at[1]));
        _mm512_mask_storeu_ps(a.d0 + 2 * j + 16, hi, _mm512_permutex2var_ps(at[0], high, at[1]));
        _mm512_mask_storeu_ps(a.d1 + 2 * j, lo, _mm512_permutex2var_ps(at[2], low, at[3]));
        _mm512_mask_storeu_ps(a.d1 + 2 * j + 16, hi, _mm512_permutex2var_ps(at[2], high, at[3]));
    }
}

SEMIGRAD_AVX512 void conv_pool_grad_avx512(const ConvPoolGrad& a) {
    const std::size_t row = ConvPoolGrad::row(a.OW);
    // Column j of the even chains and of the odd ones to columns 2j and 2j+1.
    const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 scale = _mm512_set1_ps(a.scale);
    for (int oc = 0; oc < a.OC; ++oc) {
        float* s = a.sums + std::size_t(oc) * 5 * row;
        for (int j = 0; j < a.OW; j += 16) {
            const int m = std::min(16, a.OW - j);
            // Sixteen outputs' conv columns: 2j' (winners with pw = 0) and 2j'+1 (pw = 1).
            __m512 even[5], odd[5];
            for (int k = 0; k < 5; ++k) even[k] = odd[k] = _mm512_setzero_ps();
            for (int oh = 0; oh < a.OH; ++oh) {
                const std::size_t at = (std::size_t(oc) * a.OH + oh) * a.OW + j;
                const __m512i r = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(first(m), a.record + at));
                const __mmask16 passes = _mm512_test_epi32_mask(r, _mm512_set1_epi32(kConvBlockPasses));
                const __m512 g = _mm512_maskz_mul_ps(passes, _mm512_maskz_loadu_ps(first(m), a.dout + at), scale);
                const __mmask16 pw = _mm512_test_epi32_mask(r, _mm512_set1_epi32(1));
                const __mmask16 ph = _mm512_test_epi32_mask(r, _mm512_set1_epi32(2));
                // y[rr][b]: padded row 2oh + rr, column 2j' + pw + b, for rr = 0..2, b = 0..1.
                __m512 y[3][2];
                for (int rr = 0; rr < 3; ++rr) {
                    const float* er = a.even + std::ptrdiff_t(2 * oh + rr) * a.pitch + j;
                    const __m512 e = _mm512_loadu_ps(er), n = _mm512_loadu_ps(er + 1);
                    const __m512 o = _mm512_loadu_ps(a.odd + std::ptrdiff_t(2 * oh + rr) * a.pitch + j);
                    y[rr][0] = _mm512_mask_mov_ps(e, pw, o);
                    y[rr][1] = _mm512_mask_mov_ps(o, pw, n);
                }
                for (int k = 0; k < 4; ++k) {
                    // Tap (k/2, k%2) of the winner's window: row ph + k/2 of y.
                    const __m512 x = _mm512_mask_mov_ps(y[k / 2][k % 2], ph, y[k / 2 + 1][k % 2]);
                    const __m512 t = _mm512_mul_ps(g, x);
                    even[k] = _mm512_mask_add_ps(even[k], ~pw, even[k], t);
                    odd[k] = _mm512_mask_add_ps(odd[k], pw, odd[k], t);
                }
                even[4] = _mm512_mask_add_ps(even[4], ~pw, even[4], g);
                odd[4] = _mm512_mask_add_ps(odd[4], pw, odd[4], g);
            }
            for (int k = 0; k < 5; ++k) {
                float* to = s + k * row + 2 * std::size_t(j);
                _mm512_storeu_ps(to, _mm512_permutex2var_ps(even[k], low, odd[k]));
                _mm512_storeu_ps(to + 16, _mm512_permutex2var_ps(even[k], high, odd[k]));
            }
        }
    }
}

}  // namespace semigrad::conv_block_kernels
SEMIGRAD_KERNELS_END
#endif
