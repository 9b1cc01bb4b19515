// The trainer's run state: what training has produced so far (History), what a checkpoint must
// agree on to be resumed (the run key), saving and resuming it, and the checks on the output
// paths made before any work. The training step itself is in mnist_triplet.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/idx.hpp"
#include "examples/options.hpp"
#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"

namespace semigrad::examples {

// The steps done of an epoch that a signal cut short, with its running sums, so that a resumed
// run continues that epoch at the next batch and reports it as if it had never stopped.
struct PartialEpoch {
    std::size_t steps = 0, seen = 0;
    double loss_sum = 0, active_sum = 0, seconds = 0;
};

// Per-epoch results so far; saved in checkpoints so a resumed run reports every epoch.
struct History {
    std::vector<double> epoch_loss, epoch_seconds, epoch_active;
    std::size_t no_positive_batches = 0;
    PartialEpoch partial;  // of epoch number epoch_loss.size(); steps == 0: none
};

// The settings that decide the batches, the loss being minimised (--loss, --distance), and the
// data itself (a CRC-32 of the training images and labels used): a checkpoint is resumed only
// by a run with the same key.
using RunKey = std::map<std::string, std::int64_t>;
RunKey run_key(const Options& opt, const data::Dataset& train, std::size_t train_count);

// Writes model, optimiser, run key and history to --checkpoint (atomically).
void save_run(const Options& opt, nn::Sequential& model, const nn::Optimizer& adam,
              const RunKey& key, const History& history);

// Loads --resume into model and optimiser after checking that it belongs to this run (the run
// key, --epochs) and that every metadata entry is present with the right type and range;
// returns the history of the epochs it holds. UsageError (exit 2) for a mismatched flag,
// FormatError naming the key for a malformed entry.
History resume_run(const Options& opt, nn::Sequential& model, nn::Optimizer& adam,
                   const RunKey& key);

// --out, --checkpoint and --resume are checked before any work, without creating anything yet:
// a typo must not cost minutes of training, and a failed run must not leave folders behind.
// --out must be a folder of regular files (it is replaced as a whole) or not exist, in a
// writable place; --checkpoint must not be a symbolic link, and if it exists it must be a
// checkpoint (nothing else is overwritten), in a writable folder; --resume must be a regular
// file. Also removes the temporaries a killed run left beside --checkpoint.
void check_paths(const Options& opt);

}  // namespace semigrad::examples
