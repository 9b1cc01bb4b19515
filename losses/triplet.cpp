// The fast triplet losses: TFA's semantics (TRIPLET.md §5-§6) with O(B^2 log B) mining.
//
// Dimension letters: B batch size, D embedding width. Notation as in TRIPLET.md: D[a,k] is the
// distance matrix (row a = anchor), a "positive" of a is p != a with y_p == y_a, a "negative" is
// n with y_n != y_a.
//
// Layout of both losses: one gemm for the distances (losses/pairwise_distance.cpp), then one
// parallel pass over anchors that mines, sums the hinge and writes row a of `coef`, the
// multiplicities of dloss/dD (+1 per use of D[a,p], -1 per use of D[a,n]); the backward scales
// coef by dloss/num_positives (semi-hard) or dloss/B (hard) and hands it to the distance
// backward. The semi-hard coef is sparse (an anchor's active positives and the negatives they
// chose: SparseRows, built from per-thread lists in the same parallel region), the hard one a
// dense [B,B] tensor. Per-anchor partial sums are added in anchor order afterwards, so the result does not
// depend on the thread count.
//
// Exact ties. TF's reduce_min/reduce_max split the gradient evenly over tied extremes, and so do
// we: every entry of the row equal to the selected distance (within the selected mask) gets an
// equal share. Distances of normalised embeddings lie on a grid of about 1e-7, so at B in the
// thousands exact ties are routine, not measure-zero. Two corner cases of TF's rule are not
// reproduced: distinct distances whose shifted values (X - R) round equal (only possible when
// X < R/2, Sterbenz), and a masked extreme equal to the row extreme while other entries of the
// row share it (then TF also routes a share through R to those entries). Values are unaffected.
#include "losses/triplet.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "tensor/error.hpp"

