// conv2d_winograd: F(2x2, 2x2)'s weight transforms, the zero-extended copy, and the portable
// variant of the data transforms (their loop bodies are in the header) with the choice of
// variant.
#include "tensor/conv2d_winograd.hpp"

#include <algorithm>

namespace semigrad::winograd {

void pad_planes(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
                float* padded) {
    const int P = pitch(t), nrows = 2 * t.TH + 1;
    // One zero fill for all planes, then each row that lands inside, 8 floats at a time (the
    // last 8 overlapping the ones before: rows here are 14 to 32 floats, too short for memcpy's
    // call to pay).
    std::fill(padded, padded + planes * padded_plane(t), 0.0f);
    const int x0 = std::max(0, -left), x1 = std::min(cols, P - left), n = x1 - x0;
    const int y0 = std::max(0, top), y1 = std::min(nrows, rows + top);
    if (n <= 0) return;
    for (int c = 0; c < planes; ++c)
        for (int y = y0; y < y1; ++y) {
            const float* s = src + (std::size_t(c) * rows + (y - top)) * cols + x0;
            float* d = padded + c * padded_plane(t) + std::size_t(y) * P + x0 + left;
            if (n < 8) {
                for (int x = 0; x < n; ++x) d[x] = s[x];
                continue;
            }
            for (int x = 0; x + 8 <= n; x += 8) std::memcpy(d + x, s + x, 8 * sizeof(float));
            std::memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
        }
}

void transform_kernel(const float* w, int OC, int C, float* v) {
    const std::size_t plane = std::size_t(OC) * C;
    for (std::size_t k = 0; k < plane; ++k) {
        const float g00 = w[4 * k], g01 = w[4 * k + 1], g10 = w[4 * k + 2], g11 = w[4 * k + 3];
        // G g: rows (g_0, g_0 + g_1, g_1); then each row (h_0, h_1) times Gᵀ: (h_0, h_0 + h_1, h_1).
        const float m0 = g00 + g10, m1 = g01 + g11;
        const float out[kPoints] = {g00, g00 + g01, g01, m0, m0 + m1, m1, g10, g10 + g11, g11};
        for (int p = 0; p < kPoints; ++p) v[p * plane + k] = out[p];
    }
}

void add_kernel_gradient(const float* m, std::size_t step, float* dw) {
    float mp[kPoints];
    for (int p = 0; p < kPoints; ++p) mp[p] = m[p * step];
    const float a0 = mp[0] + mp[3], a1 = mp[1] + mp[4], a2 = mp[2] + mp[5];
    const float b0 = mp[3] + mp[6], b1 = mp[4] + mp[7], b2 = mp[5] + mp[8];
    dw[0] += a0 + a1, dw[1] += a1 + a2, dw[2] += b0 + b1, dw[3] += b1 + b2;
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
    static const Transforms portable{input_portable, gradient_portable, output_portable};
#if SEMIGRAD_X86
    static const Transforms avx2{input_avx2, gradient_avx2, output_avx2};
    static const Transforms avx512{input_avx512, gradient_avx512, output_avx512};
    if (isa == Isa::avx512) return avx512;
    if (isa == Isa::avx2) return avx2;
#endif
    (void)isa;
    return portable;
}

}  // namespace semigrad::winograd
