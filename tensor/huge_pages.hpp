// Large scratch matrices on 2 MiB pages. A [4096,4096] float matrix spans 16K ordinary 4 KiB
// pages; a pass that walks it in 64x64 tiles (a transpose, a mirror) touches 64 rows, 16 KiB
// apart, per tile, and spends its time in TLB misses. Linux backs an madvise(MADV_HUGEPAGE)
// range with 2 MiB pages when they are first touched (transparent huge pages in "madvise" mode,
// Debian's default); elsewhere this is a no-op.
#pragma once

#include <cstddef>
#include <memory>

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

}  // namespace semigrad
