// The semi-hard triplet loss written to be read: the same function as
// losses::triplet_semihard_loss (losses/triplet.hpp), in about a hundred lines, with TFA's
// names. Per anchor: sort its negatives' distances once, then for each positive find the
// semi-hard negative by binary search; the backward writes a dense [B,B] dD. O(B^2 log B)
// time, O(B^2) memory, one thread. tests/losses/test_triplet.cpp holds the fast loss equal to
// this one (values and gradients). docs/triplet-losses.md says what TFA computes, step by step.
#pragma once

#include <span>

#include "autograd/var.hpp"
#include "losses/pairwise_distance.hpp"

namespace semigrad::losses {

// embeddings [B,D], labels [B] -> scalar. Throws ShapeError for a bad shape.
Var triplet_semihard_loss_readable(const Var& embeddings, std::span<const int> labels, float margin = 1.0f,
                                   Distance metric = Distance::L2);

}  // namespace semigrad::losses
