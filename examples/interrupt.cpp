#include "examples/interrupt.hpp"

#include <signal.h>

namespace semigrad::examples {

namespace {

volatile sig_atomic_t received = 0;

void record(int sig) { received = sig; }

}  // namespace

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = record;
    sigemptyset(&action.sa_mask);
    // SA_RESTART: a read interrupted by the signal resumes instead of failing with EINTR (zlib
    // would report it as a read error). SA_RESETHAND: a second signal kills at once.
    action.sa_flags = SA_RESTART | SA_RESETHAND;
    for (int sig : {SIGINT, SIGTERM}) {
        // A signal the parent chose to ignore stays ignored (a shell starts background jobs
        // with SIGINT ignored, so that Ctrl-C reaches only the foreground).
        struct sigaction before {};
        if (sigaction(sig, nullptr, &before) == 0 && before.sa_handler == SIG_IGN) continue;
        sigaction(sig, &action, nullptr);
    }
}

int stop_signal() { return received; }

std::string signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal " + std::to_string(sig);
}

void stop_if_asked(const std::string& doing, const std::string& outcome) {
    if (const int sig = received)
        throw Interrupted(sig, "interrupted by " + signal_name(sig) + " " + doing + ": " + outcome);
}

}  // namespace semigrad::examples
