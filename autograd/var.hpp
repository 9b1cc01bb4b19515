// Reverse-mode autograd: Var, the graph node behind it, backward(), and the no-grad guard.
//
// Define-by-run (as micrograd and PyTorch): every differentiable function computes its value with
// tensor kernels and, if any input needs a gradient, records a node holding its inputs and a
// backward closure. `backward(loss)` orders the graph once by depth-first search and runs the
// closures in reverse; each closure receives the output gradient and accumulates (+=) into its
// inputs' gradients. The graph is then released.
//
// Rule for closures: capture inputs (as Var), saved tensors and sizes, never the output Var
// itself: a node owning a closure owning the node is a shared_ptr cycle, i.e. a leak.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace semigrad {

struct Node;
using NodePtr = std::shared_ptr<Node>;
// Given d(loss)/d(output), accumulate d(loss)/d(input) into the inputs' gradients.
using BackwardFn = std::function<void(const Tensor& dout)>;

struct Node {
    Tensor value;
    Tensor grad;  // empty until the first accumulation (see grad_buffer)
    bool requires_grad = false;
    std::vector<NodePtr> inputs;  // in argument order: deterministic traversal
    BackwardFn backward_fn;       // empty for leaves
    std::string op = "leaf";
    // The profiler scope open when this node was recorded (the layer, the loss; empty unless
    // profiling): backward() reports the node's time under it (tensor/profile.hpp).
    std::string profile_scope;
    bool released = false;        // set once backward() has freed this node's graph

    // The gradient buffer, allocated as zeros of value's shape on first use.
    Tensor& grad_buffer();
    // For a backward that writes every entry of this gradient: when nothing has arrived yet the
    // buffer is left uninitialised and `first` is set (write, do not add), else it is the one
    // accumulated so far (add). A [32,64,28,28] zero fill and its re-read were a tenth of a
    // training step.
    Tensor& grad_for_overwrite(bool& first);
    // grad += g; throws ShapeError (naming `op`) unless g has value's shape.
    void accumulate_grad(const Tensor& g);
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
    void accumulate_grad(const Tensor& g) { node_->accumulate_grad(g); }
    void zero_grad() { node_->grad = Tensor(); }

    const NodePtr& node() const { return node_; }

  private:
    NodePtr node_;
};

// Records the result of a differentiable function. When recording is on and any input requires
// a gradient, the result requires one too and keeps `inputs` and `fn`; otherwise it is a plain
// leaf and `fn` is dropped (evaluation costs no graph).
Var record(Tensor value, const std::vector<Var>& inputs, std::string op, BackwardFn fn);

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
