// Communicator over MPI, or the single-process fallback (communicator.hpp).
//
// MPI_Allreduce / MPI_Allgatherv / MPI_Bcast are the MPI standard's collectives (MPI 4.0,
// chapter 6); Open MPI picks the algorithm (ring, recursive doubling, ...) by message size.
// With a fixed process count and message size the algorithm, and so the float summation order,
// is fixed: a job run twice gives the same bits.
#include "distributed/communicator.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "distributed/mpi_config.hpp"
#include "tensor/error.hpp"

#if SEMIGRAD_HAVE_MPI
// The C API only: Open MPI's deprecated C++ bindings do not compile warning-free.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace semigrad::distributed {

namespace {

#if SEMIGRAD_HAVE_MPI
// MPI reports failures through return codes (with MPI_ERRORS_RETURN); turn one into an Error
// naming the collective.
void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error(std::string("MPI ") + what + " failed: " + std::string(text, std::size_t(length)));
}

// Started by mpirun (Open MPI's launcher sets these), rather than as a plain program. A plain
// start would be an MPI "singleton" job of one, which costs a second of start-up for nothing.
bool launched_by_mpirun() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK");
}

int as_int_count(std::size_t n, const char* what) {
    if (n > std::size_t(std::numeric_limits<int>::max()))
        throw ValueError(std::string("Communicator::") + what + ": " + std::to_string(n) +
                         " elements exceed MPI's int counts");
    return int(n);
}
#endif

}  // namespace

bool Communicator::built_with_mpi() { return SEMIGRAD_HAVE_MPI; }

Communicator::Communicator() {
#if SEMIGRAD_HAVE_MPI
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised || !launched_by_mpirun()) {
        if (initialised) throw Error("Communicator: MPI is already initialised (one per program)");
        return;
    }
    int provided = 0;
    // FUNNELED: only the main thread calls MPI; OpenMP regions never do.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    using_mpi_ = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
#endif
}

Communicator::~Communicator() {
#if SEMIGRAD_HAVE_MPI
    if (using_mpi_) MPI_Finalize();
#endif
}

void Communicator::allreduce_sum(std::span<float> data) const {
#if SEMIGRAD_HAVE_MPI
    if (using_mpi_) {
        check(MPI_Allreduce(MPI_IN_PLACE, data.data(), as_int_count(data.size(), "allreduce_sum"),
                            MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
              "Allreduce");
        return;
    }
#endif
    (void)data;  // one process: the sum over ranks is its own data
}

int Communicator::allreduce_max(int value) const {
#if SEMIGRAD_HAVE_MPI
    if (using_mpi_) {
        check(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
              "Allreduce");
    }
#endif
    return value;
}

void Communicator::allgather_bytes(const void* mine, void* all,
                                   std::span<const std::size_t> counts, std::size_t element_size,
                                   std::size_t mine_count, std::size_t all_count) const {
    if (counts.size() != std::size_t(size_))
        throw ValueError("Communicator::allgather: " + std::to_string(counts.size()) +
                         " counts for " + std::to_string(size_) + " processes");
    std::size_t total = 0;
    for (std::size_t c : counts) total += c;
    if (mine_count != counts[std::size_t(rank_)] || all_count != total)
        throw ValueError("Communicator::allgather: rank " + std::to_string(rank_) + " sends " +
                         std::to_string(mine_count) + " elements (expected " +
                         std::to_string(counts[std::size_t(rank_)]) + ") into " +
                         std::to_string(all_count) + " (expected " + std::to_string(total) + ")");
#if SEMIGRAD_HAVE_MPI
    if (using_mpi_) {
        // Byte counts and displacements: one code path for every trivially copyable type.
        std::vector<int> bytes(counts.size()), offsets(counts.size());
        std::size_t offset = 0;
        for (std::size_t r = 0; r < counts.size(); ++r) {
            bytes[r] = as_int_count(counts[r] * element_size, "allgather");
            offsets[r] = as_int_count(offset, "allgather");
            offset += counts[r] * element_size;
        }
        check(MPI_Allgatherv(mine, bytes[std::size_t(rank_)], MPI_BYTE, all, bytes.data(),
                             offsets.data(), MPI_BYTE, MPI_COMM_WORLD),
              "Allgatherv");
        return;
    }
#endif
    if (mine_count) std::memcpy(all, mine, mine_count * element_size);
}

void Communicator::broadcast_bytes(void* data, std::size_t bytes, int root) const {
    if (root < 0 || root >= size_)
        throw ValueError("Communicator::broadcast: root " + std::to_string(root) +
                         " is not a rank of " + std::to_string(size_));
#if SEMIGRAD_HAVE_MPI
    if (using_mpi_) {
        check(MPI_Bcast(data, as_int_count(bytes, "broadcast"), MPI_BYTE, root, MPI_COMM_WORLD),
              "Bcast");
        return;
    }
#endif
    (void)data, (void)bytes;  // one process: its data is rank 0's
}

void Communicator::abort(int exit_code) const {
#if SEMIGRAD_HAVE_MPI
    if (using_mpi_) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
    std::exit(exit_code);
}

Shard shard_of(std::size_t n, int rank, int size) {
    if (size < 1 || rank < 0 || rank >= size)
        throw ValueError("shard_of: rank " + std::to_string(rank) + " of " + std::to_string(size));
    return {n * std::size_t(rank) / std::size_t(size), n * std::size_t(rank + 1) / std::size_t(size)};
}

std::vector<std::size_t> shard_sizes(std::size_t n, int size) {
    std::vector<std::size_t> sizes;
    for (int r = 0; r < size; ++r) sizes.push_back(shard_of(n, r, size).size());
    return sizes;
}

}  // namespace semigrad::distributed
