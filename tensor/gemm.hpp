// gemm: the one matrix product of semigrad, C = alpha * op(A) * op(B) + beta * C, row-major.
//
// Every matrix product in the runtime (Dense, conv2d via im2col, pairwise distances) goes
// through `gemm`, which is one call to OpenBLAS's cblas_sgemm. `gemm_naive` is the triple loop it
// replaces, kept as the reference for tests and benchmarks (docs/design.md, "Tensors and kernels").
//
// Shapes: op(A) is [M,K], op(B) is [K,N], C is [M,N]. lda/ldb/ldc are row strides of the
// matrices as stored (before transposition), as in BLAS.
#pragma once

#include "tensor/tensor.hpp"

namespace semigrad {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

void gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc);

// op(a) @ op(b) for rank-2 tensors, a new [M,N] tensor. Throws ShapeError naming both shapes.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

}  // namespace semigrad
