// conv2d_scatter: the gradients of a 2x2 convolution at stride 1 as a scatter of dout's non-zero
// entries, for a dout that is mostly zeros: the gradient that a 2x2 max-pool with stride 2 hands
// back to its conv has at most one non-zero entry in each pool window, a quarter at most, and
// after ReLU and dropout about a tenth in the tutorial's second block.
//
// From the forward out[oc][y][x] = Σ_{c,a,b} w[oc][c][a][b] x[c][y + a - pt][x + b - pl] + b[oc],
// each entry g = dout[oc][y][x] adds, for each of the four taps (a, b) whose input place
// (y + a - pt, x + b - pl) lies inside x,
//     g * w[oc][c][a][b]  to dx[c] there,   g * x[c] there  to dw[oc][c][a][b],
// and g to db[oc]. Those 8C products per non-zero entry are all the work: the tutorial's second
// conv makes about 550 such entries an image, 282k products for both gradients, where its
// Winograd lowering (conv2d_winograd.hpp) makes 1.8M on the dense plane.
//
// Every row a product reads or writes is C contiguous floats: channels last. dx's sums go into
// dxt [H*W, C], which is then transposed into the NCHW dx; x comes transposed to xt [H*W, C]; the
// weights as taps [OC, 2, 2, C]; dw's sums as [2, 2, OC, C] (per tap, conv2d_lowering's shifted
// layout). Each sum takes its products in the order of their entries, oc by oc and then row by
// row, a product and an addition a step (no fused multiply-add), so the portable, AVX2 and
// AVX-512 variants give the same bits. A zero entry adds nothing (a sum from +0 is never -0), so
// skipping the zeros changes no bit either.
#pragma once

#include <cstddef>

#include "tensor/simd.hpp"

namespace semigrad::scatter {

struct Gradients {
    const float* dout;   // OC planes of OH rows of OW floats: row y of plane oc at
    std::size_t plane;   //   dout + oc * plane + y * pitch
    int pitch;
    int OC, OH, OW;
    int C, H, W, pt, pl;
    const float* taps;   // the weight as [OC, 2, 2, C] (for dxt)
    const float* xt;     // the input as [H*W, C] (for dw)
    float* dxt;          // [H*W, C], written whole; or null
    float* dw;           // [2, 2, OC, C], added to; or null
    float* db;           // [OC], added to; or null
};

// The sums above into whichever of dxt, dw and db is given.
using Scatter = void (*)(const Gradients& a);
// dst [S, R] = (or += with `add`) src [R, S] transposed.
using Transpose = void (*)(const float* src, int R, int S, float* dst, bool add);

struct Kernels {
    Scatter scatter;
    Transpose transpose;
};
Kernels kernels(Isa isa);

// The portable variants are the readable reference: plain loops.
void scatter_portable(const Gradients& a);
void transpose_portable(const float* src, int R, int S, float* dst, bool add);
#if SEMIGRAD_X86
void scatter_avx2(const Gradients& a);
void transpose_avx2(const float* src, int R, int S, float* dst, bool add);
void scatter_avx512(const Gradients& a);  // (the AVX-512 path transposes with AVX2's)
#endif

}  // namespace semigrad::scatter
