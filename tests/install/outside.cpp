// A program outside the source tree, built only from the installed headers, library and
// semigrad.pc: fits y = 2x + 1 by gradient descent on one Var, then checks the answer.
#include <semigrad.hpp>

#include <cmath>
#include <cstdio>

int main() {
    using namespace semigrad;
    Var w(Tensor({1, 1}, {0.0f}), true), b(Tensor({1}, {0.0f}), true);
    const Var x(Tensor({4, 1}, {0, 1, 2, 3})), y(Tensor({4, 1}, {1, 3, 5, 7}));
    for (int step = 0; step < 500; ++step) {
        const Var err = sub(dense(x, w, b), y);
        const Var loss = mean(mul(err, err));
        w.zero_grad();
        b.zero_grad();
        backward(loss);
        w.value()[0] -= 0.1f * w.grad()[0];
        b.value()[0] -= 0.1f * b.grad()[0];
    }
    std::printf("w = %.4f, b = %.4f\n", w.value()[0], b.value()[0]);
    return std::fabs(w.value()[0] - 2.0f) < 1e-3f && std::fabs(b.value()[0] - 1.0f) < 1e-3f ? 0 : 1;
}
