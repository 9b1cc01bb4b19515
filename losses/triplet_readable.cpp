// The semi-hard triplet loss, readable version (see the header). Step numbers refer to
// docs/triplet-losses.md, "The semi-hard loss step by step".
#include "losses/triplet_readable.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "tensor/error.hpp"

namespace semigrad::losses {

namespace {

// TFA's masked_minimum / masked_maximum return (x - r) + r, where r is the row's max / min:
// that can differ from x by an ulp of r, so we compute it the same way.
float shifted(float x, float r) { return (x - r) + r; }

// Adds `weight` to dD[a,k], split evenly over every k in `columns` (TF's reduce_min /
// reduce_max share the gradient among tied extremes).
void add_split(float* dD_row, const std::vector<std::size_t>& columns, float weight) {
    for (std::size_t k : columns) dD_row[k] += weight / float(columns.size());
}

}  // namespace

Var triplet_semihard_loss_readable(const Var& embeddings, std::span<const int> labels, float margin,
                                   Distance metric) {
    const Tensor& x = embeddings.value();
    if (x.ndim() != 2 || x.dim(0) == 0 || labels.size() != x.dim(0))
        throw ShapeError("triplet_semihard_loss_readable: embeddings " + to_string(x.shape()) + " with " +
                         std::to_string(labels.size()) + " labels (want [B,D], B >= 1, and B labels)");
    const std::size_t B = x.dim(0);
    // Step 1: the [B,B] distance matrix, and what its backward needs.
    auto dist = std::make_shared<const PairwiseDistance>(x, metric);
    const Tensor& pdist_matrix = dist->distances();
    Tensor dD = Tensor::zeros({B, B});  // d(sum of hinges)/dD, scaled at the end
    double loss_sum = 0.0;
    std::size_t num_positives = 0;

    for (std::size_t a = 0; a < B; ++a) {
        const float* row = pdist_matrix.data() + a * B;
        float* dD_row = dD.data() + a * B;
        // Step 2: the anchor's negatives (adjacency_not), sorted by distance, ties by column.
        std::vector<std::pair<float, std::size_t>> negatives;
        for (std::size_t k = 0; k < B; ++k)
            if (labels[k] != labels[a]) negatives.emplace_back(row[k], k);
        std::sort(negatives.begin(), negatives.end());
        // The whole row's max and min, diagonal included: TFA's shifts and empty-mask answers.
        const float row_max = *std::max_element(row, row + B), row_min = *std::min_element(row, row + B);
        // The columns holding distance d among the sorted negatives (the tied extremes).
        auto negatives_at = [&](float d) {
            std::vector<std::size_t> columns;
            auto it = std::lower_bound(negatives.begin(), negatives.end(), std::pair(d, std::size_t(0)));
            for (; it != negatives.end() && it->first == d; ++it) columns.push_back(it->second);
            return columns;
        };
        // Step 6: negatives_inside, the farthest negative (with none: the row minimum).
        float negatives_inside = row_min;
        std::vector<std::size_t> inside_columns;
        if (!negatives.empty()) {
            negatives_inside = shifted(negatives.back().first, row_min);
            inside_columns = negatives_at(negatives.back().first);
        } else {
            for (std::size_t k = 0; k < B; ++k)
                if (row[k] == row_min) inside_columns.push_back(k);
        }
        for (std::size_t p = 0; p < B; ++p) {
            if (p == a || labels[p] != labels[a]) continue;  // mask_positives
            ++num_positives;
            // Steps 3-5: the smallest negative distance strictly greater than D[a,p]: the first
            // sorted negative past it (upper_bound), shifted by the row max as TFA's
            // masked_minimum does. Step 7: with none, negatives_inside.
            const auto outside = std::upper_bound(negatives.begin(), negatives.end(), row[p],
                                                  [](float d, const auto& n) { return d < n.first; });
            const bool has_semihard = outside != negatives.end();
            const float negative = has_semihard ? shifted(outside->first, row_max) : negatives_inside;
            // Steps 8 and 10: the hinge; TF's maximum(x, 0) passes the gradient where x >= 0.
            const float loss_mat = margin + (row[p] - negative);
            if (loss_mat > 0.0f) loss_sum += loss_mat;
            if (loss_mat >= 0.0f) {
                dD_row[p] += 1.0f;
                add_split(dD_row, has_semihard ? negatives_at(outside->first) : inside_columns, -1.0f);
            }
        }
    }
    // Step 9, and our first difference from TFA: no positive pair gives 0 and a zero gradient,
    // not 0/0 = NaN.
    if (num_positives == 0)
        return record(Tensor::scalar(0.0f), {embeddings}, "triplet_semihard_loss_readable",
                      [embeddings](const Tensor&) { embeddings.node()->accumulate_grad(Tensor::zeros(embeddings.shape())); });
    const float scale = 1.0f / float(num_positives);
    return record(Tensor::scalar(float(loss_sum) / float(num_positives)), {embeddings}, "triplet_semihard_loss_readable",
                  [embeddings, dist, dD, scale](const Tensor& dout) {
                      embeddings.node()->accumulate_grad(dist->backward(dD, dout[0] * scale));
                  });
}

}  // namespace semigrad::losses
