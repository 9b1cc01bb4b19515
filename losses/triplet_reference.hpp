// The literal O(B^3) port of TensorFlow Addons' triplet losses, values AND gradients, kept as the
// reference for tests and benchmarks (docs/design.md, "Tensors and kernels": the naive kernel beside the fast one).
//
// It follows tensorflow_addons/losses/triplet.py and metric_learning.py line by line, in float32
// and in TF's operation order: the distance matrix with its masks, the [B*B, B] tiled distances
// and mask of the semi-hard loss, masked_minimum / masked_maximum with their (X - R) * M + R
// form, tf.where, the hinge. The gradient is TF's autodiff written out op by op in reverse,
// including the rules that matter at ties: reduce_min/reduce_max split the gradient evenly over
// every tied extreme, maximum(x, y) passes it to x where x >= y.
//
// It deliberately keeps TFA's NaN for a batch without a positive pair (the fast loss returns 0).
// Memory is O(B^3) (two [B*B, B] float tensors: 1 GiB at B = 512), so keep B <= 512.
// Dimension letters: B batch size, D embedding width.
#pragma once

#include <span>

#include "losses/pairwise_distance.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::losses::reference {

struct TripletResult {
    float loss = 0;
    Tensor dembeddings;  // [B,D] d(loss)/d(embeddings)
};

// TFA's pairwise_distance / angular_distance, step by step ([B,D] -> [B,B]).
Tensor pairwise_distance(const Tensor& embeddings, Distance metric);

TripletResult triplet_semihard_loss(const Tensor& embeddings, std::span<const int> labels,
                                    float margin = 1.0f, Distance metric = Distance::L2);

TripletResult triplet_hard_loss(const Tensor& embeddings, std::span<const int> labels,
                                float margin = 1.0f, bool soft = false,
                                Distance metric = Distance::L2);

}  // namespace semigrad::losses::reference
