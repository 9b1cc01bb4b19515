// The dispatch point (tensor/simd.hpp): names, the SEMIGRAD_ISA rule, and what this process chose.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tensor/error.hpp"
#include "tensor/simd.hpp"

using namespace semigrad;

TEST(Simd, NamesRoundTrip) {
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) EXPECT_EQ(parse_isa(isa_name(isa), "test"), isa);
    EXPECT_STREQ(isa_name(Isa::avx2), "avx2");
}

// Unknown names are refused with the name, where it came from, and what would be accepted.
TEST(Simd, UnknownNameIsAValueErrorNamingIt) {
    for (const char* bad : {"AVX2", "sse", "avx512f", " portable"}) {
        try {
            parse_isa(bad, "SEMIGRAD_ISA");
            FAIL() << bad;
        } catch (const ValueError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("SEMIGRAD_ISA"), std::string::npos) << what;
            EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
            EXPECT_NE(what.find("portable, avx2 or avx512"), std::string::npos) << what;
        }
    }
}

// Unset or empty: the CPU's level. A lower level: taken. A higher one: an error naming the CPU's.
TEST(Simd, ChooseIsaTakesALowerLevelAndRefusesAHigherOne) {
    EXPECT_EQ(choose_isa(nullptr, Isa::avx2), Isa::avx2);
    EXPECT_EQ(choose_isa("", Isa::avx512), Isa::avx512);
    EXPECT_EQ(choose_isa("portable", Isa::avx512), Isa::portable);
    EXPECT_EQ(choose_isa("avx2", Isa::avx512), Isa::avx2);
    EXPECT_EQ(choose_isa("avx2", Isa::avx2), Isa::avx2);
    try {
        choose_isa("avx512", Isa::avx2);
        FAIL();
    } catch (const ValueError& e) {
        EXPECT_STREQ(e.what(), "SEMIGRAD_ISA=avx512: this CPU runs at most avx2");
    }
    EXPECT_THROW(choose_isa("avx2", Isa::portable), ValueError);
    EXPECT_THROW(choose_isa("fast", Isa::avx512), ValueError);
}

// This process: the level SEMIGRAD_ISA asked for (meson runs this suite once with
// SEMIGRAD_ISA=portable), else the CPU's; and the CPU runs it.
TEST(Simd, ActiveIsaFollowsTheEnvironment) {
    const char* requested = std::getenv("SEMIGRAD_ISA");
    const Isa expected = requested && *requested ? parse_isa(requested, "SEMIGRAD_ISA") : cpu_isa();
    EXPECT_EQ(active_isa(), expected);
    EXPECT_TRUE(cpu_runs(active_isa()));
    EXPECT_TRUE(cpu_runs(Isa::portable));
}
