// Benchmarks of the floor-1 kernels at the tutorial's shapes (batch 32): conv2d forward and
// backward (its four lowerings, conv2d_lowering.hpp, against the direct loops), the Winograd
// lowering's three per-image products (block_gemm against OpenBLAS), the Dense layer's products
// over a mostly-zero input (sparse_gemm against OpenBLAS) and max-pool forward/backward. Every fast
// kernel is first checked against its reference on the same inputs; a mismatch aborts before
// any timing. Counters: FLOP/s for convolutions (2 flops per multiply-add), bytes/s for pooling,
// both per wall-clock second (UseRealTime: the kernels run on every OpenMP thread).
//
//   conv1  x [32,1,28,28]  * w [64,1,2,2]   "same" (pad 0 before, 1 after) -> [32,64,28,28]
//   conv2  x [32,64,14,14] * w [32,64,2,2]  "same"                         -> [32,32,14,14]
//   pool   x [32,64,28,28], 2x2 stride 2                                   -> [32,64,14,14]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tensor/block_gemm.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/gemm.hpp"
#include "tensor/pool2d.hpp"
#include "tensor/random.hpp"
#include "tensor/simd.hpp"
#include "tensor/sparse_gemm.hpp"

using namespace semigrad;

namespace {

// How a convolution runs: the direct loops, or one of conv2d_lowering.hpp's lowerings.
enum Way { naive, lowered_im2col, lowered_loops, lowered_shifted, lowered_winograd };
Conv2dLowering lowering_of(Way way) {
    return way == lowered_winograd  ? Conv2dLowering::winograd
           : way == lowered_shifted ? Conv2dLowering::shifted
           : way == lowered_loops   ? Conv2dLowering::im2col_loops
                                    : Conv2dLowering::im2col;
}

void check_or_abort(const char* what, const Tensor& fast, const Tensor& naive, float tolerance) {
    const float diff = max_abs_diff(fast, naive);
    if (!(diff <= tolerance)) {
        std::fprintf(stderr,
                     "%s: fast and naive differ by %g (tolerance %g); first values %g vs %g\n",
                     what, double(diff), double(tolerance), double(fast[0]), double(naive[0]));
        std::abort();
    }
}

// One tutorial convolution with its inputs. The first layer's input needs no gradient, so its
// backward computes dweight and dbias only, as in training; the second also computes dx.
struct ConvCase {
    const char* name;
    Tensor x, weight, bias, dout;
    Conv2dSpec spec;
    bool needs_dx;