namespace semigrad::losses {

namespace {

// Below this batch size the per-anchor work costs less than waking a thread team (B = 32 in the
// tutorial); the result does not depend on it.
constexpr std::size_t kParallelAnchors = 64;

void check_inputs(const char* op, const Tensor& x, std::span<const int> labels, float margin) {
    if (x.ndim() != 2 || x.dim(0) == 0)
        throw ShapeError(std::string(op) + ": embeddings must be [B,D] with B >= 1, got " +
                         to_string(x.shape()));
    if (labels.size() != x.dim(0))
        throw ShapeError(std::string(op) + ": " + std::to_string(labels.size()) +
                         " labels for embeddings " + to_string(x.shape()));
    if (!std::isfinite(margin))
        throw ValueError(std::string(op) + ": margin must be finite, got " + std::to_string(margin));
}

// TFA's masked_minimum / masked_maximum return min_k((X_k - R) * M_k) + R with R the row max /
// row min, i.e. (X_k* - R) + R, which may differ from X_k* by an ulp of R. We reproduce that.
inline float shifted(float x, float r) { return (x - r) + r; }

struct RowExtremes {
    float max, min;
    double sum;
};

// Over the whole, unmasked row, diagonal included (as TF's reduce_max/reduce_min), plus the
// row sum for the statistics. Eight independent lanes, so the loop vectorises.
RowExtremes row_extremes(const float* row, std::size_t B) {
    constexpr std::size_t L = 8;
    float mx[L], mn[L], sm[L];
    for (std::size_t l = 0; l < L; ++l) mx[l] = mn[l] = row[0], sm[l] = 0.0f;
    std::size_t k = 0;
    for (; k + L <= B; k += L)
        for (std::size_t l = 0; l < L; ++l) {
            const float v = row[k + l];
            mx[l] = v > mx[l] ? v : mx[l];
            mn[l] = v < mn[l] ? v : mn[l];
            sm[l] += v;
        }
    for (; k < B; ++k) mx[0] = std::max(mx[0], row[k]), mn[0] = std::min(mn[0], row[k]), sm[0] += row[k];
    RowExtremes e{mx[0], mn[0], 0.0};
    for (std::size_t l = 0; l < L; ++l) e.max = std::max(e.max, mx[l]), e.min = std::min(e.min, mn[l]), e.sum += sm[l];
    return e;
}

// max of v[0..n) (-inf when n = 0), in eight independent lanes so that the loop vectorises.
float max_of(const float* v, std::size_t n) {
    constexpr std::size_t L = 8;
    float mx[L];
    for (std::size_t l = 0; l < L; ++l) mx[l] = -INFINITY;
    std::size_t k = 0;
    for (; k + L <= n; k += L)
        for (std::size_t l = 0; l < L; ++l) mx[l] = v[k + l] > mx[l] ? v[k + l] : mx[l];
    for (; k < n; ++k) mx[0] = v[k] > mx[0] ? v[k] : mx[0];
    float m = mx[0];
    for (std::size_t l = 1; l < L; ++l) m = mx[l] > m ? mx[l] : m;
    return m;
}

// The bits of a distance (>= 0) as an unsigned key with the same order; +0.0f folds -0 into +0.
inline std::uint32_t order_key(float v) {
    v += 0.0f;
    std::uint32_t k;
    std::memcpy(&k, &v, sizeof k);
    return k;
}

// Records are (key << 32 | column). LSD radix sort on the key, 8 bits a pass, skipping digits
// all keys share (distances of normalised embeddings share their exponent byte). Stable, so
// equal keys stay in column order. ~3x faster than std::sort at B = 4096.
void radix_sort_by_key(std::uint64_t* rec, std::uint64_t* tmp, std::size_t n) {
    if (n < 2) return;
    std::uint32_t count[4][256] = {};
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t key = std::uint32_t(rec[i] >> 32);
        for (int b = 0; b < 4; ++b) ++count[b][(key >> (8 * b)) & 255u];
    }
    std::uint64_t *src = rec, *dst = tmp;
    for (int b = 0; b < 4; ++b) {
        const int shift = 32 + 8 * b;
        if (count[b][(src[0] >> shift) & 255u] == n) continue;
        std::uint32_t offset[256], sum = 0;
        for (int d = 0; d < 256; ++d) offset[d] = sum, sum += count[b][d];
        for (std::size_t i = 0; i < n; ++i) dst[offset[(src[i] >> shift) & 255u]++] = src[i];
        std::swap(src, dst);
    }
    if (src != rec) std::memcpy(rec, src, n * sizeof *rec);
}

// Adds `weight / t` to c[k] for each of the t entries k of the row with row[k] == value that pass
// `in_mask` (TF's even split over tied extremes).
template <class Mask>
void add_split(float* c, const float* row, std::size_t B, float value, float weight, Mask in_mask) {
    std::size_t t = 0;
    for (std::size_t k = 0; k < B; ++k) t += in_mask(k) && row[k] == value;
    const float share = weight / float(t);
    for (std::size_t k = 0; k < B; ++k)
        if (in_mask(k) && row[k] == value) c[k] += share;
}

// Per anchor, the positives' distances v_0 <= ... <= v_{m-1} are sorted, and each negative
// distance d falls into bucket k(d) = #{q : v_q < d}: d is a candidate (d > v_q) for exactly the
// positives of rank q < k(d). `bucket[k]` keeps the smallest negative of bucket k, with how many
// negatives tie with it (equal distances share a bucket) and the first one's column.
struct Bucket {
    float min;
    std::uint32_t ties, column;
};

// k(d) for sorted v[0..m) in O(1) expected: the range [v_0, v_{m-1}] is cut into `cells` equal
// cells, first[c] counts the positives of cells below c, and a short scan finishes the count.
// (A binary search per negative measured slower: its branches are unpredictable.)
// Exact: cell() is monotone in d (a subtraction, a product by s >= 0 and clamps are), so a
// positive in a lower cell is < d and one in a higher cell is > d.
class RankTable {
  public:
    void build(const float* v, std::size_t m, std::vector<std::uint32_t>& first) {
        v_ = v, m_ = m;
        cells_ = 4 * m + 1;
        lo_ = m ? v[0] : 0.0f;
        const float range = m ? v[m - 1] - v[0] : 0.0f;
        s_ = range > 0.0f && std::isfinite(range) ? float(cells_) / range : 0.0f;
        first.resize(cells_ + 1);
        // first[c] = #{q : cell(v_q) < c}, one cell() per positive (v is sorted, cell monotone).
        std::size_t c = 0;
        for (std::size_t q = 0; q < m; ++q)
            for (const std::size_t cq = cell(v[q]); c <= cq; ++c) first[c] = std::uint32_t(q);
        for (; c <= cells_; ++c) first[c] = std::uint32_t(m);
        first_ = first.data();
    }
    // Needs v[m] = +inf as a sentinel. With 4m cells a cell holds about one positive, so the
    // first step is taken without a branch and the loop rarely runs (mispredicted branches were
    // most of the cost).
    std::size_t rank(float d) const {
        std::size_t q = first_[cell(d)];
        q += v_[q] < d;
        while (v_[q] < d) ++q;
        return q;
    }

