// conv2d: 2-D cross-correlation (what deep-learning frameworks call convolution), forward and
// backward, lowered to GEMM with im2col / col2im, plus the direct loops as reference.
//
// Dimension letters: N batch, C input channels, H W input height/width, OC output channels,
// KH KW kernel height/width, OH OW output height/width.
//   x      [N, C, H, W]
//   weight [OC, C, KH, KW]   (Keras stores [KH, KW, C, OC]; we keep the GEMM-friendly order)
//   bias   [OC] or empty
//   out    [N, OC, OH, OW],  OH = (H + pad_top + pad_bottom - KH) / stride_h + 1
#pragma once

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

Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Conv2dSpec& spec);
// Given dout [N,OC,OH,OW], accumulates (+=) into whichever of dx, dweight, dbias is non-null.
void conv2d_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                     const Conv2dSpec& spec, Tensor* dx, Tensor* dweight, Tensor* dbias);

// Direct seven-loop reference (tests and benchmarks only).
Tensor conv2d_forward_naive(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Conv2dSpec& spec);
void conv2d_backward_naive(const Tensor& dout, const Tensor& x, const Tensor& weight,
                           const Conv2dSpec& spec, Tensor* dx, Tensor* dweight, Tensor* dbias);

}  // namespace semigrad
