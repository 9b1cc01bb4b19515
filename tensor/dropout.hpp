// Inverted dropout (Srivastava et al. 2014, with the 1/(1-rate) scaling moved to training time
// so that evaluation is the identity): a mask whose entries are 0 with probability `rate` and
// 1/(1-rate) otherwise. Applying it is an elementwise product, and so is its backward.
//
// The mask is counter-based: one 64-bit key per call (drawn from the layer's generator, so it
// changes every step and a checkpoint of the generator resumes it), and element e of sample s
// of the GLOBAL batch is kept or dropped by a hash of (key, s * per_sample + e) alone. A batch
// that is a slice of a larger one (data-parallel training: the slice starting at global sample
// `sample_offset`) therefore draws exactly the slice of the larger batch's mask, whatever the
// process or thread count; and a fused kernel (tensor/conv_block.hpp) that never materialises
// the mask decides each element the same way as this one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad {

// The per-call key: 64 bits from `rng` (advancing it by two draws).
std::uint64_t draw_dropout_key(Rng& rng);

// The drop test as integers. Elements go in pairs: element `index` (global: sample * per_sample
// + element) belongs to pair q = index / 2, whose 64-bit hash is SplitMix64's output for state
// key + (q+1)·γ (Steele, Lea & Flood 2014, "Fast Splittable Pseudorandom Number Generators").
// Each 32-bit half of that output is uniform on its own, so one output decides both elements of
// the pair: the even one by the top 24 bits of the high half, the odd one by the top 24 bits of
// the low half. That 24-bit k gives u = k / 2^24, on the same grid as Rng::uniform, and the
// element is dropped when u < rate. Since k / 2^24 is exact, u < rate exactly when
// k < ceil(rate · 2^24) = dropout_threshold(rate): one integer comparison, which the SIMD
// kernels (tensor/conv_block_*.cpp) make lane by lane. P(drop) = rate up to 2^-24. Two elements
// per output halve the multiplies, which AVX2 has no 64-bit instruction for (three 32-bit ones
// each): the fused first block's forward took 0.42 ms a step with one output per element and
// 0.36 with one per pair (2 threads, SEMIGRAD_ISA=avx2).
inline std::uint64_t dropout_pair_hash(std::uint64_t key, std::uint64_t pair) {
    std::uint64_t z = key + (pair + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
inline std::uint32_t dropout_hash(std::uint64_t key, std::uint64_t index) {
    const std::uint64_t h = dropout_pair_hash(key, index >> 1);
    return (index & 1) ? std::uint32_t(h) >> 8 : std::uint32_t(h >> 40);
}
std::uint32_t dropout_threshold(float rate);
inline bool dropout_keeps(std::uint64_t key, std::uint64_t index, std::uint32_t threshold) {
    return dropout_hash(key, index) >= threshold;
}

// The survivors' scale 1/(1-rate); throws ValueError unless rate is in [0, 1) (NaN included).
float dropout_scale(float rate);

// The mask for a batch of `shape` ([N, ...]) whose first sample is global sample
// `sample_offset`, under `key`.
Tensor dropout_mask(const Shape& shape, float rate, std::uint64_t key, std::size_t sample_offset = 0);
// The same with a fresh key from `rng`.
Tensor dropout_mask(const Shape& shape, float rate, Rng& rng, std::size_t sample_offset = 0);

}  // namespace semigrad
