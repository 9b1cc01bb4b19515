// Inverted dropout mask (Srivastava et al. 2014, JMLR 15, "Dropout: A Simple Way to Prevent
// Neural Networks from Overfitting"). The 1/(1-rate) scale is applied at training time so that
// evaluation is the identity, as in Keras' Dropout layer. This file only draws the mask; applying
// it (x * mask, and dout * mask in backward) is the autograd function's job.
#include "tensor/dropout.hpp"

#include <cmath>
#include <string>

#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad {

std::uint64_t draw_dropout_key(Rng& rng) {
    const std::uint64_t hi = rng.next_u32();
    return (hi << 32) | rng.next_u32();
}

float dropout_scale(float rate) {
    // Written as !(rate >= 0 && rate < 1) so that NaN is rejected too.
    if (!(rate >= 0.0f && rate < 1.0f))
        throw ValueError("dropout_mask: rate must be in [0, 1), got " + std::to_string(rate));
    return 1.0f / (1.0f - rate);
}

std::uint32_t dropout_threshold(float rate) {
    dropout_scale(rate);  // throws unless rate is in [0, 1)
    return std::uint32_t(std::ceil(double(rate) * 16777216.0));  // exact: rate has 24 bits
}

Tensor dropout_mask(const Shape& shape, float rate, std::uint64_t key, std::size_t sample_offset) {
    const float keep_scale = dropout_scale(rate);
    const std::uint32_t threshold = dropout_threshold(rate);
    Tensor mask = Tensor::uninitialised(shape);  // every entry written below
    float* m = mask.data();
    const std::size_t n = mask.size();
    // Every element is a pure function of (key, global index), so the loop runs in parallel and
    // the mask is the same for any thread count; drawing 1.6M uniforms one after another from
    // one generator was a serial tenth of a training step.
    const std::size_t per_sample = shape.empty() || shape[0] == 0 ? 0 : n / shape[0];
    const std::uint64_t first = std::uint64_t(sample_offset) * per_sample;
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) m[i] = dropout_keeps(key, first + i, threshold) ? keep_scale : 0.0f;
    return mask;
}

Tensor dropout_mask(const Shape& shape, float rate, Rng& rng, std::size_t sample_offset) {
    dropout_scale(rate);  // a bad rate fails before the generator advances
    return dropout_mask(shape, rate, draw_dropout_key(rng), sample_offset);
}

}  // namespace semigrad
