"""Read a live process's memory layout: VMAs (/proc/PID/maps, smaps) and its present
pages (/proc/PID/pagemap), as input for the models."""
from __future__ import annotations

import os

import numpy as np

__all__ = ["read_vmas", "present_ranges"]

PM_PRESENT = 1 << 63        # fs/proc/task_mmu.c: PM_PRESENT
PM_SWAP = 1 << 62


def read_vmas(pid="self"):
    """[(start, end, perms, name, rss_bytes)] from /proc/PID/smaps."""
    vmas = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                fields = line.split(None, 5)
                start, end = (int(x, 16) for x in fields[0].split("-"))
                name = fields[5].strip() if len(fields) > 5 else ""
                vmas.append([start, end, fields[1], name, 0])
            elif head == "Rss:":
                vmas[-1][4] = int(line.split()[1]) << 10
    return [tuple(v) for v in vmas]


def present_ranges(pid="self", page_size=None):
    """Merged [start, end) ranges of the pages present in a process's memory,
    from /proc/PID/pagemap (VMAs with no RSS are skipped without reading).

    Returns an (N, 2) uint64 array. The [vsyscall] page (outside user VA) is left out."""
    page = page_size or os.sysconf("SC_PAGE_SIZE")
    starts, ends = [], []
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for start, end, _perms, name, rss in read_vmas(pid):
            if rss == 0 or name == "[vsyscall]":
                continue
            n = (end - start) // page
            pm.seek(start // page * 8)
            raw = np.frombuffer(pm.read(n * 8), dtype=np.uint64)
            present = (raw & np.uint64(PM_PRESENT | PM_SWAP)) != 0
            if not present.any():
                continue
            # run boundaries of consecutive present pages
            p = np.concatenate(([False], present, [False])).astype(np.int8)
            d = np.diff(p)
            run_start = np.flatnonzero(d == 1)
            run_end = np.flatnonzero(d == -1)
            starts.append(start + run_start.astype(np.uint64) * np.uint64(page))
            ends.append(start + run_end.astype(np.uint64) * np.uint64(page))
    if not starts:
        return np.zeros((0, 2), dtype=np.uint64)
    return np.stack([np.concatenate(starts), np.concatenate(ends)], axis=1)
