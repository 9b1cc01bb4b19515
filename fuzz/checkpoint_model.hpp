// The model and optimiser the checkpoint fuzz target loads into, and the seed maker saves from:
// the tutorial's layer kinds in miniature (Conv2D, Flatten, Dropout with its generator, Dense,
// L2Normalize) with Adam, so a checkpoint of it holds every section of the format (parameters,
// optimiser slots, a generator, metadata) in a few hundred bytes.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/checkpoint.hpp"
#include "nn/layers.hpp"
#include "nn/optimizer.hpp"
#include "nn/sequential.hpp"

namespace semigrad::fuzz {

struct CheckpointModel {
    std::unique_ptr<nn::Sequential> model;
    std::unique_ptr<nn::Adam> opt;
};

inline CheckpointModel make_checkpoint_model(std::uint64_t seed = 7) {
    using namespace nn;
    CheckpointModel m{std::make_unique<Sequential>(), nullptr};
    m.model->add(Conv2D({.filters = 2, .kernel_size = 2, .padding = Padding::Same,
                         .activation = Activation::ReLU}));
    m.model->add(Flatten());
    m.model->add(Dropout({.rate = 0.25f}));
    m.model->add(Dense({.units = 3}));
    m.model->add(L2Normalize());
    Rng init(seed);
    m.model->build({1, 3, 3}, init);
    m.opt = std::make_unique<Adam>(m.model->parameters());
    return m;
}

// Every bit of state a checkpoint restores, for "unchanged" and "equal" comparisons.
inline std::vector<std::uint64_t> snapshot(CheckpointModel& m) {
    std::vector<std::uint64_t> s;
    const auto add = [&](const Tensor& t) {
        for (std::size_t i = 0; i < t.size(); ++i) s.push_back(std::bit_cast<std::uint32_t>(t[i]));
    };
    for (nn::Parameter& p : m.model->parameters()) add(p.var.value());
    for (std::size_t k = 0; k < m.opt->slot_names().size(); ++k)
        for (std::size_t i = 0; i < m.opt->parameters().size(); ++i) add(m.opt->slot(k, i));
    for (nn::NamedRng& g : m.model->generators()) {
        s.push_back(g.rng->state().state);
        s.push_back(g.rng->state().inc);
    }
    s.push_back(static_cast<std::uint64_t>(m.opt->iterations()));
    return s;
}

}  // namespace semigrad::fuzz
