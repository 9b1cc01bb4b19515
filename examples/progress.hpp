// Progress output for the trainer: a one-line bar redrawn in place on a terminal
// ("epoch 2/5 [=====>    ] 120/250  loss 0.3121  2.1k samples/s  ETA 4s"), and nothing but the
// per-epoch summary line when stderr is a file or pipe (logs stay readable). No dependency
// was worth it for one line of text: Debian packages no C++ progress-bar library.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace semigrad::examples {

class ProgressBar {
  public:
    ProgressBar(std::size_t epoch, std::size_t epochs, std::size_t batches, bool enabled);
    // After each batch: batches done, running mean loss, samples seen in this epoch.
    void update(std::size_t done, double loss, std::size_t samples);
    // Erases the bar (the caller prints the epoch summary).
    void finish();
    double elapsed_seconds() const;

  private:
    std::size_t epoch_, epochs_, batches_;
    bool enabled_;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

// True when stderr is a terminal.
bool stderr_is_terminal();

}  // namespace semigrad::examples
