// conv2d: 2-D cross-correlation (what deep-learning frameworks call convolution), forward and
// backward, lowered to GEMM (im2col, or shifted views of the padded input: conv2d_lowering.hpp),
// plus the direct loops as reference.
//
// Dimension letters: N batch, C input channels, H W input height/width, OC output channels,
// KH KW kernel height/width, OH OW output height/width.
//   x      [N, C, H, W]
//   weight [OC, C, KH, KW]   (Keras stores [KH, KW, C, OC]; we keep the GEMM-friendly order)
//   bias   [OC] or empty
//   out    [N, OC, OH, OW],  OH = (H + pad_top + pad_bottom - KH) / stride_h + 1
#pragma once

#include <vector>

#include "tensor/simd.hpp"
#include "tensor/tensor.hpp"

namespace semigrad {

enum class Padding { Valid, Same };

// Explicit zero padding on each side, in pixels.
struct Pad2d {
    int top = 0, bottom = 0, left = 0, right = 0;
};

// TensorFlow's rule for `padding`: "valid" pads nothing; "same" gives OH = ceil(H / stride) and
// pads total = max((OH - 1) * stride + K - H, 0), with total / 2 before and the rest after (so an
// even kernel pads 0 before and 1 after at stride 1).
Pad2d tf_padding(Padding padding, int H, int W, int KH, int KW, int stride_h, int stride_w);

struct Conv2dSpec {
    int stride_h = 1, stride_w = 1;
    Pad2d pad;
};

// The output shape, checking every operand; throws ShapeError naming shapes.
Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dSpec& spec);

// How one image becomes GEMMs (conv2d_lowering.hpp); `automatic` picks by geometry. Tests name
// one to check both.
enum class Conv2dLowering { automatic, im2col, im2col_loops, shifted, winograd };

// `isa`: the kernels' level (tensor/simd.hpp), as the plan takes it; tests pass one to compare
// paths.
Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Conv2dSpec& spec, Conv2dLowering lowering = Conv2dLowering::automatic,
                      Isa isa = active_isa());
// Given dout [N,OC,OH,OW], accumulates (+=) into whichever of dx, dweight, dbias is non-null.
void conv2d_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                     const Conv2dSpec& spec, Tensor* dx, Tensor* dweight, Tensor* dbias,
                     Conv2dLowering lowering = Conv2dLowering::automatic, Isa isa = active_isa());

// The lowering's pieces, used by conv2d_lowering.cpp, which the fused block
// (tensor/conv_block.cpp) shares.
// Every size of one convolution, as ints for BLAS and index arithmetic; K = C*KH*KW is the
// GEMM inner dimension, P = OH*OW the pixels of one output plane.
struct Conv2dGeometry {
    int N, C, H, W, OC, KH, KW, OH, OW, sh, sw, pt, pl;
    int K() const { return C * KH * KW; }
    int P() const { return OH * OW; }
};
// Checks the operands (conv2d_output_shape) and returns their sizes.
Conv2dGeometry conv2d_geometry(const Tensor& x, const Tensor& weight, const Conv2dSpec& spec);
// A backward's gradient buffers, each checked when non-null: dx shaped as x, dweight as weight,
// dbias [OC]. Throws ShapeError naming `op`.
void check_conv_grads(const char* op, const Tensor& x, const Tensor& weight, const Tensor* dx,
                      const Tensor* dweight, const Tensor* dbias);
// One image x [C,H,W] -> cols [K,P]: row (c*KH + kh)*KW + kw holds x shifted by (kh, kw).
void im2col(const float* x, const Conv2dGeometry& g, float* cols);
// Its adjoint: dx [C,H,W] += fold(dcols [K,P]).
void col2im_add(const float* dcols, const Conv2dGeometry& g, float* dx);
// x[0] + ... + x[n-1] in a fixed order: eight running sums (x[i] goes to sum i mod 8), added
// pairwise at the end. One running sum would be a chain of n dependent additions; this order
// is the same on every CPU, so dbias is too. The shifted and im2col lowerings' dbias (the
// Winograd lowering sums its tiles' transforms instead: Conv2dPlan::backward_image).
float sum_in_lanes(const float* x, int n);

// Direct seven-loop reference (tests and benchmarks only).
Tensor conv2d_forward_naive(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Conv2dSpec& spec);
void conv2d_backward_naive(const Tensor& dout, const Tensor& x, const Tensor& weight,
                           const Conv2dSpec& spec, Tensor* dx, Tensor* dweight, Tensor* dbias);

}  // namespace semigrad
