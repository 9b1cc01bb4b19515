#include "examples/options.hpp"

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>

namespace semigrad::examples {

namespace {

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

std::optional<int> parse_options(int argc, char** argv, Options& opt) {
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
    app.add_flag("--no-fuse", opt.no_fuse,
                 "Run each Conv2D(relu) -> MaxPool2D -> Dropout as three layers, not one fused node");
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
    return std::nullopt;
}

}  // namespace semigrad::examples
