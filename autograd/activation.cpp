// Activations as differentiable functions: relu and tf.math.l2_normalize over rows.
// Both are plain loops over raw memory; they are memory-bound, so they only go parallel when
// large enough to amortise a thread team.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad {


// y = max(x, 0). The derivative at exactly 0 is taken as 0, as TensorFlow's ReluGrad does
// (gradient passed where x > 0), so a dead unit stays dead in both.
Var relu(const Var& x) {
    const std::size_t n = x.value().size();
    Tensor out = Tensor::uninitialised(x.shape());  // every entry written below
    const float* px = x.value().data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) po[i] = px[i] > 0.0f ? px[i] : 0.0f;
    return record(std::move(out), {x}, "relu", [x](const Tensor& dout) {
        const float *g = dout.data(), *px = x.value().data();
        write_or_add_grad(x, [g, px](std::size_t i) { return px[i] > 0.0f ? g[i] : 0.0f; });
    });
}

// Rows of x [N,D], as tf.math.l2_normalize(x, axis=1) (tensorflow/python/ops/nn_impl.py):
//   s = Σ_j x_j²,  r = rsqrt(max(s, ε)),  y = r x.
// Backward. When s ≥ ε (TF's maximum routes its gradient to the first argument on ties,
// math_grad.py _MaximumGrad), r = s^(-1/2) and ∂r/∂x_j = -x_j r³, so
//   ∂y_i/∂x_j = r δ_ij - r³ x_i x_j = r (δ_ij - y_i y_j),
// a symmetric Jacobian, hence dx = r (dy - y (y·dy)) = (dy - y (y·dy)) / ‖x‖.
// When s < ε the clamp makes r the constant 1/sqrt(ε), and dx = r dy.
Var l2_normalize(const Var& x, float epsilon) {
    if (x.value().ndim() != 2)
        throw ShapeError("l2_normalize: input must be [N,D], got shape " + to_string(x.shape()));
    if (!(epsilon > 0.0f))
        throw ValueError("l2_normalize: epsilon must be > 0, got " + std::to_string(epsilon));
    const std::size_t N = x.shape()[0], D = x.shape()[1];
    Tensor out = Tensor::uninitialised(x.shape());  // every entry written below
    // Per row: r, and whether the clamp was inactive (the normalising branch of the backward).
    std::vector<float> inv_norm(N);
    std::vector<char> normalising(N);
    const float* px = x.value().data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (N * D > kParallelMinElements)
    for (std::size_t n = 0; n < N; ++n) {
        const float* row = px + n * D;
        double s = 0.0;
        for (std::size_t j = 0; j < D; ++j) s += double(row[j]) * row[j];
        normalising[n] = s >= double(epsilon);
        const float r = static_cast<float>(1.0 / std::sqrt(normalising[n] ? s : double(epsilon)));
        inv_norm[n] = r;
        for (std::size_t j = 0; j < D; ++j) po[n * D + j] = row[j] * r;
    }
    return record(std::move(out), {x}, "l2_normalize",
                  [x, inv_norm, normalising, N, D](const Tensor& dout) {
        const float *g = dout.data(), *px = x.value().data();
        bool first;
        float* dx = x.node()->grad_write_or_add(first).data();
#pragma omp parallel for schedule(static) if (N * D > kParallelMinElements)
        for (std::size_t n = 0; n < N; ++n) {
            const float r = inv_norm[n];
            const float *xr = px + n * D, *gr = g + n * D;
            float* dxr = dx + n * D;
            double y_dot_dy = 0.0;  // y·dy, with y = r x recomputed rather than saved
            if (normalising[n])
                for (std::size_t j = 0; j < D; ++j) y_dot_dy += double(xr[j]) * r * gr[j];
            const float ydy = static_cast<float>(y_dot_dy);
            for (std::size_t j = 0; j < D; ++j) {
                const float share = normalising[n] ? r * (gr[j] - xr[j] * r * ydy) : r * gr[j];
                dxr[j] = first ? share : dxr[j] + share;
            }
        }
    });
}

}  // namespace semigrad
