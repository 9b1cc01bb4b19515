// One training step of the tutorial, whole: batch 32 of [1,28,28] images -> Sequential forward
// (conv, pool, dropout, conv, pool, dropout, flatten, dense, l2-normalise) -> semi-hard triplet
// loss -> backward -> Adam step; and the evaluation forward (no graph, dropout off) that
// model.predict() runs. Counter: images per wall-clock second.
//
// Before timing, the step is checked to learn: 30 steps on one fixed batch must lower its loss
// (a broken backward or optimiser would otherwise be timed happily).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "autograd/var.hpp"
#include "examples/tutorial_model.hpp"
#include "losses/triplet.hpp"
#include "nn/optimizer.hpp"
#include "tensor/memory.hpp"
#include "tensor/profile.hpp"

using namespace semigrad;

namespace {

constexpr std::size_t kBatch = 32;

struct Setup {
    nn::Sequential model;
    std::unique_ptr<nn::Adam> adam;
    Tensor images{{kBatch, 1, 28, 28}};
    std::vector<int> labels;

    Setup() {
        examples::add_tutorial_layers(model);
        Rng rng(42);
        model.build({1, 28, 28}, rng);
        adam = std::make_unique<nn::Adam>(model.parameters());
        // Images in [0,1] with a class-dependent bright band, so the batch has structure to learn.
        for (std::size_t n = 0; n < kBatch; ++n) {
            const int label = int(n % 10);
            labels.push_back(label);
            for (std::size_t p = 0; p < 784; ++p)
                images[n * 784 + p] = (p / 28) % 10 == std::size_t(label) ? 0.9f : 0.1f * rng.uniform();
        }
    }

    float step() {
        profile::Scope scope("train step");
        model.train(true);
        const Var embeddings = model.forward(Var(images));
        Var loss;
        {
            profile::Scope scope("loss");
            loss = losses::triplet_semihard_loss(embeddings, labels);
        }
        adam->zero_grad();
        backward(loss);
        adam->step();
        return loss.value().item();
    }
};

void check_step_learns() {
    Setup s;
    const float first = s.step();
    float last = first;
    for (int i = 0; i < 30; ++i) last = s.step();
    if (!(last < 0.5f * first)) {
        std::fprintf(stderr, "training step does not learn: loss %g -> %g\n", double(first), double(last));
        std::abort();
    }
    std::fprintf(stderr, "training step learns: loss %.4f -> %.4f after 30 steps. Starting benchmarks.\n",
                 double(first), double(last));
}

// Argument: 1 runs the conv blocks fused (the default), 0 as separate layers (--no-fuse).
void BM_TrainStep(benchmark::State& state) {
    Setup s;
    s.model.set_fuse(state.range(0) != 0);
    for (auto _ : state) benchmark::DoNotOptimize(s.step());
    state.counters["images/s"] =
        benchmark::Counter(double(state.iterations() * kBatch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrainStep)->ArgName("fused")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_EvalForward(benchmark::State& state) {
    Setup s;
    s.model.set_fuse(state.range(1) != 0);
    s.model.train(false);
    NoGradGuard no_grad;
    const std::size_t n = std::size_t(state.range(0));
    Tensor images({n, 1, 28, 28}, 0.5f);
    for (auto _ : state) benchmark::DoNotOptimize(s.model.forward(Var(images)).value().data());
    state.counters["images/s"] =
        benchmark::Counter(double(state.iterations() * n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EvalForward)->ArgNames({"images", "fused"})->Args({32, 1})->Args({500, 1})->Args({500, 0})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// The trainer's --profile table for this step: 200 steps after 20 unprofiled ones.
void print_profile() {
    Setup s;
    for (int i = 0; i < 20; ++i) s.step();
    profile::reset();
    profile::set_enabled(true);
    constexpr std::size_t kSteps = 200;
    for (std::size_t i = 0; i < kSteps; ++i) s.step();
    profile::set_enabled(false);
    std::printf("\nWhere a training step's time goes (%zu steps of %zu, tensor/profile.hpp):\n%s",
                kSteps, kBatch, profile::table(kSteps).c_str());
}

}  // namespace

int main(int argc, char** argv) {
    semigrad::keep_freed_memory();  // as the trainer does (tensor/memory.hpp)
    check_step_learns();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_profile();
    return 0;
}
