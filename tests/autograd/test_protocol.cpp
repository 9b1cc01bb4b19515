// The gradient protocol of autograd/var.hpp, function by function: the first share to reach an
// input is written into its uninitialised gradient, later shares are added.
//
// Each function's input is reached twice, by loss = L + 2 L' where L and L' are the same
// weighted sum of the function's output computed twice. Every backward here is linear in its
// output gradient, so the shares are s and 2s and the gradient must be 3s: exactly so for an
// elementwise or GEMM share (doubling is exact in floats), to rounding where a kernel scatters
// several terms into one entry (conv2d's col2im). A function that added its first share to
// whatever the new buffer held would be off (the allocator is handed blocks full of NaN just
// before, which it tends to give back); one that wrote its second share would give s or 2s.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "helpers.hpp"

using namespace semigrad;
using semigrad::testing::away_from_zero;

namespace {

using Fn = std::function<Var(const std::vector<Var>&)>;

struct Case {
    std::string name;
    Fn f;
    std::vector<Shape> shapes;
};

// Frees a few blocks of `shape`'s size filled with NaN, so that the next allocations of that
// size are likely to reuse them (glibc keeps freed small blocks per size).
void poison_allocator(const Shape& shape) {
    std::vector<std::unique_ptr<float[]>> blocks;
    for (int i = 0; i < 8; ++i) {
        blocks.emplace_back(new float[shape_size(shape)]);
        std::fill_n(blocks.back().get(), shape_size(shape), std::numeric_limits<float>::quiet_NaN());
    }
}

// d(loss)/d(input k) with the function's output used once or twice (loss = L + 2 L').
Tensor gradient(const Case& c, const std::vector<Tensor>& inputs, const Tensor& weights,
                std::size_t k, bool twice) {
    std::vector<Var> vars;
    for (const Tensor& t : inputs) vars.emplace_back(t, true);
    const Var w(weights);
    Var loss = sum(mul(c.f(vars), w));
    if (twice) loss = add(loss, scale(sum(mul(c.f(vars), w)), 2.0f));
    poison_allocator(inputs[k].shape());
    backward(loss);
    return vars[k].grad();
}

}  // namespace

TEST(GradientProtocol, FirstShareWrittenLaterSharesAdded) {
    const Conv2dSpec conv{};
    const Pool2dSpec pool{};
    const Tensor mask({3, 4}, {0, 2, 2, 0, 2, 2, 0, 2, 0, 0, 2, 2});
    const std::vector<Case> cases = {
        {"add", [](const auto& v) { return add(v[0], v[1]); }, {{3, 4}, {3, 4}}},
        {"sub", [](const auto& v) { return sub(v[0], v[1]); }, {{3, 4}, {3, 4}}},
        {"mul", [](const auto& v) { return mul(v[0], v[1]); }, {{3, 4}, {3, 4}}},
        {"scale", [](const auto& v) { return scale(v[0], 1.5f); }, {{3, 4}}},
        {"sum", [](const auto& v) { return sum(v[0]); }, {{3, 4}}},
        {"mean", [](const auto& v) { return mean(v[0]); }, {{3, 4}}},
        {"reshape", [](const auto& v) { return reshape(v[0], {6, 2}); }, {{3, 4}}},
        {"flatten", [](const auto& v) { return flatten(v[0]); }, {{2, 3, 2}}},
        {"relu", [](const auto& v) { return relu(v[0]); }, {{3, 4}}},
        {"l2_normalize", [](const auto& v) { return l2_normalize(v[0]); }, {{3, 4}}},
        {"dropout", [mask](const auto& v) { return dropout_with_mask(v[0], mask); }, {{3, 4}}},
        {"matmul", [](const auto& v) { return matmul(v[0], v[1]); }, {{3, 4}, {4, 2}}},
        {"dense", [](const auto& v) { return dense(v[0], v[1], v[2]); }, {{3, 4}, {4, 2}, {2}}},
        {"bias_add", [](const auto& v) { return bias_add(v[0], v[1]); }, {{2, 3, 2, 2}, {3}}},
        {"conv2d", [conv](const auto& v) { return conv2d(v[0], v[1], v[2], conv); },
         {{1, 2, 4, 4}, {3, 2, 2, 2}, {3}}},
        {"max_pool2d", [pool](const auto& v) { return max_pool2d(v[0], pool); }, {{1, 2, 4, 4}}},
    };
    Rng rng(11);
    for (const Case& c : cases) {
        std::vector<Tensor> inputs;
        for (const Shape& s : c.shapes) inputs.push_back(away_from_zero(s, rng));
        std::vector<Var> probe;
        for (const Tensor& t : inputs) probe.emplace_back(t);
        const Tensor weights = away_from_zero(c.f(probe).shape(), rng);
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            const Tensor once = gradient(c, inputs, weights, k, false);
            const Tensor twice = gradient(c, inputs, weights, k, true);
            ASSERT_EQ(twice.shape(), inputs[k].shape()) << c.name << " input " << k;
            bool some_nonzero = false;
            for (std::size_t i = 0; i < once.size(); ++i) {
                EXPECT_NEAR(twice[i], 3.0f * once[i], 1e-6f * std::abs(3.0f * once[i]))
                    << c.name << " input " << k << " at " << i;
                some_nonzero = some_nonzero || once[i] != 0.0f;
            }
            EXPECT_TRUE(some_nonzero) << c.name << " input " << k << ": no gradient at all";
        }
    }
}
