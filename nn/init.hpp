// Weight initialisers with Keras' defaults: Glorot-uniform kernels and zero biases.
//
// Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
// networks", eq. 16: W ~ U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), which gives
// Var(W) = limit^2 / 3 = 2 / (fan_in + fan_out).
//
// Fans follow Keras' `compute_fans`: a Dense kernel [in, units] has fan_in = in, fan_out = units;
// a conv kernel multiplies the channel counts by the receptive field, fan_in = KH*KW*C and
// fan_out = KH*KW*OC. Our conv kernels are [OC, C, KH, KW] (Keras stores [KH, KW, C, OC]), so
// the fans are the same numbers; the values are drawn in our row-major order, so the same seed
// does not reproduce Keras' exact weights (nothing could: TF's generator is not PCG32).
#pragma once

#include <cstddef>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::nn {

struct Fans {
    std::size_t fan_in, fan_out;
};

// Fans of a Dense kernel [in, units] or a conv kernel [OC, C, KH, KW]; ShapeError otherwise.
Fans kernel_fans(const Shape& kernel_shape);

// Fills `t` with U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), drawn in order from rng.
void glorot_uniform(Tensor& t, Fans fans, Rng& rng);
float glorot_limit(Fans fans);

}  // namespace semigrad::nn
