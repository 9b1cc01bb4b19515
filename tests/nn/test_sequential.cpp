// The tutorial model as a Sequential: every layer's output shape, Keras' parameter counts
// (320 + 8,224 + 401,664 = 410,208), names, summary(), train/eval propagation, seeding.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/layers.hpp"
#include "nn/sequential.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::nn;

namespace {

// The TFA tutorial's model, layer for layer.
std::unique_ptr<Sequential> tutorial_model(std::uint64_t seed) {
    auto model = std::make_unique<Sequential>();
    model->add(Conv2D({.filters = 64, .kernel_size = 2, .padding = Padding::Same,
                       .activation = Activation::ReLU}));
    model->add(MaxPool2D({.pool_size = 2}));
    model->add(Dropout({.rate = 0.3f}));
    model->add(Conv2D({.filters = 32, .kernel_size = 2, .padding = Padding::Same,
                       .activation = Activation::ReLU}));
    model->add(MaxPool2D({.pool_size = 2}));
    model->add(Dropout({.rate = 0.3f}));
    model->add(Flatten());
    model->add(Dense({.units = 256, .activation = Activation::None}));
    model->add(L2Normalize());
    Rng init(seed);
    model->build({1, 28, 28}, init);
    return model;
}

Tensor images(std::size_t n, std::uint64_t seed) {
    Rng rng(seed);
    Tensor t(Shape{n, 1, 28, 28});
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = rng.uniform();
    return t;
}

}  // namespace

TEST(Sequential, TutorialModelShapesPerLayer) {
    auto model = tutorial_model(42);
    const std::vector<Shape> expected{{64, 28, 28}, {64, 14, 14}, {64, 14, 14}, {32, 14, 14}, {32, 7, 7},
                                      {32, 7, 7},   {1568},       {256},        {256}};
    ASSERT_EQ(model->size(), expected.size());
    // Forward layer by layer on a batch of 3 and compare with what build() recorded.
    Var x(images(3, 1));
    for (std::size_t i = 0; i < model->size(); ++i) {
        EXPECT_EQ(model->output_shape(i), expected[i]) << "layer " << i;
        x = model->layer(i).forward(x);
        Shape with_n{3};
        with_n.insert(with_n.end(), expected[i].begin(), expected[i].end());
        EXPECT_EQ(x.shape(), with_n) << model->layer(i).name();
    }
    // The whole model gives the same shapes, and rows of unit length.
    const Tensor y = model->forward(Var(images(3, 1))).value();
    ASSERT_EQ(y.shape(), (Shape{3, 256}));
    for (std::size_t n = 0; n < 3; ++n) {
        double s = 0;
        for (std::size_t j = 0; j < 256; ++j) s += double(y.at({n, j})) * y.at({n, j});
        EXPECT_NEAR(s, 1.0, 1e-5);
    }
}

TEST(Sequential, ParameterCountsAsKeras) {
    auto model = tutorial_model(42);
    EXPECT_EQ(model->count_params(), 410208u);
    const std::vector<std::size_t> per_layer{320, 0, 0, 8224, 0, 0, 0, 401664, 0};
    for (std::size_t i = 0; i < per_layer.size(); ++i) EXPECT_EQ(model->layer_params(i), per_layer[i]);
    EXPECT_EQ(count_params(*model), 410208u);

    std::vector<std::string> names;
    for (const Parameter& p : model->parameters()) names.push_back(p.name);
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d/kernel", "conv2d/bias", "conv2d_1/kernel",
                                               "conv2d_1/bias", "dense/kernel", "dense/bias"}));
    EXPECT_EQ(model->parameters()[2].var.shape(), (Shape{32, 64, 2, 2}));
    EXPECT_EQ(model->parameters()[4].var.shape(), (Shape{1568, 256}));
}

