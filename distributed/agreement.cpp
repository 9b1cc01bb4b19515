// run_agreed: every rank runs its part, then all learn whether anyone failed (agreement.hpp).
#include "distributed/agreement.hpp"

#include <string>
#include <vector>

namespace semigrad::distributed {

void run_agreed(const Communicator& comm, const std::function<void()>& body,
                const std::function<int(const std::exception&)>& exit_code_of) {
    int code = 0;
    std::string message;
    try {
        body();
    } catch (const std::exception& e) {
        code = exit_code_of(e);
        if (code == 0) code = 1;  // a failure is never a success
        message = e.what();
    }
    const std::vector<int> codes = comm.allgather(code);
    for (std::size_t r = 0; r < codes.size(); ++r) {
        if (codes[r] == 0) continue;
        const bool mine = r == std::size_t(comm.rank());
        throw JobFailure(mine ? message : "rank " + std::to_string(r) + " failed", codes[r], mine);
    }
}

}  // namespace semigrad::distributed
