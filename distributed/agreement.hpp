// Failing together: a rank that throws while the others wait in a collective would hang the job.
// The work before a program's first collective (reading flags, data, checkpoints) is where one
// rank can fail alone (its file is corrupt, its flags differ), so it runs through run_agreed():
// each rank runs the body, then all exchange one exit code, and if any rank failed, every rank
// throws JobFailure. The first failing rank's message is reported by that rank alone, so the job
// prints one error, and every rank exits with the same code. A failure later on (a rank that
// cannot write a checkpoint) ends the job with Communicator::abort instead.
#pragma once

#include <exception>
#include <functional>

#include "distributed/communicator.hpp"
#include "tensor/error.hpp"

namespace semigrad::distributed {

struct JobFailure : Error {
    JobFailure(const std::string& message, int exit_code, bool report)
        : Error(message), exit_code(exit_code), report(report) {}
    int exit_code;  // the first failing rank's code, on every rank
    bool report;    // true on the one rank that should print what()
};

// Runs `body` on this rank, then agrees with the others (one allgather of exit codes).
// `exit_code_of` maps what body threw to a non-zero exit code. Every rank must call this at the
// same point of the program.
void run_agreed(const Communicator& comm, const std::function<void()>& body,
                const std::function<int(const std::exception&)>& exit_code_of);

}  // namespace semigrad::distributed
