// One training step of the tutorial, whole: batch 32 of [1,28,28] images -> Sequential forward
// (conv, pool, dropout, conv, pool, dropout, flatten, dense, l2-normalise) -> semi-hard triplet
// loss -> backward -> Adam step; and the evaluation forward (no graph, dropout off) that
// model.predict() runs. Counter: images per wall-clock second.
//
// Before timing, the step is checked to learn: 30 steps on one fixed batch must lower its loss
// (a broken backward or optimiser would otherwise be timed happily). After the benchmarks it
// prints the --profile table of the step's parts; `--parts_json=PATH` also writes the step's
// top-level parts (forward, loss, backward, Adam), fused and unfused, for
// benchmarks/step_parts_torch.py to draw beside PyTorch's.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/var.hpp"
#include "examples/tutorial_model.hpp"
#include "losses/triplet.hpp"
#include "nn/optimizer.hpp"
#include "tensor/memory.hpp"
#include "tensor/parallel.hpp"
#include "tensor/profile.hpp"
#include "tensor/simd.hpp"

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
        backward(loss);  // step() dropped the last gradients
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

// The trainer's --profile table for this step: 200 steps after 20 unprofiled ones. Returns the
// top-level parts (the rows one level under "train step") in ms per step, for --parts_json.
constexpr std::size_t kProfileSteps = 200;

std::vector<profile::Row> profile_step(bool fused) {
    Setup s;
    s.model.set_fuse(fused);
    for (int i = 0; i < 20; ++i) s.step();
    profile::reset();
    profile::set_enabled(true);
    for (std::size_t i = 0; i < kProfileSteps; ++i) s.step();
    profile::set_enabled(false);
    std::vector<profile::Row> rows = profile::rows();
    if (fused)
        std::printf("\nWhere a training step's time goes (%zu steps of %zu, tensor/profile.hpp):\n%s",
                    kProfileSteps, kBatch, profile::table(kProfileSteps).c_str());
    return rows;
}

// {"step_ms": .., "parts": {"forward": .., ...}} from the profile's rows at depth 0 and 1.
std::string parts_json(const std::vector<profile::Row>& rows) {
    std::string json = "{";
    std::string parts;
    for (const profile::Row& row : rows) {
        const double ms = row.seconds * 1e3 / double(kProfileSteps);
        if (row.depth == 0 && row.name == "train step") json += "\"step_ms\": " + std::to_string(ms);
        if (row.depth == 1)
            parts += (parts.empty() ? "\"" : ", \"") + row.name + "\": " + std::to_string(ms);
    }
    return json + ", \"parts\": {" + parts + "}}";
}

// Takes --parts_json=PATH out of argv (Google Benchmark refuses flags it does not know).
std::string take_parts_json_flag(int& argc, char** argv) {
    constexpr std::string_view kFlag = "--parts_json=";
    std::string path;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg.substr(0, kFlag.size()) == kFlag)
            path = arg.substr(kFlag.size());
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    return path;
}

}  // namespace

int main(int argc, char** argv) {
    semigrad::keep_freed_memory();  // as the trainer does (tensor/memory.hpp)
    const std::string json_path = take_parts_json_flag(argc, argv);
    check_step_learns();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    const std::vector<profile::Row> fused = profile_step(true);
    if (!json_path.empty()) {
        const std::vector<profile::Row> unfused = profile_step(false);
        std::ofstream out(json_path);
        out << "{\"isa\": \"" << isa_name(active_isa()) << "\", \"openblas_core\": \"" << openblas_core()
            << "\", \"threads\": " << num_threads() << ", \"fused\": " << parts_json(fused)
            << ", \"unfused\": " << parts_json(unfused) << "}\n";
        if (!out.flush()) {
            std::fprintf(stderr, "bench_train_step: cannot write %s\n", json_path.c_str());
            return 1;
        }
    }
    return 0;
}
