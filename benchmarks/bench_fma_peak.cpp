// This core's peak of float32 multiply-adds: the ceiling every FLOP/s figure of the other
// benchmarks is read against (the README's "at the arithmetic's limit" and the floors it
// derives). Twelve independent chains of fused multiply-adds, enough to cover the FMA latency
// on both of a core's FMA pipes, on 8 lanes (AVX2) and on 16 (AVX-512), one thread. Counter:
// FLOP/s, 2 per lane per FMA. A path this CPU lacks is skipped.
//
// On this project's Zen 4 both give about 117 GFLOP/s: Zen 4 runs a 512-bit FMA as two 256-bit
// halves, so AVX-512 buys no more multiply-adds per cycle there, only fewer instructions.
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include "tensor/simd.hpp"

using namespace semigrad;

namespace {

constexpr int kChains = 12;
constexpr long kSteps = 1 << 16;  // FMAs per chain per iteration

#if SEMIGRAD_X86
SEMIGRAD_KERNELS_BEGIN
SEMIGRAD_AVX2 float chains_avx2(float start) {
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(start + float(c));
    // x -> 0.5 x + 0.25 has its fixed point at 0.5: the values stay finite and normal.
    const __m256 half = _mm256_set1_ps(0.5f), quarter = _mm256_set1_ps(0.25f);
    for (long s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], half, quarter);
    }
    __m256 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
    return _mm_cvtss_f32(_mm256_castps256_ps128(sum));
}

SEMIGRAD_AVX512 float chains_avx512(float start) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(start + float(c));
    const __m512 half = _mm512_set1_ps(0.5f), quarter = _mm512_set1_ps(0.25f);
    for (long s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], half, quarter);
    }
    __m512 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}
SEMIGRAD_KERNELS_END

void BM_FmaPeak(benchmark::State& state, Isa isa) {
    if (!cpu_runs(isa)) {
        state.SkipWithError("this CPU lacks the instruction set");
        return;
    }
    const int lanes = isa == Isa::avx512 ? 16 : 8;
    float start = 1.0f;
    for (auto _ : state) {
        const float r = isa == Isa::avx512 ? chains_avx512(start) : chains_avx2(start);
        benchmark::DoNotOptimize(r);
        start += 1.0f;
    }
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * lanes * kChains * kSteps,
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_FmaPeak, avx2, Isa::avx2);
BENCHMARK_CAPTURE(BM_FmaPeak, avx512, Isa::avx512);
#endif

}  // namespace

BENCHMARK_MAIN();
