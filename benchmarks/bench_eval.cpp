// The evaluation forward alone, on real images: the tutorial model (untrained, seeded: the
// time does not depend on the weights) embeds the test set of an MNIST-format folder the way the
// trainer does (Sequential::predict: chunks of --chunk images shared among the threads, dropout
// off, no graph), --repeats times. Prints one JSON line: images, the best and every repeat's
// seconds, images per second at the best, and the kernels it ran (semigrad's instruction-set
// path, OpenBLAS's core).
// benchmarks/eval_torch.py runs it beside PyTorch's inference of the same model on the same
// images.
//
// Usage: bench_eval --data DIR [--chunk 32] [--repeats 5] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/idx.hpp"
#include "examples/tutorial_model.hpp"
#include "tensor/error.hpp"
#include "tensor/memory.hpp"
#include "tensor/parallel.hpp"
#include "tensor/simd.hpp"

using namespace semigrad;

int main(int argc, char** argv) {
    semigrad::keep_freed_memory();  // as the trainer does (tensor/memory.hpp)
    std::string data;
    long chunk = 32, repeats = 5, threads = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
            return 2;
        }
        const char* v = argv[++i];
        char* end = nullptr;
        const long n = std::strtol(v, &end, 10);
        const bool whole = end != v && *end == '\0' && n > 0;
        if (a == "--data") data = v;
        else if (a == "--chunk" && whole) chunk = n;
        else if (a == "--repeats" && whole) repeats = n;
        else if (a == "--threads" && whole) threads = n;
        else {
            std::fprintf(stderr, "error: bad argument %s %s (usage: bench_eval --data DIR "
                                 "[--chunk N] [--repeats N] [--threads N])\n", a.c_str(), v);
            return 2;
        }
    }
    if (data.empty()) {
        std::fprintf(stderr, "error: --data DIR is required\n");
        return 2;
    }
    try {
        if (threads > 0) set_num_threads(int(threads));
        const data::Dataset test = data::load_mnist_folder(data, 1).test;
        nn::Sequential model;
        examples::add_tutorial_layers(model);
        Rng rng(42);
        model.build({1, test.rows, test.cols}, rng);
        std::vector<double> seconds;
        double checksum = 0;
        for (long r = 0; r < repeats; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            const Tensor e = model.predict(test.count, std::size_t(chunk),
                                           [&](std::size_t first, std::size_t n) {
                                               return data::images_to_tensor(test, first, n);
                                           });
            checksum += e[0];  // the result is used
            seconds.push_back(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        const double best = *std::min_element(seconds.begin(), seconds.end());
        std::printf("{\"images\": %zu, \"chunk\": %ld, \"threads\": %d, \"best_seconds\": %.6f, "
                    "\"images_per_second\": %.1f, \"checksum\": %.6f, \"isa\": \"%s\", "
                    "\"openblas_core\": \"%s\", \"seconds\": [",
                    test.count, chunk, num_threads(), best, double(test.count) / best, checksum,
                    isa_name(active_isa()), openblas_core().c_str());
        for (std::size_t i = 0; i < seconds.size(); ++i)
            std::printf("%s%.6f", i ? ", " : "", seconds[i]);
        std::printf("]}\n");
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
