// TensorFlow Addons' triplet losses, reproduced exactly (specification:
// docs/triplet-losses.md): `triplet_semihard_loss` (FaceNet's semi-hard mining, Schroff et al. 2015) and
// `triplet_hard_loss` (batch-hard, Hermans et al. 2017, "In Defense of the Triplet Loss").
//
// Dimension letters: B batch size, D embedding width. embeddings [B, D], labels [B] -> scalar.
//
// Values match TFA's to float32 rounding and gradients are the ones TF's autodiff gives, with
// two deliberate differences (docs/triplet-losses.md §9):
//   * a batch with no positive pair gives semi-hard loss 0 and a zero gradient (TFA: NaN, which
//     poisons every weight; tensorflow/addons#2447). `TripletStats::no_positive_pair` reports it;
//   * mining costs O(B^2 log B) time and O(B^2) memory instead of TFA's O(B^3), in parallel
//     over anchors.
// Each loss is one autograd node with an analytic backward. Read losses/triplet_readable.cpp
// first: the semi-hard loss in a hundred lines, which the tests hold this one equal to. The
// literal O(B^3) port used as the reference lives in losses/triplet_reference.hpp.
#pragma once

#include <cstddef>
#include <memory>
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

// The working memory of the fast losses: per thread, a miner and the lists the sparse gradient
// rows are built in; the per-anchor sums; the distance matrix's spare buffer and its backward's
// scratch (DistanceScratch). A training loop keeps one and passes it to every call, so that a
// step reuses what the previous one page-faulted in (at B = 4096 about 150 MB: two [B,B]
// matrices and the lists). A call without one makes its own, which the loss's graph node
// releases with itself. A workspace holds what its largest call needed until it is destroyed
// or release()d; one call at a time (it is not for two threads at once), but nodes made with it
// may be alive together.
class TripletWorkspace {
  public:
    TripletWorkspace();
    ~TripletWorkspace();  // (not copyable: it owns its Impl)
    void release();
    std::size_t bytes() const;  // held now

    struct Impl;  // losses/triplet.cpp
    Impl& impl() { return *impl_; }

  private:
    std::unique_ptr<Impl> impl_;
};

// mean over ordered positive pairs (a,p) of max(margin + D[a,p] - D[a,n], 0), n being the
// closest negative farther than p, else the farthest negative, else 0 (docs/triplet-losses.md §5).
// Throws ShapeError unless embeddings is [B,D] with B >= 1 and labels has B entries.
// `isa` picks the kernels (tensor/simd.hpp); every path gives the same bits. `workspace`: see
// TripletWorkspace.
Var triplet_semihard_loss(const Var& embeddings, std::span<const int> labels, float margin = 1.0f,
                          Distance metric = Distance::L2, TripletStats* stats = nullptr,
                          Isa isa = active_isa(), TripletWorkspace* workspace = nullptr);

// mean over all B anchors of max(hardest positive - hardest negative + margin, 0), or
// log1p(exp(hardest positive - hardest negative)) when soft (the margin is then unused, as in
// TFA) (docs/triplet-losses.md §6).
Var triplet_hard_loss(const Var& embeddings, std::span<const int> labels, float margin = 1.0f,
                      bool soft = false, Distance metric = Distance::L2,
                      TripletStats* stats = nullptr, Isa isa = active_isa(),
                      TripletWorkspace* workspace = nullptr);

}  // namespace semigrad::losses
