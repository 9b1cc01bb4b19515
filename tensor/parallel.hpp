// Threads: OpenMP throughout, and the OpenMP build of OpenBLAS, so both share one pool.
// Library code never changes the thread count; programs call set_num_threads (--threads N).
// Without OpenMP (meson -Dopenmp=disabled) everything runs on one thread.
#pragma once

#include <cstddef>
#include <string>

namespace semigrad {

// Elementwise loops go parallel above this many elements; below it waking a thread team costs
// more than the loop (a [32,256] embedding is 8K elements, a conv activation ~1.6M).
inline constexpr std::size_t kParallelMinElements = 32768;

// `#pragma omp` spelled through _Pragma, so that a build without OpenMP sees no pragma at all.
#ifdef _OPENMP
#define SEMIGRAD_PRAGMA(x) _Pragma(#x)
#else
#define SEMIGRAD_PRAGMA(x)
#endif
// A static-schedule parallel for over a loop of `n` elementwise iterations.
#define SEMIGRAD_PARALLEL_FOR(n) \
    SEMIGRAD_PRAGMA(omp parallel for schedule(static) if ((n) > ::semigrad::kParallelMinElements))

// Threads an OpenMP parallel region would use now (1 without OpenMP).
int num_threads();
// The calling thread's number within its OpenMP team, 0 .. num_threads() - 1 (0 outside a
// parallel region and without OpenMP): the index of a thread's own slot in per-thread scratch.
int thread_index();
// Sets the thread count for OpenMP regions and, through them, for OpenBLAS.
void set_num_threads(int n);
// True when the OpenBLAS loaded at run time is its OpenMP build (openblas_get_parallel() == 2).
bool openblas_uses_openmp();
// The kernel family OpenBLAS chose at load time ("SkylakeX", "Haswell", "Prescott", ...); its
// OPENBLAS_CORETYPE environment variable overrides the choice (scripts/openblas-env).
std::string openblas_core();

}  // namespace semigrad
