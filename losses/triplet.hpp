// TensorFlow Addons' triplet losses, reproduced exactly (specification: TRIPLET.md beside
// DESIGN.md): `triplet_semihard_loss` (FaceNet's semi-hard mining, Schroff et al. 2015) and
// `triplet_hard_loss` (batch-hard, Hermans et al. 2017, "In Defense of the Triplet Loss").
//
// Dimension letters: B batch size, D embedding width. embeddings [B, D], labels [B] -> scalar.
//
// Values match TFA's to float32 rounding and gradients are the ones TF's autodiff gives, with
// two deliberate differences (TRIPLET.md §9):
//   * a batch with no positive pair gives semi-hard loss 0 and a zero gradient (TFA: NaN, which
//     poisons every weight; tensorflow/addons#2447). `TripletStats::no_positive_pair` reports it;
//   * mining costs O(B^2 log B) time and O(B^2) memory instead of TFA's O(B^3), in parallel
//     over anchors.
// Each loss is one autograd node with an analytic backward. The literal O(B^3) port used as the
// reference lives in losses/triplet_reference.hpp.
#pragma once

#include <cstddef>
#include <span>

#include "autograd/var.hpp"
#include "losses/pairwise_distance.hpp"
#include "tensor/simd.hpp"

namespace semigrad::losses {

// What a batch looked like to the loss: users need these to see collapse (every distance
// shrinking to 0 makes every pair active at exactly the margin).
struct TripletStats {
    std::size_t positive_pairs = 0;    // ordered pairs a!=p with equal labels (num_positives)
    // Pairs (semi-hard) or anchors (hard) whose hinge is > 0. For the soft hard loss, whose
    // softplus is always > 0, the anchors whose hardest positive is farther than their hardest
    // negative.
    std::size_t active_pairs = 0;
    float fraction_active = 0;         // active / (positive pairs (semi-hard) or anchors (hard))
    float mean_positive_distance = 0;  // mean D[a,p] over positive pairs
    float mean_negative_distance = 0;  // mean D[a,n] over negative pairs
    // The batch had no positive pair. Semi-hard: loss 0, zero gradient (TFA gives NaN). The hard
    // loss is finite either way and keeps TFA's value.
    bool no_positive_pair = false;
};

// mean over ordered positive pairs (a,p) of max(margin + D[a,p] - D[a,n], 0), n being the
// closest negative farther than p, else the farthest negative, else 0 (TRIPLET.md §5).
// Throws ShapeError unless embeddings is [B,D] with B >= 1 and labels has B entries.
// `isa` picks the mining kernels (tensor/simd.hpp); every path gives the same bits.
Var triplet_semihard_loss(const Var& embeddings, std::span<const int> labels, float margin = 1.0f,
                          Distance metric = Distance::L2, TripletStats* stats = nullptr,
                          Isa isa = active_isa());

// mean over all B anchors of max(hardest positive - hardest negative + margin, 0), or
// log1p(exp(hardest positive - hardest negative)) when soft (the margin is then unused, as in
// TFA) (TRIPLET.md §6).
Var triplet_hard_loss(const Var& embeddings, std::span<const int> labels, float margin = 1.0f,
                      bool soft = false, Distance metric = Distance::L2,
                      TripletStats* stats = nullptr, Isa isa = active_isa());

}  // namespace semigrad::losses
