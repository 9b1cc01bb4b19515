// The tutorial model as a Sequential: every layer's output shape, Keras' parameter counts
// (320 + 8,224 + 401,664 = 410,208), names, summary(), train/eval propagation, seeding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "nn/layers.hpp"
#include "nn/sequential.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

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

namespace {

// The rows first .. first+n-1 of x [N, 1, 28, 28].
Tensor rows_of(const Tensor& x, std::size_t first, std::size_t n) {
    const std::size_t row = x.size() / x.dim(0);
    Tensor out(Shape{n, 1, 28, 28});
    std::copy_n(x.data() + first * row, n * row, out.data());
    return out;
}

}  // namespace

// predict(): each chunk's outputs are forward()'s on that chunk in eval mode, bit for bit, with
// the last chunk short; the same bits at 1 and 2 threads (each chunk runs on one thread, OpenBLAS
// included, whichever the team size); the training flag left as it was.
TEST(Sequential, PredictIsForwardChunkByChunk) {
    auto model = tutorial_model(42);
    const std::size_t count = 70, chunk = 32;  // chunks of 32, 32, 6
    const Tensor x = images(count, 3);
    const auto input = [&](std::size_t first, std::size_t n) { return rows_of(x, first, n); };
    const int threads = num_threads();
    set_num_threads(1);
    model->train(false);
    Tensor expected(Shape{count, 256});
    {
        NoGradGuard no_grad;
        for (std::size_t first = 0; first < count; first += chunk) {
            const std::size_t n = std::min(chunk, count - first);
            const Tensor y = model->forward(Var(input(first, n))).value();
            std::copy_n(y.data(), y.size(), expected.data() + first * 256);
        }
    }
    model->train(true);
    const Tensor one = model->predict(count, chunk, input);
    EXPECT_TRUE(model->training());
    set_num_threads(2);
    const Tensor two = model->predict(count, chunk, input);
    set_num_threads(threads);
    ASSERT_EQ(one.shape(), (Shape{count, 256}));
    ASSERT_EQ(two.shape(), (Shape{count, 256}));
    for (std::size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(one[i], expected[i]) << i;
        ASSERT_EQ(two[i], expected[i]) << i;
    }
    // Rows are unit length: the model ran to its end on every chunk.
    double norm = 0;
    for (std::size_t j = 0; j < 256; ++j) norm += double(one[69 * 256 + j]) * one[69 * 256 + j];
    EXPECT_NEAR(norm, 1.0, 1e-5);
}

// An input that throws, in whichever chunk and thread: predict() rethrows it, and the model is
// left in training mode as it found it. A chunk of 0 and an unbuilt model are refused.
TEST(Sequential, PredictReportsFailures) {
    auto model = tutorial_model(42);
    const Tensor x = images(8, 3);
    const int threads = num_threads();
    set_num_threads(2);
    EXPECT_THROW(model->predict(8, 2,
                                [&](std::size_t first, std::size_t n) -> Tensor {
                                    if (first == 4) throw ValueError("chunk at 4 is unreadable");
                                    return rows_of(x, first, n);
                                }),
                 ValueError);
    EXPECT_TRUE(model->training());
    // A wrong input shape from the callback surfaces as the layers' own error.
    EXPECT_THROW(model->predict(8, 4, [](std::size_t, std::size_t n) { return Tensor(Shape{n, 3}); }),
                 Error);
    set_num_threads(threads);
    EXPECT_THROW(model->predict(8, 0, [&](std::size_t f, std::size_t n) { return rows_of(x, f, n); }),
                 ValueError);
    Sequential unbuilt;
    unbuilt.add(Dense({.units = 3}));
    EXPECT_THROW(unbuilt.predict(1, 1, [](std::size_t, std::size_t n) { return Tensor(Shape{n, 4}); }),
                 Error);
    // No inputs: an empty result, nothing called.
    EXPECT_EQ(model->predict(0, 4, [](std::size_t, std::size_t) -> Tensor { throw ValueError("called"); })
                  .shape(),
              (Shape{0, 256}));
}

