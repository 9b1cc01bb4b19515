// conv2d and max_pool2d as differentiable functions: thin wrappers over the kernel pairs of
// tensor/conv2d.hpp and tensor/pool2d.hpp (shape checks included), which add straight into the
// inputs' gradient buffers: they scatter (col2im, the pool's argmax), so under autograd/var.hpp's
// protocol their buffers start from zeros (grad_buffer). Nothing is computed here that the
// kernels do not own.
//
// Letters: N batch, C channels, H W input size, OC out-channels, KH KW kernel size.
#include <cstdint>
#include <utility>
#include <vector>

#include "autograd/functions.hpp"

namespace semigrad {

// x [N,C,H,W], weight [OC,C,KH,KW], bias [OC] (or an empty leaf) -> [N,OC,OH,OW].
static Var conv2d_impl(const Var& x, const Var& weight, const Var& bias, bool has_bias,
                       const Conv2dSpec& spec) {
    Tensor out = conv2d_forward(x.value(), weight.value(), has_bias ? bias.value() : Tensor(), spec);
    std::vector<Var> inputs = {x, weight};
    if (has_bias) inputs.push_back(bias);
    // The backward needs x and weight as they were, which the captured inputs hold.
    return record(std::move(out), inputs, "conv2d", [x, weight, bias, spec](const Tensor& dout) {
        conv2d_backward(dout, x.value(), weight.value(), spec,
                        x.requires_grad() ? &x.node()->grad_buffer() : nullptr,
                        weight.requires_grad() ? &weight.node()->grad_buffer() : nullptr,
                        bias.requires_grad() ? &bias.node()->grad_buffer() : nullptr);
    });
}

Var conv2d(const Var& x, const Var& weight, const Var& bias, const Conv2dSpec& spec) {
    return conv2d_impl(x, weight, bias, true, spec);
}

// Without a bias, `bias` is an empty leaf that never requires a gradient.
Var conv2d(const Var& x, const Var& weight, const Conv2dSpec& spec) {
    return conv2d_impl(x, weight, Var(), false, spec);
}

// x [N,C,H,W] -> [N,C,OH,OW]. The forward remembers each window's argmax, so the backward is a
// scatter and does not look at x again (only its shape).
Var max_pool2d(const Var& x, const Pool2dSpec& spec) {
    std::vector<std::int64_t> argmax;
    Tensor out = max_pool2d_forward(x.value(), spec, argmax);
    return record(std::move(out), {x}, "max_pool2d",
                  [x, argmax = std::move(argmax)](const Tensor& dout) {
        max_pool2d_backward(dout, argmax, x.node()->grad_buffer());
    });
}

}  // namespace semigrad
