#include "tensor/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace semigrad {

std::string to_string(const Shape& shape) {
    std::ostringstream out;
    out << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
    out << ']';
    return out.str();
}

std::size_t shape_size(const Shape& shape) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

Tensor::Tensor() : array_(xt::xarray<float>::from_shape({0})) {}

// In parallel: a [32,64,28,28] activation is 1.6M floats, and a serial fill was a tenth of a
// training step (this is also the memory's first touch, which then comes from both threads).
Tensor::Tensor(const Shape& shape, float fill) : array_(xt::xarray<float>::from_shape(shape)) {
    float* p = array_.data();
    const std::size_t n = array_.size();
#pragma omp parallel for schedule(static) if (n > kParallelMinElements)
    for (std::size_t i = 0; i < n; ++i) p[i] = fill;
}

Tensor Tensor::uninitialised(const Shape& shape) { return Tensor::from_array(xt::xarray<float>::from_shape(shape)); }

Tensor::Tensor(const Shape& shape, const std::vector<float>& values)
    : array_(xt::xarray<float>::from_shape(shape)) {
    if (values.size() != array_.size())
        throw ShapeError("Tensor: " + std::to_string(values.size()) + " values given for shape " +
                         to_string(shape) + " (" + std::to_string(array_.size()) + " elements)");
    std::copy(values.begin(), values.end(), array_.data());
}

Tensor Tensor::from_array(xt::xarray<float> array) {
    Tensor t;
    t.array_ = std::move(array);
    return t;
}

std::size_t Tensor::dim(int axis) const {
    const int n = static_cast<int>(ndim());
    const int a = axis < 0 ? axis + n : axis;
    if (a < 0 || a >= n)
        throw ShapeError("Tensor::dim: axis " + std::to_string(axis) + " out of range for shape " +
                         to_string(shape()));
    return shape()[static_cast<std::size_t>(a)];
}

static std::size_t flat_index(const Shape& shape, std::initializer_list<std::size_t> index) {
    if (index.size() != shape.size())
        throw ShapeError("Tensor::at: " + std::to_string(index.size()) + " indices for shape " +
                         to_string(shape));
    std::size_t flat = 0, axis = 0;
    for (std::size_t i : index) {
        if (i >= shape[axis])
            throw ShapeError("Tensor::at: index " + std::to_string(i) + " out of range on axis " +
                             std::to_string(axis) + " of shape " + to_string(shape));
        flat = flat * shape[axis] + i;
        ++axis;
    }
    return flat;
}

float& Tensor::at(std::initializer_list<std::size_t> index) {
    return array_.data()[flat_index(shape(), index)];
}

float Tensor::at(std::initializer_list<std::size_t> index) const {
    return array_.data()[flat_index(shape(), index)];
}

float Tensor::item() const {
    if (size() != 1)
        throw ShapeError("Tensor::item: tensor of shape " + to_string(shape()) +
                         " is not a single value");
    return array_.data()[0];
}

Tensor Tensor::reshape(const Shape& new_shape) const {
    if (shape_size(new_shape) != size())
        throw ShapeError("reshape: cannot reshape " + to_string(shape()) + " (" +
                         std::to_string(size()) + " elements) to " + to_string(new_shape));
    Tensor out(new_shape);
    std::copy(data(), data() + size(), out.data());
    return out;
}

void Tensor::fill(float value) { array_.fill(value); }

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape())
        throw ShapeError(std::string(op) + ": shapes " + to_string(a.shape()) + " and " +
                         to_string(b.shape()) + " differ");
}

void check_rank(const char* op, const char* what, const Tensor& t, std::size_t rank) {
    if (t.ndim() != rank)
        throw ShapeError(std::string(op) + ": " + what + " must have rank " +
                         std::to_string(rank) + ", got shape " + to_string(t.shape()));
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
    check_same_shape("max_abs_diff", a, b);
    float m = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const float d = std::fabs(a[i] - b[i]);
        if (std::isnan(d)) return d;
        m = std::max(m, d);
    }
    return m;
}

}  // namespace semigrad
