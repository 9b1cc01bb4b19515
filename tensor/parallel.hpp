// Threads: OpenMP throughout, and the OpenMP build of OpenBLAS, so both share one pool.
// Library code never changes the thread count; programs call set_num_threads (--threads N).
// Parallel loops are written as plain `#pragma omp` lines, with static schedules and, where a
// small size makes waking the thread team cost more than the loop, an `if (...)` whose
// threshold is a named constant with its reason. Without OpenMP (meson -Dopenmp=disabled) the
// compiler ignores those lines (meson.build turns off -Wunknown-pragmas then) and everything
// runs on one thread.
#pragma once

#include <cstddef>
#include <string>

namespace semigrad {

// Elementwise loops go parallel above this many elements; below it waking a thread team costs
// more than the loop (a [32,256] embedding is 8K elements, a conv activation ~1.6M):
//   #pragma omp parallel for schedule(static) if ((n) > kParallelMinElements)
inline constexpr std::size_t kParallelMinElements = 32768;

// Threads an OpenMP parallel region would use now (1 without OpenMP).
int num_threads();
// The calling thread's number within its OpenMP team, 0 .. num_threads() - 1 (0 outside a
// parallel region and without OpenMP): the index of a thread's own slot in per-thread scratch.
int thread_index();
// Whether the caller runs inside an active OpenMP parallel region (false without OpenMP).
bool in_parallel();
// Threads in the calling thread's team: num_threads()'s count inside a region, 1 outside.
int team_size();
// The calling thread's part [first, last) of 0 .. extent, cut in whole granules: thread t of T
// takes granules floor(G t / T) .. floor(G (t+1) / T) of G = ceil(extent / granule). A static
// split, the same for a given team size (gemm_split's blocks of C, Adam's cache lines).
struct ThreadShare {
    std::size_t first, last;
};
ThreadShare thread_share(std::size_t extent, std::size_t granule);
// Sets the thread count for OpenMP regions and, through them, for OpenBLAS.
void set_num_threads(int n);
// Called by a thread inside a parallel region: every region it opens from then on, until its
// implicit task ends, runs on it alone (the thread-count setting is per task in OpenMP; the other
// threads keep theirs). For work split at a coarser grain than the kernels' own loops
// (Sequential::predict, a chunk per thread); the OpenMP OpenBLAS runs on one thread there anyway.
void nested_on_one_thread();
// True when the OpenBLAS loaded at run time is its OpenMP build (openblas_get_parallel() == 2).
bool openblas_uses_openmp();
// The kernel family OpenBLAS chose at load time ("SkylakeX", "Haswell", "Prescott", ...); its
// OPENBLAS_CORETYPE environment variable overrides the choice (scripts/openblas-env).
std::string openblas_core();

}  // namespace semigrad
