// conv2d_lowering: how one image's convolution becomes GEMMs, shared by conv2d.cpp (the layer)
// and conv_block.cpp (the fused block), which must compute the same bits.
//
// Four lowerings (letters as in conv2d.hpp; K = C*KH*KW, P = OH*OW):
//
//   im2col   (Chellapilla et al. 2006; Darknet's im2col.c) unfold x_n into cols [K, P], then
//            out = weight [OC, K] @ cols. Any stride. The backward unfolds x_n again for
//            dweight += dout @ cols^T and folds dcols = weight^T @ dout back onto dx (col2im).
//   im2col_loops  the same, with the three products as small_gemm.hpp's loops instead of
//            OpenBLAS: for a tiny K, where OpenBLAS's kernels are mostly overhead.
//   shifted  stride 1 only. x_n is copied once into zero-padded planes xp [C, HP, WP] (HP, WP:
//            the padded input's height and width). Output pixel (oh, ow) reads xp at
//            (oh + kh, ow + kw), i.e. flat place q + kh*WP + kw for q = oh*WP + ow. So for each
//            kernel tap t = (kh, kw), the operand "x shifted by t" is the padded planes themselves
//            read from offset kh*WP + kw, a [C, OH*WP] matrix with row stride HP*WP, and
//                out [OC, OH*WP] += weight_t [OC, C] @ xp[:, kh*WP + kw ...]     (KH*KW GEMMs)
//            with no unfolded copy of x. The output comes on the padded width: row oh holds OW
//            true pixels, then WP - OW pixels that wrapped into the next row ("junk", never read
//            as results). The backward reads the same shifted views:
//                dweight_t += dout @ view_t^T,   dxp[view_t] += weight_t^T @ dout,
//            which is right as long as dout's junk columns are zero, and copies dxp's interior
//            onto dx. Per image this writes C*HP*WP floats instead of the K*P = KH*KW times as
//            many that im2col writes and col2im reads back (the tutorial's second conv: 14,400
//            floats instead of 50,176, twice per step).
//
//   winograd a 2x2 kernel at stride 1 only: Winograd's F(2x2, 2x2) (conv2d_winograd.hpp). Each
//            channel plane is cut into 2x2 output tiles (T of them) and transformed; then
//                M[p] [OC, T] = V[p] [OC, C] @ U[p] [C, T]     for the 9 points p,
//            9 GEMMs of T columns where shifted runs 4 of about 4T (OH*WP), and the inverse
//            transform writes out. The backward is the same three steps twice: for dweight,
//                dV[p]^T [C, OC] += U[p] [C, T] @ Vdy[p] [T, OC]
//            (dout's transform tile-major), summed per chunk in the transformed domain; for dx,
//            the flipped kernel's V against the transformed, shifted dout, or, when dout is at
//            most a quarter non-zero (behind a 2x2 max-pool), a scatter of its non-zero entries
//            (conv2d_scatter.hpp). In all, 27 GEMMs an
//            image whose flops are 9/16 of shifted's 12 GEMMs' (on the AVX2 path through
//            block_gemm.hpp, which reads the operands in place; elsewhere OpenBLAS). The tutorial's second conv at
//            batch 32 (bench_kernels, one thread, SkylakeX OpenBLAS): forward 0.88 ms against
//            shifted's 1.26, backward 1.78 against 2.88. Its sums regroup the direct ones, so the
//            outputs differ from shifted's in the last bits, not more (tests/tensor/test_conv2d.cpp).
//
// Which lowering runs is the plan's choice (conv2d_lowering): im2col_loops when K <= 8 (the first
// conv: K = 4); else, at stride 1 when C >= 8, winograd for a 2x2 kernel (the second conv) and
// shifted for any other; else im2col. With fewer channels each GEMM has an inner dimension too
// short to pay for its call and packing.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "tensor/conv2d.hpp"
#include "tensor/conv2d_winograd.hpp"
#include "tensor/simd.hpp"

