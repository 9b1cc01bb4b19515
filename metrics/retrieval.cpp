// Retrieval metrics: blocked squared-distance rows from gemm, then per-query ranking.
//
// Dimension letters: M queries, N references, D embedding width, QB queries per block.
#include "metrics/retrieval.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"

namespace semigrad::metrics {
namespace {

// A block of distance rows holds about this many floats (16 MB): big enough for an efficient
// gemm, small enough to stay out of swap at 10,000 x 60,000.
constexpr std::size_t kBlockFloats = std::size_t{1} << 20;

void check_embeddings(const char* op, const char* what, const Tensor& x, std::size_t num_labels) {
    check_rank(op, what, x, 2);
    if (x.dim(0) != num_labels)
        throw ShapeError(std::string(op) + ": " + what + " " + to_string(x.shape()) + " has " +
                         std::to_string(x.dim(0)) + " rows but " + std::to_string(num_labels) +
                         " labels");
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x[i]))
            throw ValueError(std::string(op) + ": " + what + " " + to_string(x.shape()) +
                             " holds a non-finite value in row " + std::to_string(i / x.dim(1)));
}

std::vector<float> squared_norms(const Tensor& x) {
    const std::size_t N = x.dim(0), D = x.dim(1);
    std::vector<float> norms(N);
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < N; ++i) {
        float s = 0.0f;
        for (std::size_t d = 0; d < D; ++d) s += x[i * D + d] * x[i * D + d];
        norms[i] = s;
    }
    return norms;
}

// Shapes: queries [M,D], references [N,D]. Calls visit(q, j0, seg, len) for every query q and
// every block of RB references j0..j0+len-1, with seg[j] = ‖q − r_{j0+j}‖²; a query's blocks
// come in increasing j0. Each QB x RB tile is one gemm (QB ~ 1,000: OpenBLAS needs a tall
// operand to reach full speed), then its rows are visited in parallel: visit must only write
// memory owned by its q.
template <class Visit>
void for_each_distance_block(const Tensor& queries, const Tensor& references, std::size_t RB,
                             Visit visit) {
    const std::size_t M = queries.dim(0), N = references.dim(0), D = queries.dim(1);
    if (M == 0 || N == 0) return;
    const std::vector<float> qnorms = squared_norms(queries), rnorms = squared_norms(references);
    RB = std::clamp<std::size_t>(RB, 1, N);
    const std::size_t QB = std::clamp<std::size_t>(kBlockFloats / RB, 1, M);
    std::vector<float> tile(QB * RB);
    for (std::size_t q0 = 0; q0 < M; q0 += QB) {
        const std::size_t rows = std::min(QB, M - q0);
        for (std::size_t j0 = 0; j0 < N; j0 += RB) {
            const std::size_t cols = std::min(RB, N - j0);
            gemm(false, true, static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(D),
                 -2.0f, queries.data() + q0 * D, static_cast<int>(D), references.data() + j0 * D,
                 static_cast<int>(D), 0.0f, tile.data(), static_cast<int>(cols));
#pragma omp parallel for schedule(static)
            for (std::size_t r = 0; r < rows; ++r) {
                float* seg = tile.data() + r * cols;
                // Cancellation in ‖q‖² + ‖r‖² − 2·q·r can dip a near-zero distance below 0.
                for (std::size_t j = 0; j < cols; ++j)
                    seg[j] = std::max(0.0f, qnorms[q0 + r] + rnorms[j0 + j] + seg[j]);
                visit(q0 + r, j0, static_cast<const float*>(seg), cols);
            }
        }
    }
}

using Neighbours = std::vector<std::pair<float, std::size_t>>;  // (squared distance, index)

// Shapes: queries [M,D], references [N,D]. Merges references into each query's k nearest so
// far (nearest[q], ascending), reference j counting as index offset + j; with leave_one_out
// (queries == references) reference q is not a candidate for query q. Scanning j upwards and
// replacing only on a strictly smaller distance gives ties to the lower index.
void keep_k_nearest(const Tensor& queries, const Tensor& references, std::size_t k,
                    bool leave_one_out, std::size_t offset, std::vector<Neighbours>& nearest) {
    const auto keep_nearest = [&](std::size_t q, std::size_t j0, const float* seg,
                                  std::size_t len) {
        Neighbours& best = nearest[q];
        for (std::size_t j = 0; j < len; ++j) {
            if (leave_one_out && j0 + j == q) continue;
            const float d = seg[j];
            if (best.size() == k && !(d < best.back().first)) continue;
            if (best.size() < k) best.emplace_back();
            std::size_t pos = best.size() - 1;
            for (; pos > 0 && d < best[pos - 1].first; --pos) best[pos] = best[pos - 1];
            best[pos] = {d, offset + j0 + j};
        }
    };
    for_each_distance_block(queries, references, 4096, keep_nearest);
}

std::vector<Neighbours> k_nearest(const Tensor& queries, const Tensor& references, std::size_t k,
                                  bool leave_one_out) {
    std::vector<Neighbours> nearest(queries.dim(0));
    keep_k_nearest(queries, references, k, leave_one_out, 0, nearest);
    return nearest;
}

// How many samples carry each sample's label.
std::vector<std::size_t> label_counts(std::span<const int> labels) {
    std::unordered_map<int, std::size_t> count;
    for (int l : labels) ++count[l];
    std::vector<std::size_t> out(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) out[i] = count[labels[i]];
    return out;
}

// Mean of per-query scores over the queries that were scored (score >= 0); summed serially in
// double so the result does not depend on the thread count.
float mean_scored(const char* op, const std::vector<double>& score) {
    double sum = 0.0;
    std::size_t n = 0;
    for (double s : score)
        if (s >= 0.0) sum += s, ++n;
    if (n == 0)
        throw ValueError(std::string(op) + ": no sample shares its label with another sample");
    return static_cast<float>(sum / static_cast<double>(n));
}

}  // namespace

