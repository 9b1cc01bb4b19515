#include "tensor/gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <string>

#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/profile.hpp"

namespace semigrad {

// A product's name in the profile, by shape: "sgemm 32x256x6272 NT" (M x N x K, A and B as
// stored); empty (no string built) when not profiling.
static std::string profile_name(bool trans_a, bool trans_b, int M, int N, int K,
                                const char* suffix) {
    if (!profile::enabled()) return std::string();
    return "sgemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
           (trans_a ? " T" : " N") + (trans_b ? "T" : "N") + suffix;
}

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    profile::Scope scope(profile_name(trans_a, trans_b, M, N, K, ""));
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_split(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    constexpr double kSplitMinVolume = double(1 << 20);
    if (num_threads() == 1 || in_parallel() || double(M) * N * K < kSplitMinVolume) {
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    profile::Scope scope(profile_name(trans_a, trans_b, M, N, K, " split"));
    const bool by_rows = M >= N;
    const int extent = by_rows ? M : N;
#pragma omp parallel
    {
        // Blocks in multiples of 16, the width of OpenBLAS's micro-kernels here.
        const ThreadShare share = thread_share(std::size_t(extent), 16);
        const int first = int(share.first), last = int(share.last);
        if (last > first) {
            if (by_rows)
                cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                            trans_b ? CblasTrans : CblasNoTrans, last - first, N, K, alpha,
                            trans_a ? A + first : A + std::size_t(first) * lda, lda, B, ldb, beta,
                            C + std::size_t(first) * ldc, ldc);
            else
                cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                            trans_b ? CblasTrans : CblasNoTrans, M, last - first, K, alpha, A, lda,
                            trans_b ? B + std::size_t(first) * ldb : B + first, ldb, beta,
                            C + first, ldc);
        }
    }
}

void gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double acc = 0.0;
            for (int k = 0; k < K; ++k) {
                const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
                const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                acc += static_cast<double>(a) * b;
            }
            float& c = C[i * ldc + j];
            c = static_cast<float>(alpha * acc + (beta == 0.0f ? 0.0 : beta * c));
        }
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
    check_rank("matmul", "left operand", a, 2);
    check_rank("matmul", "right operand", b, 2);
    const std::size_t M = trans_a ? a.dim(1) : a.dim(0), K = trans_a ? a.dim(0) : a.dim(1);
    const std::size_t Kb = trans_b ? b.dim(1) : b.dim(0), N = trans_b ? b.dim(0) : b.dim(1);
    if (K != Kb)
        throw ShapeError("matmul: inner dimensions differ: " + to_string(a.shape()) +
                         (trans_a ? "^T" : "") + " @ " + to_string(b.shape()) +
                         (trans_b ? "^T" : ""));
    Tensor c({M, N});
    gemm(trans_a, trans_b, int(M), int(N), int(K), 1.0f, a.data(), int(a.dim(1)), b.data(),
         int(b.dim(1)), 0.0f, c.data(), int(N));
    return c;
}

}  // namespace semigrad
