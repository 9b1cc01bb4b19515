// umap_tsv: UMAP of an Embedding Projector vectors file, and the measures of a map.
//
//   umap_tsv vecs.tsv --labels meta.tsv --out projection.tsv     map vecs.tsv, write the map
//   umap_tsv vecs.tsv --labels meta.tsv --map other.tsv          score a map made elsewhere
//   umap_tsv vecs.tsv --labels meta.tsv --png map.png            ... and draw it
//
// It prints one JSON line: the number of points, the seconds UMAP took (wall and CPU), the map's
// trustworthiness at k = 10 and its leave-one-out 10-NN class accuracy, and the same accuracy
// in the original space for comparison. scripts/compare-umap-js runs it beside umap-js (the
// Projector's UMAP) on the same file; the trainer does the same work for its own outputs.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "examples/nearest_neighbours.hpp"
#include "examples/plot.hpp"
#include "examples/tsv.hpp"
#include "tensor/atomic_file.hpp"
#include "examples/umap.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

using namespace semigrad;

int main(int argc, char** argv) {
    std::string vecs, labels_path, out, map_path, png, title = "UMAP";
    int threads = 0;
    viz::UmapOptions options;
    CLI::App app{"UMAP of a vecs.tsv (one vector per line, tab-separated), with trustworthiness@10 "
                 "and 10-NN class accuracy of the map.",
                 "umap_tsv"};
    app.add_option("vecs", vecs, "Vectors file (the trainer's vecs.tsv)")->required();
    app.add_option("--labels", labels_path, "One integer label per line (meta.tsv) for the 10-NN accuracy");
    app.add_option("--out", out, "Write the 2-D map here (tab-separated, one line per vector)");
    app.add_option("--map", map_path, "Score this 2-D map instead of computing one");
    app.add_option("--png", png, "Draw the map here, one colour per label (needs --labels)")->needs("--labels");
    app.add_option("--title", title, "Title of the --png picture")->capture_default_str();
    app.add_option("--threads", threads, "OpenMP/OpenBLAS threads (default: all cores)")->check(CLI::PositiveNumber);
    app.add_option("--seed", options.seed, "UMAP seed")->capture_default_str();
    app.add_option("--epochs", options.epochs, "SGD epochs (0: umap-js's default, 500 down to 200 as n grows)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    try {
        if (threads > 0) set_num_threads(threads);
        const Tensor x = examples::read_tsv_matrix(vecs);
        Tensor y;
        double seconds = 0, cpu_seconds = 0;
        if (map_path.empty()) {
            const auto start = std::chrono::steady_clock::now();
            const std::clock_t cpu_start = std::clock();  // CPU time of all threads: less at the mercy of a busy host
            y = viz::umap(x, options);
            cpu_seconds = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (!out.empty()) write_file_atomically(out, examples::projection_tsv(y));
        } else {
            y = examples::read_tsv_matrix(map_path);
            if (y.dim(0) != x.dim(0) || y.dim(1) != 2)
                throw ShapeError(map_path + ": " + std::to_string(y.dim(0)) + " rows of " + std::to_string(y.dim(1)) +
                                 " numbers, expected " + std::to_string(x.dim(0)) + " rows of 2 (one per line of " +
                                 vecs + ")");
        }
        nlohmann::ordered_json result = {{"points", x.dim(0)},
                                         {"seconds", seconds},
                                         {"cpu_seconds", cpu_seconds},
                                         {"trustworthiness_10", viz::trustworthiness(x, y, 10)}};
        if (!labels_path.empty()) {
            const std::vector<int> labels = examples::read_labels(labels_path, x.dim(0));
            result["knn10_accuracy_2d"] = viz::knn_class_accuracy(viz::nearest_neighbours(y, 10), labels);
            result["knn10_accuracy_input"] = viz::knn_class_accuracy(viz::nearest_neighbours(x, 10), labels);
            if (!png.empty()) {
                const int classes = *std::max_element(labels.begin(), labels.end()) + 1;
                std::vector<std::string> names;
                for (int k = 0; k < classes; ++k) names.push_back(std::to_string(k));
                viz::write_scatter_png(png, y, labels, names, {.title = title});
            }
        }
        std::cout << result.dump() << std::endl;
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
