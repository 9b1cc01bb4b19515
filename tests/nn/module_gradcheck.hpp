// Central-difference gradient check of a whole module: its input AND its parameters.
//
// autograd/gradcheck.hpp checks a function of fresh leaves; a layer's weights live inside the
// layer, so this helper perturbs them in place instead. Same method: L = Σ P ⊙ forward(x) with a
// fixed random P, analytic gradients from one backward(y, P), numeric ones from
// (L(v + h) - L(v - h)) / 2h, h = eps · max(|v|, 1), L summed in double. The module's generators
// are rewound before every forward, so a Dropout layer draws the same mask each time.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "nn/module.hpp"

namespace semigrad::nn::testing {

inline double project(const Tensor& y, const Tensor& P) {
    double s = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) s += double(y[i]) * P[i];
    return s;
}

// Expects every gradient of `m` at input `x` (with respect to x and every parameter) to match
// finite differences within atol + rtol * max(|analytic|, |numeric|).
inline void expect_module_gradients(Module& m, const Tensor& x, float eps = 1e-3f,
                                    float atol = 2e-3f, float rtol = 2e-2f) {
    std::vector<Rng::State> rng_states;
    for (NamedRng& g : m.generators()) rng_states.push_back(g.rng->state());
    auto rewind = [&] {
        std::vector<NamedRng> gens = m.generators();
        for (std::size_t i = 0; i < gens.size(); ++i) gens[i].rng->set_state(rng_states[i]);
    };

    std::vector<Parameter> params = m.parameters();
    for (Parameter& p : params) p.var.zero_grad();
    Var input(x, true);
    rewind();
    const Var y = m.forward(input);
    Rng prng(1234);
    Tensor P(y.shape());
    for (std::size_t i = 0; i < P.size(); ++i) P[i] = prng.uniform(-1.0f, 1.0f);
    backward(y, P);

    std::vector<std::pair<std::string, Var>> wrt{{"input", input}};
    for (Parameter& p : params) wrt.emplace_back(p.name, p.var);
    NoGradGuard no_grad;
    for (auto& [name, v] : wrt) {
        ASSERT_TRUE(v.has_grad()) << m.name() << ": no gradient reached " << name;
        const Tensor analytic = v.grad();
        Tensor& value = v.value();
        float worst = 0.0f;  // max error / tolerance
        std::ostringstream where;
        for (std::size_t i = 0; i < value.size(); ++i) {
            const float v0 = value[i], h = eps * std::max(std::fabs(v0), 1.0f);
            const float vp = v0 + h, vm = v0 - h;
            value[i] = vp;
            rewind();
            const double Lp = project(m.forward(input).value(), P);
            value[i] = vm;
            rewind();
            const double Lm = project(m.forward(input).value(), P);
            value[i] = v0;
            const auto numeric = static_cast<float>((Lp - Lm) / (double(vp) - double(vm)));
            const float err = std::fabs(numeric - analytic[i]);
            const float ratio = err / (atol + rtol * std::max(std::fabs(numeric), std::fabs(analytic[i])));
            if (std::isnan(ratio) || ratio > worst) {  // a NaN fails and stays the worst
                worst = std::isnan(ratio) ? INFINITY : ratio;
                where.str("");
                where << "element " << i << ": analytic " << analytic[i] << ", numeric " << numeric;
            }
        }
        EXPECT_LE(worst, 1.0f) << m.name() << " d" << name << " worst at " << where.str();
    }
    rewind();
}

}  // namespace semigrad::nn::testing
