// The tutorial's model, layer for layer as the notebook's tf.keras.Sequential:
//   Conv2D(64, 2, padding='same', activation='relu', input_shape=(28,28,1))
//   MaxPooling2D(pool_size=2), Dropout(0.3)
//   Conv2D(32, 2, padding='same', activation='relu')
//   MaxPooling2D(pool_size=2), Dropout(0.3)
//   Flatten(), Dense(256, activation=None), Lambda(tf.math.l2_normalize(x, axis=1))
// Shared by the trainer and the training-step benchmark so both measure the same network.
#pragma once

#include "nn/layers.hpp"
#include "nn/sequential.hpp"

namespace semigrad::examples {

inline void add_tutorial_layers(nn::Sequential& model) {
    using nn::Activation;
    model.add(nn::Conv2D({.filters = 64, .kernel_size = 2, .padding = Padding::Same,
                          .activation = Activation::ReLU}));
    model.add(nn::MaxPool2D({.pool_size = 2}));
    model.add(nn::Dropout({.rate = 0.3f}));
    model.add(nn::Conv2D({.filters = 32, .kernel_size = 2, .padding = Padding::Same,
                          .activation = Activation::ReLU}));
    model.add(nn::MaxPool2D({.pool_size = 2}));
    model.add(nn::Dropout({.rate = 0.3f}));
    model.add(nn::Flatten());
    model.add(nn::Dense({.units = 256, .activation = Activation::None}));  // no activation
    model.add(nn::L2Normalize());                                          // unit-length embeddings
}

}  // namespace semigrad::examples
