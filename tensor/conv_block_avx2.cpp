// The 2x2 conv block's row kernels in AVX2 + FMA: eight outputs per step, the tail by masked
// loads and stores in pieces. Lane for lane what conv_block_kernels.cpp computes (see
// conv_block_kernels.hpp). AVX2 has no 64-bit multiply, so the SplitMix64 dropout hash builds its
// low 64 bits from three 32x32 -> 64-bit products (the high x high one only reaches bit 64).
#include "tensor/conv_block_kernels.hpp"

#if SEMIGRAD_X86
#include <algorithm>
#include <cstring>

#include <immintrin.h>

#include "tensor/conv2d_winograd.hpp"
#include "tensor/conv_block.hpp"
#include "tensor/dropout.hpp"


SEMIGRAD_KERNELS_BEGIN
namespace semigrad::conv_block_kernels {

namespace {

// The low 64 bits of a * c in each lane: lo(a)lo(c) + ((hi(a)lo(c) + lo(a)hi(c)) << 32).
SEMIGRAD_AVX2 inline __m256i mullo64(__m256i a, std::uint64_t c) {
    const __m256i cl = _mm256_set1_epi64x(std::int64_t(c & 0xffffffffu));
    const __m256i ch = _mm256_set1_epi64x(std::int64_t(c >> 32));
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), cl),
                                           _mm256_mul_epu32(a, ch));
    return _mm256_add_epi64(_mm256_mul_epu32(a, cl), _mm256_slli_epi64(cross, 32));
}

// dropout_pair_hash (tensor/dropout.hpp) of four pairs, from their first states
// z = key + (pair+1)·γ (mod 2^64), which the caller steps by additions: consecutive pairs'
// states differ by γ, so the first of SplitMix64's three 64-bit multiplies, each three 32-bit
// ones here, is not needed.
SEMIGRAD_AVX2 inline __m256i hash4(__m256i z) {
    z = mullo64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xBF58476D1CE4E5B9ULL);
    z = mullo64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94D049BB133111EBULL);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

// dropout_hash of the eight elements from `first`, as 32-bit lanes: the pairs from first / 2,
// each 64-bit lane [low, high] swapped to [high, low] (the pair's even element, then its odd
// one) and shifted to its top 24 bits. From an odd first, the lanes move down by one and the
// last is the even element of the fifth pair.
constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ULL;  // dropout_pair_hash's increment

// The first states of the four pairs from element `first` on (its pair, and the three after).
SEMIGRAD_AVX2 inline __m256i pair_states(std::uint64_t key, std::uint64_t first) {
    const std::uint64_t z0 = key + ((first >> 1) + 1) * kGamma;
    return _mm256_setr_epi64x(std::int64_t(z0), std::int64_t(z0 + kGamma),
                              std::int64_t(z0 + 2 * kGamma), std::int64_t(z0 + 3 * kGamma));
}

// The eight draws of an even `first` from its pair_states.
SEMIGRAD_AVX2 inline __m256i even_draws(__m256i states) {
    return _mm256_srli_epi32(_mm256_shuffle_epi32(hash4(states), 0xB1), 8);
}

SEMIGRAD_AVX2 inline __m256i dropout_draws(std::uint64_t key, std::uint64_t first) {
    const std::uint64_t pair = first >> 1;
    const __m256i draws = even_draws(pair_states(key, first));
    if (!(first & 1)) return draws;
    const int fifth = int(dropout_pair_hash(key, pair + 4) >> 40);
    return _mm256_blend_epi32(_mm256_permutevar8x32_epi32(draws, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7)),
                              _mm256_set1_epi32(fifth), 0x80);
}

