// The portable row kernels of the 2x2, stride-2 conv block (see conv_block_kernels.hpp). Written
// with selects rather than branches: on random data every "is this one larger" is a coin toss,
// and a mispredicted branch costs more than computing both sides.
#include "tensor/conv_block_kernels.hpp"

#include "tensor/conv_block.hpp"
#include "tensor/dropout.hpp"

namespace semigrad::conv_block_kernels {

void pool_row_portable(const PoolRow& a) {
    for (int j = 0; j < a.OW; ++j) {
        const float v[4] = {a.r0[2 * j] + a.bias, a.r0[2 * j + 1] + a.bias, a.r1[2 * j] + a.bias,
                            a.r1[2 * j + 1] + a.bias};
        float best = v[0];
        int place = 0;
        for (int k = 1; k < 4; ++k) {  // strict >: the first maximum wins ties
            place = v[k] > best ? k : place;
            best = v[k] > best ? v[k] : best;
        }
        const bool kept = !a.dropout || dropout_keeps(a.key, a.first + std::uint64_t(j), a.threshold);
        const bool passes = kept && best > 0.0f;
        a.out[j] = passes ? best * a.scale : 0.0f;
        a.record[j] = std::uint8_t(place | (passes ? kConvBlockPasses : 0));
    }
}

void unpool_row_portable(const UnpoolRow& a) {
    for (int j = 0; j < a.OW; ++j) {
        const std::uint8_t r = a.record[j];
        const float g = (r & kConvBlockPasses) ? a.dout[j] * a.scale : 0.0f;
        const int place = r & 3;
        a.d0[2 * j] = place == 0 ? g : 0.0f;
        a.d0[2 * j + 1] = place == 1 ? g : 0.0f;
        a.d1[2 * j] = place == 2 ? g : 0.0f;
        a.d1[2 * j + 1] = place == 3 ? g : 0.0f;
    }
}

RowKernels row_kernels(Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx512) return {pool_row_avx512, unpool_row_avx512};
    if (isa == Isa::avx2) return {pool_row_avx2, unpool_row_avx2};
#endif
    (void)isa;
    return {pool_row_portable, unpool_row_portable};
}

}  // namespace semigrad::conv_block_kernels
