// conv2d_winograd: the transforms of Winograd's minimal filtering F(2x2, 2x2), with which
// conv2d_lowering.cpp runs a 2x2 convolution at stride 1 in 9 multiplications per 2x2 output
// tile where the direct products take 16 (Lavin and Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks", section 4; Winograd 1980).
//
// In one dimension, two outputs of a 2-tap correlation, y_k = g_0 d_k + g_1 d_(k+1), k = 0, 1,
// from three inputs d_0..d_2 take three products instead of four:
//     m_0 = (d_0 - d_1) g_0,   m_1 = d_1 (g_0 + g_1),   m_2 = (d_2 - d_1) g_1,
//     y_0 = m_0 + m_1,         y_1 = m_1 + m_2,
// i.e. y = Aᵀ [(G g) ⊙ (Bᵀ d)] with
//     Bᵀ = | 1 -1  0 |     G = | 1  0 |     Aᵀ = | 1  1  0 |
//          | 0  1  0 |         | 1  1 |          | 0  1  1 |
//          | 0 -1  1 |         | 0  1 |
// Nested in two dimensions, a 2x2 output tile Y of a 2x2 kernel g over the 3x3 input tile d is
//     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
// and over channels the 9 element-wise products become 9 matrix products, one per point
// p = 3u + v of the 3x3 transformed tile:
//     M[p] [OC, T] = V[p] [OC, C] @ U[p] [C, T],   V = G w Gᵀ (per oc, c), U = Bᵀ d B (per c, tile).
// Every transform is additions and subtractions only (points 0, 1 and infinity), which is why F(2,2)
// loses next to nothing in float32 against the direct sum: each output is the direct sum's terms,
// regrouped.
//
// The same algorithm serves the backward (conv2d_lowering.cpp spells out which plane plays which
// part): the input gradient is a correlation of the zero-extended output gradient with the kernel
// flipped, and V of a flipped kernel is V with both point axes reversed; the weight gradient of
// one tile is a correlation of its 3x3 input tile with its 2x2 output gradient, the gradient
// playing the kernel's part (G dy Gᵀ), and is summed over tiles and channels in the transformed
// domain before one Aᵀ . A per weight.
//
// Layout: a transformed operand holds 9 point matrices [rows, T] one after another, `stride`
// floats apart (rows * T plus at least kSlack: the vector loops below read and write up to 7
// floats past a row's last tile, which the next row overwrites or the slack absorbs; so the
// transforms go through the rows in order). T = TH * TW tiles, row-major; tile (i, j) covers
// output rows 2i, 2i+1 and columns 2j, 2j+1. The one exception is the output gradient's
// transform for the weight gradient, tile-major [T, rows] (Transforms::gradient says why).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "tensor/simd.hpp"