// Lanes i < count set (a mask for maskload/maskstore).
SEMIGRAD_AVX2 inline __m256i first(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 floats from p, the lanes past count as 0 (and not read).
SEMIGRAD_AVX2 inline __m256 load(const float* p, int count) {
    return count >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first(count));
}
// The first count lanes of v to p. A tail goes out in plain stores of 4, 2 and 1 lanes, not
// vmaskmovps: AMD's masked store is microcoded (Zen 3 and 4: tens of micro-ops each), and with the
// tutorial's rows (OW = 14 and 7) nearly every row has a tail. Under SEMIGRAD_ISA=avx2 on this
// project's Zen 4 the two row kernels were 18% of a 1-thread training step with masked stores
// (perf); through a buffer and memcpy, the first block's backward took 659 us (batch 32, one
// thread), in pieces 649.
SEMIGRAD_AVX2 inline void store(float* p, int count, __m256 v) {
    if (count >= 8) {
        _mm256_storeu_ps(p, v);
    } else if (count > 0) {
        // In pieces of 4, 2 and 1 lanes, each a plain store.
        __m128 part = _mm256_castps256_ps128(v);
        if (count & 4) {
            _mm_storeu_ps(p, part);
            part = _mm256_extractf128_ps(v, 1);
            p += 4;
        }
        if (count & 2) {
            _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
            part = _mm_movehl_ps(part, part);
            p += 2;
        }
        if (count & 1) _mm_store_ss(p, part);
    }
}

// The even and the odd elements of the 16 floats lo:hi, in order.
SEMIGRAD_AVX2 inline __m256 evens(__m256 lo, __m256 hi) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
}
SEMIGRAD_AVX2 inline __m256 odds(__m256 lo, __m256 hi) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}

// The record bytes base[at .. at+m) (m <= 8) as eight 32-bit lanes, zeros past m. Gathered in a
// register: a memcpy of m < 8 bytes into a stack word read back at once as 8 bytes stalled on
// store forwarding (a third of unpool_row_avx2, perf). A short group with at least 8 bytes
// before its end in `base` reads those 8 and shifts out the ones before it; only a group near
// the start goes byte by byte.
SEMIGRAD_AVX2 inline __m256i record_lanes(const std::uint8_t* base, std::size_t at, int m) {
    std::uint64_t packed = 0;
    if (m == 8) {
        std::memcpy(&packed, base + at, 8);
    } else if (at + m >= 8) {
        std::memcpy(&packed, base + at + m - 8, 8);
        packed >>= 8 * (8 - m);
    } else {
        for (int i = 0; i < m; ++i) packed |= std::uint64_t(base[at + i]) << (8 * i);
    }
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(std::int64_t(packed)));
}

}  // namespace

namespace {

// One window value of the fused first conv: ((w0 x00 + w1 x01) + w2 x10) + w3 x11, then the
// bias, in small_gemm nn's order and then PoolRow's (see ConvPool).
SEMIGRAD_AVX2 inline __m256 window(__m256 w0, __m256 w1, __m256 w2, __m256 w3, __m256 x00, __m256 x01, __m256 x10,
                                __m256 x11, __m256 bias) {
    const __m256 s = _mm256_add_ps(_mm256_mul_ps(w0, x00), _mm256_mul_ps(w1, x01));
    const __m256 t = _mm256_add_ps(_mm256_add_ps(s, _mm256_mul_ps(w2, x10)), _mm256_mul_ps(w3, x11));
    return _mm256_add_ps(t, bias);
}

// The epilogue of eight outputs (m of them real) from their windows' four values, bias
// included: the first maximum and its place, the dropout decision, the output and its record byte
// (to's outputs 0..7).
// With `whole`, a short group (m < 8) still stores all eight outputs and record bytes: the
// caller has checked that the places past its row belong to a row it writes later. `draws`, if
// given, are dropout_draws(to.key, to.first), which the caller made more cheaply.
SEMIGRAD_AVX2 inline void finish(const __m256 v[4], int m, const PoolOutput& to, bool whole = false,
                                 const __m256i* draws = nullptr) {
    const bool recorded = to.record != nullptr;
    __m256 best = v[0];
    __m256i place = _mm256_setzero_si256();
    for (int k = 1; k < 4; ++k) {
        const __m256 gt = _mm256_cmp_ps(v[k], best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, v[k], gt);
        if (recorded)
            place = _mm256_blendv_epi8(place, _mm256_set1_epi32(k), _mm256_castps_si256(gt));
    }
    __m256i kept = _mm256_set1_epi32(-1);
    if (to.dropout)  // dropped when the draw is below the threshold (both < 2^24: signed compare)
        kept = _mm256_xor_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(int(to.threshold)),
                                                   draws ? *draws : dropout_draws(to.key, to.first)),
                                kept);
    const __m256 passes = _mm256_and_ps(_mm256_castsi256_ps(kept),
                                        _mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_GT_OQ));
    store(to.out, whole ? 8 : m, _mm256_and_ps(_mm256_mul_ps(best, _mm256_set1_ps(to.scale)), passes));
    if (!recorded) return;
    const __m256i flags = _mm256_or_si256(
        place, _mm256_and_si256(_mm256_castps_si256(passes), _mm256_set1_epi32(kConvBlockPasses)));
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(flags),
                                           _mm256_extracti128_si256(flags, 1));
    const __m128i bytes = _mm_packus_epi16(words, words);
    if (m == 8 || whole) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(to.record), bytes);
    } else {
        alignas(16) std::uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
        std::memcpy(to.record, tmp, std::size_t(m));
    }
}

}  // namespace

