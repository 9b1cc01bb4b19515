// Rng: the one random generator of semigrad, seeded explicitly and passed explicitly.
//
// PCG32 (O'Neill 2014, "PCG: A Family of Simple Fast Space-Efficient Statistically Good
// Algorithms for Random Number Generation", pcg-random.org): 64-bit LCG state, 32-bit output
// through a xorshift and a random rotation. Every distribution below is written out here rather
// than taken from <random>, because std::uniform_real_distribution and friends produce different
// streams on different standard libraries; ours are the same on every platform.
//
// There is no global generator. Same seed -> same stream, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/tensor.hpp"

namespace semigrad {

class Rng {
  public:
    // `stream` selects one of 2^63 independent sequences for the same seed, so that one user
    // seed can feed several consumers without sharing a sequence (the batcher draws each epoch
    // from its own stream; a Dropout layer seeds its generator from the model's and uses the
    // stream "drop").
    explicit Rng(std::uint64_t seed = 42, std::uint64_t stream = 54);

    std::uint32_t next_u32();
    // Uniform on [0, 1) with 24 random bits (every float32 in the grid k / 2^24).
    float uniform();
    // Uniform on [lo, hi).
    float uniform(float lo, float hi);
    // Standard normal by Box-Muller (one draw per call: no cached second value, so the state is
    // just the two words below).
    float normal();
    // true with probability p.
    bool bernoulli(float p);
    // Uniform integer on [0, n), unbiased (Lemire 2019, "Fast Random Integer Generation in an
    // Interval"). n must be > 0.
    std::uint32_t below(std::uint32_t n);
    // A uniformly random permutation of 0..n-1 (Fisher-Yates).
    std::vector<std::size_t> permutation(std::size_t n);
    template <class T>
    void shuffle(std::vector<T>& v) {
        for (std::size_t i = v.size(); i > 1; --i) {
            const std::size_t j = below(static_cast<std::uint32_t>(i));
            std::swap(v[i - 1], v[j]);
        }
    }

    // The full state, for checkpoints: restoring it continues the exact same stream.
    struct State {
        std::uint64_t state;
        std::uint64_t inc;
    };
    State state() const { return {state_, inc_}; }
    void set_state(State s) { state_ = s.state, inc_ = s.inc; }

  private:
    std::uint64_t state_ = 0;
    std::uint64_t inc_ = 0;
};

// A tensor of `shape` whose elements are rng.uniform(lo, hi), drawn in row-major order
// (tf.random.uniform; Glorot initialisation, tests and benchmarks use it).
Tensor random_uniform(const Shape& shape, Rng& rng, float lo = -1.0f, float hi = 1.0f);

}  // namespace semigrad