namespace semigrad::winograd {

inline constexpr int kPoints = 9;
inline constexpr int kSlack = 8;

// A plane of `rows` x `cols` floats in 2x2 tiles: ceil(rows / 2) by ceil(cols / 2).
struct Tiling {
    int TH, TW;
    int tiles() const { return TH * TW; }
};
inline Tiling tiling(int rows, int cols) { return {(rows + 1) / 2, (cols + 1) / 2}; }

// The stride between point matrices of a transformed operand with `rows` rows.
inline std::size_t point_stride(int rows, Tiling t) {
    return std::size_t(rows) * t.tiles() + kSlack;
}

// The transforms read planes from a zero-extended copy: 2*TH + 1 rows of pitch(t) floats each,
// enough for every tile's 3x3 window and for the vectors' reach past the last tile (the last
// group of 8 tiles, from tile j0, reads 16 floats from column 2*j0 + 2).
inline int pitch(Tiling t) { return 2 * ((t.TW - 1) / 8 * 8) + 18; }
inline std::size_t padded_plane(Tiling t) { return std::size_t(2 * t.TH + 1) * pitch(t); }
// Floats for `planes` such planes.
inline std::size_t padded_size(int planes, Tiling t) { return planes * padded_plane(t); }

// v [9, OC, C] = G w Gᵀ for each w[oc][c], a 2x2 kernel (w: [OC, C, 2, 2]).
void transform_kernel(const float* w, int OC, int C, float* v);

// dw[0..3] += Aᵀ m A for one 3x3 matrix m[p * step] (p = 0..8): a kernel's weight gradient from
// its transformed sum.
void add_kernel_gradient(const float* m, std::size_t step, float* dw);

// The per-plane data transforms, in one variant per instruction set (tensor/simd.hpp); all give
// the same bits (additions only, in the same order).
struct Transforms {
    // padded [planes, 2*TH + 1, pitch] = the planes src [planes, rows, cols], each placed with
    // its (0, 0) at (top, left) in zeros.
    void (*pad)(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
                float* padded);
    // u[p][plane][tile] = (Bᵀ d B)[p], d the tile's 3x3 window of padded's plane: tile (i, j)
    // reads its rows 2i..2i+2 and columns 2j..2j+2.
    void (*input)(const float* padded, int planes, Tiling t, float* u, std::size_t stride);
    // v[p][tile][plane] = (G dy Gᵀ)[p], dy the tile's 2x2 block of padded's plane (rows 2i, 2i+1,
    // columns 2j, 2j+1). Tile-major, unlike u: the weight gradient's products U[p] @ V[p] then
    // read both operands along their rows, the layout OpenBLAS runs fastest at these sizes
    // (C = 64, OC = 32, T = 49: 110 GFLOP/s on one core against 75 for U[p] against [OC, T]).
    void (*gradient)(const float* padded, int planes, Tiling t, float* v, std::size_t stride);
    // dst [planes, rows, cols] = or += Aᵀ m A, each tile's 2x2 clipped to the plane.
    void (*output)(const float* m, std::size_t stride, int planes, Tiling t, int rows, int cols,
                   float* dst, bool add);
};
const Transforms& transforms(Isa isa);

// ---------------------------------------------------------------------------------------------
// the loop bodies, compiled into each variant (conv2d_winograd.cpp, _avx2.cpp, _avx512.cpp) with
// its own vector width, as tensor/small_gemm.hpp does.
//
// They run on 8 tiles of a tile row at once, as 8-float vectors (GCC's vector extension). Tile
// j's columns 2j, 2j+1 and 2j+2 for 8 tiles are the even and odd lanes of the 16 floats from
// column 2j and the even lanes of the 16 from column 2j+2: loads and shuffles, no gathers.

namespace detail {

using Lanes = float __attribute__((vector_size(32)));
inline constexpr int kLanes = 8;

// (Lanes go by reference: passing an AVX-sized vector by value would depend on the target.)
[[gnu::always_inline]] inline void load(Lanes& v, const float* p) { std::memcpy(&v, p, sizeof v); }
[[gnu::always_inline]] inline void store(float* p, const Lanes& v) { std::memcpy(p, &v, sizeof v); }

// Columns 2j and 2j+1 of 8 tiles from the 16 floats at p.
[[gnu::always_inline]] inline void split(const float* p, Lanes& even, Lanes& odd) {
    Lanes a, b;
    load(a, p), load(b, p + kLanes);
    even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
}

// The first n < 8 floats of v to p (with `add`, added to what p holds), in pieces of 4, 2 and 1
// floats: each piece one plain load or store. Not through a stack buffer read back float by
// float, which took half of the input gradient's output transform at the tutorial's rows of 14
// (a vector of 8 and a tail of 6).
[[gnu::always_inline]] inline void store_first(float* p, const Lanes& v, int n, bool add) {
    using Half = float __attribute__((vector_size(16)));
    using Quarter = float __attribute__((vector_size(8)));
    Half part = __builtin_shufflevector(v, v, 0, 1, 2, 3);
    if (n & 4) {
        if (add) {
            Half before;
            std::memcpy(&before, p, sizeof before);
            part += before;
        }
        std::memcpy(p, &part, sizeof part);
        part = __builtin_shufflevector(v, v, 4, 5, 6, 7);
        p += 4;
    }
    if (n & 2) {
        Quarter two = __builtin_shufflevector(part, part, 0, 1);
        if (add) {
            Quarter before;
            std::memcpy(&before, p, sizeof before);
            two += before;
        }
        std::memcpy(p, &two, sizeof two);
        part = __builtin_shufflevector(part, part, 2, 3, 2, 3);
        p += 2;
    }
    if (n & 1) *p = add ? *p + part[0] : part[0];
}

// Rows here are 14 to 32 floats: too short for a call to memcpy or memset to pay, which is what
// GCC makes of a plain copy or fill loop (-ftree-loop-distribute-patterns). An empty asm
// statement in the loop keeps the loop a loop.
[[gnu::always_inline]] inline void keep_loop() { asm volatile(""); }

// n floats from s to d, 8 at a time, the last 8 overlapping the ones before.
[[gnu::always_inline]] inline void copy_floats(float* __restrict d, const float* __restrict s,
                                               int n) {
    if (n < kLanes) {
        for (int x = 0; x < n; ++x) d[x] = s[x], keep_loop();
        return;
    }
    Lanes v;
    for (int x = 0; x + kLanes <= n; x += kLanes) load(v, s + x), store(d + x, v), keep_loop();
    load(v, s + n - kLanes), store(d + n - kLanes, v);
}

[[gnu::always_inline]] inline void pad_loops(const float* __restrict src, int planes, int rows,
                                             int cols, int top, int left, Tiling t,
                                             float* __restrict padded) {
    const int P = pitch(t), nrows = 2 * t.TH + 1;
    const int x0 = std::max(0, -left), x1 = std::min(cols, P - left), n = std::max(0, x1 - x0);
    const Lanes zero = {};
    for (int c = 0; c < planes; ++c)
        for (int y = 0; y < nrows; ++y) {
            // The whole row zeroed (P >= 18: whole vectors, the last one overlapping), then the
            // source row, if any lands here, copied over it.
            float* row = padded + c * padded_plane(t) + std::size_t(y) * P;
            for (int q = 0; q + kLanes <= P; q += kLanes) store(row + q, zero), keep_loop();
            store(row + P - kLanes, zero);
            const int sy = y - top;
            if (sy >= 0 && sy < rows)
                copy_floats(row + x0 + left, src + (std::size_t(c) * rows + sy) * cols + x0, n);
        }
}

[[gnu::always_inline]] inline void input_loops(const float* __restrict padded, int planes, Tiling t,
                                               float* __restrict u, std::size_t stride) {
    const int P = pitch(t);
    for (int c = 0; c < planes; ++c) {
        const float* plane = padded + c * padded_plane(t);
        float* base = u + std::size_t(c) * t.tiles();
        for (int i = 0; i < t.TH; ++i)
            for (int j0 = 0; j0 < t.TW; j0 += kLanes) {
                // Rows 2i..2i+2 of the tiles' first (even), middle (odd) and last (next even)
                // columns.
                Lanes e[3], o[3], n[3], unused;
                for (int r = 0; r < 3; ++r) {
                    const float* p = plane + std::size_t(2 * i + r) * P + 2 * j0;
                    split(p, e[r], o[r]);
                    split(p + 2, n[r], unused);
                }
                // Bᵀ d down the columns: rows (d_0 - d_1, d_1, d_2 - d_1) ...
                const Lanes ec[3] = {e[0] - e[1], e[1], e[2] - e[1]};
                const Lanes oc[3] = {o[0] - o[1], o[1], o[2] - o[1]};
                const Lanes nc[3] = {n[0] - n[1], n[1], n[2] - n[1]};
                // ... then . B along each row: (t_0 - t_1, t_1, t_2 - t_1). A store runs up to 7
                // tiles past the row's end: into the next row, written after it, or the slack.
                float* out = base + std::size_t(i) * t.TW + j0;
                for (int r = 0; r < 3; ++r) {
                    store(out + (3 * r) * stride, ec[r] - oc[r]);
                    store(out + (3 * r + 1) * stride, oc[r]);
                    store(out + (3 * r + 2) * stride, nc[r] - oc[r]);
                }
            }
    }
}

// The 8x8 matrix r[row][lane] transposed in place (the usual unpack, shuffle, then 128-bit
// permute stages, which GCC compiles to those instructions for AVX2 and up).
[[gnu::always_inline]] inline void transpose8(Lanes r[kLanes]) {
    Lanes t[kLanes], s[kLanes];
    for (int k = 0; k < 4; ++k) {
        t[2 * k] = __builtin_shufflevector(r[2 * k], r[2 * k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[2 * k + 1] = __builtin_shufflevector(r[2 * k], r[2 * k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7
        Lanes* u = t + 4 * h;
        s[4 * h] = __builtin_shufflevector(u[0], u[2], 0, 1, 8, 9, 4, 5, 12, 13);
        s[4 * h + 1] = __builtin_shufflevector(u[0], u[2], 2, 3, 10, 11, 6, 7, 14, 15);
        s[4 * h + 2] = __builtin_shufflevector(u[1], u[3], 0, 1, 8, 9, 4, 5, 12, 13);
        s[4 * h + 3] = __builtin_shufflevector(u[1], u[3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int k = 0; k < 4; ++k) {
        r[k] = __builtin_shufflevector(s[k], s[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[k + 4] = __builtin_shufflevector(s[k], s[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

// G dy Gᵀ of tile row i's tiles j0.. j0+7 of one plane, the 9 points as 8-tile vectors.
[[gnu::always_inline]] inline void gradient_group(const float* __restrict plane, int P, int i,
                                                  int j0, Lanes out[kPoints]) {
    const float* p = plane + std::size_t(2 * i) * P + 2 * j0;
    Lanes g00, g01, g10, g11;
    split(p, g00, g01);
    split(p + P, g10, g11);
    const Lanes m0 = g00 + g10, m1 = g01 + g11;  // as transform_kernel
    out[0] = g00, out[1] = g00 + g01, out[2] = g01;
    out[3] = m0, out[4] = m0 + m1, out[5] = m1;
    out[6] = g10, out[7] = g10 + g11, out[8] = g11;
}

[[gnu::always_inline]] inline void gradient_loops(const float* __restrict padded, int planes,
                                                  Tiling t, float* __restrict v,
                                                  std::size_t stride) {
    const int P = pitch(t);
    // Eight planes at a time: each point's 8 planes x 8 tiles transposed in registers, so that
    // each tile's 8 planes go to its row of v as one vector.
    int c0 = 0;
    for (; c0 + kLanes <= planes; c0 += kLanes)
        for (int i = 0; i < t.TH; ++i)
            for (int j0 = 0; j0 < t.TW; j0 += kLanes) {
                Lanes group[kPoints][kLanes];  // [point][plane]: 8 tiles each
                for (int c = 0; c < kLanes; ++c) {
                    Lanes out[kPoints];
                    gradient_group(padded + (c0 + c) * padded_plane(t), P, i, j0, out);
                    for (int q = 0; q < kPoints; ++q) group[q][c] = out[q];
                }
                const int n = std::min(kLanes, t.TW - j0);
                float* dst = v + (std::size_t(i) * t.TW + j0) * planes + c0;
                for (int q = 0; q < kPoints; ++q) {
                    transpose8(group[q]);  // now [tile][plane]
                    for (int l = 0; l < n; ++l)
                        store(dst + q * stride + std::size_t(l) * planes, group[q][l]);
                }
            }
    // The planes left over, one float at a time.
    for (int c = c0; c < planes; ++c)
        for (int i = 0; i < t.TH; ++i)
            for (int j0 = 0; j0 < t.TW; j0 += kLanes) {
                Lanes out[kPoints];
                gradient_group(padded + c * padded_plane(t), P, i, j0, out);
                const int n = std::min(kLanes, t.TW - j0);
                float* dst = v + (std::size_t(i) * t.TW + j0) * planes + c;
                for (int q = 0; q < kPoints; ++q) {
                    float lanes[kLanes];
                    store(lanes, out[q]);
                    for (int l = 0; l < n; ++l)
                        dst[q * stride + std::size_t(l) * planes] = lanes[l];
                }
            }
}

[[gnu::always_inline]] inline void output_loops(const float* __restrict m, std::size_t stride,
                                                int planes, Tiling t, int rows, int cols,
                                                float* __restrict dst, bool add) {
    for (int c = 0; c < planes; ++c) {
        const float* base = m + std::size_t(c) * t.tiles();
        float* plane = dst + std::size_t(c) * rows * cols;
        for (int i = 0; i < t.TH; ++i)
            for (int j0 = 0; j0 < t.TW; j0 += kLanes) {
                const float* in = base + std::size_t(i) * t.TW + j0;
                Lanes mp[kPoints];
                for (int q = 0; q < kPoints; ++q) load(mp[q], in + q * stride);
                // Aᵀ M: rows (M_0 + M_1, M_1 + M_2); then . A along each: (t_0 + t_1, t_1 + t_2).
                const Lanes a0 = mp[0] + mp[3], a1 = mp[1] + mp[4], a2 = mp[2] + mp[5];
                const Lanes b0 = mp[3] + mp[6], b1 = mp[4] + mp[7], b2 = mp[5] + mp[8];
                const Lanes y[2][2] = {{a0 + a1, a1 + a2}, {b0 + b1, b1 + b2}};
                // Each output row's columns 2j, 2j+1 interleaved back, clipped at the plane's edge.
                const int count = std::min(2 * std::min(kLanes, t.TW - j0), cols - 2 * j0);
                for (int dy = 0; dy < 2 && 2 * i + dy < rows; ++dy) {
                    const Lanes& y0 = y[dy][0];
                    const Lanes& y1 = y[dy][1];
                    Lanes lo = __builtin_shufflevector(y0, y1, 0, 8, 1, 9, 2, 10, 3, 11);
                    Lanes hi = __builtin_shufflevector(y0, y1, 4, 12, 5, 13, 6, 14, 7, 15);
                    float* d = plane + std::size_t(2 * i + dy) * cols + 2 * j0;
                    if (count < kLanes) {
                        store_first(d, lo, count, add);
                        continue;
                    }
                    if (add) {
                        Lanes before;
                        load(before, d);
                        lo += before;
                    }
                    store(d, lo);
                    if (count == 2 * kLanes) {
                        if (add) {
                            Lanes before;
                            load(before, d + kLanes);
                            hi += before;
                        }
                        store(d + kLanes, hi);
                    } else {
                        store_first(d + kLanes, hi, count - kLanes, add);
                    }
                }
            }
    }
}

}  // namespace detail

void pad_portable(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
                  float* padded);
void input_portable(const float* padded, int planes, Tiling t, float* u, std::size_t stride);
void gradient_portable(const float* padded, int planes, Tiling t, float* v, std::size_t stride);
void output_portable(const float* m, std::size_t stride, int planes, Tiling t, int rows, int cols,
                     float* dst, bool add);
#if SEMIGRAD_X86
void pad_avx2(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
              float* padded);
void input_avx2(const float* padded, int planes, Tiling t, float* u, std::size_t stride);
void gradient_avx2(const float* padded, int planes, Tiling t, float* v, std::size_t stride);
void output_avx2(const float* m, std::size_t stride, int planes, Tiling t, int rows, int cols,
                 float* dst, bool add);
void pad_avx512(const float* src, int planes, int rows, int cols, int top, int left, Tiling t,
                float* padded);
void input_avx512(const float* padded, int planes, Tiling t, float* u, std::size_t stride);
void gradient_avx512(const float* padded, int planes, Tiling t, float* v, std::size_t stride);
void output_avx512(const float* m, std::size_t stride, int planes, Tiling t, int rows, int cols,
                   float* dst, bool add);
#endif

}  // namespace semigrad::winograd
