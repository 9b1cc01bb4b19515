// conv2d: forward and backward of 2-D cross-correlation over NCHW: the fast kernels (GEMMs per
// image) and the direct seven-loop references they are tested against.
//
// Lowering (Chellapilla et al. 2006, "High Performance Convolutional Neural Networks for
// Document Processing"; Darknet's im2col.c): per image, unfold the receptive fields into
// cols [C*KH*KW, OH*OW]; then out = weight [OC, C*KH*KW] @ cols. Backward reuses the unfolding:
// dweight += dout @ cols^T, dcols = weight^T @ dout, and col2im folds dcols back onto dx. This
// file holds im2col and col2im; conv2d_lowering.cpp runs them per image, or, at stride 1 with
// enough channels, the "shifted" lowering that needs neither.
//
// Letters: N batch, C in-channels, H W input size, OC out-channels, KH KW kernel size, OH OW output
// size, K = C*KH*KW (the GEMM inner dimension), P = OH*OW (pixels of one output plane).
//
// Threads: every loop is over images, each writing its own out/dx plane. A BLAS call inside an
// active OpenMP region runs on one thread (the OpenMP OpenBLAS checks omp_in_parallel), so each
// image's arithmetic is the same whatever the thread count; dweight, which all images share, is
// summed in fixed chunks of images reduced in chunk order. Results are bit-identical for any
// thread count. This file is not a general convolution library: no dilation, no groups.
#include "tensor/conv2d.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "tensor/conv2d_lowering.hpp"
#include "tensor/error.hpp"
#include "tensor/memory.hpp"

namespace semigrad {

// ---------------------------------------------------------------------------------------------
// padding and shapes

Pad2d tf_padding(Padding padding, int H, int W, int KH, int KW, int stride_h, int stride_w) {
    if (stride_h < 1 || stride_w < 1)
        throw ValueError("tf_padding: strides must be >= 1, got " + std::to_string(stride_h) + "x" +
                         std::to_string(stride_w));
    if (KH < 1 || KW < 1 || H < 0 || W < 0)
        throw ValueError("tf_padding: bad sizes: input " + std::to_string(H) + "x" +
                         std::to_string(W) + ", kernel " + std::to_string(KH) + "x" +
                         std::to_string(KW));
    if (padding == Padding::Valid) return {};
    // tf.nn.convolution "same": out = ceil(in / stride), the missing pixels split with the odd
    // one after (tensorflow/core/framework/kernel_shape_util.cc, GetWindowedOutputSizeVerbose).
    const auto total = [](int in, int k, int s) {
        const int out = (in + s - 1) / s;
        return std::max((out - 1) * s + k - in, 0);
    };
    const int th = total(H, KH, stride_h), tw = total(W, KW, stride_w);
    return {th / 2, th - th / 2, tw / 2, tw - tw / 2};
}

static void check_spec(const char* op, int stride_h, int stride_w, const Pad2d& pad) {
    if (stride_h < 1 || stride_w < 1)
        throw ValueError(std::string(op) + ": strides must be >= 1, got " +
                         std::to_string(stride_h) + "x" + std::to_string(stride_w));
    if (pad.top < 0 || pad.bottom < 0 || pad.left < 0 || pad.right < 0)
        throw ValueError(std::string(op) + ": padding must be >= 0, got top " +
                         std::to_string(pad.top) + " bottom " + std::to_string(pad.bottom) +
                         " left " + std::to_string(pad.left) + " right " +
                         std::to_string(pad.right));
}

Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dSpec& spec) {
    check_spec("conv2d", spec.stride_h, spec.stride_w, spec.pad);
    if (x.size() != 4 || weight.size() != 4)
        throw ShapeError("conv2d: input " + to_string(x) + " must be [N,C,H,W] and weight " +
                         to_string(weight) + " must be [OC,C,KH,KW]");
    if (x[1] != weight[1])
        throw ShapeError("conv2d: input " + to_string(x) + " has " + std::to_string(x[1]) +
                         " channels, weight " + to_string(weight) + " expects " +
                         std::to_string(weight[1]));
    const long KH = long(weight[2]), KW = long(weight[3]);
    const long HP = long(x[2]) + spec.pad.top + spec.pad.bottom;
    const long WP = long(x[3]) + spec.pad.left + spec.pad.right;
    if (KH < 1 || KW < 1 || KH > HP || KW > WP)
        throw ShapeError("conv2d: kernel of weight " + to_string(weight) +
                         " does not fit the padded input " + to_string(x) + " (padded " +
                         std::to_string(HP) + "x" + std::to_string(WP) + ")");
    return {x[0], weight[0], std::size_t((HP - KH) / spec.stride_h + 1),
            std::size_t((WP - KW) / spec.stride_w + 1)};
}

