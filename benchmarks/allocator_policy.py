"""Gives a PyTorch process the allocator policy semigrad's programs set for themselves
(tensor/memory.hpp, keep_freed_memory): glibc keeps freed blocks of up to 32 MiB and up to
512 MiB of free heap for reuse, instead of handing them back to the kernel, which then
page-faults and zero-fills them again on every step. Both peers of a comparison run under the
same policy; PyTorch measured a little faster with it too (scripts/compare-torch,
benchmarks/triplet_torch.py), so it is part of giving PyTorch its best configuration."""
import os
import sys

TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912"


def apply():
    """Re-executes this interpreter with GLIBC_TUNABLES set: glibc reads it only at start-up."""
    if os.environ.get("GLIBC_TUNABLES") != TUNABLES:
        os.environ["GLIBC_TUNABLES"] = TUNABLES
        os.execv(sys.executable, [sys.executable] + sys.argv)