float precision_at_1(const Tensor& embeddings, std::span<const int> labels) {
    check_embeddings("precision_at_1", "embeddings", embeddings, labels.size());
    const std::size_t N = embeddings.dim(0);
    const std::vector<std::size_t> counts = label_counts(labels);
    const std::vector<Neighbours> nearest = k_nearest(embeddings, embeddings, 1, true);
    std::vector<double> score(N, -1.0);
    for (std::size_t q = 0; q < N; ++q)
        if (counts[q] >= 2)  // a lone label has nothing relevant to retrieve
            score[q] = labels[nearest[q][0].second] == labels[q] ? 1.0 : 0.0;
    return mean_scored("precision_at_1", score);
}

KnnAccuracy::KnnAccuracy(const Tensor& queries, std::span<const int> query_labels, int k)
    : queries_(&queries), query_labels_(query_labels.begin(), query_labels.end()), k_(k) {
    check_embeddings("knn_accuracy", "queries", queries, query_labels.size());
    if (queries.dim(0) == 0 || k < 1)
        throw ValueError("knn_accuracy: k = " + std::to_string(k) + " with " +
                         std::to_string(queries.dim(0)) + " queries (need M >= 1, k >= 1)");
    nearest_.resize(queries.dim(0));
}

void KnnAccuracy::add(const Tensor& references, std::span<const int> reference_labels) {
    check_embeddings("knn_accuracy", "references", references, reference_labels.size());
    if (queries_->dim(1) != references.dim(1))
        throw ShapeError("knn_accuracy: queries " + to_string(queries_->shape()) +
                         " and references " + to_string(references.shape()) + " differ in width");
    const std::size_t D = references.dim(1);
    for (std::size_t i = 0; i < references.dim(0); ++i) {
        pending_.insert(pending_.end(), references.data() + i * D, references.data() + (i + 1) * D);
        reference_labels_.push_back(reference_labels[i]);
        if (pending_.size() == kBlockRows * D) flush();
    }
}

void KnnAccuracy::flush() {
    if (pending_.empty()) return;
    const std::size_t D = queries_->dim(1), rows = pending_.size() / D;
    Tensor block = Tensor::uninitialised({rows, D});
    std::copy(pending_.begin(), pending_.end(), block.data());
    pending_.clear();
    // Indices continue from the blocks before, so ties still go to the earliest reference.
    keep_k_nearest(*queries_, block, static_cast<std::size_t>(k_), false,
                   reference_labels_.size() - rows, nearest_);
}

float KnnAccuracy::result() {
    flush();
    const std::size_t M = nearest_.size(), N = reference_labels_.size();
    if (static_cast<std::size_t>(k_) > N)
        throw ValueError("knn_accuracy: k = " + std::to_string(k_) + " with " + std::to_string(M) +
                         " queries and " + std::to_string(N) +
                         " references (need M >= 1, 1 <= k <= N)");
    std::vector<double> score(M);
    for (std::size_t q = 0; q < M; ++q) {
        // Majority vote; scanning neighbours nearest-first and replacing only on a strictly
        // larger count gives a tie to the label whose nearest neighbour comes first.
        int vote = 0;
        std::size_t vote_count = 0;
        for (const auto& [d, j] : nearest_[q]) {
            const int label = reference_labels_[j];
            const auto c = static_cast<std::size_t>(
                std::count_if(nearest_[q].begin(), nearest_[q].end(),
                              [&](const auto& b) { return reference_labels_[b.second] == label; }));
            if (c > vote_count) vote = label, vote_count = c;
        }
        score[q] = vote == query_labels_[q] ? 1.0 : 0.0;
    }
    return mean_scored("knn_accuracy", score);
}

float knn_accuracy(const Tensor& queries, std::span<const int> query_labels,
                   const Tensor& references, std::span<const int> reference_labels, int k) {
    KnnAccuracy accuracy(queries, query_labels, k);
    accuracy.add(references, reference_labels);
    return accuracy.result();
}

float map_at_r(const Tensor& embeddings, std::span<const int> labels) {
    check_embeddings("map_at_r", "embeddings", embeddings, labels.size());
    const std::size_t N = embeddings.dim(0);
    const std::vector<std::size_t> counts = label_counts(labels);
    std::vector<double> score(N, -1.0);
    const auto average_precision = [&](std::size_t q, std::size_t, const float* row, std::size_t) {
        const std::size_t R = counts[q] - 1;  // the other samples of q's label
        if (R == 0) return;
        // The R nearest others in (distance, index) order: select, then sort only those.
        std::vector<std::pair<float, std::size_t>> ranked;
        ranked.reserve(N - 1);
        for (std::size_t j = 0; j < N; ++j)
            if (j != q) ranked.emplace_back(row[j], j);
        const auto top = ranked.begin() + static_cast<std::ptrdiff_t>(R);
        std::nth_element(ranked.begin(), top - 1, ranked.end());
        std::sort(ranked.begin(), top);
        double sum = 0.0;
        std::size_t hits = 0;
        for (std::size_t i = 0; i < R; ++i)
            if (labels[ranked[i].second] == labels[q])
                sum += static_cast<double>(++hits) / static_cast<double>(i + 1);
        score[q] = sum / static_cast<double>(R);
    };
    // Full rows (one block of all N references): the R nearest are selected from the whole row.
    for_each_distance_block(embeddings, embeddings, N, average_precision);
    return mean_scored("map_at_r", score);
}

}  // namespace semigrad::metrics
