// Elementwise arithmetic, reductions to a scalar and reshapes, each a differentiable function:
// the forward loop, then the backward closure that writes or adds (autograd/var.hpp's protocol)
// each input's share into its gradient.
// No broadcasting (bias_add in linear.cpp is the one broadcast the model needs) and no views:
// reshape copies, as Tensor::reshape does.
#include <string>

#include "autograd/functions.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad {


// d(a ± b) = da ± db.
static Var add_or_sub(const Var& a, const Var& b, float sign, const char* op) {
    check_same_shape(op, a.value(), b.value());
    const std::size_t n = a.value().size();
    Tensor out(a.shape());
    const float *pa = a.value().data(), *pb = b.value().data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) po[i] = pa[i] + sign * pb[i];
    return record(std::move(out), {a, b}, op, [a, b, sign](const Tensor& dout) {
        const float* g = dout.data();
        if (a.requires_grad()) write_or_add_grad(a, [g](std::size_t i) { return g[i]; });
        if (b.requires_grad()) write_or_add_grad(b, [g, sign](std::size_t i) { return sign * g[i]; });
    });
}

Var add(const Var& a, const Var& b) { return add_or_sub(a, b, 1.0f, "add"); }
Var sub(const Var& a, const Var& b) { return add_or_sub(a, b, -1.0f, "sub"); }

// d(a * b) = b da + a db.
Var mul(const Var& a, const Var& b) {
    check_same_shape("mul", a.value(), b.value());
    const std::size_t n = a.value().size();
    Tensor out(a.shape());
    const float *pa = a.value().data(), *pb = b.value().data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) po[i] = pa[i] * pb[i];
    return record(std::move(out), {a, b}, "mul", [a, b](const Tensor& dout) {
        const float *g = dout.data(), *pa = a.value().data(), *pb = b.value().data();
        // Two loops, one per gradient: mul(x, x) writes x's gradient, then adds to it.
        if (a.requires_grad()) write_or_add_grad(a, [g, pb](std::size_t i) { return g[i] * pb[i]; });
        if (b.requires_grad()) write_or_add_grad(b, [g, pa](std::size_t i) { return g[i] * pa[i]; });
    });
}

Var scale(const Var& a, float factor) {
    const std::size_t n = a.value().size();
    Tensor out(a.shape());
    const float* pa = a.value().data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) po[i] = factor * pa[i];
    return record(std::move(out), {a}, "scale", [a, factor](const Tensor& dout) {
        const float* g = dout.data();
        write_or_add_grad(a, [g, factor](std::size_t i) { return factor * g[i]; });
    });
}

// Σ a in double, so that a sum over a million activations keeps float32's precision. The
// parallel version sums fixed chunks into their own slots and adds the slots in order: an OpenMP
// `reduction` combines partial sums in whatever order threads finish, and the result would not
// be bit-identical from run to run.
static double total(const Tensor& a) {
    constexpr std::size_t kChunks = 64;
    const std::size_t n = a.size();
    const float* pa = a.data();
    double partial[kChunks] = {};
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t c = 0; c < kChunks; ++c) {
        const std::size_t begin = n * c / kChunks, end = n * (c + 1) / kChunks;
        double s = 0.0;
        for (std::size_t i = begin; i < end; ++i) s += pa[i];
        partial[c] = s;
    }
    double s = 0.0;
    for (double p : partial) s += p;
    return s;
}

// y = c Σ a (c = 1 for sum, 1/size for mean) -> dy/da_i = c.
static Var scaled_total(const Var& a, double c, const char* op) {
    const Tensor& v = a.value();
    const float value = static_cast<float>(c * total(v));
    return record(Tensor::scalar(value), {a}, op, [a, c](const Tensor& dout) {
        const float g = static_cast<float>(c * dout[0]);
        write_or_add_grad(a, [g](std::size_t) { return g; });
    });
}

Var sum(const Var& a) { return scaled_total(a, 1.0, "sum"); }

Var mean(const Var& a) {
    if (a.value().empty()) throw ShapeError("mean: input has no elements (shape " +
                                            to_string(a.shape()) + ")");
    return scaled_total(a, 1.0 / static_cast<double>(a.value().size()), "mean");
}

// Row-major reshape keeps the flat order, so the gradient flows back element for element.
static Var reshaped(const Var& a, const Shape& shape, const char* op) {
    if (shape_size(shape) != a.value().size())
        throw ShapeError(std::string(op) + ": cannot reshape " + to_string(a.shape()) + " (" +
                         std::to_string(a.value().size()) + " elements) to " + to_string(shape));
    Tensor out = a.value().reshape(shape);
    return record(std::move(out), {a}, op, [a](const Tensor& dout) {
        const float* g = dout.data();
        write_or_add_grad(a, [g](std::size_t i) { return g[i]; });
    });
}

Var reshape(const Var& a, const Shape& shape) { return reshaped(a, shape, "reshape"); }

// As Keras' Flatten: [N, d1, d2, ...] -> [N, d1*d2*...]; a rank-1 [N] becomes [N, 1].
Var flatten(const Var& a) {
    if (a.value().ndim() < 1)
        throw ShapeError("flatten: input must have a batch axis, got shape " +
                         to_string(a.shape()));
    std::size_t rest = 1;
    for (std::size_t i = 1; i < a.shape().size(); ++i) rest *= a.shape()[i];
    const Shape shape = {a.shape()[0], rest};
    return reshaped(a, shape, "flatten");
}

}  // namespace semigrad
