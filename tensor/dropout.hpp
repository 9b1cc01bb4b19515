// Inverted dropout (Srivastava et al. 2014, with the 1/(1-rate) scaling moved to training time
// so that evaluation is the identity): a mask whose entries are 0 with probability `rate` and
// 1/(1-rate) otherwise. Applying it is an elementwise product, and so is its backward.
#pragma once

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad {

// rate in [0, 1); throws ValueError otherwise.
Tensor dropout_mask(const Shape& shape, float rate, Rng& rng);

}  // namespace semigrad
