// conv_block: one block of a small convolutional network — Conv2D with ReLU, then MaxPool2D,
// then inverted Dropout — as one kernel pair, plus the unfused chain it is tested against.
//
// Run as four layers, the block makes eight full passes over the conv's output (bias, ReLU, pool,
// dropout; each forward and backward), 6.4 MB apiece for the tutorial's first block at batch 32.
// Fused, each image's conv output lives only in a per-thread scratch buffer that stays in the
// L2 cache: the forward writes the pooled, dropped-out output and one byte per output element,
// and the backward rebuilds the conv's gradient for one image at a time from those bytes.
//
//   x      [N, C, H, W]          weight [OC, C, KH, KW]      bias [OC] or empty
//   conv   [N, OC, CH, CW]       (never stored: conv2d.hpp's geometry, CH x CW its output)
//   out    [N, OC, OH, OW]       the max-pool of relu(conv) over the pool's windows, times the
//                                dropout mask (tensor/dropout.hpp's keyed hash, same bits)
//   record [N*OC*OH*OW] bytes    per output: the winning element's place in its window
//                                (ph * pool_w + pw, bits 0-6) and whether the output's gradient
//                                reaches the conv (bit 7: kept by dropout and conv > 0).
//
// Why ReLU can be applied after the max: relu is monotone, so max(relu(v)) = relu(max(v)); and
// where the max is <= 0 the unfused chain's gradient dies in relu's backward, which bit 7 says.
// Ties go to the first element of the window in row-major order, as in pool2d.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/conv2d.hpp"
#include "tensor/memory.hpp"
#include "tensor/pool2d.hpp"
#include "tensor/simd.hpp"
#include "tensor/tensor.hpp"

namespace semigrad {

struct ConvBlockSpec {
    Conv2dSpec conv;
    Pool2dSpec pool;
    float rate = 0.0f;               // dropout rate; 0 = no dropout (evaluation)
    std::uint64_t dropout_key = 0;   // this step's key (draw_dropout_key), used when rate > 0
    std::size_t sample_offset = 0;   // global index of the batch's first sample
};

// Bit 7 of a record byte: the output's gradient flows back to the conv.
inline constexpr std::uint8_t kConvBlockPasses = 0x80;
// The largest pool window a record byte can name.
inline constexpr int kConvBlockMaxWindow = 128;

// The output shape [N, OC, OH, OW], checking every operand, the rate, and that the pool window
// has at most kConvBlockMaxWindow elements; throws ShapeError / ValueError naming them.
Shape conv_block_output_shape(const Shape& x, const Shape& weight, const Tensor& bias,
                              const ConvBlockSpec& spec);

// What the forward remembers for the backward: one byte per output (the winner's place in its
// window, and kConvBlockPasses), written whole by the forward, so not zeroed first.
using ConvBlockRecord = std::vector<std::uint8_t, UninitialisedAllocator<std::uint8_t>>;

// The fast forward. `record` may be null (evaluation: nothing to remember for a backward).
// `isa`: the path of the 2x2 pool's row kernels (tensor/simd.hpp; callers pass active_isa()).
Tensor conv_block_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const ConvBlockSpec& spec, ConvBlockRecord* record,
                          Isa isa = active_isa());
// Given dout [N,OC,OH,OW] and the forward's record, accumulates (+=) into whichever of dx,
// dweight, dbias is non-null; with `write_dx`, dx is written instead (its entries need not be
// initialised: the autograd protocol's first share, autograd/var.hpp). Reads only dout, record,
// x and weight.
void conv_block_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                         const ConvBlockSpec& spec, const ConvBlockRecord& record,
                         Tensor* dx, Tensor* dweight, Tensor* dbias, Isa isa = active_isa(),
                         bool write_dx = false);

// The reference: the block as its four layers, from the naive kernels (conv2d_*_naive,
// max_pool2d_forward_naive's rule, dropout_mask), every intermediate materialised.
Tensor conv_block_forward_reference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                    const ConvBlockSpec& spec);
void conv_block_backward_reference(const Tensor& dout, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const ConvBlockSpec& spec, Tensor* dx,
                                   Tensor* dweight, Tensor* dbias);

}  // namespace semigrad
