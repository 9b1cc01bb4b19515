// The trainer's evaluation: the timed test embedding and the streamed 1-NN accuracy against the
// training set (evaluation.hpp).
#include "examples/evaluation.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

#include "examples/data_parallel.hpp"
#include "metrics/retrieval.hpp"

namespace semigrad::examples {

TestEmbeddings embed_test_set(nn::Sequential& model, const data::Dataset& test, std::size_t count,
                              std::size_t chunk, const distributed::Communicator& comm) {
    const auto start = std::chrono::steady_clock::now();
    TestEmbeddings out;
    out.embeddings = embed_sharded(model, test, 0, count, chunk, comm);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.images_per_second = seconds > 0 ? double(count) / seconds : 0.0;
    return out;
}

float nearest_train_accuracy(nn::Sequential& model, const data::Dataset& train,
                             std::size_t train_count, const Tensor& test_embeddings,
                             std::span<const int> test_labels, std::size_t chunk,
                             const distributed::Communicator& comm, std::size_t block) {
    std::optional<metrics::KnnAccuracy> accuracy;
    if (comm.is_root()) accuracy.emplace(test_embeddings, test_labels, 1);
    for (std::size_t begin = 0; begin < train_count; begin += block) {
        const std::size_t end = std::min(train_count, begin + block);
        // When `chunk` divides `block` (the trainer's 32 divides 4096), one process embeds every
        // image in the same chunk as when the whole set was embedded at once: the same bits.
        const Tensor embedded = embed_sharded(model, train, begin, end, chunk, comm);
        if (accuracy)
            accuracy->add(embedded, std::span<const int>(train.labels.data() + begin, end - begin));
    }
    return accuracy ? accuracy->result() : 0.0f;
}

}  // namespace semigrad::examples
