// The semi-hard triplet loss of a small batch and its gradient, from a program of your own.
#include <cstdio>
#include <vector>

#include "autograd/var.hpp"
#include "losses/triplet.hpp"

int main() {
    using namespace semigrad;
    // Four unit-length 2-D embeddings (rows) of two classes.
    Var embeddings(Tensor({4, 2}, {1.0f, 0.0f, 0.8f, 0.6f, 0.0f, 1.0f, -0.6f, 0.8f}),
                   /*requires_grad=*/true);
    const std::vector<int> labels = {0, 0, 1, 1};

    losses::TripletStats stats;
    Var loss = losses::triplet_semihard_loss(embeddings, labels, /*margin=*/1.0f,
                                             losses::Distance::L2, &stats);
    backward(loss);

    std::printf("loss %.6f (%zu of %zu positive pairs active)\n", loss.value().item(),
                stats.active_pairs, stats.positive_pairs);
    const Tensor& dx = embeddings.grad();  // d(loss)/d(embeddings), [4,2]
    for (std::size_t i = 0; i < 4; ++i)
        std::printf("d loss / d x%zu = (%+.6f, %+.6f)\n", i, dx.at({i, 0}), dx.at({i, 1}));
    return 0;
}
