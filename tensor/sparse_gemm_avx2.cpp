// sparse_gemm's AVX2 + FMA kernels (see sparse_gemm.hpp). A's non-zero entries are found eight
// at a time (a compare and a bit mask); a row of C is made 64 columns at a time in eight vector
// registers, each non-zero entry adding its scaled row of the other operand.
#include "tensor/sparse_gemm.hpp"

#if SEMIGRAD_X86
#include <algorithm>
#include <cstdint>
#include <vector>

#include <immintrin.h>

SEMIGRAD_KERNELS_BEGIN
namespace semigrad::sparse_gemm {

namespace {

// Lanes i < count set (a mask for maskload).
SEMIGRAD_AVX2 inline __m256i first(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Bit l of the result: x[l] is not 0 (NaN included), for l < count <= 8.
SEMIGRAD_AVX2 inline unsigned nonzero8(const float* x, int count) {
    const __m256 v = count >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, first(count));
    return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ)));
}

// A chain of FMAs per column for 8V columns of a row of C (the last vector holding `tail`), in
// registers: from 0, each entry adding its weight times its row; C, with `accumulate`, added at
// the end, as block_gemm does.
template <int V>
struct RowBlock {
    __m256 acc[V];
    __m256i last;
    int tail;
    SEMIGRAD_AVX2 __m256 load(const float* p, int v) const {
        return v == V - 1 && tail < 8 ? _mm256_maskload_ps(p + 8 * v, last) : _mm256_loadu_ps(p + 8 * v);
    }
    SEMIGRAD_AVX2 explicit RowBlock(int tail_) : last(first(tail_)), tail(tail_) {
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
    }
    SEMIGRAD_AVX2 void add(float weight, const float* row) {
        const __m256 s = _mm256_set1_ps(weight);
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[v] = _mm256_fmadd_ps(s, load(row, v), acc[v]);
    }
    // Not vmaskmovps: AMD's masked store is microcoded (tensor/conv_block_avx2.cpp).
    SEMIGRAD_AVX2 void store(float* c, bool accumulate) const {
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) {
            const __m256 out = accumulate ? _mm256_add_ps(load(c, v), acc[v]) : acc[v];
            if (v < V - 1 || tail == 8) {
                _mm256_storeu_ps(c + 8 * v, out);
                continue;
            }
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, out);
            std::copy(lanes, lanes + tail, c + 8 * v);
        }
    }
};

// nn's row i of C, columns [j, j + 8V): row i of A's non-zero entries (`bits`, 64 to a word),
// k ascending, times B's rows.
template <int V>
SEMIGRAD_AVX2 inline void nn_block(const std::vector<std::uint64_t>& bits, const float* ai,
                                   const float* b, int ldb, int j, bool accumulate, float* ci,
                                   int tail) {
    RowBlock<V> r(tail);
    for (std::size_t w = 0; w < bits.size(); ++w)
        for (std::uint64_t m = bits[w]; m; m &= m - 1) {
            const int k = int(64 * w) + __builtin_ctzll(m);
            r.add(ai[k], b + std::size_t(k) * ldb + j);
        }
    r.store(ci + j, accumulate);
}

// tn's row k of C, columns [j, j + 8V): column k of A's non-zero entries (`rows`: 32 rows to a
// word, `stride` words from one group of 32 to the next), i ascending, times D's rows.
template <int V>
SEMIGRAD_AVX2 inline void tn_block(const std::uint32_t* rows, int groups, std::size_t stride,
                                   const float* a, int lda, int k, const float* d, int ldd, int j,
                                   float* ck, int tail) {
    RowBlock<V> r(tail);
    for (int q = 0; q < groups; ++q)
        for (std::uint32_t m = rows[std::size_t(q) * stride]; m; m &= m - 1) {
            const int i = 32 * q + __builtin_ctz(m);
            r.add(a[std::size_t(i) * lda + k], d + std::size_t(i) * ldd + j);
        }
    r.store(ck + j, false);
}

}  // namespace

SEMIGRAD_AVX2 std::size_t nonzeros_avx2(const float* a, std::size_t n) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; i += 8)
        count += std::size_t(__builtin_popcount(nonzero8(a + i, int(std::min<std::size_t>(8, n - i)))));
    return count;
}

SEMIGRAD_AVX2 void nn_avx2(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
                           bool accumulate, float* c, int ldc) {
    // Row i's non-zero columns as 64-bit words (a word's loop ends once: fewer mispredicted exits
    // than a byte's); then its C row in blocks of 64 columns, then of 8 (the last perhaps short).
    std::vector<std::uint64_t> bits(std::size_t(K + 63) / 64);
    for (int i = 0; i < M; ++i) {
        const float* ai = a + std::size_t(i) * lda;
        float* ci = c + std::size_t(i) * ldc;
        std::fill(bits.begin(), bits.end(), 0);
        for (int k = 0; k < K; k += 8)
            bits[std::size_t(k) / 64] |= std::uint64_t(nonzero8(ai + k, std::min(8, K - k))) << (k % 64);
        int j = 0;
        for (; j + 64 <= N; j += 64) nn_block<8>(bits, ai, b, ldb, j, accumulate, ci, 8);
        for (; j < N; j += 8) nn_block<1>(bits, ai, b, ldb, j, accumulate, ci, std::min(8, N - j));
    }
}

SEMIGRAD_AVX2 void tn_avx2(int M, int N, int k0, int k1, const float* a, int lda, const float* d,
                           int ldd, float* c, int ldc) {
    // Column k's non-zero rows, 32 to a word: A's rows scanned once, their set bits turned over.
    const int groups = (M + 31) / 32, K = k1 - k0;
    std::vector<std::uint32_t> rows(std::size_t(groups) * K, 0);  // [group][k]
    for (int i = 0; i < M; ++i) {
        const float* ai = a + std::size_t(i) * lda + k0;
        std::uint32_t* column = rows.data() + std::size_t(i / 32) * K;
        for (int k = 0; k < K; k += 8)
            for (unsigned m = nonzero8(ai + k, std::min(8, K - k)); m; m &= m - 1)
                column[k + __builtin_ctz(m)] |= 1u << (i % 32);
    }
    for (int k = k0; k < k1; ++k) {
        const std::uint32_t* column = rows.data() + (k - k0);
        float* ck = c + std::size_t(k) * ldc;
        int j = 0;
        for (; j + 64 <= N; j += 64) tn_block<8>(column, groups, std::size_t(K), a, lda, k, d, ldd, j, ck, 8);
        for (; j < N; j += 8)
            tn_block<1>(column, groups, std::size_t(K), a, lda, k, d, ldd, j, ck, std::min(8, N - j));
    }
}

}  // namespace semigrad::sparse_gemm
SEMIGRAD_KERNELS_END
#endif
