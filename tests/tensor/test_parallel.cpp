#include <gtest/gtest.h>

#include "tensor/parallel.hpp"

using namespace semigrad;

// The pthread OpenBLAS runs sgemm 7-10x slower beside OpenMP regions; the build pins the OpenMP
// one, and this checks that the library actually loaded at run time is it.
TEST(Parallel, LoadedOpenBlasIsTheOpenMpBuild) { EXPECT_TRUE(openblas_uses_openmp()); }

TEST(Parallel, SetNumThreadsRejectsNonPositive) {
    EXPECT_THROW(set_num_threads(0), std::exception);
    const int before = num_threads();
    set_num_threads(1);
    EXPECT_EQ(num_threads(), 1);
    set_num_threads(before);
}

TEST(Parallel, OpenBlasCoreHasAName) { EXPECT_FALSE(openblas_core().empty()); }
