// AVX-512 kernels beside portable ones, chosen at run time. The library is built for any x86-64
// (no -march=native by default), so a kernel that wants AVX-512 is a function of its own,
// compiled with GCC's target attribute (SEMIGRAD_AVX512), and called only when
// cpu_has_avx512() says the CPU has AVX-512 F. Each such kernel computes exactly what its
// portable twin does, lane for lane.
#pragma once

#include <cstddef>

#if defined(__x86_64__) && defined(__GNUC__)
#define SEMIGRAD_X86 1
#define SEMIGRAD_AVX512 __attribute__((target("avx512f")))
#include <immintrin.h>
#if !defined(__clang__) && __GNUC__ < 13
// GCC 12's AVX-512 headers build _mm512_undefined_ps() from a self-initialised variable, which
// -Wmaybe-uninitialized reports wherever it is inlined (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define SEMIGRAD_X86 0
#endif

namespace semigrad {

// Whether this CPU runs AVX-512 F instructions (false off x86-64).
inline bool cpu_has_avx512() {
#if SEMIGRAD_X86
    static const bool has = __builtin_cpu_supports("avx512f");
    return has;
#else
    return false;
#endif
}

#if SEMIGRAD_X86
// The first `count` of 16 lanes (all of them when count >= 16), for loop tails.
SEMIGRAD_AVX512 inline __mmask16 first_lanes(std::size_t count) {
    return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1u);
}
#endif

}  // namespace semigrad
