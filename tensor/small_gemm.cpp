// small_gemm's portable variant (plain x86-64: SSE2 at most) and the choice of variant; the loop
// bodies are in small_gemm.hpp.
#include "tensor/small_gemm.hpp"

namespace semigrad::small_gemm {

void nn_portable(int M, int N, int K, const float* a, const float* b, float* out) {
    nn_loops(M, N, K, a, b, out);
}
void nt_portable(int M, int R, int W, int K, const float* a, const float* b, bool accumulate,
               float* c, float* row_sums) {
    nt_loops(M, R, W, K, a, b, accumulate, c, row_sums);
}
void tn_portable(int M, int N, int K, const float* a, const float* b, float* c) {
    tn_loops(M, N, K, a, b, c);
}
void fold_portable(int S, int W, const float* rows, std::size_t stride, float* totals) {
    fold_loops(S, W, rows, stride, totals);
}

Kernels kernels(Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx512) return {nn_avx512, nt_avx512, tn_avx512, fold_avx512};
    if (isa == Isa::avx2) return {nn_avx2, nt_avx2, tn_avx2, fold_avx2};
#endif
    (void)isa;
    return {nn_portable, nt_portable, tn_portable, fold_portable};
}

}  // namespace semigrad::small_gemm
