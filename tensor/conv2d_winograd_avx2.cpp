// conv2d_winograd's AVX2 + FMA variant: the header's loop bodies compiled with 256-bit vectors
// (its shuffles become one or two instructions instead of lane-by-lane moves); additions only,
// so the same bits as the portable variant.
#include "tensor/conv2d_winograd.hpp"

#if SEMIGRAD_X86
SEMIGRAD_KERNELS_BEGIN
namespace semigrad::winograd {

SEMIGRAD_AVX2 void pad_avx2(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
                  float* padded) {
    detail::pad_loops(src, planes, rows, cols, top, left, t, padded);
}
SEMIGRAD_AVX2 void input_avx2(const float* padded, int planes, Tiling t, float* u, std::size_t stride) {
    detail::input_loops(padded, planes, t, u, stride);
}
SEMIGRAD_AVX2 void gradient_avx2(const float* padded, int planes, Tiling t, float* v, std::size_t stride) {
    detail::gradient_loops(padded, planes, t, v, stride);
}
SEMIGRAD_AVX2 void output_avx2(const float* m, std::size_t stride, int planes, Tiling t, int rows, int cols,
                 float* dst, bool add) {
    detail::output_loops(m, stride, planes, t, rows, cols, dst, add);
}

}  // namespace semigrad::winograd
SEMIGRAD_KERNELS_END
#endif
