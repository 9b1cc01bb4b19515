// Literal port; see the header. Each block names the TFA line it ports, forward first, then its
// gradient in reverse order. Slow on purpose: no parallelism, every mask materialised.
#include "losses/triplet_reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"

namespace semigrad::losses::reference {

namespace {

using Floats = std::vector<float>;

// ---- pairwise distances with their saved intermediates ------------------------------------

struct Distances {
    Distance metric;
    std::size_t B = 0, D = 0;
    Tensor x;                 // embeddings (L2) or x_hat (angular), [B,D]
    Tensor embeddings;        // angular: the raw embeddings
    Floats square_sum;        // angular: reduce_sum(square(x), 1)
    Floats x_inv_norm;        // angular: rsqrt(maximum(square_sum, 1e-12))
    Floats d2_raw;            // L2: before the clamp; angular: 1 - x_hat x_hat^T before the clamp
    Floats error_mask;        // L2: (d2 <= 0) as float
    Floats sqrt_out;          // L2: sqrt(d2 + error_mask * 1e-16)
    Tensor pdist;             // [B,B] the result
};

Floats reduce_sum_square(const Tensor& x) {
    const std::size_t B = x.dim(0), D = x.dim(1);
    Floats s(B);
    for (std::size_t i = 0; i < B; ++i) {
        double acc = 0.0;  // TF's reduction order is its own; round the exact sum once
        for (std::size_t d = 0; d < D; ++d) acc += double(x[i * D + d]) * x[i * D + d];
        s[i] = float(acc);
    }
    return s;
}

Distances distances_forward(const Tensor& embeddings, Distance metric) {
    check_rank("reference pairwise_distance", "embeddings", embeddings, 2);
    Distances r;
    r.metric = metric;
    r.B = embeddings.dim(0), r.D = embeddings.dim(1);
    const std::size_t B = r.B, D = r.D;
    r.pdist = Tensor({B, B});
    if (metric == Distance::Angular) {
        // feature = tf.math.l2_normalize(feature, axis=1)
        r.embeddings = embeddings;
        r.square_sum = reduce_sum_square(embeddings);
        r.x_inv_norm.resize(B);
        r.x = Tensor({B, D});
        for (std::size_t i = 0; i < B; ++i) {
            r.x_inv_norm[i] = 1.0f / std::sqrt(std::max(r.square_sum[i], 1e-12f));
            for (std::size_t d = 0; d < D; ++d) r.x[i * D + d] = embeddings[i * D + d] * r.x_inv_norm[i];
        }
        // angular_distances = 1 - tf.matmul(feature, feature, transpose_b=True)
        const Tensor gram = matmul(r.x, r.x, false, true);
        r.d2_raw.resize(B * B);
        for (std::size_t ij = 0; ij < B * B; ++ij) {
            r.d2_raw[ij] = 1.0f - gram[ij];
            // angular_distances = tf.maximum(angular_distances, 0.0)
            r.pdist[ij] = std::max(r.d2_raw[ij], 0.0f);
        }
        return r;
    }
    r.x = embeddings;
    // pairwise_distances_squared = (sum(x^2, 1) + sum(x^T^2, 0)) - 2 x x^T
    const Floats sq = reduce_sum_square(embeddings);
    const Tensor gram = matmul(embeddings, embeddings, false, true);
    r.d2_raw.resize(B * B);
    r.error_mask.resize(B * B);
    r.sqrt_out.resize(B * B);
    for (std::size_t i = 0; i < B; ++i)
        for (std::size_t j = 0; j < B; ++j) {
            const std::size_t ij = i * B + j;
            r.d2_raw[ij] = (sq[i] + sq[j]) - 2.0f * gram[ij];
            // Deal with numerical inaccuracies. Set small negatives to zero.
            const float d2 = std::max(r.d2_raw[ij], 0.0f);
            // error_mask = pairwise_distances_squared <= 0.0
            r.error_mask[ij] = d2 <= 0.0f ? 1.0f : 0.0f;
            float pd = d2;
            if (metric == Distance::L2) {
                // sqrt(pairwise_distances_squared + error_mask * 1e-16)
                r.sqrt_out[ij] = std::sqrt(d2 + r.error_mask[ij] * 1e-16f);
                pd = r.sqrt_out[ij];
            }
            // Undo conditionally adding 1e-16, then explicitly set diagonals to zero.
            pd = pd * (1.0f - r.error_mask[ij]);
            pd = pd * (i == j ? 0.0f : 1.0f);
            r.pdist[ij] = pd;
        }
    return r;
}

Tensor distances_backward(const Distances& r, const Floats& dpdist) {
    const std::size_t B = r.B, D = r.D;
    Tensor dgram({B, B});  // d(loss)/d(x x^T) (L2) or d(loss)/d(x_hat x_hat^T) (angular)
    Floats dsq(B, 0.0f);   // d(loss)/d(reduce_sum(square(x))), both broadcast directions
    if (r.metric == Distance::Angular) {
        for (std::size_t ij = 0; ij < B * B; ++ij)
            dgram[ij] = -(r.d2_raw[ij] >= 0.0f ? dpdist[ij] : 0.0f);  // maximum, then 1 - g
    } else {
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t j = 0; j < B; ++j) {
                const std::size_t ij = i * B + j;
                float g = dpdist[ij] * (i == j ? 0.0f : 1.0f);  // * mask_offdiagonals
                g = g * (1.0f - r.error_mask[ij]);               // * logical_not(error_mask)
                if (r.metric == Distance::L2) g = g * 0.5f / r.sqrt_out[ij];  // SqrtGrad
                g = r.d2_raw[ij] >= 0.0f ? g : 0.0f;             // maximum(d2, 0)
                dsq[i] += g;
                dsq[j] += g;
                dgram[ij] = -2.0f * g;
            }
    }
    // MatMul gradient of x x^T: dgram x + dgram^T x.
    Tensor dx = matmul(dgram, r.x);
    const Tensor dx_t = matmul(dgram, r.x, true, false);
    for (std::size_t i = 0; i < B * D; ++i) dx[i] += dx_t[i];
    if (r.metric != Distance::Angular) {
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t d = 0; d < D; ++d) dx[i * D + d] += 2.0f * r.x[i * D + d] * dsq[i];
        return dx;
    }
    // l2_normalize: x * rsqrt(maximum(square_sum, eps)); RsqrtGrad is dy * -0.5 * y^3.
    Tensor dembeddings({B, D});
    for (std::size_t i = 0; i < B; ++i) {
        const float inv = r.x_inv_norm[i];
        float dinv = 0.0f;
        for (std::size_t d = 0; d < D; ++d) dinv += dx[i * D + d] * r.embeddings[i * D + d];
        const float dmax = dinv * (-0.5f * inv * inv * inv);
        const float dsquare_sum = r.square_sum[i] >= 1e-12f ? dmax : 0.0f;
        for (std::size_t d = 0; d < D; ++d)
            dembeddings[i * D + d] =
                dx[i * D + d] * inv + 2.0f * r.embeddings[i * D + d] * dsquare_sum;
    }
    return dembeddings;
}

