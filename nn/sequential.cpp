// Sequential: building in order, Keras naming, and the summary table (see sequential.hpp).
#include "nn/sequential.hpp"

#include <algorithm>
#include <exception>
#include <map>
#include <sstream>

#include "autograd/functions.hpp"
#include "nn/layers.hpp"
#include "tensor/dropout.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/profile.hpp"

namespace semigrad::nn {

namespace {

// 410208 -> "410,208"
std::string with_commas(std::size_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// (None, 64, 28, 28)
std::string keras_shape(const Shape& s) {
    std::string out = "(None";
    for (std::size_t d : s) out += ", " + std::to_string(d);
    return out + ")";
}

std::string pad_right(const std::string& s, std::size_t width) {
    return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

}  // namespace

Module& Sequential::append(std::unique_ptr<Module> layer) {
    if (!layer) throw ValueError("Sequential::add: null layer");
    base_names_.push_back(layer->name());
    layers_.push_back(std::move(layer));
    built_ = false;
    return *layers_.back();
}

Shape Sequential::build(const Shape& input_shape, Rng& init_rng) {
    if (layers_.empty()) throw ValueError("Sequential::build: the model has no layers");
    // Keras' unique names: the first layer of a kind keeps its base name, later ones get _1, _2.
    std::map<std::string, int> seen;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const int k = seen[base_names_[i]]++;
        layers_[i]->set_name(k == 0 ? base_names_[i] : base_names_[i] + "_" + std::to_string(k));
    }

    input_shape_ = input_shape;
    output_shapes_.clear();
    layer_params_.clear();
    Shape shape = input_shape;
    for (auto& layer : layers_) {
        shape = layer->build(shape, init_rng);
        output_shapes_.push_back(shape);
        layer_params_.push_back(nn::count_params(*layer));
    }
    built_ = true;
    return shape;
}

Var Sequential::forward(const Var& x) {
    check_built();
    profile::Scope scope("forward");
    Var y = x;
    for (std::size_t i = 0; i < layers_.size();) {
        if (fuse_ && forward_fused_block(i, y)) {
            i += 3;
            continue;
        }
        profile::Scope layer_scope(layers_[i]->name());
        y = layers_[i++]->forward(y);
    }
    return y;
}

bool Sequential::forward_fused_block(std::size_t i, Var& y) {
    if (i + 2 >= layers_.size()) return false;
    auto* conv = dynamic_cast<Conv2D*>(layers_[i].get());
    auto* pool = dynamic_cast<MaxPool2D*>(layers_[i + 1].get());
    auto* drop = dynamic_cast<Dropout*>(layers_[i + 2].get());
    if (!conv || !pool || !drop || conv->options().activation != Activation::ReLU) return false;
    const Shape& x = y.shape();
    if (x.size() != 4) return false;  // the layers' own forward reports the wrong rank
    ConvBlockSpec spec;
    spec.conv = conv->spec_for(x);
    const Shape conv_out = conv2d_output_shape(x, conv->kernel().shape(), spec.conv);
    spec.pool = pool->spec_for(conv_out);
    if (spec.pool.pool_h * spec.pool.pool_w > kConvBlockMaxWindow) return false;
    // The key is drawn exactly when the Dropout layer would draw it, so fused and unfused runs
    // consume the same generator stream and draw the same masks.
    if (drop->training() && drop->rate() > 0.0f) {
        spec.rate = drop->rate();
        spec.dropout_key = draw_dropout_key(drop->rng());
    }
    spec.sample_offset = drop->sample_offset();
    // The fused node reports as its three layers, "conv2d+max_pooling2d+dropout".
    profile::Scope scope(profile::enabled()
                             ? conv->name() + "+" + pool->name() + "+" + drop->name()
                             : std::string());
    y = conv2d_relu_pool_dropout(y, conv->kernel(), conv->options().use_bias ? conv->bias() : Var(),
                                 spec);
    return true;
}

Tensor Sequential::predict(std::size_t count, std::size_t chunk,
                           const std::function<Tensor(std::size_t, std::size_t)>& input) {
    check_built_for("predict()");
    if (chunk == 0) throw ValueError(name() + ": predict() needs a chunk of at least 1 input");
    const Shape& one = output_shapes_.back();
    const std::size_t row = shape_size(one);
    Shape all = one;
    all.insert(all.begin(), count);
    Tensor out = Tensor::uninitialised(all);
    const bool was_training = training();
    train(false);
    const long chunks = long((count + chunk - 1) / chunk);
    bool failed = false;
    std::exception_ptr failure;
    // Dynamic: a chunk's bits do not depend on the thread that runs it, and on a shared machine
    // a stalled thread then holds up one chunk, not half of them.
#pragma omp parallel
    {
        nested_on_one_thread();
        NoGradGuard no_grad;  // the flag is per thread
#pragma omp for schedule(dynamic)
        for (long c = 0; c < chunks; ++c) {
            bool stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            try {
                const std::size_t first = std::size_t(c) * chunk;
                const std::size_t n = std::min(chunk, count - first);
                const Var y = forward(Var(input(first, n)));
                Shape expected = one;
                expected.insert(expected.begin(), n);
                if (y.shape() != expected)
                    throw ShapeError(name() + ": predict() expected outputs " +
                                     to_string(expected) + " for inputs " +
                                     std::to_string(first) + ".., got " +
                                     to_string(y.shape()));
                std::copy_n(y.value().data(), n * row, out.data() + first * row);
            } catch (...) {
#pragma omp critical(semigrad_predict_failure)
                if (!failure) failure = std::current_exception();
#pragma omp atomic write
                failed = true;
            }
        }
    }
    train(was_training);
    if (failure) std::rethrow_exception(failure);
    return out;
}

std::vector<Parameter> Sequential::parameters() {
    std::vector<Parameter> all;
    for (auto& layer : layers_)
        for (Parameter& p : layer->parameters()) all.push_back(std::move(p));
    return all;
}

std::vector<NamedRng> Sequential::generators() {
    std::vector<NamedRng> all;
    for (auto& layer : layers_)
        for (NamedRng& g : layer->generators()) all.push_back(std::move(g));
    return all;
}

void Sequential::train(bool on) {
    Module::train(on);
    for (auto& layer : layers_) layer->train(on);
}

void Sequential::set_sample_offset(std::size_t offset) {
    for (auto& layer : layers_) layer->set_sample_offset(offset);
}

void Sequential::check_built_for(const char* what) const {
    if (!built_) throw Error(name() + ": " + what + " before build()");
}

const Shape& Sequential::output_shape(std::size_t i) const {
    check_built_for("output_shape");
    return output_shapes_.at(i);
}

std::size_t Sequential::layer_params(std::size_t i) const {
    check_built_for("layer_params");
    return layer_params_.at(i);
}

std::size_t Sequential::count_params() const {
    check_built_for("count_params");
    std::size_t n = 0;
    for (std::size_t p : layer_params_) n += p;
    return n;
}

std::string Sequential::summary() const {
    check_built_for("summary");
    std::vector<std::string> first{"Layer (type)"}, second{"Output Shape"}, third{"Param #"};
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        first.push_back(layers_[i]->name() + " (" + layers_[i]->type() + ")");
        second.push_back(keras_shape(output_shapes_[i]));
        third.push_back(with_commas(layer_params_[i]));
    }
    std::size_t w1 = 29, w2 = 26, w3 = 10;
    for (std::size_t i = 0; i < first.size(); ++i) {
        w1 = std::max(w1, first[i].size() + 3);
        w2 = std::max(w2, second[i].size() + 3);
        w3 = std::max(w3, third[i].size() + 1);
    }
    const std::size_t width = 1 + w1 + w2 + w3;
    std::ostringstream out;
    out << "Model: \"" << name() << "\"\n" << std::string(width, '_') << '\n';
    for (std::size_t i = 0; i < first.size(); ++i) {
        out << ' ' << pad_right(first[i], w1) << pad_right(second[i], w2) << third[i] << '\n';
        if (i == 0) out << std::string(width, '=') << '\n';
    }
    const std::string total = with_commas(count_params());
    out << std::string(width, '=') << '\n'
        << "Total params: " << total << '\n'
        << "Trainable params: " << total << '\n'
        << "Non-trainable params: 0\n"
        << std::string(width, '_') << '\n';
    return out.str();
}

}  // namespace semigrad::nn
