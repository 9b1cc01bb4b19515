#include "losses/semihard_mining.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <utility>

#if SEMIGRAD_X86
#include <immintrin.h>
#endif

#include "tensor/error.hpp"

// The AVX-512 twins below are target-attribute functions (tensor/simd.hpp).
SEMIGRAD_KERNELS_BEGIN

namespace semigrad::losses::detail {

namespace {

// Every per-row array gets this much room past its end: the AVX-512 split stores whole vectors.
constexpr std::size_t kSlack = 16;

// The bits of a distance (>= 0) as an unsigned key with the same order; +0.0f folds -0 into +0.
inline std::uint32_t order_key(float v) {
    v += 0.0f;
    return std::bit_cast<std::uint32_t>(v);
}

#if SEMIGRAD_X86
// The first `count` of 16 lanes (all of them when count >= 16), for loop tails.
SEMIGRAD_AVX512 inline __mmask16 first_lanes(std::size_t count) {
    return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1u);
}
#endif

}  // namespace

SemihardMiner::SemihardMiner(std::size_t B, Isa isa) { prepare(B, isa); }

SemihardMiner& SemihardMiner::for_this_thread(std::size_t B, Isa isa) {
    thread_local SemihardMiner miner(0, Isa::portable);
    miner.prepare(B, isa);
    return miner;
}

void SemihardMiner::prepare(std::size_t B, Isa isa) {
    if (!cpu_runs(isa))
        throw ValueError(std::string("semi-hard mining: this CPU does not run the ") + isa_name(isa) + " path");
    B_ = B;
    avx512_ = isa == Isa::avx512;
    const std::size_t n = B + kSlack;
    r_.value.resize(n + 1);
    r_.positive.resize(n);
    r_.negative_distance.resize(n);
    r_.negative.resize(n);
    r_.rank.resize(n);
    r_.bucket_min.resize(n + 1);
    r_.bucket_ties.resize(n + 1);
    r_.bucket_column.resize(n + 1);
    positive_distance_.resize(n);
    positive_column_.resize(n);
    cell_of_.resize(B);
    first_.resize(kCellsPerPositive * B + 3);
    cell_positive_.resize(kCellsPerPositive * B + 1);
    bucket_key_.resize(B + 1);
}

void SemihardMiner::mine(const float* row, const int* labels, std::size_t a) {
    split(row, labels, a);
    sort_positives_into_cells();
    fill_buckets();
    find_farthest();
}

// Negatives (labels differ) keep their column order; positives are the other columns but a.
// Also the row's max, min and sum (sixteen running sums, k mod 16, in both implementations,
// so the sum is the same bits either way).
void SemihardMiner::split(const float* row, const int* labels, std::size_t a) {
    float lane_sum[16] = {};
#if SEMIGRAD_X86
    if (avx512_) {
        split_avx512(row, labels, a, lane_sum);
    } else
#endif
    {
        const int label = labels[a];
        float* nd = r_.negative_distance.data();
        std::uint32_t* ncol = r_.negative.data();
        float* pd = positive_distance_.data();
        std::uint32_t* pcol = positive_column_.data();
        std::size_t n = 0, m = 0;
        float mx = -INFINITY, mn = INFINITY, positive_max = -INFINITY, positive_min = INFINITY;
        // Without branches: the labels are in random order.
        for (std::size_t k = 0; k < B_; ++k) {
            const float d = row[k];
            const bool is_negative = labels[k] != label, is_positive = !is_negative && k != a;
            nd[n] = d, ncol[n] = std::uint32_t(k);
            pd[m] = d, pcol[m] = std::uint32_t(k);
            n += is_negative;
            m += is_positive;
            mx = d > mx ? d : mx;
            mn = d < mn ? d : mn;
            positive_max = is_positive && d > positive_max ? d : positive_max;
            positive_min = is_positive && d < positive_min ? d : positive_min;
            lane_sum[k % 16] += d;
        }
        r_.row_max = mx, r_.row_min = mn;
        positive_max_ = positive_max, positive_min_ = positive_min;
        r_.n = n, r_.m = m;
    }
    r_.row_sum = 0.0;
    for (const float s : lane_sum) r_.row_sum += s;
}