// ---- masked_minimum / masked_maximum over one row of length C -----------------------------

// TF's reduce_min/reduce_max gradient: every element equal to the extreme gets an equal share.
void extreme_backward(const float* values, std::size_t C, float extreme, float dextreme, float* dvalues) {
    std::size_t ties = 0;
    for (std::size_t c = 0; c < C; ++c) ties += values[c] == extreme;
    for (std::size_t c = 0; c < C; ++c)
        if (values[c] == extreme) dvalues[c] += dextreme / float(ties);
}

// masked_minimum(data, mask) = reduce_min((data - reduce_max(data)) * mask) + reduce_max(data);
// masked_maximum swaps min and max. `minimum` selects which.
float masked_extreme(const float* data, const float* mask, std::size_t C, bool minimum, Floats& shifted) {
    float axis = data[0];
    for (std::size_t c = 1; c < C; ++c) axis = minimum ? std::max(axis, data[c]) : std::min(axis, data[c]);
    shifted.resize(C);
    float ext = 0.0f;
    for (std::size_t c = 0; c < C; ++c) {
        shifted[c] = (data[c] - axis) * mask[c];
        if (c == 0 || (minimum ? shifted[c] < ext : shifted[c] > ext)) ext = shifted[c];
    }
    return ext + axis;
}

void masked_extreme_backward(const float* data, const float* mask, std::size_t C, bool minimum,
                             float dout, float* ddata, Floats& shifted) {
    float axis = data[0];
    for (std::size_t c = 1; c < C; ++c) axis = minimum ? std::max(axis, data[c]) : std::min(axis, data[c]);
    const float ext = masked_extreme(data, mask, C, minimum, shifted) - axis;
    // The reduce over the shifted product, then the product's gradient into data and axis.
    Floats dshifted(C, 0.0f);
    extreme_backward(shifted.data(), C, ext, dout, dshifted.data());
    float daxis = dout;  // from "+ axis"
    for (std::size_t c = 0; c < C; ++c) {
        ddata[c] += dshifted[c] * mask[c];
        daxis -= dshifted[c] * mask[c];
    }
    extreme_backward(data, C, axis, daxis, ddata);
}

