// Whole loops: a small model learns a tiny synthetic problem with Adam (and SGD), and a run
// that is checkpointed, reloaded into a fresh model and optimiser, and continued is bit-identical
// to one that never stopped, dropout masks included.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "autograd/functions.hpp"
#include "nn/checkpoint.hpp"
#include "nn/layers.hpp"
#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"

using namespace semigrad;
using namespace semigrad::nn;
namespace fs = std::filesystem;

namespace {

Var mse(const Var& y, const Tensor& target) {
    const Var diff = sub(y, Var(target));
    return mean(mul(diff, diff));
}

// Images [N,1,8,8] and targets [N,2]: (top half - bottom half, left half - right half) brightness.
void synthetic_batch(std::size_t N, std::uint64_t seed, Tensor& x, Tensor& target) {
    Rng rng(seed);
    x = Tensor(Shape{N, 1, 8, 8});
    target = Tensor(Shape{N, 2});
    for (std::size_t n = 0; n < N; ++n) {
        double vertical = 0, horizontal = 0;
        for (std::size_t h = 0; h < 8; ++h)
            for (std::size_t w = 0; w < 8; ++w) {
                const float v = rng.uniform();
                x.at({n, 0, h, w}) = v;
                vertical += h < 4 ? v : -v;
                horizontal += w < 4 ? v : -v;
            }
        target.at({n, 0}) = float(vertical / 8);
        target.at({n, 1}) = float(horizontal / 8);
    }
}

Sequential small_model(std::uint64_t seed, bool with_dropout) {
    Sequential model;
    model.add(Conv2D({.filters = 4, .kernel_size = 2, .padding = Padding::Same,
                      .activation = Activation::ReLU}));
    model.add(MaxPool2D());
    if (with_dropout) model.add(Dropout({.rate = 0.3f}));
    model.add(Flatten());
    model.add(Dense({.units = 2}));
    Rng init(seed);
    model.build({1, 8, 8}, init);
    return model;
}

float train_steps(Sequential& model, Optimizer& opt, int steps, const Tensor& x, const Tensor& target) {
    float loss = 0;
    for (int s = 0; s < steps; ++s) {
        opt.zero_grad();
        const Var l = mse(model.forward(Var(x)), target);
        backward(l);
        opt.step();
        loss = l.value().item();
    }
    return loss;
}

}  // namespace

TEST(Training, AdamLearnsASmallProblem) {
    Sequential model = small_model(1, false);
    Adam adam(model.parameters(), {.learning_rate = 0.01f});
    Tensor x, target;
    synthetic_batch(32, 2, x, target);
    const float initial = mse(model.forward(Var(x)), target).value().item();
    const float final_loss = train_steps(model, adam, 150, x, target);
    EXPECT_LT(final_loss, 0.1f * initial) << "initial " << initial << ", final " << final_loss;
    // It generalises to fresh images of the same kind, not just the batch it saw.
    Tensor x2, t2;
    synthetic_batch(32, 3, x2, t2);
    model.train(false);
    EXPECT_LT(mse(model.forward(Var(x2)), t2).value().item(), 0.3f * initial);
}

TEST(Training, SGDWithMomentumLearnsASmallProblem) {
    Sequential model = small_model(1, false);
    SGD sgd(model.parameters(), {.learning_rate = 0.05f, .momentum = 0.9f});
    Tensor x, target;
    synthetic_batch(32, 2, x, target);
    const float initial = mse(model.forward(Var(x)), target).value().item();
    const float final_loss = train_steps(model, sgd, 150, x, target);
    EXPECT_LT(final_loss, 0.2f * initial) << "initial " << initial << ", final " << final_loss;
}

// One step per batch; batch s is a function of s only, as an epoch-seeded data loader would give.
std::vector<float> run(Sequential& model, Optimizer& opt, int from, int to) {
    std::vector<float> losses;
    for (int s = from; s < to; ++s) {
        Tensor x, target;
        synthetic_batch(8, 100 + s, x, target);
        opt.zero_grad();
        const Var l = mse(l2_normalize(model.forward(Var(x))), target);
        backward(l);
        opt.step();
        losses.push_back(l.value().item());
    }
    return losses;
}

TEST(Training, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
    const fs::path dir = fs::temp_directory_path() / ("semigrad_resume_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string path = (dir / "run.ckpt").string();

    Sequential never_stopped = small_model(42, true);
    Adam adam(never_stopped.parameters());
    std::vector<float> losses = run(never_stopped, adam, 0, 3);
    save_checkpoint(path, never_stopped, adam, {{"step", 3}, {"seed", 42}});
    const std::vector<float> tail = run(never_stopped, adam, 3, 7);

    Sequential resumed = small_model(777, true);  // other seed: every weight and mask differs
    Adam resumed_adam(resumed.parameters());
    const auto meta = load_checkpoint(path, resumed, resumed_adam);
    EXPECT_EQ(meta.at("step"), MetaValue(std::int64_t{3}));
    EXPECT_EQ(resumed_adam.iterations(), 3);
    const std::vector<float> resumed_tail = run(resumed, resumed_adam, 3, 7);

    EXPECT_EQ(resumed_tail, tail);  // exact float equality, step by step
    const auto a = never_stopped.parameters(), b = resumed.parameters();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(max_abs_diff(a[i].var.value(), b[i].var.value()), 0.0f) << a[i].name;
    for (std::size_t k = 0; k < 2; ++k)
        for (std::size_t i = 0; i < a.size(); ++i)
            EXPECT_EQ(max_abs_diff(adam.slot(k, i), resumed_adam.slot(k, i)), 0.0f);
    // The dropout generator really was part of it: without restoring it the run diverges.
    Sequential other = small_model(777, true);
    Adam other_adam(other.parameters());
    load_checkpoint(path, other, other_adam);
    other.generators()[0].rng->next_u32();
    EXPECT_NE(run(other, other_adam, 3, 7), tail);
    fs::remove_all(dir);
}
