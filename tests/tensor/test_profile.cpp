// The profiler: off records nothing; scopes nest into rows, merge by name under one parent,
// count calls, include their children's time; scopes inside parallel regions are ignored.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tensor/profile.hpp"

using namespace semigrad;

namespace {

// Every test starts and ends with an empty, disabled profiler.
struct Profile : ::testing::Test {
    void SetUp() override { profile::reset(); }
    void TearDown() override {
        profile::set_enabled(false);
        profile::reset();
    }
};

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

TEST_F(Profile, OffRecordsNothing) {
    {
        profile::Scope a("step");
        EXPECT_EQ(profile::current(), "");
    }
    EXPECT_TRUE(profile::rows().empty());
    EXPECT_EQ(profile::table(1), "");
}

TEST_F(Profile, ScopesNestMergeAndCount) {
    profile::set_enabled(true);
    for (int step = 0; step < 2; ++step) {
        profile::Scope s("step");
        {
            profile::Scope f("forward");
            EXPECT_EQ(profile::current(), "forward");
            profile::Scope c("conv2d");
            sleep_ms(3);
        }
        {
            profile::Scope b("backward");
            profile::Scope c("conv2d");  // same name, other parent: its own row
        }
        EXPECT_EQ(profile::current(), "step");
    }
    EXPECT_EQ(profile::current(), "");
    const auto rows = profile::rows();
    // (self) rows appear only where a parent has time of its own; here none is guaranteed.
    std::vector<std::pair<std::string, int>> named;
    for (const auto& r : rows)
        if (r.name != "(self)") named.push_back({r.name, r.depth});
    const std::vector<std::pair<std::string, int>> expected = {
        {"step", 0}, {"forward", 1}, {"conv2d", 2}, {"backward", 1}, {"conv2d", 2}};
    EXPECT_EQ(named, expected);
    EXPECT_EQ(rows[0].calls, 2u);
    EXPECT_EQ(rows[2].calls, 2u);
    EXPECT_GE(rows[2].seconds, 0.006);            // two 3 ms sleeps
    EXPECT_GE(rows[1].seconds, rows[2].seconds);  // inclusive of the child
    EXPECT_GE(rows[0].seconds, rows[1].seconds);

    const std::string t = profile::table(2);
    EXPECT_NE(t.find("forward"), std::string::npos);
    EXPECT_NE(t.find("100.0%"), std::string::npos);  // the top row is the whole
    EXPECT_NE(t.find("total"), std::string::npos);
}

TEST_F(Profile, EmptyNameOpensNothing) {
    profile::set_enabled(true);
    {
        profile::Scope a("");
        EXPECT_EQ(profile::current(), "");
    }
    EXPECT_TRUE(profile::rows().empty());
}

TEST_F(Profile, SelfRowShowsTimeOutsideChildren) {
    profile::set_enabled(true);
    {
        profile::Scope s("step");
        sleep_ms(4);
        profile::Scope c("child");
    }
    const auto rows = profile::rows();
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[2].name, "(self)");
    EXPECT_EQ(rows[2].depth, 1);
    EXPECT_GE(rows[2].seconds, 0.004);
}

#ifdef _OPENMP
TEST_F(Profile, ScopesInsideParallelRegionsAreIgnored) {
    profile::set_enabled(true);
    {
        profile::Scope s("outer");
#pragma omp parallel num_threads(2)
        {
            profile::Scope inner("inner");
        }
    }
    const auto rows = profile::rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].name, "outer");
}
#endif