void check_labels(const char* op, const Tensor& x, std::span<const int> labels) {
    if (x.ndim() != 2 || x.dim(0) == 0 || labels.size() != x.dim(0))
        throw ShapeError(std::string(op) + ": embeddings " + to_string(x.shape()) + " with " +
                         std::to_string(labels.size()) + " labels");
}

}  // namespace

Tensor pairwise_distance(const Tensor& embeddings, Distance metric) {
    return distances_forward(embeddings, metric).pdist;
}

TripletResult triplet_semihard_loss(const Tensor& embeddings, std::span<const int> labels,
                                    float margin, Distance metric) {
    check_labels("reference triplet_semihard_loss", embeddings, labels);
    const Distances dist = distances_forward(embeddings, metric);
    const std::size_t B = dist.B, BB = B * B;
    const float* pdist_matrix = dist.pdist.data();
    // adjacency = equal(labels, labels^T); adjacency_not = logical_not(adjacency)
    Floats adjacency(BB), adjacency_not(BB);
    for (std::size_t i = 0; i < B; ++i)
        for (std::size_t j = 0; j < B; ++j) {
            adjacency[i * B + j] = labels[i] == labels[j] ? 1.0f : 0.0f;
            adjacency_not[i * B + j] = 1.0f - adjacency[i * B + j];
        }
    // pdist_matrix_tile = tile(pdist_matrix, [B, 1]): row r is pdist_matrix[r % B].
    // mask = tile(adjacency_not, [B, 1]) & (pdist_matrix_tile > reshape(pdist_matrix^T, [-1, 1]))
    Floats pdist_matrix_tile(BB * B), mask(BB * B);
    Floats mask_final_flat(BB);  // reduce_sum(mask, 1) > 0, one per tile row
    for (std::size_t r = 0; r < BB; ++r) {
        const float threshold = pdist_matrix[(r % B) * B + r / B];  // (pdist^T)[r / B, r % B]
        float count = 0.0f;
        for (std::size_t c = 0; c < B; ++c) {
            const float v = pdist_matrix[(r % B) * B + c];
            pdist_matrix_tile[r * B + c] = v;
            mask[r * B + c] = (adjacency_not[(r % B) * B + c] > 0.0f && v > threshold) ? 1.0f : 0.0f;
            count += mask[r * B + c];
        }
        mask_final_flat[r] = count > 0.0f ? 1.0f : 0.0f;
    }
    // negatives_outside = transpose(reshape(masked_minimum(pdist_matrix_tile, mask), [B, B]))
    // negatives_inside = tile(masked_maximum(pdist_matrix, adjacency_not), [1, B])
    Floats shifted;
    Floats outside_flat(BB), inside(B);
    for (std::size_t r = 0; r < BB; ++r)
        outside_flat[r] = masked_extreme(&pdist_matrix_tile[r * B], &mask[r * B], B, true, shifted);
    for (std::size_t a = 0; a < B; ++a)
        inside[a] = masked_extreme(pdist_matrix + a * B, &adjacency_not[a * B], B, false, shifted);
    // semi_hard_negatives = where(mask_final, negatives_outside, negatives_inside), [a, p]
    // loss_mat = margin + (pdist_matrix - semi_hard_negatives)
    // mask_positives = adjacency - diag(ones); num_positives = reduce_sum(mask_positives)
    Floats loss_mat(BB), mask_positives(BB);
    float num_positives = 0.0f;
    double total = 0.0;  // reduce_sum: TF's tree order is its own; round the exact sum once
    for (std::size_t a = 0; a < B; ++a)
        for (std::size_t p = 0; p < B; ++p) {
            const std::size_t ap = a * B + p, pa = p * B + a;
            const float semi_hard = mask_final_flat[pa] > 0.0f ? outside_flat[pa] : inside[a];
            loss_mat[ap] = margin + (pdist_matrix[ap] - semi_hard);
            mask_positives[ap] = adjacency[ap] - (a == p ? 1.0f : 0.0f);
            num_positives += mask_positives[ap];
            total += std::max(loss_mat[ap] * mask_positives[ap], 0.0f);
        }
    TripletResult result;
    // triplet_loss = truediv(reduce_sum(maximum(loss_mat * mask_positives, 0)), num_positives)
    result.loss = float(total) / num_positives;

    // ---- gradient, in reverse ----
    const float dtotal = 1.0f / num_positives;  // RealDiv: dy / y
    Floats dpdist(BB, 0.0f), dinside(B, 0.0f), doutside_flat(BB, 0.0f);
    for (std::size_t a = 0; a < B; ++a)
        for (std::size_t p = 0; p < B; ++p) {
            const std::size_t ap = a * B + p, pa = p * B + a;
            const float dprod = loss_mat[ap] * mask_positives[ap] >= 0.0f ? dtotal : 0.0f;
            const float dloss_mat = dprod * mask_positives[ap];
            dpdist[ap] += dloss_mat;
            // where(): the gradient goes to the selected branch only; tile() sums over p.
            if (mask_final_flat[pa] > 0.0f) doutside_flat[pa] = -dloss_mat;
            else dinside[a] += -dloss_mat;
        }
    for (std::size_t a = 0; a < B; ++a)
        masked_extreme_backward(pdist_matrix + a * B, &adjacency_not[a * B], B, false, dinside[a],
                                &dpdist[a * B], shifted);
    // masked_minimum over the tile, then tile()'s gradient: row r adds into pdist row r % B.
    for (std::size_t r = 0; r < BB; ++r)
        if (doutside_flat[r] != 0.0f || std::isnan(doutside_flat[r]))
            masked_extreme_backward(&pdist_matrix_tile[r * B], &mask[r * B], B, true,
                                    doutside_flat[r], &dpdist[(r % B) * B], shifted);
    result.dembeddings = distances_backward(dist, dpdist);
    return result;
}

