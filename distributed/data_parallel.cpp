// Data-parallel training: the gather of a batch's rows with its backward, the flat gradient
// all-reduce and the start-up broadcast (data_parallel.hpp).
#include "distributed/data_parallel.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "tensor/error.hpp"

namespace semigrad::distributed {

Var all_gather_rows(const Var& x, const Communicator& comm,
                    std::span<const std::size_t> rows_per_rank) {
    const Shape& shape = x.shape();
    const auto rank = std::size_t(comm.rank());
    if (shape.empty() || rows_per_rank.size() != std::size_t(comm.size()) ||
        shape[0] != rows_per_rank[rank])
        throw ShapeError("all_gather_rows: x " + to_string(shape) + " on rank " +
                         std::to_string(rank) + " does not hold its " +
                         (rank < rows_per_rank.size() ? std::to_string(rows_per_rank[rank]) : "?") +
                         " rows");
    const std::size_t row = shape_size(shape) / std::max<std::size_t>(shape[0], 1);  // floats per row
    std::vector<std::size_t> counts;
    std::size_t total_rows = 0, first_row = 0;
    for (std::size_t r = 0; r < rows_per_rank.size(); ++r) {
        if (r == rank) first_row = total_rows;
        counts.push_back(rows_per_rank[r] * row);
        total_rows += rows_per_rank[r];
    }
    Shape out_shape = shape;
    out_shape[0] = total_rows;
    Tensor out = Tensor::uninitialised(out_shape);
    comm.allgather(std::span<const float>(x.value().data(), x.value().size()),
                   std::span<float>(out.data(), out.size()), std::span(counts));
    // Backward: this rank's rows of the gradient; no communication (see the header).
    return record(std::move(out), {x}, "all_gather_rows",
                  [x, begin = first_row * row](const Tensor& dout) {
                      Tensor dx = Tensor::uninitialised(x.shape());
                      std::copy_n(dout.data() + begin, dx.size(), dx.data());
                      x.node()->accumulate_grad(dx);
                  });
}

GradientAllReduce::GradientAllReduce(std::vector<nn::Parameter> params)
    : params_(std::move(params)) {
    std::size_t n = 0;
    for (const nn::Parameter& p : params_) n += p.var.value().size();
    flat_.resize(n);
}

void GradientAllReduce::sum(const Communicator& comm, float scale) {
    if (comm.size() == 1 && scale == 1.0f) return;  // the sum over one rank is the gradient
    float* at = flat_.data();
    for (const nn::Parameter& p : params_) {
        const std::size_t n = p.var.value().size();
        if (p.var.has_grad())
            std::copy_n(p.var.grad().data(), n, at);
        else
            std::fill_n(at, n, 0.0f);
        at += n;
    }
    comm.allreduce_sum(flat_);
    at = flat_.data();
    for (nn::Parameter& p : params_) {
        float* g = p.var.grad_buffer().data();
        const std::size_t n = p.var.value().size();
        for (std::size_t i = 0; i < n; ++i) g[i] = at[i] * scale;
        at += n;
    }
}

void broadcast_state(const Communicator& comm, nn::Optimizer& optimizer) {
    if (comm.size() == 1) return;
    // Parameters and slots in one flat buffer; the step count in a second, tiny broadcast.
    std::vector<nn::Parameter> params = optimizer.parameters();  // handles to the model's tensors
    const std::size_t slots = optimizer.slot_names().size();
    std::size_t n = 0;
    for (const nn::Parameter& p : params) n += p.var.value().size() * (1 + slots);
    std::vector<float> flat(n);
    auto each_tensor = [&](auto&& visit) {
        for (std::size_t i = 0; i < params.size(); ++i) {
            visit(params[i].var.value());
            for (std::size_t k = 0; k < slots; ++k) visit(optimizer.slot(k, i));
        }
    };
    float* at = flat.data();
    each_tensor([&](Tensor& t) { at = std::copy_n(t.data(), t.size(), at); });
    comm.broadcast(std::span<float>(flat));
    at = flat.data();
    each_tensor([&](Tensor& t) {
        std::copy_n(at, t.size(), t.data());
        at += t.size();
    });
    std::int64_t iterations = optimizer.iterations();
    comm.broadcast(std::span<std::int64_t>(&iterations, 1));
    optimizer.set_iterations(iterations);
}

}  // namespace semigrad::distributed
