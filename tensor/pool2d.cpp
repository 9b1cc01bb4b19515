// max_pool2d: forward (max of each window, remembering where it was) and backward (each output
// gradient routed to that place), plus the direct reference. Not average pooling.
//
// Letters: N batch, C channels, H W input size, OH OW output size, PH PW pool size.
//   x [N,C,H,W] -> out [N,C,OH,OW],  OH = (H + pad_top + pad_bottom - PH) / stride_h + 1
//   argmax [N*C*OH*OW]: flat index into x of the element each output copied.
// Padding is skipped rather than filled, so a padded position never wins (TensorFlow's -inf
// padding); ties keep the first maximum in row-major order of the window (strict >), as
// tf.nn.max_pool_with_argmax does on CPU.
//
// Threads: one (n, c) plane per iteration. A window never leaves its plane, so both the forward
// writes and the backward scatter (which may hit one dx element from overlapping windows) stay
// inside the plane their iteration owns: no atomics, and the order of the += is fixed.
#include "tensor/pool2d.hpp"

#include <utility>

#include <algorithm>
#include <string>
#include <utility>

#include "tensor/error.hpp"

namespace semigrad {

Shape max_pool2d_output_shape(const Shape& x, const Pool2dSpec& spec) {
    if (spec.pool_h < 1 || spec.pool_w < 1 || spec.stride_h < 1 || spec.stride_w < 1)
        throw ValueError("max_pool2d: pool size and strides must be >= 1, got pool " +
                         std::to_string(spec.pool_h) + "x" + std::to_string(spec.pool_w) +
                         ", stride " + std::to_string(spec.stride_h) + "x" +
                         std::to_string(spec.stride_w));
    const Pad2d& p = spec.pad;
    // A pad as large as the window would allow a window of padding only, which has no max.
    if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0 || p.top >= spec.pool_h ||
        p.bottom >= spec.pool_h || p.left >= spec.pool_w || p.right >= spec.pool_w)
        throw ValueError("max_pool2d: padding must be in [0, pool size), got top " +
                         std::to_string(p.top) + " bottom " + std::to_string(p.bottom) + " left " +
                         std::to_string(p.left) + " right " + std::to_string(p.right) +
                         " for pool " + std::to_string(spec.pool_h) + "x" +
                         std::to_string(spec.pool_w));
    if (x.size() != 4 || x[2] == 0 || x[3] == 0)
        throw ShapeError("max_pool2d: input " + to_string(x) + " must be [N,C,H,W] with H, W >= 1");
    const long HP = long(x[2]) + p.top + p.bottom, WP = long(x[3]) + p.left + p.right;
    if (spec.pool_h > HP || spec.pool_w > WP)
        throw ShapeError("max_pool2d: pool " + std::to_string(spec.pool_h) + "x" +
                         std::to_string(spec.pool_w) + " does not fit the padded input " +
                         to_string(x) + " (padded " + std::to_string(HP) + "x" +
                         std::to_string(WP) + ")");
    return {x[0], x[1], std::size_t((HP - spec.pool_h) / spec.stride_h + 1),
            std::size_t((WP - spec.pool_w) / spec.stride_w + 1)};
}

Tensor max_pool2d_forward(const Tensor& x, const Pool2dSpec& spec,
                          std::vector<std::int64_t>& argmax) {
    const Shape out_shape = max_pool2d_output_shape(x.shape(), spec);
    Tensor out(out_shape);
    argmax.resize(out.size());
    const int H = int(x.dim(2)), W = int(x.dim(3)), OH = int(out_shape[2]), OW = int(out_shape[3]);
    const long planes = long(out_shape[0] * out_shape[1]);
#pragma omp parallel for schedule(static)
    for (long plane = 0; plane < planes; ++plane) {
        const std::int64_t base = std::int64_t(plane) * H * W;
        const float* xp = x.data() + base;
        float* op = out.data() + plane * OH * OW;
        std::int64_t* ap = argmax.data() + plane * OH * OW;
        for (int oh = 0; oh < OH; ++oh) {
            // The window clipped to the image: padding only ever shrinks it.
            const int h0 = std::max(oh * spec.stride_h - spec.pad.top, 0);
            const int h1 = std::min(oh * spec.stride_h - spec.pad.top + spec.pool_h, H);
            for (int ow = 0; ow < OW; ++ow) {
                const int w0 = std::max(ow * spec.stride_w - spec.pad.left, 0);
                const int w1 = std::min(ow * spec.stride_w - spec.pad.left + spec.pool_w, W);
                int best = h0 * W + w0;
                for (int ih = h0; ih < h1; ++ih)
                    for (int iw = w0; iw < w1; ++iw)
                        if (xp[ih * W + iw] > xp[best]) best = ih * W + iw;
                op[oh * OW + ow] = xp[best];
                ap[oh * OW + ow] = base + best;
            }
        }
    }
    return out;
}