TripletResult triplet_hard_loss(const Tensor& embeddings, std::span<const int> labels, float margin,
                                bool soft, Distance metric) {
    check_labels("reference triplet_hard_loss", embeddings, labels);
    const Distances dist = distances_forward(embeddings, metric);
    const std::size_t B = dist.B, BB = B * B;
    const float* pdist_matrix = dist.pdist.data();
    Floats adjacency_not(BB), mask_positives(BB);
    for (std::size_t i = 0; i < B; ++i)
        for (std::size_t j = 0; j < B; ++j) {
            const float adjacency = labels[i] == labels[j] ? 1.0f : 0.0f;
            adjacency_not[i * B + j] = 1.0f - adjacency;
            mask_positives[i * B + j] = adjacency - (i == j ? 1.0f : 0.0f);
        }
    // hard_negatives = masked_minimum(pdist_matrix, adjacency_not)
    // hard_positives = masked_maximum(pdist_matrix, mask_positives)
    Floats shifted, z(B), per_anchor(B);
    double total = 0.0;  // reduce_mean, summed exactly and rounded once
    for (std::size_t a = 0; a < B; ++a) {
        const float hard_negative = masked_extreme(pdist_matrix + a * B, &adjacency_not[a * B], B, true, shifted);
        const float hard_positive = masked_extreme(pdist_matrix + a * B, &mask_positives[a * B], B, false, shifted);
        z[a] = hard_positive - hard_negative;
        // soft: log1p(exp(hp - hn)); else maximum(hp - hn + margin, 0)
        per_anchor[a] = soft ? std::log1p(std::exp(z[a])) : std::max(z[a] + margin, 0.0f);
        total += per_anchor[a];
    }
    TripletResult result;
    result.loss = float(total) / float(B);

    Floats dpdist(BB, 0.0f);
    const float dmean = 1.0f / float(B);
    for (std::size_t a = 0; a < B; ++a) {
        float dz;
        if (soft) {
            const float e = std::exp(z[a]);
            dz = dmean / (1.0f + e) * e;  // Log1pGrad, then ExpGrad
        } else {
            dz = z[a] + margin >= 0.0f ? dmean : 0.0f;
        }
        masked_extreme_backward(pdist_matrix + a * B, &mask_positives[a * B], B, false, dz,
                                &dpdist[a * B], shifted);
        masked_extreme_backward(pdist_matrix + a * B, &adjacency_not[a * B], B, true, -dz,
                                &dpdist[a * B], shifted);
    }
    result.dembeddings = distances_backward(dist, dpdist);
    return result;
}

}  // namespace semigrad::losses::reference
