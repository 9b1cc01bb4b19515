// Batcher: epoch orders from per-epoch generator streams, and batch assembly.
#include "data/batcher.hpp"

#include <algorithm>

#include "tensor/error.hpp"
#include "tensor/profile.hpp"
#include "tensor/random.hpp"

namespace semigrad::data {

Batcher::Batcher(const Dataset& d, std::size_t batch_size, std::uint64_t seed,
                 std::size_t shuffle_buffer, std::size_t limit)
    : dataset_(&d),
      batch_size_(batch_size),
      num_samples_(limit == 0 ? d.count : std::min(limit, d.count)),
      shuffle_buffer_(shuffle_buffer),
      seed_(seed) {
    if (batch_size == 0)
        throw ValueError("Batcher: batch_size must be > 0 (" + d.images_path + ")");
}

std::vector<std::size_t> Batcher::epoch_order(std::size_t epoch) const {
    // Each epoch draws from its own PCG stream of the user's seed, so epoch e needs no state
    // from epochs before it. The offset ("batch") keeps these streams apart from Rng's default
    // stream, which the model's initialiser uses with the same seed.
    Rng rng(seed_, 0x6261746368ULL + epoch);  // "batch"
    const std::size_t n = num_samples_;
    if (shuffle_buffer_ == 0) return rng.permutation(n);

    // tf.data ShuffleDataset: fill the buffer in input order, then repeatedly emit a uniformly
    // chosen slot and refill it with the next input; once the input is exhausted, the buffer
    // drains (the emitted slot takes the last element's place).
    std::vector<std::size_t> order, buffer;
    order.reserve(n);
    std::size_t next = 0;
    while (next < n && buffer.size() < shuffle_buffer_) buffer.push_back(next++);
    while (!buffer.empty()) {
        const std::size_t j = rng.below(static_cast<std::uint32_t>(buffer.size()));
        order.push_back(buffer[j]);
        if (next < n) {
            buffer[j] = next++;
        } else {
            buffer[j] = buffer.back();
            buffer.pop_back();
        }
    }
    return order;
}

Batch Batcher::batch(std::span<const std::size_t> order, std::size_t i) const {
    if (i >= num_batches() || order.size() != num_samples_)
        throw ValueError("Batcher::batch: batch " + std::to_string(i) + " of an order of " +
                         std::to_string(order.size()) + " samples; this batcher has " +
                         std::to_string(num_batches()) + " batches of " +
                         std::to_string(num_samples_) + " samples");
    profile::Scope scope("batch");
    const std::size_t begin = i * batch_size_;
    const std::size_t end = std::min(begin + batch_size_, order.size());
    Batch b;
    b.indices.assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                     order.begin() + static_cast<std::ptrdiff_t>(end));
    b.images = images_to_tensor(*dataset_, b.indices);
    b.labels.reserve(b.indices.size());
    for (std::size_t idx : b.indices) b.labels.push_back(dataset_->labels[idx]);
    return b;
}

Batcher::Epoch Batcher::epoch(std::size_t epoch) const { return Epoch(this, epoch_order(epoch)); }

}  // namespace semigrad::data
