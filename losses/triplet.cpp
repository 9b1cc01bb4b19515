// The fast triplet losses: TFA's semantics (docs/triplet-losses.md §5-§6) with O(B^2) mining (per anchor
// a counting sort of its positives and two table lookups per negative; TFA's masks are O(B^3)).
//
// Dimension letters: B batch size, D embedding width. Notation as in docs/triplet-losses.md: D[a,k] is the
// distance matrix (row a = anchor), a "positive" of a is p != a with y_p == y_a, a "negative" is
// n with y_n != y_a.
//
// Layout of both losses: one gemm for the distances (losses/pairwise_distance.cpp), then one
// parallel pass over anchors that mines, sums the hinge and writes row a of `coef`, the
// multiplicities of dloss/dD (+1 per use of D[a,p], -1 per use of D[a,n]), kept sparse
// (SparseRowsBuilder); the backward scales coef by dloss/num_positives (semi-hard) or dloss/B
// (hard) and hands it to the distance backward. Per-anchor partial sums are added in anchor
// order afterwards, so, given the distances, the result does not depend on the thread count
// (the distances themselves are OpenBLAS's, whose last bits may change with it).
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
#include <memory>
#include <string>
#include <vector>

#include "losses/semihard_mining.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad::losses {

namespace {

// Below this batch size the per-anchor work costs less than waking a thread team (B = 32 in the
// tutorial); the result does not depend on it.
constexpr std::size_t kParallelAnchors = 64;

void check_inputs(const char* op, const Tensor& x, std::span<const int> labels, float margin, Isa isa) {
    // Here, before any parallel region (an exception must not leave one).
    if (!cpu_runs(isa))
        throw ValueError(std::string(op) + ": this CPU does not run the " + isa_name(isa) + " path");
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

// One thread's lists of sparse gradient rows (see SparseRowsBuilder).
struct ThreadLists {
    std::vector<float> row;  // dense scratch row, all zero between anchors
    std::vector<std::uint32_t> columns;
    std::vector<float> values;
};

}  // namespace

struct TripletWorkspace::Impl {
    std::vector<std::unique_ptr<detail::SemihardMiner>> miners;  // per thread
    std::vector<ThreadLists> lists;                              // per thread
    std::vector<AnchorSums> sums;                                // per anchor
    std::shared_ptr<DistanceScratch> distance = std::make_shared<DistanceScratch>();
    // The sparse dD of the last node that was destroyed, kept for the next call: at B = 2048 its
    // ~800K entries are 6.4 MB that a fresh matrix would zero-fill and page-fault again on one
    // thread. Shared with the nodes, which may outlive the workspace.
    std::shared_ptr<SparseRows> spare_rows = std::make_shared<SparseRows>();

    // Before a parallel region of up to num_threads() threads: a slot per thread, and the sums
    // for B anchors, all zero.
    void prepare(std::size_t B) {
        const std::size_t threads = std::size_t(num_threads());
        if (miners.size() < threads) miners.resize(threads);
        if (lists.size() < threads) lists.resize(threads);
        sums.assign(B, AnchorSums{});
    }
    // Inside the region: this thread's miner for rows of B entries on path `isa`.
    detail::SemihardMiner& miner(std::size_t B, Isa isa) {
        std::unique_ptr<detail::SemihardMiner>& m = miners[std::size_t(thread_index())];
        if (!m || m->batch_size() != B || m->isa() != isa) m = std::make_unique<detail::SemihardMiner>(B, isa);
        return *m;
    }
};

TripletWorkspace::TripletWorkspace() : impl_(std::make_unique<Impl>()) {}
TripletWorkspace::~TripletWorkspace() = default;

void TripletWorkspace::release() {
    impl_->distance->release();
    *impl_->spare_rows = SparseRows();
    auto distance = std::move(impl_->distance);
    auto spare_rows = std::move(impl_->spare_rows);
    *impl_ = Impl();
    impl_->distance = std::move(distance);  // nodes alive may share these; they keep working
    impl_->spare_rows = std::move(spare_rows);
}

std::size_t TripletWorkspace::bytes() const {
    const SparseRows& spare = *impl_->spare_rows;
    std::size_t total = impl_->distance->bytes() + impl_->sums.capacity() * sizeof(AnchorSums) +
                        spare.start.capacity() * sizeof(std::size_t) +
                        spare.column.capacity() * sizeof(std::uint32_t) + spare.value.capacity() * sizeof(float);
    for (const auto& m : impl_->miners) total += m ? m->bytes() : 0;
    for (const ThreadLists& l : impl_->lists)
        total += (l.row.capacity() + l.values.capacity()) * sizeof(float) + l.columns.capacity() * sizeof(std::uint32_t);
    return total;
}

namespace {

// dD of a triplet loss, built one anchor row at a time: each thread adds into a dense scratch
// row (all zero between anchors), take_nonzero appends the row's non-zero entries, in column
// order, to the thread's own lists, and gather() copies the threads' rows into one CSR matrix.
// An anchor's row touches a few hundred of B columns (semi-hard: its active positives and the
// negatives they chose; hard: two entries and their ties), so there is no [B,B] buffer to zero
// and the distance backward computes G only at those entries. The lists live in the workspace:
// at B = 4096 they hold ~1.7M entries per thread, and fresh ones would be page-faulted on every
// step. The CSR matrix itself belongs to the loss's node.
class SparseRowsBuilder {
  public:
    SparseRowsBuilder(std::size_t B, bool active, Isa isa, TripletWorkspace::Impl& workspace)
        : B_(B), active_(active), kernels_(detail::loss_kernels(isa)), workspace_(workspace) {
        if (!active) return;
        // The spare's storage, handed back when the node holding these rows is destroyed.
        std::shared_ptr<SparseRows> spare = workspace.spare_rows;
        rows_ = std::shared_ptr<SparseRows>(new SparseRows(std::move(*spare)), [spare](SparseRows* rows) {
            *spare = std::move(*rows);
            delete rows;
        });
        *spare = SparseRows();
        rows_->start.assign(B + 1, 0);
        count_.assign(B, 0);
        offset_.assign(B, 0);
    }
    std::shared_ptr<const SparseRows> rows() const { return rows_; }

