// The trainer's command line: its settings (the tutorial's by default) and the parser that
// range-checks every flag as the type it becomes, so a bad value is exit 2 before any work.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tensor/error.hpp"

namespace semigrad::examples {

// The tutorial's settings, the defaults of the flags.
inline constexpr int kEpochs = 5;               // model.fit(train_dataset, epochs=5)
inline constexpr int kBatchSize = 32;           // train_dataset.shuffle(1024).batch(32)
inline constexpr double kLearningRate = 0.001;  // tf.keras.optimizers.Adam(0.001)
inline constexpr double kMargin = 1.0;          // tfa.losses.TripletSemiHardLoss(), default margin
inline constexpr std::uint64_t kSeed = 42;
inline constexpr const char* kLoss = "semihard";  // tfa.losses.TripletSemiHardLoss()
inline constexpr const char* kDistance = "L2";    // its default distance_metric="L2"
// --loss choices: TFA's TripletSemiHardLoss, TripletHardLoss and TripletHardLoss(soft=True).
inline constexpr const char* kLosses[] = {"semihard", "hard", "soft-hard"};

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
    std::string loss = kLoss;          // one of kLosses
    std::string distance = kDistance;  // TFA's distance_metric: L2, squared-L2 or angular
    std::uint64_t seed = kSeed;
    int threads = 0;  // 0: OpenMP's default (all cores)
    std::size_t limit_train = 0;
    std::size_t shuffle_buffer = 0;
    std::string out = "out";
    std::string projection = "umap";  // umap | tsne | none: the picture of the test embeddings
    std::string checkpoint, resume;
    std::string mining = "global";  // under mpirun: examples/data_parallel.hpp
    bool summary = false, quiet = false;
    bool profile = false;  // print where a training step's time went (tensor/profile.hpp)
    bool no_fuse = false;  // run Conv2D(relu) -> MaxPool2D -> Dropout as three layers
};

// Parses argv into `opt`. Returns an exit code when the program should stop here: 0 after
// --help or --version (printed), 2 after a bad flag (one `error:` line on stderr). With
// `speak` false nothing is printed (the processes of an MPI job other than rank 0).
std::optional<int> parse_options(int argc, char** argv, Options& opt, bool speak = true);

}  // namespace semigrad::examples
