// Test helpers for tests/losses: random batches and a central-difference gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::losses::testing {

inline Tensor random_normal(std::size_t rows, std::size_t cols, Rng& rng) {
    Tensor t({rows, cols});
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = rng.normal();
    return t;
}

// Rows scaled to unit length (the tutorial's embeddings).
inline Tensor normalise_rows(Tensor t) {
    const std::size_t B = t.dim(0), D = t.dim(1);
    for (std::size_t i = 0; i < B; ++i) {
        double s = 0;
        for (std::size_t d = 0; d < D; ++d) s += double(t[i * D + d]) * t[i * D + d];
        const float inv = float(1.0 / std::sqrt(std::max(s, 1e-24)));
        for (std::size_t d = 0; d < D; ++d) t[i * D + d] *= inv;
    }
    return t;
}

inline std::vector<int> random_labels(std::size_t B, int classes, Rng& rng) {
    std::vector<int> y(B);
    for (auto& v : y) v = int(rng.below(std::uint32_t(classes)));
    return y;
}

// (f(x + h e_i) - f(x - h e_i)) / 2h for every coordinate i, f evaluated in float and the
// difference taken in double.
inline Tensor numeric_gradient(const std::function<float(const Tensor&)>& f, const Tensor& x, float h) {
    Tensor g(x.shape());
    Tensor probe = x;
    for (std::size_t i = 0; i < x.size(); ++i) {
        probe[i] = x[i] + h;
        const double plus = f(probe);
        probe[i] = x[i] - h;
        const double minus = f(probe);
        probe[i] = x[i];
        g[i] = float((plus - minus) / (2.0 * double(h)));
    }
    return g;
}

// max_i |a_i - b_i| / (abs_tol + rel_tol * max|b|) <= 1, reported as that ratio.
inline double scaled_error(const Tensor& a, const Tensor& b, double abs_tol, double rel_tol) {
    double scale = 0, worst = 0;
    for (std::size_t i = 0; i < b.size(); ++i) scale = std::max(scale, double(std::fabs(b[i])));
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::fabs(double(a[i]) - double(b[i]));
        if (std::isnan(e)) return INFINITY;
        worst = std::max(worst, e);
    }
    return worst / (abs_tol + rel_tol * scale);
}

}  // namespace semigrad::losses::testing
