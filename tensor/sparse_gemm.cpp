// sparse_gemm's choice and its split over threads (see sparse_gemm.hpp).
#include "tensor/sparse_gemm.hpp"

#include <string>

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

Choice choose(Isa isa, int M, int K, const float* a, int lda) {
#if SEMIGRAD_X86
    if (isa == Isa::portable || M <= 0 || K <= 0) return {};
    std::size_t nonzero = 0;
    for (int i = 0; i < M; ++i) nonzero += nonzeros_avx2(a + std::size_t(i) * lda, std::size_t(K));
    const std::size_t size = std::size_t(M) * K;
    return {3 * nonzero <= size, 2 * nonzero <= size};
#else
    (void)isa, (void)M, (void)K, (void)a, (void)lda;
    return {};
#endif
}

void nn_split(Isa isa, int M, int N, int K, const float* a, int lda, const float* b, int ldb,
              bool accumulate, float* c, int ldc) {
    check(isa);
    const profile::Scope scope(profile_name("NN", M, N, K));
#if SEMIGRAD_X86
#pragma omp parallel
    {
        const ThreadShare share = thread_share(std::size_t(N), 64);  // the kernel's blocks
        const int j = int(share.first), n = int(share.last - share.first);
        if (n > 0) nn_avx2(M, n, K, a, lda, b + j, ldb, accumulate, c + j, ldc);
    }
#else
    (void)M, (void)N, (void)K, (void)a, (void)lda, (void)b, (void)ldb, (void)accumulate, (void)c,
        (void)ldc;
#endif
}

void tn_split(Isa isa, int M, int N, int K, const float* a, int lda, const float* d, int ldd,
              float* c, int ldc) {
    check(isa);
    const profile::Scope scope(profile_name("TN", K, N, M));
#if SEMIGRAD_X86
#pragma omp parallel
    {
        const ThreadShare share = thread_share(std::size_t(K), 8);
        const int k0 = int(share.first), k1 = int(share.last);
        if (k1 > k0) tn_avx2(M, N, k0, k1, a, lda, d, ldd, c, ldc);
    }
#else
    (void)M, (void)N, (void)K, (void)a, (void)lda, (void)d, (void)ldd, (void)c, (void)ldc;
#endif
}

}  // namespace semigrad::sparse_gemm
