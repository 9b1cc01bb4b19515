// Each layer alone: output shapes, forward values against naive loops, gradients against finite
// differences (input and weights), and the training/evaluation behaviour of Dropout.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.hpp"
#include "module_gradcheck.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::nn;
using semigrad::nn::testing::expect_module_gradients;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    Rng rng(seed);
    return random_uniform(shape, rng, lo, hi);
}

// Puts random values in every parameter (biases start at zero, which would hide bias bugs).
void randomise_parameters(Module& m, std::uint64_t seed) {
    for (Parameter& p : m.parameters()) p.var.value() = random_tensor(p.var.shape(), seed++, -0.5f, 0.5f);
}

// Conv2D by direct loops over Keras' definition, TF "same" padding included:
// out[n,o,i,j] = b[o] + Σ_c,a,b w[o,c,a,b] · x[n,c, i·s + a - pad_top, j·s + b - pad_left].
Tensor conv_reference(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Pad2d pad,
                      bool relu_after) {
    const std::size_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    const std::size_t OC = w.dim(0), KH = w.dim(2), KW = w.dim(3);
    const std::size_t OH = (H + pad.top + pad.bottom - KH) / stride + 1;
    const std::size_t OW = (W + pad.left + pad.right - KW) / stride + 1;
    Tensor out(Shape{N, OC, OH, OW});
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t o = 0; o < OC; ++o)
            for (std::size_t i = 0; i < OH; ++i)
                for (std::size_t j = 0; j < OW; ++j) {
                    double s = b.empty() ? 0.0 : b[o];
                    for (std::size_t c = 0; c < C; ++c)
                        for (std::size_t a = 0; a < KH; ++a)
                            for (std::size_t bb = 0; bb < KW; ++bb) {
                                const long h = long(i * stride + a) - pad.top;
                                const long ww = long(j * stride + bb) - pad.left;
                                if (h < 0 || ww < 0 || h >= long(H) || ww >= long(W)) continue;
                                s += double(w.at({o, c, a, bb})) * x.at({n, c, std::size_t(h), std::size_t(ww)});
                            }
                    out.at({n, o, i, j}) = relu_after ? std::max(0.0f, float(s)) : float(s);
                }
    return out;
}

}  // namespace

TEST(Conv2D, BuildShapesAndKerasInitialisation) {
    Conv2D conv({.filters = 64, .kernel_size = 2, .padding = Padding::Same, .activation = Activation::ReLU});
    Rng init(1);
    EXPECT_EQ(conv.build({1, 28, 28}, init), (Shape{64, 28, 28}));
    const auto params = conv.parameters();
    ASSERT_EQ(params.size(), 2u);
    EXPECT_EQ(params[0].name, "conv2d/kernel");
    EXPECT_EQ(params[0].var.shape(), (Shape{64, 1, 2, 2}));  // [OC,C,KH,KW]
    EXPECT_EQ(params[1].name, "conv2d/bias");
    EXPECT_TRUE(params[0].var.requires_grad());
    EXPECT_EQ(count_params(conv), 320u);
    // Glorot limit with Keras' fans: fan_in = 2*2*1, fan_out = 2*2*64.
    const float limit = std::sqrt(6.0f / (4 + 256));
    float largest = 0;
    for (std::size_t i = 0; i < 256; ++i) largest = std::max(largest, std::fabs(params[0].var.value()[i]));
    EXPECT_LT(largest, limit);
    EXPECT_GT(largest, 0.9f * limit);
    for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(params[1].var.value()[i], 0.0f);

    Conv2D valid({.filters = 3, .kernel_size = 3, .strides = 2});
    EXPECT_EQ(valid.build({2, 9, 8}, init), (Shape{3, 4, 3}));
    Conv2D no_bias({.filters = 3, .kernel_size = 3, .use_bias = false});
    no_bias.build({2, 5, 5}, init);
    EXPECT_EQ(no_bias.parameters().size(), 1u);
}

TEST(Conv2D, ForwardMatchesDirectLoops) {
    struct Case {
        Conv2DOptions o;
        Shape x;
        Pad2d pad;
    };
    const Case cases[] = {
        // Even kernel, "same": TF pads 0 before and 1 after.
        {{.filters = 5, .kernel_size = 2, .padding = Padding::Same, .activation = Activation::ReLU},
         {3, 2, 7, 6}, {0, 1, 0, 1}},
        {{.filters = 4, .kernel_size = 3, .padding = Padding::Same}, {2, 3, 5, 5}, {1, 1, 1, 1}},
        {{.filters = 3, .kernel_size = 3, .strides = 2}, {1, 2, 9, 8}, {}},
        {{.filters = 2, .kernel_size = 2, .strides = 2, .padding = Padding::Same, .use_bias = false},
         {2, 3, 5, 7}, {0, 1, 0, 1}},
    };
    std::uint64_t seed = 10;
    for (const Case& c : cases) {
        Conv2D conv(c.o);
        Rng init(seed);
        const Shape out = conv.build({c.x[1], c.x[2], c.x[3]}, init);
        randomise_parameters(conv, seed);
        const Tensor x = random_tensor(c.x, ++seed);
        const Tensor y = conv.forward(Var(x)).value();
        const auto params = conv.parameters();
        const Tensor expected = conv_reference(x, params[0].var.value(),
                                               c.o.use_bias ? params[1].var.value() : Tensor(),
                                               c.o.strides, c.pad, c.o.activation == Activation::ReLU);
        ASSERT_EQ(y.shape(), expected.shape());
        EXPECT_EQ(Shape(y.shape().begin() + 1, y.shape().end()), out) << "build() and forward() disagree";
        EXPECT_LT(max_abs_diff(y, expected), 1e-5f) << "case with input " << to_string(c.x);
    }
}