namespace {

// Two training steps' forward and backward of `fused` and `unfused` (same seed, same layers):
// embeddings equal to 1e-6, every parameter's gradient to 1e-5, and the dropout generators in
// the same state after each step (the fused block draws its key exactly when Dropout would).
void expect_same_training(Sequential& fused, Sequential& unfused, const Tensor& x) {
    ASSERT_TRUE(fused.fuse());
    unfused.set_fuse(false);
    Rng rng(1);
    for (int step = 0; step < 2; ++step) {
        SCOPED_TRACE("step " + std::to_string(step));
        const Var a = fused.forward(Var(x)), b = unfused.forward(Var(x));
        ASSERT_EQ(a.shape(), b.shape());
        for (std::size_t i = 0; i < a.value().size(); ++i)
            ASSERT_NEAR(a.value()[i], b.value()[i], 1e-6f) << i;
        Tensor seed(a.shape());
        for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = rng.uniform(-1.0f, 1.0f);
        for (Parameter& p : fused.parameters()) p.var.zero_grad();
        for (Parameter& p : unfused.parameters()) p.var.zero_grad();
        backward(a, seed);
        backward(b, seed);
        const auto pa = fused.parameters(), pb = unfused.parameters();
        for (std::size_t k = 0; k < pa.size(); ++k) {
            SCOPED_TRACE(pa[k].name);
            ASSERT_TRUE(pa[k].var.has_grad() && pb[k].var.has_grad());
            const Tensor &ga = pa[k].var.grad(), &gb = pb[k].var.grad();
            for (std::size_t i = 0; i < ga.size(); ++i)
                ASSERT_NEAR(ga[i], gb[i], 1e-5f * std::max(1.0f, std::fabs(gb[i]))) << i;
        }
        const auto ra = fused.generators(), rb = unfused.generators();
        for (std::size_t k = 0; k < ra.size(); ++k) EXPECT_EQ(ra[k].rng->state().state, rb[k].rng->state().state);
    }
}

}  // namespace

TEST(Sequential, FusedBlocksTrainAsTheUnfusedLayers) {
    auto fused = tutorial_model(42), unfused = tutorial_model(42);
    expect_same_training(*fused, *unfused, images(5, 3));
    // Evaluation: no dropout, same embeddings.
    fused->train(false);
    unfused->train(false);
    const Tensor x = images(3, 4);
    EXPECT_LE(max_abs_diff(fused->forward(Var(x)).value(), unfused->forward(Var(x)).value()), 1e-6f);
}

// Odd sizes, a padded pool, a 3x3 kernel, no bias, and a Conv2D without ReLU (not fused).
TEST(Sequential, FusedBlocksOnOddShapes) {
    const auto build = [] {
        auto m = std::make_unique<Sequential>();
        m->add(Conv2D({.filters = 5, .kernel_size = 3, .padding = Padding::Same,
                       .activation = Activation::ReLU, .use_bias = false}));
        m->add(MaxPool2D({.pool_size = 2, .padding = Padding::Same}));
        m->add(Dropout({.rate = 0.5f}));
        m->add(Conv2D({.filters = 4, .kernel_size = 2, .padding = Padding::Same,
                       .activation = Activation::ReLU}));
        m->add(MaxPool2D({.pool_size = 3, .strides = 2}));
        m->add(Dropout({.rate = 0.2f}));
        m->add(Conv2D({.filters = 3, .kernel_size = 1}));  // no activation: stays a plain layer
        m->add(MaxPool2D({.pool_size = 2, .padding = Padding::Same}));
        m->add(Dropout({.rate = 0.1f}));
        m->add(Flatten());
        Rng init(5);
        m->build({3, 13, 11}, init);
        return m;
    };
    auto fused = build(), unfused = build();
    Rng rng(8);
    Tensor x({3, 3, 13, 11});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.0f, 1.0f);
    expect_same_training(*fused, *unfused, x);
}

// Which chains fuse: the output node of a Conv2D(relu) -> MaxPool2D -> Dropout model is the
// fused node; without ReLU, or with fusion off, it is the Dropout's own.
TEST(Sequential, FusionFindsConvReluPoolDropoutOnly) {
    const auto model = [](Activation a) {
        auto m = std::make_unique<Sequential>();
        m->add(Conv2D({.filters = 2, .kernel_size = 2, .activation = a}));
        m->add(MaxPool2D());
        m->add(Dropout({.rate = 0.5f}));
        Rng init(1);
        m->build({1, 6, 6}, init);
        return m;
    };
    const Var x(Tensor({2, 1, 6, 6}, 0.5f));
    EXPECT_EQ(model(Activation::ReLU)->forward(x).op(), "conv_block");
    EXPECT_EQ(model(Activation::None)->forward(x).op(), "dropout");
    auto off = model(Activation::ReLU);
    off->set_fuse(false);
    EXPECT_EQ(off->forward(x).op(), "dropout");
}