SEMIGRAD_AVX2 void pool_row_avx2(const PoolRow& a) {
    const __m256 bias = _mm256_set1_ps(a.bias);
    for (int j = 0; j < a.OW; j += 8) {
        const int m = std::min(8, a.OW - j);
        const int lo = std::min(2 * m, 8), hi = std::max(2 * m - 8, 0);
        const __m256 a0 = load(a.r0 + 2 * j, lo), a1 = load(a.r0 + 2 * j + 8, hi);
        const __m256 b0 = load(a.r1 + 2 * j, lo), b1 = load(a.r1 + 2 * j + 8, hi);
        const __m256 v[4] = {_mm256_add_ps(evens(a0, a1), bias), _mm256_add_ps(odds(a0, a1), bias),
                             _mm256_add_ps(evens(b0, b1), bias), _mm256_add_ps(odds(b0, b1), bias)};
        finish(v, m, a.to.from(std::size_t(j)));
    }
}

SEMIGRAD_AVX2 void conv_pool_avx2(const ConvPool& a) {
    for (int oh = 0; oh < a.OH; ++oh)
        for (int j = 0; j < a.OW; j += 8) {
            const int m = std::min(8, a.OW - j);
            // A short last group of a row stores whole vectors when what they spill over is the
            // start of the plane's next row, which the next oh writes. The tutorial's rows of 14
            // end in groups of 6: its first block's forward at batch 32 took 641 us on one thread
            // with the buffered tail stores, 615 with whole ones.
            const bool whole = oh + 1 < a.OH && 8 - m <= a.OW;
            // Rows 2oh..2oh+2 of the windows' columns 2j (e), 2j+1 (o) and 2j+2 (n): read once,
            // used by every output channel.
            __m256 e[3], o[3], n[3];
            for (int r = 0; r < 3; ++r) {
                const float* er = a.even + std::ptrdiff_t(2 * oh + r) * a.pitch + j;
                e[r] = _mm256_loadu_ps(er), n[r] = _mm256_loadu_ps(er + 1);
                o[r] = _mm256_loadu_ps(a.odd + std::ptrdiff_t(2 * oh + r) * a.pitch + j);
            }
            // Channel oc's outputs start a plane (OH*OW elements) after channel oc-1's. With an
            // even plane and an even first element (the tutorial's, always), the eight draws'
            // pairs move by plane/2 from channel to channel: their states step by one vector
            // addition of plane/2 · γ, instead of being built from scalars for each channel
            // (dropout_draws). The first block's forward took 0.34-0.35 ms a step built, 0.32-0.33
            // stepped (2 threads, SEMIGRAD_ISA=avx2, the host's slow state).
            const std::uint64_t plane = std::uint64_t(a.OH) * a.OW;
            const std::uint64_t first0 = a.to.first + std::uint64_t(oh) * a.OW + std::uint64_t(j);
            const bool stepped = a.to.dropout && plane % 2 == 0 && first0 % 2 == 0;
            __m256i states = stepped ? pair_states(a.to.key, first0) : _mm256_setzero_si256();
            const __m256i step = _mm256_set1_epi64x(std::int64_t(plane / 2 * kGamma));
            for (int oc = 0; oc < a.OC; ++oc) {
                const float* w = a.weight + 4 * oc;
                const __m256 w0 = _mm256_set1_ps(w[0]), w1 = _mm256_set1_ps(w[1]),
                             w2 = _mm256_set1_ps(w[2]), w3 = _mm256_set1_ps(w[3]);
                const __m256 bias = _mm256_set1_ps(a.bias ? a.bias[oc] : 0.0f);
                // Window places (0,0), (0,1), (1,0), (1,1): their 2x2 patches of the input.
                const __m256 v[4] = {window(w0, w1, w2, w3, e[0], o[0], e[1], o[1], bias),
                                     window(w0, w1, w2, w3, o[0], n[0], o[1], n[1], bias),
                                     window(w0, w1, w2, w3, e[1], o[1], e[2], o[2], bias),
                                     window(w0, w1, w2, w3, o[1], n[1], o[2], n[2], bias)};
                const std::size_t at = (std::size_t(oc) * a.OH + oh) * a.OW + j;
                if (stepped) {
                    const __m256i draws = even_draws(states);
                    states = _mm256_add_epi64(states, step);
                    finish(v, m, a.to.from(at), whole, &draws);
                } else {
                    finish(v, m, a.to.from(at), whole);
                }
            }
        }
}

