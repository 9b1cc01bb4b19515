// Data-parallel training of the tutorial model (examples/data_parallel.hpp) against one process.
// `meson test` runs this binary under `mpirun -np 2` (and plainly, as a job of one):
//   * equivalence: N ranks x 32/N with global mining against 1 process x 32, same seed, 20 steps:
//     the per-step losses agree to 1e-4 relative and the parameters stay within float noise;
//   * determinism: the same distributed run twice gives the same bits, on every rank alike;
//   * local mining: the logged loss is the mean of the shards' own losses;
//   * the other losses (--loss hard / soft-hard, --distance angular / squared-L2) under global
//     mining: N ranks equal one process as the semi-hard loss does.
// The images are synthetic (a class-dependent bright block over seeded noise): what is under
// test is that N processes compute what one does, not what the model learns.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "autograd/var.hpp"
#include "data/batcher.hpp"
#include "distributed/communicator.hpp"
#include "distributed/data_parallel.hpp"
#include "examples/data_parallel.hpp"
#include "examples/evaluation.hpp"
#include "examples/tutorial_model.hpp"
#include "losses/triplet.hpp"
#include "metrics/retrieval.hpp"
#include "nn/optimizer.hpp"
#include "tensor/random.hpp"

using namespace semigrad;
using distributed::Communicator;
using examples::Mining;

namespace {

Communicator* world = nullptr;  // made in main(): MPI is joined once per process
constexpr std::size_t kBatch = 32, kSteps = 20;
constexpr std::uint64_t kSeed = 42;

data::Dataset synthetic_digits(std::size_t count, std::uint64_t seed = 7) {
    data::Dataset d;
    d.count = count, d.rows = 28, d.cols = 28;
    Rng rng(seed);
    for (std::size_t i = 0; i < count; ++i) {
        const int label = int(rng.next_u32() % 10);
        d.labels.push_back(label);
        for (std::size_t y = 0; y < 28; ++y)
            for (std::size_t x = 0; x < 28; ++x) {
                const bool block = y / 7 == std::size_t(label) % 4 && x / 7 == std::size_t(label) / 4;
                d.images.push_back(std::uint8_t(rng.next_u32() % 80 + (block ? 150 : 0)));
            }
    }
    return d;
}

struct TrainRun {
    std::vector<double> losses;  // per step, of the global batch
    std::vector<float> params;   // all parameters after the last step, flat
};

// The trainer's step (examples/mnist_triplet.cpp), kSteps times over epoch 0's order.
TrainRun train(const Communicator& comm, const data::Dataset& d, Mining mining,
               const examples::LossChoice& choice = {"semihard"}) {
    nn::Sequential model;
    examples::add_tutorial_layers(model);
    Rng init(kSeed);
    model.build({1, 28, 28}, init);
    nn::Adam adam(model.parameters());
    distributed::broadcast_state(comm, adam);
    distributed::GradientAllReduce gradients(model.parameters());
    const data::Batcher batcher(d, kBatch, kSeed);
    const std::vector<std::size_t> order = batcher.epoch_order(0);
    TrainRun run;
    model.train(true);
    for (std::size_t step = 0; step < kSteps; ++step) {
        const data::Batch global = batcher.batch(order, step);
        const data::Batch batch = examples::shard_of_batch(global, comm);
        model.set_sample_offset(distributed::shard_of(kBatch, comm.rank(), comm.size()).begin);
        const Var embeddings = model.forward(Var(batch.images));
        const examples::ShardLoss loss = examples::triplet_loss_across_ranks(
            embeddings, batch.labels, kBatch, mining, choice, comm);
        adam.zero_grad();
        backward(loss.loss);
        gradients.sum(comm, loss.gradient_scale);
        adam.step();
        run.losses.push_back(loss.global_loss);
    }
    for (const nn::Parameter& p : model.parameters())
        run.params.insert(run.params.end(), p.var.value().data(),
                          p.var.value().data() + p.var.value().size());
    return run;
}

}  // namespace

