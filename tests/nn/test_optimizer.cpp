// Adam and SGD against updates worked out by hand from Keras' formulas (nn/optimizer.hpp).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "autograd/functions.hpp"
#include "nn/optimizer.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace semigrad;
using namespace semigrad::nn;

namespace {

Parameter param(const std::string& name, std::vector<float> values) {
    const std::size_t n = values.size();
    return {name, Var(Tensor(Shape{n}, values), true)};
}

void set_grad(Parameter& p, std::vector<float> g) {
    p.var.zero_grad();
    p.var.accumulate_grad(Tensor(Shape{g.size()}, g));
}

}  // namespace

// lr 0.1, beta_1 0.5, beta_2 0.75, epsilon 1e-7; theta0 = 1; gradients 2, 1, -4.
//   t=1: m = 0.5*0 + 0.5*2 = 1;       v = 0.75*0 + 0.25*4 = 1
//        alpha = 0.1*sqrt(1-0.75)/(1-0.5) = 0.1;            theta = 1 - 0.1*1/(1+1e-7) = 0.90000001
//   t=2: m = 0.5*1 + 0.5*1 = 1;       v = 0.75*1 + 0.25*1 = 1
//        alpha = 0.1*sqrt(1-0.5625)/(1-0.25) = 0.0881917104; theta = 0.8118083085
//   t=3: m = 0.5*1 + 0.5*(-4) = -1.5; v = 0.75*1 + 0.25*16 = 4.75
//        alpha = 0.1*sqrt(1-0.421875)/(1-0.125) = 0.0868966076
//        theta = 0.8118083085 + 0.0868966076*1.5/sqrt(4.75) = 0.8716146527
// The second element has gradient 0 throughout and must not move (m = v = 0, update 0/eps = 0).
TEST(Adam, FirstThreeStepsByHand) {
    Parameter w = param("w", {1.0f, 5.0f});
    Adam adam({w}, {.learning_rate = 0.1f, .beta_1 = 0.5f, .beta_2 = 0.75f, .epsilon = 1e-7f});
    ASSERT_EQ(adam.slot_names(), (std::vector<std::string>{"m", "v"}));
    const float grads[3] = {2.0f, 1.0f, -4.0f};
    const float m[3] = {1.0f, 1.0f, -1.5f}, v[3] = {1.0f, 1.0f, 4.75f};
    const float theta[3] = {0.90000001f, 0.8118083085f, 0.8716146527f};
    for (int t = 0; t < 3; ++t) {
        set_grad(w, {grads[t], 0.0f});
        adam.step();
        EXPECT_EQ(adam.iterations(), t + 1);
        EXPECT_NEAR(adam.slot(0, 0)[0], m[t], 1e-6) << "m at t=" << t + 1;
        EXPECT_NEAR(adam.slot(1, 0)[0], v[t], 1e-6) << "v at t=" << t + 1;
        EXPECT_NEAR(w.var.value()[0], theta[t], 1e-6) << "theta at t=" << t + 1;
        EXPECT_EQ(w.var.value()[1], 5.0f);
        EXPECT_EQ(adam.slot(0, 0)[1], 0.0f);
        EXPECT_EQ(adam.slot(1, 0)[1], 0.0f);
    }
}

// With Keras' defaults the first step moves every weight by lr * sign(g), shortened by epsilon:
// m = 0.1 g, v = 0.001 g^2, alpha = lr*sqrt(0.001)/0.1, so alpha*m/(sqrt(v) + eps)
// = lr * sign(g) / (1 + eps/sqrt(v)), where sqrt(v) = 0.0316 |g|.
TEST(Adam, FirstStepWithKerasDefaultsIsLearningRateTimesSign) {
    Parameter w = param("w", {0.5f, -0.5f, 2.0f});
    Adam adam({w});
    EXPECT_FLOAT_EQ(adam.learning_rate(), 0.001f);
    EXPECT_FLOAT_EQ(adam.options().epsilon, 1e-7f);
    set_grad(w, {3.0f, -0.02f, 1e-3f});
    adam.step();
    EXPECT_NEAR(w.var.value()[0], 0.5f - 0.001f, 1e-7);
    // |g| = 0.02: sqrt(v) = 6.32e-4, so epsilon shortens the step by a factor 1 + 1e-7/6.32e-4.
    EXPECT_NEAR(w.var.value()[1], -0.5f + 0.001f / (1.0f + 1e-7f / 6.32455532e-4f), 6e-8);
    // |g| = 1e-3: sqrt(v) = 3.16e-5, so epsilon (1e-7) is visible: step = 0.001 / (1 + 1e-7/3.16e-5).
    EXPECT_NEAR(w.var.value()[2], 2.0f - 0.001f / (1.0f + 1e-7f / 3.16227766e-5f), 3e-7);
    EXPECT_GT(w.var.value()[2], 2.0f - 0.001f + 2e-6f);  // epsilon really is there
}