SEMIGRAD_AVX2 void pool_tiles_avx2(const PoolTiles& a) {
    for (int oc = 0; oc < a.OC; ++oc) {
        const __m256 bias = _mm256_set1_ps(a.bias ? a.bias[oc] : 0.0f);
        for (int i = 0; i < a.OH; ++i)
            for (int j = 0; j < a.OW; j += 8) {
                const int n = std::min(8, a.OW - j);
                const float* in = a.m + std::size_t(oc) * a.tiles + std::size_t(i) * a.TW + j;
                __m256 mp[winograd::kPoints];
                for (int p = 0; p < winograd::kPoints; ++p) mp[p] = load(in + p * a.stride, n);
                // Aᵀ M A, as winograd's output transform, then the bias.
                const __m256 a0 = _mm256_add_ps(mp[0], mp[3]), a1 = _mm256_add_ps(mp[1], mp[4]),
                             a2 = _mm256_add_ps(mp[2], mp[5]), b0 = _mm256_add_ps(mp[3], mp[6]),
                             b1 = _mm256_add_ps(mp[4], mp[7]), b2 = _mm256_add_ps(mp[5], mp[8]);
                const __m256 v[4] = {_mm256_add_ps(_mm256_add_ps(a0, a1), bias),
                                     _mm256_add_ps(_mm256_add_ps(a1, a2), bias),
                                     _mm256_add_ps(_mm256_add_ps(b0, b1), bias),
                                     _mm256_add_ps(_mm256_add_ps(b1, b2), bias)};
                const std::size_t at = (std::size_t(oc) * a.OH + i) * a.OW + j;
                finish(v, n, a.to.from(at));
            }
    }
}

SEMIGRAD_AVX2 void unpool_row_avx2(const UnpoolRow& a) {
    const __m256 scale = _mm256_set1_ps(a.scale);
    for (int j = 0; j < a.OW; j += 8) {
        const int m = std::min(8, a.OW - j);
        const __m256i r = record_lanes(a.record, std::size_t(j), m);
        const __m256i flag = _mm256_set1_epi32(kConvBlockPasses);
        const __m256 passes = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(r, flag), flag));
        const __m256 g = _mm256_and_ps(_mm256_mul_ps(load(a.dout + j, m), scale), passes);
        const __m256i place = _mm256_and_si256(r, _mm256_set1_epi32(3));
        __m256 at[4];
        for (int k = 0; k < 4; ++k)
            at[k] = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(place, _mm256_set1_epi32(k))));
        // Interleave places 0,1 into row d0 and 2,3 into row d1 (unpack works per 128-bit half).
        const int lo = std::min(2 * m, 8), hi = std::max(2 * m - 8, 0);
        for (int row = 0; row < 2; ++row) {
            const __m256 l = _mm256_unpacklo_ps(at[2 * row], at[2 * row + 1]);
            const __m256 h = _mm256_unpackhi_ps(at[2 * row], at[2 * row + 1]);
            float* d = (row == 0 ? a.d0 : a.d1) + 2 * j;
            store(d, lo, _mm256_permute2f128_ps(l, h, 0x20));
            store(d + 8, hi, _mm256_permute2f128_ps(l, h, 0x31));
        }
    }
}

