// Reverse-mode autograd: Var, the graph node behind it, backward(), and the no-grad guard.
//
// Define-by-run (as micrograd and PyTorch): every differentiable function computes its value with
// tensor kernels and, if any input needs a gradient, records a node holding its inputs and a
// backward closure. `backward(loss)` orders the graph once by depth-first search and runs the
// closures in reverse; each closure receives the output gradient and passes its share on to its
// inputs' gradients. The graph is then released.
//
// One gradient protocol: the first share to reach a node is written into its (uninitialised)
// gradient and every later share is added, so no buffer is zero-filled only to be added to;
// closures get the buffer and the case from grad_write_or_add (or its shorthands below).
//
// Rule for closures: capture inputs (as Var), saved tensors and sizes, never the output Var
// itself: a node owning a closure owning the node is a shared_ptr cycle, i.e. a leak.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/parallel.hpp"
#include "tensor/tensor.hpp"

namespace semigrad {

struct Node;
using NodePtr = std::shared_ptr<Node>;
// Given d(loss)/d(output), pass each input its share of d(loss)/d(input) (the protocol above).
using BackwardFn = std::function<void(const Tensor& dout)>;

struct Node {
    Tensor value;
    Tensor grad;  // empty until the first share arrives (see grad_write_or_add)
    bool requires_grad = false;
    std::vector<NodePtr> inputs;  // in argument order: deterministic traversal
    BackwardFn backward_fn;       // empty for leaves
    std::string op = "leaf";
    // The profiler scope open when this node was recorded (the layer, the loss; empty unless
    // profiling): backward() reports the node's time under it (tensor/profile.hpp).
    std::string profile_scope;
    bool released = false;        // set once backward() has freed this node's graph

    // The protocol's door: when no share has arrived yet the buffer is allocated uninitialised
    // and `first` is set (write every entry, do not add), else it holds the sum so far (add).
    // A [32,64,28,28] zero fill and its re-read were a tenth of a training step.
    Tensor& grad_write_or_add(bool& first);
    // The same buffer for a kernel that can only add (a scatter such as col2im or the pool's
    // backward, where several outputs land on one input entry): zero-filled when first.
    Tensor& grad_buffer();
    // A finished share g: taken as the gradient when first (a temporary is moved in, not
    // copied), else added; throws ShapeError (naming `op`) unless g has value's shape.
    void accumulate_grad(Tensor g);
};

class Var {
  public:
    Var();
    // A leaf. Parameters are leaves with requires_grad = true.
    explicit Var(Tensor value, bool requires_grad = false);

    const Tensor& value() const { return node_->value; }
    Tensor& value() { return node_->value; }
    const Shape& shape() const { return node_->value.shape(); }
    bool requires_grad() const { return node_->requires_grad; }
    const std::string& op() const { return node_->op; }

    // d(loss)/d(this) after backward(); an empty tensor if no gradient reached this Var.
    const Tensor& grad() const { return node_->grad; }
    bool has_grad() const { return !node_->grad.empty(); }
    Tensor& grad_buffer() { return node_->grad_buffer(); }
    void accumulate_grad(Tensor g) { node_->accumulate_grad(std::move(g)); }
    void zero_grad() { node_->grad = Tensor(); }

    const NodePtr& node() const { return node_; }

  private:
    NodePtr node_;
};

// Records the result of a differentiable function. When recording is on and any input requires
// a gradient, the result requires one too and keeps `inputs` and `fn`; otherwise it is a plain
// leaf and `fn` is dropped (evaluation costs no graph).
Var record(Tensor value, const std::vector<Var>& inputs, std::string op, BackwardFn fn);

// The protocol for an elementwise backward: dx[i] = share(i) for the first share to reach x,
// dx[i] += share(i) for later ones (mul(x, x) reaches x twice).
template <class Share>
void write_or_add_grad(const Var& x, Share share) {
    bool first;
    float* dx = x.node()->grad_write_or_add(first).data();
    const std::size_t n = x.value().size();
    if (first) {
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
        for (std::size_t i = 0; i < n; ++i) dx[i] = share(i);
    } else {
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
        for (std::size_t i = 0; i < n; ++i) dx[i] += share(i);
    }
}

// Seeds d(loss)/d(loss) = 1 for a one-element `loss`, then back-propagates through its graph.
// Leaf gradients accumulate across calls (call zero_grad between steps); the graph is released
// afterwards, so a second backward through the same graph throws.
void backward(const Var& loss);
// The same with an explicit seed gradient of root's shape.
void backward(const Var& root, const Tensor& seed);

// While alive, functions record nothing (evaluation / inference). Thread-local, nestable.
class NoGradGuard {
  public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

  private:
    bool previous_;
};
bool grad_enabled();

}  // namespace semigrad
