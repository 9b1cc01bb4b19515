// Sequential: a stack of modules applied in order, Keras' `tf.keras.Sequential`.
//
//   Sequential model;
//   model.add(Conv2D({.filters = 64, .kernel_size = 2, .padding = Padding::Same,
//                     .activation = Activation::ReLU}));
//   model.add(MaxPool2D());
//   ...
//   Rng init(seed);
//   model.build({1, 28, 28}, init);   // creates the weights; shapes without N, NCHW
//   std::cout << model.summary();
//
// Fusion: where a Conv2D with ReLU is followed by a MaxPool2D and a Dropout, forward() runs the
// three as one autograd node (conv2d_relu_pool_dropout, tensor/conv_block.hpp) that computes the
// same values and gradients without materialising the conv output. The layers, their names,
// parameters, generators and summary stay the same; set_fuse(false) runs them one by one (the
// reference the fused node is tested against, and the trainer's --no-fuse).
//
// build() names the layers as Keras does (the first Conv2D is "conv2d", the second "conv2d_1"),
// so parameter names ("conv2d_1/kernel") are unique in the model and stable between runs,
// which is what checkpoints key on.
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace semigrad::nn {

class Sequential : public Module {
  public:
    Sequential() : Module("sequential") {}

    // Appends a layer and returns a reference to it (owned by the model).
    template <std::derived_from<Module> M>
    M& add(M layer) {
        auto owned = std::make_unique<M>(std::move(layer));
        M& ref = *owned;
        append(std::move(owned));
        return ref;
    }
    Module& add(std::unique_ptr<Module> layer) { return append(std::move(layer)); }

    // Builds every layer in order, each on the previous one's output shape; returns the last.
    Shape build(const Shape& input_shape, Rng& init_rng) override;
    Var forward(const Var& x) override;
    std::vector<Parameter> parameters() override;
    std::vector<NamedRng> generators() override;
    void train(bool on) override;
    void set_sample_offset(std::size_t offset) override;
    std::string type() const override { return "Sequential"; }

    // Keras' model.predict(x, batch_size=chunk): the outputs [count, ...] of `count` inputs,
    // which input(first, n) makes `chunk` at a time ([n, ...] for inputs first .. first+n-1),
    // with dropout off and no graph. The model's training flag is left as it was.
    //
    // The chunks are shared among the threads (set_num_threads), and each thread runs every layer
    // of its chunk alone, its kernels and OpenBLAS on one thread: no fork and join per layer, and
    // a chunk's activations stay in its core's caches. Each output depends on its chunk only, so
    // it has the same bits at any thread count. input and the layers' forward run concurrently
    // (they only read the model and the data); the first exception any of them throws is
    // rethrown here, the chunks after it left undone.
    Tensor predict(std::size_t count, std::size_t chunk,
                   const std::function<Tensor(std::size_t first, std::size_t n)>& input);

    void set_fuse(bool on) { fuse_ = on; }
    bool fuse() const { return fuse_; }

    std::size_t size() const { return layers_.size(); }
    Module& layer(std::size_t i) { return *layers_.at(i); }
    // Output shape (without N) and parameter count of layer i, as recorded by build().
    const Shape& output_shape(std::size_t i) const;
    std::size_t layer_params(std::size_t i) const;
    const Shape& input_shape() const { return input_shape_; }

    // Keras' model.summary() table: Layer (type), Output Shape, Param #, then the totals.
    // Output shapes are NCHW: (None, 64, 28, 28) where Keras would print (None, 28, 28, 64).
    std::string summary() const;
    std::size_t count_params() const;

  private:
    Module& append(std::unique_ptr<Module> layer);
    void check_built_for(const char* what) const;
    // Runs layers i, i+1, i+2 as one fused block if they form Conv2D(relu) -> MaxPool2D ->
    // Dropout; returns false (and leaves y alone) otherwise.
    bool forward_fused_block(std::size_t i, Var& y);

    std::vector<std::unique_ptr<Module>> layers_;
    std::vector<std::string> base_names_;  // each layer's name when added ("conv2d")
    std::vector<Shape> output_shapes_;
    std::vector<std::size_t> layer_params_;
    Shape input_shape_;
    bool fuse_ = true;
};

}  // namespace semigrad::nn
