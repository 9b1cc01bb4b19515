// sparse_gemm's split over threads and its choice (see sparse_gemm.hpp).
#include "tensor/sparse_gemm.hpp"

#include <string>

#include "tensor/block_gemm.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/profile.hpp"

namespace semigrad::sparse_gemm {

namespace {

void check(Isa isa) {
    if (isa == Isa::portable)
        throw ValueError("sparse_gemm: no kernel for the portable path (use gemm)");
}

// "sparse 32x256x1568 NN" (M x N x K of the product, as gemm's rows); empty when not profiling.
std::string profile_name(const char* op, int M, int N, int K) {
    if (!profile::enabled()) return std::string();
    return "sparse " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
           " " + op;
}

}  // namespace

bool available(Isa isa) { return SEMIGRAD_X86 && isa != Isa::portable; }

namespace {

// At most half of A [M, K] (rows lda apart) non-zero: the sparse kernels' case.
bool mostly_zeros(int M, int K, const float* a, int lda) {
#if SEMIGRAD_X86
    std::size_t nonzero = 0;
    for (int i = 0; i < M; ++i) nonzero += nonzeros_avx2(a + std::size_t(i) * lda, std::size_t(K));
    return 2 * nonzero <= std::size_t(M) * K;
#else
    (void)M, (void)K, (void)a, (void)lda;
    return false;
#endif
}

}  // namespace

void nn_split(Isa isa, int M, int N, int K, const float* a, int lda, const float* b, int ldb,
              bool accumulate, float* c, int ldc) {
    check(isa);
#if SEMIGRAD_X86
    const bool sparse = mostly_zeros(M, K, a, lda);
    const profile::Scope scope(profile_name(sparse ? "NN sparse" : "NN", M, N, K));
#pragma omp parallel
    {
        const ThreadShare share = thread_share(std::size_t(N), 64);  // the kernel's blocks
        const int j = int(share.first), n = int(share.last - share.first);
        if (n > 0 && sparse)
            nn_avx2(M, n, K, a, lda, b + j, ldb, accumulate, c + j, ldc);
        else if (n > 0)
            block_gemm::avx2(M, n, K, a, lda, 1, b + j, ldb, accumulate, c + j, ldc);
    }
#else
    (void)M, (void)N, (void)K, (void)a, (void)lda, (void)b, (void)ldb, (void)accumulate, (void)c,
        (void)ldc;
#endif
}

void tn_split(Isa isa, int M, int N, int K, const float* a, int lda, const float* d, int ldd,
              float* c, int ldc) {
    check(isa);
#if SEMIGRAD_X86
    const bool sparse = mostly_zeros(M, K, a, lda);
    const profile::Scope scope(profile_name(sparse ? "TN sparse" : "TN", K, N, M));
#pragma omp parallel
    {
        const ThreadShare share = thread_share(std::size_t(K), 8);
        const int k0 = int(share.first), k1 = int(share.last);
        if (k1 > k0 && sparse)
            tn_avx2(M, N, k0, k1, a, lda, d, ldd, c, ldc);
        else if (k1 > k0)
            block_gemm::avx2(k1 - k0, N, M, a + k0, 1, lda, d, ldd, false, c + std::size_t(k0) * ldc, ldc);
    }
#else
    (void)M, (void)N, (void)K, (void)a, (void)lda, (void)d, (void)ldd, (void)c, (void)ldc;
#endif
}

}  // namespace semigrad::sparse_gemm
