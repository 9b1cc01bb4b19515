// How big buffers meet the kernel: two policies that cost nothing to state and measurably
// change step times. Both are best effort and no-ops off Linux/glibc.
//
// Huge pages for large scratch matrices. A [4096,4096] float matrix spans 16K ordinary 4 KiB
// pages; a pass that walks it in 64x64 tiles (a transpose, a mirror) touches 64 rows, 16 KiB
// apart, per tile, and spends its time in TLB misses. Linux backs an madvise(MADV_HUGEPAGE)
// range with 2 MiB pages when they are first touched (transparent huge pages in "madvise" mode,
// Debian's default).
//
// Keeping freed memory. A training step frees and re-allocates the same activation-sized blocks
// (MBs each) every step. glibc's defaults hand such blocks back to the kernel (blocks above its
// mmap threshold are unmapped on free, and a free heap top past its trim threshold is
// released), so every step page-faults and zero-fills them again. Raising both thresholds keeps
// them for reuse: the tutorial's training step went from 19-22 ms to 15 ms.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace semigrad {

// Asks for huge pages over the whole 2 MiB-aligned part of [p, p + bytes). Call it before the
// memory is first written. Best effort: nothing happens where the kernel does not support it.
void advise_huge_pages(void* p, std::size_t bytes);

// An uninitialised float buffer of at least n entries, 2 MiB-aligned and advised as above.
struct HugeBufferDeleter {
    void operator()(float* p) const;
};
using HugeBuffer = std::unique_ptr<float[], HugeBufferDeleter>;
HugeBuffer huge_buffer(std::size_t n);

// n floats, not initialised, for per-thread scratch that every use writes before it reads (and a
// kernel that reads past what it wrote, as the Winograd transforms' last vector of a row does,
// only into lanes it discards). std::vector<float>(n) zero-fills: the conv blocks' scratch and
// weight partials, zeroed afresh every step, were 4-6% of a training step's samples when the
// host's memory was slow (perf: memset under conv_block_forward, conv_block_backward and
// Conv2dPartials); on a quiet host the step time did not change measurably. The test suite
// passes with these buffers filled with NaN instead.
inline std::unique_ptr<float[]> scratch_floats(std::size_t n) {
    return std::unique_ptr<float[]>(new float[n]);
}

// An allocator whose resize leaves new elements uninitialised (std::allocator's value-initialises
// them: zeros), for a std::vector that its one writer fills whole: the fused conv blocks'
// records, 0.45 MB a step, which the forward's kernels write byte for byte. Zeroing them first
// was a serial 2% of an evaluation pass (perf: memset under conv_block_forward).
template <class T>
struct UninitialisedAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitialisedAllocator<U>;
    };
    UninitialisedAllocator() = default;
    template <class U>
    UninitialisedAllocator(const UninitialisedAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

// Makes glibc keep freed blocks of up to 32 MiB and up to 512 MiB of free heap for reuse (see
// above). For programs, once at start: the library itself never changes allocator settings.
// (The same for a program that is not ours: GLIBC_TUNABLES=glibc.malloc.mmap_threshold=
// 33554432:glibc.malloc.trim_threshold=536870912, as scripts/compare-torch gives PyTorch.)
void keep_freed_memory();

}  // namespace semigrad
