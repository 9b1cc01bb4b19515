#include "tensor/simd.hpp"

#include <cstdlib>
#include <string>

#include "tensor/error.hpp"

namespace semigrad {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::portable: return "portable";
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
    }
    return "?";
}

Isa parse_isa(std::string_view name, std::string_view what) {
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512})
        if (name == isa_name(isa)) return isa;
    throw ValueError(std::string(what) + ": unknown instruction set '" + std::string(name) +
                     "' (expected portable, avx2 or avx512)");
}

Isa cpu_isa() {
#if SEMIGRAD_X86
    // The same subsets the target attributes in simd.hpp enable: a kernel compiled for a level
    // may use any instruction of it.
    static const Isa best = [] {
        __builtin_cpu_init();
        const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
        return avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::portable;
    }();
    return best;
#else
    return Isa::portable;
#endif
}

Isa choose_isa(const char* requested, Isa cpu) {
    if (!requested || !*requested) return cpu;
    const Isa isa = parse_isa(requested, "SEMIGRAD_ISA");
    if (isa > cpu)
        throw ValueError(std::string("SEMIGRAD_ISA=") + requested + ": this CPU runs at most " + isa_name(cpu));
    return isa;
}

Isa active_isa() {
    // A throwing initialiser leaves the static unset, so every call reports the same error.
    static const Isa active = choose_isa(std::getenv("SEMIGRAD_ISA"), cpu_isa());
    return active;
}

}  // namespace semigrad
