// The layers of the tutorial model, with Keras' names, arguments and defaults. Each is a thin
// module over one or two autograd functions (autograd/functions.hpp); the arithmetic lives there.
//
// Layout: activations are NCHW ([N, C, H, W]); Keras' default is NHWC. Shapes given to build()
// and reported by Sequential::summary() leave out N and are in our order, e.g. (None, 64, 28, 28)
// where Keras prints (None, 28, 28, 64).
//
// Not here: other activations, batch norm, recurrent layers; the tutorial needs none of them.
#pragma once

#include <string>

#include "nn/module.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/pool2d.hpp"
#include "tensor/random.hpp"

namespace semigrad::nn {

using semigrad::Padding;

struct Conv2DOptions {
    int filters;
    int kernel_size;
    int strides = 1;
    Padding padding = Padding::Valid;
    Activation activation = Activation::None;
    bool use_bias = true;
};

// Keras' Conv2D with square kernels and strides. Weights:
//   kernel [OC, C, KH, KW]  Glorot-uniform (fan_in = KH*KW*C, fan_out = KH*KW*OC). Keras stores
//                           the same numbers as [KH, KW, C, OC]; ours is the order GEMM wants.
//   bias   [OC]             zeros
// Padding::Same pads as TensorFlow does (tf_padding: an even kernel pads 0 before, 1 after).
class Conv2D : public Module {
  public:
    explicit Conv2D(Conv2DOptions o);
    Var forward(const Var& x) override;
    std::vector<Parameter> parameters() override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "Conv2D"; }
    const Conv2DOptions& options() const { return options_; }
    // For Sequential's fused block (conv_block): the weights and the spec for an input shape.
    const Var& kernel() const { return kernel_; }
    const Var& bias() const { return bias_; }
    Conv2dSpec spec_for(const Shape& x) const;

  private:

    Conv2DOptions options_;
    Var kernel_, bias_;
};

struct MaxPool2DOptions {
    int pool_size = 2;
    int strides = 0;  // 0 means pool_size, as Keras' strides=None
    Padding padding = Padding::Valid;
};

// Keras' MaxPooling2D: the maximum of each pool_size x pool_size window. No weights.
class MaxPool2D : public Module {
  public:
    explicit MaxPool2D(MaxPool2DOptions o = {});
    Var forward(const Var& x) override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "MaxPool2D"; }
    Pool2dSpec spec_for(const Shape& x) const;

  private:

    MaxPool2DOptions options_;
};

struct DropoutOptions {
    float rate = 0.3f;
};

// Keras' Dropout, inverted: in training each element is zeroed with probability `rate` and the
// survivors are scaled by 1/(1-rate); in evaluation (train(false)) it is the identity. Each
// Dropout owns its generator, seeded in build() from init_rng, so a model's masks depend only on
// its seed, and checkpoints save the generator (generators()) so a resumed run draws the same
// masks as one that never stopped.
class Dropout : public Module {
  public:
    explicit Dropout(DropoutOptions o = {});
    Var forward(const Var& x) override;
    std::vector<NamedRng> generators() override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "Dropout"; }
    void set_sample_offset(std::size_t offset) override { sample_offset_ = offset; }
    float rate() const { return options_.rate; }
    std::size_t sample_offset() const { return sample_offset_; }
    // The generator the masks' keys come from (Sequential's fused block draws from it too).
    Rng& rng() { return rng_; }

  private:
    DropoutOptions options_;
    Rng rng_;
    std::size_t sample_offset_ = 0;
};

// [N, C, H, W] -> [N, C*H*W] in our row-major NCHW order: element (c, h, w) lands at
// c*H*W + h*W + w. Keras flattens NHWC, i.e. (h, w, c) at (h*W + w)*C + c. The two orders differ by
// a fixed permutation of the Dense layer's input rows, so a model trained from scratch learns the
// same function either way; only importing a Keras-trained Dense kernel would need the rows
// permuted.
class Flatten : public Module {
  public:
    Flatten() : Module("flatten") {}
    Var forward(const Var& x) override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "Flatten"; }
};

struct DenseOptions {
    int units;
    Activation activation = Activation::None;
    bool use_bias = true;
};

// Keras' Dense: x [N, D] @ kernel [D, units] + bias [units]. The kernel layout is Keras' own.
//   kernel [D, units]  Glorot-uniform (fan_in = D, fan_out = units);  bias [units]  zeros
class Dense : public Module {
  public:
    explicit Dense(DenseOptions o);
    Var forward(const Var& x) override;
    std::vector<Parameter> parameters() override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "Dense"; }
    const DenseOptions& options() const { return options_; }

  private:
    DenseOptions options_;
    Var kernel_, bias_;
};

// max(x, 0) as a layer (Keras' ReLU).
class ReLU : public Module {
  public:
    ReLU() : Module("re_lu") {}
    Var forward(const Var& x) override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "ReLU"; }
};

struct L2NormalizeOptions {
    float epsilon = 1e-12f;
};

// The tutorial's Lambda(lambda x: tf.math.l2_normalize(x, axis=1)): each row of [N, D] scaled to
// unit length, y = x / sqrt(max(sum(x^2), epsilon)).
class L2Normalize : public Module {
  public:
    explicit L2Normalize(L2NormalizeOptions o = {});
    Var forward(const Var& x) override;
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    std::string type() const override { return "L2Normalize"; }

  private:
    L2NormalizeOptions options_;
};

}  // namespace semigrad::nn
