// Module: the interface every layer and the Sequential container implement, and Parameter, the
// named trainable tensor a module exposes.
//
// A module is built once for an input shape (Keras' `build`): that creates and initialises its
// weights from an explicit generator and returns its output shape. After that `forward` maps a
// batch [N, ...] to [N, ...] by calling autograd functions, so backward() reaches the weights.
// Shapes passed to build() leave out the batch axis N, as Keras' `input_shape` does.
//
// Each module lists its parameters itself (no registration magic that can silently miss one) and
// reads its own training flag; `train(bool)` on a container reaches every child.
//
// This is not a graph tracer or a functional-model API: models are Sequential stacks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autograd/var.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::nn {

enum class Activation { None, ReLU };

// A trainable tensor and its unique name in a model, e.g. "conv2d/kernel", "dense/bias".
// `var` is a leaf with requires_grad; copies of a Parameter share the same tensor.
struct Parameter {
    std::string name;
    Var var;
};

// A generator owned by a module (Dropout), named like a parameter ("dropout/rng"), so that
// checkpoints can save and restore its stream.
struct NamedRng {
    std::string name;
    Rng* rng;
};

class Module {
  public:
    virtual ~Module() = default;

    virtual Var forward(const Var& x) = 0;
    virtual std::vector<Parameter> parameters() { return {}; }
    virtual std::vector<NamedRng> generators() { return {}; }

    virtual void train(bool on) { training_ = on; }

    // The global index of the current batch's first sample, when the batch is a slice of a larger
    // one (data-parallel training): layers that draw per-sample randomness (Dropout) key it by
    // global sample index, so every slicing of a batch draws the same masks. Default 0.
    virtual void set_sample_offset(std::size_t) {}
    bool training() const { return training_; }

    // Creates and initialises the weights for inputs of `input_shape` (without N), drawing from
    // `init_rng`; returns the output shape (without N). Building again re-initialises.
    virtual Shape build(const Shape& input_shape, Rng& init_rng) = 0;
    bool built() const { return built_; }

    // Keras' class name ("Conv2D") and the instance name ("conv2d", "conv2d_1", ...): each layer
    // starts with its Keras base name and Sequential::build makes the names unique.
    virtual std::string type() const = 0;
    virtual std::string name() const { return name_; }
    void set_name(std::string name) { name_ = std::move(name); }

  protected:
    explicit Module(std::string name) : name_(std::move(name)) {}
    // Throws Error("<name>: forward before build()") unless built.
    void check_built() const;

    bool built_ = false;

  private:
    std::string name_;
    bool training_ = true;
};

// Elements in all parameters of `module`, as Keras' count_params().
std::size_t count_params(Module& module);

}  // namespace semigrad::nn
