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
//
// Under `mpirun -np N` the same program trains data-parallel (examples/data_parallel.hpp): each
// process takes its share of every global batch, the triplet loss mines over the whole batch,
// the gradients are summed across processes before Adam, and rank 0 alone prints and writes.
#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <zlib.h>

#include "autograd/var.hpp"
#include "data/batcher.hpp"
#include "data/idx.hpp"
#include "distributed/agreement.hpp"
#include "distributed/communicator.hpp"
#include "distributed/data_parallel.hpp"
#include "examples/data_parallel.hpp"
#include "examples/evaluation.hpp"
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
#include "tensor/profile.hpp"
#include "tensor/simd.hpp"

namespace fs = std::filesystem;
using namespace semigrad;
using namespace semigrad::examples;

namespace {

// Images embedded at once when evaluating (Sequential::predict, a chunk per thread): the
// training batch, so evaluation reuses the blocks training freed (a chunk's activations stay in
// its core's caches); chunks of 500 made 100 MB activations and most of a Fashion-MNIST run's
// peak memory.
constexpr std::size_t kEmbedChunk = 32;
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
// (a ReLU maps NaN to 0). The optimiser notes whether every weight it wrote is finite in its own
// parallel pass (nn/optimizer.hpp); the weights are scanned only when it saw one, to name it.
void stop_if_not_finite(const Options& opt, const nn::Optimizer& optimizer, nn::Sequential& model,
                        std::size_t epoch, std::size_t step) {
    if (optimizer.last_step_finite()) return;
    for (const nn::Parameter& p : model.parameters()) {
        const Tensor& t = p.var.value();
        const float* v = t.data();
        const float* bad = std::find_if(v, v + t.size(), [](float x) { return !std::isfinite(x); });
        if (bad != v + t.size())
            throw Diverged(opt, epoch, step,
                           "parameter " + p.name + " holds " + word(*bad) + " at index " +
                               std::to_string(bad - v));
    }
    throw Diverged(opt, epoch, step, "a weight is not finite");  // the optimiser saw one
}

// One epoch of the tutorial's model.fit(train_dataset): for each batch, forward, loss,
// backward, update. Adds the epoch's means (Keras' running mean, weighted by batch size) to
// `history`. Returns false if a signal stopped it after a step: then history.partial holds the
// steps done, and the next call (in a resumed run) continues there.
//
// Under mpirun this process takes its share of each batch (one process: all of it), the loss
// covers the whole batch and `gradients` sums the processes' gradients; a signal stops every
// process after the same step.
bool train_epoch(const Options& opt, nn::Sequential& model, nn::Adam& adam,
                 const data::Batcher& batcher, std::size_t epoch, History& history, bool talk,
                 const distributed::Communicator& comm,
                 distributed::GradientAllReduce& gradients) {
    const Mining mining = opt.mining == "local" ? Mining::Local : Mining::Global;
    losses::TripletWorkspace workspace;  // the loss's scratch memory, kept from step to step
    const LossChoice choice{opt.loss, losses::parse_distance(opt.distance), float(opt.margin),
                            &workspace};
    model.train(true);
    ProgressBar bar(epoch + 1, opt.epochs, batcher.num_batches(), talk && stderr_is_terminal());
    PartialEpoch& sums = history.partial;  // steps > 0: resumed in the middle of this epoch
    const std::vector<std::size_t> order = batcher.epoch_order(epoch);
    while (sums.steps < batcher.num_batches()) {
        const profile::Scope step("train step");           // --profile's table
        const data::Batch global_batch = batcher.batch(order, sums.steps);
        const std::size_t n = global_batch.labels.size();
        const data::Batch batch = shard_of_batch(global_batch, comm);  // this process's rows
        model.set_sample_offset(distributed::shard_of(n, comm.rank(), comm.size()).begin);
        const Var images(batch.images);                    // [N,1,28,28] in [0,1]
        const Var embeddings = model.forward(images);      // forward: [N,256], unit rows
        const ShardLoss loss = [&] {
            const profile::Scope scope("loss");
            return triplet_loss_across_ranks(embeddings, batch.labels, n, mining, choice, comm);
        }();
        if (!std::isfinite(loss.global_loss))  // before the update, which would spread it
            throw Diverged(opt, epoch, sums.steps + 1,
                           "the loss is " + word(float(loss.global_loss)));
        backward(loss.loss);                               // backward
        gradients.sum(comm, loss.gradient_scale);          // summed over processes
        adam.step();                                       // update; drops the grads
        stop_if_not_finite(opt, adam, model, epoch, sums.steps + 1);

        sums.loss_sum += loss.global_loss * n;
        sums.active_sum += loss.global_fraction_active * n;
        history.no_positive_batches += loss.global_no_positive_pair;
        sums.seen += n;
        bar.update(++sums.steps, sums.loss_sum / sums.seen, sums.seen);
        // Under mpirun the processes agree whether any saw a signal, so all stop after this step.
        const bool stop = comm.size() > 1 ? comm.allreduce_max(stop_signal()) != 0 : stop_signal();
        if (stop && sums.steps < batcher.num_batches()) {
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

// model.predict(): dropout off, no graph, in chunks; each process embeds its share.
TestEmbeddings embed(nn::Sequential& model, const data::Dataset& d, std::size_t count,
                     const distributed::Communicator& comm) {
    stop_if_asked("while embedding", "nothing written to --out");
    return embed_test_set(model, d, count, kEmbedChunk, comm);
}

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
float untrained_precision_at_1(const Options& opt, const data::Dataset& test,
                               const distributed::Communicator& comm) {
    nn::Sequential fresh;
    examples::add_tutorial_layers(fresh);
    Rng init_rng(opt.seed);
    fresh.build({1, test.rows, test.cols}, init_rng);
    const Tensor embeddings = embed(fresh, test, test.count, comm).embeddings;
    return comm.is_root() ? metrics::precision_at_1(embeddings, test.labels) : 0.0f;
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

// Exit code 2 for a usage error, 1 for any other failure.
int exit_code_of(const std::exception& e) { return dynamic_cast<const UsageError*>(&e) ? 2 : 1; }

// Under mpirun every process must train the same run: the same settings and the same training
// data (machines with different copies of it would otherwise train on a mix, silently).
void check_same_run_everywhere(const Options& opt, const RunKey& key,
                               const distributed::Communicator& comm) {
    std::string settings = opt.mining + " " + std::to_string(opt.epochs) + " " +
                           std::to_string(std::bit_cast<std::uint64_t>(opt.lr)) + " " +
                           std::to_string(std::bit_cast<std::uint64_t>(opt.margin));
    for (const auto& [name, value] : key) settings += " " + name + "=" + std::to_string(value);
    const auto digest = std::uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(settings.data()),
                                              settings.size()));
    const std::vector<std::uint32_t> digests = comm.allgather(digest);
    distributed::run_agreed(comm, [&] {
        if (digest != digests[0])
            throw UsageError("process " + std::to_string(comm.rank()) +
                             " has other flags or training data than process 0 (" + opt.data +
                             "): every process of a job must train the same run");
    }, exit_code_of);
}

int run(const Options& opt, const distributed::Communicator& comm) {
    if (opt.threads > 0) set_num_threads(opt.threads);
    const int threads = num_threads();
    const bool talk = !opt.quiet && comm.is_root();  // one process speaks for the job
    auto say = [&](const std::string& line) {
        if (talk) std::cout << line << std::endl;
    };

    if (opt.summary) {  // the model alone: no data, no files
        nn::Sequential model;
        examples::add_tutorial_layers(model);
        Rng init_rng(opt.seed);
        model.build({1, 28, 28}, init_rng);
        if (comm.is_root()) std::cout << model.summary();
        return 0;
    }

    // Every process reads the flags' files itself; one that fails ends them all, reported once
    // (distributed/agreement.hpp).
    data::Split split;
    std::optional<data::Batcher> batcher;
    RunKey key;
    nn::Sequential model;
    std::optional<nn::Adam> adam;
    History history;
    distributed::run_agreed(comm, [&] {
        if (opt.batch_size % comm.size() != 0)
            throw UsageError("--batch-size " + std::to_string(opt.batch_size) +
                             " does not divide among " + std::to_string(comm.size()) +
                             " processes (it is the global batch; each takes an equal share)");
        check_paths(opt);

        // --- data --------------------------------------------------------------------------
        split = data::load_mnist_folder(opt.data, opt.limit_train);
        if (opt.limit_train > split.train.file_count)
            throw UsageError("--limit-train " + std::to_string(opt.limit_train) + " exceeds the " +
                             std::to_string(split.train.file_count) + " training images in " +
                             opt.data);
        batcher.emplace(split.train, std::size_t(opt.batch_size), opt.seed, opt.shuffle_buffer,
                        opt.limit_train);
        key = run_key(opt, split.train, batcher->num_samples());

        // --- model and optimiser: the tutorial's model.compile(optimizer=Adam(0.001), ...) --
        examples::add_tutorial_layers(model);
        Rng init_rng(opt.seed);
        model.build({1, split.train.rows, split.train.cols}, init_rng);
        model.set_fuse(!opt.no_fuse);  // same values either way (nn/sequential.hpp)
        adam.emplace(model.parameters(), nn::AdamOptions{.learning_rate = float(opt.lr)});
        if (!opt.resume.empty()) history = resume_run(opt, model, *adam, key);
    }, exit_code_of);
    check_same_run_everywhere(opt, key, comm);
    // Every process starts from rank 0's weights and optimiser state.
    distributed::broadcast_state(comm, *adam);
    distributed::GradientAllReduce gradients(model.parameters());
    const std::string dataset = dataset_name(opt.data);
    const std::size_t train_count = batcher->num_samples(), test_count = split.test.count;

    say("semigrad mnist_triplet: " + dataset + ", " + std::to_string(train_count) + " train / " +
        std::to_string(test_count) + " test images, " + std::to_string(threads) +
        " threads, OpenBLAS " + openblas_core() + " kernels, " + isa_name(active_isa()) + " path, " +
        opt.loss + " loss on " + opt.distance + " distances" +
        (comm.size() > 1 ? ", " + std::to_string(comm.size()) + " processes (" + opt.mining +
                               " mining)"
                         : ""));
    if (!opt.resume.empty())
        say("resumed from " + opt.resume + " after epoch " +
            std::to_string(history.epoch_loss.size()) +
            (history.partial.steps ? ", step " + std::to_string(history.partial.steps) : ""));
    const float untrained_p1 = untrained_precision_at_1(opt, split.test, comm);

    // --- training: the tutorial's model.fit(train_dataset, epochs=5) -------------------------
    profile::set_enabled(opt.profile);
    for (std::size_t epoch = history.epoch_loss.size(); epoch < std::size_t(opt.epochs); ++epoch) {
        stop_if_asked("before epoch " + std::to_string(epoch + 1),
                      opt.checkpoint.empty() || epoch == 0
                          ? "nothing written"
                          : "the checkpoint " + opt.checkpoint + " holds " +
                                std::to_string(epoch) + " epochs; --out unchanged");
        if (!train_epoch(opt, model, *adam, *batcher, epoch, history, talk, comm, gradients)) {
            const std::string at = "at epoch " + std::to_string(epoch + 1) + ", step " +
                                   std::to_string(history.partial.steps);
            if (!opt.checkpoint.empty() && comm.is_root())
                save_run(opt, model, *adam, key, history);
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
                      double(batcher->num_samples()) / history.epoch_seconds.back());
        say(line);
        if (!opt.checkpoint.empty() && comm.is_root()) save_run(opt, model, *adam, key, history);
    }
    profile::set_enabled(false);
    for (const profile::Row& row : profile::rows())  // the top row counts the steps
        if (opt.profile && row.name == "train step")
            std::cout << "where a training step's time went (--profile, " << row.calls
                      << " steps):\n" << profile::table(row.calls);

    // --- the tutorial's last cells: embed the test set, save for the Projector ---------------
    // Every output goes into a staged folder beside --out, swapped in whole at the end: a reader
    // (or a failure half-way) never sees new vecs.tsv beside an old metrics.json. Every process
    // embeds its share; rank 0 writes.
    const auto [test_embeddings, eval_images_per_second] =
        embed(model, split.test, test_count, comm);
    // 1-NN against the training set, embedded a block at a time (examples/evaluation.hpp).
    stop_if_asked("while embedding", "nothing written to --out");
    const float knn = nearest_train_accuracy(model, split.train, train_count, test_embeddings,
                                             split.test.labels, kEmbedChunk, comm);
    if (!comm.is_root()) return 0;
    char eval_line[160];
    std::snprintf(eval_line, sizeof eval_line,
                  "embedded the %zu test images at %.0f images/s (no graph, chunks of %zu, "
                  "each on one of %d threads)",
                  test_count, eval_images_per_second, kEmbedChunk, num_threads());
    say(eval_line);
    StagedFolder staged(opt.out);
    const fs::path out(staged.path());
    examples::write_vecs_tsv((out / "vecs.tsv").string(), test_embeddings);
    examples::write_meta_tsv((out / "meta.tsv").string(), split.test.labels);

    // --- evaluation: retrieval on the unit sphere --------------------------------------------
    const float p1 = metrics::precision_at_1(test_embeddings, split.test.labels);
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
        {"loss", opt.loss},
        {"distance", opt.distance},
        {"threads", threads},
        {"processes", comm.size()},
        {"mining", opt.mining},
        {"openblas_core", openblas_core()},
        {"isa", isa_name(active_isa())},
        {"fused_blocks", model.fuse()},
        {"seed", opt.seed},
        {"epoch_seconds", history.epoch_seconds},
        {"epoch_loss", history.epoch_loss},
        {"epoch_active_triplet_fraction", history.epoch_active},
        {"no_positive_batches", history.no_positive_batches},
        {"train_samples_per_second", samples_per_second},
        {"eval_images_per_second", eval_images_per_second},
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
    // Under mpirun: this process's place in the job; otherwise a job of one.
    const distributed::Communicator comm;
    Options opt;
    // Rank 0 prints help, version or a flag's error; every process stops if any must.
    const std::optional<int> stop = parse_options(argc, argv, opt, comm.is_root());
    if (const int code = comm.allreduce_max(stop ? *stop + 1 : 0)) return code - 1;
    install_stop_handlers();
    // A failure on one process while the others wait for it in a collective: end them all.
    const auto fail = [&](int code) {
        if (comm.size() > 1) comm.abort(code);
        return code;
    };
    try {
        return run(opt, comm);
    } catch (const distributed::JobFailure& e) {  // every process knows; one reports
        if (e.report) std::cerr << "error: " << e.what() << '\n';
        return e.exit_code;
    } catch (const Diverged& e) {  // the processes hold the same weights: all stop at this step
        if (comm.is_root()) std::cerr << "error: " << e.what() << '\n';
        return 1;
    } catch (const Interrupted& e) {
        std::cerr << e.what() << '\n';
        return fail(128 + e.signal);
    } catch (const std::exception& e) {  // semigrad::Error, std::bad_alloc, filesystem errors
        std::cerr << "error: " << e.what() << '\n';
        return fail(exit_code_of(e));
    }
}