TEST(Conv2D, GradientsOfInputKernelAndBias) {
    Conv2D conv({.filters = 3, .kernel_size = 2, .padding = Padding::Same});
    Rng init(3);
    conv.build({2, 5, 4}, init);
    randomise_parameters(conv, 30);
    expect_module_gradients(conv, random_tensor({2, 2, 5, 4}, 31));
}

TEST(Conv2D, ReluActivationGradientAwayFromZero) {
    // With kernel 1x1 of value 1 and inputs |x| >= 0.2, pre-activations are far from the kink.
    Conv2D conv({.filters = 1, .kernel_size = 1, .activation = Activation::ReLU});
    Rng init(3);
    conv.build({1, 3, 3}, init);
    conv.parameters()[0].var.value().fill(1.0f);
    Tensor x = random_tensor({2, 1, 3, 3}, 5, 0.2f, 1.0f);
    for (std::size_t i = 0; i < x.size(); i += 2) x[i] = -x[i];
    expect_module_gradients(conv, x);
    // Negative inputs are cut to zero.
    const Tensor y = conv.forward(Var(x)).value();
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_FLOAT_EQ(y[1], x[1]);
}

TEST(Conv2D, ErrorsNameTheLayer) {
    EXPECT_THROW(Conv2D({.filters = 0, .kernel_size = 2}), ValueError);
    Conv2D conv({.filters = 2, .kernel_size = 2});
    try {
        conv.forward(Var(Tensor(Shape{1, 1, 4, 4})));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("conv2d"), std::string::npos) << e.what();
    }
    Rng init(1);
    EXPECT_THROW(conv.build({28, 28}, init), ShapeError);
    conv.build({1, 4, 4}, init);
    EXPECT_THROW(conv.forward(Var(Tensor(Shape{1, 3, 4, 4}))), ShapeError);  // wrong channels
}

TEST(MaxPool2D, ShapesValuesAndGradient) {
    MaxPool2D pool;
    Rng init(1);
    EXPECT_EQ(pool.build({64, 28, 28}, init), (Shape{64, 14, 14}));
    EXPECT_EQ(pool.build({32, 7, 7}, init), (Shape{32, 3, 3}));  // valid drops the last row
    MaxPool2D same({.pool_size = 2, .padding = Padding::Same});
    EXPECT_EQ(same.build({1, 5, 5}, init), (Shape{1, 3, 3}));
    MaxPool2D strided({.pool_size = 3, .strides = 1});
    EXPECT_EQ(strided.build({1, 5, 6}, init), (Shape{1, 3, 4}));

    // Distinct values 0.05 apart (a permutation), so no window has a near-tie.
    const Shape xs{2, 3, 5, 6};
    Rng rng(8);
    const auto perm = rng.permutation(shape_size(xs));
    Tensor x(xs);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.05f * float(perm[i]) - 4.0f;
    pool.build({3, 5, 6}, init);
    const Tensor y = pool.forward(Var(x)).value();
    ASSERT_EQ(y.shape(), (Shape{2, 3, 2, 3}));
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t i = 0; i < 2; ++i)
                for (std::size_t j = 0; j < 3; ++j) {
                    float m = -INFINITY;
                    for (std::size_t a = 0; a < 2; ++a)
                        for (std::size_t b = 0; b < 2; ++b) m = std::max(m, x.at({n, c, 2 * i + a, 2 * j + b}));
                    EXPECT_EQ(y.at({n, c, i, j}), m);
                }
    expect_module_gradients(pool, x);
    same.build({3, 5, 6}, init);
    expect_module_gradients(same, x);
}

TEST(Dropout, KeepsAboutSeventyPercentScaledInTrainingAndIsIdentityInEval) {
    Dropout drop({.rate = 0.3f});
    Rng init(4);
    EXPECT_EQ(drop.build({100, 1000}, init), (Shape{100, 1000}));
    EXPECT_TRUE(drop.training());
    const Var x(Tensor::ones({1, 100, 1000}));
    const Tensor y = drop.forward(x).value();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        if (y[i] != 0.0f) {
            ++kept;
            ASSERT_FLOAT_EQ(y[i], 1.0f / 0.7f);
        }
    }
    // Binomial(100000, 0.7): standard deviation of the fraction is 0.00145.
    EXPECT_NEAR(double(kept) / 1e5, 0.7, 0.008);
    // A fresh mask per call.
    EXPECT_GT(max_abs_diff(drop.forward(x).value(), y), 0.0f);

    drop.train(false);
    const auto before = drop.generators()[0].rng->state().state;
    const Var z = drop.forward(x);
    EXPECT_EQ(max_abs_diff(z.value(), x.value()), 0.0f);
    EXPECT_EQ(drop.generators()[0].rng->state().state, before) << "eval must not draw";
}