namespace semigrad {

// The lowering `automatic` stands for at geometry g (never `automatic`).
Conv2dLowering conv2d_lowering(const Conv2dGeometry& g);

// One convolution's lowering: the geometry, the weights (repacked per tap for `shifted`), and
// the per-image forward and backward. Reads only its own members: one plan serves all threads,
// each passing its own scratch.
class Conv2dPlan {
  public:
    // Asking for `shifted` at a stride other than 1 throws ValueError. `isa`: the variant of
    // small_gemm's loops (im2col_loops; tensor/simd.hpp). `sparse_gradient`: the backward's
    // dout is at most a quarter non-zero in every image (sparse_gradient(), below).
    Conv2dPlan(const Conv2dGeometry& g, const float* weight,
               Conv2dLowering lowering = Conv2dLowering::automatic, Isa isa = active_isa(),
               bool sparse_gradient = false);

    const Conv2dGeometry& geometry() const { return g_; }
    Conv2dLowering lowering() const { return lowering_; }
    // The row stride of an image's conv output (and of its gradient) as the plan writes and
    // reads it: OW for im2col, WP for shifted (columns OW..WP-1 are junk).
    int row() const { return row_; }
    std::size_t image_size() const { return std::size_t(g_.OC) * g_.OH * row_; }
    // Floats of per-thread scratch that forward_image and backward_image need.
    std::size_t scratch_size() const;
    // Floats of a dweight partial: OC*K in dweight's order [OC, C, KH, KW] for the im2col
    // lowerings; per tap, [KH*KW, OC, C], for shifted and for winograd's sparse gradient; per
    // point and transposed, [9, C, OC], for winograd's dense one (still to be transformed back:
    // Conv2dPartials::add_to).
    std::size_t weight_size() const;
    bool per_tap_partials() const {
        return lowering_ == Conv2dLowering::shifted || sparse_gradient();
    }
    // Winograd, for a dout at most a quarter non-zero in every image, as a 2x2 max-pool's
    // gradient always is (the caller says so when it builds the plan): both gradients are a
    // scatter of dout's non-zero entries (conv2d_scatter.hpp), 8C products an entry, where the
    // transforms and 18 GEMMs make 9C/2 an entry, zero or not, and 9C/2 per four entries.
    bool sparse_gradient() const { return sparse_; }

    // out [OC, OH, row()] = the convolution of image x_n [C, H, W], without bias.
    void forward_image(const float* x_n, float* out, float* scratch) const;
    // Winograd only (else ValueError): the forward of image x_n before its inverse transform,
    // M [9, OC, T] for the tiling tiles() (point stride winograd::point_stride(OC, tiles())),
    // in scratch. Each 2x2 output tile's values are Aᵀ M A (conv2d_winograd.hpp): a fused 2x2
    // pool takes them from here without the conv's output ever being written.
    const float* forward_products(const float* x_n, float* scratch) const;
    winograd::Tiling tiles() const { return tiles_; }
    // Given dout [OC, OH, row()] (junk columns zero): pweight [OC*K, weight_size's layout]
    // += dout's weight gradient (= when `first`), pbias [OC] += dout's plane sums (in
    // sum_in_lanes' order; Winograd: tile by tile, from the gradient's transform, or entry by
    // entry for the sparse gradient), and dx_n [C, H, W] += its input gradient (= with
    // `write_dx`: dx_n need not be initialised). Null outputs are skipped.
    void backward_image(const float* dout, const float* x_n, bool first, float* pweight,
                        float* pbias, float* dx_n, float* scratch, bool write_dx = false) const;

  private:
    // Winograd: the input gradient's correlation reads dout zero-extended at (1 - pt, 1 - pl) in
    // planes padded as winograd::Transforms::pad pads them for the input's tiling. When output
    // and input have the same tiling and pt, pl <= 1 (a 'same' 2x2 conv's: pt = pl = 0), that
    // one copy also holds every 2x2 block the weight gradient's transform reads, a row and a
    // column further in: one zero-extended copy serves both gradients.
    bool shares_padded_gradient() const;