TEST(Sequential, KerasNamesAndSummary) {
    auto model = tutorial_model(42);
    const std::vector<std::string> names{"conv2d",   "max_pooling2d",   "dropout",
                                         "conv2d_1", "max_pooling2d_1", "dropout_1",
                                         "flatten",  "dense",           "l2_normalize"};
    for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(model->layer(i).name(), names[i]);
    ASSERT_EQ(model->generators().size(), 2u);
    EXPECT_EQ(model->generators()[1].name, "dropout_1/rng");

    const std::string s = model->summary();
    for (const char* needle : {"Layer (type)", "Output Shape", "Param #", "conv2d (Conv2D)",
                               "(None, 64, 28, 28)", "320", "conv2d_1 (Conv2D)", "(None, 32, 14, 14)",
                               "8,224", "max_pooling2d_1 (MaxPool2D)", "(None, 32, 7, 7)",
                               "flatten (Flatten)", "(None, 1568)", "dense (Dense)", "401,664",
                               "(None, 256)", "Total params: 410,208", "Trainable params: 410,208",
                               "Non-trainable params: 0"})
        EXPECT_NE(s.find(needle), std::string::npos) << "summary lacks '" << needle << "':\n" << s;
    // One row per layer: the dense row holds its own count.
    const auto row = s.find("dense (Dense)");
    EXPECT_NE(s.substr(row, s.find('\n', row) - row).find("401,664"), std::string::npos) << s;
}

TEST(Sequential, TrainFalsePropagatesAndMakesForwardDeterministic) {
    auto model = tutorial_model(42);
    const Tensor x = images(2, 5);
    const Tensor t1 = model->forward(Var(x)).value();
    const Tensor t2 = model->forward(Var(x)).value();
    EXPECT_GT(max_abs_diff(t1, t2), 0.0f) << "training forward should draw fresh dropout masks";

    model->train(false);
    EXPECT_FALSE(model->training());
    for (std::size_t i = 0; i < model->size(); ++i) EXPECT_FALSE(model->layer(i).training()) << i;
    const Tensor e1 = model->forward(Var(x)).value();
    const Tensor e2 = model->forward(Var(x)).value();
    EXPECT_EQ(max_abs_diff(e1, e2), 0.0f);
    model->train(true);
    for (std::size_t i = 0; i < model->size(); ++i) EXPECT_TRUE(model->layer(i).training()) << i;
}

TEST(Sequential, SameSeedSameModel) {
    auto a = tutorial_model(7), b = tutorial_model(7), c = tutorial_model(8);
    const Tensor x = images(2, 9);
    EXPECT_EQ(max_abs_diff(a->forward(Var(x)).value(), b->forward(Var(x)).value()), 0.0f);
    EXPECT_GT(max_abs_diff(a->parameters()[0].var.value(), c->parameters()[0].var.value()), 0.0f);
    // Biases start at zero; kernels within Glorot limits of their own fans.
    EXPECT_EQ(a->parameters()[5].var.value()[17], 0.0f);
    const Tensor& dense_kernel = a->parameters()[4].var.value();
    const float limit = std::sqrt(6.0f / (1568 + 256));
    for (std::size_t i = 0; i < dense_kernel.size(); ++i) ASSERT_LT(std::fabs(dense_kernel[i]), limit);
}

TEST(Sequential, UsageErrors) {
    Sequential empty;
    Rng init(1);
    EXPECT_THROW(empty.build({1, 28, 28}, init), ValueError);
    Sequential model;
    Dense& d = model.add(Dense({.units = 3}));
    EXPECT_EQ(&d, &model.layer(0));
    EXPECT_THROW(model.forward(Var(Tensor(Shape{2, 4}))), Error);
    EXPECT_THROW(model.summary(), Error);
    EXPECT_THROW(model.build({1, 28, 28}, init), ShapeError);  // Dense needs a flat input
    EXPECT_EQ(model.build({4}, init), (Shape{3}));
    EXPECT_EQ(model.type(), "Sequential");
}