  private:
    std::size_t cell(float d) const {
        float t = (d - lo_) * s_;
        t = t > 0.0f ? t : 0.0f;  // also NaN (s = 0, d = inf) -> 0
        const float top = float(cells_ - 1);
        return std::size_t(std::int32_t(t < top ? t : top));  // int32: no slow float -> uint64
    }
    const float* v_ = nullptr;
    const std::uint32_t* first_ = nullptr;
    std::size_t m_ = 0, cells_ = 1;
    float lo_ = 0.0f, s_ = 0.0f;
};

// Per-anchor partial results, summed in anchor order afterwards.
struct AnchorSums {
    double loss = 0, positive_distance = 0, negative_distance = 0;
    std::size_t positives = 0, negatives = 0, active = 0;
};

struct Totals {
    double loss = 0;
    std::size_t positives = 0, active = 0;
};

Totals reduce(const std::vector<AnchorSums>& rows, TripletStats* stats, std::size_t anchors,
              bool per_anchor) {
    AnchorSums t;
    for (const AnchorSums& r : rows) {
        t.loss += r.loss, t.positive_distance += r.positive_distance;
        t.negative_distance += r.negative_distance;
        t.positives += r.positives, t.negatives += r.negatives, t.active += r.active;
    }
    if (stats) {
        *stats = TripletStats{};
        stats->positive_pairs = t.positives;
        stats->active_pairs = t.active;
        const std::size_t denominator = per_anchor ? anchors : t.positives;
        stats->fraction_active = denominator ? float(double(t.active) / double(denominator)) : 0.0f;
        stats->mean_positive_distance = t.positives ? float(t.positive_distance / double(t.positives)) : 0.0f;
        stats->mean_negative_distance = t.negatives ? float(t.negative_distance / double(t.negatives)) : 0.0f;
        stats->no_positive_pair = t.positives == 0;
    }
    return {t.loss, t.positives, t.active};
}

// The semi-hard loss's sparse dD, the previous call's when its graph has been released (no one
// else holds it): at B = 4096 its ~27 MB would otherwise be zero-filled and page-faulted on every
// training step. A graph still alive keeps its own.
std::shared_ptr<SparseRows> reusable_sparse_rows() {
    thread_local std::shared_ptr<SparseRows> last;
    if (!last || last.use_count() > 1) last = std::make_shared<SparseRows>();
    return last;
}

// The one autograd node of a triplet loss: dD = coef * (dloss * scale), then the distance backward.
Var record_loss(float value, const Var& embeddings, const char* op,
                std::shared_ptr<const PairwiseDistance> dist, Tensor coef, float scale) {
    auto saved = std::make_shared<const Tensor>(std::move(coef));
    return record(Tensor::scalar(value), {embeddings}, op,
                  [embeddings, dist, saved, scale](const Tensor& dout) {
                      embeddings.node()->accumulate_grad(dist->backward(*saved, dout[0] * scale));
                  });
}

}  // namespace

