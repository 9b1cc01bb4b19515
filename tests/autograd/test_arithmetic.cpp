// Tests of autograd/arithmetic.cpp: values, gradients (finite differences) and shape errors of
// add, sub, mul, scale, sum, mean, reshape and flatten.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

#include "autograd/functions.hpp"
#include "helpers.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::testing;

TEST(Arithmetic, ForwardValues) {
    const Var a(Tensor({2, 2}, {1, 2, 3, 4})), b(Tensor({2, 2}, {10, 20, 30, 40}));
    expect_values(add(a, b).value(), {11, 22, 33, 44});
    expect_values(sub(a, b).value(), {-9, -18, -27, -36});
    expect_values(mul(a, b).value(), {10, 40, 90, 160});
    expect_values(scale(a, -0.5f).value(), {-0.5f, -1, -1.5f, -2});
    EXPECT_EQ(sum(a).shape(), (Shape{1}));
    EXPECT_FLOAT_EQ(sum(a).value().item(), 10);
    EXPECT_FLOAT_EQ(mean(b).value().item(), 25);
    const Var r = reshape(a, {4});
    EXPECT_EQ(r.shape(), (Shape{4}));
    expect_values(r.value(), {1, 2, 3, 4});
}

TEST(Arithmetic, HandWorkedGradients) {
    // loss = sum(a*b - 3a) -> da = b - 3, db = a.
    Var a(Tensor({3}, {1, 2, 3}), true), b(Tensor({3}, {4, 5, 6}), true);
    backward(sum(sub(mul(a, b), scale(a, 3.0f))));
    expect_values(a.grad(), {1, 2, 3});
    expect_values(b.grad(), {1, 2, 3});
    // mean spreads 1/n to every element.
    Var c(Tensor({4}, {1, 2, 3, 4}), true);
    backward(mean(c));
    expect_values(c.grad(), {0.25f, 0.25f, 0.25f, 0.25f});
}

TEST(Arithmetic, SameInputTwiceAccumulatesBothPaths) {
    Var x(Tensor({2}, {3, -2}), true);
    backward(sum(mul(x, x)));  // d/dx x^2 = 2x
    expect_values(x.grad(), {6, -4});
    x.zero_grad();
    backward(sum(add(x, x)));
    expect_values(x.grad(), {2, 2});
    x.zero_grad();
    backward(sum(sub(x, x)));
    expect_values(x.grad(), {0, 0});
}

TEST(Arithmetic, OnlyInputsThatRequireGradGetOne) {
    Var x(Tensor({2}, {1, 2}), true);
    const Var c(Tensor({2}, {5, 7}));
    backward(sum(mul(add(x, c), c)));
    expect_values(x.grad(), {5, 7});
    EXPECT_FALSE(c.has_grad());
}

TEST(Arithmetic, Gradcheck) {
    Rng rng(1);
    const Tensor a = random_tensor({3, 4}, rng), b = random_tensor({3, 4}, rng);
    expect_gradcheck([](const auto& v) { return add(v[0], v[1]); }, {a, b});
    expect_gradcheck([](const auto& v) { return sub(v[0], v[1]); }, {a, b});
    expect_gradcheck([](const auto& v) { return mul(v[0], v[1]); }, {a, b});
    expect_gradcheck([](const auto& v) { return mul(v[0], v[0]); }, {a});
    expect_gradcheck([](const auto& v) { return scale(v[0], -2.5f); }, {a});
    expect_gradcheck([](const auto& v) { return sum(v[0]); }, {a});
    expect_gradcheck([](const auto& v) { return mean(v[0]); }, {a});
    expect_gradcheck([](const auto& v) { return reshape(v[0], {2, 6}); }, {a});
    const Tensor img = random_tensor({2, 3, 2, 2}, rng);
    expect_gradcheck([](const auto& v) { return flatten(v[0]); }, {img});
}

TEST(Arithmetic, LargeInputsTakeTheParallelPathAndAgree) {
    // 3 * 128 * 128 = 49152 elements, above the 32K threshold of the parallel loops.
    Rng rng(2);
    const Shape shape{3, 128, 128};
    Var a(random_tensor(shape, rng), true), b(random_tensor(shape, rng), true);
    const Var y = mul(add(a, b), b);
    double expected_sum = 0.0;
    for (std::size_t i = 0; i < y.value().size(); ++i) {
        const float e = (a.value()[i] + b.value()[i]) * b.value()[i];
        ASSERT_EQ(y.value()[i], e) << "at " << i;
        expected_sum += e;
    }
    const Var s = sum(y);
    EXPECT_NEAR(s.value().item(), expected_sum, 1e-6 * std::abs(expected_sum) + 1e-3);
    backward(s);  // da = b, db = a + 2b
    for (std::size_t i = 0; i < a.value().size(); ++i) {
        ASSERT_EQ(a.grad()[i], b.value()[i]);
        ASSERT_FLOAT_EQ(b.grad()[i], a.value()[i] + 2.0f * b.value()[i]);
    }
}

TEST(Arithmetic, SumKeepsPrecisionOverManyElements) {
    // One million copies of 0.1: a float32 running sum drifts by ~1%, a double one does not.
    const Var a(Tensor({1000, 1000}, 0.1f));
    EXPECT_NEAR(sum(a).value().item(), 100000.0f, 0.05f);  // float32 running sum: 100958
    EXPECT_NEAR(mean(a).value().item(), 0.1f, 1e-7f);
}

TEST(Arithmetic, FlattenKeepsTheBatchAxis) {
    const Var x(Tensor({2, 3, 4, 5}));
    EXPECT_EQ(flatten(x).shape(), (Shape{2, 60}));
    EXPECT_EQ(flatten(Var(Tensor({7}))).shape(), (Shape{7, 1}));
    Var img(Tensor({2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), true);
    const Var f = flatten(img);
    expect_values(f.value(), {1, 2, 3, 4, 5, 6, 7, 8});
    EXPECT_EQ(f.op(), "flatten");
}

TEST(Arithmetic, ShapeErrorsNameTheOpAndBothShapes) {
    const Var a(Tensor({2, 3})), b(Tensor({3, 2}));
    const std::pair<std::string, Var (*)(const Var&, const Var&)> ops[] = {
        {"add", add}, {"sub", sub}, {"mul", mul}};
    for (const auto& [name, op] : ops) {
        try {
            op(a, b);
            FAIL() << "no ShapeError from " << name;
        } catch (const ShapeError& e) {
            const std::string m = e.what();
            EXPECT_EQ(m.rfind(name + ":", 0), 0u) << m;
            EXPECT_NE(m.find("[2,3]"), std::string::npos) << m;
            EXPECT_NE(m.find("[3,2]"), std::string::npos) << m;
        }
    }
    try {
        reshape(a, {4, 2});
        FAIL() << "no ShapeError";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("reshape: cannot reshape [2,3]"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("[4,2]"), std::string::npos) << e.what();
    }
    EXPECT_THROW(mean(Var(Tensor())), ShapeError);
}
