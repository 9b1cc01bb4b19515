// Module helpers shared by every layer (see module.hpp).
#include "nn/module.hpp"

#include "tensor/error.hpp"

namespace semigrad::nn {

void Module::check_built() const {
    if (!built_) throw Error(name() + ": forward before build()");
}

std::size_t count_params(Module& module) {
    std::size_t n = 0;
    for (const Parameter& p : module.parameters()) n += p.var.value().size();
    return n;
}

}  // namespace semigrad::nn
