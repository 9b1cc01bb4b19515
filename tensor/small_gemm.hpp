// small_gemm: the three matrix products of a convolution whose GEMM inner dimension is tiny, as
// plain loops. The tutorial's first conv has K = C*KH*KW = 4: its forward is [64,4] @ [4,784]
// and its weight gradient [64,784] @ [784,4]^T per image. OpenBLAS's kernels are built for long
// inner dimensions and pay their packing for every call; at these shapes its Haswell kernels (what
// an AVX2 CPU runs) took 18-30 us per image for the forward and 25-33 us for the weight gradient,
// 2-3.5x its SkylakeX kernels (9-13, 7-9). The loops below take about 12 us for the forward on
// either, and make the first conv's bits independent of the BLAS and the CPU. Measured with
// bench_kernels (conv1's backward, 1 thread, CPU time, on a shared host): 0.47 ms against 0.97-1.07
// for OpenBLAS's Haswell kernels; 0.44 against 0.35-0.37 for its SkylakeX ones (a small loss on
// AVX-512 CPUs); the portable variant 1.45 against 0.95 (8 lanes as two SSE halves).
//
// Shapes (row-major, no leading dimensions: every operand is contiguous):
//   nn  out [M,N]  = a [M,K] @ b [K,N]          out[i][j] = ((a[i][0] b[0][j] + a[i][1] b[1][j]) + ...)
//   nt  c   [M,K] (+)= a [M,N] @ b [K,N]^T      N = R x W, a conv output plane's rows and
//                                               columns: each entry one dot product of length
//                                               N, summed by columns (below), and then (c +)
//                                               that sum; and, given row_sums, row_sums[i] +=
//                                               a's row i summed by columns, the conv's bias
//                                               gradient, in the same pass over a
//   tn  c   [K,N]  = a [M,K]^T @ b [M,N]        c[k][j] = ((a[0][k] b[0][j] + a[1][k] b[1][j]) + ...)
//
// Summed by columns: column w's terms are added down the rows, r = 0, 1, ..., R-1, each rounded
// product onto the running sum from 0 (a chain per column); the W column sums are then folded by
// ColumnFold. Why columns and not the plain order of the N terms: the conv block's backward
// (conv_block_kernels.hpp, ConvPoolGrad) knows which few entries of a are non-zero, one in each
// pool window, and sums only those, column by column; adding a zero does not change a sum, so it
// gets exactly these bits while doing a quarter of the products.
//
// The loop bodies are written once, here, and compiled three times (small_gemm.cpp portable,
// small_gemm_avx2.cpp, small_gemm_avx512.cpp): each variant only sets the vector width the
// compiler may use. With no fused multiply-add (-ffp-contract=off) and no reassociation, each
// output's operations and their order are the source's, so all three give the same bits.
#pragma once

#include "tensor/simd.hpp"

