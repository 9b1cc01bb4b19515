// Central finite differences against backward() (see gradcheck.hpp for the method).
#include "autograd/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/error.hpp"
#include "tensor/random.hpp"

namespace semigrad {

// L = Σ P ⊙ y in double: the reduction must not add error to the difference L(x+h) - L(x-h).
static double project(const Tensor& y, const Tensor& P) {
    if (y.shape() != P.shape())
        throw ShapeError("gradcheck: the function returned shape " + to_string(y.shape()) +
                         " on one call and " + to_string(P.shape()) + " on another");
    double s = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) s += double(y[i]) * P[i];
    return s;
}

static std::string format(const char* fmt, double a, double b = 0.0, double c = 0.0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, fmt, a, b, c);
    return buf;
}

GradcheckResult gradcheck(const DifferentiableFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
    if (!(options.eps > 0.0f) || !(options.atol >= 0.0f) || !(options.rtol >= 0.0f))
        throw ValueError("gradcheck: eps must be > 0 and atol, rtol >= 0");
    std::vector<Var> vars;
    for (const Tensor& t : inputs) vars.emplace_back(t, true);

    GradcheckResult r;
    // Analytic: one backward seeded with P gives ∂L/∂x for L = Σ P ⊙ f(x).
    const Var out = f(vars);
    Rng rng(options.seed);
    Tensor P(out.shape());
    for (std::size_t i = 0; i < P.size(); ++i) P[i] = rng.uniform(-1.0f, 1.0f);
    if (out.requires_grad()) backward(out, P);
    for (const Var& v : vars)
        r.analytic.push_back(v.has_grad() ? v.grad() : Tensor::zeros(v.shape()));

    // Numeric: perturb one element at a time, evaluating without a graph.
    NoGradGuard no_grad;
    float worst = -1.0f;
    for (std::size_t k = 0; k < vars.size(); ++k) {
        Tensor& x = vars[k].value();
        Tensor numeric(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) {
            const float x0 = x[i];
            const float h = options.eps * std::max(std::fabs(x0), 1.0f);
            const float xp = x0 + h, xm = x0 - h;  // the steps actually taken, after rounding
            x[i] = xp;
            const double Lp = project(f(vars).value(), P);
            x[i] = xm;
            const double Lm = project(f(vars).value(), P);
            x[i] = x0;
            numeric[i] = static_cast<float>((Lp - Lm) / (double(xp) - double(xm)));

            const float a = r.analytic[k][i], n = numeric[i];
            const float err = std::fabs(a - n), scale = std::max(std::fabs(a), std::fabs(n));
            const float ratio = err == 0.0f ? 0.0f : err / (options.atol + options.rtol * scale);
            // A NaN on either side fails and counts as the worst error.
            const float badness = std::isnan(ratio) ? INFINITY : ratio;
            if (!(badness <= 1.0f)) r.ok = false;
            if (badness > worst) worst = badness, r.worst_input = k, r.worst_index = i;
            if (std::isnan(err) || err > r.max_abs_error) r.max_abs_error = err;
            if (scale > options.atol && err / scale > r.max_rel_error)
                r.max_rel_error = err / scale;
        }
        r.numeric.push_back(std::move(numeric));
    }

    // The message, in llm.c's check_tensor manner: first values side by side, then the worst.
    std::string& m = r.message;
    m = std::string("gradcheck ") + (r.ok ? "OK" : "FAILED") +
        format(": max abs error %.3g, max rel error %.3g", r.max_abs_error, r.max_rel_error) +
        " (atol " + format("%g", options.atol) + ", rtol " + format("%g", options.rtol) +
        "), worst at input " + std::to_string(r.worst_input) + " index " +
        std::to_string(r.worst_index) + "\n";
    for (std::size_t k = 0; k < vars.size(); ++k) {
        const Tensor &a = r.analytic[k], &n = r.numeric[k];
        m += "input " + std::to_string(k) + " " + to_string(a.shape()) + ": analytic numeric\n";
        const std::size_t shown = std::min(options.print, a.size());
        for (std::size_t i = 0; i < shown; ++i)
            m += "  [" + std::to_string(i) + "] " + format("% .6f % .6f", a[i], n[i]) + "\n";
        if (k == r.worst_input && r.worst_index >= shown && r.worst_index < a.size())
            m += "  worst [" + std::to_string(r.worst_index) + "] " +
                 format("% .6f % .6f", a[r.worst_index], n[r.worst_index]) + "\n";
    }
    return r;
}

}  // namespace semigrad
