#include "losses/pairwise_distance.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"

namespace semigrad::losses {

// Below this batch size a [B,B] pass costs less than waking a thread team.
constexpr std::size_t kParallelRows = 128;

const char* distance_name(Distance metric) {
    switch (metric) {
        case Distance::L2: return "L2";
        case Distance::SquaredL2: return "squared-L2";
        case Distance::Angular: return "angular";
    }
    return "?";
}

// Row sums of squares, accumulated in double: TF's reduce_sum has its own (tree) order, so the
// best we can do is round the exact sum once.
static std::vector<float> row_squared_norms(const float* x, std::size_t B, std::size_t D) {
    std::vector<float> sq(B);
    for (std::size_t i = 0; i < B; ++i) {
        double s = 0.0;
        for (std::size_t d = 0; d < D; ++d) s += double(x[i * D + d]) * x[i * D + d];
        sq[i] = float(s);
    }
    return sq;
}

PairwiseDistance::PairwiseDistance(const Tensor& embeddings, Distance metric, bool keep_for_backward)
    : metric_(metric), keep_for_backward_(keep_for_backward) {
    check_rank("pairwise_distance", "embeddings", embeddings, 2);
    const std::size_t B = embeddings.dim(0), D = embeddings.dim(1);
    const long nB = long(B);
    std::vector<float> sq = row_squared_norms(embeddings.data(), B, D);
    D_ = Tensor({B, B});
    float* dist = D_.data();

    if (metric != Distance::Angular) {
        if (keep_for_backward) x_ = embeddings;
        gemm(false, true, int(B), int(B), int(D), 1.0f, embeddings.data(), int(D),
             embeddings.data(), int(D), 0.0f, dist, int(B));
        const bool squared = metric == Distance::SquaredL2;
        // In place over the Gram matrix, in TF's operation order: (sq_i + sq_j) - 2 g, clamp,
        // exact zeros stay zero (TF's sqrt(d2 + 1e-16) * 0), diagonal 0.
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
        for (long i = 0; i < nB; ++i)
            for (std::size_t j = 0; j < B; ++j) {
                float& e = dist[std::size_t(i) * B + j];
                const float d2 = (sq[std::size_t(i)] + sq[j]) - 2.0f * e;
                e = (d2 > 0.0f && std::size_t(i) != j) ? (squared ? d2 : std::sqrt(d2)) : 0.0f;
            }
        return;
    }

    // Angular: tf.math.l2_normalize, then 1 - cosine, clamped at 0.
    Tensor xhat({B, D});
    inv_norm_.resize(B);
    norm_active_.resize(B);
    for (std::size_t i = 0; i < B; ++i) {
        norm_active_[i] = sq[i] >= 1e-12f;
        inv_norm_[i] = 1.0f / std::sqrt(norm_active_[i] ? sq[i] : 1e-12f);
        for (std::size_t d = 0; d < D; ++d) xhat[i * D + d] = embeddings[i * D + d] * inv_norm_[i];
    }
    gemm(false, true, int(B), int(B), int(D), 1.0f, xhat.data(), int(D), xhat.data(), int(D), 0.0f,
         dist, int(B));
    if (keep_for_backward) raw_ = Tensor({B, B});
    float* raw = keep_for_backward ? raw_.data() : nullptr;
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
    for (long i = 0; i < nB; ++i)
        for (std::size_t j = 0; j < B; ++j) {
            const std::size_t ij = std::size_t(i) * B + j;
            const float r = 1.0f - dist[ij];
            if (raw) raw[ij] = r;
            dist[ij] = r > 0.0f ? r : 0.0f;
        }
    if (keep_for_backward) {
        x_ = std::move(xhat);
        embeddings_ = embeddings;
    }
}

Tensor pairwise_distance(const Tensor& embeddings, Distance metric) {
    return PairwiseDistance(embeddings, metric, false).distances();
}

// dD [B,B] -> dx [B,D]. Every entry is d2_ij = |x_i|^2 + |x_j|^2 - 2 x_i.x_j (or the angular
// 1 - x_hat_i.x_hat_j), so with G = dL/d(d2) (or dL/d(gram)) the chain rule collapses to
// S = G + G^T and one gemm: dx = 2 diag(rowsum S) x - 2 S x. S is formed in 64x64 tiles so the
// transposed reads stay in cache; each thread writes its own rows of S.
Tensor PairwiseDistance::backward(const Tensor& dD, float scale) const {
    if (!keep_for_backward_) throw Error("pairwise_distance: backward on a forward-only result");
    check_same_shape("pairwise_distance backward", dD, D_);
    const std::size_t B = D_.dim(0), D = x_.dim(1);
    const long nB = long(B);
    const float* dist = D_.data();
    const float* dd = dD.data();
    const float* raw = raw_.empty() ? nullptr : raw_.data();
    // G = dL/d(inner value) entry by entry, as TF's autodiff gives it: the diagonal and clamped
    // entries pass nothing (L2: D * (1 - zero) * (1 - I); angular: max(raw, 0) passes where
    // raw >= 0, and the angular diagonal is a real entry). The loops divide unconditionally (by
    // 1 where masked) so that they vectorise.
    Tensor G({B, B});
    float* gm = G.data();
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
    for (long i = 0; i < nB; ++i) {
        const std::size_t r = std::size_t(i) * B;
        switch (metric_) {
            case Distance::L2:
                for (std::size_t j = r; j < r + B; ++j) {
                    const float inv = 0.5f / (dist[j] > 0.0f ? dist[j] : 1.0f);
                    gm[j] = dist[j] > 0.0f ? dd[j] * scale * inv : 0.0f;
                }
                break;
            case Distance::SquaredL2:
                for (std::size_t j = r; j < r + B; ++j) gm[j] = dist[j] > 0.0f ? dd[j] * scale : 0.0f;
                break;
            case Distance::Angular:  // d(1 - g)/dg = -1
                for (std::size_t j = r; j < r + B; ++j) gm[j] = raw[j] >= 0.0f ? -(dd[j] * scale) : 0.0f;
                break;
        }
    }
    Tensor S({B, B});
    float* s = S.data();
    std::vector<float> rowsum(B, 0.0f);
    constexpr std::size_t T = 64;
    const long nblocks = long((B + T - 1) / T);
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
    for (long ib = 0; ib < nblocks; ++ib) {
        const std::size_t i0 = std::size_t(ib) * T, i1 = std::min(B, i0 + T);
        for (std::size_t j0 = 0; j0 < B; j0 += T) {
            const std::size_t j1 = std::min(B, j0 + T);
            for (std::size_t i = i0; i < i1; ++i) {
                float acc = 0.0f;
                for (std::size_t j = j0; j < j1; ++j) {
                    const float v = gm[i * B + j] + gm[j * B + i];
                    s[i * B + j] = v;
                    acc += v;
                }
                rowsum[i] += acc;
            }
        }
    }

    Tensor dx({B, D});
    float* out = dx.data();
    const float* x = x_.data();
    if (metric_ != Distance::Angular) {
        gemm(false, false, int(B), int(D), int(B), -2.0f, s, int(B), x, int(D), 0.0f, out, int(D));
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t d = 0; d < D; ++d) out[i * D + d] += 2.0f * rowsum[i] * x[i * D + d];
        return dx;
    }
    // Angular: gram = x_hat x_hat^T, so dx_hat = S x_hat; then back through l2_normalize,
    // y = x * r with r = rsqrt(max(|x|^2, eps)), dr/d|x|^2 = -r^3/2 where |x|^2 >= eps:
    // dx = r dy - r^3 (dy . x) x.
    Tensor dxhat({B, D});
    gemm(false, false, int(B), int(D), int(B), 1.0f, s, int(B), x, int(D), 0.0f, dxhat.data(), int(D));
    const float* e = embeddings_.data();
    for (std::size_t i = 0; i < B; ++i) {
        const float r = inv_norm_[i];
        float dot = 0.0f;
        for (std::size_t d = 0; d < D; ++d) dot += dxhat[i * D + d] * e[i * D + d];
        const float c = norm_active_[i] ? r * r * r * dot : 0.0f;
        for (std::size_t d = 0; d < D; ++d) out[i * D + d] = r * dxhat[i * D + d] - c * e[i * D + d];
    }
    return dx;
}

}  // namespace semigrad::losses