void max_pool2d_backward(const Tensor& dout, const std::vector<std::int64_t>& argmax, Tensor& dx) {
    check_rank("max_pool2d backward", "dout", dout, 4);
    check_rank("max_pool2d backward", "dx", dx, 4);
    if (dout.dim(0) != dx.dim(0) || dout.dim(1) != dx.dim(1) || argmax.size() != dout.size())
        throw ShapeError("max_pool2d backward: dout " + to_string(dout.shape()) + " with " +
                         std::to_string(argmax.size()) + " argmax entries does not fit dx " +
                         to_string(dx.shape()));
    const std::int64_t in_plane = std::int64_t(dx.dim(2) * dx.dim(3));
    const long out_plane = long(dout.dim(2) * dout.dim(3));
    const long planes = long(dout.dim(0) * dout.dim(1));
    // Checked up front, because an index outside its plane would be a race in the loop below.
    for (long i = 0; i < long(argmax.size()); ++i) {
        const std::int64_t lo = (i / out_plane) * in_plane;
        if (argmax[std::size_t(i)] < lo || argmax[std::size_t(i)] >= lo + in_plane)
            throw ValueError("max_pool2d backward: argmax[" + std::to_string(i) + "] = " +
                             std::to_string(argmax[std::size_t(i)]) +
                             " is outside its plane of dx " + to_string(dx.shape()));
    }
    const float* d = dout.data();
    float* g = dx.data();
#pragma omp parallel for schedule(static)
    for (long plane = 0; plane < planes; ++plane)
        for (long i = plane * out_plane; i < (plane + 1) * out_plane; ++i)
            g[argmax[std::size_t(i)]] += d[i];
}

namespace {

// The input element (h, w) of window (oh, ow) holding the window's first maximum in row-major
// order; padded positions never win. {-1, -1} for a window entirely in the padding.
std::pair<long, long> window_argmax(const Tensor& x, std::size_t n, std::size_t c, std::size_t oh,
                                    std::size_t ow, const Pool2dSpec& spec) {
    std::pair<long, long> at{-1, -1};
    float best = 0.0f;
    for (int ph = 0; ph < spec.pool_h; ++ph)
        for (int pw = 0; pw < spec.pool_w; ++pw) {
            const long ih = long(oh) * spec.stride_h + ph - spec.pad.top;
            const long iw = long(ow) * spec.stride_w + pw - spec.pad.left;
            if (ih < 0 || ih >= long(x.dim(2)) || iw < 0 || iw >= long(x.dim(3))) continue;
            const float v = x.at({n, c, std::size_t(ih), std::size_t(iw)});
            if (at.first < 0 || v > best) best = v, at = {ih, iw};
        }
    return at;
}

}  // namespace

Tensor max_pool2d_forward_naive(const Tensor& x, const Pool2dSpec& spec) {
    const Shape out_shape = max_pool2d_output_shape(x.shape(), spec);
    Tensor out(out_shape);
    for (std::size_t n = 0; n < out_shape[0]; ++n)
        for (std::size_t c = 0; c < out_shape[1]; ++c)
            for (std::size_t oh = 0; oh < out_shape[2]; ++oh)
                for (std::size_t ow = 0; ow < out_shape[3]; ++ow) {
                    const auto [h, w] = window_argmax(x, n, c, oh, ow, spec);
                    out.at({n, c, oh, ow}) = h < 0 ? 0.0f : x.at({n, c, std::size_t(h), std::size_t(w)});
                }
    return out;
}

Tensor max_pool2d_backward_naive(const Tensor& x, const Pool2dSpec& spec, const Tensor& dout) {
    const Shape out_shape = max_pool2d_output_shape(x.shape(), spec);
    if (dout.shape() != out_shape)
        throw ShapeError("max_pool2d backward (naive): dout " + to_string(dout.shape()) + ", expected " +
                         to_string(out_shape) + " for x " + to_string(x.shape()));
    Tensor dx(x.shape());
    for (std::size_t n = 0; n < out_shape[0]; ++n)
        for (std::size_t c = 0; c < out_shape[1]; ++c)
            for (std::size_t oh = 0; oh < out_shape[2]; ++oh)
                for (std::size_t ow = 0; ow < out_shape[3]; ++ow) {
                    const auto [h, w] = window_argmax(x, n, c, oh, ow, spec);
                    if (h >= 0) dx.at({n, c, std::size_t(h), std::size_t(w)}) += dout.at({n, c, oh, ow});
                }
    return dx;
}

}  // namespace semigrad
