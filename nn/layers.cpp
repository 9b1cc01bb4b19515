// The layers' build/forward/parameters; the math is in autograd/functions.hpp (see layers.hpp).
#include "nn/layers.hpp"

#include "autograd/functions.hpp"
#include "nn/init.hpp"
#include "tensor/error.hpp"

namespace semigrad::nn {

namespace {

Var activate(const Var& x, Activation a) { return a == Activation::ReLU ? relu(x) : x; }

void check_input_rank(const std::string& layer, const Shape& input_shape, std::size_t rank,
                      const char* expected) {
    if (input_shape.size() != rank)
        throw ShapeError(layer + ": build expects an input shape " + expected + " (without N), got " +
                         to_string(input_shape));
}

void check_positive(const std::string& layer, const char* what, int value) {
    if (value <= 0)
        throw ValueError(layer + ": " + what + " must be positive, got " + std::to_string(value));
}

Shape without_batch(const Shape& s) { return Shape(s.begin() + 1, s.end()); }
Shape with_batch(const Shape& s) {
    Shape out(s.size() + 1);
    out[0] = 1;
    for (std::size_t i = 0; i < s.size(); ++i) out[i + 1] = s[i];
    return out;
}

}  // namespace

// --- Conv2D ----------------------------------------------------------------------------------

Conv2D::Conv2D(Conv2DOptions o) : Module("conv2d"), options_(o) {
    check_positive("Conv2D", "filters", o.filters);
    check_positive("Conv2D", "kernel_size", o.kernel_size);
    check_positive("Conv2D", "strides", o.strides);
}

Conv2dSpec Conv2D::spec_for(const Shape& x) const {
    const int H = static_cast<int>(x[x.size() - 2]), W = static_cast<int>(x[x.size() - 1]);
    const int k = options_.kernel_size, s = options_.strides;
    return {s, s, tf_padding(options_.padding, H, W, k, k, s, s)};
}

Shape Conv2D::build(const Shape& input_shape, Rng& init_rng) {
    check_input_rank(name(), input_shape, 3, "[C,H,W]");
    const std::size_t C = input_shape[0], OC = static_cast<std::size_t>(options_.filters);
    const auto K = static_cast<std::size_t>(options_.kernel_size);
    Tensor kernel(Shape{OC, C, K, K});
    glorot_uniform(kernel, kernel_fans(kernel.shape()), init_rng);
    const Shape out = conv2d_output_shape(with_batch(input_shape), kernel.shape(), spec_for(input_shape));
    kernel_ = Var(std::move(kernel), true);
    bias_ = options_.use_bias ? Var(Tensor::zeros({OC}), true) : Var();
    built_ = true;
    return without_batch(out);
}

Var Conv2D::forward(const Var& x) {
    check_built();
    check_rank(name().c_str(), "input", x.value(), 4);
    const Conv2dSpec spec = spec_for(x.shape());
    Var y = options_.use_bias ? conv2d(x, kernel_, bias_, spec) : conv2d(x, kernel_, spec);
    return activate(y, options_.activation);
}

std::vector<Parameter> Conv2D::parameters() {
    if (!built_) return {};
    std::vector<Parameter> p{{name() + "/kernel", kernel_}};
    if (options_.use_bias) p.push_back({name() + "/bias", bias_});
    return p;
}

// --- MaxPool2D -------------------------------------------------------------------------------

MaxPool2D::MaxPool2D(MaxPool2DOptions o) : Module("max_pooling2d"), options_(o) {
    check_positive("MaxPool2D", "pool_size", o.pool_size);
    if (o.strides < 0) throw ValueError("MaxPool2D: strides must be >= 0 (0 = pool_size)");
}

Pool2dSpec MaxPool2D::spec_for(const Shape& x) const {
    const int H = static_cast<int>(x[x.size() - 2]), W = static_cast<int>(x[x.size() - 1]);
    const int k = options_.pool_size, s = options_.strides > 0 ? options_.strides : k;
    return {k, k, s, s, tf_padding(options_.padding, H, W, k, k, s, s)};
}

Shape MaxPool2D::build(const Shape& input_shape, Rng&) {
    check_input_rank(name(), input_shape, 3, "[C,H,W]");
    const Shape out = max_pool2d_output_shape(with_batch(input_shape), spec_for(input_shape));
    built_ = true;
    return without_batch(out);
}

Var MaxPool2D::forward(const Var& x) {
    check_built();
    check_rank(name().c_str(), "input", x.value(), 4);
    return max_pool2d(x, spec_for(x.shape()));
}

// --- Dropout ---------------------------------------------------------------------------------

Dropout::Dropout(DropoutOptions o) : Module("dropout"), options_(o) {
    if (!(o.rate >= 0.0f && o.rate < 1.0f))
        throw ValueError("Dropout: rate must lie in [0, 1), got " + std::to_string(o.rate));
}

Shape Dropout::build(const Shape& input_shape, Rng& init_rng) {
    // 64 bits of seed from the model's generator; the fixed stream keeps dropout draws apart from
    // any other generator seeded with the same number.
    const std::uint64_t hi = init_rng.next_u32();
    const std::uint64_t lo = init_rng.next_u32();
    rng_ = Rng((hi << 32) | lo, 0x64726f70 /* "drop" */);
    built_ = true;
    return input_shape;
}

Var Dropout::forward(const Var& x) {
    check_built();
    return dropout(x, options_.rate, training(), rng_, sample_offset_);
}

std::vector<NamedRng> Dropout::generators() { return {{name() + "/rng", &rng_}}; }

// --- Flatten, ReLU ---------------------------------------------------------------------------

Shape Flatten::build(const Shape& input_shape, Rng&) {
    if (input_shape.empty()) throw ShapeError(name() + ": build expects a non-empty input shape");
    built_ = true;
    return Shape{shape_size(input_shape)};
}

Var Flatten::forward(const Var& x) {
    check_built();
    return flatten(x);
}

Shape ReLU::build(const Shape& input_shape, Rng&) {
    built_ = true;
    return input_shape;
}

Var ReLU::forward(const Var& x) {
    check_built();
    return relu(x);
}

// --- Dense -----------------------------------------------------------------------------------

Dense::Dense(DenseOptions o) : Module("dense"), options_(o) {
    check_positive("Dense", "units", o.units);
}

Shape Dense::build(const Shape& input_shape, Rng& init_rng) {
    check_input_rank(name(), input_shape, 1, "[D] (add a Flatten before it)");
    const std::size_t D = input_shape[0], units = static_cast<std::size_t>(options_.units);
    Tensor kernel(Shape{D, units});
    glorot_uniform(kernel, kernel_fans(kernel.shape()), init_rng);
    kernel_ = Var(std::move(kernel), true);
    bias_ = options_.use_bias ? Var(Tensor::zeros({units}), true) : Var();
    built_ = true;
    return Shape{units};
}

Var Dense::forward(const Var& x) {
    check_built();
    Var y = options_.use_bias ? dense(x, kernel_, bias_) : dense(x, kernel_);
    return activate(y, options_.activation);
}

std::vector<Parameter> Dense::parameters() {
    if (!built_) return {};
    std::vector<Parameter> p{{name() + "/kernel", kernel_}};
    if (options_.use_bias) p.push_back({name() + "/bias", bias_});
    return p;
}

// --- L2Normalize -----------------------------------------------------------------------------

L2Normalize::L2Normalize(L2NormalizeOptions o) : Module("l2_normalize"), options_(o) {
    if (!(o.epsilon > 0.0f)) throw ValueError("L2Normalize: epsilon must be positive");
}

Shape L2Normalize::build(const Shape& input_shape, Rng&) {
    check_input_rank(name(), input_shape, 1, "[D]");
    built_ = true;
    return input_shape;
}

Var L2Normalize::forward(const Var& x) {
    check_built();
    return l2_normalize(x, options_.epsilon);
}

}  // namespace semigrad::nn
