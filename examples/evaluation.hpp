// The trainer's evaluation: model.predict() on the test set, timed, and the test set's 1-NN
// accuracy against the training set, with the training set streamed through the model.
//
// Memory is the point of this file. Holding the training embeddings would cost 60,000 x 256
// floats (61 MB for Fashion-MNIST, more than the whole uint8 dataset); instead the training set
// is embedded kReferenceBlock images at a time and each block is merged into every test
// query's nearest neighbour so far (metrics::KnnAccuracy), then dropped. The forward runs in
// chunks of `chunk` images without a graph, so its activations stay small and cache-sized.
//
// Under mpirun every process embeds its share of each block (examples/data_parallel.hpp's
// embed_sharded); rank 0 ranks, the others return 0.
#pragma once

#include <cstddef>
#include <span>

#include "data/idx.hpp"
#include "distributed/communicator.hpp"
#include "nn/sequential.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::examples {

// Training images embedded per block: KnnAccuracy's own block height, so each block goes
// straight into one set of distance gemms (4 MB of embeddings at D = 256).
inline constexpr std::size_t kReferenceBlock = 4096;

struct TestEmbeddings {
    Tensor embeddings;             // [count, D], every process
    double images_per_second = 0;  // the forward alone: images_to_tensor + model, no graph
};

// The first `count` images of `test`, embedded in chunks of `chunk` and timed.
TestEmbeddings embed_test_set(nn::Sequential& model, const data::Dataset& test, std::size_t count,
                              std::size_t chunk, const distributed::Communicator& comm);

// Fraction of the test embeddings [M,D] (labels M) whose nearest training embedding, among the
// first `train_count` images of `train`, has their label (ties to the earlier training image):
// metrics::knn_accuracy(test, labels, embed(train), train labels, 1) without holding
// embed(train), only `block` rows of it at a time. Rank 0's result; 0 on the others.
float nearest_train_accuracy(nn::Sequential& model, const data::Dataset& train,
                             std::size_t train_count, const Tensor& test_embeddings,
                             std::span<const int> test_labels, std::size_t chunk,
                             const distributed::Communicator& comm,
                             std::size_t block = kReferenceBlock);

}  // namespace semigrad::examples
