"""Transparent huge pages for the trainer's large tensors (PyTorch's THP_MEM_ALLOC_ENABLE).

glibc serves every allocation above its mmap threshold (32 MB at most) with a fresh mapping and unmaps it on free.
A fine-tuning step's score matrix over all items (queries x items: ~64 MB a batch on NYC) and its gradients then
fault their pages in anew at every step, 4 KB at a time: on NYC a third of the quick preset's CPU time went to the
kernel (33 s of 135), and a fine-tuning epoch took 24 s. Backed by 2 MB pages, such a matrix takes 512 times fewer
faults: 16 s an epoch, with peak memory no higher (1.9 GB against 2.2). Keeping freed blocks in the heap instead
(glibc's mallopt) was faster still (14 s), but the holes between steps of different sizes grew a quick fit on 4x
NYC from 4.9 to 14 GB.
"""

from __future__ import annotations

import os
import sys

SETTING = "THP_MEM_ALLOC_ENABLE"


def use_huge_pages() -> bool:
    """Have PyTorch's CPU allocator back allocations of 2 MB and more with transparent huge pages (where the kernel
    allows them: `madvise` or `always`). PyTorch reads the setting at its first allocation, so this must run before
    torch is imported; False if it was imported already. A value the user set stays."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault(SETTING, "1")
    return True
