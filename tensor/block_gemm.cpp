// block_gemm's choice of kernel (see block_gemm.hpp); the kernel is in block_gemm_avx2.cpp.
#include "tensor/block_gemm.hpp"

namespace semigrad::block_gemm {

Fn kernel(Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx2) return avx2;
#endif
    (void)isa;
    return nullptr;
}

}  // namespace semigrad::block_gemm