TEST(DataParallel, GlobalMiningMatchesOneProcessStepForStep) {
    const data::Dataset d = synthetic_digits(kBatch * kSteps);
    const Communicator solo{Communicator::SingleProcess{}};
    const TrainRun one = train(solo, d, Mining::Global);
    const TrainRun many = train(*world, d, Mining::Global);
    ASSERT_EQ(many.losses.size(), kSteps);
    for (std::size_t s = 0; s < kSteps; ++s)
        EXPECT_NEAR(many.losses[s], one.losses[s], 1e-4 * std::abs(one.losses[s]))
            << "step " << s << " on " << world->size() << " processes";
    EXPECT_GT(one.losses.front() - one.losses.back(), 0.01) << "the loss should fall";
    float largest = 0;
    for (std::size_t i = 0; i < one.params.size(); ++i)
        largest = std::max(largest, std::abs(many.params[i] - one.params[i]));
    if (world->is_root())
        std::printf("%d processes vs 1 after %zu steps: largest parameter difference %.3g\n",
                    world->size(), kSteps, double(largest));
    EXPECT_LT(largest, 1e-3f);
    if (world->size() == 1) {
        EXPECT_EQ(largest, 0.0f);  // the same arithmetic exactly
    }
}

// --loss and --distance reach the loss over the global batch: the batch-hard losses under
// other distances agree with one process step for step, and differ from the semi-hard loss.
TEST(DataParallel, OtherLossesAndDistancesMatchOneProcess) {
    const data::Dataset d = synthetic_digits(kBatch * kSteps);
    const Communicator solo{Communicator::SingleProcess{}};
    const TrainRun semihard = train(solo, d, Mining::Global);
    const examples::LossChoice choices[] = {{"hard", losses::Distance::Angular, 0.5f},
                                            {"soft-hard", losses::Distance::SquaredL2, 1.0f}};
    for (const examples::LossChoice& choice : choices) {
        const TrainRun one = train(solo, d, Mining::Global, choice);
        const TrainRun many = train(*world, d, Mining::Global, choice);
        ASSERT_EQ(many.losses.size(), kSteps);
        // The batch-hard losses take a maximum over negatives: parameters a rounding apart (the
        // weight gradient summed over two shards, not one batch) may pick another negative at
        // nearly the same distance, moving the loss by that gap. So the tolerance is relative
        // to the margin, the loss's scale, where a near-zero loss would make 1e-4 of it
        // smaller than that gap (the hard loss at 0.017 moved by 1.8e-5 once the Dense layer's
        // products were chains of FMAs, tensor/sparse_gemm.hpp).
        for (std::size_t s = 0; s < kSteps; ++s)
            EXPECT_NEAR(many.losses[s], one.losses[s],
                        1e-4 * std::max(double(std::abs(one.losses[s])), double(choice.margin)))
                << choice.loss << " step " << s << " on " << world->size() << " processes";
        EXPECT_GT(std::abs(one.losses[0] - semihard.losses[0]), 1e-3)
            << choice.loss << " gave the semi-hard loss's value";
        float largest = 0;
        for (std::size_t i = 0; i < one.params.size(); ++i)
            largest = std::max(largest, std::abs(many.params[i] - one.params[i]));
        EXPECT_LT(largest, 1e-3f) << choice.loss;
    }
}

TEST(DataParallel, SameRunTwiceSameBitsOnEveryRank) {
    const data::Dataset d = synthetic_digits(kBatch * kSteps);
    const TrainRun a = train(*world, d, Mining::Global), b = train(*world, d, Mining::Global);
    EXPECT_EQ(a.losses, b.losses);
    EXPECT_EQ(a.params, b.params);
    // Every rank holds rank 0's parameters, bit for bit: the ranks never drift apart.
    std::vector<float> root = a.params;
    world->broadcast(std::span<float>(root));
    EXPECT_EQ(root, a.params) << "rank " << world->rank() << " differs from rank 0";
}

