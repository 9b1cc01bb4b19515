#include "examples/options.hpp"

#include <sched.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cfloat>
#include <cstdlib>
#include <cmath>
#include <iostream>
#include <thread>

namespace semigrad::examples {

namespace {

// Flag checks with plain messages (CLI11's PositiveNumber prints the whole double range).
// Numbers must be finite; whole numbers must not be negative (CLI11 would wrap "-3" around).
// A value is checked as the type it becomes: --lr and --margin go to the loss and Adam as
// floats, so 1e39 (a finite double, infinity as a float) and 1e-50 (0 as a float) are refused.
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
const CLI::Validator positive_float = number_check(
    [](double v) { return v <= FLT_MAX && float(v) > 0; }, "a number > 0 that a float holds (1e-45 .. 3.4e38)");
const CLI::Validator non_negative_float = number_check(
    [](double v) { return v >= 0 && v <= FLT_MAX; }, "a number >= 0 that a float holds (<= 3.4e38)");
// Whole numbers become std::uint64_t or std::size_t: digits only, and below 2^64 (as a
// double, 18446744073709551616 would pass a "finite and whole" check and then wrap around).
const CLI::Validator whole(
    [](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        if (digits) std::strtoull(text.c_str(), nullptr, 10);
        if (digits && errno != ERANGE) return {};
        return "must be a whole number from 0 to 18446744073709551615, got '" + text + "'";
    },
    "a whole number >= 0");

// CPUs this process may run on (its affinity mask: a container or taskset may allow fewer than
// the machine has).
int hardware_threads() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return std::max(1, int(std::thread::hardware_concurrency()));
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, Options& opt, bool speak) {
    CLI::App app{"Train TensorFlow Addons' TripletSemiHardLoss tutorial model on MNIST-format data "
                 "and write vecs.tsv/meta.tsv (Embedding Projector), metrics.json and the map of the test "
                 "embeddings (embeddings.png, embeddings.html).",
                 "mnist_triplet"};
    app.set_version_flag("--version", std::string("mnist_triplet (semigrad) ") + SEMIGRAD_VERSION);
    app.add_option("--data", opt.data, "Folder with the four MNIST IDX files (.gz or plain)")
        ->capture_default_str();
    app.add_option("--epochs", opt.epochs, "Total epochs (with --resume: including those done)")
        ->check(positive)->capture_default_str();
    app.add_option("--batch-size", opt.batch_size,
                   "Images per training batch (under mpirun: the global batch, split evenly)")
        ->check(positive)->capture_default_str();
    app.add_option("--lr", opt.lr, "Adam learning rate")
        ->check(positive_float)->capture_default_str();
    app.add_option("--margin", opt.margin, "Triplet margin")
        ->check(non_negative_float)->capture_default_str();
    app.add_option("--loss", opt.loss, "Triplet loss: semihard (FaceNet's, the tutorial's), hard (batch-hard) "
                                       "or soft-hard (batch-hard with softplus; ignores --margin)")
        ->check(CLI::IsMember({kLosses[0], kLosses[1], kLosses[2]}))->capture_default_str();
    app.add_option("--distance", opt.distance, "Embedding distance: L2, squared-L2 or angular (TFA's names)")
        ->check(CLI::IsMember({"L2", "squared-L2", "angular"}))->capture_default_str();
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
    app.add_option("--projection", opt.projection,
                   "Picture of the test embeddings: umap (every point; also projection.tsv and the page "
                   "embeddings.html), tsne (at most 3,000 points) or none")
        ->check(CLI::IsMember({"umap", "tsne", "none"}))->capture_default_str();
    app.add_option("--checkpoint", opt.checkpoint, "Save model+optimiser state here after every epoch");
    app.add_option("--resume", opt.resume, "Continue from this checkpoint up to --epochs")
        ->check(CLI::ExistingFile);
    app.add_option("--mining", opt.mining,
                   "Under mpirun: mine triplets over the global batch or each process's share")
        ->check(CLI::IsMember({"global", "local"}))->capture_default_str();
    app.add_flag("--summary", opt.summary, "Print the Keras-like model summary and exit");
    app.add_flag("--quiet", opt.quiet, "Print only errors");
    app.add_flag("--profile", opt.profile,
                 "After training, print a table of where a step's time went (ms per step)");
    app.add_flag("--no-fuse", opt.no_fuse,
                 "Run each Conv2D(relu) -> MaxPool2D -> Dropout as three layers, not one fused node");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return speak ? app.exit(e) : 0;
    } catch (const CLI::CallForVersion& e) {
        return speak ? app.exit(e) : 0;
    } catch (const CLI::ParseError& e) {
        if (speak) std::cerr << "error: " << e.what() << " (see --help)\n";
        return 2;
    }
    // More threads than the machine runs at once only slow OpenMP's barriers down (and 100000
    // would be capped silently by the runtime): refuse, naming the number.
    if (const int hw = hardware_threads(); opt.threads > hw) {
        if (speak)
            std::cerr << "error: --threads " << opt.threads << " is more than the " << hw
                      << " hardware threads this process may use\n";
        return 2;
    }
    return std::nullopt;
}

}  // namespace semigrad::examples