// lr 0.1, Keras' betas; a gets gradient 1 once: m = 0.1, v = 0.001, alpha =
// 0.1*sqrt(0.001)/0.1, theta = 1 - 0.1/(1 + 1e-7/0.0316228) = 0.9000003. step() drops the
// gradient it read, so the second step skips a as it skips b, which never had one.
TEST(Adam, ParameterWithoutGradientIsSkippedButTheCounterAdvancesOncePerStep) {
    Parameter a = param("a", {1.0f}), b = param("b", {2.0f, 3.0f});
    Adam adam({a, b}, {.learning_rate = 0.1f});
    set_grad(a, {1.0f});
    adam.step();
    EXPECT_NEAR(a.var.value()[0], 0.9000003f, 1e-6);
    EXPECT_FALSE(a.var.has_grad());  // read and dropped: the next backward writes a new one
    adam.step();
    EXPECT_EQ(adam.iterations(), 2);
    EXPECT_NEAR(a.var.value()[0], 0.9000003f, 1e-6);
    EXPECT_EQ(adam.slot(0, 0)[0], 1.0f - 0.9f);  // m = (1 - beta_1) g, untouched by the skip
    EXPECT_EQ(b.var.value()[0], 2.0f);
    EXPECT_EQ(b.var.value()[1], 3.0f);
    EXPECT_EQ(adam.slot(0, 1)[0], 0.0f);
    EXPECT_EQ(adam.slot(1, 1)[1], 0.0f);
}

// The step's one-pass kernel against the formula written out, bit for bit, in every variant this
// CPU runs (nn/adam_kernel.hpp): all perform the same float operations in the same order on each
// element. Sizes cover the vector loops' tails and, above kParallelMinElements, the parallel
// split; gradients span magnitudes where epsilon matters and where it does not, zeros and signs.
TEST(Adam, OnePassUpdateEqualsTheReadableFormulaBitForBit) {
    Rng rng(5);
    for (std::size_t n : {1u, 3u, 8u, 17u, 33u, 1000u, 40001u}) {
        std::vector<float> theta(n), m(n), v(n), g(n);
        for (std::size_t j = 0; j < n; ++j) {
            theta[j] = rng.uniform(-1.0f, 1.0f);
            m[j] = 0.01f * rng.uniform(-1.0f, 1.0f);
            v[j] = 1e-4f * rng.uniform();
            g[j] = j % 5 == 0 ? 0.0f : std::ldexp(rng.uniform(-1.0f, 1.0f), -int(j % 24));
        }
        for (const AdamScalars s : {AdamScalars{0.0316228f, 0.9f, 0.999f, 1e-7f},
                                    AdamScalars{0.1f, 0.5f, 0.75f, 1e-3f}}) {
            const std::vector<float> theta0 = theta, m0 = m, v0 = v;
            adam_update_readable(theta.data(), m.data(), v.data(), g.data(), n, s);
            for (const Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
                if (!cpu_runs(isa)) continue;
                SCOPED_TRACE(isa_name(isa));
                std::vector<float> theta2 = theta0, m2 = m0, v2 = v0;
                EXPECT_TRUE(adam_update(theta2.data(), m2.data(), v2.data(), g.data(), n, s, isa));
                for (std::size_t j = 0; j < n; ++j) {
                    ASSERT_EQ(std::bit_cast<std::uint32_t>(theta[j]), std::bit_cast<std::uint32_t>(theta2[j]))
                        << "theta, n " << n << " j " << j << ": " << theta[j] << " vs " << theta2[j];
                    ASSERT_EQ(std::bit_cast<std::uint32_t>(m[j]), std::bit_cast<std::uint32_t>(m2[j]));
                    ASSERT_EQ(std::bit_cast<std::uint32_t>(v[j]), std::bit_cast<std::uint32_t>(v2[j]));
                }
            }
        }
    }
}