Var triplet_semihard_loss(const Var& embeddings, std::span<const int> labels, float margin,
                          Distance metric, TripletStats* stats) {
    const char* op = "triplet_semihard_loss";
    check_inputs(op, embeddings.value(), labels, margin);
    const bool need_grad = grad_enabled() && embeddings.requires_grad();
    auto dist = std::make_shared<const PairwiseDistance>(embeddings.value(), metric, need_grad);
    const std::size_t B = embeddings.value().dim(0);
    const float* pdist_matrix = dist->distances().data();
    // dD, by anchor rows: an anchor's gradient touches its active positives and the negatives
    // they chose (plus tied ones), a few hundred of B columns, so it is kept sparse (SparseRows):
    // no [B,B] buffer to zero, and G is computed only at those entries.
    const std::shared_ptr<SparseRows> saved = reusable_sparse_rows();
    SparseRows& coef = *saved;
    std::vector<std::size_t> row_count(need_grad ? B : 0), row_offset(need_grad ? B : 0);
    if (need_grad) coef.start.assign(B + 1, 0);
    std::vector<AnchorSums> sums(B);

    // Per anchor, in O(B + P log P) for its P positives (TFA's [B*B, B] mask is O(B^2) per
    // anchor): sort the positives' distances, drop every negative into the bucket of the
    // positives it exceeds (RankTable), and a suffix minimum over the buckets gives each positive
    // the smallest negative strictly greater than it, which is what TFA's masked_minimum over
    // {n : D[a,n] > D[a,p]} selects. With none greater, the anchor's largest negative
    // (negatives_inside); with no negative at all, the row minimum. At B = 4096 this costs a
    // quarter of sorting every anchor's negatives.
#pragma omp parallel if (B >= kParallelAnchors)
    {
        std::vector<std::uint64_t> positives(B), scratch(B);
        std::vector<std::uint32_t> negatives(B), rank(B), first;
        std::vector<float> value(B + 1), negative_distance(B);
        std::vector<Bucket> bucket(B + 1);
        std::vector<std::uint32_t> choice(B + 1);
        std::vector<float> uses(B + 1);
        // This thread's rows of dD: a dense scratch row (kept all zero between anchors) and the
        // columns it touched, in first-touch order, appended to `columns`/`values`.
        std::vector<float> c(need_grad ? B : 0);
        std::vector<unsigned char> touched(need_grad ? B : 0);
        // Kept across calls (OpenMP's threads persist): at B = 4096 each holds ~1.7M entries.
        thread_local std::vector<std::uint32_t> columns;
        thread_local std::vector<float> values;
        columns.clear(), values.clear();
        std::vector<std::uint32_t> touched_list;
        auto add = [&](std::size_t k, float v) {
            if (!touched[k]) touched[k] = 1, touched_list.push_back(std::uint32_t(k));
            c[k] += v;
        };
#pragma omp for schedule(static)
        for (long la = 0; la < long(B); ++la) {
            const std::size_t a = std::size_t(la);
            const float* row = pdist_matrix + a * B;
            AnchorSums& s = sums[a];
            const RowExtremes ex = row_extremes(row, B);
            // Split the row into negatives and positives (sort records), without branches: the
            // labels are in random order.
            std::size_t n = 0, m = 0;
            const int la_label = labels[a];
            for (std::size_t k = 0; k < B; ++k) {
                const bool is_negative = labels[k] != la_label;
                negatives[n] = std::uint32_t(k);
                negative_distance[n] = row[k];
                positives[m] = (std::uint64_t(order_key(row[k])) << 32) | k;
                n += is_negative;
                m += !is_negative && k != a;
            }
            radix_sort_by_key(positives.data(), scratch.data(), m);
            for (std::size_t q = 0; q < m; ++q) value[q] = row[positives[q] & 0xffffffffu];
            for (std::size_t q = 0; q < m; ++q) s.positive_distance += value[q];
            value[m] = INFINITY;
            s.positives = m;
            s.negatives = n;
            s.negative_distance = ex.sum - s.positive_distance - row[a];

            RankTable table;
            table.build(value.data(), m, first);
            for (std::size_t k = 0; k <= m; ++k) bucket[k] = {INFINITY, 0, 0}, uses[k] = 0.0f;
            // The negatives in three passes over their distances (contiguous copies): the farthest
            // and its ties (lane-parallel), every bucket index (independent lookups, which the
            // core overlaps), then the bucket minima (the only read-modify-write).
            const float* nd = negative_distance.data();
            const float farthest = max_of(nd, n);
            std::uint32_t farthest_ties = 0;
            for (std::size_t q = 0; q < n; ++q) farthest_ties += nd[q] == farthest;
            for (std::size_t q = 0; q < n; ++q) rank[q] = std::uint32_t(table.rank(nd[q]));
            for (std::size_t q = 0; q < n; ++q) {
                const float d = nd[q];
                Bucket& b = bucket[rank[q]];
                // Bit masks, not branches (GCC turned the ?: selects into a jump, mispredicted on
                // about half the negatives): all ones when d is the bucket's new minimum.
                const std::uint32_t smaller = 0u - std::uint32_t(d < b.min);
                b.ties = (smaller & 1u) | (~smaller & (b.ties + (d == b.min)));
                b.column = (smaller & negatives[q]) | (~smaller & b.column);
                b.min = d < b.min ? d : b.min;
            }
            // choice[q] = the bucket holding min over buckets q+1..m (m + 1: none). Buckets hold
            // distinct distances (ties share a bucket), so the minimum is unique.
            std::uint32_t best = std::uint32_t(m + 1);
            for (std::size_t q = m; q-- > 0;) {
                const Bucket& b = bucket[q + 1];
                if (b.ties > 0 && (best > m || b.min < bucket[best].min)) best = std::uint32_t(q + 1);
                choice[q] = best;
            }
            // negatives_inside = masked_maximum(D[a,:], adjacency_not[a,:]).
            const float inside = n ? shifted(farthest, ex.min) : ex.min;
            float inside_uses = 0.0f;  // pairs whose gradient goes to negatives_inside
            for (std::size_t q = 0; q < m; ++q) {
                const std::size_t p = positives[q] & 0xffffffffu;
                const std::uint32_t k = choice[q];
                // negatives_outside = masked_minimum over {n : D[a,n] > D[a,p]}.
                const float negative = k <= m ? shifted(bucket[k].min, ex.max) : inside;
                const float loss_mat = margin + (row[p] - negative);
                if (loss_mat > 0.0f) s.loss += loss_mat, ++s.active;
                // TF's maximum(x, 0) passes the gradient where x >= 0.
                if (!need_grad || !(loss_mat >= 0.0f)) continue;
                add(p, 1.0f);
                if (k <= m) uses[k] += 1.0f;
                else inside_uses += 1.0f;
            }
            if (!need_grad) continue;
            // Each selected negative takes -1 per pair that used it; tied negatives share it
            // evenly (TF's reduce_min/max rule), found in one more pass over the negatives only
            // when some tie was used.
            bool tied = false;
            for (std::size_t k = 0; k <= m; ++k) {
                if (uses[k] == 0.0f) continue;
                if (bucket[k].ties == 1) add(bucket[k].column, -uses[k]);
                else tied = true;
            }
            if (n == 0 && inside_uses > 0.0f) {
                // No negative: the gradient goes to the row minimum's entries (all of them tied).
                std::size_t t = 0;
                for (std::size_t k = 0; k < B; ++k) t += row[k] == ex.min;
                for (std::size_t k = 0; k < B; ++k)
                    if (row[k] == ex.min) add(k, -inside_uses / float(t));
            }
            if (tied)
                for (std::size_t q = 0; q < n; ++q) {
                    const Bucket& b = bucket[rank[q]];
                    if (b.ties > 1 && uses[rank[q]] > 0.0f && nd[q] == b.min) add(negatives[q], -(uses[rank[q]] / float(b.ties)));
                }
            // Most anchors have pairs without a semi-hard negative: their farthest negative(s),
            // found by a plain scan (a column with a bucket share too gets that one first).
            if (inside_uses > 0.0f)
                for (std::size_t q = 0; q < n; ++q)
                    if (nd[q] == farthest) add(negatives[q], -(inside_uses / float(farthest_ties)));
            row_offset[a] = columns.size();
            row_count[a] = touched_list.size();
            for (const std::uint32_t k : touched_list) {
                columns.push_back(k);
                values.push_back(c[k]);
                c[k] = 0.0f;
                touched[k] = 0;
            }
            touched_list.clear();
        }
        if (need_grad) {
            // Gather the threads' rows into one CSR matrix, each thread copying the rows it mined
            // (the same static partition as the loop above, whose end is a barrier).
#pragma omp single
            {
                for (std::size_t a = 0; a < B; ++a) coef.start[a + 1] = coef.start[a] + row_count[a];
                coef.column.resize(coef.start[B]);
                coef.value.resize(coef.start[B]);
            }
#pragma omp for schedule(static)
            for (long la = 0; la < long(B); ++la) {
                const std::size_t a = std::size_t(la), from = row_offset[a], to = coef.start[a];
                std::copy_n(columns.data() + from, row_count[a], coef.column.data() + to);
                std::copy_n(values.data() + from, row_count[a], coef.value.data() + to);
            }
        }
    }

    const Totals t = reduce(sums, stats, B, false);
    if (t.positives == 0) {
        // TRIPLET.md §9: TFA computes 0/0 = NaN here. We return 0 and a zero gradient.
        return record(Tensor::scalar(0.0f), {embeddings}, op, [embeddings](const Tensor&) {
            embeddings.node()->accumulate_grad(Tensor::zeros(embeddings.shape()));
        });
    }
    const float num_positives = float(t.positives);
    const float scale = 1.0f / num_positives;
    return record(Tensor::scalar(float(t.loss) / num_positives), {embeddings}, op,
                  [embeddings, dist, saved, scale](const Tensor& dout) {
                      embeddings.node()->accumulate_grad(dist->backward(*saved, dout[0] * scale));
                  });
}

