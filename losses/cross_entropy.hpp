// Softmax cross-entropy with integer labels (Keras' SparseCategoricalCrossentropy with
// from_logits=True, reduced by the mean over the batch). Not used by the triplet tutorial; it is
// here for classifiers built with semigrad.
//
// Dimension letters: B batch size, K classes. logits [B, K], labels [B] in [0, K) -> scalar.
#pragma once

#include <span>

#include "autograd/var.hpp"

namespace semigrad::losses {

// mean_b (logsumexp(logits[b,:]) - logits[b, labels[b]]), with the log-sum-exp shifted by the
// row max so no exp overflows. One autograd node; dlogits = (softmax - onehot) / B.
// Throws ShapeError for a non-[B,K] input or B != labels.size(), ValueError for a label out of
// [0, K).
Var softmax_cross_entropy(const Var& logits, std::span<const int> labels);

}  // namespace semigrad::losses