SEMIGRAD_AVX2 void conv_pool_grad_avx2(const ConvPoolGrad& a) {
    const std::size_t row = ConvPoolGrad::row(a.OW);
    const __m256 scale = _mm256_set1_ps(a.scale);
    const __m256i flag = _mm256_set1_epi32(kConvBlockPasses), one = _mm256_set1_epi32(1),
                  two = _mm256_set1_epi32(2);
    for (int oc = 0; oc < a.OC; ++oc) {
        float* s = a.sums + std::size_t(oc) * 5 * row;
        for (int j = 0; j < a.OW; j += 8) {
            const int m = std::min(8, a.OW - j);
            // Eight outputs' conv columns: 2j' (winners with pw = 0) and 2j'+1 (pw = 1).
            __m256 even[5], odd[5];
            for (int k = 0; k < 5; ++k) even[k] = odd[k] = _mm256_setzero_ps();
            for (int oh = 0; oh < a.OH; ++oh) {
                const std::size_t at = (std::size_t(oc) * a.OH + oh) * a.OW + j;
                const __m256i r = record_lanes(a.record, at, m);
                const __m256 passes = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(r, flag), flag));
                const __m256 g = _mm256_and_ps(_mm256_mul_ps(load(a.dout + at, m), scale), passes);
                const __m256 pw = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(r, one), one));
                const __m256 ph = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(r, two), two));
                // g split by the winner's column: each chain adds its own g times x, and +-0 in
                // the other's lanes, which changes no sum (a chain from +0 is never -0). Fewer
                // instructions than adding everywhere and blending the chains back, and fewer
                // live registers (AVX2 has 16: ten chains plus these spilled). The first block's
                // backward took 0.25 ms a step blended, 0.22-0.23 so (2 threads, slow state).
                const __m256 ge = _mm256_andnot_ps(pw, g), go = _mm256_and_ps(pw, g);
                // y[rr][b]: padded row 2oh + rr, column 2j' + pw + b, for rr = 0..2, b = 0..1.
                __m256 y[3][2];
                for (int rr = 0; rr < 3; ++rr) {
                    const float* er = a.even + std::ptrdiff_t(2 * oh + rr) * a.pitch + j;
                    const __m256 e = _mm256_loadu_ps(er), n = _mm256_loadu_ps(er + 1);
                    const __m256 o = _mm256_loadu_ps(a.odd + std::ptrdiff_t(2 * oh + rr) * a.pitch + j);
                    y[rr][0] = _mm256_blendv_ps(e, o, pw);
                    y[rr][1] = _mm256_blendv_ps(o, n, pw);
                }
                for (int k = 0; k < 4; ++k) {
                    const __m256 x = _mm256_blendv_ps(y[k / 2][k % 2], y[k / 2 + 1][k % 2], ph);
                    even[k] = _mm256_add_ps(even[k], _mm256_mul_ps(ge, x));
                    odd[k] = _mm256_add_ps(odd[k], _mm256_mul_ps(go, x));
                }
                even[4] = _mm256_add_ps(even[4], ge);
                odd[4] = _mm256_add_ps(odd[4], go);
            }
            // Interleave: column j' of each to conv columns 2j', 2j'+1 (unpack works per 128-bit half).
            for (int k = 0; k < 5; ++k) {
                const __m256 l = _mm256_unpacklo_ps(even[k], odd[k]), h = _mm256_unpackhi_ps(even[k], odd[k]);
                float* to = s + k * row + 2 * std::size_t(j);
                _mm256_storeu_ps(to, _mm256_permute2f128_ps(l, h, 0x20));
                _mm256_storeu_ps(to + 8, _mm256_permute2f128_ps(l, h, 0x31));
            }
        }
    }
}

}  // namespace semigrad::conv_block_kernels
SEMIGRAD_KERNELS_END
#endif
