#include "autograd/var.hpp"

#include <unordered_set>

#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/profile.hpp"

namespace semigrad {

namespace {
thread_local bool g_grad_enabled = true;
}

Tensor& Node::grad_write_or_add(bool& first) {
    first = grad.empty() && !value.empty();
    if (first) grad = Tensor::uninitialised(value.shape());
    return grad;
}

Tensor& Node::grad_buffer() {
    if (grad.empty() && !value.empty()) grad = Tensor::zeros(value.shape());  // first: zeros
    return grad;
}

void Node::accumulate_grad(Tensor g) {
    if (g.shape() != value.shape())
        throw ShapeError("backward of " + op + ": gradient has shape " + to_string(g.shape()) +
                         ", value has shape " + to_string(value.shape()));
    if (grad.empty() && !value.empty()) {
        grad = std::move(g);  // the first share, as it is: not zeros plus g
        return;
    }
    float* a = grad.data();
    const float* b = g.data();
    const std::size_t n = grad.size();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) a[i] += b[i];
}

Var::Var() : node_(std::make_shared<Node>()) {}

Var::Var(Tensor value, bool requires_grad) : node_(std::make_shared<Node>()) {
    node_->value = std::move(value);
    node_->requires_grad = requires_grad;
}

Var record(Tensor value, const std::vector<Var>& inputs, std::string op, BackwardFn fn) {
    Var out(std::move(value));
    out.node()->op = std::move(op);
    if (!g_grad_enabled) return out;
    bool any = false;
    for (const Var& in : inputs) any = any || in.requires_grad();
    if (!any) return out;
    Node& n = *out.node();
    n.requires_grad = true;
    if (profile::enabled()) n.profile_scope = profile::current();
    n.backward_fn = std::move(fn);
    n.inputs.reserve(inputs.size());
    for (const Var& in : inputs) n.inputs.push_back(in.node());
    return out;
}

// Depth-first post-order (iterative, so deep graphs cannot overflow the stack): every node
// appears after all of its inputs.
static std::vector<Node*> topological_order(Node* root) {
    std::vector<Node*> order;
    std::unordered_set<Node*> visited;
    std::vector<std::pair<Node*, std::size_t>> stack{{root, 0}};
    visited.insert(root);
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->inputs.size()) {
            Node* child = node->inputs[next++].get();
            if (child->requires_grad && visited.insert(child).second) stack.push_back({child, 0});
        } else {
            order.push_back(node);
            stack.pop_back();
        }
    }
    return order;
}

void backward(const Var& root, const Tensor& seed) {
    Node* r = root.node().get();
    if (!r->requires_grad)
        throw Error("backward: the value (op '" + r->op +
                    "') does not require a gradient; no parameter reached it");
    if (r->released)
        throw Error("backward: graph of '" + r->op + "' was already released");
    profile::Scope scope("backward");
    r->accumulate_grad(seed);
    std::vector<Node*> order = topological_order(r);
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* n = *it;
        if (!n->backward_fn || n->grad.empty()) continue;
        profile::Scope layer(n->profile_scope), op(n->op);
        n->backward_fn(n->grad);
    }
    // Release the graph: closures hold saved tensors, inputs hold whole sub-graphs, and the
    // intermediate gradients are no longer needed. Leaves keep their grads.
    for (Node* n : order) {
        if (!n->backward_fn) continue;
        n->backward_fn = nullptr;
        n->inputs.clear();
        n->released = true;
        if (n != r) n->grad = Tensor();
    }
}

void backward(const Var& loss) {
    if (loss.value().size() != 1)
        throw ShapeError("backward: loss must be a single value, got shape " +
                         to_string(loss.shape()));
    backward(loss, Tensor::ones(loss.shape()));
}

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }
bool grad_enabled() { return g_grad_enabled; }

}  // namespace semigrad
