// conv2d_scatter's AVX-512 variant (see conv2d_scatter.hpp): dout's rows tested for non-zero
// entries sixteen at a time, each entry's products sixteen channels at a time, the last ones
// under a mask. The same products and additions as the portable loops.
#include "tensor/conv2d_scatter.hpp"

#if SEMIGRAD_X86
#include <algorithm>

#include <immintrin.h>

SEMIGRAD_KERNELS_BEGIN
namespace semigrad::scatter {

namespace {

SEMIGRAD_AVX512 inline __mmask16 first(int count) {
    return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
}

// d[0..C) += g * v[0..C)
SEMIGRAD_AVX512 inline void add_products(float* d, float g, const float* v, int C) {
    const __m512 gv = _mm512_set1_ps(g);
    for (int c = 0; c < C; c += 16) {
        const __mmask16 m = first(C - c);
        _mm512_mask_storeu_ps(d + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + c),
                                                      _mm512_mul_ps(gv, _mm512_maskz_loadu_ps(m, v + c))));
    }
}

}  // namespace

SEMIGRAD_AVX512 void scatter_avx512(const Gradients& a) {
    const std::size_t C = std::size_t(a.C);
    if (a.dxt) std::fill(a.dxt, a.dxt + std::size_t(a.H) * a.W * C, 0.0f);
    for (int oc = 0; oc < a.OC; ++oc)
        for (int y = 0; y < a.OH; ++y) {
            const float* row = a.dout + oc * a.plane + std::size_t(y) * a.pitch;
            for (int x0 = 0; x0 < a.OW; x0 += 16) {
                const __m512 v = _mm512_maskz_loadu_ps(first(a.OW - x0), row + x0);
                // NaN is not equal to 0: it is scattered too, as the portable loop does.
                unsigned bits = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
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

}  // namespace semigrad::scatter
SEMIGRAD_KERNELS_END
#endif
