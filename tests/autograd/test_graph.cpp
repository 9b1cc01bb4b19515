// Every differentiable function together in one graph: evaluation records nothing, and after
// backward no intermediate node outlives its handles (no closure captures its own output).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "autograd/functions.hpp"
#include "helpers.hpp"

using namespace semigrad;
using namespace semigrad::testing;

struct Params {
    Var conv_w, conv_b, conv2_w, channel_b, kernel, bias, kernel2, square;
};

static Params make_params(Rng& rng) {
    return {Var(random_tensor({3, 1, 3, 3}, rng), true), Var(random_tensor({3}, rng), true),
            Var(random_tensor({2, 3, 2, 2}, rng), true), Var(random_tensor({3}, rng), true),
            Var(random_tensor({8, 5}, rng), true),       Var(random_tensor({5}, rng), true),
            Var(random_tensor({5, 4}, rng), true),       Var(random_tensor({4, 4}, rng), true)};
}

// x [2,1,6,6] through every function; each intermediate's node is appended to `nodes`.
static Var forward_all(const Var& x, const Params& p, Rng& rng, std::vector<Var>& nodes) {
    auto keep = [&nodes](Var v) {
        nodes.push_back(v);
        return v;
    };
    const Conv2dSpec same{1, 1, tf_padding(Padding::Same, 6, 6, 3, 3, 1, 1)};
    Var h = keep(conv2d(x, p.conv_w, p.conv_b, same));                      // [2,3,6,6]
    h = keep(relu(keep(bias_add(h, p.channel_b))));
    h = keep(max_pool2d(h, Pool2dSpec{}));                                  // [2,3,3,3]
    h = keep(dropout(h, 0.25f, true, rng));
    h = keep(dropout_with_mask(h, Tensor(h.shape(), 0.5f)));
    h = keep(conv2d(h, p.conv2_w, Conv2dSpec{}));                           // [2,2,2,2]
    h = keep(flatten(h));                                                   // [2,8]
    h = keep(dense(h, p.kernel, p.bias));                                   // [2,5]
    h = keep(dense(h, p.kernel2));                                          // [2,4]
    h = keep(matmul(h, p.square));
    h = keep(l2_normalize(h));
    h = keep(reshape(keep(add(h, keep(scale(h, 0.5f)))), {4, 2}));
    h = keep(sub(keep(mul(h, h)), h));
    return keep(add(keep(sum(h)), keep(mean(h))));
}

TEST(Graph, NoGradRecordsNothingForAnyFunction) {
    Rng rng(16);
    const Params p = make_params(rng);
    const Var x(random_tensor({2, 1, 6, 6}, rng));
    std::vector<Var> nodes;
    {
        NoGradGuard no_grad;
        forward_all(x, p, rng, nodes);
    }
    ASSERT_EQ(nodes.size(), 20u);
    for (const Var& v : nodes) {
        EXPECT_FALSE(v.requires_grad()) << v.op();
        EXPECT_TRUE(v.node()->inputs.empty()) << v.op();
        EXPECT_FALSE(v.node()->backward_fn) << v.op();
    }
    // With recording on, the same graph records every node.
    nodes.clear();
    forward_all(x, p, rng, nodes);
    for (const Var& v : nodes) EXPECT_TRUE(v.requires_grad()) << v.op();
}

TEST(Graph, NothingLeaksAfterBackward) {
    Rng rng(17);
    const Params p = make_params(rng);
    Var x(random_tensor({2, 1, 6, 6}, rng), true);
    std::vector<std::weak_ptr<Node>> watched;
    {
        std::vector<Var> nodes;
        const Var loss = forward_all(x, p, rng, nodes);
        for (const Var& v : nodes) watched.push_back(v.node());
        backward(loss);
    }
    for (std::size_t i = 0; i < watched.size(); ++i)
        EXPECT_TRUE(watched[i].expired()) << "intermediate node " << i << " leaked";
    // Every parameter got a gradient and is referenced by this test alone.
    const Var* params[] = {&x,           &p.conv_w, &p.conv_b, &p.conv2_w, &p.channel_b,
                           &p.kernel,    &p.bias,   &p.kernel2, &p.square};
    for (const Var* v : params) {
        EXPECT_TRUE(v->has_grad());
        EXPECT_EQ(v->node().use_count(), 1);
    }
}

TEST(Graph, AGraphNeverBackpropagatedIsFreedToo) {
    Rng rng(18);
    const Params p = make_params(rng);
    const Var x(random_tensor({2, 1, 6, 6}, rng), true);
    std::vector<std::weak_ptr<Node>> watched;
    {
        std::vector<Var> nodes;
        forward_all(x, p, rng, nodes);
        for (const Var& v : nodes) watched.push_back(v.node());
    }
    for (std::size_t i = 0; i < watched.size(); ++i)
        EXPECT_TRUE(watched[i].expired()) << "node " << i << " leaked";
    EXPECT_EQ(p.kernel.node().use_count(), 1);
}
