// conv2d_scatter's portable variant, the reference the others are tested against, and the
// choice of variant (see conv2d_scatter.hpp).
#include "tensor/conv2d_scatter.hpp"

#include <algorithm>

namespace semigrad::scatter {

void scatter_portable(const Gradients& a) {
    const std::size_t C = std::size_t(a.C);
    if (a.dxt) std::fill(a.dxt, a.dxt + std::size_t(a.H) * a.W * C, 0.0f);
    for (int oc = 0; oc < a.OC; ++oc)
        for (int y = 0; y < a.OH; ++y) {
            const float* row = a.dout + oc * a.plane + std::size_t(y) * a.pitch;
            for (int x = 0; x < a.OW; ++x) {
                const float g = row[x];
                if (g == 0.0f) continue;
                for (int t = 0; t < 4; ++t) {  // tap (a, b) = (t / 2, t % 2)
                    const int h = y + t / 2 - a.pt, w = x + t % 2 - a.pl;
                    if (h < 0 || h >= a.H || w < 0 || w >= a.W) continue;
                    const std::size_t at = std::size_t(h * a.W + w) * C;
                    if (a.dxt) {
                        const float* tap = a.taps + (std::size_t(oc) * 4 + t) * C;
                        for (std::size_t c = 0; c < C; ++c) a.dxt[at + c] += g * tap[c];
                    }
                    if (a.dw) {
                        float* dw = a.dw + (std::size_t(t) * a.OC + oc) * C;
                        for (std::size_t c = 0; c < C; ++c) dw[c] += g * a.xt[at + c];
                    }
                }
                if (a.db) a.db[oc] += g;
            }
        }
}

void transpose_portable(const float* src, int R, int S, float* dst, bool add) {
    for (int s = 0; s < S; ++s)
        for (int r = 0; r < R; ++r) {
            const float v = src[std::size_t(r) * S + s];
            float& d = dst[std::size_t(s) * R + r];
            d = add ? d + v : v;
        }
}

Kernels kernels(Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx512) return {scatter_avx512, transpose_avx2};
    if (isa == Isa::avx2) return {scatter_avx2, transpose_avx2};
#endif
    (void)isa;
    return {scatter_portable, transpose_portable};
}

}  // namespace semigrad::scatter
