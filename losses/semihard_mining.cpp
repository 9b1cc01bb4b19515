#include "losses/semihard_mining.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <utility>

#include "tensor/error.hpp"

namespace semigrad::losses::detail {

namespace {

// The bits of a distance (>= 0) as an unsigned key with the same order; +0.0f folds -0 into +0.
inline std::uint32_t order_key(float v) {
    v += 0.0f;
    return std::bit_cast<std::uint32_t>(v);
}

}  // namespace

const LossKernels& loss_kernels(Isa isa) {
    if (!cpu_runs(isa))
        throw ValueError(std::string("triplet loss kernels: this CPU does not run the ") + isa_name(isa) + " path");
    switch (isa) {
#if SEMIGRAD_X86
        case Isa::avx512: return kAvx512Kernels;
        case Isa::avx2: return kAvx2Kernels;
#endif
        default: return kPortableKernels;
    }
}

SemihardMiner::SemihardMiner(std::size_t B, Isa isa) : B_(B), isa_(isa), kernels_(loss_kernels(isa)) {
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
    several_.resize(n);
    bucket_key_.resize(B + 1);
    choice_.resize(B + 1);
    uses_.resize(B + 1);
}

std::size_t SemihardMiner::bytes() const {
    const std::size_t floats = r_.value.size() + r_.negative_distance.size() + r_.bucket_min.size() +
                               positive_distance_.size() + cell_positive_.size() + uses_.size();
    const std::size_t words = r_.positive.size() + r_.negative.size() + r_.rank.size() + r_.bucket_ties.size() +
                              r_.bucket_column.size() + positive_column_.size() + cell_of_.size() + first_.size() +
                              several_.size() + choice_.size();
    return (floats + words) * 4 + bucket_key_.size() * sizeof(std::uint64_t);
}

// Negatives (labels differ) keep their column order; positives are the other columns but a.
// The row sum adds sixteen running sums (k mod 16) in lane order, on every path.
void SemihardMiner::mine(const float* row, const int* labels, std::size_t a) {
    const SplitRow s = kernels_.split(row, labels, B_, a, r_.negative_distance.data(), r_.negative.data(),
                                      positive_distance_.data(), positive_column_.data());
    r_.row_max = s.row_max, r_.row_min = s.row_min;
    positive_max_ = s.positive_max, positive_min_ = s.positive_min;
    r_.n = s.n, r_.m = s.m;
    r_.row_sum = 0.0;
    for (const float lane : s.lane_sum) r_.row_sum += lane;
    sort_positives_into_cells();
    fill_buckets();
    const Farthest f = kernels_.farthest(r_.negative_distance.data(), r_.n);
    r_.farthest = f.distance;
    r_.farthest_ties = f.ties;
    r_.farthest_column = r_.n ? r_.negative[f.first] : 0u;
}

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
    const float range = m ? positive_max_ - positive_min_ : 0.0f;
    table_.lo = m ? positive_min_ : 0.0f;
    table_.scale = range > 0.0f && std::isfinite(range) ? float(cells_) / range : 0.0f;
    table_.top = float(cells_ - 1);
    table_.first = first_.data();
    table_.cell_positive = cell_positive_.data();
    // Counts per cell (in first_[c + 2]) and each cell's positive; the prefix sum then leaves
    // the start of cell c in first_[c + 1], which the scatter advances to the start of cell
    // c + 1: first_[c] is then the start of cell c (the in-place counting sort; a second
    // cursor array measured slower, its stores aliasing first_'s loads 4 KiB apart).
    std::fill_n(first_.begin(), cells_ + 2, 0u);
    std::fill_n(cell_positive_.begin(), cells_, INFINITY);
    for (std::size_t q = 0; q < m; ++q) {
        const std::uint32_t c = cell_of_[q] = table_.cell(pd[q]);
        cell_positive_[c] = first_[c + 2]++ == 0 ? pd[q] : -1.0f;
    }
    kernels_.prefix_sum(first_.data() + 2, cells_);
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
    const std::size_t several = kernels_.rank(nd, n, table_, rank, several_.data());
    for (std::size_t i = 0; i < several; ++i) {
        const std::uint32_t q = several_[i];
        rank[q] = rank_by_search(nd[q], table_.cell(nd[q]));
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

}  // namespace semigrad::losses::detail
