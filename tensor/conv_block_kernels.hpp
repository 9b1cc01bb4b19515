// The inner loops of tensor/conv_block.cpp for its common case — a 2x2 pool with stride 2 and no
// padding, the tutorial's — one output row at a time, in three instruction sets: portable C++
// (conv_block_kernels.cpp), AVX2 + FMA (conv_block_avx2.cpp) and AVX-512 (conv_block_avx512.cpp).
// All three compute the same bits: the same float additions and comparisons, lane by lane, and
// the dropout decision as integers (tensor/dropout.hpp). conv_block.cpp's general epilogue, for
// any pool, is the readable reference the tests hold them to.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/simd.hpp"

namespace semigrad::conv_block_kernels {

// Where the forward epilogue's outputs go and how dropout decides them. Output j, whose window's
// first maximum (bias included) is `max` at `place`, is written as
//   out[j]    = max > 0 and kept ? max * scale : 0
//   record[j] = place | (max > 0 and kept ? 0x80 : 0)
// where kept = !dropout or dropout_hash(key, first + j) >= threshold. A null record (evaluation:
// no backward will read it) is not written, and the kernels skip what only it needs.
struct PoolOutput {
    bool dropout;
    std::uint64_t key, first;
    std::uint32_t threshold;
    float scale;
    float* out;
    std::uint8_t* record;
    // The same outputs from output `at` on.
    PoolOutput from(std::size_t at) const {
        return {dropout, key, first + at, threshold, scale, out + at,
                record ? record + at : nullptr};
    }
};

// One output row of the forward epilogue. Inputs: two rows r0, r1 of the conv output (before
// the bias), at least 2*OW floats each. Output j reads r0[2j], r0[2j+1], r1[2j], r1[2j+1] (places
// 0..3 of its window), adds `bias`, keeps the first maximum, and goes to `to`.
struct PoolRow {
    const float* r0;
    const float* r1;
    float bias;
    int OW;
    PoolOutput to;
};

// The backward's adjoint of one such row: the two conv-gradient rows d0, d1 (2*OW floats each)
// get dout[j] * scale at output j's winner if its gradient passes, and 0 at its other three
// places. Every element of the 2*OW columns is written (no zero fill first).
struct UnpoolRow {
    const float* dout;
    const std::uint8_t* record;
    float scale;
    int OW;
    float* d0;
    float* d1;
};

// The whole forward of a block whose conv has one input channel and a 2x2 kernel at stride 1
// (the tutorial's first), for one image: each output's four window values are computed in
// registers from the padded input and go straight into PoolRow's epilogue; the conv's output
// is never stored. The padded image xp comes split into its even and odd columns,
// even[r][j] = xp[r][2j] and odd[r][j] = xp[r][2j+1], so output j's window columns 2j, 2j+1 and
// 2j+2 are even[j], odd[j] and even[j+1], plain vector loads. Each window value is small_gemm
// nn's sum over im2col's rows, ((w0 x[0][0] + w1 x[0][1]) + w2 x[1][0]) + w3 x[1][1], plus the
// bias: the bits of the im2col_loops lowering followed by PoolRow.
struct ConvPool {
    const float* even;  // [2*OH + 1, pitch]; even[r][OW] is read too
    const float* odd;   // [2*OH + 1, pitch]
    int pitch;          // >= OW rounded up to 16, plus 16: a vector of 16 may start at any j < OW
    const float* weight;  // [OC, 4]
    const float* bias;    // [OC], or null for none
    int OC, OH, OW;
    PoolOutput to;        // the image's outputs [OC, OH, OW]
};

// The weight and bias gradients of a ConvPool block for one image, straight from its dout and
// record, before their last sums. The conv's gradient, which the unfused chain builds whole, is
// g = dout * scale at each passing output's winner and 0 at the other three places of its
// window; small_gemm's nt sums the products of that plane with the input under each tap by
// columns (small_gemm.hpp: each conv column's chain down the rows, then ColumnFold). Here only
// the winners' products are made, a quarter of them, and each goes to its conv column's chain in
// the same row order; the zeros left out do not change a sum, so the caller's fold of these
// column sums gives nt's bits (for finite inputs).
//   sums[oc][k][c] = Σ over the rows, in order, of g * x_k at the winners in conv column c
// where x_k is the padded input under tap k = 2a + b (w[a][b]) of the winner's window, and k = 4
// sums g itself (the bias). Each (oc, k) has a row of row(OW) floats, room for every block of 8
// a fold reads (a conv output has 2*OW or 2*OW + 1 columns); columns c < 2*OW are written, and
// the vector kernels write zeros past them (the chains of outputs past OW add nothing), so a
// buffer zeroed once holds zeros there whichever kernel runs.
struct ConvPoolGrad {
    const float* even;  // the image's padded input split as ConvPool's, same pitch
    const float* odd;
    int pitch;
    const float* dout;             // the image's [OC, OH, OW]
    const std::uint8_t* record;    // its record bytes
    float scale;                   // dropout's 1 / (1 - rate)
    int OC, OH, OW;
    float* sums;                   // [OC, 5, row(OW)]
    static std::size_t row(int OW) { return 2 * std::size_t((OW + 16) / 16 * 16); }
};

// The pool of a block whose conv runs as Winograd's F(2x2, 2x2) (the tutorial's second), for
// one image, from the conv's products before their inverse transform (Conv2dPlan::
// forward_products). A 2x2 pool at stride 2 over a conv output cut into 2x2 tiles has each
// window equal to one tile, whose four values are Aᵀ M A (conv2d_winograd.hpp); they go straight
// into PoolRow's epilogue, so the conv's output is never written. The additions are the inverse
// transform's and then PoolRow's: the same bits as the two one after the other.
struct PoolTiles {
    const float* m;        // [9, OC, tiles], the points `stride` floats apart
    std::size_t stride;
    int tiles, TW;         // tiles per plane, per row (the pool's windows, perhaps one more)
    const float* bias;     // [OC], or null for none
    int OC, OH, OW;        // the pool's output: the first OH rows and OW columns of tiles
    PoolOutput to;         // the image's outputs [OC, OH, OW]
};

void pool_row_portable(const PoolRow& a);
void pool_tiles_portable(const PoolTiles& a);
void conv_pool_portable(const ConvPool& a);
void unpool_row_portable(const UnpoolRow& a);
void conv_pool_grad_portable(const ConvPoolGrad& a);
#if SEMIGRAD_X86
void pool_row_avx2(const PoolRow& a);
void conv_pool_avx2(const ConvPool& a);
void pool_tiles_avx2(const PoolTiles& a);
void unpool_row_avx2(const UnpoolRow& a);
void conv_pool_grad_avx2(const ConvPoolGrad& a);
void pool_row_avx512(const PoolRow& a);
void conv_pool_avx512(const ConvPool& a);
void pool_tiles_avx512(const PoolTiles& a);
void unpool_row_avx512(const UnpoolRow& a);
void conv_pool_grad_avx512(const ConvPoolGrad& a);
#endif

// The kernels for `isa` (tensor/simd.hpp; the caller has checked that the CPU runs it).
struct RowKernels {
    void (*pool)(const PoolRow&);
    void (*unpool)(const UnpoolRow&);
    void (*conv_pool)(const ConvPool&);
    void (*pool_tiles)(const PoolTiles&);
    void (*conv_pool_grad)(const ConvPoolGrad&);
};
RowKernels row_kernels(Isa isa);

}  // namespace semigrad::conv_block_kernels
