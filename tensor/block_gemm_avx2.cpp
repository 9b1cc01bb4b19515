// block_gemm's AVX2 + FMA kernel (see block_gemm.hpp): C in blocks of 6 rows by 16 columns,
// 12 accumulators in registers; the last rows in smaller blocks, the last columns in 8 or in a
// masked vector. Sixteen YMM registers: 12 accumulators, 2 of B's row, 1 broadcast of A.
#include "tensor/block_gemm.hpp"

#if SEMIGRAD_X86
#include <algorithm>

#include <immintrin.h>

SEMIGRAD_KERNELS_BEGIN
namespace semigrad::block_gemm {

namespace {

// Column tails up to this wide go by rows where A's columns are contiguous (column_by_rows):
// one thread, 32x49x64, 2,213 ns in blocks against 1,832 by rows; the two meet at 5-6 columns.
constexpr int kColumnsByRows = 4;

// Lanes i < count set (a mask for maskload).
SEMIGRAD_AVX2 inline __m256i first(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// c's block of R rows and NV vectors of columns (the last holding `tail` columns when Masked)
// from A's R rows (a: row 0, column 0) and B's 8*NV columns (b: row 0).
template <int R, int NV, bool Masked>
SEMIGRAD_AVX2 inline void block(int K, const float* a, long a_row, long a_col, const float* b,
                                long ldb, bool accumulate, float* c, long ldc, int tail) {
    // (Every loop over r and v unrolled, so that acc is registers, not an array on the stack.)
    __m256 acc[R][NV];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
    const __m256i mask = first(tail);
    for (int k = 0; k < K; ++k) {
        const float* bk = b + k * ldb;
        __m256 bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v)
            bv[v] = Masked && v == NV - 1 ? _mm256_maskload_ps(bk + 8 * v, mask)
                                          : _mm256_loadu_ps(bk + 8 * v);
        const float* ak = a + k * a_col;
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256 ar = _mm256_broadcast_ss(ak + r * a_row);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
            float* cr = c + r * ldc + 8 * v;
            if (!(Masked && v == NV - 1)) {
                _mm256_storeu_ps(cr, accumulate ? _mm256_add_ps(_mm256_loadu_ps(cr), acc[r][v]) : acc[r][v]);
                continue;
            }
            // Not vmaskmovps: AMD's masked store is microcoded (tensor/conv_block_avx2.cpp).
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, acc[r][v]);
            for (int j = 0; j < tail; ++j) cr[j] = accumulate ? cr[j] + lanes[j] : lanes[j];
        }
}

// R rows of C for one column block, R = 1..6.
template <int NV, bool Masked>
SEMIGRAD_AVX2 inline void rows(int R, int K, const float* a, long a_row, long a_col, const float* b,
                               long ldb, bool accumulate, float* c, long ldc, int tail) {
    switch (R) {
        case 6: block<6, NV, Masked>(K, a, a_row, a_col, b, ldb, accumulate, c, ldc, tail); break;
        case 5: block<5, NV, Masked>(K, a, a_row, a_col, b, ldb, accumulate, c, ldc, tail); break;
        case 4: block<4, NV, Masked>(K, a, a_row, a_col, b, ldb, accumulate, c, ldc, tail); break;
        case 3: block<3, NV, Masked>(K, a, a_row, a_col, b, ldb, accumulate, c, ldc, tail); break;
        case 2: block<2, NV, Masked>(K, a, a_row, a_col, b, ldb, accumulate, c, ldc, tail); break;
        case 1: block<1, NV, Masked>(K, a, a_row, a_col, b, ldb, accumulate, c, ldc, tail); break;
        default: break;
    }
}

// Every row of C for one column block: in blocks of 6, except that a rest of 1-3 rows shares
// the last 6 as two blocks of 3-5 (32 rows: 6, 6, 6, 6, 4, 4). A block of R rows keeps 2R
// products in flight, and the FMA's latency (4 cycles) times its two pipes wants 8: a block of 2
// rows would run at half speed.
template <int NV, bool Masked>
SEMIGRAD_AVX2 inline void column_block(int M, int K, const float* a, long a_row, long a_col,
                                       const float* b, long ldb, bool accumulate, float* c,
                                       long ldc, int tail) {
    int sixes = M / 6;
    if (M % 6 != 0 && M % 6 < 4 && sixes > 0) --sixes;
    int i = 0;
    for (; i < 6 * sixes; i += 6)
        block<6, NV, Masked>(K, a + i * a_row, a_row, a_col, b, ldb, accumulate, c + i * ldc, ldc, tail);
    const int left = M - i;  // 0-5, or 7-9 as two blocks
    const int first = left > 6 ? (left + 1) / 2 : left;
    rows<NV, Masked>(first, K, a + i * a_row, a_row, a_col, b, ldb, accumulate, c + i * ldc, ldc, tail);
    i += first;
    rows<NV, Masked>(M - i, K, a + i * a_row, a_row, a_col, b, ldb, accumulate, c + i * ldc, ldc, tail);
}

// C's column j by rows: V vectors of 8 rows of C at once (the last holding `last` rows), each
// row's sum taken down k in order with one FMA a step, from zero, exactly as block() takes it.
// It needs A's columns contiguous (a_row == 1: A is the transpose of a row-major [K, M]): column
// k of V*8 rows is then V loads, and the V chains keep both FMA pipes busy, where block() would
// spend a 6-row block with one useful lane of eight on the column.
template <int V>
SEMIGRAD_AVX2 inline void column_by_rows(int K, const float* a, long a_col, const float* bj,
                                         long ldb, bool accumulate, float* cj, long ldc,
                                         int last) {
    __m256 acc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
    const __m256i mask = first(last);
    for (int k = 0; k < K; ++k) {
        const __m256 bk = _mm256_broadcast_ss(bj + k * ldb);
        const float* ak = a + k * a_col;
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) {
            const __m256 av = v == V - 1 ? _mm256_maskload_ps(ak + 8 * v, mask)
                                         : _mm256_loadu_ps(ak + 8 * v);
            acc[v] = _mm256_fmadd_ps(av, bk, acc[v]);
        }
    }
    alignas(32) float lanes[8 * V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) _mm256_store_ps(lanes + 8 * v, acc[v]);
    const int rows = 8 * (V - 1) + last;
    for (int i = 0; i < rows; ++i) {
        float* ci = cj + i * ldc;
        *ci = accumulate ? *ci + lanes[i] : lanes[i];
    }
}

