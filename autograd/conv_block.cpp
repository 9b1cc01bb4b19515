// Conv2D(relu) -> MaxPool2D -> Dropout as one differentiable function: a thin wrapper over the
// kernel pair of tensor/conv_block.hpp. What the node keeps for its backward is the forward's
// record (one byte per output) and its inputs; the conv output, its ReLU and the pool's input
// never exist as tensors.
#include <cstdint>
#include <utility>
#include <vector>

#include "autograd/functions.hpp"

namespace semigrad {

Var conv2d_relu_pool_dropout(const Var& x, const Var& weight, const Var& bias,
                             const ConvBlockSpec& spec) {
    const bool has_bias = !bias.value().empty();
    const bool needs_grad = grad_enabled() && (x.requires_grad() || weight.requires_grad() ||
                                               (has_bias && bias.requires_grad()));
    ConvBlockRecord bytes;  // the forward's record
    Tensor out = conv_block_forward(x.value(), weight.value(), bias.value(), spec,
                                    needs_grad ? &bytes : nullptr, active_isa());
    std::vector<Var> inputs = {x, weight};
    if (has_bias) inputs.push_back(bias);
    return record(std::move(out), inputs, "conv_block",
                       [x, weight, bias, has_bias, spec, bytes = std::move(bytes)](const Tensor& dout) {
        // x's share is written when it is the first (no zero fill: every entry is written).
        bool first = false;
        Tensor* dx = x.requires_grad() ? &x.node()->grad_write_or_add(first) : nullptr;
        conv_block_backward(dout, x.value(), weight.value(), spec, bytes, dx,
                            weight.requires_grad() ? &weight.node()->grad_buffer() : nullptr,
                            has_bias && bias.requires_grad() ? &bias.node()->grad_buffer() : nullptr,
                            active_isa(), first);
    });
}

}  // namespace semigrad
