// Tests of distributed/: the Communicator's collectives against values worked out by hand, the
// gather op's forward and backward, the flat gradient all-reduce, the start-up broadcast and the
// agreement on failures. `meson test` runs this binary twice: as a plain program (the one-process
// fallback) and under `mpirun -np 2`; every expectation is written for any process count N.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/var.hpp"
#include "distributed/agreement.hpp"
#include "distributed/communicator.hpp"
#include "distributed/data_parallel.hpp"
#include "nn/optimizer.hpp"
#include "tensor/error.hpp"

using namespace semigrad;
using namespace semigrad::distributed;

namespace {

Communicator* world = nullptr;  // made in main(): MPI is joined once per process

const Communicator& comm() { return *world; }

}  // namespace

TEST(Communicator, RankAndSize) {
    EXPECT_GE(comm().rank(), 0);
    EXPECT_LT(comm().rank(), comm().size());
    EXPECT_EQ(comm().is_root(), comm().rank() == 0);
    const std::vector<int> ranks = comm().allgather(comm().rank());
    for (int r = 0; r < comm().size(); ++r) EXPECT_EQ(ranks[std::size_t(r)], r);
    if (!Communicator::built_with_mpi()) {
        EXPECT_EQ(comm().size(), 1);
    }
}

TEST(Communicator, AllreduceSumIsTheSumOverRanks) {
    const int N = comm().size(), r = comm().rank();
    // Rank r holds (r+1, -2(r+1), 0.5): the sums are N(N+1)/2 times (1, -2, 0) plus N/2.
    std::vector<float> data = {float(r + 1), -2.0f * float(r + 1), 0.5f};
    comm().allreduce_sum(data);
    const float triangle = float(N * (N + 1) / 2);
    EXPECT_EQ(data[0], triangle);
    EXPECT_EQ(data[1], -2.0f * triangle);
    EXPECT_EQ(data[2], 0.5f * float(N));
    EXPECT_EQ(comm().allreduce_max(10 * r - 3), 10 * (N - 1) - 3);
}

TEST(Communicator, AllgatherStacksUnequalBlocksInRankOrder) {
    const int N = comm().size(), r = comm().rank();
    // Rank q sends q+1 values 100q, 100q+1, ...: the result is 0 | 100 101 | 200 201 202 | ...
    std::vector<std::size_t> counts;
    for (int q = 0; q < N; ++q) counts.push_back(std::size_t(q + 1));
    std::vector<float> mine;
    for (int i = 0; i <= r; ++i) mine.push_back(float(100 * r + i));
    std::vector<float> all(std::size_t(N * (N + 1) / 2), -1.0f);
    comm().allgather(std::span<const float>(mine), std::span<float>(all), std::span(counts));
    std::size_t at = 0;
    for (int q = 0; q < N; ++q)
        for (int i = 0; i <= q; ++i) EXPECT_EQ(all[at++], float(100 * q + i)) << "rank " << q;
    // Lengths that disagree with the counts are refused before any communication.
    std::vector<float> too_short(all.size() - 1);
    EXPECT_THROW(comm().allgather(std::span<const float>(mine), std::span<float>(too_short),
                                  std::span(counts)),
                 ValueError);
}

TEST(Communicator, BroadcastCopiesTheRootsData) {
    const int N = comm().size(), r = comm().rank();
    std::vector<std::int64_t> data = {r, 7 * r + 1};
    comm().broadcast(std::span<std::int64_t>(data));
    EXPECT_EQ(data, (std::vector<std::int64_t>{0, 1}));
    std::vector<float> last = {float(r)};
    comm().broadcast(std::span<float>(last), N - 1);
    EXPECT_EQ(last[0], float(N - 1));
    EXPECT_THROW(comm().broadcast(std::span<float>(last), N), ValueError);
}

TEST(Shard, ContiguousNearlyEqualShardsCoverTheBatch) {
    EXPECT_EQ(shard_sizes(32, 2), (std::vector<std::size_t>{16, 16}));
    EXPECT_EQ(shard_sizes(10, 4), (std::vector<std::size_t>{2, 3, 2, 3}));
    EXPECT_EQ(shard_of(10, 2, 4).begin, 5u);
    EXPECT_EQ(shard_of(10, 2, 4).end, 7u);
    EXPECT_EQ(shard_sizes(1, 2), (std::vector<std::size_t>{0, 1}));
    EXPECT_THROW(shard_of(8, 2, 2), ValueError);
}