// Local mining: each rank's loss covers its shard only; the logged loss is their mean. At step 0
// (same weights everywhere) that is the mean of the shards' losses computed by one process.
TEST(DataParallel, LocalMiningLogsTheMeanOfTheShardsLosses) {
    const data::Dataset d = synthetic_digits(kBatch * kSteps);
    const TrainRun local = train(*world, d, Mining::Local);
    nn::Sequential model;
    examples::add_tutorial_layers(model);
    Rng init(kSeed);
    model.build({1, 28, 28}, init);
    const data::Batcher batcher(d, kBatch, kSeed);
    const data::Batch global = batcher.batch(batcher.epoch_order(0), 0);
    const Var embeddings = model.forward(Var(global.images));
    double mean = 0;
    const int N = world->size();
    for (int r = 0; r < N; ++r) {
        const distributed::Shard s = distributed::shard_of(kBatch, r, N);
        std::vector<float> rows(embeddings.value().data() + s.begin * 256,
                                embeddings.value().data() + s.end * 256);
        const Var shard(Tensor({s.size(), 256}, rows));
        const std::span<const int> labels(global.labels.data() + s.begin, s.size());
        mean += losses::triplet_semihard_loss(shard, labels).value().item() / N;
    }
    EXPECT_NEAR(local.losses[0], mean, 1e-4 * std::abs(mean));
    for (double l : local.losses) EXPECT_TRUE(std::isfinite(l));
}

// The trainer's evaluation (examples/evaluation.hpp): the training set streamed through the
// model a block at a time gives the 1-NN accuracy of holding all its embeddings; the sharded
// embedding of a range is that range of the whole set's. Blocks of 64: 3 and a partial fourth.
TEST(Evaluation, StreamedNearestTrainAccuracyEqualsKnnOverTheWholeSet) {
    const std::size_t train_count = 3 * 64 + 40;
    data::Dataset train = synthetic_digits(train_count + 50);
    const data::Dataset test = synthetic_digits(200, 8);
    // Training labels drawn apart from the images: a neighbour's label is then a coin toss, so
    // a reference counted under the wrong index would change the answer.
    Rng relabel(3);
    for (int& label : train.labels) label = int(relabel.next_u32() % 10);
    nn::Sequential model;
    examples::add_tutorial_layers(model);
    Rng init(kSeed);
    model.build({1, 28, 28}, init);
    const Tensor all = examples::embed_sharded(model, train, 0, train_count, 32, *world);
    const Tensor part = examples::embed_sharded(model, train, 64, 160, 32, *world);
    ASSERT_EQ(part.shape(), (Shape{96, all.dim(1)}));
    for (std::size_t i = 0; i < part.size(); ++i)
        ASSERT_NEAR(part[i], all[64 * all.dim(1) + i], 1e-6f) << i;
    const examples::TestEmbeddings queries =
        examples::embed_test_set(model, test, test.count, 32, *world);
    EXPECT_GT(queries.images_per_second, 0.0);
    const float streamed = examples::nearest_train_accuracy(
        model, train, train_count, queries.embeddings, test.labels, 32, *world, 64);
    if (!world->is_root()) {
        EXPECT_EQ(streamed, 0.0f);
        return;
    }
    const float whole = metrics::knn_accuracy(queries.embeddings, test.labels, all,
                                              std::span<const int>(train.labels.data(), train_count));
    // One process embeds every image in the same chunk both ways: the same bits, the same
    // answer. Shards cut elsewhere may round an embedding differently, which could flip a tie.
    if (world->size() == 1)
        EXPECT_EQ(streamed, whole);
    else
        EXPECT_NEAR(streamed, whole, 2.0 / double(test.count));
    EXPECT_GT(whole, 0.0f);
    EXPECT_LT(whole, 0.4f);
}

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    Communicator communicator;
    world = &communicator;
    if (!communicator.is_root()) {  // one rank prints gtest's progress
        auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
    }
    const int failed = RUN_ALL_TESTS();
    return communicator.allreduce_max(failed);  // the job fails if any rank failed
}
