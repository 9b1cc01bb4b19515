// Optimisers: Adam and SGD (with momentum / Nesterov), with Keras' update rules and defaults.
//
// An optimiser holds the model's Parameters (handles sharing the model's tensors) and updates
// them in place from their gradients. Its state is index-aligned with the parameters: slot k of
// parameter i is slots_[k][i], created as zeros when the optimiser is made (Keras' `build`).
// The step counter advances once per step(), never per tensor (advancing it per tensor would apply the bias correction several times a step).
// As in Keras, a parameter with no gradient is left untouched (Keras skips `None` gradients),
// though the counter still advances.
//
// step() reads each gradient once, in the pass that updates the parameter, then drops it, so
// the next backward() starts from none: no zero_grad() between steps and no pass that zero-fills
// a buffer. (Under autograd's protocol the first share to reach a gradient is written into an
// uninitialised buffer, autograd/var.hpp: zeros kept from the last step would only be re-read.)
//
// step() also notes whether every value it wrote is finite (last_step_finite), in the pass that
// writes them: a trainer that must stop on NaN or infinity needs no second, serial scan of the
// weights after each step. (The values it did not write were finite already: weights start
// finite, checkpoints holding NaN or infinity are refused, and only step() changes them.)
//
// Construct the optimiser after building the model: building again makes new tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "tensor/simd.hpp"
#include "tensor/tensor.hpp"

namespace semigrad::nn {

class Optimizer {
  public:
    virtual ~Optimizer() = default;

    // Updates every parameter that has a gradient, then drops that gradient.
    virtual void step() = 0;
    // Drops every parameter's gradient buffer (has_grad() turns false: the parameter is skipped
    // until a backward() reaches it).
    void zero_grad();
    // Whether every parameter value the last step() wrote is finite (true before any step).
    bool last_step_finite() const { return last_step_finite_; }
    // Number of step() calls so far (Keras' `optimizer.iterations`).
    std::int64_t iterations() const { return iterations_; }

    // Keras' class name, "Adam" / "SGD"; checkpoints refuse to load one into the other.
    virtual std::string type() const = 0;
    float learning_rate() const { return learning_rate_; }
    void set_learning_rate(float lr);

    const std::vector<Parameter>& parameters() const { return params_; }
    // Per-parameter state, for checkpoints: slot_names()[k] ("m", "v", "momentum") and
    // slot(k, i), the tensor of that slot for parameters()[i] (same shape).
    const std::vector<std::string>& slot_names() const { return slot_names_; }
    const Tensor& slot(std::size_t k, std::size_t i) const { return slots_.at(k).at(i); }
    Tensor& slot(std::size_t k, std::size_t i) { return slots_.at(k).at(i); }
    // Restores the counter (checkpoint loading); ValueError if negative.
    void set_iterations(std::int64_t t);

  protected:
    // ValueError on a non-positive learning rate or two parameters with the same name.
    Optimizer(std::vector<Parameter> params, float learning_rate,
              std::vector<std::string> slot_names);

    std::vector<Parameter> params_;
    std::vector<std::string> slot_names_;
    std::vector<std::vector<Tensor>> slots_;
    std::int64_t iterations_ = 0;
    float learning_rate_;
    bool last_step_finite_ = true;
};

struct AdamOptions {
    float learning_rate = 0.001f, beta_1 = 0.9f, beta_2 = 0.999f, epsilon = 1e-7f;
};

// Adam (Kingma & Ba 2015) exactly as Keras computes it (keras/src/optimizers/adam.py in Keras 3,
// the same in tf.keras' optimizer_v2 and its fused ResourceApplyAdam kernel):
//   t += 1
//   m += (g - m) * (1 - beta_1)                        (= beta_1 m + (1 - beta_1) g)
//   v += (g^2 - v) * (1 - beta_2)                      (= beta_2 v + (1 - beta_2) g^2)
//   alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//   theta -= alpha * m / (sqrt(v) + epsilon)
// Folding the bias correction into alpha puts epsilon beside sqrt(v) rather than sqrt(v_hat):
// the paper's "epsilon hat" (the formula just before its Section 2.1), which Keras documents.
// Slots: "m", "v".
//
// The update of n elements with alpha already computed, two ways that give the same bits (the
// same float operations in the same order on every element; -ffp-contract=off keeps the
// compiler from fusing any of them):
//   adam_update_readable: the formula above, line by line; the tests' reference.
//   adam_update:          each element's m, v and theta from registers, written once, in
//                         parallel, in the vector width of `isa` (nn/adam_kernel.hpp).
//                         Returns whether every new theta is finite (see Optimizer).
struct AdamScalars {
    float alpha, beta_1, beta_2, epsilon;
};
void adam_update_readable(float* theta, float* m, float* v, const float* g, std::size_t n,
                          const AdamScalars& s);
bool adam_update(float* theta, float* m, float* v, const float* g, std::size_t n,
                 const AdamScalars& s, Isa isa = active_isa());

class Adam : public Optimizer {
  public:
    explicit Adam(std::vector<Parameter> params, AdamOptions o = {});
    void step() override;
    std::string type() const override { return "Adam"; }
    const AdamOptions& options() const { return options_; }

  private:
    AdamOptions options_;
};

struct SGDOptions {
    float learning_rate = 0.01f, momentum = 0.0f;
    bool nesterov = false;
};

// Stochastic gradient descent as Keras' SGD (keras/src/optimizers/sgd.py):
//   momentum 0:  theta -= lr * g
//   otherwise:   v = momentum * v - lr * g;  theta += v                       (heavy ball)
//   nesterov:    v = momentum * v - lr * g;  theta += momentum * v - lr * g  (Sutskever et al. 2013)
// Slots: "momentum" (none when momentum is 0, as in Keras).
class SGD : public Optimizer {
  public:
    explicit SGD(std::vector<Parameter> params, SGDOptions o = {});
    void step() override;
    std::string type() const override { return "SGD"; }
    const SGDOptions& options() const { return options_; }

  private:
    SGDOptions options_;
};

}  // namespace semigrad::nn
