#include "tensor/memory.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace semigrad {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;
}

void advise_huge_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
    const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(p) + bytes) / kHugePage * kHugePage;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // a hint: failure is fine
#else
    (void)p, (void)bytes;
#endif
}

void HugeBufferDeleter::operator()(float* p) const { std::free(p); }

HugeBuffer huge_buffer(std::size_t n) {
    const std::size_t bytes = (std::max<std::size_t>(n, 1) * sizeof(float) + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, bytes);
    if (!p) throw std::bad_alloc();
    advise_huge_pages(p, bytes);
    return HugeBuffer(static_cast<float*>(p));
}

void keep_freed_memory() {
#ifdef __GLIBC__
    // 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems; setting it also
    // turns off glibc's own adjustment of both thresholds.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

}  // namespace semigrad
