// softmax_cross_entropy: values by hand, stability at large logits, gradient by central
// differences, bad labels.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/var.hpp"
#include "grad_helpers.hpp"
#include "losses/cross_entropy.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::losses;
using namespace semigrad::losses::testing;

TEST(SoftmaxCrossEntropy, ValuesByHand) {
    // Uniform logits: log K. Row 2: -log softmax = log(e^1 + e^2 + e^3) - 3.
    Var logits(Tensor({2, 3}, {0.0f, 0.0f, 0.0f, 1.0f, 2.0f, 3.0f}));
    const std::vector<int> labels = {1, 2};
    const double row1 = std::log(3.0), row2 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
    EXPECT_NEAR(softmax_cross_entropy(logits, labels).value().item(), (row1 + row2) / 2, 1e-6);
}

TEST(SoftmaxCrossEntropy, StableForHugeLogits) {
    Var logits(Tensor({1, 2}, {1000.0f, 0.0f}));
    EXPECT_NEAR(softmax_cross_entropy(logits, std::vector<int>{1}).value().item(), 1000.0f, 1e-3);
    EXPECT_NEAR(softmax_cross_entropy(logits, std::vector<int>{0}).value().item(), 0.0f, 1e-6);
}

TEST(SoftmaxCrossEntropy, GradientMatchesCentralDifferences) {
    Rng rng(5);
    const Tensor z = random_normal(5, 4, rng);
    const std::vector<int> labels = {3, 0, 1, 1, 2};
    Var logits(z, true);
    backward(softmax_cross_entropy(logits, labels));
    const Tensor numeric = numeric_gradient(
        [&](const Tensor& probe) { return softmax_cross_entropy(Var(probe), labels).value().item(); }, z, 1e-2f);
    EXPECT_LT(scaled_error(logits.grad(), numeric, 1e-4, 1e-3), 1.0);
    // Each row of (softmax - onehot) / B sums to 0.
    for (std::size_t b = 0; b < 5; ++b) {
        double s = 0;
        for (std::size_t k = 0; k < 4; ++k) s += logits.grad()[b * 4 + k];
        EXPECT_NEAR(s, 0.0, 1e-7);
    }
}

TEST(SoftmaxCrossEntropy, RejectsBadLabelsAndShapes) {
    Var logits(Tensor({2, 3}));
    try {
        softmax_cross_entropy(logits, std::vector<int>{0, 3});
        FAIL() << "expected ValueError";
    } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("label 3 at index 1 is outside [0, 3)"), std::string::npos) << e.what();
    }
    EXPECT_THROW(softmax_cross_entropy(logits, std::vector<int>{0, -1}), ValueError);
    EXPECT_THROW(softmax_cross_entropy(logits, std::vector<int>{0}), ShapeError);
    EXPECT_THROW(softmax_cross_entropy(Var(Tensor({6})), std::vector<int>{0}), ShapeError);
}