#if SEMIGRAD_X86
SEMIGRAD_AVX512 void SemihardMiner::split_avx512(const float* row, const int* labels, std::size_t a, float* lane_sum) {
    float* nd = r_.negative_distance.data();
    std::uint32_t* ncol = r_.negative.data();
    float* pd = positive_distance_.data();
    std::uint32_t* pcol = positive_column_.data();
    std::size_t n = 0, m = 0;
    const __m512i label = _mm512_set1_epi32(labels[a]), step = _mm512_set1_epi32(16);
    __m512i column = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 mx = _mm512_set1_ps(-INFINITY), mn = _mm512_set1_ps(INFINITY), sum = _mm512_setzero_ps();
    __m512 positive_max = mx, positive_min = mn;
    for (std::size_t k = 0; k < B_; k += 16) {
        const __mmask16 live = first_lanes(B_ - k);
        const __m512 d = _mm512_maskz_loadu_ps(live, row + k);
        const __mmask16 negative =
            _mm512_mask_cmpneq_epi32_mask(live, _mm512_maskz_loadu_epi32(live, labels + k), label);
        __mmask16 positive = live & ~negative;
        if (a >= k && a < k + 16) positive &= __mmask16(~(1u << (a - k)));
        mx = _mm512_mask_max_ps(mx, live, mx, d);
        mn = _mm512_mask_min_ps(mn, live, mn, d);
        positive_max = _mm512_mask_max_ps(positive_max, positive, positive_max, d);
        positive_min = _mm512_mask_min_ps(positive_min, positive, positive_min, d);
        sum = _mm512_mask_add_ps(sum, live, sum, d);
        // Compress in registers, then a plain store (the arrays have slack for it) rather than
        // the compress-to-memory form, which is slow on some CPUs.
        _mm512_storeu_ps(nd + n, _mm512_maskz_compress_ps(negative, d));
        _mm512_storeu_si512(ncol + n, _mm512_maskz_compress_epi32(negative, column));
        n += std::size_t(std::popcount(unsigned(negative)));
        _mm512_storeu_ps(pd + m, _mm512_maskz_compress_ps(positive, d));
        _mm512_storeu_si512(pcol + m, _mm512_maskz_compress_epi32(positive, column));
        m += std::size_t(std::popcount(unsigned(positive)));
        column = _mm512_add_epi32(column, step);
    }
    r_.row_max = _mm512_reduce_max_ps(mx);
    r_.row_min = _mm512_reduce_min_ps(mn);
    positive_max_ = _mm512_reduce_max_ps(positive_max);
    positive_min_ = _mm512_reduce_min_ps(positive_min);
    _mm512_storeu_ps(lane_sum, sum);
    r_.n = n, r_.m = m;
}
#endif

// The positives by increasing distance (ties in column order) and the rank table over them, in
// one counting sort on the table's cells.
//
// The table: k(d) = #{q : v_q < d} in O(1). The positives' range [v_0, v_{m-1}] is cut into
// 8m + 1 equal cells; first_[c] = #{q : cell(v_q) < c}, and cell_positive_[c] is the distance of
// the one positive in cell c (+inf when it has none, < 0 when it has several). Then k(d) =
// first_[cell(d)] + (d > cell_positive_[cell(d)]): two lookups and a compare, no branch (a cell
// holds an eighth of a positive on average; a d in a cell of several, about 1% of them, takes a
// binary search of that cell). Exact: cell() is monotone in d (a subtraction, a product by a
// scale >= 0 and clamps are), so a positive in a lower cell is < d and one in a higher cell is
// > d. (A binary search of all the positives per negative measured slower: its branches are
// unpredictable.)
//
// The sort: the same monotone cells order the positives, except within a cell of several,
// which an insertion sort finishes (a stable sort when the cells degenerate). Stable
// throughout, so equal distances keep column order.
void SemihardMiner::sort_positives_into_cells() {
    const std::size_t m = r_.m;
    const float* pd = positive_distance_.data();
    cells_ = kCellsPerPositive * m + 1;
    lo_ = m ? positive_min_ : 0.0f;
    const float range = m ? positive_max_ - positive_min_ : 0.0f;
    scale_ = range > 0.0f && std::isfinite(range) ? float(cells_) / range : 0.0f;
    // Counts per cell (in first_[c + 2]) and each cell's positive; the prefix sum then leaves
    // the start of cell c in first_[c + 1], which the scatter advances to the start of cell
    // c + 1: first_[c] is then the start of cell c (the in-place counting sort; a second
    // cursor array measured slower, its stores aliasing first_'s loads 4 KiB apart).
    std::fill_n(first_.begin(), cells_ + 2, 0u);
    std::fill_n(cell_positive_.begin(), cells_, INFINITY);
    for (std::size_t q = 0; q < m; ++q) {
        const std::uint32_t c = cell_of_[q] = cell(pd[q]);
        cell_positive_[c] = first_[c + 2]++ == 0 ? pd[q] : -1.0f;
    }
    prefix_sum(first_.data() + 2, cells_);
    float* v = r_.value.data();
    std::uint32_t* column = r_.positive.data();
    for (std::size_t q = 0; q < m; ++q) {
        const std::uint32_t p = first_[cell_of_[q] + 1]++;
        v[p] = pd[q];
        column[p] = positive_column_[q];
    }
    v[m] = INFINITY;
    for (std::size_t q = 0; q < m; ++q) {
        const std::uint32_t c = cell_of_[q];
        if (cell_positive_[c] != -1.0f) continue;
        cell_positive_[c] = -2.0f;  // sorted
        const std::uint32_t begin = first_[c], end = first_[c + 1];
        if (end - begin > 32) {
            // Only when the cells degenerate (an infinite range puts every positive in cell 0):
            // O(P log P), not the insertion sort's O(P^2).
            std::vector<std::pair<float, std::uint32_t>> stretch(end - begin);
            for (std::uint32_t p = begin; p < end; ++p) stretch[p - begin] = {v[p], column[p]};
            std::stable_sort(stretch.begin(), stretch.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
            for (std::uint32_t p = begin; p < end; ++p) v[p] = stretch[p - begin].first, column[p] = stretch[p - begin].second;
            continue;
        }
        for (std::uint32_t p = begin + 1; p < end; ++p)
            for (std::uint32_t i = p; i > begin && v[i] < v[i - 1]; --i) {
                std::swap(v[i], v[i - 1]);
                std::swap(column[i], column[i - 1]);
            }
    }
}

// x[i] = x[0] + ... + x[i], in a register (through memory, a chain of store-to-load forwards).
void SemihardMiner::prefix_sum(std::uint32_t* x, std::size_t n) const {
#if SEMIGRAD_X86
    if (avx512_) return prefix_sum_avx512(x, n);
#endif
    std::uint32_t below = 0;
    for (std::size_t i = 0; i < n; ++i) x[i] = below += x[i];
}

#if SEMIGRAD_X86
// Sixteen at a time: the in-register scan (add the vector shifted up by 1, 2, 4, 8 lanes), plus
// the running total.
SEMIGRAD_AVX512 void SemihardMiner::prefix_sum_avx512(std::uint32_t* x, std::size_t n) const {
    const __m512i zero = _mm512_setzero_si512();
    __m512i carry = zero;
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 live = first_lanes(n - i);
        __m512i v = _mm512_maskz_loadu_epi32(live, x + i);
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 15));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 14));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 12));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 8));
        v = _mm512_add_epi32(v, carry);
        _mm512_mask_storeu_epi32(x + i, live, v);
        carry = _mm512_permutexvar_epi32(_mm512_set1_epi32(15), v);
    }
}
#endif

