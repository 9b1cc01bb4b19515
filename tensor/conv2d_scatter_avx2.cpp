// conv2d_scatter's AVX2 variant (see conv2d_scatter.hpp): dout's rows tested for non-zero
// entries eight at a time, each entry's products eight channels at a time; transposes in 8x8
// blocks in registers. The same products and additions as the portable loops.
#include "tensor/conv2d_scatter.hpp"

#if SEMIGRAD_X86
#include <algorithm>

#include <immintrin.h>

SEMIGRAD_KERNELS_BEGIN
namespace semigrad::scatter {

namespace {

// Lanes i < count set (a mask for maskload).
SEMIGRAD_AVX2 inline __m256i first(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// d[0..C) += g * v[0..C)
SEMIGRAD_AVX2 inline void add_products(float* d, float g, const float* v, int C) {
    const __m256 gv = _mm256_set1_ps(g);
    int c = 0;
    for (; c + 8 <= C; c += 8)
        _mm256_storeu_ps(d + c, _mm256_add_ps(_mm256_loadu_ps(d + c),
                                              _mm256_mul_ps(gv, _mm256_loadu_ps(v + c))));
    for (; c < C; ++c) d[c] += g * v[c];
}

// The 8x8 block r[i][j] (row i at r[i]) transposed in registers (the usual unpack, shuffle and
// 128-bit permute stages).
SEMIGRAD_AVX2 inline void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int k = 0; k < 4; ++k) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int h = 0; h < 2; ++h) {
        const __m256* u = t + 4 * h;
        s[4 * h] = _mm256_shuffle_ps(u[0], u[2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(u[0], u[2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(u[1], u[3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(u[1], u[3], 0xEE);
    }
    for (int k = 0; k < 4; ++k) {
        r[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
    }
}

}  // namespace

SEMIGRAD_AVX2 void scatter_avx2(const Gradients& a) {
    const std::size_t C = std::size_t(a.C);
    if (a.dxt) std::fill(a.dxt, a.dxt + std::size_t(a.H) * a.W * C, 0.0f);
    for (int oc = 0; oc < a.OC; ++oc)
        for (int y = 0; y < a.OH; ++y) {
            const float* row = a.dout + oc * a.plane + std::size_t(y) * a.pitch;
            for (int x0 = 0; x0 < a.OW; x0 += 8) {
                const __m256 v = _mm256_maskload_ps(row + x0, first(std::min(8, a.OW - x0)));
                // NaN is not equal to 0: it is scattered too, as the portable loop does.
                unsigned bits = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ)));
                for (; bits; bits &= bits - 1) {
                    const int x = x0 + __builtin_ctz(bits);
                    const float g = row[x];
                    for (int t = 0; t < 4; ++t) {
                        const int h = y + t / 2 - a.pt, w = x + t % 2 - a.pl;
                        if (h < 0 || h >= a.H || w < 0 || w >= a.W) continue;
                        const std::size_t at = std::size_t(h * a.W + w) * C;
                        if (a.dxt) add_products(a.dxt + at, g, a.taps + (std::size_t(oc) * 4 + t) * C, a.C);
                        if (a.dw) add_products(a.dw + (std::size_t(t) * a.OC + oc) * C, g, a.xt + at, a.C);
                    }
                    if (a.db) a.db[oc] += g;
                }
            }
        }
}

SEMIGRAD_AVX2 void transpose_avx2(const float* src, int R, int S, float* dst, bool add) {
    int r0 = 0;
    for (; r0 + 8 <= R; r0 += 8) {
        int s0 = 0;
        for (; s0 + 8 <= S; s0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + std::size_t(r0 + i) * S + s0);
            transpose8(r);  // r[k]: column s0 + k of src, rows r0..r0+7
            for (int k = 0; k < 8; ++k) {
                float* d = dst + std::size_t(s0 + k) * R + r0;
                _mm256_storeu_ps(d, add ? _mm256_add_ps(_mm256_loadu_ps(d), r[k]) : r[k]);
            }
        }
        for (; s0 < S; ++s0)
            for (int i = r0; i < r0 + 8; ++i) {
                float& d = dst[std::size_t(s0) * R + i];
                const float v = src[std::size_t(i) * S + s0];
                d = add ? d + v : v;
            }
    }
    for (int s = 0; s < S; ++s)
        for (int i = r0; i < R; ++i) {
            float& d = dst[std::size_t(s) * R + i];
            const float v = src[std::size_t(i) * S + s];
            d = add ? d + v : v;
        }
}

}  // namespace semigrad::scatter
SEMIGRAD_KERNELS_END
#endif
