// Adam and SGD update loops, Keras' formulas (see optimizer.hpp for the equations and sources).
#include "nn/optimizer.hpp"

#include <cmath>
#include <cstdint>
#include <set>

#include "nn/adam_kernel.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/profile.hpp"

namespace semigrad::nn {

Optimizer::Optimizer(std::vector<Parameter> params, float learning_rate,
                     std::vector<std::string> slot_names)
    : params_(std::move(params)), slot_names_(std::move(slot_names)) {
    set_learning_rate(learning_rate);
    std::set<std::string> seen;
    for (const Parameter& p : params_) {
        if (!seen.insert(p.name).second)
            throw ValueError("optimizer: two parameters are named '" + p.name + "'");
    }
    for (std::size_t k = 0; k < slot_names_.size(); ++k) {
        slots_.emplace_back();
        for (const Parameter& p : params_) slots_.back().push_back(Tensor::zeros(p.var.shape()));
    }
}

void Optimizer::zero_grad() {
    for (Parameter& p : params_) p.var.zero_grad();
}

void Optimizer::set_learning_rate(float lr) {
    if (!(lr > 0.0f) || !std::isfinite(lr))
        throw ValueError("optimizer: learning_rate must be positive and finite, got " +
                         std::to_string(lr));
    learning_rate_ = lr;
}

void Optimizer::set_iterations(std::int64_t t) {
    if (t < 0) throw ValueError("optimizer: iterations must be >= 0, got " + std::to_string(t));
    iterations_ = t;
}

namespace {

bool all_finite(const float* x, std::size_t n) {
    std::uint32_t nonfinite = 0;
    for (std::size_t j = 0; j < n; ++j) nonfinite |= adam_kernel::nonfinite_bit(x[j]);
    return !nonfinite;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Adam::Adam(std::vector<Parameter> params, AdamOptions o)
    : Optimizer(std::move(params), o.learning_rate, {"m", "v"}), options_(o) {
    if (!(o.beta_1 >= 0.0f && o.beta_1 < 1.0f) || !(o.beta_2 >= 0.0f && o.beta_2 < 1.0f))
        throw ValueError("Adam: beta_1 and beta_2 must lie in [0, 1), got " +
                         std::to_string(o.beta_1) + " and " + std::to_string(o.beta_2));
    if (!(o.epsilon >= 0.0f)) throw ValueError("Adam: epsilon must be >= 0");
}

void adam_update_readable(float* theta, float* m, float* v, const float* g, std::size_t n,
                          const AdamScalars& s) {
    for (std::size_t j = 0; j < n; ++j) {
        m[j] += (g[j] - m[j]) * (1.0f - s.beta_1);
        v[j] += (g[j] * g[j] - v[j]) * (1.0f - s.beta_2);
        theta[j] -= (m[j] * s.alpha) / (std::sqrt(v[j]) + s.epsilon);
    }
}

namespace adam_kernel {

std::uint32_t portable(float* theta, float* m, float* v, const float* g, std::size_t n,
                       const AdamScalars& s) {
    return loop(theta, m, v, g, n, s);
}

Fn kernel(Isa isa) {
#if SEMIGRAD_X86
    if (isa == Isa::avx512) return avx512;
    if (isa == Isa::avx2) return avx2;
#endif
    (void)isa;
    return portable;
}

}  // namespace adam_kernel

// Elementwise, so each thread updates its own block (in whole cache lines) with the loop of
// nn/adam_kernel.hpp; small tensors (biases, small kernels) stay on one thread, where waking the
// pool costs more than the work. The finiteness flags are ORed: the same answer in any order.
bool adam_update(float* theta, float* m, float* v, const float* g, std::size_t n,
                 const AdamScalars& s, Isa isa) {
    const adam_kernel::Fn kernel = adam_kernel::kernel(isa);
    if (n <= kParallelMinElements) return !kernel(theta, m, v, g, n, s);
    std::uint32_t nonfinite = 0;
#pragma omp parallel reduction(| : nonfinite)
    {
        const ThreadShare share = thread_share(n, 16);  // whole 64-byte lines
        const std::size_t first = share.first, count = share.last - share.first;
        nonfinite |= kernel(theta + first, m + first, v + first, g + first, count, s);
    }
    return !nonfinite;
}

void Adam::step() {
    profile::Scope scope("Adam");
    ++iterations_;
    // float32 throughout, as Keras computes in the variable's dtype.
    const float t = static_cast<float>(iterations_);
    const float b1 = options_.beta_1, b2 = options_.beta_2;
    const AdamScalars scalars{
        .alpha = learning_rate_ * std::sqrt(1.0f - std::pow(b2, t)) / (1.0f - std::pow(b1, t)),
        .beta_1 = b1, .beta_2 = b2, .epsilon = options_.epsilon};
    last_step_finite_ = true;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        Var& var = params_[i].var;
        if (!var.has_grad()) continue;
        last_step_finite_ &= adam_update(var.value().data(), slots_[0][i].data(),
                                         slots_[1][i].data(), var.grad().data(),
                                         var.value().size(), scalars);
        var.zero_grad();  // read: the next backward writes a new one
    }
}

// ---------------------------------------------------------------------------------------------

SGD::SGD(std::vector<Parameter> params, SGDOptions o)
    : Optimizer(std::move(params), o.learning_rate,
                o.momentum != 0.0f ? std::vector<std::string>{"momentum"}
                                   : std::vector<std::string>{}),
      options_(o) {
    if (!(o.momentum >= 0.0f && o.momentum <= 1.0f))
        throw ValueError("SGD: momentum must lie in [0, 1], got " + std::to_string(o.momentum));
}

void SGD::step() {
    profile::Scope scope("SGD");
    ++iterations_;
    const float lr = learning_rate_, mu = options_.momentum;
    last_step_finite_ = true;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        Var& var = params_[i].var;
        if (!var.has_grad()) continue;
        const float* g = var.grad().data();
        float* theta = var.value().data();
        const std::size_t n = var.value().size();
        if (slots_.empty()) {
            for (std::size_t j = 0; j < n; ++j) theta[j] -= g[j] * lr;
        } else {
            float* velocity = slots_[0][i].data();
            for (std::size_t j = 0; j < n; ++j) {
                velocity[j] = velocity[j] * mu - g[j] * lr;
                theta[j] += options_.nesterov ? velocity[j] * mu - g[j] * lr : velocity[j];
            }
        }
        last_step_finite_ &= all_finite(theta, n);
        var.zero_grad();
    }
}

}  // namespace semigrad::nn
