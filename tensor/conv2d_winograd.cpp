// conv2d_winograd: F(2x2, 2x2)'s weight transforms, and the portable variant of the
// zero-extended copy and the data transforms (their loop bodies are in the header) with the
// choice of variant.
#include "tensor/conv2d_winograd.hpp"

#include <algorithm>

namespace semigrad::winograd {

void transform_kernel(const float* w, int OC, int C, float* v) {
    const std::size_t plane = std::size_t(OC) * C;
    // A block of kernels at a time into `block`, then each point's row out in one piece: writing
    // the 9 points kernel by kernel would keep 9 streams a power-of-two apart (for 32x64 kernels,
    // 8 KiB), all in the same few L1 sets.
    constexpr std::size_t kBlock = 64;
    float block[kPoints][kBlock];
    for (std::size_t k0 = 0; k0 < plane; k0 += kBlock) {
        const std::size_t n = std::min(kBlock, plane - k0);
        for (std::size_t l = 0; l < n; ++l) {
            const float* g = w + 4 * (k0 + l);
            const float g00 = g[0], g01 = g[1], g10 = g[2], g11 = g[3];
            // G g: rows (g_0, g_0 + g_1, g_1); then each row (h_0, h_1) times Gᵀ: (h_0, h_0 + h_1, h_1).
            const float m0 = g00 + g10, m1 = g01 + g11;
            const float out[kPoints] = {g00, g00 + g01, g01, m0, m0 + m1, m1, g10, g10 + g11, g11};
            for (int p = 0; p < kPoints; ++p) block[p][l] = out[p];
        }
        for (int p = 0; p < kPoints; ++p) std::copy(block[p], block[p] + n, v + p * plane + k0);
    }
}

void add_kernel_gradient(const float* m, std::size_t step, float* dw) {
    float mp[kPoints];
    for (int p = 0; p < kPoints; ++p) mp[p] = m[p * step];
    const float a0 = mp[0] + mp[3], a1 = mp[1] + mp[4], a2 = mp[2] + mp[5];
    const float b0 = mp[3] + mp[6], b1 = mp[4] + mp[7], b2 = mp[5] + mp[8];
    dw[0] += a0 + a1, dw[1] += a1 + a2, dw[2] += b0 + b1, dw[3] += b1 + b2;
}

void pad_portable(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
                  float* padded) {
    detail::pad_loops(src, planes, rows, cols, top, left, t, padded);
}
void input_portable(const float* padded, int planes, Tiling t, float* u, std::size_t stride) {
    detail::input_loops(padded, planes, t, u, stride);
}
void gradient_portable(const float* padded, int planes, Tiling t, float* v, std::size_t stride) {
    detail::gradient_loops(padded, planes, t, v, stride);
}
void output_portable(const float* m, std::size_t stride, int planes, Tiling t, int rows, int cols,
                     float* dst, bool add) {
    detail::output_loops(m, stride, planes, t, rows, cols, dst, add);
}

const Transforms& transforms(Isa isa) {
    static const Transforms portable{pad_portable, input_portable, gradient_portable,
                                     output_portable};
#if SEMIGRAD_X86
    static const Transforms avx2{pad_avx2, input_avx2, gradient_avx2, output_avx2};
    static const Transforms avx512{pad_avx512, input_avx512, gradient_avx512, output_avx512};
    if (isa == Isa::avx512) return avx512;
    if (isa == Isa::avx2) return avx2;
#endif
    (void)isa;
    return portable;
}

}  // namespace semigrad::winograd
