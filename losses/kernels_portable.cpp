// The triplet losses' kernels in plain C++ (losses/loss_kernels.hpp): the reference the AVX2 and
// AVX-512 files match bit for bit. Each loop is written without branches where the data are
// random (labels, ranks), so the compiler can keep it straight-line.
#include <cmath>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "losses/loss_kernels.hpp"

namespace semigrad::losses::detail {

namespace {

SplitRow split(const float* row, const int* labels, std::size_t B, std::size_t a, float* nd, std::uint32_t* ncol,
               float* pd, std::uint32_t* pcol) {
    SplitRow s;
    const int label = labels[a];
    float mx = -INFINITY, mn = INFINITY, positive_max = -INFINITY, positive_min = INFINITY;
    std::size_t n = 0, m = 0;
    for (std::size_t k = 0; k < B; ++k) {
        const float d = row[k];
        const bool is_negative = labels[k] != label, is_positive = !is_negative && k != a;
        // Written always, kept by advancing the count: no branch.
        nd[n] = d, ncol[n] = std::uint32_t(k);
        pd[m] = d, pcol[m] = std::uint32_t(k);
        n += is_negative;
        m += is_positive;
        mx = mx > d ? mx : d;  // the operand order of MAXPS, as the vector paths use it
        mn = mn < d ? mn : d;
        positive_max = is_positive ? (positive_max > d ? positive_max : d) : positive_max;
        positive_min = is_positive ? (positive_min < d ? positive_min : d) : positive_min;
        s.lane_sum[k % 16] += d;
    }
    s.row_max = mx, s.row_min = mn, s.positive_max = positive_max, s.positive_min = positive_min;
    s.n = n, s.m = m;
    return s;
}

void prefix_sum(std::uint32_t* x, std::size_t n) {
    std::uint32_t below = 0;
    for (std::size_t i = 0; i < n; ++i) x[i] = below += x[i];
}

std::size_t rank(const float* d, std::size_t n, const RankTable& t, std::uint32_t* rank, std::uint32_t* several) {
    std::size_t count = 0;
    for (std::size_t q = 0; q < n; ++q) {
        const std::uint32_t c = t.cell(d[q]);
        const float positive = t.cell_positive[c];
        rank[q] = t.first[c] + (d[q] > positive);
        several[count] = std::uint32_t(q);
        count += positive < 0.0f;
    }
    return count;
}

Farthest farthest(const float* d, std::size_t n) {
    Farthest f{-INFINITY, 0, 0};
    for (std::size_t q = 0; q < n; ++q) f.distance = d[q] > f.distance ? d[q] : f.distance;
    for (std::size_t q = n; q-- > 0;)
        if (d[q] == f.distance) ++f.ties, f.first = q;
    return f;
}

std::size_t take_nonzero(float* c, std::size_t B, std::uint32_t* columns, float* values) {
    std::size_t count = 0;
    for (std::size_t k = 0; k < B; ++k) {  // without a branch: a fifth of the entries are set
        columns[count] = std::uint32_t(k);
        values[count] = c[k];
        count += c[k] != 0.0f;
        c[k] = 0.0f;
    }
    return count;
}

// Written with SSE2 (every x86-64 has it): under GCC's default -ftrapping-math the vectoriser
// leaves a float compare or a call to std::sqrt (errno) scalar, which made this pass cost as
// much as the Gram matrix itself; sqrtps rounds as sqrtss does.
void distance_row(float sq_i, const float* __restrict sq, bool squared, std::size_t n, float* __restrict row) {
    std::size_t j = 0;
#ifdef __SSE2__
    const __m128 si = _mm_set1_ps(sq_i), two = _mm_set1_ps(2.0f), zero = _mm_setzero_ps();
    for (; j + 4 <= n; j += 4) {
        const __m128 d2 = _mm_sub_ps(_mm_add_ps(si, _mm_loadu_ps(sq + j)), _mm_mul_ps(two, _mm_loadu_ps(row + j)));
        const __m128 clamped = _mm_and_ps(_mm_cmpgt_ps(d2, zero), d2);
        _mm_storeu_ps(row + j, squared ? clamped : _mm_sqrt_ps(clamped));
    }
#endif
    for (; j < n; ++j) {
        const float d2 = (sq_i + sq[j]) - 2.0f * row[j];
        row[j] = d2 > 0.0f ? (squared ? d2 : std::sqrt(d2)) : 0.0f;
    }
}

void combine_rows(const std::uint32_t* columns, const float* values, std::size_t count, const float* x,
                  std::size_t ld, std::size_t width, float* out) {
    combine_rows_loops(columns, values, count, x, ld, width, out);
}

}  // namespace

const LossKernels kPortableKernels = {split, prefix_sum, rank, farthest, take_nonzero, distance_row, combine_rows};

}  // namespace semigrad::losses::detail
