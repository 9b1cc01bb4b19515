// Glorot-uniform initialisation: Keras' fans, the limit, and the distribution it draws.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/init.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::nn;

TEST(Init, FansFollowKerasReceptiveFieldRule) {
    // Conv kernel [OC=64, C=1, 2, 2]: fan_in = 2*2*1 = 4, fan_out = 2*2*64 = 256.
    Fans conv = kernel_fans({64, 1, 2, 2});
    EXPECT_EQ(conv.fan_in, 4u);
    EXPECT_EQ(conv.fan_out, 256u);
    Fans conv2 = kernel_fans({32, 64, 2, 2});
    EXPECT_EQ(conv2.fan_in, 256u);
    EXPECT_EQ(conv2.fan_out, 128u);
    Fans dense = kernel_fans({1568, 256});
    EXPECT_EQ(dense.fan_in, 1568u);
    EXPECT_EQ(dense.fan_out, 256u);
    EXPECT_THROW(kernel_fans({3, 3, 3}), ShapeError);
}

TEST(Init, GlorotLimit) {
    EXPECT_FLOAT_EQ(glorot_limit({4, 256}), std::sqrt(6.0f / 260.0f));
    EXPECT_FLOAT_EQ(glorot_limit({1568, 256}), std::sqrt(6.0f / 1824.0f));
    EXPECT_THROW(glorot_limit({0, 0}), ValueError);
}

TEST(Init, GlorotUniformStaysInsideTheLimitWithTheRightMoments) {
    const Fans fans{300, 200};
    const float limit = std::sqrt(6.0f / 500.0f);
    Tensor t(Shape{300, 200});
    Rng rng(7);
    glorot_uniform(t, fans, rng);
    double sum = 0, sum2 = 0;
    float lo = limit, hi = -limit;
    for (std::size_t i = 0; i < t.size(); ++i) {
        sum += t[i];
        sum2 += double(t[i]) * t[i];
        lo = std::min(lo, t[i]);
        hi = std::max(hi, t[i]);
    }
    const double n = double(t.size()), mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_GE(lo, -limit);
    EXPECT_LT(hi, limit);
    // Both ends are reached (60,000 draws: the gap to either end is ~limit/30,000).
    EXPECT_LT(lo, -0.999f * limit);
    EXPECT_GT(hi, 0.999f * limit);
    // Var U(-l, l) = l^2 / 3 = 2 / (fan_in + fan_out) = 0.004; mean 0 (std error ~2.6e-4).
    EXPECT_NEAR(mean, 0.0, 1.5e-3);
    EXPECT_NEAR(var, 2.0 / 500.0, 0.02 * 2.0 / 500.0);
}

TEST(Init, SameSeedSameWeights) {
    Tensor a(Shape{5, 7}), b(Shape{5, 7});
    Rng r1(3), r2(3), r3(4);
    glorot_uniform(a, {5, 7}, r1);
    glorot_uniform(b, {5, 7}, r2);
    EXPECT_EQ(max_abs_diff(a, b), 0.0f);
    glorot_uniform(b, {5, 7}, r3);
    EXPECT_GT(max_abs_diff(a, b), 0.0f);
}
