#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/random.hpp"

using namespace semigrad;

// The reference PCG32 demo (pcg32-global-demo) seeds with (42, 54) and prints these outputs.
TEST(Rng, MatchesReferencePcg32Stream) {
    Rng rng(42, 54);
    const std::uint32_t expected[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
                                       0x83d2f293, 0xbfa4784b, 0xcbed606e};
    for (std::uint32_t e : expected) EXPECT_EQ(rng.next_u32(), e);
}

TEST(Rng, SameSeedSameStreamOtherSeedOtherStream) {
    Rng a(1), b(1), c(2);
    int differ = 0;
    for (int i = 0; i < 100; ++i) {
        const auto x = a.next_u32();
        EXPECT_EQ(x, b.next_u32());
        differ += x != c.next_u32();
    }
    EXPECT_GT(differ, 95);
}

TEST(Rng, StateRoundTripContinuesStream) {
    Rng a(3);
    for (int i = 0; i < 10; ++i) a.next_u32();
    Rng b(999);
    b.set_state(a.state());
    for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u32(), b.next_u32());
}

TEST(Rng, DistributionsHaveTheRightMoments) {
    Rng rng(5);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    int bern = 0;
    for (int i = 0; i < n; ++i) {
        const float u = rng.uniform();
        ASSERT_GE(u, 0.0f);
        ASSERT_LT(u, 1.0f);
        su += u;
        const float z = rng.normal();
        sn += z, sn2 += double(z) * z;
        bern += rng.bernoulli(0.3f);
    }
    EXPECT_NEAR(su / n, 0.5, 0.005);
    EXPECT_NEAR(sn / n, 0.0, 0.01);
    EXPECT_NEAR(sn2 / n, 1.0, 0.01);
    EXPECT_NEAR(double(bern) / n, 0.3, 0.005);
}

TEST(Rng, BelowIsUniformAndPermutationIsAPermutation) {
    Rng rng(11);
    std::vector<int> counts(7, 0);
    for (int i = 0; i < 70000; ++i) counts[rng.below(7)]++;
    for (int c : counts) EXPECT_NEAR(c, 10000, 400);
    auto p = rng.permutation(1000);
    std::vector<std::size_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], i);
    EXPECT_NE(p, sorted);
}
