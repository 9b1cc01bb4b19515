// Tests of autograd/dropout.cpp: identity in evaluation and at rate 0, inverted scaling and the
// kept fraction in training, the mask reused by the backward, and bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.hpp"
#include "helpers.hpp"
#include "tensor/dropout.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::testing;

static bool same_state(const Rng& a, const Rng& b) {
    return a.state().state == b.state().state && a.state().inc == b.state().inc;
}

TEST(Dropout, EvaluationAndRateZeroAreTheIdentity) {
    Rng rng(11);
    const Rng before = rng;
    Var x(random_tensor({4, 5}, rng), true);
    const Rng drawn = rng;
    // The same node comes back: no copy, no graph node, no random numbers drawn.
    EXPECT_EQ(dropout(x, 0.5f, false, rng).node(), x.node());
    EXPECT_EQ(dropout(x, 0.0f, true, rng).node(), x.node());
    EXPECT_TRUE(same_state(rng, drawn));
    EXPECT_FALSE(same_state(rng, before));
    backward(sum(dropout(x, 0.5f, false, rng)));
    for (std::size_t i = 0; i < x.grad().size(); ++i) EXPECT_EQ(x.grad()[i], 1.0f);
}

TEST(Dropout, TrainingKeepsOneMinusRateAndScales) {
    const float rate = 0.3f;
    Rng rng(12);
    Var x(Tensor({200, 250}, 2.0f), true);  // 50000 elements: the parallel path
    const Var y = dropout(x, rate, true, rng);
    EXPECT_EQ(y.op(), "dropout");
    std::size_t kept = 0;
    for (std::size_t i = 0; i < y.value().size(); ++i) {
        if (y.value()[i] != 0.0f) {
            ++kept;
            ASSERT_FLOAT_EQ(y.value()[i], 2.0f / (1.0f - rate)) << "at " << i;
        }
    }
    // 50000 Bernoulli(0.7) draws: the standard deviation of the fraction is 0.002.
    EXPECT_NEAR(double(kept) / double(y.value().size()), 1.0 - rate, 0.01);
    // The backward applies the same mask: dx = mask = y / x.
    backward(sum(y));
    for (std::size_t i = 0; i < y.value().size(); ++i)
        ASSERT_EQ(x.grad()[i], y.value()[i] / 2.0f) << "at " << i;
}

TEST(Dropout, SameSeedSameMaskNextCallNewMask) {
    const Var x(Tensor({10, 10}, 1.0f));
    Rng a(13), b(13);
    const Var ya = dropout(x, 0.5f, true, a), yb = dropout(x, 0.5f, true, b);
    EXPECT_EQ(max_abs_diff(ya.value(), yb.value()), 0.0f);
    EXPECT_GT(max_abs_diff(ya.value(), dropout(x, 0.5f, true, a).value()), 0.0f);
}

TEST(Dropout, GradcheckWithAFixedMask) {
    Rng rng(14);
    const Tensor mask = dropout_mask({3, 4, 2}, 0.4f, rng);
    expect_gradcheck([mask](const auto& v) { return dropout_with_mask(v[0], mask); },
                     {random_tensor({3, 4, 2}, rng)});
}

TEST(Dropout, WithMaskHandWorked) {
    Var x(Tensor({4}, {1, 2, 3, 4}), true);
    const Var y = dropout_with_mask(x, Tensor({4}, {0, 2, 2, 0}));
    expect_values(y.value(), {0, 4, 6, 0});
    backward(y, Tensor({4}, {1, 1, 1, 1}));
    expect_values(x.grad(), {0, 2, 2, 0});
}

// x reaches two masks: the first gradient is written, the second added.
TEST(Dropout, InputUsedTwiceAddsBothGradients) {
    Var x(Tensor({4}, {1, 2, 3, 4}), true);
    backward(sum(add(dropout_with_mask(x, Tensor({4}, {0, 2, 2, 0})), dropout_with_mask(x, Tensor({4}, {5, 0, 5, 0})))));
    expect_values(x.grad(), {5, 2, 7, 0});
}

TEST(Dropout, BadArguments) {
    Rng rng(15);
    const Var x(Tensor({2, 3}));
    for (float rate : {-0.1f, 1.0f, 1.5f, NAN}) {
        EXPECT_THROW(dropout(x, rate, true, rng), ValueError) << rate;
        EXPECT_THROW(dropout(x, rate, false, rng), ValueError) << rate;
    }
    try {
        dropout_with_mask(x, Tensor({3, 2}));
        FAIL() << "no ShapeError";
    } catch (const ShapeError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("dropout_with_mask"), std::string::npos) << m;
        EXPECT_NE(m.find("[2,3]"), std::string::npos) << m;
        EXPECT_NE(m.find("[3,2]"), std::string::npos) << m;
    }
}
