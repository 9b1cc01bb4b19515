// The Adam loop (nn/adam_kernel.hpp) compiled for AVX-512: 16 lanes; the same bits as the portable variant.
#include "nn/adam_kernel.hpp"

#if SEMIGRAD_X86
namespace semigrad::nn::adam_kernel {

SEMIGRAD_AVX512 std::uint32_t avx512(float* theta, float* m, float* v, const float* g, std::size_t n,
                                     const AdamScalars& s) {
    return loop(theta, m, v, g, n, s);
}

}  // namespace semigrad::nn::adam_kernel
#endif
