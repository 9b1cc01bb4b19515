// mnist_triplet: TensorFlow Addons' tutorial "TripletSemiHardLoss" (docs/tutorials/
// losses_triplet.ipynb) as a native program, on semigrad. It reads like the notebook:
//
//   load MNIST -> build the Sequential model -> Adam(0.001) -> for each of 5 epochs, for each
//   batch of 32: forward, triplet_semihard_loss, backward, step -> embed the test set -> write
//   vecs.tsv / meta.tsv for the Embedding Projector -> evaluate retrieval -> draw the embeddings.
//
// The training step is spelled out below (no fit() with callbacks) so that one step can be
// followed through the four floors: data/ -> nn/ (autograd/, tensor/) -> losses/ -> backward ->
// nn/Adam. Everything else here is the program around it: flags, progress, checkpoints, files.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "autograd/var.hpp"
#include "data/batcher.hpp"
#include "data/idx.hpp"
#include "examples/plot.hpp"
#include "examples/progress.hpp"
#include "examples/projector_files.hpp"
#include "examples/tutorial_model.hpp"
#include "examples/tsne.hpp"
#include "losses/triplet.hpp"
#include "metrics/retrieval.hpp"
#include "nn/checkpoint.hpp"
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

namespace {

// The tutorial's settings, the defaults of the flags.
constexpr int kEpochs = 5;               // model.fit(train_dataset, epochs=5)
constexpr int kBatchSize = 32;           // train_dataset.shuffle(1024).batch(32)
constexpr double kLearningRate = 0.001;  // tf.keras.optimizers.Adam(0.001)
constexpr double kMargin = 1.0;          // tfa.losses.TripletSemiHardLoss(), default margin
constexpr std::uint64_t kSeed = 42;
constexpr std::size_t kEmbedChunk = 500;  // images embedded at once when evaluating (bounds memory)
constexpr std::size_t kTsnePoints = 3000;  // exact t-SNE is O(n^2): draw a seeded sample

// A flag that is wrong on its own or against the data/checkpoint: exit code 2.
struct UsageError : Error {
    using Error::Error;
};

struct Options {
    std::string data = "data/mnist";
    int epochs = kEpochs;
    int batch_size = kBatchSize;
    double lr = kLearningRate;  // double: metrics.json prints 0.001, not 0.0010000000474974513
    double margin = kMargin;
    std::uint64_t seed = kSeed;
    int threads = 0;  // 0: OpenMP's default (all cores)
    std::size_t limit_train = 0;
    std::size_t shuffle_buffer = 0;
    std::string out = "out";
    std::string checkpoint, resume;
    bool summary = false, quiet = false;
};

// model.predict(): dropout off, no graph, in chunks.
Tensor embed(nn::Sequential& model, const data::Dataset& d, std::size_t count) {
    NoGradGuard no_grad;
    model.train(false);
    Tensor out;
    for (std::size_t start = 0; start < count; start += kEmbedChunk) {
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

// What training has produced so far; saved in checkpoints so a resumed run reports every epoch.
struct History {
    std::vector<double> epoch_loss, epoch_seconds, epoch_active;
    std::size_t no_positive_batches = 0;
};

// What a checkpoint must agree on to be resumed: the settings that decide the batches, and the
// data itself (a CRC-32 of the training images and labels used).
std::map<std::string, std::int64_t> run_key(const Options& opt, const data::Dataset& train,
                                            std::size_t train_count) {
    const std::size_t pixels = train_count * train.rows * train.cols;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32_z(crc, train.images.data(), pixels);
    for (std::size_t i = 0; i < train_count; ++i) {
        const auto label = static_cast<unsigned char>(train.labels[i]);
        crc = crc32_z(crc, &label, 1);
    }
    return {{"seed", std::int64_t(opt.seed)},
            {"batch_size", opt.batch_size},
            {"train_samples", std::int64_t(train_count)},
            {"shuffle_buffer", std::int64_t(opt.shuffle_buffer)},
            {"data_crc32", std::int64_t(crc)}};
}

// Per-epoch history lives in the checkpoint's integer metadata as the bit patterns of the
// doubles (exact, unlike any decimal rounding).
std::int64_t bits(double x) { return std::bit_cast<std::int64_t>(x); }
double unbits(std::int64_t x) { return std::bit_cast<double>(x); }

void save_checkpoint(const Options& opt, nn::Sequential& model, const nn::Adam& adam,
                     std::map<std::string, std::int64_t> meta, const History& h) {
    meta["epoch"] = std::int64_t(h.epoch_loss.size());
    meta["no_positive_batches"] = std::int64_t(h.no_positive_batches);
    for (std::size_t e = 0; e < h.epoch_loss.size(); ++e) {
        meta["epoch_loss_" + std::to_string(e)] = bits(h.epoch_loss[e]);
        meta["epoch_seconds_" + std::to_string(e)] = bits(h.epoch_seconds[e]);
        meta["epoch_active_" + std::to_string(e)] = bits(h.epoch_active[e]);
    }
    nn::save_checkpoint(opt.checkpoint, model, adam, meta);
}

// Loads --resume into model and optimiser after checking it belongs to this run; returns the
// history of the epochs it holds.
History resume(const Options& opt, nn::Sequential& model, nn::Adam& adam,
               const std::map<std::string, std::int64_t>& key) {
    auto meta = nn::load_checkpoint(opt.resume, model, adam);
    const std::map<std::string, std::string> flag_of = {
        {"seed", "--seed"}, {"batch_size", "--batch-size"}, {"train_samples", "--limit-train"},
        {"shuffle_buffer", "--shuffle-buffer"}, {"data_crc32", "--data"}};
    for (const auto& [name, value] : key) {
        if (meta.count(name) && meta.at(name) == value) continue;
        const std::string here = name == "data_crc32"      ? opt.data
                                 : name == "train_samples" ? "(" + std::to_string(value) +
                                                                 " training images)"
                                                           : std::to_string(value);
        throw UsageError(flag_of.at(name) + " " + here + " does not match " + opt.resume +
                         ", made with " + name + " " +
                         (meta.count(name) ? std::to_string(meta.at(name)) : "unknown") +
                         " (resume with the settings and data it was made with)");
    }
    const auto epochs_done = std::size_t(meta.at("epoch"));
    if (epochs_done > std::size_t(opt.epochs))
        throw UsageError("--epochs " + std::to_string(opt.epochs) + " is less than the " +
                         std::to_string(epochs_done) + " epochs already done in " + opt.resume);
    History h;
    h.no_positive_batches = std::size_t(meta.at("no_positive_batches"));
    for (std::size_t e = 0; e < epochs_done; ++e) {
        h.epoch_loss.push_back(unbits(meta.at("epoch_loss_" + std::to_string(e))));
        h.epoch_seconds.push_back(unbits(meta.at("epoch_seconds_" + std::to_string(e))));
        h.epoch_active.push_back(unbits(meta.at("epoch_active_" + std::to_string(e))));
    }
    return h;
}

// --out and --checkpoint are checked before any work, without creating anything yet: a typo
// must not cost minutes of training, and a failed run must not leave folders behind.
void check_output_paths(const Options& opt) {
    std::error_code ec;
    if (fs::exists(opt.out, ec) && !fs::is_directory(opt.out, ec))
        throw IoError("--out " + opt.out + ": exists and is not a folder");
    if (opt.checkpoint.empty()) return;
    if (fs::is_directory(opt.checkpoint, ec))
        throw IoError("--checkpoint " + opt.checkpoint + ": is a folder, not a file");
    const fs::path parent = fs::absolute(opt.checkpoint, ec).parent_path();
    if (!fs::is_directory(parent, ec))
        throw IoError("--checkpoint " + opt.checkpoint + ": folder " + parent.string() +
                      " does not exist");
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
    check_output_paths(opt);

    // --- data ------------------------------------------------------------------------------
    const data::Split split = data::load_mnist_folder(opt.data);
    const std::string dataset = dataset_name(opt.data);
    if (opt.limit_train > split.train.count)
        throw UsageError("--limit-train " + std::to_string(opt.limit_train) + " exceeds the " +
                         std::to_string(split.train.count) + " training images in " + opt.data);
    const data::Batcher batcher(split.train, std::size_t(opt.batch_size), opt.seed,
                                opt.shuffle_buffer, opt.limit_train);
    const std::size_t train_count = batcher.num_samples(), test_count = split.test.count;
    const auto key = run_key(opt, split.train, train_count);

    // --- model and optimiser: the tutorial's model.compile(optimizer=Adam(0.001), ...) ------
    nn::Sequential model;
    examples::add_tutorial_layers(model);
    Rng init_rng(opt.seed);
    model.build({1, split.train.rows, split.train.cols}, init_rng);
    nn::Adam adam(model.parameters(), {.learning_rate = float(opt.lr)});
    History history;
    if (!opt.resume.empty()) history = resume(opt, model, adam, key);

    say("semigrad mnist_triplet: " + dataset + ", " + std::to_string(train_count) + " train / " +
        std::to_string(test_count) + " test images, " + std::to_string(threads) +
        " threads, OpenBLAS " + openblas_core() + " kernels, " + isa_name(active_isa()) + " path");
    if (!opt.resume.empty())
        say("resumed from " + opt.resume + " after epoch " +
            std::to_string(history.epoch_loss.size()));
    const float untrained_p1 = untrained_precision_at_1(opt, split.test);

    // --- training: the tutorial's model.fit(train_dataset, epochs=5) -------------------------
    for (std::size_t epoch = history.epoch_loss.size(); epoch < std::size_t(opt.epochs); ++epoch) {
        model.train(true);
        examples::ProgressBar bar(epoch + 1, opt.epochs, batcher.num_batches(),
                                  talk && examples::stderr_is_terminal());
        double loss_sum = 0, active_sum = 0;  // Keras' running mean, weighted by batch size
        std::size_t seen = 0, done = 0;
        for (const data::Batch& batch : batcher.epoch(epoch)) {
            const Var images(batch.images);                    // [N,1,28,28] in [0,1]
            const Var embeddings = model.forward(images);      // forward: [N,256], unit rows
            losses::TripletStats stats;
            const Var loss = losses::triplet_semihard_loss(embeddings, batch.labels,
                                                           float(opt.margin),
                                                           losses::Distance::L2, &stats);
            adam.zero_grad();
            backward(loss);                                    // backward
            adam.step();                                       // update

            const std::size_t n = batch.labels.size();
            loss_sum += double(loss.value().item()) * n;
            active_sum += double(stats.fraction_active) * n;
            history.no_positive_batches += stats.no_positive_pair;
            seen += n;
            bar.update(++done, loss_sum / seen, seen);
        }
        bar.finish();
        history.epoch_loss.push_back(loss_sum / seen);
        history.epoch_active.push_back(active_sum / seen);
        history.epoch_seconds.push_back(bar.elapsed_seconds());
        char line[160];
        std::snprintf(line, sizeof line,
                      "epoch %zu/%d  loss %.4f  active triplets %.1f%%  %.1fs  %.0f samples/s",
                      epoch + 1, opt.epochs, history.epoch_loss.back(),
                      100 * history.epoch_active.back(), history.epoch_seconds.back(),
                      seen / history.epoch_seconds.back());
        say(line);
        if (!opt.checkpoint.empty()) save_checkpoint(opt, model, adam, key, history);
    }

    // --- the tutorial's last cells: embed the test set, save for the Projector ---------------
    const fs::path out(opt.out);
    fs::create_directories(out);
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
    say("drawing a t-SNE of the test embeddings (exact, O(n^2): a few seconds)");
    draw_embeddings(opt, dataset, test_embeddings, split.test.labels,
                    (out / "embeddings.png").string());

    double total_seconds = 0;
    for (double s : history.epoch_seconds) total_seconds += s;
    const double samples_per_second =
        total_seconds > 0 ? double(train_count) * history.epoch_seconds.size() / total_seconds
                          : 0.0;
    const nlohmann::ordered_json metrics_json = {
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
    write_file_atomically((out / "metrics.json").string(), metrics_json.dump(2) + "\n");

    char line[200];
    std::snprintf(line, sizeof line,
                  "test precision@1 %.4f  1-NN accuracy (vs train) %.4f  MAP@R %.4f  "
                  "(untrained precision@1 %.4f)",
                  p1, knn, map_r, untrained_p1);
    say(line);
    say("wrote " + (out / "vecs.tsv").string() + ", meta.tsv, metrics.json, embeddings.png");
    return 0;
}

// Flag checks with plain messages (CLI11's PositiveNumber prints the whole double range).
// Numbers must be finite; whole numbers must not be negative (CLI11 would wrap "-3" around).
CLI::Validator number_check(bool (*ok)(double), const char* rule) {
    return CLI::Validator(
        [ok, rule](std::string& text) -> std::string {
            try {
                std::size_t used = 0;
                const double v = std::stod(text, &used);
                if (used == text.size() && std::isfinite(v) && ok(v)) return {};
            } catch (const std::exception&) {
            }
            return std::string("must be ") + rule + ", got '" + text + "'";
        },
        rule);
}
const CLI::Validator positive = number_check([](double v) { return v > 0; }, "a number > 0");
const CLI::Validator non_negative = number_check([](double v) { return v >= 0; }, "a number >= 0");
const CLI::Validator whole = number_check(
    [](double v) { return v >= 0 && v == std::floor(v); }, "a whole number >= 0");

}  // namespace

int main(int argc, char** argv) {
    // Every step frees and re-allocates the same activation-sized blocks: keep them rather than
    // page-fault them back each step (tensor/memory.hpp; 19-22 -> 15 ms per step here).
    semigrad::keep_freed_memory();
    Options opt;
    CLI::App app{"Train TensorFlow Addons' TripletSemiHardLoss tutorial model on MNIST-format data "
                 "and write vecs.tsv/meta.tsv (Embedding Projector), metrics.json and embeddings.png.",
                 "mnist_triplet"};
    app.set_version_flag("--version", std::string("mnist_triplet (semigrad) ") + SEMIGRAD_VERSION);
    app.add_option("--data", opt.data, "Folder with the four MNIST IDX files (.gz or plain)")
        ->capture_default_str();
    app.add_option("--epochs", opt.epochs, "Total epochs (with --resume: including those done)")
        ->check(positive)->capture_default_str();
    app.add_option("--batch-size", opt.batch_size, "Images per training batch")
        ->check(positive)->capture_default_str();
    app.add_option("--lr", opt.lr, "Adam learning rate")
        ->check(positive)->capture_default_str();
    app.add_option("--margin", opt.margin, "Triplet margin")
        ->check(non_negative)->capture_default_str();
    app.add_option("--seed", opt.seed, "Seed for initialisation, shuffling and dropout")
        ->check(whole)->capture_default_str();
    app.add_option("--threads", opt.threads, "OpenMP/OpenBLAS threads (default: all cores)")
        ->check(positive);
    app.add_option("--limit-train", opt.limit_train, "Train on the first N training images only")
        ->check(whole & positive);
    app.add_option("--shuffle-buffer", opt.shuffle_buffer,
                   "Keras-style shuffle buffer (the tutorial's shuffle(1024)); 0 = full shuffle")
        ->check(whole)->capture_default_str();
    app.add_option("--out", opt.out, "Output folder")->capture_default_str();
    app.add_option("--checkpoint", opt.checkpoint, "Save model+optimiser state here after every epoch");
    app.add_option("--resume", opt.resume, "Continue from this checkpoint up to --epochs")
        ->check(CLI::ExistingFile);
    app.add_flag("--summary", opt.summary, "Print the Keras-like model summary and exit");
    app.add_flag("--quiet", opt.quiet, "Print only errors");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "error: " << e.what() << " (see --help)\n";
        return 2;
    }
    try {
        return run(opt);
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
