// The one dispatch point for instruction-set-specific kernels.
//
// The library is built for any x86-64 (never -march=native by default), so a kernel that wants
// wider vectors than SSE2 is a function of its own, compiled with GCC's target attribute
// (SEMIGRAD_AVX2 / SEMIGRAD_AVX512 below), in a file of its own beside its portable twin. Which
// one runs is decided here, once per process, as an `Isa` level:
//
//   portable  plain C++ (SSE2 at most, what every x86-64 has); the reference the others match
//   avx2      AVX2 + FMA (Intel Haswell and later, AMD Zen)
//   avx512    AVX-512 F, VL, BW and DQ (Intel Skylake-X and later, AMD Zen 4)
//
// active_isa() is the CPU's best level, or the one named by the environment variable
// SEMIGRAD_ISA=portable|avx2|avx512 (tests and CI use it to run a lower path on a bigger CPU).
// Asking for a level the CPU does not have is an error, not a silent fallback: a CI job that
// means to test the AVX-512 path must not pass on a machine that ran something else.
//
// Kernels take the level as an argument (callers pass active_isa()), so a test can run each
// path it wants side by side; there is no global switch. Every path computes the same bits as
// the portable one, which the tests check on a CPU that has them. The one exception stands in
// for an OpenBLAS call, whose bits depend on the CPU anyway: block_gemm.hpp, the AVX2 path's
// Winograd products (tested within rounding).
#pragma once

#include <string_view>

// This header is light on purpose (the losses' public headers include it): a kernel file
// includes <immintrin.h> itself.

#if defined(__x86_64__) && defined(__GNUC__)
#define SEMIGRAD_X86 1
#define SEMIGRAD_AVX2 __attribute__((target("avx2,fma")))
#define SEMIGRAD_AVX512 __attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")))
#else
#define SEMIGRAD_X86 0
#endif

// Around a file's (or a stretch's) target-attribute kernels: GCC 12's AVX/AVX-512 headers build
// _mm512_undefined_ps() and friends from a self-initialised variable, which -Wmaybe-uninitialized
// reports wherever such an intrinsic is inlined (GCC bug 105593, fixed in GCC 13). The warning is
// silenced between these two lines only.
#if defined(__GNUC__) && !defined(__clang__)
#define SEMIGRAD_KERNELS_BEGIN                                     \
    _Pragma("GCC diagnostic push")                                 \
    _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")    \
    _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define SEMIGRAD_KERNELS_END _Pragma("GCC diagnostic pop")
#else
#define SEMIGRAD_KERNELS_BEGIN
#define SEMIGRAD_KERNELS_END
#endif

namespace semigrad {

// Ordered: a CPU that runs one level runs every level below it.
enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

// "portable", "avx2", "avx512".
const char* isa_name(Isa isa);
// The inverse of isa_name; throws ValueError naming `what` (e.g. "SEMIGRAD_ISA") otherwise.
Isa parse_isa(std::string_view name, std::string_view what);
// The best level this CPU runs (portable off x86-64). Detected once.
Isa cpu_isa();
// The level a program asks for (`requested`: SEMIGRAD_ISA's value, null or empty for none) on a
// CPU whose best level is `cpu`: `cpu`, or the requested level when the CPU runs it. Throws
// ValueError naming SEMIGRAD_ISA for an unknown name or a level above `cpu`.
Isa choose_isa(const char* requested, Isa cpu);
// The level kernels use: choose_isa(SEMIGRAD_ISA, cpu_isa()). Throws ValueError for an unknown
// name or a level above cpu_isa(), naming the variable and both levels. Decided once; a program
// calls it early (the trainer prints it) so that a bad value stops it before any work.
Isa active_isa();
// Whether this CPU runs `isa` (tests skip a path the CPU lacks).
inline bool cpu_runs(Isa isa) { return isa <= cpu_isa(); }

}  // namespace semigrad
