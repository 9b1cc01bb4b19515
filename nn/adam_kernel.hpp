// The Adam update's loop, written once and compiled per instruction set (tensor/simd.hpp):
// optimizer.cpp (portable: SSE2, 4 lanes), adam_avx2.cpp (8 lanes), adam_avx512.cpp (16). Only
// the vector width differs: each element gets the same float operations in the same order
// (-ffp-contract=off: no fused multiply-add), and the division and square root are correctly
// rounded at every width, so every variant gives adam_update_readable's bits. The width matters
// because the loop is bound by its divisions and square roots once g, m, v and theta are in
// cache: at 4 lanes it took 0.15 ms of a training step on two cores of this project's machine.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "nn/optimizer.hpp"

namespace semigrad::nn::adam_kernel {

// Updates n elements (theta, m, v from g) and returns 1 when some new theta is NaN or infinite.
using Fn = std::uint32_t (*)(float* theta, float* m, float* v, const float* g, std::size_t n,
                             const AdamScalars& s);
Fn kernel(Isa isa);

std::uint32_t portable(float* theta, float* m, float* v, const float* g, std::size_t n,
                       const AdamScalars& s);
#if SEMIGRAD_X86
std::uint32_t avx2(float* theta, float* m, float* v, const float* g, std::size_t n,
                   const AdamScalars& s);
std::uint32_t avx512(float* theta, float* m, float* v, const float* g, std::size_t n,
                     const AdamScalars& s);
#endif

// A float is NaN or infinite exactly when its 8 exponent bits are all ones. Tested on the bits,
// a loop that ORs it over elements vectorises (std::isfinite's does not).
[[gnu::always_inline]] inline std::uint32_t nonfinite_bit(float x) {
    return (std::bit_cast<std::uint32_t>(x) & 0x7f800000u) == 0x7f800000u;
}

// Each element is read once and written once: g, m, v and theta stream through the cache
// together (7 x 4 bytes an element; 11.5 MB a step for the tutorial's 410,208 weights). Whether
// the new theta is finite is ORed up while it is in a register.
[[gnu::always_inline]] inline std::uint32_t loop(float* __restrict theta, float* __restrict m,
                                                 float* __restrict v, const float* __restrict g,
                                                 std::size_t n, const AdamScalars& s) {
    const float one_minus_beta_1 = 1.0f - s.beta_1, one_minus_beta_2 = 1.0f - s.beta_2;
    const float alpha = s.alpha, epsilon = s.epsilon;
    std::uint32_t nonfinite = 0;
    for (std::size_t j = 0; j < n; ++j) {
        const float gj = g[j];
        const float mj = m[j] + (gj - m[j]) * one_minus_beta_1;
        const float vj = v[j] + (gj * gj - v[j]) * one_minus_beta_2;
        m[j] = mj;
        v[j] = vj;
        const float theta_j = theta[j] - (mj * alpha) / (std::sqrt(vj) + epsilon);
        theta[j] = theta_j;
        nonfinite |= nonfinite_bit(theta_j);
    }
    return nonfinite;
}

}  // namespace semigrad::nn::adam_kernel
