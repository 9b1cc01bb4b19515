// Batcher: every sample once per epoch, orders a pure function of (seed, epoch), the last
// partial batch kept, tf.data's shuffle buffer, limit, and batch contents.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "data/batcher.hpp"
#include "tensor/error.hpp"

using namespace semigrad;

namespace {

// `count` 2x3 images; pixel p of image i is (7i + p) mod 256, label i mod 10.
data::Dataset synthetic(std::size_t count) {
    data::Dataset d;
    d.count = count, d.rows = 2, d.cols = 3;
    for (std::size_t i = 0; i < count; ++i) {
        for (std::size_t p = 0; p < 6; ++p)
            d.images.push_back(static_cast<std::uint8_t>((7 * i + p) % 256));
        d.labels.push_back(static_cast<int>(i % 10));
    }
    d.images_path = "synthetic";
    return d;
}

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    return v;
}

bool is_permutation_of_first(std::vector<std::size_t> order, std::size_t n) {
    std::sort(order.begin(), order.end());
    return order == iota(n);
}

}  // namespace

TEST(Batcher, EveryEpochVisitsEverySampleOnceWithCorrectContents) {
    const data::Dataset d = synthetic(103);
    for (std::size_t buffer : {std::size_t{0}, std::size_t{16}}) {
        const data::Batcher batcher(d, 10, 42, buffer);
        EXPECT_EQ(batcher.num_samples(), 103u);
        ASSERT_EQ(batcher.num_batches(), 11u);
        for (std::size_t e = 0; e < 3; ++e) {
            std::vector<std::size_t> seen, sizes;
            for (const data::Batch& b : batcher.epoch(e)) {
                const std::size_t N = b.indices.size();
                sizes.push_back(N);
                ASSERT_EQ(b.images.shape(), (Shape{N, 1, 2, 3}));
                ASSERT_EQ(b.labels.size(), N);
                for (std::size_t n = 0; n < N; ++n) {
                    const std::size_t i = b.indices[n];
                    EXPECT_EQ(b.labels[n], d.labels[i]);
                    for (std::size_t p = 0; p < 6; ++p)
                        EXPECT_EQ(b.images[n * 6 + p],
                                  static_cast<float>((7 * i + p) % 256) / 255.0f);
                }
                seen.insert(seen.end(), b.indices.begin(), b.indices.end());
            }
            EXPECT_EQ(seen, batcher.epoch_order(e));
            EXPECT_TRUE(is_permutation_of_first(seen, 103));
            std::vector<std::size_t> expected_sizes(10, 10);
            expected_sizes.push_back(3);  // the last partial batch is kept
            EXPECT_EQ(sizes, expected_sizes);
        }
    }
}

TEST(Batcher, OrderIsAPureFunctionOfSeedAndEpoch) {
    const data::Dataset d = synthetic(50);
    for (std::size_t buffer : {std::size_t{0}, std::size_t{8}}) {
        const data::Batcher a(d, 8, 7, buffer), b(d, 8, 7, buffer), other_seed(d, 8, 8, buffer);
        // b asks for epoch 5 first: nothing carries over from earlier epochs.
        const auto b5 = b.epoch_order(5);
        for (std::size_t e = 0; e < 6; ++e) EXPECT_EQ(a.epoch_order(e), a.epoch_order(e));
        EXPECT_EQ(a.epoch_order(5), b5);
        EXPECT_NE(a.epoch_order(0), a.epoch_order(1));
        EXPECT_NE(a.epoch_order(1), a.epoch_order(2));
        EXPECT_NE(a.epoch_order(0), other_seed.epoch_order(0));
        EXPECT_NE(a.epoch_order(0), iota(50));
        // Batch size does not change the order, only how it is cut.
        EXPECT_EQ(data::Batcher(d, 3, 7, buffer).epoch_order(2), a.epoch_order(2));
    }
}

TEST(Batcher, ShuffleBufferFollowsTfData) {
    const data::Dataset d = synthetic(200);
    // A one-slot buffer cannot reorder anything.
    EXPECT_EQ(data::Batcher(d, 32, 1, 1).epoch_order(0), iota(200));
    for (std::size_t B : {2u, 7u, 64u, 1024u}) {
        const data::Batcher batcher(d, 32, 1, B);
        for (std::size_t e = 0; e < 4; ++e) {
            const auto order = batcher.epoch_order(e);
            EXPECT_TRUE(is_permutation_of_first(order, 200)) << "buffer " << B;
            // The t-th output was drawn from a buffer holding at most inputs 0..t+B-1.
            for (std::size_t t = 0; t < order.size(); ++t)
                ASSERT_LT(order[t], t + B) << "buffer " << B;
            EXPECT_NE(order, iota(200));
        }
    }
    // The buffer and full-permutation modes are different orders.
    EXPECT_NE(data::Batcher(d, 32, 1, 64).epoch_order(0),
              data::Batcher(d, 32, 1, 0).epoch_order(0));
}

// With n = 4 samples, over 4,000 epochs each sample leads about 1,000 times (binomial sd ~27),
// for the full permutation and for a buffer that holds every sample.
TEST(Batcher, FirstSampleIsUniform) {
    const data::Dataset d = synthetic(4);
    for (std::size_t buffer : {std::size_t{0}, std::size_t{4}}) {
        const data::Batcher batcher(d, 2, 3, buffer);
        std::vector<int> first(4);
        for (std::size_t e = 0; e < 4000; ++e) ++first[batcher.epoch_order(e)[0]];
        for (int c : first) EXPECT_NEAR(c, 1000, 150) << "buffer " << buffer;
    }
}

TEST(Batcher, LimitUsesOnlyTheFirstSamples) {
    const data::Dataset d = synthetic(100);
    const data::Batcher batcher(d, 8, 5, 0, 25);
    EXPECT_EQ(batcher.num_samples(), 25u);
    EXPECT_EQ(batcher.num_batches(), 4u);
    EXPECT_TRUE(is_permutation_of_first(batcher.epoch_order(3), 25));
    EXPECT_TRUE(is_permutation_of_first(data::Batcher(d, 8, 5, 10, 25).epoch_order(0), 25));
    EXPECT_EQ(data::Batcher(d, 8, 5, 0, 1000).num_samples(), 100u);
    std::size_t batches = 0;
    for (const data::Batch& b : batcher.epoch(0)) {
        ++batches;
        for (std::size_t i : b.indices) EXPECT_LT(i, 25u);
    }
    EXPECT_EQ(batches, 4u);
}

TEST(Batcher, RejectsBadArguments) {
    const data::Dataset d = synthetic(10);
    EXPECT_THROW(data::Batcher(d, 0, 1), ValueError);
    const data::Batcher batcher(d, 4, 1);
    const auto order = batcher.epoch_order(0);
    EXPECT_EQ(batcher.batch(order, 2).indices.size(), 2u);
    EXPECT_THROW(batcher.batch(order, 3), ValueError);
    const std::vector<std::size_t> short_order(order.begin(), order.begin() + 5);
    EXPECT_THROW(batcher.batch(short_order, 0), ValueError);
}

TEST(Batcher, EmptyDatasetHasNoBatches) {
    const data::Dataset d = synthetic(0);
    const data::Batcher batcher(d, 4, 1);
    EXPECT_EQ(batcher.num_batches(), 0u);
    EXPECT_TRUE(batcher.epoch_order(0).empty());
    for (const data::Batch& b : batcher.epoch(0)) ADD_FAILURE() << b.indices.size();
}
