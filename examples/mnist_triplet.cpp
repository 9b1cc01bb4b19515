// mnist_triplet: TensorFlow Addons' tutorial "TripletSemiHardLoss" (docs/tutorials/
// losses_triplet.ipynb) as a native program, on semigrad. It reads like the notebook:
//
//   load MNIST -> build the Sequential model -> Adam(0.001) -> for each of 5 epochs, for each
//   batch of 32: forward, triplet_semihard_loss, backward, step -> embed the test set -> write
//   vecs.tsv / meta.tsv for the Embedding Projector -> evaluate retrieval -> draw the embeddings.
//
// The training step is spelled out first, below (no fit() with callbacks), so that one step can
// be followed through the four floors: data/ -> nn/ (autograd/, tensor/) -> losses/ -> backward
// -> nn/Adam. run() is the notebook's cells in order. The program around them lives apart: flags
// in options.hpp, checkpoints and path checks in run_state.hpp, progress in progress.hpp.
#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "autograd/var.hpp"
#include "data/batcher.hpp"
#include "data/idx.hpp"
#include "examples/interrupt.hpp"
#include "examples/options.hpp"
#include "examples/plot.hpp"
#include "examples/progress.hpp"
#include "examples/projector_files.hpp"
#include "examples/run_state.hpp"
#include "examples/tutorial_model.hpp"
#include "examples/tsne.hpp"
#include "examples/umap_picture.hpp"
#include "losses/triplet.hpp"
#include "metrics/retrieval.hpp"
#include "nn/layers.hpp"
#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"
#include "tensor/atomic_file.hpp"
#include "tensor/error.hpp"
#include "tensor/memory.hpp"
#include "tensor/parallel.hpp"
#include "tensor/simd.hpp"

namespace fs = std::filesystem;
using namespace semigrad;
using namespace semigrad::examples;

