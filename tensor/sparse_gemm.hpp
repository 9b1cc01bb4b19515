// sparse_gemm: the two products of a Dense layer that read its input X, for an X mostly zeros,
// reading only X's non-zero entries. The tutorial's Dense reads the second block's output,
// ReLU'd and dropped: about 30% of it non-zero in training.
//
//   nn   C [M, N] (+)= A [M, K] @ B [K, N]      the forward X W: row i of C chains A's non-zero
//                                               a[i][k], k ascending, times B's row k
//   tn   C [K, N]  = A [M, K]ᵀ @ D [M, N]       the weight gradient Xᵀ dY: row k of C chains
//                                               A's non-zero a[i][k], i ascending, times D's row i
//
// Row-major, leading dimensions lda, ldb, ldd, ldc. Each C element is one chain of fused
// multiply-adds from 0 over the non-zero entries in order, C added at the end with `accumulate`
// (block_gemm.hpp's chain over every entry, minus the zeros, whose products, +-0, change no chain:
// a sum from +0 is never -0). So the bits depend on the operands alone, not on the threads, and a
// row of nn's C on its own row of A alone; but they are not OpenBLAS's. The reference is
// gemm_naive (tensor/gemm.hpp); tests compare within rounding, and bit for bit with the chains.
//
// Worth it only for a sparse enough A. One core, the tutorial's shapes, each thread's half, X at
// 25 / 33 / 40 / 50% non-zero (`bench_kernels --benchmark_filter=DenseProduct`, OMP_NUM_THREADS=1):
// nn 104 / 135 / 166 / 197 us against OpenBLAS's 116 (SkylakeX small kernels) or 138 (Haswell),
// since each row of C reads the rows of B it needs from L2 again, where OpenBLAS packs B once
// for all 32 rows; tn 57 / 70 / 96 us at 25 / 33 / 50%, 114 at 60%, against 121-129 or 133,
// since A's zeros skip whole rows of D. Hence choose(), below: nn up to a third non-zero (in the
// training step, at about 30%, 0.13 -> 0.11 ms on either path, 0.16 -> 0.11 on AVX2's), tn up to
// a half. The choice depends on A's values, and OpenBLAS rounds otherwise: a batch's rows, or a
// process's shard of them, get the bits of the kernel its density chose.
//
// AVX2 + FMA kernels (sparse_gemm_avx2.cpp), which the AVX-512 path runs too; none for the
// portable path, where the Dense layer keeps OpenBLAS.
#pragma once

#include <cstddef>

#include "tensor/simd.hpp"

namespace semigrad::sparse_gemm {

// Which of the two products to run sparse for A [M, K] (rows lda apart) on `isa`: nn when at most
// a third of A is non-zero, tn at most a half; neither on the portable path.
struct Choice {
    bool nn = false, tn = false;
};
Choice choose(Isa isa, int M, int K, const float* a, int lda);

// The products above, spread over the caller's threads (called outside a parallel region) by
// columns of C for nn and rows of C for tn. `isa` must have the kernels (else ValueError).
void nn_split(Isa isa, int M, int N, int K, const float* a, int lda, const float* b, int ldb,
              bool accumulate, float* c, int ldc);
void tn_split(Isa isa, int M, int N, int K, const float* a, int lda, const float* d, int ldd,
              float* c, int ldc);

#if SEMIGRAD_X86
std::size_t nonzeros_avx2(const float* a, std::size_t n);
// One thread's share: nn's columns [0, N) of C; tn's rows [k0, k1) of C (A read whole).
void nn_avx2(int M, int N, int K, const float* a, int lda, const float* b, int ldb,
             bool accumulate, float* c, int ldc);
void tn_avx2(int M, int N, int k0, int k1, const float* a, int lda, const float* d, int ldd,
             float* c, int ldc);
#endif

}  // namespace semigrad::sparse_gemm
