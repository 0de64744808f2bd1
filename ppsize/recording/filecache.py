"""Page-cache residency of files: which pages of a file are cached and in which folios.

``cachestat(2)`` (Linux 6.5+) gives the counts (cached, dirty, writeback, evicted,
recently evicted pages) without mapping anything. The per-page picture comes from
``mincore(2)`` on a read-only shared mapping of the file (mincore_page: a folio in the
file's XArray counts as resident). Folio sizes need the frames: the *probe* populates the
resident pages only into that mapping (MADV_POPULATE_READ, one call per resident run, with
MADV_RANDOM set so filemap_fault neither reads ahead nor around and nothing new is
cached), reads their frames from /proc/self/pagemap and the folios from /proc/kpageflags
(``ppsize.procmaps.folios_of``). The probe needs root (PFNs and kpageflags); it marks the
probed folios accessed (their LRU referenced/active bits can change), which is its only
effect on the cache. Files are opened with O_NOATIME.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat as stat_mod

import numpy as np

from .. import procmaps

__all__ = ["cachestat", "Residency", "residency", "RUN_DTYPE", "CACHE_FOLIO_DTYPE"]

PAGE = os.sysconf("SC_PAGE_SIZE")
_NR_CACHESTAT = 451              # include/uapi/asm-generic/unistd.h, the same on x86-64 and arm64
_PROT_READ, _MAP_SHARED = 0x1, 0x01
_MADV_RANDOM, _MADV_POPULATE_READ = 1, 22
_MAP_FAILED = ctypes.c_void_p(-1).value

RUN_DTYPE = np.dtype([("file", "<u4"), ("index", "<u8"), ("npages", "<u8")])
CACHE_FOLIO_DTYPE = np.dtype([("file", "<u4"), ("index", "<u8"), ("order", "u1"),
                              ("pfn", "<u8"), ("kflags", "<u8")])


class _Range(ctypes.Structure):           # struct cachestat_range
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):       # struct cachestat
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
_libc.syscall.restype = ctypes.c_long
_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]
_have_cachestat = True
TMPFS_MAGIC = 0x01021994             # include/uapi/linux/magic.h: shmem's file system


def fs_type(fd: int) -> int | None:
    """fstatfs(2) f_type (the first field of struct statfs) of an open file."""
    buf = ctypes.create_string_buffer(256)
    if _libc.fstatfs(fd, buf) != 0:
        return None
    return int.from_bytes(buf.raw[:8], "little", signed=True)


def cachestat(fd: int) -> dict | None:
    """cachestat(2) of the whole file: {nr_cache, nr_dirty, nr_writeback, nr_evicted,
    nr_recently_evicted} in pages, or None where the kernel has no cachestat (ENOSYS) or
    the file does not support it."""
    global _have_cachestat
    if not _have_cachestat:
        return None
    r, cs = _Range(0, 0), _Cachestat()
    if _libc.syscall(_NR_CACHESTAT, ctypes.c_int(fd), ctypes.byref(r), ctypes.byref(cs), ctypes.c_uint(0)) != 0:
        if ctypes.get_errno() == errno.ENOSYS:
            _have_cachestat = False
        return None
    return {n: int(getattr(cs, n)) for n, _ in _Cachestat._fields_}


class Residency:
    """What ``residency`` found for one file: ``runs`` (index, npages) of resident pages,
    ``folios`` (index, order, pfn, kflags) of the probed folios (empty without a probe),
    ``stat`` (cachestat counts or None), ``probed`` and ``problem`` (a string or None)."""

    def __init__(self, runs, folios, stat, probed, problem=None):
        self.runs, self.folios, self.stat, self.probed, self.problem = runs, folios, stat, probed, problem

    @property
    def resident_pages(self) -> int:
        return int(self.runs["npages"].sum())


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of runs of True."""
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    s, e = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return s, e - s