    ConvCase(const char* name_, const Shape& xs, const Shape& ws, bool needs_dx_)
        : name(name_), needs_dx(needs_dx_) {
        Rng rng(1);
        x = random_uniform(xs, rng), weight = random_uniform(ws, rng);
        bias = random_uniform({ws[0]}, rng);
        spec.pad = tf_padding(Padding::Same, int(xs[2]), int(xs[3]), int(ws[2]), int(ws[3]), 1, 1);
        dout = random_uniform(conv2d_output_shape(xs, ws, spec), rng);
    }
    // Multiply-adds of one GEMM-shaped pass: N * OC * OH * OW * C * KH * KW.
    double macs() const { return double(dout.size()) * double(weight.size() / weight.dim(0)); }
    Tensor forward(Way way) const {
        return way == naive ? conv2d_forward_naive(x, weight, bias, spec)
                            : conv2d_forward(x, weight, bias, spec, lowering_of(way));
    }
    void backward(Way way, Tensor& dx, Tensor& dweight, Tensor& dbias) const {
        if (way == naive)
            conv2d_backward_naive(dout, x, weight, spec, needs_dx ? &dx : nullptr, &dweight, &dbias);
        else
            conv2d_backward(dout, x, weight, spec, needs_dx ? &dx : nullptr, &dweight, &dbias,
                            lowering_of(way));
    }
    // Runs once per case, before its first timing.
    void verify() const {
        static std::vector<const ConvCase*> done;
        for (const ConvCase* c : done)
            if (c == this) return;
        done.push_back(this);
        const Tensor reference = forward(naive);
        Tensor rdx(x.shape()), rdw(weight.shape()), rdb(bias.shape());
        backward(naive, rdx, rdw, rdb);
        for (const Way way : {lowered_im2col, lowered_loops, lowered_shifted, lowered_winograd}) {
            check_or_abort(name, forward(way), reference, 1e-4f);
            Tensor dx(x.shape()), dw(weight.shape()), db(bias.shape());
            backward(way, dx, dw, db);
            // dweight and dbias sum N * OH * OW terms of size ~1 (up to 25088 for conv1).
            check_or_abort(name, dx, rdx, 1e-4f);
            check_or_abort(name, dw, rdw, 2e-2f);
            check_or_abort(name, db, rdb, 2e-2f);
        }
        std::fprintf(stderr, "%s: fast kernels match the naive ones\n", name);
    }
};

const ConvCase& conv_case(int which) {
    static const ConvCase conv1("conv1", {32, 1, 28, 28}, {64, 1, 2, 2}, false);
    static const ConvCase conv2("conv2", {32, 64, 14, 14}, {32, 64, 2, 2}, true);
    return which == 1 ? conv1 : conv2;
}

void BM_Conv2dForward(benchmark::State& state, int which, Way way) {
    const ConvCase& c = conv_case(which);
    c.verify();
    for (auto _ : state) {
        Tensor out = c.forward(way);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["FLOP/s"] =
        benchmark::Counter(2 * c.macs(), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Conv2dBackward(benchmark::State& state, int which, Way way) {
    const ConvCase& c = conv_case(which);
    c.verify();
    Tensor dx(c.x.shape()), dweight(c.weight.shape()), dbias(c.bias.shape());
    for (auto _ : state) {
        c.backward(way, dx, dweight, dbias);
        benchmark::DoNotOptimize(dweight.data());
    }
    // dweight is one GEMM-shaped pass, dx another (dbias is negligible).
    const double flops = 2 * c.macs() * (c.needs_dx ? 2 : 1);
    state.counters["FLOP/s"] =
        benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

struct PoolCase {
    Tensor x = Tensor({32, 64, 28, 28});
    Pool2dSpec spec;  // 2x2, stride 2, no padding (TF "same" pads nothing here)
    PoolCase() {
        Rng rng(2);
        x = random_uniform(x.shape(), rng);
        std::vector<std::int64_t> argmax;
        check_or_abort("max_pool2d", max_pool2d_forward(x, spec, argmax),
                       max_pool2d_forward_naive(x, spec), 0.0f);
        std::fprintf(stderr, "max_pool2d: fast kernel matches the naive one\n");
    }
};

const PoolCase& pool_case() {
    static const PoolCase pool;
    return pool;
}

void BM_MaxPool2dForward(benchmark::State& state, bool naive) {
    const PoolCase& p = pool_case();
    std::vector<std::int64_t> argmax;
    std::size_t out_size = 0;
    for (auto _ : state) {
        Tensor out =
            naive ? max_pool2d_forward_naive(p.x, p.spec) : max_pool2d_forward(p.x, p.spec, argmax);
        out_size = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    // Reads x, writes out (and argmax, for the fast kernel).
    const double bytes =
        4.0 * double(p.x.size() + out_size) + (naive ? 0.0 : 8.0 * double(out_size));
    state.SetBytesProcessed(std::int64_t(bytes * double(state.iterations())));
}

void BM_MaxPool2dBackward(benchmark::State& state) {
    const PoolCase& p = pool_case();
    std::vector<std::int64_t> argmax;
    const Tensor out = max_pool2d_forward(p.x, p.spec, argmax);
    const Tensor dout = Tensor::ones(out.shape());
    Tensor dx(p.x.shape());
    for (auto _ : state) {
        max_pool2d_backward(dout, argmax, dx);
        benchmark::DoNotOptimize(dx.data());
    }
    // Reads dout and argmax, read-modify-writes the routed elements of dx.
    const double bytes =
        4.0 * double(dout.size()) + 8.0 * double(argmax.size()) + 8.0 * double(dout.size());
    state.SetBytesProcessed(std::int64_t(bytes * double(state.iterations())));
}

}  // namespace

BENCHMARK_CAPTURE(BM_Conv2dForward, conv1_im2col, 1, lowered_im2col)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv1_im2col_loops, 1, lowered_loops)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv1_shifted, 1, lowered_shifted)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv1_naive, 1, naive)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv2_im2col, 2, lowered_im2col)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv2_im2col_loops, 2, lowered_loops)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv2_shifted, 2, lowered_shifted)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv2_winograd, 2, lowered_winograd)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, conv2_naive, 2, naive)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv1_im2col, 1, lowered_im2col)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv1_im2col_loops, 1, lowered_loops)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv1_shifted, 1, lowered_shifted)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv1_naive, 1, naive)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv2_im2col, 2, lowered_im2col)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv2_im2col_loops, 2, lowered_loops)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv2_shifted, 2, lowered_shifted)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv2_winograd, 2, lowered_winograd)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackward, conv2_naive, 2, naive)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// One of the second conv's Winograd products per point and image (conv2d_lowering.cpp): the
// forward M [32, 49] = V [32, 64] @ U [64, 49]; the input gradient's M [64, 49] = Vᵀ [64, 32] @
// U [32, 49] (V read transposed); the weight gradient's dV [64, 32] += U [64, 49] @ Vdy [49, 32].
// Through OpenBLAS's cblas_sgemm, or block_gemm's kernel for this CPU (skipped where there is
// none), one thread (the lowering runs them inside its loop over images).
struct GemmShape {
    int M, N, K;
    bool trans_a, accumulate;
};
constexpr GemmShape kWinogradShapes[] = {{32, 49, 64, false, false}, {64, 49, 32, true, false},
                                         {64, 32, 49, false, true}};