namespace {

constexpr std::size_t kEmbedChunk = 500;  // images embedded at once when evaluating (bounds memory)
constexpr std::size_t kTsnePoints = 3000;  // exact t-SNE is O(n^2): draw a seeded sample

// Training that has produced NaN or infinity: exit 1 with nothing written.
struct Diverged : Error {
    Diverged(const Options& opt, std::size_t epoch, std::size_t step, const std::string& what)
        : Error("training diverged at epoch " + std::to_string(epoch + 1) + ", step " +
                std::to_string(step) + ": " + what +
                "; stopped without writing anything (the last checkpoint and --out are as they "
                "were); try a lower --lr than " + format_number(opt.lr)) {}
    static std::string format_number(double x) {
        char text[32];
        std::snprintf(text, sizeof text, "%g", x);
        return text;
    }
};

std::string word(float x) { return std::isnan(x) ? "NaN" : x > 0 ? "+inf" : "-inf"; }

// Finite or stop, after every update: the loss alone can stay finite while the weights are not
// (a ReLU maps NaN to 0). A float is NaN or infinite exactly when its 8 exponent bits are all
// ones; tested on the bits, the loop vectorises (std::isfinite's does not, 4.5x slower): one
// scan of the 410,208 weights is a small fraction of a percent of a training step.
void check_finite(const Options& opt, nn::Sequential& model, std::size_t epoch, std::size_t step) {
    for (const nn::Parameter& p : model.parameters()) {
        const Tensor& t = p.var.value();
        const float* v = t.data();
        std::uint32_t exponent_all_ones = 0;
        for (std::size_t i = 0; i < t.size(); ++i)
            exponent_all_ones |= (std::bit_cast<std::uint32_t>(v[i]) & 0x7f800000u) == 0x7f800000u;
        if (!exponent_all_ones) continue;
        const std::size_t bad = std::size_t(std::find_if(v, v + t.size(), [](float x) {
                                                return !std::isfinite(x);
                                            }) - v);
        throw Diverged(opt, epoch, step,
                       "parameter " + p.name + " holds " + word(v[bad]) + " at index " +
                           std::to_string(bad));
    }
}

// One epoch of the tutorial's model.fit(train_dataset): for each batch, forward, loss,
// backward, update. Adds the epoch's means (Keras' running mean, weighted by batch size) to
// `history`. Returns false if a signal stopped it after a step: then history.partial holds the
// steps done, and the next call (in a resumed run) continues there.
bool train_epoch(const Options& opt, nn::Sequential& model, nn::Adam& adam,
                 const data::Batcher& batcher, std::size_t epoch, History& history, bool talk) {
    model.train(true);
    ProgressBar bar(epoch + 1, opt.epochs, batcher.num_batches(), talk && stderr_is_terminal());
    PartialEpoch& sums = history.partial;  // steps > 0: resumed in the middle of this epoch
    const std::vector<std::size_t> order = batcher.epoch_order(epoch);
    while (sums.steps < batcher.num_batches()) {
        const data::Batch batch = batcher.batch(order, sums.steps);
        const Var images(batch.images);                    // [N,1,28,28] in [0,1]
        const Var embeddings = model.forward(images);      // forward: [N,256], unit rows
        losses::TripletStats stats;
        const Var loss = losses::triplet_semihard_loss(embeddings, batch.labels,
                                                       float(opt.margin),
                                                       losses::Distance::L2, &stats);
        if (!std::isfinite(loss.value().item()))  // before the update, which would spread it
            throw Diverged(opt, epoch, sums.steps + 1, "the loss is " + word(loss.value().item()));
        adam.zero_grad();
        backward(loss);                                    // backward
        adam.step();                                       // update
        check_finite(opt, model, epoch, sums.steps + 1);

        const std::size_t n = batch.labels.size();
        sums.loss_sum += double(loss.value().item()) * n;
        sums.active_sum += double(stats.fraction_active) * n;
        history.no_positive_batches += stats.no_positive_pair;
        sums.seen += n;
        bar.update(++sums.steps, sums.loss_sum / sums.seen, sums.seen);
        if (stop_signal() && sums.steps < batcher.num_batches()) {
            bar.finish();
            sums.seconds += bar.elapsed_seconds();
            return false;
        }
    }
    bar.finish();
    history.epoch_loss.push_back(sums.loss_sum / sums.seen);
    history.epoch_active.push_back(sums.active_sum / sums.seen);
    history.epoch_seconds.push_back(sums.seconds + bar.elapsed_seconds());
    sums = PartialEpoch{};
    return true;
}

// model.predict(): dropout off, no graph, in chunks.
Tensor embed(nn::Sequential& model, const data::Dataset& d, std::size_t count) {
    NoGradGuard no_grad;
    model.train(false);
    Tensor out;
    for (std::size_t start = 0; start < count; start += kEmbedChunk) {
        stop_if_asked("while embedding", "nothing written to --out");
        std::vector<std::size_t> idx(std::min(kEmbedChunk, count - start));
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = start + i;
        const Var e = model.forward(Var(data::images_to_tensor(d, idx)));
        const std::size_t D = e.value().dim(1);
        if (out.empty()) out = Tensor({count, D});
        std::copy_n(e.value().data(), idx.size() * D, out.data() + start * D);
    }
    return out;
}

std::span<const int> first(const std::vector<int>& v, std::size_t n) { return {v.data(), n}; }

double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Which data this is: scripts/get-data leaves a SOURCE file; otherwise the folder's name.
std::string dataset_name(const std::string& dir) {
    std::ifstream in(fs::path(dir) / "SOURCE");
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) return line;
    fs::path folder = fs::path(dir).lexically_normal();
    if (folder.filename().empty()) folder = folder.parent_path();  // "data/mnist/"
    return folder.filename().string();
}