// The exact k(d), for d in a cell holding several positives: the positives of lower cells are
// < d and those of higher cells > d, so a binary search of the cell's own stretch finishes it.
std::uint32_t SemihardMiner::rank_by_search(float d, std::uint32_t c) const {
    const float* v = r_.value.data();
    return std::uint32_t(std::lower_bound(v + first_[c], v + first_[c + 1], d) - v);
}

// rank[q] = k(d_q) for every negative, then each bucket's minimum, tie count and first column.
void SemihardMiner::fill_buckets() {
    const std::size_t m = r_.m, n = r_.n;
    const float* nd = r_.negative_distance.data();
    std::uint32_t* rank = r_.rank.data();
#if SEMIGRAD_X86
    if (avx512_) {
        rank_avx512();
    } else
#endif
        for (std::size_t q = 0; q < n; ++q) {
            const std::uint32_t c = cell(nd[q]);
            const float positive = cell_positive_[c];
            rank[q] = first_[c] + (nd[q] > positive);
            if (positive < 0.0f) rank[q] = rank_by_search(nd[q], c);
        }
    // Bucket minima over 64-bit keys (distance bits << 32 | q): for distances >= 0 the bits order
    // like the floats, so the smallest key is the smallest distance and, among equal ones, the
    // first negative. One read-modify-write per negative, without branches (the ranks are random).
    std::uint64_t* key = bucket_key_.data();
    std::uint32_t* ties = r_.bucket_ties.data();
    std::fill_n(key, m + 1, ~std::uint64_t(0));
    std::fill_n(ties, m + 1, 0u);
    for (std::size_t q = 0; q < n; ++q) {
        const std::uint64_t mine = (std::uint64_t(order_key(nd[q])) << 32) | q, current = key[rank[q]];
        const std::uint32_t t = ties[rank[q]];
        ties[rank[q]] = (mine >> 32) == (current >> 32) ? t + 1 : mine < current ? 1u : t;
        key[rank[q]] = mine < current ? mine : current;
    }
    for (std::size_t k = 0; k <= m; ++k) {
        const std::size_t q = std::uint32_t(key[k]);
        r_.bucket_min[k] = ties[k] ? nd[q] : INFINITY;
        r_.bucket_column[k] = ties[k] ? r_.negative[q] : 0u;
    }
}

