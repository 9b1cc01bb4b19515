// conv_block: Conv2D(relu) -> MaxPool2D -> Dropout as one kernel pair (see conv_block.hpp), and
// the four-layer reference it is tested against.
//
// Per image, the forward runs the conv's lowering (conv2d_lowering.hpp: im2col, or shifted GEMMs
// over the padded input) into a scratch plane set [OC, CH, row] that stays in cache, then one
// epilogue pass adds the bias, finds each window's maximum, applies ReLU and the dropout
// decision, and writes the output and its record byte. The backward turns one image's record
// and dout back into the conv's gradient dconv (zero except at each passing window's winner, and
// in the lowering's junk columns), and then runs the lowering's backward for that image.
//
// Letters as in conv2d.hpp; CH CW: the conv output's height and width (the pool's input), `row`
// its row stride in the scratch planes (CW, or wider for the shifted lowering); OH OW: the
// block's output.
//
// Threads: as conv2d.cpp: images over threads, each BLAS call single-threaded, dweight and dbias
// summed per fixed chunk of images and the chunks added in order; the dropout decision is a pure
// function of (key, global element index). Bit-identical for any thread count; and, since each
// image's arithmetic is the unfused kernels' own (same GEMMs, same additions in the same order),
// the same bits as the four layers run one after another.
#include "tensor/conv_block.hpp"

#include <algorithm>
#include <string>

#include "tensor/conv2d_lowering.hpp"
#include "tensor/conv_block_kernels.hpp"
#include "tensor/dropout.hpp"
#include "tensor/error.hpp"
#include "tensor/memory.hpp"
#include "tensor/small_gemm.hpp"

