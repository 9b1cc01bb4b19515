// The portable row kernels of the 2x2, stride-2 conv block (see conv_block_kernels.hpp). Written
// with selects rather than branches: on random data every "is this one larger" is a coin toss,
// and a mispredicted branch costs more than computing both sides.
#include "tensor/conv_block_kernels.hpp"

#include <algorithm>

#include "tensor/conv2d_winograd.hpp"
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
        const PoolOutput& to = a.to;
        const bool kept = !to.dropout || dropout_keeps(to.key, to.first + std::uint64_t(j), to.threshold);
        const bool passes = kept && best > 0.0f;
        to.out[j] = passes ? best * to.scale : 0.0f;
        if (to.record) to.record[j] = std::uint8_t(place | (passes ? kConvBlockPasses : 0));
    }
}

void conv_pool_portable(const ConvPool& a) {
    for (int oc = 0; oc < a.OC; ++oc) {
        const float* w = a.weight + 4 * oc;
        const float bias = a.bias ? a.bias[oc] : 0.0f;
        for (int oh = 0; oh < a.OH; ++oh) {
            const std::size_t at = (std::size_t(oc) * a.OH + oh) * a.OW;
            const float* e = a.even + std::ptrdiff_t(2 * oh) * a.pitch;
            const float* o = a.odd + std::ptrdiff_t(2 * oh) * a.pitch;
            const float* e1 = e + a.pitch;
            const float* o1 = o + a.pitch;
            const float* e2 = e1 + a.pitch;
            const float* o2 = o1 + a.pitch;
            // Conv rows 2oh and 2oh+1 over the windows' columns, as PoolRow's r0 and r1.
            float r0[2 * 64], r1[2 * 64];
            for (int j0 = 0; j0 < a.OW; j0 += 64) {
                const int n = std::min(64, a.OW - j0);
                for (int j = 0; j < n; ++j) {
                    const int c = j0 + j;
                    r0[2 * j] = ((w[0] * e[c] + w[1] * o[c]) + w[2] * e1[c]) + w[3] * o1[c];
                    r0[2 * j + 1] = ((w[0] * o[c] + w[1] * e[c + 1]) + w[2] * o1[c]) + w[3] * e1[c + 1];
                    r1[2 * j] = ((w[0] * e1[c] + w[1] * o1[c]) + w[2] * e2[c]) + w[3] * o2[c];
                    r1[2 * j + 1] = ((w[0] * o1[c] + w[1] * e1[c + 1]) + w[2] * o2[c]) + w[3] * e2[c + 1];
                }
                pool_row_portable({r0, r1, bias, n, a.to.from(at + j0)});
            }
        }
    }
}

void pool_tiles_portable(const PoolTiles& a) {
    for (int oc = 0; oc < a.OC; ++oc)
        for (int i = 0; i < a.OH; ++i) {
            const std::size_t at = (std::size_t(oc) * a.OH + i) * a.OW;
            // Tile row i's values, as the conv rows 2i and 2i+1 PoolRow reads (64 tiles a time).
            float r0[2 * 64], r1[2 * 64];
            for (int j0 = 0; j0 < a.OW; j0 += 64) {
                const int n = std::min(64, a.OW - j0);
                for (int j = 0; j < n; ++j) {
                    const float* in = a.m + std::size_t(oc) * a.tiles + std::size_t(i) * a.TW + j0 + j;
                    float mp[winograd::kPoints];
                    for (int p = 0; p < winograd::kPoints; ++p) mp[p] = in[p * a.stride];
                    // Aᵀ M A, as winograd's output transform.
                    const float a0 = mp[0] + mp[3], a1 = mp[1] + mp[4], a2 = mp[2] + mp[5];
                    const float b0 = mp[3] + mp[6], b1 = mp[4] + mp[7], b2 = mp[5] + mp[8];
                    r0[2 * j] = a0 + a1, r0[2 * j + 1] = a1 + a2;
                    r1[2 * j] = b0 + b1, r1[2 * j + 1] = b1 + b2;
                }
                pool_row_portable({r0, r1, a.bias ? a.bias[oc] : 0.0f, n, a.to.from(at + j0)});
            }
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

void conv_pool_grad_portable(const ConvPoolGrad& a) {
    const std::size_t row = ConvPoolGrad::row(a.OW);
    for (int oc = 0; oc < a.OC; ++oc) {
        float* s = a.sums + std::size_t(oc) * 5 * row;
        for (int j = 0; j < a.OW; ++j) {
            float chain[2][5] = {};  // conv columns 2j and 2j+1: the winner's pw says which
            for (int oh = 0; oh < a.OH; ++oh) {
                const std::size_t at = (std::size_t(oc) * a.OH + oh) * a.OW + j;
                const std::uint8_t r = a.record[at];
                const float g = (r & kConvBlockPasses) ? a.dout[at] * a.scale : 0.0f;
                const int ph = (r >> 1) & 1, pw = r & 1;
                for (int k = 0; k < 4; ++k) {
                    // Padded row 2oh + ph + a, column 2j + pw + b: even[j], odd[j] or even[j+1].
                    const int rr = 2 * oh + ph + k / 2, c = pw + k % 2;
                    const float* plane = c == 1 ? a.odd : a.even;
                    chain[pw][k] += g * plane[std::ptrdiff_t(rr) * a.pitch + j + c / 2];
                }
                chain[pw][4] += g;
            }
            for (int k = 0; k < 5; ++k) {
                s[k * row + 2 * std::size_t(j)] = chain[0][k];
                s[k * row + 2 * std::size_t(j) + 1] = chain[1][k];
            }
        }
    }
}

RowKernels row_kernels(Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx512)
        return {pool_row_avx512, unpool_row_avx512, conv_pool_avx512, pool_tiles_avx512,
                conv_pool_grad_avx512};
    if (isa == Isa::avx2)
        return {pool_row_avx2, unpool_row_avx2, conv_pool_avx2, pool_tiles_avx2, conv_pool_grad_avx2};
#endif
    (void)isa;
    return {pool_row_portable, unpool_row_portable, conv_pool_portable, pool_tiles_portable,
            conv_pool_grad_portable};
}

}  // namespace semigrad::conv_block_kernels
