// Tests of autograd/conv_block.cpp: the fused Conv2D(relu) -> MaxPool2D -> Dropout node against
// central differences, and against the same three layers as separate autograd functions
// (conv2d, relu, max_pool2d, dropout_with_mask) on shapes with odd sizes and padding edges.
#include <gtest/gtest.h>

#include <string>

#include "autograd/functions.hpp"
#include "helpers.hpp"
#include "tensor/dropout.hpp"

using namespace semigrad;
using namespace semigrad::testing;

namespace {

ConvBlockSpec spec_for(const Shape& x, int K, int pool, Padding pool_padding, float rate) {
    ConvBlockSpec s;
    s.conv.pad = tf_padding(Padding::Same, int(x[2]), int(x[3]), K, K, 1, 1);
    s.pool = {pool, pool, pool, pool,
              tf_padding(pool_padding, int(x[2]), int(x[3]), pool, pool, pool, pool)};
    s.rate = rate;
    s.dropout_key = 0x5eed5eed5eed5eedULL;
    return s;
}

}  // namespace

// Finite differences need inputs away from kinks: no two conv values of a window within the
// step of each other (a max-pool tie) and none near 0 (relu). These seeded inputs are such; the
// dropout key is fixed, so the function is deterministic.
TEST(ConvBlockFn, Gradcheck) {
    for (const float rate : {0.0f, 0.5f}) {
        SCOPED_TRACE("rate " + std::to_string(rate));
        Rng rng(11);
        const Shape xs{2, 2, 5, 5};
        const ConvBlockSpec spec = spec_for(xs, 2, 2, Padding::Same, rate);
        const Tensor x = random_tensor(xs, rng), w = random_tensor({3, 2, 2, 2}, rng);
        const Tensor b = random_tensor({3}, rng, -0.2f, 0.2f);
        expect_gradcheck(
            [spec](const auto& v) { return conv2d_relu_pool_dropout(v[0], v[1], v[2], spec); },
            {x, w, b});
        expect_gradcheck(
            [spec](const auto& v) { return conv2d_relu_pool_dropout(v[0], v[1], Var(), spec); },
            {x, w});
    }
}

// The fused node and the four unfused functions, fed the same inputs and the same output
// gradient: values equal to 1e-6 and gradients to 1e-5 (they are in fact the same bits:
// tests/tensor/test_conv_block.cpp checks that on the kernels).
TEST(ConvBlockFn, EqualsTheUnfusedChain) {
    struct Case {
        Shape x;
        std::size_t OC;
        int K, pool;
        Padding pool_padding;
        float rate;
    };
    const Case cases[] = {
        {{3, 1, 28, 28}, 16, 2, 2, Padding::Valid, 0.3f},
        {{2, 5, 9, 7}, 4, 3, 2, Padding::Same, 0.5f},
        {{2, 3, 7, 11}, 6, 2, 3, Padding::Valid, 0.0f},
    };
    Rng rng(3);
    for (const Case& c : cases) {
        SCOPED_TRACE("x " + to_string(c.x) + " rate " + std::to_string(c.rate));
        const ConvBlockSpec spec = spec_for(c.x, c.K, c.pool, c.pool_padding, c.rate);
        const Shape ws{c.OC, c.x[1], std::size_t(c.K), std::size_t(c.K)};
        const Tensor x0 = random_tensor(c.x, rng), w0 = random_tensor(ws, rng);
        const Tensor b0 = random_tensor({c.OC}, rng, -0.3f, 0.3f);

        Var x(x0, true), w(w0, true), b(b0, true);
        const Var fused = conv2d_relu_pool_dropout(x, w, b, spec);
        Var ux(x0, true), uw(w0, true), ub(b0, true);
        Var unfused = max_pool2d(relu(conv2d(ux, uw, ub, spec.conv)), spec.pool);
        if (c.rate > 0)
            unfused = dropout_with_mask(
                unfused, dropout_mask(unfused.shape(), c.rate, spec.dropout_key));
        ASSERT_EQ(fused.shape(), unfused.shape());
        expect_values(fused.value(), std::vector<float>(unfused.value().data(),
                                                        unfused.value().data() + unfused.value().size()),
                      1e-6f);

        const Tensor seed = random_tensor(fused.shape(), rng);
        backward(fused, seed);
        backward(unfused, seed);
        for (auto [got, want, name] : {std::tuple{&x, &ux, "dx"}, {&w, &uw, "dweight"}, {&b, &ub, "dbias"}}) {
            SCOPED_TRACE(name);
            const Tensor& g = want->grad();
            expect_values(got->grad(), std::vector<float>(g.data(), g.data() + g.size()), 1e-5f);
        }
    }
}

// Evaluation records nothing: no graph, and the value is the same as in training without dropout.
TEST(ConvBlockFn, NoGradRecordsNoGraph) {
    Rng rng(4);
    const Shape xs{2, 3, 6, 6};
    const ConvBlockSpec spec = spec_for(xs, 2, 2, Padding::Valid, 0.0f);
    Var x(random_tensor(xs, rng)), w(random_tensor({4, 3, 2, 2}, rng), true);
    const Var trained = conv2d_relu_pool_dropout(x, w, Var(), spec);
    EXPECT_TRUE(trained.requires_grad());
    NoGradGuard guard;
    const Var evaluated = conv2d_relu_pool_dropout(x, w, Var(), spec);
    EXPECT_FALSE(evaluated.requires_grad());
    EXPECT_EQ(max_abs_diff(evaluated.value(), trained.value()), 0.0f);
}