namespace semigrad {

namespace {

// Sizes of one block: the conv's geometry, the pool over its output, and the dropout.
struct Block {
    Conv2dGeometry g;  // g.OH, g.OW are the conv output's CH, CW
    Pool2dSpec pool;
    int OH, OW;
    float rate, scale;
    std::uint32_t threshold;  // dropout_threshold(rate)
    std::uint64_t key;
    std::size_t sample_offset;
    int row = 0;  // the conv output's row stride as the lowering writes it (Conv2dPlan::row)
    std::size_t conv_plane() const { return std::size_t(g.OH) * row; }
    std::size_t out_image() const { return std::size_t(g.OC) * OH * OW; }
};

Block block_of(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvBlockSpec& spec) {
    const Shape out = conv_block_output_shape(x.shape(), weight.shape(), bias, spec);
    return {conv2d_geometry(x, weight, spec.conv), spec.pool, int(out[2]), int(out[3]), spec.rate,
            dropout_scale(spec.rate), dropout_threshold(spec.rate), spec.dropout_key,
            spec.sample_offset};
}

// One image's epilogue, for any pool: conv [OC, CP] (before the bias) -> out [OC, OH*OW] and its
// record. The window is clipped to the conv output (padded places never win, as in pool2d.cpp);
// the comparison is on conv + bias, the values the unfused chain's pool compares. (Without a
// bias, adding 0.0f changes only a -0 into +0, which neither wins a comparison nor passes ReLU.)
void pool_relu_dropout(const float* conv, const float* bias, const Block& b, int n, float* out,
                       std::uint8_t* record) {
    const int CH = b.g.OH, CW = b.g.OW, row = b.row;
    const Pool2dSpec& p = b.pool;
    const std::uint64_t first = std::uint64_t(b.sample_offset + std::size_t(n)) * b.out_image();
    for (int oc = 0; oc < b.g.OC; ++oc) {
        const float* plane = conv + std::size_t(oc) * b.conv_plane();
        const float bo = bias ? bias[oc] : 0.0f;
        for (int oh = 0; oh < b.OH; ++oh) {
            const int top = oh * p.stride_h - p.pad.top;
            const int h0 = std::max(top, 0), h1 = std::min(top + p.pool_h, CH);
            for (int ow = 0; ow < b.OW; ++ow) {
                const int left = ow * p.stride_w - p.pad.left;
                const int w0 = std::max(left, 0), w1 = std::min(left + p.pool_w, CW);
                int best_h = h0, best_w = w0;
                float best = plane[h0 * row + w0] + bo;
                for (int ih = h0; ih < h1; ++ih)
                    for (int iw = w0; iw < w1; ++iw)
                        if (plane[ih * row + iw] + bo > best)
                            best = plane[ih * row + iw] + bo, best_h = ih, best_w = iw;
                const std::size_t o = (std::size_t(oc) * b.OH + oh) * b.OW + ow;
                const bool kept = b.rate == 0.0f || dropout_keeps(b.key, first + o, b.threshold);
                const bool passes = kept && best > 0.0f;
                out[o] = passes ? best * b.scale : 0.0f;
                record[o] = std::uint8_t((best_h - top) * p.pool_w + (best_w - left)) |
                            (passes ? kConvBlockPasses : 0);
            }
        }
    }
}

// The adjoint of the epilogue for one image: dconv [OC, CP] = dout * scale at each passing
// output's winner, 0 elsewhere (+= because overlapping windows may share a winner).
void unpool(const float* dout, const std::uint8_t* record, const Block& b, float* dconv) {
    const int row = b.row;
    const Pool2dSpec& p = b.pool;
    std::fill(dconv, dconv + std::size_t(b.g.OC) * b.conv_plane(), 0.0f);
    for (int oc = 0; oc < b.g.OC; ++oc) {
        float* plane = dconv + std::size_t(oc) * b.conv_plane();
        for (int oh = 0; oh < b.OH; ++oh)
            for (int ow = 0; ow < b.OW; ++ow) {
                const std::size_t o = (std::size_t(oc) * b.OH + oh) * b.OW + ow;
                if (!(record[o] & kConvBlockPasses)) continue;
                const int place = record[o] & ~kConvBlockPasses;
                const int ih = oh * p.stride_h - p.pad.top + place / p.pool_w;
                const int iw = ow * p.stride_w - p.pad.left + place % p.pool_w;
                plane[ih * row + iw] += dout[o] * b.scale;
            }
    }
}

// Whether every image's dconv, which unpool rebuilds, is at most a quarter non-zero: the
// unfused conv2d_backward's test for the Winograd lowering's sparse gradient, made on the same
// values. (Behind a 2x2 pool at stride 2 it always is: one winner a window. Other pools may
// share winners or cover more.)
bool unpooled_at_most_a_quarter_nonzero(const Tensor& dout, const ConvBlockRecord& record,
                                        const Block& b) {
    bool all = true;
#pragma omp parallel reduction(&& : all)
    {
        std::vector<float> dconv(std::size_t(b.g.OC) * b.conv_plane());
#pragma omp for schedule(static)
        for (int n = 0; n < b.g.N; ++n) {
            unpool(dout.data() + n * b.out_image(), record.data() + n * b.out_image(), b, dconv.data());
            std::size_t nonzero = 0;
            for (const float v : dconv) nonzero += v != 0.0f;
            all = all && 4 * nonzero <= dconv.size();
        }
    }
    return all;
}

// ---------------------------------------------------------------------------------------------
// the common case: a 2x2 pool, stride 2, no padding, row by row through the per-ISA kernels

namespace k = conv_block_kernels;

// Image n's outputs as the kernels take them: its out and record planes, its dropout hash indices.
k::PoolOutput outputs_of(const Block& b, int n, float* out, std::uint8_t* record) {
    return {b.rate > 0.0f, b.key, std::uint64_t(b.sample_offset + std::size_t(n)) * b.out_image(),
            b.threshold, b.scale, out, record};
}

bool is_pool2x2(const Pool2dSpec& p) {
    return p.pool_h == 2 && p.pool_w == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad.top == 0 &&
           p.pad.bottom == 0 && p.pad.left == 0 && p.pad.right == 0;
}

void pool2x2_image(const float* conv, const float* bias, const Block& b, const k::PoolOutput& to,
                   Isa isa) {
    const auto pool_row = k::row_kernels(isa).pool;
    const int row = b.row;
    for (int oc = 0; oc < b.g.OC; ++oc)
        for (int oh = 0; oh < b.OH; ++oh) {
            const std::size_t o = (std::size_t(oc) * b.OH + oh) * b.OW;
            const float* r0 = conv + std::size_t(oc) * b.conv_plane() + std::size_t(2 * oh) * row;
            pool_row({r0, r0 + row, bias ? bias[oc] : 0.0f, b.OW, to.from(o)});
        }
}

// unpool for the 2x2 case: the row kernels write every covered place; an odd last row or
// column of the conv output, which no window covers, and the lowering's junk columns get their
// zeros here.
void unpool2x2_image(const float* dout, const std::uint8_t* record, const Block& b, float* dconv,
                     Isa isa) {
    const auto unpool_row = k::row_kernels(isa).unpool;
    const int CH = b.g.OH, row = b.row;
    for (int oc = 0; oc < b.g.OC; ++oc) {
        float* plane = dconv + std::size_t(oc) * b.conv_plane();
        for (int oh = 0; oh < b.OH; ++oh) {
            const std::size_t o = (std::size_t(oc) * b.OH + oh) * b.OW;
            float* d0 = plane + std::size_t(2 * oh) * row;
            unpool_row({dout + o, record + o, b.scale, b.OW, d0, d0 + row});
            std::fill(d0 + 2 * b.OW, d0 + row, 0.0f);
            std::fill(d0 + row + 2 * b.OW, d0 + 2 * row, 0.0f);
        }
        std::fill(plane + std::size_t(2 * b.OH) * row, plane + std::size_t(CH) * row, 0.0f);
    }
}

// The fused first conv (conv_block_kernels.hpp, ConvPool): one input channel, a 2x2 kernel at
// stride 1, a 2x2 pool.
bool is_conv_pool(const Block& b) {
    return b.g.C == 1 && b.g.KH == 2 && b.g.KW == 2 && b.g.sh == 1 && b.g.sw == 1 &&
           is_pool2x2(b.pool);
}
int conv_pool_pitch(const Block& b) { return (b.OW + 15) / 16 * 16 + 16; }

// x_n [1, H, W] placed at (pt, pl) in zeros, rows 0..2*OH, split into even [rows, pitch] and odd
// [rows, pitch] columns.
void split_padded_image(const float* x_n, const Block& b, int pitch, float* even, float* odd) {
    const Conv2dGeometry& g = b.g;
    for (int r = 0; r <= 2 * b.OH; ++r) {
        float* e = even + std::size_t(r) * pitch;
        float* o = odd + std::size_t(r) * pitch;
        std::fill(e, e + pitch, 0.0f);
        std::fill(o, o + pitch, 0.0f);
        const int h = r - g.pt;
        if (h < 0 || h >= g.H) continue;
        for (int w = 0; w < g.W; ++w) {
            const int q = w + g.pl;
            if (q < 2 * pitch) ((q & 1) ? o : e)[q / 2] = x_n[std::size_t(h) * g.W + w];
        }
    }
}

// One image's weight and bias gradients from its column sums (ConvPoolGrad) into the chunk's
// partials, [OC, 4] and [OC]: each (oc, k) folded over the conv's CW columns as small_gemm's nt
// folds its own column sums (small_gemm's fold, into `totals` [OC, 5]), so the unfused conv's
// bits (= with `first`, as nt's accumulate = false).
void fold_conv_pool_sums(const float* sums, const Block& b, bool first, float* pweight,
                         float* pbias, float* totals, Isa isa) {
    small_gemm::kernels(isa).fold(b.g.OC * 5, b.g.OW, sums, k::ConvPoolGrad::row(b.OW), totals);
    for (int oc = 0; oc < b.g.OC; ++oc) {
        const float* total = totals + std::size_t(oc) * 5;
        if (pweight)
            for (int t = 0; t < 4; ++t) {
                float& w = pweight[std::size_t(oc) * 4 + t];
                w = first ? total[t] : w + total[t];
            }
        if (pbias) pbias[oc] += total[4];
    }
}

}  // namespace

Shape conv_block_output_shape(const Shape& x, const Shape& weight, const Tensor& bias,
                              const ConvBlockSpec& spec) {
    const Shape conv = conv2d_output_shape(x, weight, spec.conv);
    if (!bias.empty() && (bias.ndim() != 1 || bias.dim(0) != weight[0]))
        throw ShapeError("conv_block: bias " + to_string(bias.shape()) + " must be empty or [" +
                         std::to_string(weight[0]) + "] for weight " + to_string(weight));
    if (spec.pool.pool_h * spec.pool.pool_w > kConvBlockMaxWindow)
        throw ValueError("conv_block: pool window " + std::to_string(spec.pool.pool_h) + "x" +
                         std::to_string(spec.pool.pool_w) + " has more than " +
                         std::to_string(kConvBlockMaxWindow) + " elements");
    dropout_scale(spec.rate);  // throws for a rate outside [0, 1)
    return max_pool2d_output_shape(conv, spec.pool);
}

// ---------------------------------------------------------------------------------------------
// fast kernels

Tensor conv_block_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const ConvBlockSpec& spec, ConvBlockRecord* record, Isa isa) {
    Block b = block_of(x, weight, bias, spec);
    const Conv2dGeometry& g = b.g;
    const Conv2dPlan plan(g, weight.data(), Conv2dLowering::automatic, isa);
    b.row = plan.row();
    Tensor out = Tensor::uninitialised(
        {std::size_t(g.N), std::size_t(g.OC), std::size_t(b.OH), std::size_t(b.OW)});
    const bool pool2x2 = is_pool2x2(b.pool);
    // Without a caller's record (evaluation) the 2x2 kernels write none; the general epilogue
    // writes one that nobody keeps.
    ConvBlockRecord unkept;
    if (record) record->resize(out.size());
    else if (!pool2x2) unkept.resize(out.size());
    std::uint8_t* records = record ? record->data() : pool2x2 ? nullptr : unkept.data();
    const std::size_t x_image = std::size_t(g.C) * g.H * g.W;
    const float* pb = bias.empty() ? nullptr : bias.data();
    const auto outputs = [&](int n) {
        return outputs_of(b, n, out.data() + n * b.out_image(),
                          records ? records + n * b.out_image() : nullptr);
    };
    if (is_conv_pool(b)) {
        // The conv's output is never stored: each image's windows come from its split rows.
        const int pitch = conv_pool_pitch(b);
        const std::size_t split = std::size_t(2 * b.OH + 1) * pitch;
        const auto conv_pool = k::row_kernels(isa).conv_pool;
#pragma omp parallel
        {
            const auto halves = scratch_floats(2 * split);
#pragma omp for schedule(static)
            for (int n = 0; n < g.N; ++n) {
                split_padded_image(x.data() + n * x_image, b, pitch, halves.get(),
                                   halves.get() + split);
                conv_pool({halves.get(), halves.get() + split, pitch, weight.data(), pb, g.OC,
                           b.OH, b.OW, outputs(n)});
            }
        }
        return out;
    }
    if (pool2x2 && plan.lowering() == Conv2dLowering::winograd) {
        // Each window is one of the conv's 2x2 tiles: the pool reads the Winograd products.
        const auto pool_tiles = k::row_kernels(isa).pool_tiles;
        const winograd::Tiling t = plan.tiles();
#pragma omp parallel
        {
            const auto scratch = scratch_floats(plan.scratch_size());
#pragma omp for schedule(static)
            for (int n = 0; n < g.N; ++n) {
                const float* m = plan.forward_products(x.data() + n * x_image, scratch.get());
                pool_tiles({m, winograd::point_stride(g.OC, t), t.tiles(), t.TW, pb, g.OC, b.OH,
                            b.OW, outputs(n)});
            }
        }
        return out;
    }
#pragma omp parallel
    {
        const auto scratch = scratch_floats(plan.scratch_size()), conv = scratch_floats(plan.image_size());
#pragma omp for schedule(static)
        for (int n = 0; n < g.N; ++n) {
            plan.forward_image(x.data() + n * x_image, conv.get(), scratch.get());
            if (pool2x2)
                pool2x2_image(conv.get(), pb, b, outputs(n), isa);
            else
                pool_relu_dropout(conv.get(), pb, b, n, out.data() + n * b.out_image(),
                                  records + n * b.out_image());
        }
    }
    return out;
}

