#include "losses/cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tensor/error.hpp"

namespace semigrad::losses {

Var softmax_cross_entropy(const Var& logits, std::span<const int> labels) {
    const Tensor& z = logits.value();
    if (z.ndim() != 2 || z.dim(0) == 0 || z.dim(1) == 0)
        throw ShapeError("softmax_cross_entropy: logits must be [B,K] with B, K >= 1, got " +
                         to_string(z.shape()));
    const std::size_t B = z.dim(0), K = z.dim(1);
    if (labels.size() != B)
        throw ShapeError("softmax_cross_entropy: " + std::to_string(labels.size()) +
                         " labels for logits " + to_string(z.shape()));
    for (std::size_t b = 0; b < B; ++b)
        if (labels[b] < 0 || std::size_t(labels[b]) >= K)
            throw ValueError("softmax_cross_entropy: label " + std::to_string(labels[b]) +
                             " at index " + std::to_string(b) + " is outside [0, " +
                             std::to_string(K) + ")");

    // softmax = exp(z - m) / sum, log-sum-exp = m + log(sum): with m the row max every exponent
    // is <= 0, so nothing overflows and at least one term is 1.
    Tensor softmax({B, K});
    double total = 0.0;
    for (std::size_t b = 0; b < B; ++b) {
        const float* row = z.data() + b * K;
        float m = row[0];
        for (std::size_t k = 1; k < K; ++k) m = std::max(m, row[k]);
        double sum = 0.0;
        for (std::size_t k = 0; k < K; ++k) sum += softmax[b * K + k] = std::exp(row[k] - m);
        for (std::size_t k = 0; k < K; ++k) softmax[b * K + k] = float(softmax[b * K + k] / sum);
        total += double(m) + std::log(sum) - row[labels[b]];
    }
    std::vector<int> y(labels.begin(), labels.end());
    return record(Tensor::scalar(float(total / double(B))), {logits}, "softmax_cross_entropy",
                  [logits, softmax = std::move(softmax), y = std::move(y)](const Tensor& dout) {
                      const std::size_t B = softmax.dim(0), K = softmax.dim(1);
                      const float g = dout[0] / float(B);
                      Tensor dlogits({B, K});
                      for (std::size_t b = 0; b < B; ++b)
                          for (std::size_t k = 0; k < K; ++k)
                              dlogits[b * K + k] =
                                  g * (softmax[b * K + k] - (int(k) == y[b] ? 1.0f : 0.0f));
                      logits.node()->accumulate_grad(dlogits);
                  });
}

}  // namespace semigrad::losses