    // One thread's side, created inside the parallel region.
    class ThreadRows {
      public:
        explicit ThreadRows(SparseRowsBuilder& b) : b_(b), lists_(b.workspace_.lists[std::size_t(thread_index())]) {
            // All zero (take_nonzero leaves it so, and entries past B were zeroed by the call
            // that used them).
            if (b.active_ && lists_.row.size() < b.B_) lists_.row.resize(b.B_);
            dense_ = lists_.row.data();
        }
        void add(std::size_t k, float v) { dense_[k] += v; }
        float* dense() { return dense_; }  // the scratch row itself
        // Anchor a's row is complete.
        void end_row(std::size_t a) {
            if (lists_.columns.size() < used_ + b_.B_ + detail::kSlack) {
                lists_.columns.resize(2 * (used_ + b_.B_ + detail::kSlack));
                lists_.values.resize(lists_.columns.size());
            }
            b_.offset_[a] = used_;
            b_.count_[a] = b_.kernels_.take_nonzero(dense_, b_.B_, lists_.columns.data() + used_, lists_.values.data() + used_);
            used_ += b_.count_[a];
        }
        // After the anchor loop (whose end is a barrier), from every thread: one CSR matrix, each
        // thread copying the rows it built (the same static partition as that loop).
        void gather() {
            SparseRows& out = *b_.rows_;
#pragma omp single
            {
                for (std::size_t a = 0; a < b_.B_; ++a) out.start[a + 1] = out.start[a] + b_.count_[a];
                out.column.resize(out.start[b_.B_]);
                out.value.resize(out.start[b_.B_]);
            }
#pragma omp for schedule(static)
            for (long la = 0; la < long(b_.B_); ++la) {
                const std::size_t a = std::size_t(la), from = b_.offset_[a], to = out.start[a];
                std::copy_n(lists_.columns.data() + from, b_.count_[a], out.column.data() + to);
                std::copy_n(lists_.values.data() + from, b_.count_[a], out.value.data() + to);
            }
        }

      private:
        SparseRowsBuilder& b_;
        ThreadLists& lists_;
        float* dense_;
        std::size_t used_ = 0;
    };

