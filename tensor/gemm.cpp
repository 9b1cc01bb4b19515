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

namespace {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// OpenBLAS 0.3.21 has "small matrix" kernels for its SkylakeX and Cooperlake cores, which read A
// and B where they lie instead of packing them into blocks first. It runs them when
// M*N*K <= 10^6, in row-major terms for NN and TN, and for NT only with C at most 1200 elements
// and K >= 32 (its kernel/x86_64/sgemm_small_kernel_permit_skylakex.c, where a row-major NT is
// a column-major TN). Above the bound it packs both operands, which at the Dense layer's shapes
// costs a fifth of the product: on one core, 32x256x1568 NN took 293 us as one call against 224
// in 16 slices of depth 98, 1568x256x32 TN 278 against 234 in slices of rows (Zen 4; the
// Haswell kernels have no such path, and slices gain nothing there).
constexpr double kSmallKernelVolume = 1e6;
// NN products deeper than this are summed in slices of about this depth. The slices depend on K
// only, not on M or N, so that a row of C has the same bits whatever the batch or its share of
// it (a thread's columns, a process's rows).
constexpr int kSliceDepth = 96;
constexpr int kMinRows = 16;  // thinner slices of rows would leave the kernels too little work
// NT products go to the small kernels only with C at most this many elements and K at least
// kMinDepthNt (above). The Dense layer's input gradient, 32x1568x256 NT, in column slices of 32:
// 124 us on one core against 155 as one call (each half of it, as gemm_split's two threads).
constexpr int kSmallNtArea = 1200;
constexpr int kMinDepthNt = 32;

bool openblas_has_small_kernels() {
    static const bool has = [] {
        const std::string core = openblas_core();
        return core == "SkylakeX" || core == "Cooperlake";
    }();
    return has;
}

// cblas_sgemm, in slices that OpenBLAS runs with its small kernels where it would pack the
// whole: NN by depth (C accumulates the slices in order), TN by rows of C and NT by columns of C
// (each C element still one call's). Otherwise, or where the slices would still be too big, one
// call.
void sgemm_in_slices(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                     int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    if (!trans_a && trans_b && openblas_has_small_kernels() && K >= kMinDepthNt &&
        double(M) * N * K > kSmallKernelVolume) {
        int cols = kSmallNtArea / M;
        if (cols >= 16) cols -= cols % 16;  // whole blocks of the kernels' 16 lanes
        if (cols >= 8 && double(M) * cols * K <= kSmallKernelVolume) {
            for (int first = 0; first < N; first += cols)  // rows of B as stored
                sgemm(false, true, M, std::min(cols, N - first), K, alpha, A, lda,
                      B + std::size_t(first) * ldb, ldb, beta, C + first, ldc);
            return;
        }
    }
    if (!trans_b && openblas_has_small_kernels()) {
        if (!trans_a && K > kSliceDepth) {
            const int slices = (K + kSliceDepth - 1) / kSliceDepth;
            const int depth = (K + slices - 1) / slices;
            if (double(M) * N * depth <= kSmallKernelVolume) {
                for (int first = 0; first < K; first += depth)  // columns of A, rows of B
                    sgemm(false, false, M, N, std::min(depth, K - first), alpha, A + first, lda,
                          B + std::size_t(first) * ldb, ldb, first == 0 ? beta : 1.0f, C, ldc);
                return;
            }
        }
        const double volume = double(M) * N * K;
        const int longest = volume > 0 ? int(kSmallKernelVolume / (double(N) * K)) : 0;
        if (trans_a && volume > kSmallKernelVolume && longest >= kMinRows) {
            const int slices = (M + longest - 1) / longest;
            const int rows = (M + slices - 1) / slices;
            for (int first = 0; first < M; first += rows)  // columns of A as stored
                sgemm(true, false, std::min(rows, M - first), N, K, alpha, A + first, lda, B, ldb,
                      beta, C + std::size_t(first) * ldc, ldc);
            return;
        }
    }
    sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    profile::Scope scope(profile_name(trans_a, trans_b, M, N, K, ""));
    sgemm_in_slices(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
                sgemm_in_slices(trans_a, trans_b, last - first, N, K, alpha,
                                trans_a ? A + first : A + std::size_t(first) * lda, lda, B, ldb,
                                beta, C + std::size_t(first) * ldc, ldc);
            else
                sgemm_in_slices(trans_a, trans_b, M, last - first, K, alpha, A, lda,
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