    Conv2dGeometry g_;
    Conv2dLowering lowering_;
    int row_, HP_, WP_;
    const float* weight_;
    Isa isa_;
    std::vector<float> taps_;  // shifted: weight as [KH*KW, OC, C]; winograd: V as [9, OC, C]
    std::vector<float> taps_t_;  // winograd through block_gemm: Vᵀ as [9, C, OC]
    std::vector<float> taps_c_;  // winograd, sparse_gradient: the weight as [OC, 2, 2, C]
    winograd::Tiling tiles_{}, dx_tiles_{};  // winograd: of the output, of the input gradient
    bool sparse_ = false;

    // One padded plane's floats: HP*WP, then KW-1 zeros for the last tap's overrun.
    int plane_size() const { return HP_ * WP_ + g_.KW - 1; }
    std::size_t padded_size() const { return std::size_t(g_.C) * plane_size(); }
    int tap_offset(int t) const { return (t / g_.KW) * WP_ + t % g_.KW; }
    void pad_image(const float* x_n, float* xp) const;
    const float* winograd_products(const float* src, int planes_in, int rows_in, int cols_in,
                                   int top, int left, winograd::Tiling t, bool flipped,
                                   int planes_out, float* scratch) const;
    const float* winograd_padded_products(const float* padded, int planes_in, winograd::Tiling t,
                                          bool flipped, int planes_out, float* scratch) const;
    void winograd_padded_backward(const float* padded, const float* x_n, bool first,
                                  float* pweight, float* pbias, float* dx_n, float* scratch,
                                  bool write_dx) const;
    void scatter_gradients(const float* dout, const float* x_n, bool first, float* pweight,
                           float* pbias, float* dx_n, bool write_dx, float* scratch) const;
    void winograd_weight_gradient(const float* dout_blocks, const float* x_n, bool first,
                                  float* pweight, float* pbias, float* scratch) const;
    void winograd_gemm(bool trans_a, int M, int N, int K, const float* a, int lda, const float* b,
                       int ldb, bool accumulate, float* c, int ldc) const;
    void winograd_correlate(const float* src, int planes_in, int rows_in, int cols_in, int top,
                            int left, winograd::Tiling t, bool flipped, int planes_out,
                            int rows_out, int cols_out, float* dst, bool add, float* scratch) const;
};

// The backward's split over images: dweight and dbias are shared by all images, so each of up to
// 16 fixed chunks of images sums its own partials and the partials are added in chunk order.
// The split depends on N only, not on the thread count, so neither do the results.
struct Conv2dPartials {
    Conv2dPartials(const Conv2dPlan& plan, bool dweight, bool dbias);
    int chunks;
    std::size_t wsize;  // OC * K
    // [chunks, OC*K], or null: not initialised, since each chunk's first image writes its
    // partial (backward_image's `first`); zeroing 1.2 MB for the second conv every step was a
    // serial 1.5% of the step's samples (perf).
    std::unique_ptr<float[]> weight;
    std::vector<float> bias;  // [chunks, OC] (zeros: added to image by image), or empty
    int first_image(int chunk) const { return int(long(N) * chunk / chunks); }
    float* weight_of(int chunk) { return weight ? weight.get() + chunk * wsize : nullptr; }
    float* bias_of(int chunk) { return bias.empty() ? nullptr : bias.data() + std::size_t(chunk) * OC; }
    // dweight += Σ chunks, dbias += Σ chunks (either may be null). Called by every thread of the
    // caller's parallel region after its loop over chunks (whose barrier completes the
    // partials): the threads share dweight's elements, one adds dbias; no barrier at the end,
    // the region's own closes it. (Outside a parallel region the one thread does it all.) One
    // region per backward instead of two: at batch 32 each fork and join is a visible cost.
    void add_to(Tensor* dweight, Tensor* dbias) const;

  private:
    const Conv2dPlan& plan;
    int N, OC;
};

}  // namespace semigrad
