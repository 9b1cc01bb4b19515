// Inverted dropout mask (Srivastava et al. 2014, JMLR 15, "Dropout: A Simple Way to Prevent
// Neural Networks from Overfitting"). The 1/(1-rate) scale is applied at training time so that
// evaluation is the identity, as in Keras' Dropout layer. This file only draws the mask; applying
// it (x * mask, and dout * mask in backward) is the autograd function's job.
#include "tensor/dropout.hpp"

#include <cmath>
#include <cstdint>
#include <string>

#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad {

Tensor dropout_mask(const Shape& shape, float rate, Rng& rng) {
    // Written as !(rate >= 0 && rate < 1) so that NaN is rejected too.
    if (!(rate >= 0.0f && rate < 1.0f))
        throw ValueError("dropout_mask: rate must be in [0, 1), got " + std::to_string(rate));
    Tensor mask = Tensor::uninitialised(shape);  // every entry written below
    const float keep_scale = 1.0f / (1.0f - rate);
    float* m = mask.data();
    const std::size_t n = mask.size();
    // Counter-based: one 64-bit key from `rng`, then element i's uniform is SplitMix64's output
    // for state key + (i+1)·γ (Steele, Lea & Flood 2014, "Fast Splittable Pseudorandom Number
    // Generators"). Every element is a pure function of (key, i), so the loop runs in parallel
    // and the mask is the same for any thread count; drawing 1.6M uniforms one after another
    // from one generator was a serial tenth of a training step. The top 24 bits give the same
    // k / 2^24 grid as Rng::uniform, so P(drop) = rate up to 2^-24.
    const std::uint64_t key = (std::uint64_t(rng.next_u32()) << 32) | rng.next_u32();
    SEMIGRAD_PARALLEL_FOR(n)
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t z = key + (i + 1) * 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        const float u = float(z >> 40) * (1.0f / 16777216.0f);
        m[i] = u < rate ? 0.0f : keep_scale;
    }
    return mask;
}

}  // namespace semigrad
