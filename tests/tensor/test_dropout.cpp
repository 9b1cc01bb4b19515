// Tests of tensor/dropout.cpp: the mask's drop fraction and scale, the pair hash, determinism, bad
// rates.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/dropout.hpp"
#include "tensor/parallel.hpp"
#include "tensor/error.hpp"

using namespace semigrad;

TEST(DropoutMask, DropsTheRightFractionAndScalesTheRest) {
    for (float rate : {0.1f, 0.25f, 0.5f, 0.8f}) {
        Rng rng(7);
        const Tensor mask = dropout_mask({50, 40, 50}, rate, rng);
        ASSERT_EQ(mask.shape(), (Shape{50, 40, 50}));
        const float scale = 1.0f / (1.0f - rate);
        std::size_t zeros = 0;
        double sum = 0.0;
        for (std::size_t i = 0; i < mask.size(); ++i) {
            if (mask[i] == 0.0f)
                ++zeros;
            else
                ASSERT_EQ(mask[i], scale) << "rate " << rate << " element " << i;
            sum += mask[i];
        }
        const double n = double(mask.size());
        // 100000 Bernoulli draws: the standard deviation of the fraction is <= 0.0016.
        EXPECT_NEAR(double(zeros) / n, rate, 0.008) << "rate " << rate;
        // Inverted dropout keeps the expectation: mean(mask) ~ 1.
        EXPECT_NEAR(sum / n, 1.0, 0.03) << "rate " << rate;
    }
}

TEST(DropoutMask, RateZeroKeepsEverythingUnscaled) {
    Rng rng(1);
    const Tensor mask = dropout_mask({3, 5}, 0.0f, rng);
    for (std::size_t i = 0; i < mask.size(); ++i) EXPECT_EQ(mask[i], 1.0f);
}

TEST(DropoutMask, SameSeedSameMaskOtherSeedOtherMask) {
    Rng a(123), b(123), c(124);
    const Tensor ma = dropout_mask({1000}, 0.5f, a);
    const Tensor mb = dropout_mask({1000}, 0.5f, b);
    const Tensor mc = dropout_mask({1000}, 0.5f, c);
    EXPECT_EQ(max_abs_diff(ma, mb), 0.0f);
    std::size_t differ = 0;
    for (std::size_t i = 0; i < ma.size(); ++i) differ += ma[i] != mc[i];
    EXPECT_GT(differ, 400u);  // independent masks differ in about half the places
    // The generator advances: a second mask from the same Rng is a new one.
    const Tensor ma2 = dropout_mask({1000}, 0.5f, a);
    EXPECT_GT(max_abs_diff(ma, ma2), 0.0f);
}

