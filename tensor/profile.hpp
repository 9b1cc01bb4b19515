// A small profiler: named, nested wall-clock scopes that add up where a training step's time
// goes, printed as a table (the trainer's --profile, bench_train_step).
//
//   profile::set_enabled(true);
//   { profile::Scope s("forward"); ... { profile::Scope c("conv2d"); ... } }
//   std::cout << profile::table(steps);
//
// Off by default, and then a Scope is one test of a global flag: library code (Sequential's
// layers, backward()'s nodes, the optimiser, gemm) keeps its scopes in all builds. Scopes nest
// into a tree by the order they are open ("backward/conv2d_1/conv2d"); a name seen again under
// the same parent adds to the same row. Times are inclusive (a row includes its children); a
// parent's own time outside its children shows as a "(self)" row when it is 2% of the parent or more.
//
// Scopes are opened by the thread that drives the step, outside parallel regions: a scope opened
// inside an OpenMP parallel region is ignored (its time belongs to the enclosing scope), so
// worker threads never touch the tree. Not a sampling profiler (perf is that): it measures only
// what code names, and wall time, so a busy machine shows up in it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace semigrad::profile {

namespace detail {
extern bool g_enabled;
}

// Turns recording on or off (default off). Scopes open when it changes close normally.
void set_enabled(bool on);
inline bool enabled() { return detail::g_enabled; }

class Scope {
  public:
    // An empty name opens nothing (for names built only when enabled()).
    explicit Scope(std::string_view name) {
        if (detail::g_enabled && !name.empty()) open(name);
    }
    ~Scope() {
        if (node_ != nullptr) close();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

  private:
    void open(std::string_view name);
    void close();
    void* node_ = nullptr;
    std::chrono::steady_clock::time_point start_;
};

// The innermost open scope's name ("" when none or disabled). autograd's record() keeps it, so
// that backward() reports each node under the layer whose forward made it.
const std::string& current();

// One row of the tree, parents before their children, siblings in first-seen order.
struct Row {
    std::string name;
    int depth = 0;
    double seconds = 0;
    std::uint64_t calls = 0;
};
std::vector<Row> rows();

// The tree as a text table: each row's milliseconds per step (its seconds / steps), calls per
// step and share of the top-level rows' sum. Empty when nothing was recorded.
std::string table(std::size_t steps);

// Forgets every row (scopes must be closed).
void reset();

}  // namespace semigrad::profile
