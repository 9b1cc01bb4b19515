// gemm: the one matrix product of semigrad, C = alpha * op(A) * op(B) + beta * C, row-major.
//
// Every matrix product in the runtime (Dense, conv2d via im2col, pairwise distances) goes
// through `gemm`, which is one call to OpenBLAS's cblas_sgemm, or a few on slices of the product
// where that lets OpenBLAS use its small-matrix kernels, which skip packing the operands
// (gemm.cpp says when). `gemm_naive` is the triple loop it replaces, kept as the reference for
// tests and benchmarks (docs/design.md, "Tensors and kernels").
//
// Shapes: op(A) is [M,K], op(B) is [K,N], C is [M,N]. lda/ldb/ldc are row strides of the
// matrices as stored (before transposition), as in BLAS.
#pragma once

#include "tensor/tensor.hpp"

namespace semigrad {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// The same product for a call outside any parallel region, as one single-threaded OpenBLAS call
// per thread on its own block of C (rows or columns, whichever C has more of), when it is big
// enough (M*N*K >= 2^20) to pay for the thread team. At the Dense layer's shapes (32x256x1568
// and its two gradients) OpenBLAS's own threading splits them worse: TN 1568x256x32 took 0.17 ms
// against 0.14 split by rows, the other two 0.16-0.17 against 0.14-0.15 (2 threads, SkylakeX and
// Haswell kernels). Each C element is one thread's; the split depends on the thread count only,
// so a fixed thread count gives fixed bits.
void gemm_split(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc);

void gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc);

// op(a) @ op(b) for rank-2 tensors, a new [M,N] tensor. Throws ShapeError naming both shapes.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

}  // namespace semigrad