Var triplet_hard_loss(const Var& embeddings, std::span<const int> labels, float margin, bool soft,
                      Distance metric, TripletStats* stats) {
    const char* op = "triplet_hard_loss";
    check_inputs(op, embeddings.value(), labels, margin);
    const bool need_grad = grad_enabled() && embeddings.requires_grad();
    auto dist = std::make_shared<const PairwiseDistance>(embeddings.value(), metric, need_grad);
    const std::size_t B = embeddings.value().dim(0);
    const float* pdist_matrix = dist->distances().data();
    Tensor coef = need_grad ? Tensor({B, B}) : Tensor();
    std::vector<AnchorSums> sums(B);

    // O(B^2): one scan per anchor for its closest negative and farthest positive.
#pragma omp parallel for schedule(static) if (B >= kParallelAnchors)
    for (long la = 0; la < long(B); ++la) {
        const std::size_t a = std::size_t(la);
        const float* row = pdist_matrix + a * B;
        AnchorSums& s = sums[a];
        const RowExtremes ex = row_extremes(row, B);
        // Closest negative and farthest positive, as selects (branch-free; the labels are in
        // random order). Their tied entries are found again by add_split below.
        const int la_label = labels[a];
        float closest = INFINITY, farthest = -INFINITY, positive_sum = 0.0f;
        std::size_t negatives = 0, positives = 0;
        for (std::size_t k = 0; k < B; ++k) {
            const float v = row[k];
            const bool is_negative = labels[k] != la_label, is_positive = !is_negative && k != a;
            closest = is_negative && v < closest ? v : closest;
            farthest = is_positive && v > farthest ? v : farthest;
            positive_sum += is_positive ? v : 0.0f;
            negatives += is_negative;
            positives += is_positive;
        }
        s.negatives = negatives, s.positives = positives;
        s.positive_distance = positive_sum;
        s.negative_distance = ex.sum - positive_sum - row[a];
        // hard_negatives = masked_minimum(D, adjacency_not): the row max without negatives.
        const float hard_negative = negatives ? shifted(closest, ex.max) : ex.max;
        // hard_positives = masked_maximum(D, mask_positives): the row min without positives.
        const float hard_positive = positives ? shifted(farthest, ex.min) : ex.min;
        const float z = hard_positive - hard_negative;
        float slope;
        if (soft) {
            // TFA's log1p(exp(z)), overflow included (no guard, as in TFA); d/dz = e/(1+e).
            const float e = std::exp(z);
            s.loss = std::log1p(e);
            slope = e / (1.0f + e);
            s.active = z > 0.0f;
        } else {
            const float hinge = z + margin;
            s.loss = hinge > 0.0f ? hinge : 0.0f;
            slope = hinge >= 0.0f ? 1.0f : 0.0f;
            s.active = hinge > 0.0f;
        }
        if (need_grad && slope != 0.0f) {
            float* c = coef.data() + a * B;
            auto negative = [&](std::size_t k) { return labels[k] != labels[a]; };
            auto positive = [&](std::size_t k) { return labels[k] == labels[a] && k != a; };
            auto any = [](std::size_t) { return true; };
            if (positives) add_split(c, row, B, farthest, slope, positive);
            else add_split(c, row, B, ex.min, slope, any);
            if (negatives) add_split(c, row, B, closest, -slope, negative);
            else add_split(c, row, B, ex.max, -slope, any);
        }
    }

    // reduce_mean: sum of the per-anchor losses over B.
    const Totals t = reduce(sums, stats, B, true);
    return record_loss(float(t.loss) / float(B), embeddings, op, std::move(dist), std::move(coef),
                       1.0f / float(B));
}

}  // namespace semigrad::losses
