"""Where a recorded address space goes in a process with a larger page size.

A program recorded on a 4K machine has VMAs aligned to 4K, file offsets congruent to
their addresses modulo 4K only. A process with P-byte pages (a 16K or 64K kernel, or a
per-process page size) can map only P-aligned ranges at P-aligned file offsets. The
binary and libraries of such a system are linked for P (``-z max-page-size=P``): each
ELF segment starts a new P page, at an offset rounded down to P as the ELF loader maps
it (ELF_PAGESTART / ELF_PAGEOFFSET in fs/binfmt_elf.c, elf_map), and mmap places
every mapping at a P-aligned address (get_unmapped_area works in P pages).

:class:`Layout` does that to a recording: VMAs in address order, each start rounded
down to P and pushed up past the previous VMA where two would share a P page (the gap
a P-aligned link puts between segments), the push carried to every later VMA (in
whole PMDs before an anonymous VMA of a PMD or more, so its THPs stay aligned);
a file VMA's offset rounded down to P (its first pages then map the file from there,
as the loader's ELF_PAGESTART mapping does). An address inside a recorded VMA moves by
that VMA's shift. With P = 4K nothing moves (``identity``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["Layout", "PMD"]

PMD = 2 << 20          # the recording machine's PMD (THP) size: 4K pages, 512 entries


class Layout:
    """A piecewise shift of recorded addresses for page size ``page``, built from
    ``ranges``: (start, end, pgoff_bytes or None for anonymous) of every VMA the
    recording shows, in priority order: a range adds only the parts no earlier range
    covers (snapshot VMAs first, the finest partition; then the ranges of recorded
    mmaps, such as ld.so's reservation of a whole library before it maps the
    segments over it)."""

    def __init__(self, ranges, page: int, base_page: int = 4096):
        self.page = int(page)
        self.identity = self.page <= base_page
        joined = _disjoint(ranges)
        P = self.page
        starts, ends, shifts, nstarts, nends = [], [], [], [], []
        carry, prev_end = 0, 0
        for s, e, o in joined:
            if self.identity:
                ns, shift, ne = s, 0, e
            else:
                # a file VMA keeps its offset's ELF_PAGEOFFSET; anonymous memory its
                # address's, and a large one moves by whole PMDs, so THPs stay aligned
                lead = s % P if o is None else o % P
                step = PMD if o is None and e - s >= PMD else P
                carry = -(-carry // step) * step
                ns = (s - lead) // P * P + carry
                if ns < prev_end:
                    carry += -(-(prev_end - ns) // step) * step
                    ns = (s - lead) // P * P + carry
                shift = ns + lead - s
                ne = -(-(e + shift) // P) * P
            starts.append(s)
            ends.append(e)
            shifts.append(shift)
            nstarts.append(ns)
            nends.append(ne)
            prev_end = ne
        self.starts = np.array(starts, np.int64)
        self.ends = np.array(ends, np.int64)
        self.shifts = np.array(shifts, np.int64)
        self.new_starts = np.array(nstarts, np.int64)
        self.new_ends = np.array(nends, np.int64)
        self.moved = bool((self.shifts != 0).any())

    def __len__(self):
        return len(self.starts)

    def _region(self, addrs) -> np.ndarray:
        a = np.asarray(addrs, dtype=np.int64)
        i = np.searchsorted(self.starts, a, side="right") - 1
        i = np.clip(i, 0, max(len(self.starts) - 1, 0))
        return i

    def addr(self, addrs) -> np.ndarray:
        """New addresses (uint64) of recorded ones: each moved with the region it lies
        in (an address outside every region moves with the region below it)."""
        a = np.asarray(addrs, dtype=np.uint64)
        if self.identity or not len(self.starts):
            return a.copy()
        i = self._region(a.astype(np.int64))
        return (a.astype(np.int64) + self.shifts[i]).astype(np.uint64)

    def span(self, start: int, end: int) -> tuple:
        """The P-aligned range [start', end') a recorded [start, end) becomes: start
        moved and rounded down, end moved (with the region of its last byte) and
        rounded up to P."""
        if self.identity:
            return int(start), int(end)
        P = self.page
        s = int(self.addr([start])[0]) // P * P
        e = -(-int(self.addr([max(end - 1, start)])[0] + 1) // P) * P
        return s, max(e, s + P)

    def inner(self, start: int, end: int) -> tuple:
        """The whole P pages inside the moved [start, end) (for munmap and
        mprotect of part of a mapping: what a P-aligned program would change)."""
        if self.identity:
            return int(start), int(end)
        P = self.page
        s = -(-int(self.addr([start])[0]) // P) * P
        e = int(self.addr([max(end - 1, start)])[0] + 1) // P * P
        return s, max(e, s)

    def offset(self, pgoff: int) -> int:
        """A file offset rounded down to P (ELF_PAGESTART)."""
        return int(pgoff) // self.page * self.page

    def describe(self) -> str:
        """One line for the report: what was moved, or that nothing was."""
        if self.identity:
            return f"layout: recorded addresses kept ({self.page >> 10}K pages)"
        if not self.moved:
            return (f"layout: laid out for {self.page >> 10}K pages; every recorded VMA already "
                    f"fit {self.page >> 10}K pages, nothing moved")
        top = int(np.abs(self.shifts).max())
        return (f"layout: laid out for {self.page >> 10}K pages as the kernel and a "
                f"{self.page >> 10}K-aligned ELF loader would: {len(self)} regions, VMA starts "
                f"and file offsets rounded down to {self.page >> 10}K, later regions pushed up "
                f"(largest move {top >> 10} kB)")


def _disjoint(ranges) -> list:
    """The uncovered parts of each range in turn, sorted: (start, end, pgoff)."""
    have: list = []                       # sorted disjoint (start, end, pgoff)
    for s, e, o in ranges:
        s, e = int(s), int(e)
        if e <= s:
            continue
        o = None if o is None else int(o)
        pieces, cur = [], s
        for hs, he, _ in have:
            if he <= cur or hs >= e:
                continue
            if hs > cur:
                pieces.append((cur, hs))
            cur = max(cur, he)
        if cur < e:
            pieces.append((cur, e))
        for ps, pe in pieces:
            have.append((ps, pe, None if o is None else o + ps - s))
        have.sort()
    return have
