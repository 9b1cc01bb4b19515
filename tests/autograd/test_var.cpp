// The engine alone: record(), backward(), release, no-grad. Functions are tested elsewhere.
#include <gtest/gtest.h>

#include "autograd/var.hpp"
#include "tensor/error.hpp"
#include "tensor/profile.hpp"

using namespace semigrad;

// y = a * b elementwise, written with record() directly.
static Var times(const Var& a, const Var& b) {
    Tensor v(a.shape());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = a.value()[i] * b.value()[i];
    return record(std::move(v), {a, b}, "times", [a, b](const Tensor& dout) {
        Tensor da(a.shape()), db(b.shape());
        for (std::size_t i = 0; i < dout.size(); ++i) {
            da[i] = dout[i] * b.value()[i];
            db[i] = dout[i] * a.value()[i];
        }
        if (a.requires_grad()) a.node()->accumulate_grad(da);
        if (b.requires_grad()) b.node()->accumulate_grad(db);
    });
}

static Var total(const Var& a) {
    float s = 0;
    for (std::size_t i = 0; i < a.value().size(); ++i) s += a.value()[i];
    return record(Tensor::scalar(s), {a}, "total", [a](const Tensor& dout) {
        a.node()->accumulate_grad(Tensor(a.shape(), dout[0]));
    });
}

TEST(Backward, DiamondGraphAccumulates) {
    // loss = sum(x * x * w): x is used twice, so its gradient is the sum of two paths: 2 x w.
    Var x(Tensor({3}, {1, 2, 3}), true), w(Tensor({3}, {4, 5, 6}), true);
    Var loss = total(times(times(x, x), w));
    EXPECT_FLOAT_EQ(loss.value().item(), 1 * 4 + 4 * 5 + 9 * 6);
    backward(loss);
    EXPECT_FLOAT_EQ(x.grad()[0], 8);
    EXPECT_FLOAT_EQ(x.grad()[1], 20);
    EXPECT_FLOAT_EQ(x.grad()[2], 36);
    EXPECT_FLOAT_EQ(w.grad()[2], 9);
}

TEST(Backward, LeafGradsAccumulateAcrossCallsUntilZeroed) {
    Var x(Tensor({2}, {1, 2}), true);
    backward(total(times(x, x)));
    backward(total(times(x, x)));
    EXPECT_FLOAT_EQ(x.grad()[1], 8);
    x.zero_grad();
    EXPECT_FALSE(x.has_grad());
}

TEST(Backward, ConstantsGetNoGradient) {
    Var x(Tensor({2}, {1, 2}), true), c(Tensor({2}, {3, 4}));
    backward(total(times(x, c)));
    EXPECT_FALSE(c.has_grad());
    EXPECT_FLOAT_EQ(x.grad()[1], 4);
}

TEST(Backward, GraphIsReleasedAndNoNodeOutlivesIt) {
    Var x(Tensor({2}, {1, 2}), true);
    std::weak_ptr<Node> inner;
    {
        Var y = times(x, x);
        inner = y.node();
        Var loss = total(y);
        backward(loss);
        EXPECT_THROW(backward(loss), Error);  // released: a second pass is an error
    }
    EXPECT_TRUE(inner.expired()) << "an intermediate node leaked (a closure capturing its output?)";
    EXPECT_EQ(x.node().use_count(), 1);
}

TEST(Backward, UnusedGraphIsFreedToo) {
    Var x(Tensor({2}, {1, 2}), true);
    std::weak_ptr<Node> inner;
    {
        Var loss = total(times(x, x));
        inner = loss.node();
    }
    EXPECT_TRUE(inner.expired());
}

TEST(Backward, RejectsNonScalarAndGradlessRoots) {
    Var x(Tensor({2}, {1, 2}), true);
    EXPECT_THROW(backward(times(x, x)), ShapeError);
    Var c(Tensor({1}, {1}));
    EXPECT_THROW(backward(c), Error);
}

TEST(NoGrad, RecordsNothingAndRestores) {
    Var x(Tensor({2}, {1, 2}), true);
    {
        NoGradGuard guard;
        EXPECT_FALSE(grad_enabled());
        Var y = times(x, x);
        EXPECT_FALSE(y.requires_grad());
        EXPECT_TRUE(y.node()->inputs.empty());
        {
            NoGradGuard nested;
        }
        EXPECT_FALSE(grad_enabled());
    }
    EXPECT_TRUE(grad_enabled());
    EXPECT_TRUE(times(x, x).requires_grad());
}

// With the profiler on, backward() reports each node's closure under the scope its forward
// was recorded in, then the node's op: "backward" > "layer" > "times".
TEST(Var, BackwardReportsNodesUnderTheirForwardScope) {
    profile::reset();
    profile::set_enabled(true);
    Var x(Tensor({2}, {1.0f, -2.0f}), true);
    const Var c(Tensor({2}, {3.0f, 4.0f}));
    Var y;
    {
        profile::Scope layer("layer");
        y = times(x, c);
    }
    const Var z = times(y, c);  // recorded outside any scope: its row is just its op
    backward(z, Tensor({2}, {1.0f, 1.0f}));
    profile::set_enabled(false);
    std::vector<std::pair<std::string, int>> named;
    for (const auto& r : profile::rows())
        if (r.name != "(self)") named.push_back({r.name, r.depth});
    profile::reset();
    const std::vector<std::pair<std::string, int>> expected = {
        {"layer", 0}, {"backward", 0}, {"times", 1}, {"layer", 1}, {"times", 2}};
    EXPECT_EQ(named, expected);
    EXPECT_EQ(x.grad().at({0}), 9.0f);
    EXPECT_EQ(x.grad().at({1}), 16.0f);
}
