// Glorot-uniform initialisation and Keras' fans (see init.hpp).
#include "nn/init.hpp"

#include <cmath>

#include "tensor/error.hpp"

namespace semigrad::nn {

Fans kernel_fans(const Shape& s) {
    if (s.size() == 2) return {s[0], s[1]};
    if (s.size() == 4) {
        const std::size_t receptive = s[2] * s[3];
        return {s[1] * receptive, s[0] * receptive};
    }
    throw ShapeError("kernel_fans: kernel " + to_string(s) +
                     " is neither a Dense kernel [in,units] nor a conv kernel [OC,C,KH,KW]");
}

float glorot_limit(Fans fans) {
    if (fans.fan_in + fans.fan_out == 0) throw ValueError("glorot_uniform: fan_in + fan_out is 0");
    return std::sqrt(6.0f / static_cast<float>(fans.fan_in + fans.fan_out));
}

void glorot_uniform(Tensor& t, Fans fans, Rng& rng) {
    const float limit = glorot_limit(fans);
    t = random_uniform(t.shape(), rng, -limit, limit);
}

}  // namespace semigrad::nn
