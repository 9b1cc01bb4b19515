// conv2d_scatter: the input gradient of a 2x2 convolution at stride 1 as a scatter of dout's
// non-zero entries, for a dout that is mostly zeros: the gradient that a 2x2 max-pool with stride 2
// hands back to its conv has at most one non-zero entry in each pool window, a quarter at most,
// and after ReLU and dropout about a tenth in the tutorial's second block.
//
// From the forward out[oc][y][x] = Σ_{c,a,b} w[oc][c][a][b] x[c][y + a - pt][x + b - pl], each
// entry g = dout[oc][y][x] adds g * w[oc][c][a][b] to dx[c][y + a - pt][x + b - pl] for the four
// taps (a, b) that land inside the input. Those 4 * C products per non-zero entry are all the
// work: the tutorial's second conv makes about 550 such entries an image, 141k products, where the
// Winograd correlation (conv2d_winograd.hpp) makes 903k on the dense plane and the direct sum
// 1.6M.
//
// The sums go into dxt [H*W, C], channels last, so that one entry's products for one tap are one
// contiguous row of C floats, taps as [OC, 2, 2, C] the same way; dxt is then transposed into the
// NCHW dx. Each dx element is its products added in the order of their entries, oc by oc and
// then row by row, from 0: the same order in every variant, with a product and an addition per
// step (no fused multiply-add), so the portable, AVX2 and AVX-512 variants give the same bits.
// A zero entry adds nothing (a sum from +0 is never -0), so skipping the zeros changes no bit.
#pragma once

#include <cstddef>

#include "tensor/simd.hpp"

namespace semigrad::scatter {

struct InputGradient {
    const float* dout;   // OC planes of OH rows of OW floats: row y of plane oc at
    std::size_t plane;   //   dout + oc * plane + y * pitch
    int pitch;
    int OC, OH, OW;
    const float* taps;   // the weight as [OC, 2, 2, C]
    int C, H, W, pt, pl;
    float* dxt;          // [H*W, C]: written whole
};

// dxt = the products of dout's non-zero entries, as above.
using Scatter = void (*)(const InputGradient& a);
// dx [C, HW] = (or += with `add`) dxt [HW, C] transposed.
using Transpose = void (*)(const float* dxt, int HW, int C, float* dx, bool add);

struct Kernels {
    Scatter scatter;
    Transpose transpose;
};
Kernels kernels(Isa isa);

// The portable variants are the readable reference: plain loops.
void scatter_portable(const InputGradient& a);
void transpose_portable(const float* dxt, int HW, int C, float* dx, bool add);
#if SEMIGRAD_X86
void scatter_avx2(const InputGradient& a);
void transpose_avx2(const float* dxt, int HW, int C, float* dx, bool add);
void scatter_avx512(const InputGradient& a);  // (the AVX-512 path transposes with AVX2's)
#endif

}  // namespace semigrad::scatter
