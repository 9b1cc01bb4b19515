#include "tensor/random.hpp"

#include <cmath>

#include "tensor/error.hpp"

namespace semigrad {

Rng::Rng(std::uint64_t seed, std::uint64_t stream) {
    // pcg32_srandom_r from the reference implementation.
    state_ = 0;
    inc_ = (stream << 1u) | 1u;
    next_u32();
    state_ += seed;
    next_u32();
}

std::uint32_t Rng::next_u32() {
    const std::uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const auto xorshifted = static_cast<std::uint32_t>(((old >> 18u) ^ old) >> 27u);
    const auto rot = static_cast<std::uint32_t>(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

float Rng::uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }

float Rng::uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

float Rng::normal() {
    // Box-Muller: u1 in (0, 1] so that log(u1) is finite.
    const double u1 = (static_cast<double>(next_u32()) + 1.0) / 4294967296.0;
    const double u2 = static_cast<double>(next_u32()) / 4294967296.0;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

bool Rng::bernoulli(float p) { return uniform() < p; }

std::uint32_t Rng::below(std::uint32_t n) {
    if (n == 0) throw ValueError("Rng::below: n must be positive");
    std::uint64_t m = static_cast<std::uint64_t>(next_u32()) * n;
    auto low = static_cast<std::uint32_t>(m);
    if (low < n) {
        const std::uint32_t threshold = (-n) % n;
        while (low < threshold) {
            m = static_cast<std::uint64_t>(next_u32()) * n;
            low = static_cast<std::uint32_t>(m);
        }
    }
    return static_cast<std::uint32_t>(m >> 32);
}

std::vector<std::size_t> Rng::permutation(std::size_t n) {
    std::vector<std::size_t> p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = i;
    shuffle(p);
    return p;
}

Tensor random_uniform(const Shape& shape, Rng& rng, float lo, float hi) {
    Tensor t(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = rng.uniform(lo, hi);
    return t;
}

}  // namespace semigrad
