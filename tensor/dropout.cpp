// Inverted dropout mask (Srivastava et al. 2014, JMLR 15, "Dropout: A Simple Way to Prevent
// Neural Networks from Overfitting"). The 1/(1-rate) scale is applied at training time so that
// evaluation is the identity, as in Keras' Dropout layer. This file only draws the mask; applying
// it (x * mask, and dout * mask in backward) is the autograd function's job.
#include "tensor/dropout.hpp"

#include <cmath>
#include <string>

#include "tensor/error.hpp"

namespace semigrad {

Tensor dropout_mask(const Shape& shape, float rate, Rng& rng) {
    // Written as !(rate >= 0 && rate < 1) so that NaN is rejected too.
    if (!(rate >= 0.0f && rate < 1.0f))
        throw ValueError("dropout_mask: rate must be in [0, 1), got " + std::to_string(rate));
    Tensor mask(shape);
    const float keep_scale = 1.0f / (1.0f - rate);
    float* m = mask.data();
    // One uniform draw per element, in row-major order, on the calling thread: the mask depends
    // on the Rng state alone, never on the thread count. uniform() < rate has probability
    // exactly `rate` up to the 2^-24 grid of Rng::uniform.
    for (std::size_t i = 0; i < mask.size(); ++i) m[i] = rng.uniform() < rate ? 0.0f : keep_scale;
    return mask;
}

}  // namespace semigrad
