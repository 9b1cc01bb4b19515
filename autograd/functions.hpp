// The differentiable functions: each computes its forward with tensor kernels and records a
// backward closure beside it (autograd/var.hpp). Together they are everything the tutorial
// model needs. Implementations, grouped by kind:
//   autograd/arithmetic.cpp  add, sub, mul, scale, sum, mean, reshape, flatten
//   autograd/linear.cpp      matmul, dense, bias_add
//   autograd/activation.cpp  relu, l2_normalize
//   autograd/conv.cpp        conv2d, max_pool2d
//   autograd/dropout.cpp     dropout
//   autograd/conv_block.cpp  conv2d_relu_pool_dropout (the three layers as one node)
#pragma once

#include "autograd/var.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/conv_block.hpp"
#include "tensor/pool2d.hpp"
#include "tensor/random.hpp"

namespace semigrad {

// Elementwise, same shapes (no broadcasting; bias_add covers the one broadcast we need).
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var scale(const Var& a, float factor);
// Sum / mean of all elements -> shape [1].
Var sum(const Var& a);
Var mean(const Var& a);
// Same values, new shape of the same size.
Var reshape(const Var& a, const Shape& shape);
// [N, ...] -> [N, prod(...)], in row-major (NCHW) order.
Var flatten(const Var& a);

// a [M,K] @ b [K,N] -> [M,N].
Var matmul(const Var& a, const Var& b);
// Keras' Dense: x [N,in] @ kernel [in,units] (+ bias [units]) -> [N,units].
Var dense(const Var& x, const Var& kernel, const Var& bias);
Var dense(const Var& x, const Var& kernel);
// x [N,C] or [N,C,H,W] plus bias [C] broadcast over every other axis.
Var bias_add(const Var& x, const Var& bias);

Var relu(const Var& x);
// Rows of x [N,D] scaled to unit length as tf.math.l2_normalize(x, axis=1) does:
// y = x * rsqrt(max(sum(x^2), epsilon)).
Var l2_normalize(const Var& x, float epsilon = 1e-12f);

// x [N,C,H,W], weight [OC,C,KH,KW], bias [OC] -> [N,OC,OH,OW] (tensor/conv2d.hpp).
Var conv2d(const Var& x, const Var& weight, const Var& bias, const Conv2dSpec& spec);
Var conv2d(const Var& x, const Var& weight, const Conv2dSpec& spec);
Var max_pool2d(const Var& x, const Pool2dSpec& spec);

// Inverted dropout: in training, x * mask with a fresh mask from `rng`; in evaluation (or with
// rate 0) x itself. x [N,...] is the slice of a global batch starting at sample `sample_offset`
// (tensor/dropout.hpp: the mask is keyed by global sample index).
Var dropout(const Var& x, float rate, bool training, Rng& rng, std::size_t sample_offset = 0);
// x * mask with a given mask (gradient checks use a fixed mask).
Var dropout_with_mask(const Var& x, const Tensor& mask);

// Conv2D(relu) -> MaxPool2D -> Dropout as one node (tensor/conv_block.hpp): x [N,C,H,W], weight
// [OC,C,KH,KW], bias [OC] or an empty Var() -> [N,OC,OH,OW]. The node keeps one byte per output
// (and x, weight), not the three intermediate activations.
Var conv2d_relu_pool_dropout(const Var& x, const Var& weight, const Var& bias,
                             const ConvBlockSpec& spec);

}  // namespace semigrad