// Column j of C by rows, 64 rows at a time.
SEMIGRAD_AVX2 inline void column_by_rows(int M, int K, const float* a, long a_col,
                                         const float* bj, long ldb, bool accumulate, float* cj,
                                         long ldc) {
    for (int i = 0; i < M; i += 64) {
        const int rows = std::min(64, M - i), V = (rows + 7) / 8, last = rows - 8 * (V - 1);
        const float* ai = a + i;
        float* ci = cj + i * ldc;
        switch (V) {
            case 8: column_by_rows<8>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            case 7: column_by_rows<7>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            case 6: column_by_rows<6>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            case 5: column_by_rows<5>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            case 4: column_by_rows<4>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            case 3: column_by_rows<3>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            case 2: column_by_rows<2>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
            default: column_by_rows<1>(K, ai, a_col, bj, ldb, accumulate, ci, ldc, last); break;
        }
    }
}

}  // namespace

SEMIGRAD_AVX2 void avx2(int M, int N, int K, const float* a, long a_row, long a_col,
                        const float* b, long ldb, bool accumulate, float* c, long ldc) {
    int j = 0;
    for (; j + 16 <= N; j += 16)
        column_block<2, false>(M, K, a, a_row, a_col, b + j, ldb, accumulate, c + j, ldc, 8);
    const int rest = N - j;
    // A few columns left, with A's columns contiguous: by rows of C (the 49th of the Winograd
    // products' 49 tiles took 8% of an AVX2 evaluation in blocks).
    if (rest > 0 && rest <= kColumnsByRows && a_row == 1) {
        for (; j < N; ++j)
            column_by_rows(M, K, a, a_col, b + j, ldb, accumulate, c + j, ldc);
        return;
    }
    if (rest > 8)
        column_block<2, true>(M, K, a, a_row, a_col, b + j, ldb, accumulate, c + j, ldc, rest - 8);
    else if (rest == 8)
        column_block<1, false>(M, K, a, a_row, a_col, b + j, ldb, accumulate, c + j, ldc, 8);
    else if (rest > 0)
        column_block<1, true>(M, K, a, a_row, a_col, b + j, ldb, accumulate, c + j, ldc, rest);
}

}  // namespace semigrad::block_gemm
SEMIGRAD_KERNELS_END
#endif
