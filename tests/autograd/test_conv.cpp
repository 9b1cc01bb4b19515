// Tests of autograd/conv.cpp: conv2d and max_pool2d as differentiable functions (their kernels
// are tested against direct loops in tests/tensor/).
#include <gtest/gtest.h>

#include <string>

#include "autograd/functions.hpp"
#include "helpers.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::testing;

TEST(Conv2d, HandWorked) {
    // x = 1..9 in a 3x3 image, weight [[1,0],[0,1]]: each output is x[i,j] + x[i+1,j+1].
    Var x(Tensor({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), true);
    Var weight(Tensor({1, 1, 2, 2}, {1, 0, 0, 1}), true), bias(Tensor({1}, {0.5f}), true);
    const Var y = conv2d(x, weight, bias, Conv2dSpec{});
    EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
    expect_values(y.value(), {6.5f, 8.5f, 12.5f, 14.5f});
    expect_values(conv2d(x, weight, Conv2dSpec{}).value(), {6, 8, 12, 14});
    backward(sum(y));
    // Each weight tap sees the 2x2 block it slides over; the bias sees every output once.
    expect_values(weight.grad(), {1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9});
    expect_values(bias.grad(), {4});
    expect_values(x.grad(), {1, 1, 0, 1, 2, 1, 0, 1, 1});
}

TEST(Conv2d, GradcheckStridesAndPaddings) {
    Rng rng(9);
    struct Case {
        Shape x, weight;
        Conv2dSpec spec;
        bool bias;
    };
    // Small shapes: every input element costs two forward passes.
    const Case cases[] = {
        {{2, 2, 5, 4}, {3, 2, 3, 3}, {}, true},                                  // valid, stride 1
        {{1, 2, 7, 7}, {2, 2, 3, 3}, {2, 2, tf_padding(Padding::Same, 7, 7, 3, 3, 2, 2)}, true},
        // "same" with an even kernel: pad 0 before, 1 after.
        {{2, 1, 5, 5}, {2, 1, 2, 2}, {1, 1, tf_padding(Padding::Same, 5, 5, 2, 2, 1, 1)}, false},
        {{1, 2, 5, 6}, {2, 2, 3, 2}, {2, 1, {1, 0, 2, 1}}, true},                // asymmetric
    };
    for (const Case& c : cases) {
        SCOPED_TRACE("x " + to_string(c.x) + " weight " + to_string(c.weight) + " stride " +
                     std::to_string(c.spec.stride_h) + "x" + std::to_string(c.spec.stride_w));
        const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.weight, rng);
        const Conv2dSpec spec = c.spec;
        if (c.bias)
            expect_gradcheck([spec](const auto& v) { return conv2d(v[0], v[1], v[2], spec); },
                             {x, w, random_tensor({c.weight[0]}, rng)});
        else
            expect_gradcheck([spec](const auto& v) { return conv2d(v[0], v[1], spec); }, {x, w});
    }
}

TEST(Conv2d, ShapeErrorsNameBothShapes) {
    const Var x(Tensor({2, 3, 8, 8})), w(Tensor({4, 1, 2, 2}));
    try {
        conv2d(x, w, Conv2dSpec{});
        FAIL() << "no ShapeError";
    } catch (const ShapeError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("conv2d"), std::string::npos) << m;
        EXPECT_NE(m.find("[2,3,8,8]"), std::string::npos) << m;
        EXPECT_NE(m.find("[4,1,2,2]"), std::string::npos) << m;
    }
    EXPECT_THROW(conv2d(x, Var(Tensor({4, 3, 2, 2})), Var(Tensor({3})), Conv2dSpec{}), ShapeError);
}

// Distinct values, at least 0.1 apart: a finite-difference step (≤ 1e-3 · |x|) never changes
// which element of a window is the maximum.
static Tensor distinct_values(const Shape& shape, Rng& rng) {
    Tensor t(shape);
    const std::vector<std::size_t> order = rng.permutation(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = 0.1f * float(order[i]) - 0.05f * float(t.size());
    return t;
}

TEST(MaxPool2d, HandWorked) {
    Var x(Tensor({1, 1, 4, 4}, {1, 5, 2, 0,  //
                                3, 4, 8, 6,  //
                                0, 0, 1, 2,  //
                                9, 7, 3, 1}),
          true);
    const Var y = max_pool2d(x, Pool2dSpec{});
    EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
    expect_values(y.value(), {5, 8, 9, 3});
    backward(y, Tensor({1, 1, 2, 2}, {10, 20, 30, 40}));
    expect_values(x.grad(), {0, 10, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 30, 0, 40, 0});
}

TEST(MaxPool2d, Gradcheck) {
    Rng rng(10);
    const Tensor x = distinct_values({2, 3, 7, 6}, rng);
    const Pool2dSpec specs[] = {
        {},                                                               // 2x2 stride 2
        {3, 3, 2, 2, tf_padding(Padding::Same, 7, 6, 3, 3, 2, 2)},        // padded "same"
        {3, 2, 1, 1, {}},                                                 // overlapping windows
    };
    for (const Pool2dSpec& spec : specs)
        expect_gradcheck([spec](const auto& v) { return max_pool2d(v[0], spec); }, {x});
}

TEST(MaxPool2d, ShapeError) {
    EXPECT_THROW(max_pool2d(Var(Tensor({2, 3, 4})), Pool2dSpec{}), ShapeError);
}
