// Shared by the autograd tests: seeded random inputs and a gradcheck assertion.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "autograd/gradcheck.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::testing {

// Uniform on [lo, hi).
inline Tensor random_tensor(const Shape& shape, Rng& rng, float lo = -1.0f, float hi = 1.0f) {
    Tensor t(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = rng.uniform(lo, hi);
    return t;
}

// Uniform magnitude in [margin, 1) with a random sign: finite differences with a step of
// ~1e-3 never cross 0, where relu has its kink.
inline Tensor away_from_zero(const Shape& shape, Rng& rng, float margin = 0.1f) {
    Tensor t(shape);
    for (std::size_t i = 0; i < t.size(); ++i)
        t[i] = (rng.bernoulli(0.5f) ? 1.0f : -1.0f) * rng.uniform(margin, 1.0f);
    return t;
}

inline void expect_gradcheck(const DifferentiableFn& f, const std::vector<Tensor>& inputs,
                             const GradcheckOptions& options = {}) {
    const GradcheckResult r = gradcheck(f, inputs, options);
    EXPECT_TRUE(r.ok) << r.message;
}

inline void expect_values(const Tensor& t, const std::vector<float>& expected, float tol = 1e-6f) {
    ASSERT_EQ(t.size(), expected.size()) << "shape " << to_string(t.shape());
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(t[i], expected[i], tol) << "at " << i;
}

}  // namespace semigrad::testing
