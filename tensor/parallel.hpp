// Threads: OpenMP throughout, and the OpenMP build of OpenBLAS, so both share one pool.
// Library code never changes the thread count; programs call set_num_threads (--threads N).
// Without OpenMP (meson -Dopenmp=disabled) everything runs on one thread.
#pragma once

#include <string>

namespace semigrad {

// Threads an OpenMP parallel region would use now (1 without OpenMP).
int num_threads();
// Sets the thread count for OpenMP regions and, through them, for OpenBLAS.
void set_num_threads(int n);
// True when the OpenBLAS loaded at run time is its OpenMP build (openblas_get_parallel() == 2).
bool openblas_uses_openmp();
// The kernel family OpenBLAS chose at load time ("SkylakeX", "Haswell", "Prescott", ...); its
// OPENBLAS_CORETYPE environment variable overrides the choice (scripts/openblas-env).
std::string openblas_core();

}  // namespace semigrad
