// Triplet semi-hard loss, forward + backward: the fast loss of losses/triplet.hpp at
// B = 32 (the tutorial) to 4096, and TFA's literal O(B^3) algorithm (losses/triplet_reference.hpp)
// up to B = 512, on L2-normalised random embeddings (D = 256, 10 classes) like the tutorial's.
// Before timing, the fast loss is checked against the literal port (value and gradient) at every
// B the port can afford. Compare with benchmarks/triplet_torch.py (same algorithm in PyTorch).
//
// Run: OMP_NUM_THREADS=2 build/benchmarks/bench_triplet --benchmark_min_time=1
// Side by side with PyTorch: /usr/bin/python3 benchmarks/triplet_torch.py --cpp build/benchmarks/bench_triplet
// Note: Debian's OpenBLAS 0.3.21 does not know recent Xeons and falls back to its SSE3
// ("Prescott") kernels; scripts/openblas-env selects the AVX-512 ones (README, "OpenBLAS
// kernels on new CPUs"). SEMIGRAD_ISA=avx2 with OPENBLAS_CORETYPE=Haswell runs what an
// AVX2-only CPU runs. Where the time goes at B = 2048 on that path (perf, 1 thread, Zen 4,
// 2026-11-29): OpenBLAS ~47% (the forward's SYRK a third of its flops, the backward's S x GEMM
// the rest), the mining ~35%, building the sparse backward's S ~9%, the distance map ~4%.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

#include "autograd/var.hpp"
#include "losses/triplet.hpp"
#include "losses/triplet_reference.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/simd.hpp"

using namespace semigrad;
using namespace semigrad::losses;

namespace {

constexpr std::size_t kDim = 256;
constexpr int kClasses = 10;

struct Batch {
    Tensor x;
    std::vector<int> labels;
};

const Batch& batch(std::size_t B) {
    static std::map<std::size_t, Batch> cache;
    auto it = cache.find(B);
    if (it != cache.end()) return it->second;
    Rng rng(2024, B);
    Batch b{Tensor({B, kDim}), std::vector<int>(B)};
    for (std::size_t i = 0; i < B; ++i) {
        double s = 0;
        for (std::size_t d = 0; d < kDim; ++d) s += double(b.x[i * kDim + d] = rng.normal()) * b.x[i * kDim + d];
        for (std::size_t d = 0; d < kDim; ++d) b.x[i * kDim + d] = float(b.x[i * kDim + d] / std::sqrt(s));
        b.labels[i] = int(rng.below(kClasses));
    }
    return cache.emplace(B, std::move(b)).first->second;
}

// Kept across iterations, as a training loop keeps it (losses/triplet.hpp).
TripletWorkspace& workspace() {
    static TripletWorkspace w;
    return w;
}

float fast_step(const Batch& b, Tensor* grad) {
    Var x(b.x, true);
    Var loss = triplet_semihard_loss(x, b.labels, 1.0f, Distance::L2, nullptr, active_isa(), &workspace());
    backward(loss);
    if (grad) *grad = x.grad();
    return loss.value().item();
}

void BM_SemihardFast(benchmark::State& state) {
    const Batch& b = batch(std::size_t(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(fast_step(b, nullptr));
}
BENCHMARK(BM_SemihardFast)->Arg(32)->Arg(256)->Arg(512)->Arg(1024)->Arg(2048)->Arg(4096)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HardFast(benchmark::State& state) {
    const Batch& b = batch(std::size_t(state.range(0)));
    for (auto _ : state) {
        Var x(b.x, true);
        Var loss = triplet_hard_loss(x, b.labels, 1.0f, false, Distance::L2, nullptr, active_isa(), &workspace());
        backward(loss);
        benchmark::DoNotOptimize(loss.value().item());
    }
}
BENCHMARK(BM_HardFast)->Arg(32)->Arg(256)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SemihardLiteral(benchmark::State& state) {
    const Batch& b = batch(std::size_t(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(reference::triplet_semihard_loss(b.x, b.labels).loss);
}
BENCHMARK(BM_SemihardLiteral)->Arg(32)->Arg(256)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

// The fast loss against the literal port before anything is timed.
bool verify() {
    for (std::size_t B : {32, 256, 512}) {
        const Batch& b = batch(B);
        Tensor grad;
        const float fast = fast_step(b, &grad);
        const reference::TripletResult ref = reference::triplet_semihard_loss(b.x, b.labels);
        float scale = 0, err = 0;
        for (std::size_t i = 0; i < grad.size(); ++i) {
            scale = std::max(scale, std::fabs(ref.dembeddings[i]));
            err = std::max(err, std::fabs(grad[i] - ref.dembeddings[i]));
        }
        const bool ok = std::fabs(fast - ref.loss) <= 1e-6f * std::max(1.0f, ref.loss) && err <= 1e-4f * scale;
        std::printf("B=%4zu  loss fast %.7f literal %.7f  max |dgrad| %.2e (max |grad| %.2e)  %s\n", B, fast,
                    ref.loss, double(err), double(scale), ok ? "ok" : "MISMATCH");
        if (!ok) return false;
    }
    std::printf("Fast loss matches the literal port. Starting benchmarks.\n");
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    // What ran, for benchmarks/triplet_torch.py to print and check (its --isa).
    benchmark::AddCustomContext("semigrad_isa", isa_name(active_isa()));
    benchmark::AddCustomContext("openblas_core", openblas_core());
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    if (!verify()) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