void conv_block_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                         const ConvBlockSpec& spec, const ConvBlockRecord& record,
                         Tensor* dx, Tensor* dweight, Tensor* dbias, Isa isa, bool write_dx) {
    Block b = block_of(x, weight, Tensor(), spec);
    const Conv2dGeometry& g = b.g;
    const Shape out_shape{std::size_t(g.N), std::size_t(g.OC), std::size_t(b.OH), std::size_t(b.OW)};
    if (dout.shape() != out_shape || record.size() != dout.size())
        throw ShapeError("conv_block backward: dout " + to_string(dout.shape()) + " with " +
                         std::to_string(record.size()) + " record bytes must be " +
                         to_string(out_shape) + " for input " + to_string(x.shape()) +
                         " and weight " + to_string(weight.shape()));
    check_conv_grads("conv_block backward", x, weight, dx, dweight, dbias);
    // A Winograd conv takes the sparse gradient (Conv2dPlan::sparse_gradient) when the unfused
    // conv2d_backward would, on the same dconv.
    const bool pool2x2 = is_pool2x2(b.pool);
    bool sparse_gradient = false;
    if (conv2d_lowering(g) == Conv2dLowering::winograd) {
        b.row = g.OW;  // the Winograd lowering's
        sparse_gradient = pool2x2 || unpooled_at_most_a_quarter_nonzero(dout, record, b);
    }
    const Conv2dPlan plan(g, weight.data(), Conv2dLowering::automatic, isa, sparse_gradient);
    b.row = plan.row();
    const std::size_t x_image = std::size_t(g.C) * g.H * g.W;
    // As conv2d_backward, image by image into fixed chunks' partials, once dconv is rebuilt.
    Conv2dPartials partials(plan, dweight != nullptr, dbias != nullptr);
    // The fused first conv takes dweight and dbias from dout and the record alone, a quarter of
    // the products and no dconv plane (ConvPoolGrad); dconv is then rebuilt only for dx.
    const bool sparse = is_conv_pool(b) && (dweight || dbias);
    const int pitch = conv_pool_pitch(b);
    const std::size_t split = std::size_t(2 * b.OH + 1) * pitch;
    const std::size_t sums_size = sparse ? std::size_t(g.OC) * 5 * k::ConvPoolGrad::row(b.OW) : 0;
    const auto grad = k::row_kernels(isa).conv_pool_grad;
#pragma omp parallel
    {
        const auto scratch = scratch_floats(plan.scratch_size()), dconv = scratch_floats(plan.image_size());
        const auto halves = scratch_floats(sparse ? 2 * split : 0);
        const auto sums = scratch_floats(sparse ? sums_size + std::size_t(g.OC) * 5 : 0);  // and totals
        std::fill(sums.get(), sums.get() + sums_size, 0.0f);  // the columns no kernel writes
#pragma omp for schedule(static)
        for (int chunk = 0; chunk < partials.chunks; ++chunk) {
            const int n0 = partials.first_image(chunk), n1 = partials.first_image(chunk + 1);
            for (int n = n0; n < n1; ++n) {
                const float* dn = dout.data() + n * b.out_image();
                const std::uint8_t* rn = record.data() + n * b.out_image();
                if (sparse) {
                    split_padded_image(x.data() + n * x_image, b, pitch, halves.get(),
                                       halves.get() + split);
                    grad({halves.get(), halves.get() + split, pitch, dn, rn, b.scale, g.OC, b.OH,
                          b.OW, sums.get()});
                    fold_conv_pool_sums(sums.get(), b, n == n0, partials.weight_of(chunk),
                                        partials.bias_of(chunk), sums.get() + sums_size, isa);
                    if (!dx) continue;
                }
                if (pool2x2)
                    unpool2x2_image(dn, rn, b, dconv.get(), isa);
                else
                    unpool(dn, rn, b, dconv.get());
                plan.backward_image(dconv.get(), x.data() + n * x_image, n == n0,
                                    sparse ? nullptr : partials.weight_of(chunk),
                                    sparse ? nullptr : partials.bias_of(chunk),
                                    dx ? dx->data() + n * x_image : nullptr, scratch.get(),
                                    write_dx);
            }
        }
        partials.add_to(dweight, dbias);
    }
}

