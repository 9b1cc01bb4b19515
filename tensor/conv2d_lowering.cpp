// conv2d_lowering: one image's convolution as GEMMs, im2col, shifted or winograd (see
// conv2d_lowering.hpp), and the backward's per-chunk partials of dweight and dbias.
//
// Every GEMM here runs inside the callers' parallel loops over images, so OpenBLAS runs it on
// one thread (it checks omp_in_parallel): an image's arithmetic is the same at any thread count.
#include "tensor/conv2d_lowering.hpp"

#include <algorithm>
#include <string>

#include "tensor/block_gemm.hpp"
#include "tensor/conv2d_scatter.hpp"
#include "tensor/error.hpp"
#include "tensor/gemm.hpp"
#include "tensor/memory.hpp"
#include "tensor/small_gemm.hpp"

namespace semigrad {

Conv2dLowering conv2d_lowering(const Conv2dGeometry& g) {
    if (g.K() <= 8) return Conv2dLowering::im2col_loops;
    if (g.sh != 1 || g.sw != 1 || g.C < 8) return Conv2dLowering::im2col;
    return g.KH == 2 && g.KW == 2 ? Conv2dLowering::winograd : Conv2dLowering::shifted;
}

namespace wg = winograd;

Conv2dPlan::Conv2dPlan(const Conv2dGeometry& g, const float* weight, Conv2dLowering lowering,
                       Isa isa, bool sparse_gradient)
    : g_(g), lowering_(lowering == Conv2dLowering::automatic ? conv2d_lowering(g) : lowering),
      row_(g.OW), HP_(0), WP_(0), weight_(weight), isa_(isa) {
    if (lowering_ == Conv2dLowering::winograd) {
        if (g.sh != 1 || g.sw != 1 || g.KH != 2 || g.KW != 2)
            throw ValueError("conv2d: the winograd lowering needs a 2x2 kernel at stride 1, got " +
                             std::to_string(g.KH) + "x" + std::to_string(g.KW) + " at stride " +
                             std::to_string(g.sh) + "x" + std::to_string(g.sw));
        tiles_ = wg::tiling(g.OH, g.OW), dx_tiles_ = wg::tiling(g.H, g.W);
        taps_.resize(std::size_t(wg::kPoints) * g.OC * g.C);
        wg::transform_kernel(weight, g.OC, g.C, taps_.data());
        sparse_ = sparse_gradient;
        if (sparse_) {
            taps_c_.resize(std::size_t(g.OC) * 4 * g.C);
            for (int oc = 0; oc < g.OC; ++oc)
                for (int c = 0; c < g.C; ++c)
                    for (int t = 0; t < 4; ++t)
                        taps_c_[(std::size_t(oc) * 4 + t) * g.C + c] =
                            weight[(std::size_t(oc) * g.C + c) * 4 + t];
        }
        if (block_gemm::kernel(isa_)) {
            // V[p]ᵀ [C, OC] as well: block_gemm reads A through two strides, but runs a short
            // column tail fastest with A's columns contiguous, which the forward's V[p] [OC, C]
            // has not (the input gradient's V[8-p]ᵀ has). The same sums either way.
            taps_t_.resize(taps_.size());
            for (int p = 0; p < wg::kPoints; ++p)
                for (int oc = 0; oc < g.OC; ++oc)
                    for (int c = 0; c < g.C; ++c)
                        taps_t_[(std::size_t(p) * g.C + c) * g.OC + oc] =
                            taps_[(std::size_t(p) * g.OC + oc) * g.C + c];
        }
        return;
    }
    if (lowering_ != Conv2dLowering::shifted) return;
    if (g.sh != 1 || g.sw != 1)
        throw ValueError("conv2d: the shifted lowering needs stride 1, got " +
                         std::to_string(g.sh) + "x" + std::to_string(g.sw));
    // At stride 1, OH = HP - KH + 1: the padded planes are exactly what the output reads.
    HP_ = g.OH + g.KH - 1, WP_ = g.OW + g.KW - 1;
    row_ = WP_;
    const int T = g.KH * g.KW;
    taps_.resize(std::size_t(T) * g.OC * g.C);
    for (int t = 0; t < T; ++t)
        for (int oc = 0; oc < g.OC; ++oc)
            for (int c = 0; c < g.C; ++c)
                taps_[(std::size_t(t) * g.OC + oc) * g.C + c] = weight[std::size_t(oc * g.C + c) * T + t];
}

// plane_size(): HP*WP floats, followed by KW-1 zeros: the last tap's view of a plane runs KW-1
// places past it (into junk columns), and with the gap it reads zeros there, and the dx GEMMs'
// rows never overlap one another.

std::size_t Conv2dPlan::weight_size() const {
    const std::size_t per_pair =
        lowering_ == Conv2dLowering::winograd && !sparse_ ? wg::kPoints : g_.KH * g_.KW;
    return std::size_t(g_.OC) * g_.C * per_pair;
}

// The winograd lowering's scratch, one after another: the zero-extended planes (the input's,
// or dout's); U, the transformed input of a correlation (the forward's, or dx's from dout); M,
// its 9 products (or, for dweight, dout's transform Vdy); and backward_image's zero-extended
// dout, which both gradients read.
namespace {
struct WinogradScratch {
    std::size_t padded = 0, u, m, dout, end;  // offsets, and the total
    WinogradScratch(const Conv2dGeometry& g, wg::Tiling t, wg::Tiling dt) {
        const int planes = std::max(g.C, g.OC);
        u = std::max(wg::padded_size(planes, t), wg::padded_size(planes, dt));
        m = u + wg::kPoints * std::max(wg::point_stride(planes, t), wg::point_stride(planes, dt));
        dout = m + wg::kPoints * std::max(wg::point_stride(planes, t), wg::point_stride(planes, dt));
        // backward_image's zero-extended copy of dout (for either tiling)
        end = dout + std::max(wg::padded_size(g.OC, t), wg::padded_size(g.OC, dt));
    }
};
}  // namespace

// dst [planes_out, rows_out, cols_out] = (or += with `add`) the 2x2 correlation, by F(2x2, 2x2)
// over tiling t of dst, of src [planes_in, rows_in, cols_in] placed at (top, left) in zeros with
// the plan's kernels: V[p] [OC, C] for the forward; for dx, the flipped kernels, V[8 - p]
// transposed (conv2d_winograd.hpp).
void Conv2dPlan::winograd_correlate(const float* src, int planes_in, int rows_in, int cols_in,
                                    int top, int left, winograd::Tiling t, bool flipped,
                                    int planes_out, int rows_out, int cols_out, float* dst,
                                    bool add, float* scratch) const {
    const float* m = winograd_products(src, planes_in, rows_in, cols_in, top, left, t, flipped,
                                       planes_out, scratch);
    wg::transforms(isa_).output(m, wg::point_stride(planes_out, t), planes_out, t, rows_out,
                                cols_out, dst, add);
}

// winograd_correlate up to the inverse transform: M [9, planes_out, T] in scratch (U there too).
const float* Conv2dPlan::winograd_products(const float* src, int planes_in, int rows_in,
                                           int cols_in, int top, int left, winograd::Tiling t,
                                           bool flipped, int planes_out, float* scratch) const {
    const WinogradScratch w(g_, tiles_, dx_tiles_);
    float* padded = scratch + w.padded;
    wg::transforms(isa_).pad(src, planes_in, rows_in, cols_in, top, left, t, padded);
    return winograd_padded_products(padded, planes_in, t, flipped, planes_out, scratch);
}

// winograd_products from src already zero-extended (the pad's layout for tiling t).
const float* Conv2dPlan::winograd_padded_products(const float* padded, int planes_in,
                                                  winograd::Tiling t, bool flipped,
                                                  int planes_out, float* scratch) const {
    const WinogradScratch w(g_, tiles_, dx_tiles_);
    const int T = t.tiles();
    const std::size_t su = wg::point_stride(planes_in, t), sm = wg::point_stride(planes_out, t);
    float *u = scratch + w.u, *m = scratch + w.m;
    wg::transforms(isa_).input(padded, planes_in, t, u, su);
    const std::size_t kernels = std::size_t(g_.OC) * g_.C;
    for (int p = 0; p < wg::kPoints; ++p) {
        if (!flipped && !taps_t_.empty())  // V[p] read as the transpose of V[p]ᵀ [C, OC]
            winograd_gemm(true, planes_out, T, planes_in, taps_t_.data() + p * kernels, g_.OC,
                          u + p * su, T, false, m + p * sm, T);
        else
            winograd_gemm(flipped, planes_out, T, planes_in,
                          taps_.data() + (flipped ? wg::kPoints - 1 - p : p) * kernels, g_.C,
                          u + p * su, T, false, m + p * sm, T);
    }
    return m;
}

// The Winograd lowering's products, C [M, N] = (or += with `accumulate`) op(A) [M, K] @ B [K, N]
// with op(A) = A or Aᵀ: block_gemm's kernel where the plan's ISA has one (AVX2), else OpenBLAS.
void Conv2dPlan::winograd_gemm(bool trans_a, int M, int N, int K, const float* a, int lda,
                               const float* b, int ldb, bool accumulate, float* c, int ldc) const {
    if (const block_gemm::Fn kernel = block_gemm::kernel(isa_)) {
        kernel(M, N, K, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, accumulate, c, ldc);
        return;
    }
    gemm(trans_a, false, M, N, K, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
}

const float* Conv2dPlan::forward_products(const float* x_n, float* scratch) const {
    if (lowering_ != Conv2dLowering::winograd)
        throw ValueError("conv2d: forward_products needs the winograd lowering");
    const Conv2dGeometry& g = g_;
    return winograd_products(x_n, g.C, g.H, g.W, g.pt, g.pl, tiles_, false, g.OC, scratch);
}

std::size_t Conv2dPlan::scratch_size() const {
    if (lowering_ == Conv2dLowering::winograd) return WinogradScratch(g_, tiles_, dx_tiles_).end;
    if (lowering_ != Conv2dLowering::shifted) return std::size_t(g_.K()) * g_.P();
    return 2 * padded_size();  // xp, dxp
}

// x_n [C, H, W] -> xp [C, HP*WP + KW-1]: the image at (pt, pl) of each padded plane, zeros around.
void Conv2dPlan::pad_image(const float* x_n, float* xp) const {
    const std::size_t plane = std::size_t(plane_size());
    for (int c = 0; c < g_.C; ++c) {
        float* p = xp + c * plane;
        const float* src = x_n + std::size_t(c) * g_.H * g_.W;
        std::fill(p, p + std::size_t(g_.pt) * WP_, 0.0f);
        for (int h = 0; h < g_.H; ++h) {
            float* dst = p + std::size_t(h + g_.pt) * WP_;
            std::fill(dst, dst + g_.pl, 0.0f);
            std::copy(src + std::size_t(h) * g_.W, src + std::size_t(h + 1) * g_.W, dst + g_.pl);
            std::fill(dst + g_.pl + g_.W, dst + WP_, 0.0f);
        }
        std::fill(p + std::size_t(g_.H + g_.pt) * WP_, p + plane, 0.0f);
    }
}

void Conv2dPlan::forward_image(const float* x_n, float* out, float* scratch) const {
    const Conv2dGeometry& g = g_;
    if (lowering_ == Conv2dLowering::im2col_loops) {
        im2col(x_n, g, scratch);
        small_gemm::kernels(isa_).nn(g.OC, g.P(), g.K(), weight_, scratch, out);
        return;
    }
    if (lowering_ == Conv2dLowering::im2col) {
        const int K = g.K(), P = g.P();
        im2col(x_n, g, scratch);
        gemm(false, false, g.OC, P, K, 1.0f, weight_, K, scratch, P, 0.0f, out, P);
        return;
    }
    if (lowering_ == Conv2dLowering::winograd) {
        winograd_correlate(x_n, g.C, g.H, g.W, g.pt, g.pl, tiles_, false, g.OC, g.OH, g.OW, out,
                           false, scratch);
        return;
    }
    float* xp = scratch;
    pad_image(x_n, xp);
    const int plane = plane_size(), Q = g.OH * WP_;
    for (int t = 0; t < g.KH * g.KW; ++t)
        gemm(false, false, g.OC, Q, g.C, 1.0f, taps_.data() + std::size_t(t) * g.OC * g.C, g.C,
             xp + tap_offset(t), plane, t == 0 ? 0.0f : 1.0f, out, Q);
}

void Conv2dPlan::backward_image(const float* dout, const float* x_n, bool first, float* pweight,
                                float* pbias, float* dx_n, float* scratch, bool write_dx) const {
    const Conv2dGeometry& g = g_;
    const int Q = g.OH * row_;  // the gradient plane's size, junk columns included (zeros)
    if (lowering_ == Conv2dLowering::im2col_loops) {
        if (pweight) {
            // The bias gradient's row sums in the same pass over dout (small_gemm.hpp).
            im2col(x_n, g, scratch);
            small_gemm::kernels(isa_).nt(g.OC, g.OH, g.OW, g.K(), dout, scratch, !first, pweight,
                                         pbias);
            pbias = nullptr;  // done
        }
    } else if (lowering_ == Conv2dLowering::im2col) {
        const int K = g.K(), P = g.P();
        if (pweight) {
            im2col(x_n, g, scratch);
            gemm(false, true, g.OC, K, P, 1.0f, dout, P, scratch, P, first ? 0.0f : 1.0f, pweight, K);
        }
    } else if (lowering_ == Conv2dLowering::winograd) {
        if (sparse_) {
            scatter_gradients(dout, x_n, first, pweight, pbias, dx_n, write_dx, scratch);
            return;
        }
        float* padded = scratch + WinogradScratch(g, tiles_, dx_tiles_).dout;
        if (shares_padded_gradient()) {
            wg::transforms(isa_).pad(dout, g.OC, g.OH, g.OW, 1 - g.pt, 1 - g.pl, dx_tiles_, padded);
            winograd_padded_backward(padded, x_n, first, pweight, pbias, dx_n, scratch, write_dx);
            return;
        }
        if (pweight || pbias) {
            wg::transforms(isa_).pad(dout, g.OC, g.OH, g.OW, 0, 0, tiles_, padded);
            winograd_weight_gradient(padded, x_n, first, pweight, pbias, scratch);
        }
        pbias = nullptr;  // done
    } else if (pweight) {
        float* xp = scratch;
        pad_image(x_n, xp);
        const int plane = plane_size();
        for (int t = 0; t < g.KH * g.KW; ++t)
            gemm(false, true, g.OC, g.C, Q, 1.0f, dout, Q, xp + tap_offset(t), plane,
                 first ? 0.0f : 1.0f, pweight + std::size_t(t) * g.OC * g.C, g.C);
    }
    // dout is still in cache from the GEMM when its rows are summed (sum_in_lanes' order).
    if (pbias)
        for (int oc = 0; oc < g.OC; ++oc) pbias[oc] += sum_in_lanes(dout + std::size_t(oc) * Q, Q);
    if (!dx_n) return;
    if (lowering_ == Conv2dLowering::winograd) {
        // dx[h][w] = Σ dout[h + pt - a][w + pl - b] w[a][b]: the correlation of dout placed at
        // (1 - pt, 1 - pl) with the kernel flipped. Every dx entry is one tile's output, written
        // once: so with write_dx it is written, not added to zeros.
        winograd_correlate(dout, g.OC, g.OH, g.OW, 1 - g.pt, 1 - g.pl, dx_tiles_, true, g.C, g.H,
                           g.W, dx_n, !write_dx, scratch);
        return;
    }
    // The other lowerings scatter (several products land on one dx entry): they add.
    if (write_dx) std::fill(dx_n, dx_n + std::size_t(g.C) * g.H * g.W, 0.0f);
    if (lowering_ == Conv2dLowering::im2col_loops) {
        small_gemm::kernels(isa_).tn(g.OC, g.P(), g.K(), weight_, dout, scratch);
        col2im_add(scratch, g, dx_n);
        return;
    }
    if (lowering_ == Conv2dLowering::im2col) {
        const int K = g.K(), P = g.P();
        gemm(true, false, K, P, g.OC, 1.0f, weight_, K, dout, P, 0.0f, scratch, P);
        col2im_add(scratch, g, dx_n);
        return;
    }
    float* dxp = scratch + padded_size();
    std::fill(dxp, dxp + padded_size(), 0.0f);
    const int plane = plane_size();
    for (int t = 0; t < g.KH * g.KW; ++t)
        gemm(true, false, g.C, Q, g.OC, 1.0f, taps_.data() + std::size_t(t) * g.OC * g.C, g.C,
             dout, Q, 1.0f, dxp + tap_offset(t), plane);
    for (int c = 0; c < g.C; ++c)
        for (int h = 0; h < g.H; ++h) {
            const float* src = dxp + std::size_t(c) * plane + std::size_t(h + g.pt) * WP_ + g.pl;
            float* dst = dx_n + (std::size_t(c) * g.H + h) * g.W;
            for (int w = 0; w < g.W; ++w) dst[w] += src[w];
        }
}

bool Conv2dPlan::shares_padded_gradient() const {
    return lowering_ == Conv2dLowering::winograd && tiles_.TH == dx_tiles_.TH &&
           tiles_.TW == dx_tiles_.TW && (g_.pt == 0 || g_.pt == 1) && (g_.pl == 0 || g_.pl == 1);
}

// backward_image's Winograd lowering from dout zero-extended at (1 - pt, 1 - pl) for the input's
// tiling, when that copy serves both gradients (shares_padded_gradient).
void Conv2dPlan::winograd_padded_backward(const float* padded, const float* x_n, bool first,
                                          float* pweight, float* pbias, float* dx_n,
                                          float* scratch, bool write_dx) const {
    const Conv2dGeometry& g = g_;
    // The weight gradient's 2x2 blocks start at dout's (0, 0): the same planes, read from
    // (1 - pt, 1 - pl) on (shares_padded_gradient says why they stay inside).
    if (pweight || pbias)
        winograd_weight_gradient(padded + std::size_t(1 - g.pt) * wg::pitch(dx_tiles_) + (1 - g.pl),
                                 x_n, first, pweight, pbias, scratch);
    if (!dx_n) return;
    // dx[h][w] = Σ dout[h + pt - a][w + pl - b] w[a][b]: the correlation of dout placed at
    // (1 - pt, 1 - pl) with the kernel flipped. Every dx entry is one tile's output, written
    // once: so with write_dx it is written, not added to zeros.
    const float* m = winograd_padded_products(padded, g.OC, dx_tiles_, true, g.C, scratch);
    wg::transforms(isa_).output(m, wg::point_stride(g.C, dx_tiles_), g.C, dx_tiles_, g.H, g.W,
                                dx_n, !write_dx);
}

// The sparse gradient (conv2d_scatter.hpp) of one image: pweight per tap [4, OC, C] (+)= and
// pbias += its scatter, dx_n (+)= the transpose of dxt [H*W, C]. x_n goes channels last into the
// padded input's place (xt), dxt into U's: both free in this lowering's sparse backward.
void Conv2dPlan::scatter_gradients(const float* dout, const float* x_n, bool first,
                                   float* pweight, float* pbias, float* dx_n, bool write_dx,
                                   float* scratch) const {
    const Conv2dGeometry& g = g_;
    const WinogradScratch w(g, tiles_, dx_tiles_);
    const scatter::Kernels k = scatter::kernels(isa_);
    const int HW = g.H * g.W;
    float *xt = nullptr, *dxt = dx_n ? scratch + w.u : nullptr;
    if (pweight) {
        xt = scratch + w.padded;
        k.transpose(x_n, g.C, HW, xt, false);
        if (first) std::fill(pweight, pweight + weight_size(), 0.0f);
    }
    k.scatter({dout, std::size_t(g.OH) * g.OW, g.OW, g.OC, g.OH, g.OW, g.C, g.H, g.W, g.pt, g.pl,
               taps_c_.data(), xt, dxt, pweight, pbias});
    if (dx_n) k.transpose(dxt, HW, g.C, dx_n, !write_dx);
}

// dweight[oc][c] = Σ_tiles Aᵀ [(G dy Gᵀ) ⊙ (Bᵀ d B)] A: the sums in the transformed domain here,
// Aᵀ . A once the chunks are added (Conv2dPartials::add_to). `dout_blocks`: dout zero-extended
// with its (0, 0) here, planes and rows as the pad lays them out for tiles_.
void Conv2dPlan::winograd_weight_gradient(const float* dout_blocks, const float* x_n, bool first,
                                          float* pweight, float* pbias, float* scratch) const {
    const Conv2dGeometry& g = g_;
    const WinogradScratch w(g, tiles_, dx_tiles_);
    const wg::Transforms& transforms = wg::transforms(isa_);
    const wg::Tiling t = tiles_;
    const int T = t.tiles();
    const std::size_t su = wg::point_stride(g.C, t), sv = wg::point_stride(g.OC, t);
    float* v = scratch + w.m;
    transforms.gradient(dout_blocks, g.OC, t, v, sv);
    // The bias: the centre point of G dy Gᵀ is (g00 + g10) + (g01 + g11), a tile's four
    // gradients, so dout's sum over the plane is Vdy[4]'s over the tiles, which lie [T, OC]:
    // added tile by tile, OC lanes at a time (not a strided sum per plane).
    if (pbias) {
        const float* centre = v + 4 * sv;
        for (int tile = 0; tile < T; ++tile)
            for (int oc = 0; oc < g.OC; ++oc) pbias[oc] += centre[std::size_t(tile) * g.OC + oc];
    }
    if (!pweight) return;
    float *padded = scratch + w.padded, *u = scratch + w.u;
    transforms.pad(x_n, g.C, g.H, g.W, g.pt, g.pl, t, padded);
    transforms.input(padded, g.C, t, u, su);
    // dV[p]ᵀ [C, OC] (+)= U[p] [C, T] @ Vdy[p] [T, OC]
    for (int p = 0; p < wg::kPoints; ++p)
        winograd_gemm(false, g.C, g.OC, T, u + p * su, T, v + p * sv, g.OC, !first,
                      pweight + std::size_t(p) * g.OC * g.C, g.OC);
}

// ---------------------------------------------------------------------------------------------
// partials

// 16 chunks keep 2-16 threads busy.
constexpr int kWeightChunks = 16;

Conv2dPartials::Conv2dPartials(const Conv2dPlan& plan_, bool dweight, bool dbias)
    : chunks(std::min(plan_.geometry().N, kWeightChunks)), wsize(plan_.weight_size()),
      weight(dweight ? scratch_floats(std::size_t(chunks) * wsize) : nullptr),
      bias(dbias ? std::size_t(chunks) * plan_.geometry().OC : 0, 0.0f), plan(plan_),
      N(plan_.geometry().N), OC(plan_.geometry().OC) {}

void Conv2dPartials::add_to(Tensor* dweight, Tensor* dbias) const {
    const int n_chunks = chunks;
    if (dweight && plan.lowering() == Conv2dLowering::winograd && !plan.per_tap_partials()) {
        // Partials per point, transposed, [9, C, OC]: for each c, its 9 rows summed over chunks
        // (contiguous rows of OC), then Aᵀ . A per (oc, c).
        const Conv2dGeometry& g = plan.geometry();
        const std::size_t step = std::size_t(g.OC) * g.C;
        float* d = dweight->data();
        std::vector<float> acc(std::size_t(winograd::kPoints) * g.OC);  // [9, OC]
#pragma omp for schedule(static) nowait
        for (int c = 0; c < g.C; ++c) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int chunk = 0; chunk < n_chunks; ++chunk)
                for (int p = 0; p < winograd::kPoints; ++p) {
                    const float* row =
                        weight.get() + chunk * wsize + p * step + std::size_t(c) * g.OC;
                    float* a = acc.data() + std::size_t(p) * g.OC;
                    for (int oc = 0; oc < g.OC; ++oc) a[oc] += row[oc];
                }
            for (int oc = 0; oc < g.OC; ++oc)
                winograd::add_kernel_gradient(acc.data() + oc, std::size_t(g.OC),
                                              d + (std::size_t(oc) * g.C + c) * 4);
        }
    } else if (dweight) {
        // A partial's row r holds OC*K / rows contiguous elements: for im2col, row oc of
        // [OC, K], in dweight's own order; per tap (shifted, winograd's sparse gradient), row
        // (t, oc) of [KH*KW, OC, C], whose element c belongs at dweight[oc][c][t], i.e.
        // oc*K + c*T + t.
        const Conv2dGeometry& g = plan.geometry();
        const bool per_tap = plan.per_tap_partials();
        const int T = g.KH * g.KW, inner = per_tap ? g.C : g.K(), rows = per_tap ? T * g.OC : g.OC;
        float* d = dweight->data();
        std::vector<float> acc(static_cast<std::size_t>(inner));  // one row's sums, chunk by chunk
#pragma omp for schedule(static) nowait
        for (int r = 0; r < rows; ++r) {
            const int t = per_tap ? r / g.OC : 0, oc = per_tap ? r % g.OC : r;
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int chunk = 0; chunk < n_chunks; ++chunk) {
                const float* p = weight.get() + chunk * wsize + std::size_t(r) * inner;
                for (int c = 0; c < inner; ++c) acc[std::size_t(c)] += p[c];
            }
            float* dst = d + std::size_t(oc) * g.K() + t;
            const std::size_t stride = per_tap ? std::size_t(T) : 1;
            for (int c = 0; c < inner; ++c) dst[c * stride] += acc[std::size_t(c)];
        }
    }
    if (dbias) {
#pragma omp single nowait
        for (int oc = 0; oc < OC; ++oc) {
            float acc = 0.0f;
            for (int chunk = 0; chunk < n_chunks; ++chunk) acc += bias[std::size_t(chunk) * OC + oc];
            (*dbias)[std::size_t(oc)] += acc;
        }
    }
}

}  // namespace semigrad