Conv2dGeometry conv2d_geometry(const Tensor& x, const Tensor& weight, const Conv2dSpec& spec) {
    const Shape out = conv2d_output_shape(x.shape(), weight.shape(), spec);
    return {int(x.dim(0)),      int(x.dim(1)),      int(x.dim(2)),      int(x.dim(3)),
            int(weight.dim(0)), int(weight.dim(2)), int(weight.dim(3)), int(out[2]),
            int(out[3]),        spec.stride_h,      spec.stride_w,      spec.pad.top,
            spec.pad.left};
}

void check_conv_grads(const char* op, const Tensor& x, const Tensor& weight, const Tensor* dx,
                      const Tensor* dweight, const Tensor* dbias) {
    const std::string name(op);
    if (dx) check_same_shape((name + ": dx vs x").c_str(), *dx, x);
    if (dweight) check_same_shape((name + ": dweight vs weight").c_str(), *dweight, weight);
    if (dbias && (dbias->ndim() != 1 || dbias->dim(0) != weight.dim(0)))
        throw ShapeError(name + ": dbias " + to_string(dbias->shape()) + " must be [" +
                         std::to_string(weight.dim(0)) + "] for weight " +
                         to_string(weight.shape()));
}

namespace {

using Geometry = Conv2dGeometry;

void check_bias(const Tensor& bias, const Geometry& g, const Shape& weight) {
    if (!bias.empty() && (bias.ndim() != 1 || int(bias.dim(0)) != g.OC))
        throw ShapeError("conv2d: bias " + to_string(bias.shape()) + " must be empty or [" +
                         std::to_string(g.OC) + "] for weight " + to_string(weight));
}

// The outputs o in [lo, hi) of [0, O) whose input index o * stride + offset lies in [0, size).
// Splitting each row into zero / copy / zero spans keeps the bounds test out of the inner loops.
struct Span {
    int lo, hi;
};
Span valid_span(int O, int stride, int offset, int size) {
    const int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int hi = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
    const int h = std::min(hi, O);
    return {std::min(lo, h), h};
}

}  // namespace

// x [C,H,W] (one image) -> cols [K,P]; row (c*KH + kh)*KW + kw holds x shifted by (kh, kw),
// matching the row-major flattening of weight [OC, C, KH, KW].
//
// At stride 1 with OW == W ("same" padding, the tutorial's convs) a cols row is the input plane
// shifted by d = (kh - pt) * W + (kw - pl): one contiguous copy from the first to the last valid
// element, then zeros where the shift ran over an edge (a padded row, or a column that wrapped
// into the neighbouring row). Rows of 14 floats made the general per-row loop mostly overhead.
void im2col(const float* x, const Geometry& g, float* cols) {
    const int P = g.P();
    const bool shifted_planes = g.sh == 1 && g.sw == 1 && g.OW == g.W;
    for (int c = 0; c < g.C; ++c)
        for (int kh = 0; kh < g.KH; ++kh)
            for (int kw = 0; kw < g.KW; ++kw) {
                float* row = cols + std::size_t((c * g.KH + kh) * g.KW + kw) * P;
                const Span sw = valid_span(g.OW, g.sw, kw - g.pl, g.W);
                if (shifted_planes) {
                    const Span sh = valid_span(g.OH, 1, kh - g.pt, g.H);
                    const float* plane = x + std::size_t(c) * g.H * g.W;
                    const int d = (kh - g.pt) * g.W + (kw - g.pl);
                    const int p0 = sh.lo * g.W + sw.lo, p1 = (sh.hi - 1) * g.W + sw.hi;
                    if (sh.lo >= sh.hi || sw.lo >= sw.hi) {
                        std::fill(row, row + P, 0.0f);
                        continue;
                    }
                    std::fill(row, row + p0, 0.0f);
                    std::copy(plane + p0 + d, plane + p1 + d, row + p0);
                    std::fill(row + p1, row + P, 0.0f);
                    for (int oh = sh.lo; oh < sh.hi; ++oh) {
                        std::fill(row + oh * g.OW, row + oh * g.OW + sw.lo, 0.0f);
                        std::fill(row + oh * g.OW + sw.hi, row + (oh + 1) * g.OW, 0.0f);
                    }
                    continue;
                }
                for (int oh = 0; oh < g.OH; ++oh) {
                    float* dst = row + oh * g.OW;
                    const int ih = oh * g.sh + kh - g.pt;
                    if (ih < 0 || ih >= g.H) {
                        std::fill(dst, dst + g.OW, 0.0f);
                        continue;
                    }
                    const float* src = x + (std::size_t(c) * g.H + ih) * g.W + (kw - g.pl);
                    std::fill(dst, dst + sw.lo, 0.0f);
                    for (int ow = sw.lo; ow < sw.hi; ++ow) dst[ow] = src[ow * g.sw];
                    std::fill(dst + sw.hi, dst + g.OW, 0.0f);
                }
            }
}