TEST(Dropout, SeededFromInitRngAndGradientThroughTheMask) {
    Dropout a({.rate = 0.5f}), b({.rate = 0.5f}), c({.rate = 0.5f});
    Rng i1(9), i2(9), i3(10);
    a.build({3, 4}, i1);
    b.build({3, 4}, i2);
    c.build({3, 4}, i3);
    const Var x(Tensor::ones({2, 3, 4}));
    const Tensor ya = a.forward(x).value();
    EXPECT_EQ(max_abs_diff(ya, b.forward(x).value()), 0.0f);
    EXPECT_GT(max_abs_diff(ya, c.forward(x).value()), 0.0f);
    expect_module_gradients(a, random_tensor({2, 3, 4}, 12));
    EXPECT_THROW(Dropout({.rate = 1.0f}), ValueError);
    EXPECT_EQ(a.generators()[0].name, "dropout/rng");
}

TEST(Flatten, NchwRowMajorOrder) {
    Flatten flat;
    Rng init(1);
    EXPECT_EQ(flat.build({32, 7, 7}, init), (Shape{1568}));
    const Tensor x = random_tensor({2, 3, 4, 5}, 2);
    flat.build({3, 4, 5}, init);
    const Tensor y = flat.forward(Var(x)).value();
    ASSERT_EQ(y.shape(), (Shape{2, 60}));
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t h = 0; h < 4; ++h)
                for (std::size_t w = 0; w < 5; ++w)
                    ASSERT_EQ(y.at({n, c * 20 + h * 5 + w}), x.at({n, c, h, w}));
    expect_module_gradients(flat, x);
}

TEST(Dense, BuildForwardAgainstLoopsAndGradients) {
    Dense dense({.units = 256});
    Rng init(2);
    EXPECT_EQ(dense.build({1568}, init), (Shape{256}));
    EXPECT_EQ(count_params(dense), 401664u);
    EXPECT_EQ(dense.parameters()[0].var.shape(), (Shape{1568, 256}));
    EXPECT_THROW(dense.build({32, 7, 7}, init), ShapeError);

    for (Activation act : {Activation::None, Activation::ReLU}) {
        Dense d({.units = 5, .activation = act});
        d.build({7}, init);
        randomise_parameters(d, 20);
        const Tensor x = random_tensor({3, 7}, 21);
        const Tensor y = d.forward(Var(x)).value();
        const Tensor& k = d.parameters()[0].var.value();
        const Tensor& b = d.parameters()[1].var.value();
        ASSERT_EQ(y.shape(), (Shape{3, 5}));
        for (std::size_t n = 0; n < 3; ++n)
            for (std::size_t u = 0; u < 5; ++u) {
                double s = b[u];
                for (std::size_t i = 0; i < 7; ++i) s += double(x.at({n, i})) * k.at({i, u});
                if (act == Activation::ReLU) s = std::max(s, 0.0);
                EXPECT_NEAR(y.at({n, u}), s, 1e-5);
            }
    }
    Dense d({.units = 4});
    d.build({6}, init);
    randomise_parameters(d, 40);
    expect_module_gradients(d, random_tensor({3, 6}, 41));
    EXPECT_THROW(Dense({.units = 0}), ValueError);
}

TEST(ReLU, ValuesAndGradientAwayFromTheKink) {
    ReLU relu_layer;
    Rng init(1);
    relu_layer.build({6}, init);
    Tensor x = random_tensor({2, 6}, 3, 0.1f, 1.0f);
    for (std::size_t i = 0; i < x.size(); i += 3) x[i] = -x[i];
    const Tensor y = relu_layer.forward(Var(x)).value();
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], std::max(x[i], 0.0f));
    expect_module_gradients(relu_layer, x);
    EXPECT_EQ(relu_layer.name(), "re_lu");
}

TEST(L2Normalize, UnitRowsAndGradient) {
    L2Normalize l2;
    Rng init(1);
    EXPECT_EQ(l2.build({256}, init), (Shape{256}));
    l2.build({5}, init);
    const Tensor x = random_tensor({4, 5}, 6);
    const Tensor y = l2.forward(Var(x)).value();
    for (std::size_t n = 0; n < 4; ++n) {
        double norm2 = 0, xnorm2 = 0;
        for (std::size_t j = 0; j < 5; ++j) {
            norm2 += double(y.at({n, j})) * y.at({n, j});
            xnorm2 += double(x.at({n, j})) * x.at({n, j});
        }
        EXPECT_NEAR(norm2, 1.0, 1e-6);
        EXPECT_NEAR(y.at({n, 2}), x.at({n, 2}) / std::sqrt(xnorm2), 1e-6);
    }
    expect_module_gradients(l2, x);
    EXPECT_THROW(l2.build({4, 4}, init), ShapeError);
}