std::vector<std::string> class_names(const std::string& dataset) {
    if (dataset.find("fashion") != std::string::npos)
        return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

// The untrained network's retrieval quality, for context: on MNIST even random convolutional
// features retrieve well. Built apart so that resuming never mixes the two.
float untrained_precision_at_1(const Options& opt, const data::Dataset& test) {
    nn::Sequential fresh;
    examples::add_tutorial_layers(fresh);
    Rng init_rng(opt.seed);
    fresh.build({1, test.rows, test.cols}, init_rng);
    return metrics::precision_at_1(embed(fresh, test, test.count), test.labels);
}

// t-SNE of a seeded sample of at most kTsnePoints test embeddings, drawn one colour per class.
void draw_embeddings(const Options& opt, const std::string& dataset, const Tensor& embeddings,
                     const std::vector<int>& labels, const std::string& path) {
    const std::size_t count = embeddings.dim(0), D = embeddings.dim(1);
    Rng sample_rng(opt.seed, /*stream=*/7);
    std::vector<std::size_t> sample = sample_rng.permutation(count);
    sample.resize(std::min(kTsnePoints, count));
    std::sort(sample.begin(), sample.end());
    Tensor points({sample.size(), D});
    std::vector<int> point_labels;
    for (std::size_t i = 0; i < sample.size(); ++i) {
        std::copy_n(embeddings.data() + sample[i] * D, D, points.data() + i * D);
        point_labels.push_back(labels[sample[i]]);
    }
    const Tensor xy = viz::tsne(points, {.seed = opt.seed});
    viz::write_scatter_png(path, xy, point_labels, class_names(dataset),
                           {.title = "semigrad: " + dataset + " test embeddings, t-SNE of " +
                                     std::to_string(sample.size()) + " points"});
}

int run(const Options& opt) {
    if (opt.threads > 0) set_num_threads(opt.threads);
    const int threads = num_threads();
    const bool talk = !opt.quiet;
    auto say = [&](const std::string& line) {
        if (talk) std::cout << line << std::endl;
    };

    if (opt.summary) {  // the model alone: no data, no files
        nn::Sequential model;
        examples::add_tutorial_layers(model);
        Rng init_rng(opt.seed);
        model.build({1, 28, 28}, init_rng);
        std::cout << model.summary();
        return 0;
    }
    check_paths(opt);

    // --- data ------------------------------------------------------------------------------
    const data::Split split = data::load_mnist_folder(opt.data, opt.limit_train);
    const std::string dataset = dataset_name(opt.data);
    if (opt.limit_train > split.train.file_count)
        throw UsageError("--limit-train " + std::to_string(opt.limit_train) + " exceeds the " +
                         std::to_string(split.train.file_count) + " training images in " +
                         opt.data);
    const data::Batcher batcher(split.train, std::size_t(opt.batch_size), opt.seed,
                                opt.shuffle_buffer, opt.limit_train);
    const std::size_t train_count = batcher.num_samples(), test_count = split.test.count;
    const auto key = run_key(opt, split.train, train_count);

    // --- model and optimiser: the tutorial's model.compile(optimizer=Adam(0.001), ...) ------
    nn::Sequential model;
    examples::add_tutorial_layers(model);
    Rng init_rng(opt.seed);
    model.build({1, split.train.rows, split.train.cols}, init_rng);
    model.set_fuse(!opt.no_fuse);  // same values either way (nn/sequential.hpp)
    nn::Adam adam(model.parameters(), {.learning_rate = float(opt.lr)});
    History history;
    if (!opt.resume.empty()) history = resume_run(opt, model, adam, key);

    say("semigrad mnist_triplet: " + dataset + ", " + std::to_string(train_count) + " train / " +
        std::to_string(test_count) + " test images, " + std::to_string(threads) +
        " threads, OpenBLAS " + openblas_core() + " kernels, " + isa_name(active_isa()) + " path");
    if (!opt.resume.empty())
        say("resumed from " + opt.resume + " after epoch " +
            std::to_string(history.epoch_loss.size()) +
            (history.partial.steps ? ", step " + std::to_string(history.partial.steps) : ""));
    const float untrained_p1 = untrained_precision_at_1(opt, split.test);

    // --- training: the tutorial's model.fit(train_dataset, epochs=5) -------------------------
    for (std::size_t epoch = history.epoch_loss.size(); epoch < std::size_t(opt.epochs); ++epoch) {
        stop_if_asked("before epoch " + std::to_string(epoch + 1),
                      opt.checkpoint.empty() || epoch == 0
                          ? "nothing written"
                          : "the checkpoint " + opt.checkpoint + " holds " +
                                std::to_string(epoch) + " epochs; --out unchanged");
        if (!train_epoch(opt, model, adam, batcher, epoch, history, talk)) {
            const std::string at = "at epoch " + std::to_string(epoch + 1) + ", step " +
                                   std::to_string(history.partial.steps);
            if (!opt.checkpoint.empty()) save_run(opt, model, adam, key, history);
            stop_if_asked(at, opt.checkpoint.empty()
                                  ? "no checkpoint (no --checkpoint given); --out unchanged"
                                  : "wrote checkpoint " + opt.checkpoint + " (continue with "
                                    "--resume " + opt.checkpoint + "); --out unchanged");
        }
        char line[160];
        std::snprintf(line, sizeof line,
                      "epoch %zu/%d  loss %.4f  active triplets %.1f%%  %.1fs  %.0f samples/s",
                      epoch + 1, opt.epochs, history.epoch_loss.back(),
                      100 * history.epoch_active.back(), history.epoch_seconds.back(),
                      double(batcher.num_samples()) / history.epoch_seconds.back());
        say(line);
        if (!opt.checkpoint.empty()) save_run(opt, model, adam, key, history);
    }

    // --- the tutorial's last cells: embed the test set, save for the Projector ---------------
    // Every output goes into a staged folder beside --out, swapped in whole at the end: a reader
    // (or a failure half-way) never sees new vecs.tsv beside an old metrics.json.
    StagedFolder staged(opt.out);
    const fs::path out(staged.path());
    const Tensor test_embeddings = embed(model, split.test, test_count);
    examples::write_vecs_tsv((out / "vecs.tsv").string(), test_embeddings);
    examples::write_meta_tsv((out / "meta.tsv").string(), split.test.labels);

    // --- evaluation: retrieval on the unit sphere --------------------------------------------
    const Tensor train_embeddings = embed(model, split.train, train_count);
    const float p1 = metrics::precision_at_1(test_embeddings, split.test.labels);
    const float knn = metrics::knn_accuracy(test_embeddings, split.test.labels, train_embeddings,
                                            first(split.train.labels, train_count), 1);
    const float map_r = metrics::map_at_r(test_embeddings, split.test.labels);

    // --- the picture the tutorial gets from the Projector ------------------------------------
    nlohmann::ordered_json picture = {{"projection", opt.projection}};
    if (opt.projection == "umap") {
        say("mapping the " + std::to_string(test_count) + " test embeddings with UMAP");
        const examples::UmapPicture map = examples::write_umap_picture(
            out, "semigrad: " + dataset + " test embeddings, UMAP of " + std::to_string(test_count) + " points",
            test_embeddings, split.test.labels, class_names(dataset),
            {split.test.images, split.test.rows, split.test.cols}, opt.seed);
        picture["projection_seconds"] = map.seconds;
        picture["knn10_accuracy_2d"] = map.knn10_accuracy_2d;
        picture["knn10_accuracy_embedding"] = map.knn10_accuracy_embedding;
    } else if (opt.projection == "tsne") {
        say("drawing a t-SNE of the test embeddings (exact, O(n^2): a few seconds)");
        draw_embeddings(opt, dataset, test_embeddings, split.test.labels,
                        (out / "embeddings.png").string());
    }

    double total_seconds = 0;
    for (double s : history.epoch_seconds) total_seconds += s;
    const double samples_per_second =
        total_seconds > 0 ? double(train_count) * history.epoch_seconds.size() / total_seconds
                          : 0.0;
    nlohmann::ordered_json metrics_json = {
        {"dataset", dataset},
        {"train_samples", train_count},
        {"test_samples", test_count},
        {"epochs", opt.epochs},
        {"batch_size", opt.batch_size},
        {"learning_rate", opt.lr},
        {"margin", opt.margin},
        {"threads", threads},
        {"openblas_core", openblas_core()},
        {"isa", isa_name(active_isa())},
        {"fused_blocks", model.fuse()},
        {"seed", opt.seed},
        {"epoch_seconds", history.epoch_seconds},
        {"epoch_loss", history.epoch_loss},
        {"epoch_active_triplet_fraction", history.epoch_active},
        {"no_positive_batches", history.no_positive_batches},
        {"train_samples_per_second", samples_per_second},
        {"test_precision_at_1", p1},
        {"test_knn_accuracy", knn},
        {"test_map_at_r", map_r},
        {"untrained_precision_at_1", untrained_p1},
        {"peak_rss_mib", peak_rss_mib()},
    };
    metrics_json.update(picture);
    write_file_atomically((out / "metrics.json").string(), metrics_json.dump(2) + "\n");
    stop_if_asked("while writing the outputs", "--out unchanged");
    staged.publish();

    char line[200];
    std::snprintf(line, sizeof line,
                  "test precision@1 %.4f  1-NN accuracy (vs train) %.4f  MAP@R %.4f  "
                  "(untrained precision@1 %.4f)",
                  p1, knn, map_r, untrained_p1);
    say(line);
    say("wrote " + (fs::path(opt.out) / "vecs.tsv").string() + ", meta.tsv, metrics.json" +
        (opt.projection == "umap"   ? ", projection.tsv, embeddings.png, embeddings.html"
         : opt.projection == "tsne" ? ", embeddings.png"
                                    : ""));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Every step frees and re-allocates the same activation-sized blocks: keep them rather than
    // page-fault them back each step (tensor/memory.hpp; 19-22 -> 15 ms per step here).
    semigrad::keep_freed_memory();
    Options opt;
    if (const auto exit_code = parse_options(argc, argv, opt)) return *exit_code;
    install_stop_handlers();
    try {
        return run(opt);
    } catch (const Interrupted& e) {
        std::cerr << e.what() << '\n';
        return 128 + e.signal;
    } catch (const UsageError& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 2;
    } catch (const Error& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    } catch (const std::exception& e) {  // std::bad_alloc, filesystem errors
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
