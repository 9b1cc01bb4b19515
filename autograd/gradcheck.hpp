// gradcheck: compares the analytic gradient of a differentiable function (what backward()
// computes) with central finite differences, for every element of every input.
//
// The function may return any shape. It is reduced to the scalar L = Σ P ⊙ f(inputs) with a
// fixed random projection P, so that every output element takes part: with P = ones, a
// backward that mixed up two output elements would still pass. The analytic side is one
// backward(f, P); the numeric side is
//   ∂L/∂x_i ≈ (L(x_i + h) - L(x_i - h)) / 2h,   h = eps · max(|x_i|, 1),
// evaluated with recording off. Everything stays float32 (the runtime's precision) except the
// reduction, which sums in double so that it adds no error of its own.
//
// An element passes when |analytic - numeric| ≤ atol + rtol · max(|analytic|, |numeric|).
// Finite differences are wrong at kinks (relu at 0, max-pool ties, the clamp of l2_normalize),
// so callers choose inputs away from them. The function must be deterministic: it is called
// 2·(number of input elements) + 1 times.
//
// This is not a test framework: it returns a result with a printable message, and the caller
// asserts (EXPECT_TRUE(r.ok) << r.message).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.hpp"

namespace semigrad {

using DifferentiableFn = std::function<Var(const std::vector<Var>&)>;

struct GradcheckOptions {
    float eps = 1e-3f;    // step relative to the value (absolute below |x| = 1)
    float atol = 1e-3f;   // absolute tolerance
    float rtol = 1e-2f;   // relative tolerance
    std::uint64_t seed = 20240601;  // of the projection P
    std::size_t print = 5;          // values printed per input in the message
};

struct GradcheckResult {
    bool ok = true;
    float max_abs_error = 0.0f;  // max |analytic - numeric| over all inputs
    // max |analytic - numeric| / max(|analytic|, |numeric|), over elements whose gradient is
    // larger than atol (smaller ones are judged by atol alone).
    float max_rel_error = 0.0f;
    // The element closest to failing (largest error / tolerance): input index, flat index.
    std::size_t worst_input = 0;
    std::size_t worst_index = 0;
    // Per input: the gradient from backward() and the finite-difference estimate.
    std::vector<Tensor> analytic;
    std::vector<Tensor> numeric;
    // "gradcheck OK/FAILED ..." with, per input, the first values side by side and the worst one
    // (as llm.c's check_tensor).
    std::string message;
};

// Checks f's gradient with respect to every tensor in `inputs` (each becomes a leaf that
// requires a gradient). Throws what f throws.
GradcheckResult gradcheck(const DifferentiableFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace semigrad