TEST(DropoutMask, RejectsRatesOutsideZeroOne) {
    Rng rng(1);
    for (float rate : {-0.1f, 1.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
        try {
            dropout_mask({4}, rate, rng);
            ADD_FAILURE() << "no throw for rate " << rate;
        } catch (const ValueError& e) {
            EXPECT_NE(std::string(e.what()).find("dropout_mask"), std::string::npos) << e.what();
        }
    }
}

// The mask is a pure function of the generator state: the same for any thread count, and the
// generator advances by the same amount (one key) whatever the shape.
TEST(DropoutMask, SameMaskForAnyThreadCount) {
    const int before = num_threads();
    set_num_threads(1);
    Rng a(9);
    const Tensor one = dropout_mask({4, 64, 28, 28}, 0.3f, a);
    set_num_threads(2);
    Rng b(9);
    const Tensor two = dropout_mask({4, 64, 28, 28}, 0.3f, b);
    set_num_threads(before);
    EXPECT_EQ(max_abs_diff(one, two), 0.0f);
    EXPECT_EQ(a.next_u32(), b.next_u32());
}

// The mask of a batch slice that starts at global sample `offset` is that slice of the whole
// batch's mask (data-parallel processes draw one global mask between them); offset 0 and a key
// give what the generator overload gives when the generator yields that key.
TEST(DropoutMask, SliceWithSampleOffsetIsTheSliceOfTheWholeMask) {
    const std::uint64_t key = 0x0123456789abcdefULL;
    const Tensor whole = dropout_mask({6, 3, 5}, 0.4f, key);
    const Tensor slice = dropout_mask({2, 3, 5}, 0.4f, key, 4);
    for (std::size_t i = 0; i < slice.size(); ++i) ASSERT_EQ(slice[i], whole[4 * 15 + i]) << i;
    const Tensor at_zero = dropout_mask({2, 3, 5}, 0.4f, key, 0);
    EXPECT_GT(max_abs_diff(at_zero, slice), 0.0f);
    Rng a(5), b(5);
    const Tensor from_rng = dropout_mask({6, 3, 5}, 0.4f, a);
    EXPECT_EQ(max_abs_diff(from_rng, dropout_mask({6, 3, 5}, 0.4f, draw_dropout_key(b))), 0.0f);
}

// One SplitMix64 output decides a pair of elements: the even one by the top 24 bits of its high
// half, the odd one by those of its low half (tensor/dropout.hpp), written out here by hand for
// one key; and the two halves are independent draws: over 10^6 pairs at rate 0.3, both elements
// dropped in 0.09 of them (= 0.3^2; correlated halves would give more), each alone in 0.21.
TEST(DropoutMask, APairSharesOneOutputAndItsHalvesAreIndependent) {
    const std::uint64_t key = 0x0123456789abcdefULL;
    for (std::uint64_t pair : {0ull, 1ull, 5ull, 123456789ull}) {
        std::uint64_t z = key + (pair + 1) * 0x9E3779B97F4A7C15ULL;  // SplitMix64, by hand
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        EXPECT_EQ(dropout_hash(key, 2 * pair), std::uint32_t(z >> 40)) << pair;
        EXPECT_EQ(dropout_hash(key, 2 * pair + 1), std::uint32_t(z & 0xffffffffu) >> 8) << pair;
    }
    const std::uint32_t threshold = dropout_threshold(0.3f);
    std::size_t both = 0, even_only = 0, odd_only = 0;
    constexpr std::size_t pairs = 1000000;
    for (std::uint64_t q = 0; q < pairs; ++q) {
        const bool even = !dropout_keeps(key, 2 * q, threshold), odd = !dropout_keeps(key, 2 * q + 1, threshold);
        both += even && odd, even_only += even && !odd, odd_only += odd && !even;
    }
    // Binomial standard deviations: sqrt(0.09 * 0.91 / 10^6) = 0.0003, sqrt(0.21 * 0.79 / 10^6) = 0.0004.
    EXPECT_NEAR(double(both) / pairs, 0.09, 0.0015);
    EXPECT_NEAR(double(even_only) / pairs, 0.21, 0.002);
    EXPECT_NEAR(double(odd_only) / pairs, 0.21, 0.002);
}

// The integer drop test k >= ceil(rate * 2^24) is the float rule !(k / 2^24 < rate), checked at
// the threshold and its neighbours for many rates, including ones that are not multiples of 2^-24.
TEST(DropoutMask, IntegerThresholdIsTheFloatRule) {
    Rng rng(77);
    for (int t = 0; t < 2000; ++t) {
        const float rate = t == 0 ? 0.0f : t == 1 ? 0.3f : rng.uniform(0.0f, 0.999f);
        const std::uint32_t T = dropout_threshold(rate);
        for (std::int64_t k = std::int64_t(T) - 2; k <= std::int64_t(T) + 2; ++k) {
            if (k < 0 || k >= (1 << 24)) continue;
            const bool float_keeps = !(float(k) * (1.0f / 16777216.0f) < rate);
            ASSERT_EQ(std::uint64_t(k) >= T, float_keeps) << "rate " << rate << " k " << k;
        }
    }
    EXPECT_THROW(dropout_threshold(1.0f), ValueError);
}