// step() says whether every value it wrote is finite, so a trainer needs no scan of its own. One
// bad gradient (NaN, +inf, -inf) at the first, a middle and the last element, in a parameter
// small enough for one thread and one above kParallelMinElements (the parallel reduction), in
// either parameter of two, for Adam and SGD. A value the step did not write is not its concern:
// a parameter without a gradient keeps whatever it holds.
TEST(Optimizers, LastStepFiniteSeesEveryNonFiniteValueTheStepWrote) {
    const float bad_values[] = {std::nanf(""), INFINITY, -INFINITY};
    for (const bool use_adam : {true, false}) {
        for (const std::size_t n : {std::size_t(5), kParallelMinElements * 2 + 3}) {
            for (const std::size_t where : {std::size_t(0), n / 2, n - 1}) {
                for (const float bad : bad_values) {
                    for (const int which : {0, 1}) {
                        Parameter a = param("a", std::vector<float>(n, 0.5f));
                        Parameter b = param("b", std::vector<float>(n, -0.5f));
                        Adam adam({a, b});
                        SGD sgd({a, b}, {.momentum = 0.9f});
                        Optimizer& opt = use_adam ? static_cast<Optimizer&>(adam) : sgd;
                        EXPECT_TRUE(opt.last_step_finite());  // before any step
                        std::vector<float> good(n, 0.25f), poisoned(n, 0.25f);
                        poisoned[where] = bad;
                        set_grad(a, which == 0 ? poisoned : good);
                        set_grad(b, which == 1 ? poisoned : good);
                        opt.step();
                        EXPECT_FALSE(opt.last_step_finite())
                            << (use_adam ? "Adam" : "SGD") << " n " << n << " at " << where
                            << " value " << bad << " in parameter " << which;
                        set_grad(a, good);
                        set_grad(b, good);
                        opt.step();  // the bad value stays: NaN and inf are absorbing here
                        EXPECT_FALSE(opt.last_step_finite());
                    }
                }
            }
            // All finite: true; and a parameter that holds NaN but has no gradient is not written.
            Parameter a = param("a", std::vector<float>(n, 0.5f));
            Parameter idle = param("idle", std::vector<float>(n, std::nanf("")));
            Adam adam({a, idle});
            SGD sgd({a, idle});
            Optimizer& opt = use_adam ? static_cast<Optimizer&>(adam) : sgd;
            set_grad(a, std::vector<float>(n, -1e-3f));
            opt.step();
            EXPECT_TRUE(opt.last_step_finite()) << (use_adam ? "Adam" : "SGD") << " n " << n;
        }
    }
}

// Training without zero_grad() between steps (step() drops what it read) gives the bits of
// training that calls it before every backward, and the gradients are gone after each step.
TEST(Adam, StepDropsTheGradientsAsZeroGradWould) {
    const auto train = [](bool drop) {
        Rng rng(11);
        Tensor x({4, 3}), k({3, 2}), bias({2});
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.0f, 1.0f);
        for (std::size_t i = 0; i < k.size(); ++i) k[i] = rng.uniform(-1.0f, 1.0f);
        Parameter kp{"kernel", Var(k, true)}, bp{"bias", Var(bias, true)};
        Adam adam({kp, bp}, {.learning_rate = 0.05f});
        for (int step = 0; step < 4; ++step) {
            if (drop) adam.zero_grad();
            const Var y = dense(Var(x), kp.var, bp.var);
            backward(sum(mul(y, y)));
            adam.step();
            EXPECT_FALSE(kp.var.has_grad() || bp.var.has_grad());
        }
        std::vector<float> out(kp.var.value().data(), kp.var.value().data() + 6);
        out.insert(out.end(), bp.var.value().data(), bp.var.value().data() + 2);
        return out;
    };
    const std::vector<float> kept = train(false), dropped = train(true);
    for (std::size_t i = 0; i < kept.size(); ++i)
        EXPECT_EQ(std::bit_cast<std::uint32_t>(kept[i]), std::bit_cast<std::uint32_t>(dropped[i])) << i;
    EXPECT_NE(kept[0], 0.0f);
}