// Forward: the ranks' rows stacked; backward: this rank's rows of the output gradient.
TEST(AllGatherRows, StacksRowsAndBackpropagatesOwnRowsOnly) {
    const int N = comm().size(), r = comm().rank();
    std::vector<std::size_t> rows;
    for (int q = 0; q < N; ++q) rows.push_back(std::size_t(2 - q % 2));  // 2, 1, 2, 1, ...
    std::size_t total = 0, first = 0;
    for (int q = 0; q < N; ++q) {
        if (q == r) first = total;
        total += rows[std::size_t(q)];
    }
    const std::size_t mine = rows[std::size_t(r)];
    // Row j of rank q holds (10q + j, -(10q + j), 0.5).
    std::vector<float> values;
    for (std::size_t j = 0; j < mine; ++j)
        values.insert(values.end(), {float(10 * r + int(j)), -float(10 * r + int(j)), 0.5f});
    Var x(Tensor({mine, 3}, values), /*requires_grad=*/true);
    Var all = all_gather_rows(x, comm(), rows);
    ASSERT_EQ(all.shape(), (Shape{total, 3}));
    std::size_t row = 0;
    for (int q = 0; q < N; ++q)
        for (std::size_t j = 0; j < rows[std::size_t(q)]; ++j, ++row) {
            EXPECT_EQ(all.value().at({row, 0}), float(10 * q + int(j)));
            EXPECT_EQ(all.value().at({row, 1}), -float(10 * q + int(j)));
        }
    // d(out) = 0, 1, 2, ... in row-major order: this rank's d(x) is its rows' stretch of it.
    Tensor seed({total, 3});
    for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = float(i);
    backward(all, seed);
    ASSERT_TRUE(x.has_grad());
    for (std::size_t i = 0; i < mine * 3; ++i) EXPECT_EQ(x.grad()[i], float(first * 3 + i));
    EXPECT_THROW(all_gather_rows(Var(Tensor({mine + 1, 3})), comm(), rows), ShapeError);
}

TEST(GradientAllReduce, SumsEveryParameterInOneBufferAndScales) {
    const int N = comm().size(), r = comm().rank();
    nn::Parameter a{"a", Var(Tensor({2, 2}), true)}, b{"b", Var(Tensor({3}), true)},
        unused{"unused", Var(Tensor({1}), true)};
    a.var.accumulate_grad(Tensor({2, 2}, {1, 2, 3, 4}) );
    b.var.accumulate_grad(Tensor({3}, {float(r), float(r), 1.0f}));
    GradientAllReduce reduce({a, b, unused});
    EXPECT_EQ(reduce.floats(), 8u);
    reduce.sum(comm(), 0.5f);
    const float rank_sum = float(N * (N - 1) / 2);
    for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(a.var.grad()[i], 0.5f * float(N) * float(i + 1));
    EXPECT_EQ(b.var.grad()[0], 0.5f * rank_sum);
    EXPECT_EQ(b.var.grad()[2], 0.5f * float(N));
    ASSERT_TRUE(unused.var.has_grad());  // zeros from every rank
    EXPECT_EQ(unused.var.grad()[0], 0.0f);
}

TEST(BroadcastState, EveryRankGetsRankZerosParametersSlotsAndStep) {
    const int r = comm().rank();
    nn::Parameter p{"p", Var(Tensor({3}, {float(r), 1.0f + float(r), 2.0f}), true)};
    nn::Adam adam({p});
    adam.slot(0, 0)[1] = 5.0f + float(r);
    adam.slot(1, 0)[2] = 7.0f + float(r);
    adam.set_iterations(10 + r);
    broadcast_state(comm(), adam);
    EXPECT_EQ(p.var.value()[0], 0.0f);
    EXPECT_EQ(p.var.value()[1], 1.0f);
    EXPECT_EQ(adam.slot(0, 0)[1], 5.0f);
    EXPECT_EQ(adam.slot(1, 0)[2], 7.0f);
    EXPECT_EQ(adam.iterations(), 10);
}

// A failure on the last rank only: every rank learns it, the failing rank alone reports, and all
// exit with its code. Nobody waits for anybody (the test would hang instead).
TEST(RunAgreed, OneFailingRankFailsEveryRankReportedOnce) {
    const int N = comm().size(), r = comm().rank();
    const auto code_of = [](const std::exception& e) {
        return dynamic_cast<const ValueError*>(&e) ? 2 : 1;
    };
    EXPECT_NO_THROW(run_agreed(comm(), [] {}, code_of));
    try {
        run_agreed(comm(), [&] {
            if (r == N - 1) throw ValueError("bad data on the last rank");
        }, code_of);
        ADD_FAILURE() << "no JobFailure";
    } catch (const JobFailure& e) {
        EXPECT_EQ(e.exit_code, 2);
        EXPECT_EQ(e.report, r == N - 1);
        if (e.report) {
            EXPECT_STREQ(e.what(), "bad data on the last rank");
        }
    }
}

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    Communicator communicator;
    world = &communicator;
    // Only rank 0 prints gtest's progress; a failure on another rank still fails its exit code.
    if (!communicator.is_root()) {
        auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
    }
    const int failed = RUN_ALL_TESTS();
    // The job fails if any rank failed.
    return communicator.allreduce_max(failed);
}
