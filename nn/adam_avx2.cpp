// The Adam loop (nn/adam_kernel.hpp) compiled for AVX2: 8 lanes; the same bits as the portable variant.
#include "nn/adam_kernel.hpp"

#if SEMIGRAD_X86
namespace semigrad::nn::adam_kernel {

SEMIGRAD_AVX2 std::uint32_t avx2(float* theta, float* m, float* v, const float* g, std::size_t n,
                                 const AdamScalars& s) {
    return loop(theta, m, v, g, n, s);
}

}  // namespace semigrad::nn::adam_kernel
#endif
