#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

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

// OPENBLAS_CORETYPE (scripts/openblas-env) is honoured, and openblas_core() reports it: the
// trainer's log and metrics.json name the kernels that actually ran. (Meson runs this under
// scripts/openblas-env on CPUs where it picks a core.)
TEST(Parallel, OpenBlasCoreIsTheOneAskedFor) {
    const char* asked = std::getenv("OPENBLAS_CORETYPE");
    if (!asked || !*asked) GTEST_SKIP() << "OPENBLAS_CORETYPE is not set";
    std::string want = asked, got = openblas_core();
    for (std::string* s : {&want, &got})
        for (char& c : *s) c = char(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(got, want);
}

// thread_share: outside a region the one thread takes everything; inside a team of 3 the shares
// are whole granules of 16 (the last one clipped), in thread order, and cover 0 .. extent once.
TEST(Parallel, ThreadShareCutsWholeGranulesInOrder) {
    const ThreadShare all = thread_share(100, 16);
    EXPECT_EQ(all.first, 0u);
    EXPECT_EQ(all.last, 100u);
    for (const std::size_t extent : {0u, 1u, 16u, 47u, 100u, 1568u}) {
        std::vector<ThreadShare> shares(3);
        int team = 0;
#pragma omp parallel num_threads(3)
        {
            shares[std::size_t(thread_index())] = thread_share(extent, 16);
#pragma omp single
            team = team_size();
        }
        std::size_t next = 0;
        for (int t = 0; t < team; ++t) {
            const ThreadShare s = shares[std::size_t(t)];
            EXPECT_EQ(s.first, next) << "extent " << extent << " thread " << t;
            EXPECT_TRUE(s.first % 16 == 0 || s.first == extent);
            next = s.last;
        }
        EXPECT_EQ(next, extent);
    }
}
