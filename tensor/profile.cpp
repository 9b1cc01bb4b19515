// The profiler's tree of scopes (see profile.hpp).
#include "tensor/profile.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace semigrad::profile {

namespace detail {
bool g_enabled = false;
}

namespace {

struct TreeNode {
    std::string name;
    TreeNode* parent = nullptr;
    std::vector<TreeNode*> children;  // first-seen order
    double seconds = 0;
    std::uint64_t calls = 0;
};

// A deque keeps every node's address while rows are added; the root has no name.
std::deque<TreeNode> g_nodes(1);
TreeNode* g_current = &g_nodes.front();

bool in_parallel_region() {
#ifdef _OPENMP
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

}  // namespace

void set_enabled(bool on) { detail::g_enabled = on; }

void Scope::open(std::string_view name) {
    if (in_parallel_region()) return;
    TreeNode* node = nullptr;
    for (TreeNode* c : g_current->children)
        if (c->name == name) node = c;
    if (node == nullptr) {
        node = &g_nodes.emplace_back();
        node->name = std::string(name);
        node->parent = g_current;
        g_current->children.push_back(node);
    }
    g_current = node;
    node_ = node;
    start_ = std::chrono::steady_clock::now();
}

void Scope::close() {
    auto* node = static_cast<TreeNode*>(node_);
    node->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    ++node->calls;
    g_current = node->parent;
}

const std::string& current() {
    static const std::string none;
    return detail::g_enabled ? g_current->name : none;
}

std::vector<Row> rows() {
    std::vector<Row> out;
    const std::function<void(const TreeNode&, int)> visit = [&](const TreeNode& n, int depth) {
        for (const TreeNode* c : n.children) {
            out.push_back({c->name, depth, c->seconds, c->calls});
            visit(*c, depth + 1);
            if (c->children.empty()) continue;
            // The parent's time outside its children, when it is worth a row (>= 2% of it).
            double inner = 0;
            for (const TreeNode* g : c->children) inner += g->seconds;
            if (c->seconds - inner >= 0.02 * c->seconds)
                out.push_back({"(self)", depth + 1, c->seconds - inner, 0});
        }
    };
    visit(g_nodes.front(), 0);
    return out;
}

std::string table(std::size_t steps) {
    const std::vector<Row> all = rows();
    if (all.empty() || steps == 0) return {};
    double total = 0;
    for (const Row& r : all)
        if (r.depth == 0) total += r.seconds;
    std::size_t width = 4;
    for (const Row& r : all) width = std::max(width, 2 * std::size_t(r.depth) + r.name.size());
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "%-*s %10s %7s %8s\n", int(width), "part", "ms/step", "share",
                  "calls");
    out += line;
    for (const Row& r : all) {
        const std::string label = std::string(2 * std::size_t(r.depth), ' ') + r.name;
        const double calls = double(r.calls) / double(steps);
        std::snprintf(line, sizeof line, "%-*s %10.3f %6.1f%% %8s\n", int(width), label.c_str(),
                      1e3 * r.seconds / double(steps), total > 0 ? 100 * r.seconds / total : 0.0,
                      r.calls == 0 ? "" : (calls == double(std::uint64_t(calls))
                                               ? std::to_string(std::uint64_t(calls))
                                               : std::to_string(calls).substr(0, 6))
                                              .c_str());
        out += line;
    }
    std::snprintf(line, sizeof line, "%-*s %10.3f %6.1f%%\n", int(width), "total (top-level rows)",
                  1e3 * total / double(steps), 100.0);
    return out + line;
}

void reset() {
    g_nodes.clear();
    g_nodes.emplace_back();
    g_current = &g_nodes.front();
}

}  // namespace semigrad::profile
