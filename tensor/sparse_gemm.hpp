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
// multiply-adds from 0 over the non-zero entries in order, C added at the end with `accumulate`:
// block_gemm.hpp's chain over every entry, minus the zeros, whose products (+-0) change no chain
// (a sum from +0 is never -0). So for finite operands the bits are block_gemm's, which is what
// runs when A is more than half non-zero: the choice changes the speed, never the result, and a
// row's result does not depend on the other rows (nor on the threads): a process's shard of a
// batch gets the bits the whole batch would. They are not OpenBLAS's. The reference is
// gemm_naive (tensor/gemm.hpp); tests compare within rounding, and bit for bit with the chains.
//
// One core, the tutorial's shapes at 29% non-zero, each thread's half (AVX2 kernels, against
// OpenBLAS's Haswell ones): tn 51 us against 133, since A's zeros skip whole rows of D; nn 115
// against 137, less, since each row of C reads the rows of B it needs from L2 again, where
// OpenBLAS packs B once for all 32 rows (block_gemm's dense chains: 172).
//
// AVX2 + FMA kernels (sparse_gemm_avx2.cpp), which the AVX-512 path runs too; none for the
// portable path, where the Dense layer keeps OpenBLAS.
#pragma once

#include <cstddef>

#include "tensor/simd.hpp"

namespace semigrad::sparse_gemm {

// Whether `isa` has the kernels (AVX2 and AVX-512).
bool available(Isa isa);

// The products above, spread over the caller's threads (called outside a parallel region) by
// columns of C for nn and rows of C for tn: the sparse kernels when A is at most half non-zero,
// else block_gemm's. `isa` must have them (else ValueError).
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
