#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <string>

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
