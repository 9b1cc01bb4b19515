// Linear maps as differentiable functions: matmul, Keras' Dense (x · kernel + bias) and bias_add.
// Every product is one `gemm` call with transpose flags (tensor/gemm.hpp; for Dense's, the
// model's largest, `gemm_split`), never an explicit transpose; gradients go straight into the
// inputs' buffers, with beta = 0 for the first share (written) and beta = 1 for later ones
// (added): autograd/var.hpp's protocol.
//
// Dimension letters: M, K, N for matmul ([M,K] @ [K,N]); N batch, D in features, U units for
// dense; N, C (+ H, W) for bias_add.
#include <algorithm>
#include <string>
#include <vector>

#include "autograd/functions.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/gemm.hpp"
#include "tensor/sparse_gemm.hpp"

namespace semigrad {


// GEMM's beta under the gradient protocol: 0 writes the first share (C is not read, so its
// uninitialised contents do not matter), 1 adds a later one.
static float beta(bool first) { return first ? 0.0f : 1.0f; }

static std::string shapes(const Var& a, const Var& b) {
    return to_string(a.shape()) + " and " + to_string(b.shape());
}

// C = A B  =>  dA = dC Bᵀ,  dB = Aᵀ dC.
Var matmul(const Var& a, const Var& b) {
    if (a.value().ndim() != 2 || b.value().ndim() != 2 || a.shape()[1] != b.shape()[0])
        throw ShapeError("matmul: expected [M,K] @ [K,N], got " + shapes(a, b));
    const int M = int(a.shape()[0]), K = int(a.shape()[1]), N = int(b.shape()[1]);
    Tensor out({a.shape()[0], b.shape()[1]});
    gemm(false, false, M, N, K, 1.0f, a.value().data(), K, b.value().data(), N, 0.0f, out.data(), N);
    return record(std::move(out), {a, b}, "matmul", [a, b, M, K, N](const Tensor& dout) {
        bool first;
        if (a.requires_grad()) {
            float* da = a.node()->grad_write_or_add(first).data();
            gemm(false, true, M, K, N, 1.0f, dout.data(), N, b.value().data(), N, beta(first),
                 da, K);
        }
        if (b.requires_grad()) {
            float* db = b.node()->grad_write_or_add(first).data();
            gemm(true, false, K, N, M, 1.0f, a.value().data(), K, dout.data(), N, beta(first),
                 db, N);
        }
    });
}

// out [N,U] = x [N,D] · kernel [D,U] (+ bias [U] on every row). One node rather than matmul
// followed by bias_add: one output buffer, and the bias goes in as GEMM's C with beta = 1.
static Var dense_impl(const Var& x, const Var& kernel, const Var& bias, bool has_bias) {
    if (x.value().ndim() != 2 || kernel.value().ndim() != 2 || x.shape()[1] != kernel.shape()[0])
        throw ShapeError("dense: input and kernel must be [N,in] and [in,units], got " +
                         shapes(x, kernel));
    const int N = int(x.shape()[0]), D = int(x.shape()[1]), U = int(kernel.shape()[1]);
    if (has_bias && (bias.value().ndim() != 1 || int(bias.shape()[0]) != U))
        throw ShapeError("dense: bias must be [units] = [" + std::to_string(U) + "], kernel " +
                         to_string(kernel.shape()) + " and bias " + to_string(bias.shape()));
    Tensor out({std::size_t(N), std::size_t(U)});
    float* po = out.data();
    if (has_bias) {
        const float* pb = bias.value().data();
        for (int n = 0; n < N; ++n)
            for (int u = 0; u < U; ++u) po[n * U + u] = pb[u];
    }
    // An input mostly zeros (ReLU'd and dropped, as the tutorial's second block's output is)
    // goes through the products that read only its non-zero entries (tensor/sparse_gemm.hpp), the
    // forward and the weight gradient each when it is sparse enough to gain.
    const Isa isa = active_isa();
    const sparse_gemm::Choice sparse = sparse_gemm::choose(isa, N, D, x.value().data(), D);
    if (sparse.nn)
        sparse_gemm::nn_split(isa, N, U, D, x.value().data(), D, kernel.value().data(), U, has_bias,
                              po, U);
    else
        gemm_split(false, false, N, U, D, 1.0f, x.value().data(), D, kernel.value().data(), U,
                   has_bias ? 1.0f : 0.0f, po, U);

    std::vector<Var> inputs = {x, kernel};
    if (has_bias) inputs.push_back(bias);
    // Without a bias, `bias` is an empty leaf that never requires a gradient.
    return record(std::move(out), inputs, "dense",
                  [x, kernel, bias, N, D, U, isa, sparse](const Tensor& dout) {
        bool first;
        if (x.requires_grad()) {  // dx = dout · kernelᵀ
            float* dx = x.node()->grad_write_or_add(first).data();
            gemm_split(false, true, N, D, U, 1.0f, dout.data(), U, kernel.value().data(), U,
                       beta(first), dx, D);
        }
        if (kernel.requires_grad()) {  // dkernel = xᵀ · dout
            Tensor& grad = kernel.node()->grad_write_or_add(first);
            if (sparse.tn && first) {
                sparse_gemm::tn_split(isa, N, U, D, x.value().data(), D, dout.data(), U, grad.data(), U);
            } else if (sparse.tn) {  // a later share: made apart, then added (rare: weight sharing)
                Tensor share = Tensor::uninitialised(grad.shape());
                sparse_gemm::tn_split(isa, N, U, D, x.value().data(), D, dout.data(), U, share.data(), U);
                for (std::size_t i = 0; i < grad.size(); ++i) grad[i] += share[i];
            } else {
                gemm_split(true, false, D, U, N, 1.0f, x.value().data(), D, dout.data(), U,
                           beta(first), grad.data(), U);
            }
        }
        if (bias.requires_grad()) {  // dbias = Σ_n dout[n, :], rows added in order
            float* db = bias.node()->grad_write_or_add(first).data();
            const float* g = dout.data();
            if (first) std::fill_n(db, U, 0.0f);  // [U]: a zero start costs nothing here
            for (int n = 0; n < N; ++n)
                for (int u = 0; u < U; ++u) db[u] += g[n * U + u];
        }
    });
}

Var dense(const Var& x, const Var& kernel, const Var& bias) {
    return dense_impl(x, kernel, bias, true);
}
Var dense(const Var& x, const Var& kernel) { return dense_impl(x, kernel, Var(), false); }

// out[n, c, s] = x[n, c, s] + bias[c], where s runs over H·W (1 for rank 2). The backward sums
// dout over every axis but C.
Var bias_add(const Var& x, const Var& bias) {
    const std::size_t rank = x.value().ndim();
    if ((rank != 2 && rank != 4) || bias.value().ndim() != 1 || bias.shape()[0] != x.shape()[1])
        throw ShapeError("bias_add: expected x [N,C] or [N,C,H,W] and bias [C], got " +
                         shapes(x, bias));
    const std::size_t N = x.shape()[0], C = x.shape()[1], S = rank == 4 ? x.shape()[2] * x.shape()[3] : 1;
    const std::size_t NC = N * C;
    Tensor out(x.shape());
    const float *px = x.value().data(), *pb = bias.value().data();
    float* po = out.data();
#pragma omp parallel for schedule(static) if (NC * S > kParallelMinElements)
    for (std::size_t nc = 0; nc < NC; ++nc) {
        const float b = pb[nc % C];
        for (std::size_t s = 0; s < S; ++s) po[nc * S + s] = px[nc * S + s] + b;
    }
    return record(std::move(out), {x, bias}, "bias_add", [x, bias, N, C, S](const Tensor& dout) {
        const float* g = dout.data();
        const std::size_t total = N * C * S;
        if (x.requires_grad()) write_or_add_grad(x, [g](std::size_t i) { return g[i]; });
        if (bias.requires_grad()) {
            // Parallel over channels: each thread owns dbias[c], so no atomics are needed.
            bool first;
            float* dbias = bias.node()->grad_write_or_add(first).data();
#pragma omp parallel for schedule(static) if (total > kParallelMinElements)
            for (std::size_t c = 0; c < C; ++c) {
                double s = 0.0;
                for (std::size_t n = 0; n < N; ++n)
                    for (std::size_t k = 0; k < S; ++k) s += g[(n * C + c) * S + k];
                dbias[c] = first ? static_cast<float>(s) : dbias[c] + static_cast<float>(s);
            }
        }
    });
}

}  // namespace semigrad
