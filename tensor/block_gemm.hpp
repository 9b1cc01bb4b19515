// block_gemm: C [M, N] = (or +=) A [M, K] @ B [K, N] for operands small enough to stay in L1
// and L2, read where they lie: no packing, no call into OpenBLAS. It exists for the Winograd
// convolution's products (conv2d_lowering.cpp), 27 an image of shapes like 32x49x64, on CPUs
// whose OpenBLAS kernels pack both operands for every call. That is every AVX2-only CPU:
// OpenBLAS 0.3.21 has no-packing "small matrix" kernels for AVX-512 (SkylakeX, Cooperlake) but
// not for Haswell or Zen, and at these shapes its Haswell path spent about as long copying the
// operands (sgemm_itcopy, oncopy, incopy, otcopy), zeroing C for beta = 0 and allocating its
// buffers as in its kernel proper (perf, SEMIGRAD_ISA=avx2 training step).
//
// The kernel is the textbook register-blocked product (Goto and van de Geijn 2008, "Anatomy of
// High-Performance Matrix Multiplication", without its packing): an R x 16 block of C lives in
// 2R vector registers while k runs over K, each step loading 16 floats of B's row k and
// broadcasting R floats of A's column k into 2R fused multiply-adds. A is read through two
// strides, so the conv's transposed kernel V^T needs no copy either. A tail of 1-4 columns,
// where a block would hold one useful lane in eight, goes by rows of C instead when A's columns
// are contiguous (a_row == 1), eight rows to a vector, in the same order of sums.
//
// The reference is gemm_naive (tensor/gemm.hpp); tests/tensor/test_block_gemm.cpp compares
// every block shape and tail against it. The sums run k = 0..K-1 in order, one FMA each, so the
// bits depend on the inputs only (not on threads), but they are not OpenBLAS's: like any GEMM's,
// they differ in the last bits from other kernels'.
#pragma once

#include "tensor/simd.hpp"

namespace semigrad::block_gemm {

// c[i*ldc + j] (+)= sum_k a[i*a_row + k*a_col] * b[k*ldb + j]   (i < M, j < N, k < K)
// with `accumulate`, else =. With (a_row, a_col) = (lda, 1), A is a row-major [M, K]; with
// (1, lda), A is the transpose of a row-major [K, M]. B and C are row-major.
using Fn = void (*)(int M, int N, int K, const float* a, long a_row, long a_col, const float* b,
                    long ldb, bool accumulate, float* c, long ldc);

// The kernel for `isa`, or null where OpenBLAS's own is the better choice (portable, and
// AVX-512, whose OpenBLAS kernels need no packing at these shapes).
Fn kernel(Isa isa);

#if SEMIGRAD_X86
void avx2(int M, int N, int K, const float* a, long a_row, long a_col, const float* b, long ldb,
          bool accumulate, float* c, long ldc);
#endif

}  // namespace semigrad::block_gemm
