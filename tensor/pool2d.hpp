// max_pool2d: 2-D max pooling over NCHW, forward (recording the argmax of every window) and
// backward (routing each output gradient to its argmax), plus a direct reference.
//   x [N, C, H, W] -> out [N, C, OH, OW], argmax [N*C*OH*OW] flat indices into x.
// Padded positions never win (they act as -inf, as in TensorFlow). Ties go to the first element
// of the window in row-major order.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/conv2d.hpp"
#include "tensor/tensor.hpp"

namespace semigrad {

struct Pool2dSpec {
    int pool_h = 2, pool_w = 2;
    int stride_h = 2, stride_w = 2;
    Pad2d pad;
};

Shape max_pool2d_output_shape(const Shape& x, const Pool2dSpec& spec);

Tensor max_pool2d_forward(const Tensor& x, const Pool2dSpec& spec, std::vector<std::int64_t>& argmax);
// dx += scatter of dout through argmax.
void max_pool2d_backward(const Tensor& dout, const std::vector<std::int64_t>& argmax, Tensor& dx);

// The references: the same results from direct loops over every window (no argmax recorded;
// the backward finds each window's first maximum again and adds dout there).
Tensor max_pool2d_forward_naive(const Tensor& x, const Pool2dSpec& spec);
Tensor max_pool2d_backward_naive(const Tensor& x, const Pool2dSpec& spec, const Tensor& dout);

}  // namespace semigrad
