// SIGINT (Ctrl-C) and SIGTERM as requests to stop, not as instant death: the handler only
// records the signal, and the trainer looks at it between steps, so it stops with every file
// whole, writes a checkpoint if asked to, removes its temporaries and says what it did. A second
// signal kills at once (the handler is reset after the first); what that leaves behind is
// recognisable and removed by the next run (tensor/atomic_file.hpp).
#pragma once

#include <string>

#include "tensor/error.hpp"

namespace semigrad::examples {

void install_stop_handlers();

// The signal received so far (SIGINT, SIGTERM), or 0.
int stop_signal();

// Thrown once the program has stopped cleanly on a signal; main prints the message on one line
// and exits 128 + signal (130 for SIGINT, 143 for SIGTERM), as a shell reports such a death.
struct Interrupted : Error {
    Interrupted(int sig, const std::string& what) : Error(what), signal(sig) {}
    int signal;
};

// Throws Interrupted("<signal name> <doing>: <outcome>") if a signal has arrived.
void stop_if_asked(const std::string& doing, const std::string& outcome);

std::string signal_name(int sig);

}  // namespace semigrad::examples
