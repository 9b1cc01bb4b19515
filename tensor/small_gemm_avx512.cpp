// small_gemm's AVX-512 variant: small_gemm.hpp's loop bodies compiled with AVX-512's vectors
// (no fused multiply-add: -ffp-contract=off), so the same bits as the portable variant.
#include "tensor/small_gemm.hpp"

#if SEMIGRAD_X86
namespace semigrad::small_gemm {

SEMIGRAD_AVX512 void nn_avx512(int M, int N, int K, const float* a, const float* b, float* out) {
    nn_loops(M, N, K, a, b, out);
}
SEMIGRAD_AVX512 void nt_avx512(int M, int R, int W, int K, const float* a, const float* b, bool accumulate,
               float* c, float* row_sums) {
    nt_loops(M, R, W, K, a, b, accumulate, c, row_sums);
}
SEMIGRAD_AVX512 void tn_avx512(int M, int N, int K, const float* a, const float* b, float* c) {
    tn_loops(M, N, K, a, b, c);
}
SEMIGRAD_AVX512 void fold_avx512(int S, int W, const float* rows, std::size_t stride, float* totals) {
    fold_loops(S, W, rows, stride, totals);
}

}  // namespace semigrad::small_gemm
#endif