  private:
    std::size_t B_;
    bool active_;
    const detail::LossKernels& kernels_;
    TripletWorkspace::Impl& workspace_;
    std::shared_ptr<SparseRows> rows_;
    std::vector<std::size_t> count_, offset_;  // per anchor: entries and where in its thread's list
};

// The one autograd node of a triplet loss: dD = rows * (dloss * scale), then the distance backward.
Var record_loss(float value, const Var& embeddings, const char* op,
                std::shared_ptr<const PairwiseDistance> dist, std::shared_ptr<const SparseRows> rows, float scale) {
    return record(Tensor::scalar(value), {embeddings}, op, [embeddings, dist, rows, scale](const Tensor& dout) {
        embeddings.node()->accumulate_grad(dist->backward(*rows, dout[0] * scale));
    });
}

}  // namespace

Var triplet_semihard_loss(const Var& embeddings, std::span<const int> labels, float margin,
                          Distance metric, TripletStats* stats, Isa isa, TripletWorkspace* workspace) {
    const char* op = "triplet_semihard_loss";
    check_inputs(op, embeddings.value(), labels, margin, isa);
    const bool need_grad = grad_enabled() && embeddings.requires_grad();
    const std::size_t B = embeddings.value().dim(0);
    TripletWorkspace own;  // when the caller keeps none
    TripletWorkspace::Impl& w = (workspace ? *workspace : own).impl();
    w.prepare(B);
    auto dist = std::make_shared<const PairwiseDistance>(embeddings.value(), metric, need_grad, isa, w.distance);
    const float* pdist_matrix = dist->distances().data();
    SparseRowsBuilder coef(B, need_grad, isa, w);
    std::vector<AnchorSums>& sums = w.sums;

    // Per anchor, in O(B + P log P) for its P positives (TFA's [B*B, B] mask is O(B^2) per
    // anchor): the miner (losses/semihard_mining.hpp) sorts the positives' distances and drops
    // every negative into the bucket of the positives it exceeds; the first non-empty bucket
    // after a positive holds the smallest negative strictly greater than it, which is what TFA's
    // masked_minimum over {n : D[a,n] > D[a,p]} selects. With none greater, the anchor's largest
    // negative (negatives_inside); with no negative at all, the row minimum.
#pragma omp parallel if (B >= kParallelAnchors)
    {
        detail::SemihardMiner& miner = w.miner(B, isa);
        const detail::MinedRow& r = miner.result();
        std::uint32_t* choice = miner.choice();
        float* uses = miner.uses();
        SparseRowsBuilder::ThreadRows dD(coef);
        auto add = [&dD](std::size_t k, float v) { dD.add(k, v); };
#pragma omp for schedule(static)
        for (long la = 0; la < long(B); ++la) {
            const std::size_t a = std::size_t(la);
            const float* row = pdist_matrix + a * B;
            AnchorSums& s = sums[a];
            miner.mine(row, labels.data(), a);
            const std::size_t m = r.m, n = r.n;
            for (std::size_t q = 0; q < m; ++q) s.positive_distance += r.value[q];
            s.positives = m;
            s.negatives = n;
            s.negative_distance = r.row_sum - s.positive_distance - row[a];

            // choice[q] = the first non-empty bucket after q (m + 1: none). The buckets are
            // increasing intervals, so it holds the smallest negative greater than v_q.
            std::uint32_t best = std::uint32_t(m + 1);
            for (std::size_t q = m; q-- > 0;) {
                if (r.bucket_ties[q + 1] > 0) best = std::uint32_t(q + 1);
                choice[q] = best;
            }
            std::fill_n(uses, m + 1, 0.0f);
            // negatives_inside = masked_maximum(D[a,:], adjacency_not[a,:]).
            const float inside = n ? shifted(r.farthest, r.row_min) : r.row_min;
            float inside_uses = 0.0f;  // pairs whose gradient goes to negatives_inside
            for (std::size_t q = 0; q < m; ++q) {
                const std::size_t p = r.positive[q];
                const std::uint32_t k = choice[q];
                // negatives_outside = masked_minimum over {n : D[a,n] > D[a,p]}.
                const float negative = k <= m ? shifted(r.bucket_min[k], r.row_max) : inside;
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
                if (r.bucket_ties[k] == 1) add(r.bucket_column[k], -uses[k]);
                else tied = true;
            }
            if (tied)
                for (std::size_t q = 0; q < n; ++q) {
                    const std::uint32_t k = r.rank[q];
                    if (r.bucket_ties[k] > 1 && uses[k] > 0.0f && r.negative_distance[q] == r.bucket_min[k])
                        add(r.negative[q], -(uses[k] / float(r.bucket_ties[k])));
                }
            if (inside_uses > 0.0f) {
                if (n == 0) {
                    // No negative: the gradient goes to the row minimum's entries (all of them tied).
                    std::size_t t = 0;
                    for (std::size_t k = 0; k < B; ++k) t += row[k] == r.row_min;
                    for (std::size_t k = 0; k < B; ++k)
                        if (row[k] == r.row_min) add(k, -inside_uses / float(t));
                } else if (r.farthest_ties == 1) {
                    add(r.farthest_column, -inside_uses);
                } else {
                    for (std::size_t q = 0; q < n; ++q)
                        if (r.negative_distance[q] == r.farthest)
                            add(r.negative[q], -(inside_uses / float(r.farthest_ties)));
                }
            }
            dD.end_row(a);
        }
        if (need_grad) dD.gather();
    }

    const Totals t = reduce(sums, stats, B, false);
    if (t.positives == 0) {
        // docs/triplet-losses.md §9: TFA computes 0/0 = NaN here. We return 0 and a zero gradient.
        return record(Tensor::scalar(0.0f), {embeddings}, op, [embeddings](const Tensor&) {
            embeddings.node()->accumulate_grad(Tensor::zeros(embeddings.shape()));
        });
    }
    const float num_positives = float(t.positives);
    return record_loss(float(t.loss) / num_positives, embeddings, op, std::move(dist), coef.rows(), 1.0f / num_positives);
}

Var triplet_hard_loss(const Var& embeddings, std::span<const int> labels, float margin, bool soft,
                      Distance metric, TripletStats* stats, Isa isa, TripletWorkspace* workspace) {
    const char* op = "triplet_hard_loss";
    check_inputs(op, embeddings.value(), labels, margin, isa);
    const bool need_grad = grad_enabled() && embeddings.requires_grad();
    const std::size_t B = embeddings.value().dim(0);
    TripletWorkspace own;  // when the caller keeps none
    TripletWorkspace::Impl& w = (workspace ? *workspace : own).impl();
    w.prepare(B);
    auto dist = std::make_shared<const PairwiseDistance>(embeddings.value(), metric, need_grad, isa, w.distance);
    const float* pdist_matrix = dist->distances().data();
    SparseRowsBuilder coef(B, need_grad, isa, w);
    std::vector<AnchorSums>& sums = w.sums;

    // O(B^2): one scan per anchor for its closest negative and farthest positive.
#pragma omp parallel if (B >= kParallelAnchors)
    {
        SparseRowsBuilder::ThreadRows dD(coef);
#pragma omp for schedule(static)
        for (long la = 0; la < long(B); ++la) {
            const std::size_t a = std::size_t(la);
            const float* row = pdist_matrix + a * B;
            AnchorSums& s = sums[a];
            const RowExtremes ex = row_extremes(row, B);
            // Closest negative and farthest positive, as selects (branch-free; the labels are in
            // random order). Their tied entries are found again by add_split below.
            // Each extreme also counts its ties and keeps its first column, so that the common
            // untied case places its gradient without scanning the row again.
            const int la_label = labels[a];
            float closest = INFINITY, farthest = -INFINITY, positive_sum = 0.0f;
            std::size_t negatives = 0, positives = 0;
            std::uint32_t closest_ties = 0, farthest_ties = 0, closest_at = 0, farthest_at = 0;
            for (std::size_t k = 0; k < B; ++k) {
                const float v = row[k];
                const bool is_negative = labels[k] != la_label, is_positive = !is_negative && k != a;
                const bool new_closest = is_negative && v < closest, new_farthest = is_positive && v > farthest;
                closest_ties = new_closest ? 1 : closest_ties + (is_negative && v == closest);
                farthest_ties = new_farthest ? 1 : farthest_ties + (is_positive && v == farthest);
                closest_at = new_closest ? std::uint32_t(k) : closest_at;
                farthest_at = new_farthest ? std::uint32_t(k) : farthest_at;
                closest = new_closest ? v : closest;
                farthest = new_farthest ? v : farthest;
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
                float* c = dD.dense();
                auto negative = [&](std::size_t k) { return labels[k] != labels[a]; };
                auto positive = [&](std::size_t k) { return labels[k] == labels[a] && k != a; };
                auto any = [](std::size_t) { return true; };
                // (An infinite extreme may have counted ties before its first column was seen:
                // those take the scan.)
                if (positives && farthest_ties == 1 && farthest > -INFINITY) c[farthest_at] += slope;
                else if (positives) add_split(c, row, B, farthest, slope, positive);
                else add_split(c, row, B, ex.min, slope, any);
                if (negatives && closest_ties == 1 && closest < INFINITY) c[closest_at] -= slope;
                else if (negatives) add_split(c, row, B, closest, -slope, negative);
                else add_split(c, row, B, ex.max, -slope, any);
            }
            if (need_grad) dD.end_row(a);
        }
        if (need_grad) dD.gather();
    }

    // reduce_mean: sum of the per-anchor losses over B.
    const Totals t = reduce(sums, stats, B, true);
    return record_loss(float(t.loss) / float(B), embeddings, op, std::move(dist), coef.rows(), 1.0f / float(B));
}

}  // namespace semigrad::losses