// ---------------------------------------------------------------------------------------------
// reference: the four layers one after another, every intermediate a tensor

namespace {

Tensor relu_of(const Tensor& t) {
    Tensor r = t;
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = r[i] > 0.0f ? r[i] : 0.0f;
    return r;
}

Tensor mask_of(const Shape& shape, const ConvBlockSpec& spec) {
    return spec.rate > 0.0f ? dropout_mask(shape, spec.rate, spec.dropout_key, spec.sample_offset)
                            : Tensor::ones(shape);
}

}  // namespace

Tensor conv_block_forward_reference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                    const ConvBlockSpec& spec) {
    conv_block_output_shape(x.shape(), weight.shape(), bias, spec);
    const Tensor pooled =
        max_pool2d_forward_naive(relu_of(conv2d_forward_naive(x, weight, bias, spec.conv)), spec.pool);
    const Tensor mask = mask_of(pooled.shape(), spec);
    Tensor out = pooled;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = pooled[i] * mask[i];
    return out;
}

void conv_block_backward_reference(const Tensor& dout, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const ConvBlockSpec& spec, Tensor* dx,
                                   Tensor* dweight, Tensor* dbias) {
    conv_block_output_shape(x.shape(), weight.shape(), bias, spec);
    const Tensor conv = conv2d_forward_naive(x, weight, bias, spec.conv);
    std::vector<std::int64_t> argmax;
    const Tensor pooled = max_pool2d_forward(relu_of(conv), spec.pool, argmax);
    check_same_shape("conv_block backward reference: dout vs output", dout, pooled);
    const Tensor mask = mask_of(pooled.shape(), spec);
    Tensor dpooled = dout;  // dropout: d * mask
    for (std::size_t i = 0; i < dpooled.size(); ++i) dpooled[i] *= mask[i];
    Tensor dconv(conv.shape());  // pool: scatter to the argmax; relu: pass where conv > 0
    max_pool2d_backward(dpooled, argmax, dconv);
    for (std::size_t i = 0; i < dconv.size(); ++i)
        if (!(conv[i] > 0.0f)) dconv[i] = 0.0f;
    conv2d_backward_naive(dconv, x, weight, spec.conv, dx, dweight, dbias);
}

}  // namespace semigrad
