// Data-parallel training on top of a Communicator: every process holds the whole model, trains
// on its shard of each global batch, and the processes stay identical because they start from
// the same parameters and apply the same summed gradient (Li et al. 2020, "PyTorch Distributed:
// Experiences on Accelerating Data Parallel Training", section 2).
//
//   broadcast_state(comm, optimizer)        at start and on resume: rank 0's parameters (and
//                                           optimiser slots) everywhere
//   all_gather_rows(x, comm, rows)          autograd: [n_local, ...] -> [n_global, ...]; backward
//                                           keeps this rank's rows of the gradient
//   GradientAllReduce::sum(comm, scale)     after backward: one flat buffer, one allreduce
//
// Which scale makes the step equal to one process's step on the whole batch depends on the
// loss: see GradientAllReduce.
#pragma once

#include <span>
#include <vector>

#include "autograd/var.hpp"
#include "distributed/communicator.hpp"
#include "nn/module.hpp"
#include "nn/optimizer.hpp"

namespace semigrad::distributed {

// x [rows_per_rank[rank], ...] -> [sum of rows_per_rank, ...]: the ranks' rows stacked in rank
// order, every trailing dimension equal (ShapeError otherwise). Backward: d(x) = the rows of
// d(out) that came from x.
//
// That backward is exact when every rank computes the same loss from the gathered tensor (the
// loss of the whole global batch): d(loss)/d(x) is then those rows of d(loss)/d(out), and the
// other rows' gradients are computed by the ranks that own them (pytorch-metric-learning's
// DistributedLossWrapper, whose all_gather keeps the local rows' graph in the same way).
Var all_gather_rows(const Var& x, const Communicator& comm, std::span<const std::size_t> rows_per_rank);

// Sums every parameter's gradient over the ranks in place, then multiplies by `scale`:
// gradients are packed into one flat buffer (in parameters() order), all-reduced by one
// MPI_Allreduce and unpacked. A parameter that received no gradient contributes zeros.
//
// The scale: if every rank back-propagates the same global loss into its own rows (the global
// triplet loss through all_gather_rows), the sum already is the whole batch's gradient: scale 1.
// If each rank's loss is the mean over its own shard (local mining), the global loss is the
// mean of the ranks' losses: scale 1/size().
class GradientAllReduce {
  public:
    explicit GradientAllReduce(std::vector<nn::Parameter> params);
    void sum(const Communicator& comm, float scale = 1.0f);
    std::size_t floats() const { return flat_.size(); }

  private:
    std::vector<nn::Parameter> params_;
    std::vector<float> flat_;
};

// Every rank gets rank 0's parameter values and optimiser slots (Adam's m and v) and step count,
// in one broadcast: ranks that built or loaded a model on their own start identical.
void broadcast_state(const Communicator& comm, nn::Optimizer& optimizer);

}  // namespace semigrad::distributed
