// conv2d_scatter's portable variant, the reference the others are tested against, and the
// choice of variant (see conv2d_scatter.hpp).
#include "tensor/conv2d_scatter.hpp"

#include <algorithm>

namespace semigrad::scatter {

void scatter_portable(const InputGradient& a) {
    std::fill(a.dxt, a.dxt + std::size_t(a.H) * a.W * a.C, 0.0f);
    for (int oc = 0; oc < a.OC; ++oc)
        for (int y = 0; y < a.OH; ++y) {
            const float* row = a.dout + oc * a.plane + std::size_t(y) * a.pitch;
            for (int x = 0; x < a.OW; ++x) {
                const float g = row[x];
                if (g == 0.0f) continue;
                for (int t = 0; t < 4; ++t) {  // tap (a, b) = (t / 2, t % 2)
                    const int h = y + t / 2 - a.pt, w = x + t % 2 - a.pl;
                    if (h < 0 || h >= a.H || w < 0 || w >= a.W) continue;
                    float* d = a.dxt + std::size_t(h * a.W + w) * a.C;
                    const float* tap = a.taps + (std::size_t(oc) * 4 + t) * a.C;
                    for (int c = 0; c < a.C; ++c) d[c] += g * tap[c];
                }
            }
        }
}

void transpose_portable(const float* dxt, int HW, int C, float* dx, bool add) {
    for (int c = 0; c < C; ++c)
        for (int p = 0; p < HW; ++p) {
            const float v = dxt[std::size_t(p) * C + c];
            float& d = dx[std::size_t(c) * HW + p];
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
