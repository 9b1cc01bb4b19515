#include "losses/pairwise_distance.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <cblas.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "tensor/error.hpp"
#include "tensor/gemm.hpp"
#include "tensor/memory.hpp"
#include "tensor/parallel.hpp"
#include "losses/loss_kernels.hpp"

namespace semigrad::losses {

// Below this batch size a [B,B] pass costs less than waking a thread team.
constexpr std::size_t kParallelRows = 128;

// Tiles of the [B,B] passes that write a matrix and its transpose (kTile x kTile floats, 16 KiB:
// two of them stay in L1).
constexpr std::size_t kTile = 64;

// Padding of the sparse backward's S rows (see backward(SparseRows)): one cache line.
constexpr std::size_t kRowPad = 16;

const char* distance_name(Distance metric) {
    switch (metric) {
        case Distance::L2: return "L2";
        case Distance::SquaredL2: return "squared-L2";
        case Distance::Angular: return "angular";
    }
    return "?";
}

Distance parse_distance(std::string_view name) {
    for (Distance metric : {Distance::L2, Distance::SquaredL2, Distance::Angular})
        if (name == distance_name(metric)) return metric;
    throw ValueError("unknown distance metric '" + std::string(name) + "' (expected L2, squared-L2 or angular)");
}


// Row sums of squares, accumulated in double: TF's reduce_sum has its own (tree) order, so the
// best we can do is round the exact sum once. Rows in parallel (each is a chain of D dependent
// additions), so that a second thread does not wait here.
static std::vector<float> row_squared_norms(const float* x, std::size_t B, std::size_t D) {
    std::vector<float> sq(B);
    const long nB = long(B);
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
    for (long li = 0; li < nB; ++li) {
        const std::size_t i = std::size_t(li);
        double s = 0.0;
        for (std::size_t d = 0; d < D; ++d) s += double(x[i * D + d]) * x[i * D + d];
        sq[i] = float(s);
    }
    return sq;
}

// From this batch size on the Gram matrix comes from cblas_ssyrk, which fills only the upper
// triangle: half of sgemm's flops (B=2048, D=256 on 2 threads: 8.6 ms instead of 12 ms with
// OpenBLAS's SkylakeX kernels, 36 instead of 78 ms with its Prescott fallback). Its last bit may
// differ from sgemm's, so below this size we keep sgemm, which is bit for bit what the literal
// port (losses/triplet_reference.hpp) computes and what the tests compare with.
constexpr std::size_t kSyrkRows = 1024;

// gram [B,B] = x x^T for x [B,D]; returns true when only the upper triangle (j >= i) is filled.
static bool gram_matrix(const float* x, std::size_t B, std::size_t D, float* gram) {
    if (B < kSyrkRows) {
        gemm(false, true, int(B), int(B), int(D), 1.0f, x, int(D), x, int(D), 0.0f, gram, int(B));
        return false;
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, int(B), int(D), 1.0f, x, int(D), 0.0f, gram,
                int(B));
    return true;
}

// In place over the [B,B] Gram matrix: f(i, j0, j1, row_i) turns gram_ij into D_ij for j in
// [j0, j1) (a contiguous stretch, so f vectorises). When only the upper triangle is filled, f
// sees each pair i <= j once and the tile is then mirrored, so D comes out exactly symmetric;
// the work goes in 64x64 tile pairs (I, J >= I) so the transposed writes stay in cache. A tile
// pair writes only its own two tiles and reads only the upper one, which no other pair writes.
// Row tile I owns nb - I pairs, hence the round-robin schedule.
template <class F>
static void map_gram(float* g, std::size_t B, bool upper_only, F f) {
    const long nB = long(B);
    if (!upper_only) {
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
        for (long i = 0; i < nB; ++i) f(std::size_t(i), 0, B, g + std::size_t(i) * B);
        return;
    }
    constexpr std::size_t T = 64;
    const long nblocks = long((B + T - 1) / T);
#pragma omp parallel if (B >= kParallelRows)
    {
        // The mirror goes through a contiguous copy of the tile: rows of g are B floats apart, and
        // at B = 4096 (16 KiB) a column walk hits one cache set; this halved the pass's time.
        std::vector<float> tile(T * T);
#pragma omp for schedule(static, 1)
        for (long ib = 0; ib < nblocks; ++ib) {
            const std::size_t i0 = std::size_t(ib) * T, i1 = std::min(B, i0 + T);
            for (std::size_t j0 = i0; j0 < B; j0 += T) {
                const std::size_t j1 = std::min(B, j0 + T);
                for (std::size_t i = i0; i < i1; ++i) {
                    f(i, std::max(j0, i), j1, g + i * B);
                    std::copy(g + i * B + j0, g + i * B + j1, tile.data() + (i - i0) * T);
                }
                for (std::size_t j = j0; j < j1; ++j)
                    for (std::size_t i = i0; i < std::min(i1, j); ++i) g[j * B + i] = tile[(i - i0) * T + (j - j0)];
            }
        }
    }
}

void DistanceScratch::release() { *this = DistanceScratch(); }

std::size_t DistanceScratch::bytes() const {
    std::size_t total = (spare.size() + s_size + g.capacity() + panels.capacity()) * sizeof(float) + tile_first.capacity() * sizeof(std::size_t);
    for (const RowsOfS& r : rows_of_s)
        total += (r.row.capacity() + r.start.capacity()) * sizeof(std::size_t) +
                 (r.sum.capacity() + r.value.capacity()) * sizeof(float) + r.column.capacity() * sizeof(std::uint32_t);
    return total;
}

// A [B,B] buffer: the scratch's spare when it has the right shape, else a fresh one on huge
// pages (advised before its first write).
static Tensor square_buffer(DistanceScratch& scratch, std::size_t B) {
    if (scratch.spare.ndim() == 2 && scratch.spare.dim(0) == B && scratch.spare.dim(1) == B) {
        Tensor t = std::move(scratch.spare);
        scratch.spare = Tensor();  // a moved-from xarray may keep its shape
        return t;
    }
    scratch.spare = Tensor();  // a spare of another size is not kept beside the new buffer
    Tensor fresh = Tensor::uninitialised({B, B});
    advise_huge_pages(fresh.data(), B * B * sizeof(float));
    return fresh;
}

PairwiseDistance::~PairwiseDistance() {
    if (D_.ndim() == 2 && D_.size() > 0) scratch_->spare = std::move(D_);
}

DistanceScratch& PairwiseDistance::scratch() const { return *scratch_; }

PairwiseDistance::PairwiseDistance(const Tensor& embeddings, Distance metric, bool keep_for_backward, Isa isa,
                                   std::shared_ptr<DistanceScratch> scratch)
    : metric_(metric),
      isa_(isa),
      keep_for_backward_(keep_for_backward),
      scratch_(scratch ? std::move(scratch) : std::make_shared<DistanceScratch>()) {
    check_rank("pairwise_distance", "embeddings", embeddings, 2);
    const detail::LossKernels& kernels = detail::loss_kernels(isa);  // throws for a path the CPU lacks
    const std::size_t B = embeddings.dim(0), D = embeddings.dim(1);
    const long nB = long(B);
    std::vector<float> sq = row_squared_norms(embeddings.data(), B, D);
    // Left uninitialised (every entry is written below): zero-filling 64 MiB at B = 4096 on one
    // thread cost more than the parallel pass that overwrites it.
    D_ = square_buffer(*scratch_, B);
    float* dist = D_.data();

    if (metric != Distance::Angular) {
        if (keep_for_backward) x_ = embeddings;
        const bool upper_only = gram_matrix(embeddings.data(), B, D, dist);
        const bool squared = metric == Distance::SquaredL2;
        const auto distance_row = kernels.distance_row;
        // In TF's operation order: (sq_i + sq_j) - 2 g, clamp, exact zeros stay zero (TF's
        // sqrt(d2 + 1e-16) * 0), diagonal 0. (sq_j + sq_i) rounds as (sq_i + sq_j), so a mirrored
        // entry is the one TF computes from the same Gram entry.
        map_gram(dist, B, upper_only, [&](std::size_t i, std::size_t j0, std::size_t j1, float* row) {
            distance_row(sq[i], sq.data() + j0, squared, j1 - j0, row + j0);
            if (i >= j0 && i < j1) row[i] = 0.0f;
        });
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
    const bool upper_only = gram_matrix(xhat.data(), B, D, dist);
    map_gram(dist, B, upper_only, [](std::size_t, std::size_t j0, std::size_t j1, float* row) {
        for (std::size_t j = j0; j < j1; ++j) row[j] = 1.0f - row[j];
    });
    // The clamp passes the gradient where 1 - g >= 0, which D = max(1 - g, 0) no longer tells.
    if (keep_for_backward) raw_ = D_;
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
    for (long i = 0; i < nB; ++i)
        for (std::size_t j = std::size_t(i) * B; j < std::size_t(i + 1) * B; ++j)
            dist[j] = dist[j] > 0.0f ? dist[j] : 0.0f;
    if (keep_for_backward) {
        x_ = std::move(xhat);
        embeddings_ = embeddings;
    }
}

Tensor pairwise_distance(const Tensor& embeddings, Distance metric) {
    return PairwiseDistance(embeddings, metric, false).distances();
}

// One stretch of G = dL/d(inner value) as TF's autodiff gives it: the diagonal and clamped
// entries pass nothing (L2: D * (1 - zero) * (1 - I); angular: max(raw, 0) passes where raw >= 0,
// and the angular diagonal is a real entry). L2 divides unconditionally (by 1 where masked), and
// the lanes are masked with SSE for the same reason as in the distance row kernels
// (losses/kernels_portable.cpp).
static void grad_row(Distance metric, const float* __restrict dist, const float* __restrict dd,
                     const float* __restrict raw, float scale, std::size_t n, float* __restrict g) {
    std::size_t j = 0;
#ifdef __SSE2__
    const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f), half = _mm_set1_ps(0.5f);
    const __m128 sc = _mm_set1_ps(scale), sign = _mm_set1_ps(-0.0f);
    for (; j + 4 <= n; j += 4) {
        const __m128 u = _mm_mul_ps(_mm_loadu_ps(dd + j), sc);
        if (metric == Distance::Angular) {
            _mm_storeu_ps(g + j, _mm_and_ps(_mm_cmpge_ps(_mm_loadu_ps(raw + j), zero), _mm_xor_ps(u, sign)));
            continue;
        }
        const __m128 d = _mm_loadu_ps(dist + j), live = _mm_cmpgt_ps(d, zero);
        if (metric == Distance::SquaredL2) {
            _mm_storeu_ps(g + j, _mm_and_ps(live, u));
            continue;
        }
        const __m128 safe = _mm_or_ps(_mm_and_ps(live, d), _mm_andnot_ps(live, one));
        _mm_storeu_ps(g + j, _mm_and_ps(live, _mm_mul_ps(u, _mm_div_ps(half, safe))));
    }
#endif
    for (; j < n; ++j) switch (metric) {
            case Distance::L2: g[j] = dist[j] > 0.0f ? dd[j] * scale * (0.5f / dist[j]) : 0.0f; break;
            case Distance::SquaredL2: g[j] = dist[j] > 0.0f ? dd[j] * scale : 0.0f; break;
            case Distance::Angular: g[j] = raw[j] >= 0.0f ? -(dd[j] * scale) : 0.0f; break;  // d(1 - g)/dg
        }
}

// G for one entry, with the same operations as grad_row (so bit for bit the same value).
static inline float grad_entry(Distance metric, float dist, float dd, float raw, float scale) {
    const float u = dd * scale;
    switch (metric) {
        case Distance::L2: return dist > 0.0f ? u * (0.5f / dist) : 0.0f;
        case Distance::SquaredL2: return dist > 0.0f ? u : 0.0f;
        case Distance::Angular: return raw >= 0.0f ? -u : 0.0f;
    }
    return 0.0f;
}

template <class T>
static T* at_least(std::vector<T>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
}

static float* square_workspace(DistanceScratch& w, std::size_t n) {
    if (w.s_size < n) w.s = huge_buffer(n), w.s_size = n;
    return w.s.get();
}

// The sum of one row of S in sixteen running sums (j mod 16), added up in lane order: a fixed
// order, so both backward paths and any thread count give the same bits, that still
// vectorises (one running sum is a chain of dependent additions, as slow as the gemm here).
static float row_sum(const float* row, std::size_t B) {
    float lane[16] = {};
    std::size_t j = 0;
    for (; j + 16 <= B; j += 16)
        for (std::size_t l = 0; l < 16; ++l) lane[l] += row[j + l];
    for (; j < B; ++j) lane[j % 16] += row[j];
    float total = 0.0f;
    for (const float x : lane) total += x;
    return total;
}

// dx from S, a thread's rows at a time. Every entry of D is d2_ij = |x_i|^2 + |x_j|^2 - 2 x_i.x_j
// (or the angular 1 - x_hat_i.x_hat_j), so with G = dL/d(d2) (or dL/d(gram)) the chain rule
// collapses to S = G + G^T: dx_i = 2 rowsum(S)_i x_i - 2 (S x)_i. S is sparse (the semi-hard
// loss's dD touches about a fifth of the entries, S about twice that), so (S x)_i is a
// combination of the rows of x that row i of S names, in column order: a dense gemm did 2.5x
// the work (at B = 2048 on 2 threads, 10.7 ms of the loss's 36). The product runs in panels of
// kPanel columns of x, each over all of the thread's rows, so that the panel (B x 256 bytes)
// stays in L2 while the rows pick from it at random; whole rows of x (B x 1 KiB) did not fit,
// and the product waited on L3.
constexpr std::size_t kPanel = 64;

void PairwiseDistance::keep_row_of_s(RowsOfS& rows, std::size_t i, float* s_row) const {
    const std::size_t B = D_.dim(0), used = rows.start.back();
    if (rows.column.size() < used + B + detail::kSlack) {
        rows.column.resize(2 * (used + B + detail::kSlack));
        rows.value.resize(rows.column.size());
    }
    rows.row.push_back(i);
    rows.sum.push_back(row_sum(s_row, B));
    const std::size_t count =
        detail::loss_kernels(isa_).take_nonzero(s_row, B, rows.column.data() + used, rows.value.data() + used);
    rows.start.push_back(used + count);
}

void PairwiseDistance::embeddings_grad(const RowsOfS& rows, const float* panels, float* dx) const {
    const std::size_t B = D_.dim(0), D = x_.dim(1), n = rows.row.size();
    const detail::LossKernels& kernels = detail::loss_kernels(isa_);
    for (std::size_t d0 = 0; d0 < D; d0 += kPanel) {
        const std::size_t w = std::min(kPanel, D - d0);
        for (std::size_t q = 0; q < n; ++q) {
            const std::size_t k = rows.start[q];
            kernels.combine_rows(rows.column.data() + k, rows.value.data() + k, rows.start[q + 1] - k,
                                 panels + B * d0, w, w, dx + rows.row[q] * D + d0);
        }
    }
    for (std::size_t q = 0; q < n; ++q) {
        const std::size_t i = rows.row[q];
        const float* x = x_.data() + i * D;
        float* out = dx + i * D;  // (S x)_i, in place
        if (metric_ != Distance::Angular) {
            const float twice_sum = 2.0f * rows.sum[q];
            for (std::size_t d = 0; d < D; ++d) out[d] = twice_sum * x[d] - 2.0f * out[d];
            continue;
        }
        // Angular: gram = x_hat x_hat^T, so dx_hat = S x_hat (no row-sum term); then back
        // through l2_normalize, y = x * r with r = rsqrt(max(|x|^2, eps)), dr/d|x|^2 = -r^3/2
        // where |x|^2 >= eps: dx = r dy - r^3 (dy . x) x.
        const float* e = embeddings_.data() + i * D;
        const float r = inv_norm_[i];
        float dot = 0.0f;
        for (std::size_t d = 0; d < D; ++d) dot += out[d] * e[d];
        const float c = norm_active_[i] ? r * r * r * dot : 0.0f;
        for (std::size_t d = 0; d < D; ++d) out[d] = r * out[d] - c * e[d];
    }
}

// x [B,D] cut into panels of kPanel columns, each stored whole ([B, w] row-major, panel p from
// B * p * kPanel): its rows fill whole cache lines and every L2 set. Left in x, 1 KiB apart,
// a panel's rows fell in a quarter of the sets, and the product missed L2 anyway. Called from
// every thread of a parallel region (the loop is shared; the barrier at its end keeps the
// panels whole before anyone reads them).
static void copy_panels(const float* x, std::size_t B, std::size_t D, float* panels) {
#pragma omp for schedule(static)
    for (long lj = 0; lj < long(B); ++lj) {
        const std::size_t j = std::size_t(lj);
        for (std::size_t d0 = 0; d0 < D; d0 += kPanel) {
            const std::size_t w = std::min(kPanel, D - d0);
            std::copy_n(x + j * D + d0, w, panels + B * d0 + j * w);
        }
    }
}

// This thread's share of S's rows, emptied (the slots, one per thread, are made before the
// parallel region).
static DistanceScratch::RowsOfS& empty_share(DistanceScratch& w) {
    DistanceScratch::RowsOfS& rows = w.rows_of_s[std::size_t(thread_index())];
    rows.row.clear();
    rows.sum.clear();
    rows.start.assign(1, 0);
    return rows;
}

// dD [B,B] -> dx [B,D]: G = dL/d(d2) (or dL/d(gram)) in full, S = G + G^T, then dx row by row
// (embeddings_grad above).
Tensor PairwiseDistance::backward(const Tensor& dD, float scale) const {
    if (!keep_for_backward_) throw Error("pairwise_distance: backward on a forward-only result");
    check_same_shape("pairwise_distance backward", dD, D_);
    const std::size_t B = D_.dim(0);
    const long nB = long(B);
    const float* dist = D_.data();
    const float* dd = dD.data();
    const float* raw = raw_.empty() ? nullptr : raw_.data();
    float* s = square_workspace(scratch(), B * B);
    scratch().rows_of_s.resize(std::max(scratch().rows_of_s.size(), std::size_t(num_threads())));
    float* panels = at_least(scratch().panels, x_.size());
    // G row by row, then S = G + G^T in place, in 64x64 tile pairs (I, J >= I): a pair reads
    // G's tiles (I,J) and (J,I) and writes S's, nothing else, so threads never share an element;
    // the transposes go through a small buffer, so that s is only walked along its rows (they
    // are B floats apart, and at B = 4096 a column walk hits one cache set). Row tile I owns
    // nb - I pairs, hence the round-robin schedule.
    constexpr std::size_t T = kTile;
    const std::size_t nb = (B + T - 1) / T;
    Tensor dx = Tensor::uninitialised({B, x_.dim(1)});  // every row written below
    float* out = dx.data();
#pragma omp parallel if (B >= kParallelRows)
    {
#pragma omp for schedule(static)
        for (long li = 0; li < nB; ++li) {
            const std::size_t i = std::size_t(li) * B;
            grad_row(metric_, dist + i, dd + i, raw ? raw + i : nullptr, scale, B, s + i);
        }
        std::vector<float> tile(T * T);
#pragma omp for schedule(static, 1)
        for (long lb = 0; lb < long(nb); ++lb) {
            const std::size_t i0 = std::size_t(lb) * T, i1 = std::min(B, i0 + T);
            for (std::size_t j0 = i0; j0 < B; j0 += T) {
                const std::size_t j1 = std::min(B, j0 + T);
                for (std::size_t j = j0; j < j1; ++j)  // G's tile (J,I), transposed
                    for (std::size_t i = i0; i < i1; ++i) tile[(i - i0) * T + (j - j0)] = s[j * B + i];
                for (std::size_t i = i0; i < i1; ++i)
                    for (std::size_t j = j0; j < j1; ++j) tile[(i - i0) * T + (j - j0)] += s[i * B + j];
                for (std::size_t i = i0; i < i1; ++i)
                    for (std::size_t j = j0; j < j1; ++j) s[i * B + j] = tile[(i - i0) * T + (j - j0)];
                for (std::size_t j = j0; j < j1; ++j)  // S's tile (J,I): the transpose, row by row
                    for (std::size_t i = i0; i < i1; ++i) s[j * B + i] = tile[(i - i0) * T + (j - j0)];
            }
        }
        copy_panels(x_.data(), B, x_.dim(1), panels);
        RowsOfS& rows = empty_share(scratch());
#pragma omp for schedule(static) nowait
        for (long li = 0; li < nB; ++li) keep_row_of_s(rows, std::size_t(li), s + std::size_t(li) * B);
        embeddings_grad(rows, panels, out);
    }
    return dx;
}

// The same for a sparse dD, bit for bit, without G or S in full. S is built a block of 64 rows
// at a time in the thread's own block buffer (1 MiB at B = 4096, which stays in L2 while it is
// filled): zero it, add G's entries of those rows, add G's entries of those columns (S's rows I
// are G's columns I transposed; tile_first[J*B + j] is where row j's entries in column tile J
// start, columns being in increasing order), then turn its rows into rows of dx. Every entry is
// written where it lands, with no [B,B] pass to transpose. S[i,j] = (0 + G[i,j]) +
// G[j,i] is the dense path's G[i,j] + G[j,i] exactly. S's rows are kRowPad floats longer than
// B: the column scatter writes one column of 64 rows at a time, and rows a power of two apart
// (8 KiB at B = 2048) all fall in one L1 set, which evicted each line before the next column
// came back to it (the scatter was most of this function's time in perf).
Tensor PairwiseDistance::backward(const SparseRows& dD, float scale) const {
    if (!keep_for_backward_) throw Error("pairwise_distance: backward on a forward-only result");
    const std::size_t B = D_.dim(0), nnz = dD.column.size();
    const bool shape_ok = dD.start.size() == B + 1 && dD.start.front() == 0 && dD.start.back() == nnz &&
                          dD.value.size() == nnz && std::is_sorted(dD.start.begin(), dD.start.end());
    if (!shape_ok)
        throw ShapeError("pairwise_distance backward: sparse dD with " + std::to_string(dD.start.size()) +
                         " row starts and " + std::to_string(nnz) + " entries (" +
                         std::to_string(dD.value.size()) + " values) is not a valid CSR matrix for distances " +
                         to_string(D_.shape()));
    const std::size_t* start = dD.start.data();
    const std::uint32_t* column = dD.column.data();
    constexpr std::size_t T = kTile;
    const std::size_t nb = (B + T - 1) / T;
    const long nB = long(B);
    const float* dist = D_.data();
    const float* raw = raw_.empty() ? nullptr : raw_.data();
    DistanceScratch& w = scratch();
    float* g = at_least(w.g, nnz);
    std::size_t* tile_first = at_least(w.tile_first, (nb + 1) * B);
    // G at every entry and each row's tile starts, row by row (the distances in row order),
    // checking the columns on the way: in range and increasing (first bad row, if any, in `bad`).
    std::vector<unsigned char> bad(B, 0);
#pragma omp parallel for schedule(static) if (B >= kParallelRows)
    for (long li = 0; li < nB; ++li) {
        const std::size_t i = std::size_t(li);
        std::size_t jb = 0;
        for (std::size_t k = start[i]; k < start[i + 1]; ++k) {
            if (column[k] >= B || (k > start[i] && column[k - 1] >= column[k])) {
                bad[i] = 1;
                break;
            }
            const std::size_t ij = i * B + column[k];
            g[k] = grad_entry(metric_, dist[ij], dD.value[k], raw ? raw[ij] : 0.0f, scale);
            for (; jb * T <= column[k]; ++jb) tile_first[jb * B + i] = k;
        }
        for (; jb <= nb; ++jb) tile_first[jb * B + i] = start[i + 1];
    }
    if (const auto row = std::find(bad.begin(), bad.end(), 1); row != bad.end()) {
        const std::size_t i = std::size_t(row - bad.begin());
        std::string columns;
        for (std::size_t k = start[i]; k < start[i + 1]; ++k) {
            if (k > start[i]) columns += ' ';
            columns += std::to_string(column[k]);
        }
        throw ValueError("pairwise_distance backward: sparse dD row " + std::to_string(i) + " has columns {" + columns +
                         "}, not increasing column indices below " + std::to_string(B));
    }
    const std::size_t ld = B + kRowPad;
    const bool parallel = B >= kParallelRows;
    float* blocks = square_workspace(w, (parallel ? std::size_t(num_threads()) : 1) * T * ld);
    w.rows_of_s.resize(std::max(w.rows_of_s.size(), std::size_t(num_threads())));
    float* panels = at_least(w.panels, x_.size());
    Tensor dx = Tensor::uninitialised({B, x_.dim(1)});  // every row written below
    float* out = dx.data();
#pragma omp parallel if (parallel)
    {
        copy_panels(x_.data(), B, x_.dim(1), panels);
        RowsOfS& rows = empty_share(w);
        float* block = blocks + std::size_t(thread_index()) * T * ld;
#pragma omp for schedule(static) nowait
        for (long lb = 0; lb < long(nb); ++lb) {
            const std::size_t ib = std::size_t(lb), i0 = ib * T, ni = std::min(B, i0 + T) - i0;
            std::fill_n(block, ni * ld, 0.0f);
            for (std::size_t i = 0; i < ni; ++i)
                for (std::size_t k = start[i0 + i]; k < start[i0 + i + 1]; ++k) block[i * ld + column[k]] += g[k];
            const std::size_t* first = tile_first + ib * B;
            const std::size_t* last = tile_first + (ib + 1) * B;
            for (std::size_t j = 0; j < B; ++j)
                for (std::size_t k = first[j]; k < last[j]; ++k) block[(column[k] - i0) * ld + j] += g[k];
            for (std::size_t i = 0; i < ni; ++i) keep_row_of_s(rows, i0 + i, block + i * ld);
        }
        embeddings_grad(rows, panels, out);
    }
    return dx;
}

}  // namespace semigrad::losses