TEST(Adam, StateIsIndexAlignedWithParameters) {
    Parameter a = param("a", {1.0f}), b = param("b", {2.0f, 3.0f, 4.0f});
    Adam adam({a, b});
    ASSERT_EQ(adam.parameters().size(), 2u);
    EXPECT_EQ(adam.parameters()[1].name, "b");
    EXPECT_EQ(adam.slot(0, 1).shape(), b.var.shape());
    EXPECT_EQ(adam.slot(1, 0).shape(), a.var.shape());
}

TEST(Adam, RejectsBadArguments) {
    Parameter a = param("a", {1.0f});
    EXPECT_THROW(Adam({a}, {.learning_rate = 0.0f}), ValueError);
    EXPECT_THROW(Adam({a}, {.beta_1 = 1.0f}), ValueError);
    EXPECT_THROW(Adam({a}, {.beta_2 = -0.1f}), ValueError);
    EXPECT_THROW(Adam({a, a}), ValueError);  // duplicate name
}

// lr 0.1, momentum 0.9, theta0 = 1, gradients 1 then 2.
//   heavy ball: v1 = -0.1, theta1 = 0.9;  v2 = 0.9*(-0.1) - 0.2 = -0.29, theta2 = 0.61
//   nesterov:   v1 = -0.1, theta1 = 1 + 0.9*(-0.1) - 0.1 = 0.81
//               v2 = -0.29, theta2 = 0.81 + 0.9*(-0.29) - 0.2 = 0.349
//   plain:      theta1 = 0.9, theta2 = 0.7
TEST(SGD, MomentumAndNesterovByHand) {
    struct Case {
        SGDOptions o;
        float theta1, theta2, v1, v2;
    };
    const Case cases[] = {
        {{.learning_rate = 0.1f, .momentum = 0.9f}, 0.9f, 0.61f, -0.1f, -0.29f},
        {{.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true}, 0.81f, 0.349f, -0.1f, -0.29f},
    };
    for (const Case& c : cases) {
        Parameter w = param("w", {1.0f});
        SGD sgd({w}, c.o);
        ASSERT_EQ(sgd.slot_names(), (std::vector<std::string>{"momentum"}));
        set_grad(w, {1.0f});
        sgd.step();
        EXPECT_NEAR(w.var.value()[0], c.theta1, 1e-6) << "nesterov " << c.o.nesterov;
        EXPECT_NEAR(sgd.slot(0, 0)[0], c.v1, 1e-6);
        set_grad(w, {2.0f});
        sgd.step();
        EXPECT_NEAR(w.var.value()[0], c.theta2, 1e-6) << "nesterov " << c.o.nesterov;
        EXPECT_NEAR(sgd.slot(0, 0)[0], c.v2, 1e-6);
        EXPECT_EQ(sgd.iterations(), 2);
    }
}

TEST(SGD, PlainHasNoSlotsAndStepsAgainstTheGradient) {
    Parameter w = param("w", {1.0f, -1.0f});
    SGD sgd({w}, {.learning_rate = 0.1f});
    EXPECT_TRUE(sgd.slot_names().empty());
    set_grad(w, {1.0f, -3.0f});
    sgd.step();
    set_grad(w, {2.0f, 0.5f});
    sgd.step();
    EXPECT_NEAR(w.var.value()[0], 0.7f, 1e-6);
    EXPECT_NEAR(w.var.value()[1], -1.0f + 0.3f - 0.05f, 1e-6);
    EXPECT_THROW(SGD({w}, {.momentum = -0.5f}), ValueError);
    EXPECT_THROW(sgd.set_learning_rate(-1.0f), ValueError);
}