void BM_WinogradGemm(benchmark::State& state, int shape, bool block) {
    const GemmShape s = kWinogradShapes[shape];
    const block_gemm::Fn kernel = block_gemm::kernel(active_isa());
    if (block && !kernel) {
        state.SkipWithError("no block_gemm kernel for this CPU's ISA (SEMIGRAD_ISA=avx2 on an AVX2 CPU)");
        return;
    }
    Rng rng(3);
    std::vector<float> a(std::size_t(s.M) * s.K), b(std::size_t(s.K) * s.N), c(std::size_t(s.M) * s.N),
        want(c.size());
    for (float& v : a) v = rng.uniform(-1.0f, 1.0f);
    for (float& v : b) v = rng.uniform(-1.0f, 1.0f);
    const int lda = s.trans_a ? s.M : s.K;
    const auto run = [&](float* out) {
        if (block)
            kernel(s.M, s.N, s.K, a.data(), s.trans_a ? 1 : lda, s.trans_a ? lda : 1, b.data(), s.N,
                   s.accumulate, out, s.N);
        else
            gemm(s.trans_a, false, s.M, s.N, s.K, 1.0f, a.data(), lda, b.data(), s.N,
                 s.accumulate ? 1.0f : 0.0f, out, s.N);
    };
    run(c.data());
    gemm_naive(s.trans_a, false, s.M, s.N, s.K, 1.0f, a.data(), lda, b.data(), s.N, 0.0f, want.data(), s.N);
    for (std::size_t i = 0; i < c.size(); ++i)
        if (!(std::abs(c[i] - want[i]) <= 1e-4f)) {
            std::fprintf(stderr, "winograd gemm %d: %g against the naive %g\n", shape, double(c[i]), double(want[i]));
            std::abort();
        }
#pragma omp parallel num_threads(1)
    for (auto _ : state) {
        run(c.data());
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * s.M * s.N * s.K * double(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_WinogradGemm, forward_openblas, 0, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_WinogradGemm, forward_block, 0, true)->UseRealTime();
BENCHMARK_CAPTURE(BM_WinogradGemm, dx_openblas, 1, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_WinogradGemm, dx_block, 1, true)->UseRealTime();
BENCHMARK_CAPTURE(BM_WinogradGemm, dweight_openblas, 2, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_WinogradGemm, dweight_block, 2, true)->UseRealTime();

// The Dense layer's forward X W (32x128x1568: one thread's half of the tutorial's 32x256x1568)
// and weight gradient Xᵀ dY (784x256x32: one thread's half of 1568x256x32), X `percent` % non-zero
// at random places (the tutorial's, in training: about 30%): sparse_gemm's kernels against
// OpenBLAS's products (gemm, sliced for its small kernels where it has them), one thread (each
// runs on one of the layer's threads). The choice between them, sparse_gemm::choose, sits where
// these lines cross.
void BM_DenseProduct(benchmark::State& state, bool weight_gradient, bool sparse) {
    const int percent = int(state.range(0));
    if (sparse && (!SEMIGRAD_X86 || active_isa() == Isa::portable)) {
        state.SkipWithError("no sparse_gemm kernel on the portable path");
        return;
    }
    constexpr int M = 32, N = 256, K = 1568, half = 128, rows = K / 2;
    Rng rng(5);
    std::vector<float> x(std::size_t(M) * K), w(std::size_t(K) * N), dy(std::size_t(M) * N),
        c(std::size_t(K) * N), want(c.size());
    for (float& v : x) v = rng.uniform() * 100 < percent ? rng.uniform(0.0f, 1.0f) : 0.0f;
    for (float& v : w) v = rng.uniform(-1.0f, 1.0f);
    for (float& v : dy) v = rng.uniform(-1.0f, 1.0f);
    const auto run = [&](float* out) {
#if SEMIGRAD_X86
        if (sparse && weight_gradient)  // rows [0, 784) of Xᵀ dY
            sparse_gemm::tn_avx2(M, N, 0, rows, x.data(), K, dy.data(), N, out, N);
        else if (sparse)  // columns [0, 128) of X W
            sparse_gemm::nn_avx2(M, half, K, x.data(), K, w.data(), N, false, out, N);
#endif
        if (!sparse && weight_gradient)
            gemm(true, false, rows, N, M, 1.0f, x.data(), K, dy.data(), N, 0.0f, out, N);
        else if (!sparse)
            gemm(false, false, M, half, K, 1.0f, x.data(), K, w.data(), N, 0.0f, out, N);
    };
    run(c.data());
    if (weight_gradient)
        gemm_naive(true, false, rows, N, M, 1.0f, x.data(), K, dy.data(), N, 0.0f, want.data(), N);
    else
        gemm_naive(false, false, M, half, K, 1.0f, x.data(), K, w.data(), N, 0.0f, want.data(), N);
    const std::size_t checked = weight_gradient ? std::size_t(rows) * N : std::size_t(M) * N;
    for (std::size_t i = 0; i < checked; ++i) {
        if (!weight_gradient && i % N >= std::size_t(half)) continue;
        if (!(std::abs(c[i] - want[i]) <= 1e-3f)) {
            std::fprintf(stderr, "dense product: %g against the naive %g\n", double(c[i]), double(want[i]));
            std::abort();
        }
    }
#pragma omp parallel num_threads(1)
    for (auto _ : state) {
        run(c.data());
        benchmark::DoNotOptimize(c.data());
    }
}
BENCHMARK_CAPTURE(BM_DenseProduct, forward_openblas, false, false)->Arg(25)->Arg(33)->Arg(40)->Arg(50)->UseRealTime();
BENCHMARK_CAPTURE(BM_DenseProduct, forward_sparse, false, true)->Arg(25)->Arg(33)->Arg(40)->Arg(50)->UseRealTime();
BENCHMARK_CAPTURE(BM_DenseProduct, weight_gradient_openblas, true, false)->Arg(25)->Arg(33)->Arg(50)->Arg(60)->UseRealTime();
BENCHMARK_CAPTURE(BM_DenseProduct, weight_gradient_sparse, true, true)->Arg(25)->Arg(33)->Arg(50)->Arg(60)->UseRealTime();

BENCHMARK_CAPTURE(BM_MaxPool2dForward, fast, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MaxPool2dForward, naive, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MaxPool2dBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