namespace semigrad::small_gemm {

using Nn = void (*)(int M, int N, int K, const float* a, const float* b, float* out);
using Nt = void (*)(int M, int R, int W, int K, const float* a, const float* b, bool accumulate,
                    float* c, float* row_sums);
using Tn = void (*)(int M, int N, int K, const float* a, const float* b, float* c);
// totals[s] = ColumnFold (below) of row s of `rows` (S rows, `stride` floats apart): its first
// W columns in blocks of 8 from column 0, reading on to the next multiple of 8, where the caller
// keeps zeros. nt's last step, for column sums made elsewhere (conv_block_kernels.hpp,
// ConvPoolGrad), so that those give nt's bits.
using Fold = void (*)(int S, int W, const float* rows, std::size_t stride, float* totals);

struct Kernels {
    Nn nn;
    Nt nt;
    Tn tn;
    Fold fold;
};
// The variants for `isa` (tensor/simd.hpp; the caller has checked that the CPU runs it).
Kernels kernels(Isa isa);

// ---------------------------------------------------------------------------------------------
// the loop bodies, inlined into each variant

// Eight floats as one value (GCC's vector extension): one YMM register with AVX2 and up, two
// XMM registers on plain x86-64; lane l is the same arithmetic either way.
using Lanes = float __attribute__((vector_size(32)));

// (Lanes go by reference: passing an AVX-sized vector by value would depend on the target.)
[[gnu::always_inline]] inline void load(Lanes& v, const float* p) { __builtin_memcpy(&v, p, sizeof v); }

[[gnu::always_inline]] inline void nn_loops(int M, int N, int K, const float* __restrict a,
                                            const float* __restrict b, float* __restrict out) {
    for (int i = 0; i < M; ++i) {
        const float* ai = a + i * K;
        float* o = out + static_cast<long>(i) * N;
        // Eight outputs at a time, their K terms summed in a register and stored once (one pass
        // over the row per k would load and store it K times).
        int j = 0;
        for (; j + 8 <= N; j += 8) {
            Lanes acc, y;
            load(acc, b + j);
            acc *= ai[0];
            for (int k = 1; k < K; ++k) {
                load(y, b + static_cast<long>(k) * N + j);
                acc += ai[k] * y;
            }
            __builtin_memcpy(o + j, &acc, sizeof acc);
        }
        for (; j < N; ++j) {
            float acc = ai[0] * b[j];
            for (int k = 1; k < K; ++k) acc += ai[k] * b[static_cast<long>(k) * N + j];
            o[j] = acc;
        }
    }
}

// The eight lanes summed pairwise, as conv2d.hpp's sum_in_lanes does.
[[gnu::always_inline]] inline float fold(const float* acc) {
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// The fold of W column sums, fed in blocks of eight columns from column 0 on (the last block
// zero past column W): two chains of lanes, the even blocks' and the odd blocks' (so lane l
// gathers columns l, l + 16, l + 32, ... and l + 8, l + 24, ...), then the two added and the
// eight lanes folded pairwise.
struct ColumnFold {
    Lanes even{}, odd{};
    bool at_odd = false;
    [[gnu::always_inline]] void add(const Lanes& block) {
        (at_odd ? odd : even) += block;
        at_odd = !at_odd;
    }
    // fold()'s sums in registers: lanes l and l + 4 added, then the pairs (0, 2) and (1, 3) of
    // those, then the two; the same additions of the same operands as fold(), so the same bits.
    // (Through a stack array and scalar additions, the first block's backward spent 1.5% of an
    // AVX2 training step folding its column sums.)
    [[gnu::always_inline]] float sum() const {
        const Lanes both = even + odd;
        const Lanes h = both + __builtin_shufflevector(both, both, 4, 5, 6, 7, 0, 1, 2, 3);
        const Lanes q = h + __builtin_shufflevector(h, h, 2, 3, 0, 1, 6, 7, 4, 5);
        const Lanes r = q + __builtin_shufflevector(q, q, 1, 0, 3, 2, 5, 4, 7, 6);
        return r[0];
    }
};

// Row i of a against all K rows of b, eight columns c0..c0+7 at a time (c0 + 8 <= W): each
// column's K products and, with Sum, its own entries, summed down the R rows in chains that
// live in registers.
template <int K, bool Sum>
[[gnu::always_inline]] inline void column_block(int R, int W, long N, int c0, const float* __restrict ai,
                                                const float* __restrict b, Lanes* __restrict s,
                                                Lanes& total) {
    for (int k = 0; k < K; ++k) s[k] = Lanes{};
    total = Lanes{};
    for (int r = 0; r < R; ++r) {
        const long at = static_cast<long>(r) * W + c0;
        Lanes x, y;
        load(x, ai + at);
        for (int k = 0; k < K; ++k) {
            load(y, b + k * N + at);
            s[k] += x * y;
        }
        if (Sum) total += x;
    }
}

// Lanes 8 - n .. 7 of v moved down to lanes 0 .. n-1, zeros above (in place): the last n
// columns of a block that ends at column W, when W is not a multiple of 8.
[[gnu::always_inline]] inline void keep_last_columns(Lanes& v, int n) {
    float in[8], out[8] = {};
    __builtin_memcpy(in, &v, sizeof in);
    for (int l = 0; l < n; ++l) out[l] = in[8 - n + l];
    __builtin_memcpy(&v, out, sizeof v);
}

template <int K, bool Sum>
[[gnu::always_inline]] inline void nt_row(int R, int W, const float* __restrict ai,
                                          const float* __restrict b, bool accumulate,
                                          float* __restrict ci, float* __restrict sum) {
    const long N = static_cast<long>(R) * W;
    ColumnFold fk[K], ft;
    Lanes s[K], total;
    if (W >= 8) {
        int c0 = 0;
        for (; c0 + 8 <= W; c0 += 8) {
            column_block<K, Sum>(R, W, N, c0, ai, b, s, total);
            for (int k = 0; k < K; ++k) fk[k].add(s[k]);
            if (Sum) ft.add(total);
        }
        if (const int n = W - c0; n > 0) {
            // The block that ends at column W; its first 8 - n columns are done already.
            column_block<K, Sum>(R, W, N, W - 8, ai, b, s, total);
            for (int k = 0; k < K; ++k) {
                keep_last_columns(s[k], n);
                fk[k].add(s[k]);
            }
            if (Sum) {
                keep_last_columns(total, n);
                ft.add(total);
            }
        }
    } else {
        // Fewer than eight columns: the same chains on plain floats, zeros past column W.
        float cs[K][8] = {}, ct[8] = {};
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < W; ++c) {
                const long at = static_cast<long>(r) * W + c;
                for (int k = 0; k < K; ++k) cs[k][c] += ai[at] * b[k * N + at];
                if (Sum) ct[c] += ai[at];
            }
        for (int k = 0; k < K; ++k) {
            __builtin_memcpy(&s[k], cs[k], sizeof s[k]);
            fk[k].add(s[k]);
        }
        __builtin_memcpy(&total, ct, sizeof total);
        if (Sum) ft.add(total);
    }
    for (int k = 0; k < K; ++k) ci[k] = accumulate ? ci[k] + fk[k].sum() : fk[k].sum();
    if (Sum) *sum += ft.sum();
}

template <int K>
[[gnu::always_inline]] inline void nt_row(int R, int W, const float* __restrict ai,
                                          const float* __restrict b, bool accumulate,
                                          float* __restrict ci, float* __restrict sum) {
    if (sum)
        nt_row<K, true>(R, W, ai, b, accumulate, ci, sum);
    else
        nt_row<K, false>(R, W, ai, b, accumulate, ci, nullptr);
}

[[gnu::always_inline]] inline void nt_loops(int M, int R, int W, int K, const float* __restrict a,
                                            const float* __restrict b, bool accumulate,
                                            float* __restrict c, float* __restrict row_sums) {
    const long N = static_cast<long>(R) * W;
    for (int i = 0; i < M; ++i) {
        const float* ai = a + i * N;
        float* ci = c + i * K;
        float* sum = row_sums ? row_sums + i : nullptr;
        switch (K) {  // K known at compile time: the chains live in registers
            case 1: nt_row<1>(R, W, ai, b, accumulate, ci, sum); break;
            case 2: nt_row<2>(R, W, ai, b, accumulate, ci, sum); break;
            case 3: nt_row<3>(R, W, ai, b, accumulate, ci, sum); break;
            case 4: nt_row<4>(R, W, ai, b, accumulate, ci, sum); break;
            default:
                for (int k0 = 0; k0 < K; k0 += 4) {
                    const int k1 = K - k0 < 4 ? K - k0 : 4;
                    const float* bk = b + k0 * N;
                    float* s = k0 == 0 ? sum : nullptr;  // the row's sum once, with the first four
                    if (k1 == 4) nt_row<4>(R, W, ai, bk, accumulate, ci + k0, s);
                    else if (k1 == 3) nt_row<3>(R, W, ai, bk, accumulate, ci + k0, s);
                    else if (k1 == 2) nt_row<2>(R, W, ai, bk, accumulate, ci + k0, s);
                    else nt_row<1>(R, W, ai, bk, accumulate, ci + k0, s);
                }
        }
    }
}

[[gnu::always_inline]] inline void fold_loops(int S, int W, const float* __restrict rows,
                                              std::size_t stride, float* __restrict totals) {
    for (int s = 0; s < S; ++s) {
        const float* row = rows + s * stride;
        ColumnFold fold;
        for (int c0 = 0; c0 < W; c0 += 8) {
            Lanes block;
            load(block, row + c0);
            fold.add(block);
        }
        totals[s] = fold.sum();
    }
}

[[gnu::always_inline]] inline void tn_loops(int M, int N, int K, const float* __restrict a,
                                            const float* __restrict b, float* __restrict c) {
    for (int k = 0; k < K; ++k) {
        float* ck = c + static_cast<long>(k) * N;
        for (int j = 0; j < N; ++j) ck[j] = a[k] * b[j];
        for (int i = 1; i < M; ++i) {
            const float w = a[i * K + k];
            const float* bi = b + static_cast<long>(i) * N;
            for (int j = 0; j < N; ++j) ck[j] += w * bi[j];
        }
    }
}

void nn_portable(int M, int N, int K, const float* a, const float* b, float* out);
void nt_portable(int M, int R, int W, int K, const float* a, const float* b, bool accumulate,
                 float* c, float* row_sums);
void tn_portable(int M, int N, int K, const float* a, const float* b, float* c);
void fold_portable(int S, int W, const float* rows, std::size_t stride, float* totals);
#if SEMIGRAD_X86
void nn_avx2(int M, int N, int K, const float* a, const float* b, float* out);
void nt_avx2(int M, int R, int W, int K, const float* a, const float* b, bool accumulate, float* c,
             float* row_sums);
void tn_avx2(int M, int N, int K, const float* a, const float* b, float* c);
void fold_avx2(int S, int W, const float* rows, std::size_t stride, float* totals);
void nn_avx512(int M, int N, int K, const float* a, const float* b, float* out);
void nt_avx512(int M, int R, int W, int K, const float* a, const float* b, bool accumulate,
               float* c, float* row_sums);
void tn_avx512(int M, int N, int K, const float* a, const float* b, float* c);
void fold_avx512(int S, int W, const float* rows, std::size_t stride, float* totals);
#endif

}  // namespace semigrad::small_gemm