// The adjoint of im2col: dx [C,H,W] += fold(dcols [K,P]). Overlapping windows add up here, in a
// fixed order, so it runs on one image per thread. (Unit stride gets its own inner loop, which
// the compiler vectorises.)
void col2im_add(const float* dcols, const Geometry& g, float* dx) {
    const int P = g.P();
    for (int c = 0; c < g.C; ++c)
        for (int kh = 0; kh < g.KH; ++kh)
            for (int kw = 0; kw < g.KW; ++kw) {
                const float* row = dcols + std::size_t((c * g.KH + kh) * g.KW + kw) * P;
                const Span sw = valid_span(g.OW, g.sw, kw - g.pl, g.W);
                for (int oh = 0; oh < g.OH; ++oh) {
                    const int ih = oh * g.sh + kh - g.pt;
                    if (ih < 0 || ih >= g.H) continue;
                    const float* src = row + oh * g.OW;
                    float* dst = dx + (std::size_t(c) * g.H + ih) * g.W + (kw - g.pl);
                    if (g.sw == 1)
                        for (int ow = sw.lo; ow < sw.hi; ++ow) dst[ow] += src[ow];
                    else
                        for (int ow = sw.lo; ow < sw.hi; ++ow) dst[ow * g.sw] += src[ow];
                }
            }
}

