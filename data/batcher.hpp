// Batcher: seeded, shuffled mini-batches of a Dataset, as [N,1,rows,cols] floats plus labels.
//
// Epoch e's order is a pure function of (seed, e), so a run resumed at epoch e sees exactly the
// batches an uninterrupted run would, with no generator state to save. Two orders:
//  - shuffle_buffer == 0: a uniform permutation of all samples each epoch;
//  - shuffle_buffer == B > 0: tf.data's `Dataset.shuffle(B)` (the tutorial uses B = 1024): a
//    buffer of B samples, each output drawn uniformly from it and refilled from the input in
//    file order. Only a uniform permutation when B >= the sample count.
// The last batch is kept even when smaller (tf.data's `batch(32)` without drop_remainder).
//
// Not a data pipeline: no prefetching or augmentation; a batch is built when asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "data/idx.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::data {

struct Batch {
    Tensor images;                     // [N,1,rows,cols] in [0,1]
    std::vector<int> labels;           // N
    std::vector<std::size_t> indices;  // N sample indices into the Dataset
};

class Batcher {
  public:
    class Epoch;

    // Uses the first `limit` samples of `d` (0 or a limit above d.count: all of them). The
    // Batcher keeps a reference: `d` must outlive it. Throws ValueError on batch_size 0.
    Batcher(const Dataset& d, std::size_t batch_size, std::uint64_t seed,
            std::size_t shuffle_buffer = 0, std::size_t limit = 0);
    Batcher(Dataset&&, std::size_t, std::uint64_t, std::size_t = 0, std::size_t = 0) = delete;

    std::size_t num_batches() const { return (num_samples_ + batch_size_ - 1) / batch_size_; }
    std::size_t num_samples() const { return num_samples_; }
    std::size_t batch_size() const { return batch_size_; }

    // The order in which epoch `epoch` visits the samples: a permutation of 0..num_samples()-1.
    std::vector<std::size_t> epoch_order(std::size_t epoch) const;
    // Batch number `i` of `order` (samples order[i*batch_size ...]). Throws ValueError when i is
    // past the last batch.
    Batch batch(std::span<const std::size_t> order, std::size_t i) const;
    // One epoch as a range: for (const Batch& b : batcher.epoch(e)) ...
    Epoch epoch(std::size_t epoch) const;

  private:
    const Dataset* dataset_;
    std::size_t batch_size_, num_samples_, shuffle_buffer_;
    std::uint64_t seed_;
};

// The batches of one epoch, built one at a time as the loop advances.
class Batcher::Epoch {
  public:
    class iterator {
      public:
        iterator(const Epoch* epoch, std::size_t i) : epoch_(epoch), i_(i) { load(); }
        const Batch& operator*() const { return batch_; }
        const Batch* operator->() const { return &batch_; }
        iterator& operator++() {
            ++i_;
            load();
            return *this;
        }
        bool operator==(const iterator& other) const { return i_ == other.i_; }

      private:
        void load() {
            if (i_ < epoch_->batcher_->num_batches())
                batch_ = epoch_->batcher_->batch(epoch_->order_, i_);
        }
        const Epoch* epoch_;
        std::size_t i_;
        Batch batch_;
    };

    Epoch(const Batcher* batcher, std::vector<std::size_t> order)
        : batcher_(batcher), order_(std::move(order)) {}
    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, batcher_->num_batches()); }
    const std::vector<std::size_t>& order() const { return order_; }

  private:
    const Batcher* batcher_;
    std::vector<std::size_t> order_;
};

}  // namespace semigrad::data
