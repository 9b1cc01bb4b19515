// The trainer's data-parallel pieces: a batch's shard, the triplet loss across ranks and the
// sharded evaluation forward (data_parallel.hpp).
#include "examples/data_parallel.hpp"

#include <algorithm>
#include <vector>

#include "distributed/data_parallel.hpp"
#include "tensor/error.hpp"
#include "tensor/simd.hpp"

namespace semigrad::examples {

using distributed::Communicator;

data::Batch shard_of_batch(const data::Batch& global, const Communicator& comm) {
    const std::size_t n = global.labels.size();
    const distributed::Shard s = distributed::shard_of(n, comm.rank(), comm.size());
    data::Batch shard;
    Shape shape = global.images.shape();
    const std::size_t row = n ? global.images.size() / n : 0;
    shape[0] = s.size();
    shard.images = Tensor::uninitialised(shape);
    std::copy_n(global.images.data() + s.begin * row, s.size() * row, shard.images.data());
    shard.labels.assign(global.labels.begin() + long(s.begin), global.labels.begin() + long(s.end));
    shard.indices.assign(global.indices.begin() + long(s.begin), global.indices.begin() + long(s.end));
    return shard;
}

Var triplet_loss(const LossChoice& choice, const Var& embeddings, std::span<const int> labels,
                 losses::TripletStats& stats) {
    if (choice.loss == "semihard")
        return losses::triplet_semihard_loss(embeddings, labels, choice.margin, choice.distance,
                                             &stats, active_isa(), choice.workspace);
    if (choice.loss == "hard" || choice.loss == "soft-hard")
        return losses::triplet_hard_loss(embeddings, labels, choice.margin,
                                         choice.loss == "soft-hard", choice.distance, &stats,
                                         active_isa(), choice.workspace);
    throw ValueError("unknown triplet loss '" + choice.loss +
                     "' (expected semihard, hard or soft-hard)");
}

ShardLoss triplet_loss_across_ranks(const Var& embeddings, std::span<const int> labels,
                                    std::size_t global_n, Mining mining, const LossChoice& choice,
                                    const Communicator& comm) {
    ShardLoss out;
    losses::TripletStats stats;
    if (mining == Mining::Local) {
        out.loss = triplet_loss(choice, embeddings, labels, stats);
        out.gradient_scale = 1.0f / float(comm.size());  // the global loss: mean of the ranks'
        float logged[3] = {out.loss.value().item(), stats.fraction_active,
                           float(stats.no_positive_pair)};
        comm.allreduce_sum(logged);
        out.global_loss = double(logged[0]) / comm.size();
        out.global_fraction_active = double(logged[1]) / comm.size();
        out.global_no_positive_pair = std::size_t(logged[2]);
        return out;
    }
    const std::vector<std::size_t> rows = distributed::shard_sizes(global_n, comm.size());
    const Var all = distributed::all_gather_rows(embeddings, comm, rows);
    std::vector<int> all_labels(global_n);
    comm.allgather(labels, std::span<int>(all_labels), std::span(rows));
    out.loss = triplet_loss(choice, all, all_labels, stats);
    out.gradient_scale = 1.0f;  // each rank's rows' share of one loss: the sum is the gradient
    out.global_loss = out.loss.value().item();
    out.global_fraction_active = stats.fraction_active;
    out.global_no_positive_pair = stats.no_positive_pair;
    return out;
}

Tensor embed_sharded(nn::Sequential& model, const data::Dataset& d, std::size_t begin,
                     std::size_t end, std::size_t chunk, const Communicator& comm) {
    const std::size_t count = end - begin;
    const distributed::Shard mine = distributed::shard_of(count, comm.rank(), comm.size());
    Tensor local;
    std::size_t D = 0;
    if (mine.size() > 0) {
        local = model.predict(mine.size(), chunk, [&](std::size_t first, std::size_t n) {
            return data::images_to_tensor(d, begin + mine.begin + first, n);
        });
        D = local.dim(1);
    }
    if (comm.size() == 1 && !local.empty()) return local;  // the gather would be a copy
    // Every rank learns D (a rank with an empty shard has not run the model).
    D = std::size_t(comm.allreduce_max(int(D)));
    std::vector<std::size_t> counts = distributed::shard_sizes(count, comm.size());
    for (std::size_t& c : counts) c *= D;
    Tensor all({count, D});
    comm.allgather(std::span<const float>(local.data(), mine.size() * D),
                   std::span<float>(all.data(), all.size()), std::span(counts));
    return all;
}

}  // namespace semigrad::examples
