// Tensor: a dense float32 array, row-major (C order), owning its storage.
//
// Storage is xtensor's `xt::xarray<float>` (its allocation, shape and element access); the
// class is a thin value type over it so that the rest of semigrad sees one tensor
// representation (docs/design.md, "Tensors and kernels"). Copies are deep. Images are NCHW.
// Kernels take `.data()` and loop over raw memory, each beside a naive reference; none of them
// uses xtensor's expressions, and only xarray.hpp is included (tensor/xtensor.hpp). `.array()`
// hands out the xarray for code that wants an expression; it must then include the xtensor
// header it uses.
//
// This is not a view/stride system: every Tensor is contiguous, and reshape copies.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "tensor/xtensor.hpp"

namespace semigrad {

using Shape = xt::xarray<float>::shape_type;

// "[2,3,28,28]"
std::string to_string(const Shape& shape);
std::size_t shape_size(const Shape& shape);

class Tensor {
  public:
    // An empty tensor of shape [0].
    Tensor();
    // A tensor of `shape` filled with `fill`.
    explicit Tensor(const Shape& shape, float fill = 0.0f);
    // A tensor of `shape` holding `values` (row-major). Throws ShapeError on a size mismatch.
    Tensor(const Shape& shape, const std::vector<float>& values);
    // Adopts an xtensor array (glue code: the result of an xtensor expression).
    static Tensor from_array(xt::xarray<float> array);

    // A tensor of `shape` whose entries are unspecified: for an output every entry of which the
    // caller writes next (a fill first would be one more pass over memory, serial at that).
    static Tensor uninitialised(const Shape& shape);

    static Tensor zeros(const Shape& shape) { return Tensor(shape, 0.0f); }
    static Tensor ones(const Shape& shape) { return Tensor(shape, 1.0f); }
    static Tensor scalar(float value) { return Tensor(Shape{1}, value); }

    const Shape& shape() const { return array_.shape(); }
    std::size_t ndim() const { return array_.dimension(); }
    // Size along `axis`; negative axes count from the end. Throws ShapeError when out of range.
    std::size_t dim(int axis) const;
    std::size_t size() const { return array_.size(); }
    bool empty() const { return array_.size() == 0; }

    float* data() { return array_.data(); }
    const float* data() const { return array_.data(); }
    float& operator[](std::size_t i) { return array_.data()[i]; }
    float operator[](std::size_t i) const { return array_.data()[i]; }
    // Multi-index access with bounds checks, for tests and glue: t.at({n, c, h, w}).
    float& at(std::initializer_list<std::size_t> index);
    float at(std::initializer_list<std::size_t> index) const;
    // The value of a one-element tensor (a loss). Throws ShapeError otherwise.
    float item() const;

    // The same values with another shape of the same size (a copy). Throws ShapeError.
    Tensor reshape(const Shape& shape) const;
    void fill(float value);

    xt::xarray<float>& array() { return array_; }
    const xt::xarray<float>& array() const { return array_; }

  private:
    xt::xarray<float> array_;
};

// Throws ShapeError("<op>: <what> has shape [..], expected [..]") unless the shapes are equal.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
// Throws ShapeError unless `t` has exactly `rank` dimensions.
void check_rank(const char* op, const char* what, const Tensor& t, std::size_t rank);

// max |a - b| over all elements (shapes must match). Used by tests and benchmarks to compare a
// fast kernel with its reference.
float max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace semigrad
