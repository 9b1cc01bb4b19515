#include "examples/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace semigrad::examples {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::size_t epoch, std::size_t epochs, std::size_t batches, bool enabled)
    : epoch_(epoch), epochs_(epochs), batches_(batches), enabled_(enabled),
      start_(std::chrono::steady_clock::now()), last_draw_() {}

double ProgressBar::elapsed_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(std::size_t done, double loss, std::size_t samples) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    // Redraw at most 10 times a second: a terminal is slower than a training step.
    if (done < batches_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double seconds = elapsed_seconds();
    const double rate = seconds > 0 ? samples / seconds : 0.0;
    const double eta = done > 0 ? seconds * double(batches_ - done) / double(done) : 0.0;
    constexpr int width = 30;
    const int filled = batches_ ? int(width * done / batches_) : width;
    std::string bar(width, ' ');
    for (int i = 0; i < filled; ++i) bar[i] = '=';
    if (filled < width) bar[filled] = '>';
    std::fprintf(stderr, "\repoch %zu/%zu [%s] %zu/%zu  loss %.4f  %.0f samples/s  ETA %.0fs \x1b[K",
                 epoch_, epochs_, bar.c_str(), done, batches_, loss, rate, eta);
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (!enabled_) return;
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
}

}  // namespace semigrad::examples
