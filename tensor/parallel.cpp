#include "tensor/parallel.hpp"

#include <cblas.h>

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/error.hpp"

namespace semigrad {

int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

bool in_parallel() {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return false;
#endif
}

int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

ThreadShare thread_share(std::size_t extent, std::size_t granule) {
    const std::size_t granules = (extent + granule - 1) / granule;
    const std::size_t threads = std::size_t(team_size()), t = std::size_t(thread_index());
    return {std::min(extent, granule * (granules * t / threads)),
            std::min(extent, granule * (granules * (t + 1) / threads))};
}

void set_num_threads(int n) {
    if (n < 1) throw ValueError("set_num_threads: thread count must be >= 1, got " + std::to_string(n));
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    // The OpenMP OpenBLAS ignores OPENBLAS_NUM_THREADS but honours this.
    openblas_set_num_threads(n);
}

void nested_on_one_thread() {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

bool openblas_uses_openmp() { return openblas_get_parallel() == 2; }

std::string openblas_core() { return openblas_get_corename(); }

}  // namespace semigrad
