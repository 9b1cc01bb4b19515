// The trainer's data-parallel pieces (mpirun -np N mnist_triplet ...; distributed/ holds the
// general ones). With one process every function here reduces to the plain step: the shard is the
// batch, the gather a copy, the all-reduce nothing.
//
// A global batch of B = --batch-size images is cut into N contiguous shards (rank r: rows
// B*r/N ... B*(r+1)/N of it); every rank draws the same seeded order, so the global batches are
// those of a one-process run.
#pragma once

#include <span>
#include <string>

#include "autograd/var.hpp"
#include "data/batcher.hpp"
#include "data/idx.hpp"
#include "distributed/communicator.hpp"
#include "losses/triplet.hpp"
#include "nn/sequential.hpp"

namespace semigrad::examples {

// Where the loss's mining looks for positives and negatives.
//   Global: every rank all-gathers the embeddings and labels, mines over the whole global batch
//           and back-propagates into its own rows only: the loss and the step are a one-process
//           run's, up to float summation order.
//   Local:  each rank mines within its shard (cheaper, a different loss: fewer candidates).
enum class Mining { Global, Local };

// This rank's rows of a global batch.
data::Batch shard_of_batch(const data::Batch& global, const distributed::Communicator& comm);

struct ShardLoss {
    Var loss;              // what this rank back-propagates
    float gradient_scale;  // for GradientAllReduce::sum: 1 (Global) or 1/N (Local)
    // For the log, the same on every rank: the loss of the global batch and its fraction of active
    // pairs (Local: the means over the ranks), and whether a batch had no positive pair.
    double global_loss = 0, global_fraction_active = 0;
    std::size_t global_no_positive_pair = 0;
};
// The triplet loss --loss and --distance name (defaults: the tutorial's semi-hard loss, L2), its
// margin, and the workspace that keeps the loss's scratch memory from one step to the next.
struct LossChoice {
    std::string loss;  // one of options.hpp's kLosses: "semihard", "hard", "soft-hard"
    losses::Distance distance = losses::Distance::L2;
    float margin = 1.0f;
    losses::TripletWorkspace* workspace = nullptr;
};
// That loss of a batch's embeddings [B, D] and labels.
Var triplet_loss(const LossChoice& choice, const Var& embeddings, std::span<const int> labels,
                 losses::TripletStats& stats);

// The chosen loss for this rank's embeddings [n_local, D] and labels, over the global batch of
// `global_n` rows (shards as shard_of_batch cuts them) or over the shard.
ShardLoss triplet_loss_across_ranks(const Var& embeddings, std::span<const int> labels,
                                    std::size_t global_n, Mining mining, const LossChoice& choice,
                                    const distributed::Communicator& comm);

// model.predict() for images begin..end-1 of `d`, sharded: each rank embeds its shard, in
// chunks of `chunk` images, without a graph and with dropout off; every rank returns all of
// them, [end - begin, D].
Tensor embed_sharded(nn::Sequential& model, const data::Dataset& d, std::size_t begin,
                     std::size_t end, std::size_t chunk, const distributed::Communicator& comm);

}  // namespace semigrad::examples