def residency(fd: int, size: int, kpageflags_fd: int | None = None, stat_counts=True) -> Residency:
    """Residency of the open regular file ``fd`` of ``size`` bytes (see the module doc).
    With ``kpageflags_fd`` (an open /proc/kpageflags) the resident pages are probed for
    their folios. Never raises for a file that cannot be mapped: ``problem`` says why."""
    st = cachestat(fd) if stat_counts else None
    empty_runs = np.zeros(0, RUN_DTYPE)
    empty_folios = np.zeros(0, CACHE_FOLIO_DTYPE)
    if size <= 0:
        return Residency(empty_runs, empty_folios, st, False)
    if st is not None and st["nr_cache"] == 0:
        return Residency(empty_runs, empty_folios, st, kpageflags_fd is not None)
    npages = -(-size // PAGE)
    length = npages * PAGE
    addr = _libc.mmap(None, length, _PROT_READ, _MAP_SHARED, fd, 0)
    if addr in (None, _MAP_FAILED):
        return Residency(empty_runs, empty_folios, st, False,
                         f"mmap failed: {os.strerror(ctypes.get_errno())}")
    try:
        _libc.madvise(addr, length, _MADV_RANDOM)
        vec = np.zeros(npages, dtype=np.uint8)
        if _libc.mincore(addr, length, vec.ctypes.data) != 0:
            return Residency(empty_runs, empty_folios, st, False,
                             f"mincore failed: {os.strerror(ctypes.get_errno())}")
        start, n = _runs((vec & 1).astype(bool))
        runs = np.zeros(len(start), RUN_DTYPE)
        runs["index"], runs["npages"] = start, n
        if kpageflags_fd is None or len(start) == 0:
            return Residency(runs, empty_folios, st, kpageflags_fd is not None)
        return Residency(runs, _probe(addr, start, n, kpageflags_fd), st, True)
    finally:
        _libc.munmap(addr, length)


def _probe(addr: int, start: np.ndarray, n: np.ndarray, kpageflags_fd: int) -> np.ndarray:
    """Map the resident runs of the mapping at ``addr`` and read their folios."""
    for s, k in zip(start.tolist(), n.tolist()):
        # EFAULT/EINVAL here: the file shrank under us; those pages just stay unprobed
        _libc.madvise(addr + s * PAGE, k * PAGE, _MADV_POPULATE_READ)
    idx = np.concatenate([np.arange(s, s + k, dtype=np.uint64) for s, k in zip(start.tolist(), n.tolist())])
    pm_fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        entries = procmaps.read_pagemap(pm_fd, addr + lo * PAGE, addr + hi * PAGE, PAGE)
    finally:
        os.close(pm_fd)
    rel = (idx - np.uint64(lo)).astype(np.intp)
    rel = rel[rel < len(entries)]
    e = entries[rel]
    present = (e >> np.uint64(63)) != 0
    pfn = e[present] & np.uint64(procmaps.PAGEMAP_PFN_MASK)
    page_index = idx[:len(rel)][present]
    if len(pfn) == 0 or not pfn.any():           # no PFNs: not root
        return np.zeros(0, CACHE_FOLIO_DTYPE)
    folios = procmaps.folios_of(kpageflags_fd, pfn)
    # the file index of each folio: a page at index i in the folio with head h is h's
    # index + (pfn - h)
    k = np.searchsorted(folios["pfn"], pfn, side="right") - 1
    head_index = page_index - (pfn - folios["pfn"][k])
    uk, first = np.unique(k, return_index=True)
    out = np.zeros(len(uk), CACHE_FOLIO_DTYPE)
    out["index"] = head_index[first]
    out["order"] = folios["order"][uk]
    out["pfn"] = folios["pfn"][uk]
    out["kflags"] = folios["kflags"][uk]
    return out[np.argsort(out["index"], kind="stable")]


def open_file(path: str) -> int:
    """Open a file to measure its cache: read-only, O_NOATIME where allowed (owner or
    CAP_FOWNER), never following a FIFO into a block."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return os.open(path, flags | os.O_NOATIME)
    except PermissionError:
        return os.open(path, flags)


def is_regular(st: os.stat_result) -> bool:
    return stat_mod.S_ISREG(st.st_mode)
