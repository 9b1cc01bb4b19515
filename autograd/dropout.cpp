// Inverted dropout as a differentiable function: y = x ⊙ mask, dx = dout ⊙ mask, where the mask
// (0 with probability `rate`, 1/(1-rate) otherwise) comes from tensor/dropout.hpp. In evaluation
// the function is the identity and returns its input itself, so it costs nothing.
#include <string>

#include "autograd/functions.hpp"
#include "tensor/dropout.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad {


static Var apply_mask(const Var& x, Tensor mask, const char* op) {
    const std::size_t n = mask.size();
    Tensor out = Tensor::uninitialised(x.shape());  // every entry written below
    const float *px = x.value().data(), *pm = mask.data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) po[i] = px[i] * pm[i];
    return record(std::move(out), {x}, op, [x, mask = std::move(mask)](const Tensor& dout) {
        const float *g = dout.data(), *pm = mask.data();
        write_or_add_grad(x, [g, pm](std::size_t i) { return g[i] * pm[i]; });
    });
}

Var dropout(const Var& x, float rate, bool training, Rng& rng, std::size_t sample_offset) {
    // Checked in evaluation too, so that a bad rate fails on the first call, not the first
    // training step. Written so that NaN is rejected.
    if (!(rate >= 0.0f && rate < 1.0f))
        throw ValueError("dropout: rate must be in [0, 1), got " + std::to_string(rate));
    if (!training || rate == 0.0f) return x;
    return apply_mask(x, dropout_mask(x.shape(), rate, rng, sample_offset), "dropout");
}

Var dropout_with_mask(const Var& x, const Tensor& mask) {
    check_same_shape("dropout_with_mask", x.value(), mask);
    return apply_mask(x, mask, "dropout");
}

}  // namespace semigrad
