// Tests of autograd/gradcheck.cpp: it accepts a right gradient and catches wrong ones, including
// one that only a non-uniform projection of the output can see.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.hpp"
#include "helpers.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::testing;

// y_i = x_i^3 with a backward that can be broken on purpose.
enum class Bug { None, Scaled, Swapped, NaN };
static Var cube(const Var& x, Bug bug) {
    Tensor v(x.shape());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = x.value()[i] * x.value()[i] * x.value()[i];
    return record(std::move(v), {x}, "cube", [x, bug](const Tensor& dout) {
        const std::size_t n = dout.size();
        Tensor dx(x.shape());
        for (std::size_t i = 0; i < n; ++i) {
            // Swapped: element i gets element (n-1-i)'s output gradient, the kind of indexing bug
            // that a sum of the outputs (projection of ones) cannot see.
            const float g = bug == Bug::Swapped ? dout[n - 1 - i] : dout[i];
            dx[i] = 3.0f * x.value()[i] * x.value()[i] * g;
        }
        if (bug == Bug::Scaled) dx[2] *= 1.05f;
        if (bug == Bug::NaN) dx[1] = NAN;
        x.node()->accumulate_grad(dx);
    });
}

TEST(Gradcheck, AcceptsTheRightGradient) {
    const Tensor x({2, 3}, {0.5f, -1.2f, 2.0f, 0.1f, -0.7f, 1.5f});
    const GradcheckResult r = gradcheck([](const auto& v) { return cube(v[0], Bug::None); }, {x});
    EXPECT_TRUE(r.ok) << r.message;
    EXPECT_LT(r.max_abs_error, 1e-3f);
    ASSERT_EQ(r.analytic.size(), 1u);
    ASSERT_EQ(r.numeric.size(), 1u);
    EXPECT_EQ(r.analytic[0].shape(), x.shape());
    EXPECT_NE(r.message.find("gradcheck OK"), std::string::npos);
}

TEST(Gradcheck, CatchesAWrongValueAndNamesIt) {
    const Tensor x({2, 3}, {0.5f, -1.2f, 2.0f, 0.1f, -0.7f, 1.5f});
    const GradcheckResult r = gradcheck([](const auto& v) { return cube(v[0], Bug::Scaled); }, {x});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.worst_input, 0u);
    EXPECT_EQ(r.worst_index, 2u);
    // d(x^3)/dx at 2 is 12; 5% off is 0.6 times the projection weight.
    EXPECT_GT(r.max_abs_error, 0.01f);
    EXPECT_NEAR(r.max_rel_error, 0.05f / 1.05f, 1e-3f);
    EXPECT_NE(r.message.find("FAILED"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("input 0 [2,3]"), std::string::npos) << r.message;
}

TEST(Gradcheck, CatchesSwappedOutputGradients) {
    const Tensor x({5}, {0.3f, -0.8f, 1.1f, 0.6f, -1.4f});
    const GradcheckResult r = gradcheck([](const auto& v) { return cube(v[0], Bug::Swapped); }, {x});
    EXPECT_FALSE(r.ok) << r.message;
}

TEST(Gradcheck, NaNFails) {
    const Tensor x({3}, {0.3f, -0.8f, 1.1f});
    const GradcheckResult r = gradcheck([](const auto& v) { return cube(v[0], Bug::NaN); }, {x});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.worst_index, 1u);
    EXPECT_TRUE(std::isnan(r.max_abs_error));
}

TEST(Gradcheck, EveryInputIsChecked) {
    // f(a, b) = a^3 with b unused: b's gradient is zero on both sides.
    const Tensor a({2}, {0.4f, 0.9f}), b({3}, {1, 2, 3});
    const GradcheckResult r = gradcheck([](const auto& v) { return cube(v[0], Bug::None); }, {a, b});
    EXPECT_TRUE(r.ok) << r.message;
    ASSERT_EQ(r.numeric.size(), 2u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(r.analytic[1][i], 0.0f);
        EXPECT_EQ(r.numeric[1][i], 0.0f);
    }
    // The analytic value of a is 3 a^2 times the projection, and the numeric one agrees.
    EXPECT_NEAR(r.numeric[0][1] / r.analytic[0][1], 1.0f, 1e-3f);
}

TEST(Gradcheck, RejectsBadOptions) {
    GradcheckOptions o;
    o.eps = 0.0f;
    EXPECT_THROW(gradcheck([](const auto& v) { return v[0]; }, {Tensor({1}, 1.0f)}, o),
                 ValueError);
}
