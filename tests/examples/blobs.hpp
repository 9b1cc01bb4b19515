// Gaussian blobs: the labelled test data of the t-SNE and UMAP tests.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::testing {

struct Blobs {
    Tensor x;
    std::vector<int> labels;
};

// `clusters` Gaussian blobs of unit variance in D dimensions, centres drawn from N(0, 16 I):
// centres are ~sqrt(2 * 16 * D) apart, points ~sqrt(2 D) from each other within a blob.
inline Blobs make_blobs(std::size_t clusters, std::size_t per_cluster, std::size_t D, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<float> centres(clusters * D);
    for (float& c : centres) c = 4.0f * rng.normal();
    Blobs b{Tensor({clusters * per_cluster, D}), {}};
    for (std::size_t i = 0; i < clusters * per_cluster; ++i) {
        const std::size_t k = i % clusters;  // interleaved, so no structure hides in the order
        b.labels.push_back(int(k));
        for (std::size_t d = 0; d < D; ++d) b.x[i * D + d] = centres[k * D + d] + rng.normal();
    }
    return b;
}

}  // namespace semigrad::testing