#if SEMIGRAD_X86
SEMIGRAD_AVX512 void SemihardMiner::rank_avx512() {
    const std::size_t n = r_.n;
    const float* nd = r_.negative_distance.data();
    std::uint32_t* rank = r_.rank.data();
    const __m512 lo = _mm512_set1_ps(lo_), scale = _mm512_set1_ps(scale_), top = _mm512_set1_ps(float(cells_ - 1));
    const __m512 zero = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1);
    for (std::size_t q = 0; q < n; q += 16) {
        const __mmask16 live = first_lanes(n - q);
        const __m512 d = _mm512_maskz_loadu_ps(live, nd + q);
        // cell(): max(t, 0) gives 0 for NaN t, as the portable ?: does.
        const __m512i c = _mm512_cvttps_epi32(
            _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_sub_ps(d, lo), scale), zero), top));
        // Two independent gathers (no chain of dependent lookups).
        const __m512i first = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, c, first_.data(), 4);
        const __m512 positive = _mm512_mask_i32gather_ps(zero, live, c, cell_positive_.data(), 4);
        const __m512i k = _mm512_mask_add_epi32(first, _mm512_mask_cmp_ps_mask(live, d, positive, _CMP_GT_OQ), first, one);
        _mm512_mask_storeu_epi32(rank + q, live, k);
        for (unsigned several = _mm512_mask_cmp_ps_mask(live, positive, zero, _CMP_LT_OQ); several; several &= several - 1) {
            const std::size_t i = q + std::size_t(std::countr_zero(several));
            rank[i] = rank_by_search(nd[i], cell(nd[i]));
        }
    }
}
#endif

void SemihardMiner::find_farthest() {
    const std::size_t n = r_.n;
    const float* nd = r_.negative_distance.data();
    float far = -INFINITY;
    std::uint32_t ties = 0;
    std::size_t first = 0;
#if SEMIGRAD_X86
    if (avx512_) {
        find_farthest_avx512(far, ties, first);
    } else
#endif
    {
        for (std::size_t q = 0; q < n; ++q) far = nd[q] > far ? nd[q] : far;
        for (std::size_t q = n; q-- > 0;)
            if (nd[q] == far) ++ties, first = q;
    }
    r_.farthest = far;
    r_.farthest_ties = ties;
    r_.farthest_column = n ? r_.negative[first] : 0u;
}

#if SEMIGRAD_X86
SEMIGRAD_AVX512 void SemihardMiner::find_farthest_avx512(float& far, std::uint32_t& ties, std::size_t& first) const {
    const std::size_t n = r_.n;
    const float* nd = r_.negative_distance.data();
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (std::size_t q = 0; q < n; q += 16)
        mx = _mm512_mask_max_ps(mx, first_lanes(n - q), mx, _mm512_maskz_loadu_ps(first_lanes(n - q), nd + q));
    far = _mm512_reduce_max_ps(mx);
    const __m512 target = _mm512_set1_ps(far);
    for (std::size_t q = 0; q < n; q += 16) {
        const __mmask16 live = first_lanes(n - q);
        const unsigned equal = _mm512_mask_cmp_ps_mask(live, _mm512_maskz_loadu_ps(live, nd + q), target, _CMP_EQ_OQ);
        if (equal && ties == 0) first = q + std::size_t(std::countr_zero(equal));
        ties += std::uint32_t(std::popcount(equal));
    }
}
#endif

#if SEMIGRAD_X86
SEMIGRAD_AVX512 static std::size_t take_nonzero_avx512(float* c, std::size_t B, std::uint32_t* columns, float* values) {
    std::size_t count = 0;
    const __m512i step = _mm512_set1_epi32(16);
    __m512i column = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (std::size_t k = 0; k < B; k += 16) {
        const __mmask16 live = first_lanes(B - k);
        const __m512 v = _mm512_maskz_loadu_ps(live, c + k);
        const __mmask16 nonzero = _mm512_mask_cmp_ps_mask(live, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_si512(columns + count, _mm512_maskz_compress_epi32(nonzero, column));
        _mm512_storeu_ps(values + count, _mm512_maskz_compress_ps(nonzero, v));
        _mm512_mask_storeu_ps(c + k, live, _mm512_setzero_ps());
        count += std::size_t(std::popcount(unsigned(nonzero)));
        column = _mm512_add_epi32(column, step);
    }
    return count;
}
#endif

std::size_t take_nonzero(float* c, std::size_t B, std::uint32_t* columns, float* values, Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx512) return take_nonzero_avx512(c, B, columns, values);
#endif
    std::size_t count = 0;
    for (std::size_t k = 0; k < B; ++k) {  // without a branch: a fifth of the entries are set
        columns[count] = std::uint32_t(k);
        values[count] = c[k];
        count += c[k] != 0.0f;
        c[k] = 0.0f;
    }
    return count;
}

}  // namespace semigrad::losses::detail

SEMIGRAD_KERNELS_END
