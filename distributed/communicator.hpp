// Communicator: the processes of a data-parallel job and the three collectives data-parallel
// training needs (Sergeev & Del Balso 2018, "Horovod"; Li et al. 2020, "PyTorch Distributed"):
//   allreduce_sum  - every process ends with the element-wise sum of everyone's buffer (gradients)
//   allgather      - every process ends with everyone's blocks, in rank order (embeddings, labels)
//   broadcast      - every process ends with rank 0's buffer (parameters at start and on resume)
//
// Over MPI (Open MPI from Debian) when the library was built with it (meson -Dmpi=auto|enabled)
// and the program was started by mpirun; otherwise one process of rank 0 whose collectives are
// copies, so a program runs the same code whether or not it is distributed. MPI is an
// implementation detail of communicator.cpp: no header of semigrad includes <mpi.h>.
//
// Not a general MPI binding: one communicator (MPI_COMM_WORLD), blocking collectives, called
// from the main thread only (MPI_THREAD_FUNNELED; OpenMP threads never call MPI).
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace semigrad::distributed {

class Communicator {
  public:
    // Joins the job mpirun started (MPI_Init_thread) or, outside mpirun or without MPI, is the
    // one process of a job of one. The destructor leaves MPI (MPI_Finalize). One per program.
    Communicator();
    // A job of one even under mpirun (tests compare a distributed run with this).
    struct SingleProcess {};
    explicit Communicator(SingleProcess) {}
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    // True when this build can join an MPI job (meson found Open MPI).
    static bool built_with_mpi();

    // In place: data = the sum over ranks of every rank's data (same length everywhere).
    void allreduce_sum(std::span<float> data) const;
    // The largest of every rank's value.
    int allreduce_max(int value) const;

    // all = the ranks' blocks in rank order, rank r contributing counts[r] elements (`mine` must
    // hold counts[rank()] of them; all, their sum). ValueError on a length mismatch.
    template <class T>
    void allgather(std::span<const T> mine, std::span<T> all,
                   std::span<const std::size_t> counts) const {
        static_assert(std::is_trivially_copyable_v<T>);
        allgather_bytes(mine.data(), all.data(), counts, sizeof(T), mine.size(), all.size());
    }
    // One value from each rank, in rank order.
    template <class T>
    std::vector<T> allgather(const T& value) const {
        std::vector<T> all(static_cast<std::size_t>(size_));
        const std::vector<std::size_t> ones(std::size_t(size_), 1);
        allgather(std::span<const T>(&value, 1), std::span<T>(all), std::span(ones));
        return all;
    }

    // In place: data = rank `root`'s data (same length everywhere).
    template <class T>
    void broadcast(std::span<T> data, int root = 0) const {
        static_assert(std::is_trivially_copyable_v<T>);
        broadcast_bytes(data.data(), data.size() * sizeof(T), root);
    }

    // Ends every process of the job with `exit_code` (MPI_Abort): for a failure on one rank that
    // the others cannot learn of because they wait in a collective. Outside MPI: std::exit.
    [[noreturn]] void abort(int exit_code) const;

  private:
    void allgather_bytes(const void* mine, void* all, std::span<const std::size_t> counts,
                         std::size_t element_size, std::size_t mine_count,
                         std::size_t all_count) const;
    void broadcast_bytes(void* data, std::size_t bytes, int root) const;

    int rank_ = 0, size_ = 1;
    bool using_mpi_ = false;  // MPI_Init called by us (and MPI_Finalize owed)
};

// Rows [begin, end) of an n-row global batch that rank `rank` of `size` holds: contiguous,
// in rank order, sizes differing by at most one (n * rank / size ... n * (rank+1) / size).
struct Shard {
    std::size_t begin, end;
    std::size_t size() const { return end - begin; }
};
Shard shard_of(std::size_t n, int rank, int size);
// Every rank's shard size, for allgather.
std::vector<std::size_t> shard_sizes(std::size_t n, int size);

}  // namespace semigrad::distributed