float sum_in_lanes(const float* x, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[i + l];
    for (int l = 0; i < n; ++i, ++l) acc[l] += x[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// ---------------------------------------------------------------------------------------------
// fast kernels

namespace {

// Whether each of the N images of `t` has at most a quarter of its entries non-zero.
bool at_most_a_quarter_nonzero(const Tensor& t, int N) {
    const std::size_t image = N > 0 ? t.size() / std::size_t(N) : 0;
    bool all = true;
#pragma omp parallel for schedule(static) reduction(&& : all)
    for (int n = 0; n < N; ++n) {
        const float* p = t.data() + std::size_t(n) * image;
        std::size_t nonzero = 0;
        for (std::size_t i = 0; i < image; ++i) nonzero += p[i] != 0.0f;
        all = all && 4 * nonzero <= image;
    }
    return all;
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Conv2dSpec& spec, Conv2dLowering lowering, Isa isa) {
    const Geometry g = conv2d_geometry(x, weight, spec);
    check_bias(bias, g, weight.shape());
    const Conv2dPlan plan(g, weight.data(), lowering, isa);
    Tensor out = Tensor::uninitialised(
        {std::size_t(g.N), std::size_t(g.OC), std::size_t(g.OH), std::size_t(g.OW)});
    const int P = g.P(), row = plan.row();
    const std::size_t x_image = std::size_t(g.C) * g.H * g.W, out_image = std::size_t(g.OC) * P;
    const float* b = bias.empty() ? nullptr : bias.data();
    // GEMMs per image, images spread over threads, each BLAS call single-threaded. Measured
    // on 2 cores at the tutorial shapes (conv1 [32,1,28,28]*[64,1,2,2] | conv2
    // [32,64,14,14]*[32,64,2,2]), with im2col: this 0.52 | 2.36 ms; images in turn with a
    // 2-thread GEMM each 1.06 | 3.40 ms; one GEMM over the whole batch plus the [OC,N,P] ->
    // [N,OC,P] transpose it needs 0.79 | 2.66 ms; a direct loop (no cols, stride-1 inner loop
    // vectorised) 0.93 | 15.7 ms. So even conv1, whose K = C*KH*KW is only 4, keeps im2col: its
    // cost is writing the 6.4 MB output, which GEMM does once, while the direct loop revisits
    // each plane per tap. (conv2 now runs shifted: conv2d_lowering.hpp.)
#pragma omp parallel
    {
        const auto scratch = scratch_floats(plan.scratch_size());
        const auto wide = scratch_floats(row == g.OW ? 0 : plan.image_size());  // shifted: [OC, OH, WP]
#pragma omp for schedule(static)
        for (int n = 0; n < g.N; ++n) {
            float* on = out.data() + n * out_image;
            float* conv = row == g.OW ? on : wide.get();
            plan.forward_image(x.data() + n * x_image, conv, scratch.get());
            for (int oc = 0; oc < g.OC; ++oc)
                for (int oh = 0; oh < g.OH; ++oh) {
                    const float* src = conv + (std::size_t(oc) * g.OH + oh) * row;
                    float* dst = on + (std::size_t(oc) * g.OH + oh) * g.OW;
                    if (b)
                        for (int ow = 0; ow < g.OW; ++ow) dst[ow] = src[ow] + b[oc];
                    else if (src != dst)
                        std::copy(src, src + g.OW, dst);
                }
        }
    }
    return out;
}

void conv2d_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                     const Conv2dSpec& spec, Tensor* dx, Tensor* dweight, Tensor* dbias,
                     Conv2dLowering lowering, Isa isa) {
    const Geometry g = conv2d_geometry(x, weight, spec);
    const Shape out_shape = conv2d_output_shape(x.shape(), weight.shape(), spec);
    if (dout.shape() != out_shape)
        throw ShapeError("conv2d backward: dout " + to_string(dout.shape()) + " must be " +
                         to_string(out_shape) + " for input " + to_string(x.shape()) +
                         " and weight " + to_string(weight.shape()));
    check_conv_grads("conv2d backward", x, weight, dx, dweight, dbias);
    // At most a quarter of every image's dout non-zero (behind a 2x2 max-pool): the Winograd
    // lowering's sparse gradient (Conv2dPlan::sparse_gradient), which a fused block takes too.
    const Conv2dLowering chosen = lowering == Conv2dLowering::automatic ? conv2d_lowering(g) : lowering;
    const bool sparse = chosen == Conv2dLowering::winograd && at_most_a_quarter_nonzero(dout, g.N);
    const Conv2dPlan plan(g, weight.data(), lowering, isa, sparse);
    const int P = g.P(), row = plan.row();
    const std::size_t x_image = std::size_t(g.C) * g.H * g.W, out_image = std::size_t(g.OC) * P;

    // Per chunk of images, each image's share into the chunk's partials (dx_n is disjoint per
    // image); then the partials in chunk order.
    Conv2dPartials partials(plan, dweight != nullptr, dbias != nullptr);
#pragma omp parallel
    {
        const auto scratch = scratch_floats(plan.scratch_size());
        // shifted: dout_n widened to [OC, OH, WP], its junk columns zero
        std::vector<float> wide(row == g.OW ? 0 : plan.image_size(), 0.0f);
#pragma omp for schedule(static)
        for (int chunk = 0; chunk < partials.chunks; ++chunk) {
            const int n0 = partials.first_image(chunk), n1 = partials.first_image(chunk + 1);
            for (int n = n0; n < n1; ++n) {
                const float* dn = dout.data() + n * out_image;
                if (!wide.empty())
                    for (int r = 0; r < g.OC * g.OH; ++r)
                        std::copy(dn + std::size_t(r) * g.OW, dn + std::size_t(r + 1) * g.OW,
                                  wide.data() + std::size_t(r) * row);
                plan.backward_image(wide.empty() ? dn : wide.data(), x.data() + n * x_image, n == n0,
                                    partials.weight_of(chunk), partials.bias_of(chunk),
                                    dx ? dx->data() + n * x_image : nullptr, scratch.get());
            }
        }
        partials.add_to(dweight, dbias);
    }
}

Tensor conv2d_forward_naive(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Conv2dSpec& spec) {
    const Geometry g = conv2d_geometry(x, weight, spec);
    check_bias(bias, g, weight.shape());
    Tensor out({std::size_t(g.N), std::size_t(g.OC), std::size_t(g.OH), std::size_t(g.OW)});
    for (int n = 0; n < g.N; ++n)
        for (int oc = 0; oc < g.OC; ++oc)
            for (int oh = 0; oh < g.OH; ++oh)
                for (int ow = 0; ow < g.OW; ++ow) {
                    double acc = bias.empty() ? 0.0 : bias[std::size_t(oc)];
                    for (int c = 0; c < g.C; ++c)
                        for (int kh = 0; kh < g.KH; ++kh)
                            for (int kw = 0; kw < g.KW; ++kw) {
                                const int ih = oh * g.sh + kh - g.pt, iw = ow * g.sw + kw - g.pl;
                                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                acc += double(x.at({std::size_t(n), std::size_t(c), std::size_t(ih),
                                                    std::size_t(iw)})) *
                                       weight.at({std::size_t(oc), std::size_t(c), std::size_t(kh),
                                                  std::size_t(kw)});
                            }
                    out.at({std::size_t(n), std::size_t(oc), std::size_t(oh), std::size_t(ow)}) =
                        float(acc);
                }
    return out;
}

void conv2d_backward_naive(const Tensor& dout, const Tensor& x, const Tensor& weight,
                           const Conv2dSpec& spec, Tensor* dx, Tensor* dweight, Tensor* dbias) {
    const Geometry g = conv2d_geometry(x, weight, spec);
    const Shape out_shape = conv2d_output_shape(x.shape(), weight.shape(), spec);
    if (dout.shape() != out_shape)
        throw ShapeError("conv2d backward: dout " + to_string(dout.shape()) + " must be " +
                         to_string(out_shape));
    check_conv_grads("conv2d backward", x, weight, dx, dweight, dbias);
    std::vector<double> gx(dx ? x.size() : 0), gw(dweight ? weight.size() : 0),
        gb(std::size_t(g.OC));
    for (int n = 0; n < g.N; ++n)
        for (int oc = 0; oc < g.OC; ++oc)
            for (int oh = 0; oh < g.OH; ++oh)
                for (int ow = 0; ow < g.OW; ++ow) {
                    const double d = dout[((std::size_t(n) * g.OC + oc) * g.OH + oh) * g.OW + ow];
                    gb[std::size_t(oc)] += d;
                    for (int c = 0; c < g.C; ++c)
                        for (int kh = 0; kh < g.KH; ++kh)
                            for (int kw = 0; kw < g.KW; ++kw) {
                                const int ih = oh * g.sh + kh - g.pt, iw = ow * g.sw + kw - g.pl;
                                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                const std::size_t xi =
                                    ((std::size_t(n) * g.C + c) * g.H + ih) * g.W + iw;
                                const std::size_t wi =
                                    ((std::size_t(oc) * g.C + c) * g.KH + kh) * g.KW + kw;
                                if (dx) gx[xi] += d * weight[wi];
                                if (dweight) gw[wi] += d * x[xi];
                            }
                }
    if (dx)
        for (std::size_t i = 0; i < gx.size(); ++i) (*dx)[i] += float(gx[i]);
    if (dweight)
        for (std::size_t i = 0; i < gw.size(); ++i) (*dweight)[i] += float(gw[i]);
    if (dbias)
        for (std::size_t i = 0; i < gb.size(); ++i) (*dbias)[i] += float(gb[i]);
}

}  // namespace semigrad
