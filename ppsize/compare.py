"""``ppsize compare``: the memory one workload needs on a 4K, a 16K and a 64K kernel,
and on a 4K kernel whose chosen processes run with 16K or 64K pages (emulated or
native page tables), side by side.

The workload, needing nothing downloaded:

* **files**: every regular file of one or more trees on this machine (default /usr
  and /etc), counted once per inode, ``st_size`` as its size, each read once in full
  through the page cache (read(2) with readahead). Only sizes are read from the
  disk; the contents are never opened.
* **processes**: a fixed, seeded mix (:func:`make_workload`). Each maps an executable,
  a few shared libraries (the same core libraries in every process, as libc) and
  some data files from the scanned trees, touches a seeded part of their pages (reads)
  and writes a seeded part of a few anonymous regions. The same byte offsets are
  touched under every configuration: only the page size changes.
* **chosen processes** (default: every other one, indices 1, 3, 5, ...) run with the
  large page size in the per-process configurations; the others, and everything in
  the plain-kernel configurations, run with the kernel's page size.

A chosen process mapping a file whose cache holds smaller folios raises the file's
min folio order (the thread's drop-all transition, ``Kernel.file_min_order``): its
cache is dropped and re-read, at the new order, by the faults and, at the end, by
reading those files once more in full, so every file is fully cached in every
configuration. Hence, exactly::

    page cache of an N-byte-page kernel = sum(round_up(st_size, N))
    page cache of a 4K kernel with P-byte processes =
        sum over files a P process mapped of round_up(st_size, P)
        + sum over the others of round_up(st_size, 4K)

    c = compare(["/etc"], seed=0)
    print(c.table())
    c.as_dict()["configs"][0]["total_kB"]
"""
from __future__ import annotations

import math
import os
import re
import stat
import sys
import time
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .report import table as _table
from .units import fmt_size, parse_size

__all__ = ["scan_trees", "ScanResult", "make_workload", "Workload", "ProcSpec", "CONFIGS",
           "Config", "run_config", "ConfigResult", "compare", "CompareResult", "Progress",
           "DEFAULT_TREES", "FILE_POLICIES"]

DEFAULT_TREES = ("/usr", "/etc")
# Kernel.file_policy values (ppsize.kernel.FILE_POLICIES), default first
FILE_POLICIES = ("drop-all", "range", "max-order-on-mmap", "large-unless-eof")
TOUCH = 4096                      # the workload's touch granularity (bytes)
_KB = 1024

# indirections the tests monkeypatch (a file vanishing, a directory unreadable)
_lstat = os.lstat
_scandir = os.scandir

# reasons an entry is not counted; the first four are by design, the rest errors
SKIP_REASONS = {
    "symlink": "symbolic links (not followed)",
    "hardlink": "further links to an inode already counted",
    "special": "devices, FIFOs, sockets",
    "other_fs": "directories on another file system (mount points)",
    "vanished": "removed during the scan (ENOENT)",
    "unreadable_dir": "directories that cannot be listed (EACCES, ...)",
    "permission": "entries that cannot be stat'ed (EACCES)",
    "error": "other errors (EIO, ELOOP, ...)",
}
ERROR_REASONS = ("vanished", "unreadable_dir", "permission", "error")


# ------------------------------------------------------------------------ progress
class Progress:
    """A one-line progress bar on ``stream`` (default stderr), drawn only when
    ``enabled`` (default: the stream is a terminal), at most 10 times a second."""

    def __init__(self, enabled=None, stream=None, width=30):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.width = width
        self._last = 0.0
        self._drawn = False

    def update(self, label, fraction=None, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if fraction is None:
            bar = ""
        else:
            fraction = min(max(fraction, 0.0), 1.0)
            n = int(fraction * self.width)
            bar = f"[{'#' * n}{'.' * (self.width - n)}] {fraction * 100:3.0f}% "
        line = f"{bar}{label}"[:120]
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._drawn = True

    def close(self):
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._drawn = False


_NO_PROGRESS = Progress(enabled=False)


# ---------------------------------------------------------------------------- scan
@dataclass
class ScanResult:
    """Regular files of the trees: ``sizes`` (int64 st_size, one per inode), and
    the paths the workload may map: ``libs`` (``*.so*``), ``exes`` (executable
    bit) and ``data`` (a deterministic 1-in-32 sample of the other files), each a
    sorted list of (path, file index, size) with size > 0."""
    trees: list
    sizes: np.ndarray
    libs: list
    exes: list
    data: list
    dirs: int
    skipped: dict
    seconds: float
    examples: dict = field(default_factory=dict)    # reason -> first few paths

    @property
    def nr_files(self) -> int:
        return int(self.sizes.size)

    @property
    def total_bytes(self) -> int:
        return int(self.sizes.sum())

    @property
    def errors(self) -> int:
        return sum(self.skipped.get(r, 0) for r in ERROR_REASONS)

    def cache_bytes(self, page) -> int:
        """sum(round_up(size, page)): the page cache of a ``page``-byte kernel
        holding every file in full."""
        page = parse_size(page, "page")
        return int(((self.sizes + (page - 1)) // page * page).sum())

    def as_dict(self) -> dict:
        return {"trees": list(self.trees), "files": self.nr_files, "bytes": self.total_bytes,
                "directories": self.dirs, "skipped": dict(self.skipped),
                "errors": self.errors, "error_examples": {k: v for k, v in self.examples.items()
                                                          if k in ERROR_REASONS},
                "libs": len(self.libs), "exes": len(self.exes), "seconds": round(self.seconds, 3)}


_LIB = re.compile(r"\.so(\.[0-9]+)*$")


def _is_lib(name: str) -> bool:
    """A shared library's name: ``*.so`` or ``*.so.<digits>[.<digits>...]``."""
    return _LIB.search(name) is not None


def scan_trees(trees, cross_mounts=False, progress=None) -> ScanResult:
    """Walk ``trees`` (directories, or single files) iteratively with
    ``os.scandir`` and ``lstat``: regular files only, each inode once (by
    (st_dev, st_ino), also across trees), symbolic links below a tree never
    followed (a tree named itself is, as ``find -H``). Directories on another
    file system are skipped unless ``cross_mounts``. Entries that vanish or cannot
    be read are counted in ``skipped`` by reason (:data:`SKIP_REASONS`), never
    fatal. A tree that does not exist raises FileNotFoundError (NotADirectoryError
    etc. as os.stat raises them)."""
    progress = progress or _NO_PROGRESS
    t0 = time.perf_counter()
    trees = [os.fspath(t) for t in trees]
    roots = []
    for t in trees:
        st = os.stat(t)                     # raises for a missing tree: the caller's error
        roots.append((t, st))
    sizes = array("q")
    libs, exes, data = [], [], []
    seen: set = set()
    dirs_seen: set = set()
    skipped: Counter = Counter()
    examples: dict = {}
    ndirs = 0

    def skip(reason, path):
        skipped[reason] += 1
        ex = examples.setdefault(reason, [])
        if len(ex) < 5:
            ex.append(path)

    def add_file(path, name, st):
        key = (st.st_dev, st.st_ino)
        if key in seen:
            skip("hardlink", path)
            return
        seen.add(key)
        size = st.st_size
        idx = len(sizes)
        sizes.append(size)
        if size > 0:
            if _is_lib(name):
                libs.append((path, idx, size))
            elif st.st_mode & 0o111:
                exes.append((path, idx, size))
            elif zlib.crc32(path.encode("utf-8", "surrogateescape")) & 31 == 0:
                data.append((path, idx, size))

    stack = []
    for t, st in roots:
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) not in dirs_seen:
                dirs_seen.add((st.st_dev, st.st_ino))
                stack.append((t, st.st_dev))
        elif stat.S_ISREG(st.st_mode):
            add_file(t, os.path.basename(t), st)
        else:
            skip("special", t)
    entries = 0
    while stack:
        d, dev = stack.pop()
        ndirs += 1
        try:
            it = _scandir(d)
        except FileNotFoundError:
            skip("vanished", d)
            continue
        except OSError:                      # EACCES, ENOTDIR (replaced), EIO, ...
            skip("unreadable_dir", d)
            continue
        subdirs = []
        with it:
            while True:
                try:
                    entry = next(it)
                except StopIteration:
                    break
                except OSError:              # readdir failing halfway
                    skip("unreadable_dir", d)
                    break
                path = entry.path
                try:
                    st = _lstat(path)
                except FileNotFoundError:
                    skip("vanished", path)
                    continue
                except PermissionError:
                    skip("permission", path)
                    continue
                except OSError:
                    skip("error", path)
                    continue
                mode = st.st_mode
                if stat.S_ISREG(mode):
                    add_file(path, entry.name, st)
                elif stat.S_ISDIR(mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_dev != dev and not cross_mounts:
                        skip("other_fs", path)
                    elif key not in dirs_seen:
                        dirs_seen.add(key)
                        subdirs.append((path, st.st_dev))
                elif stat.S_ISLNK(mode):
                    skip("symlink", path)
                else:
                    skip("special", path)
                entries += 1
                if entries & 1023 == 0:
                    progress.update(f"scanning: {len(sizes):,} files, {ndirs:,} directories")
        subdirs.reverse()                    # depth first, in listing order
        stack.extend(subdirs)
    progress.close()
    key = lambda e: e[0]
    return ScanResult(trees=trees, sizes=np.frombuffer(sizes, dtype=np.int64).copy(),
                      libs=sorted(libs, key=key), exes=sorted(exes, key=key),
                      data=sorted(data, key=key), dirs=ndirs, skipped=dict(skipped),
                      seconds=time.perf_counter() - t0, examples=examples)


# ------------------------------------------------------------------------ workload
NAMES = ("systemd", "sshd", "bash", "python3", "postgres", "nginx", "node", "java",
         "chromium", "journald", "containerd", "redis-server")
CORE_LIBS = ("libc.so", "ld-linux", "libm.so", "libpthread.so", "libstdc++.so", "libgcc_s.so")


@dataclass
class Mapping:
    """One mmap of the workload: a file (``file`` index into the scan's sizes,
    ``path``) or anonymous (``file`` -1); ``offsets``: byte offsets touched, in
    order (reads of files, writes of anonymous memory)."""
    kind: str              # "exe", "lib", "data", "heap", "stack", "arena"
    length: int
    offsets: np.ndarray
    file: int = -1
    path: str = ""
    prot: str = "rw"


@dataclass
class ProcSpec:
    name: str
    chosen: bool
    mappings: list

    @property
    def anon_bytes(self) -> int:
        return sum(m.length for m in self.mappings if m.file < 0)

    @property
    def touched_anon_bytes(self) -> int:
        return sum(m.offsets.size * TOUCH for m in self.mappings if m.file < 0)


@dataclass
class Workload:
    seed: int
    procs: list

    @property
    def chosen(self) -> list:
        return [i for i, p in enumerate(self.procs) if p.chosen]

    @property
    def anon_bytes(self) -> int:
        return sum(p.anon_bytes for p in self.procs)

    def mapped_files(self, chosen_only=False) -> set:
        return {m.file for p in self.procs if p.chosen or not chosen_only
                for m in p.mappings if m.file >= 0}

    def as_dict(self) -> dict:
        return {"seed": self.seed, "processes": [
            {"name": p.name, "chosen": p.chosen,
             "files": [{"path": m.path, "kind": m.kind, "bytes": m.length,
                        "touched_kB": m.offsets.size * TOUCH >> 10} for m in p.mappings if m.file >= 0],
             "anon": [{"kind": m.kind, "bytes": m.length, "touched_kB": m.offsets.size * TOUCH >> 10}
                      for m in p.mappings if m.file < 0]}
            for p in self.procs]}


def _touches(rng, length, fraction, run) -> np.ndarray:
    """Byte offsets (ascending) of about ``fraction`` of the TOUCH-sized pages of
    ``length`` bytes, in clustered runs as programs touch memory: runs of a mean
    ``run`` pages (geometric) separated by geometric gaps; at least one page."""
    pages = -(-length // TOUCH)
    if fraction >= 1.0 or pages <= 1:
        return np.arange(pages, dtype=np.uint64) * TOUCH
    gap = run * (1.0 - fraction) / fraction
    n = int(2 * pages / (run + gap)) + 16
    runs = rng.geometric(1.0 / run, n).astype(np.int64)
    gaps = rng.geometric(1.0 / (gap + 1.0), n).astype(np.int64) - 1
    starts = np.cumsum(gaps) + np.concatenate(([0], np.cumsum(runs)[:-1]))
    keep = starts < pages
    starts, ends = starts[keep], np.minimum(starts[keep] + runs[keep], pages)
    lens = ends - starts
    if not lens.sum():
        return np.zeros(1, dtype=np.uint64)
    first = np.concatenate(([0], np.cumsum(lens)[:-1]))
    idx = np.repeat(starts - first, lens) + np.arange(int(lens.sum()))
    return idx.astype(np.uint64) * TOUCH


def _parse_chosen(chosen, n):
    if chosen is None or chosen == "alternate":
        return set(range(1, n, 2))
    if chosen == "all":
        return set(range(n))
    if chosen == "none":
        return set()
    if isinstance(chosen, str):
        try:
            chosen = [int(x) for x in chosen.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"chosen {chosen!r}: give 'alternate', 'all', 'none' or "
                             f"comma-separated process indices") from None
    out = set()
    for i in chosen:
        if not 0 <= int(i) < n:
            raise ValueError(f"chosen process {i} out of range 0..{n - 1}")
        out.add(int(i))
    return out


def make_workload(scan: ScanResult, seed=0, processes=12, chosen=None) -> Workload:
    """The seeded process mix over the files of ``scan``. Process i is named after
    ``NAMES[i % 12]``; it maps an executable (rx), the core libraries found
    (libc, ld-linux, libm, ... as every dynamically linked program does) and 2 to
    24 other seeded libraries (rx), and 0 to 3 data files (r), reading 10% to 100%
    of each file's 4K pages in runs of 8 pages on average; it writes a heap
    (256K..256M, 50..100% of it in runs of 32 pages), the top 16K..1M of an 8M
    stack, and 0 to 4 arenas (1M..64M, 5..60% in runs of 16 pages). Anon
    sizes depend on the seed only; file choices on the seed and the trees.
    ``chosen``: process indices that run with the large page ("alternate": 1, 3,
    5, ... (default), "all", "none", or a list / comma-separated string)."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    chosen = _parse_chosen(chosen, processes)
    rng_anon = np.random.default_rng([seed, 1])
    rng = np.random.default_rng([seed, 2])
    libs, exes = scan.libs, scan.exes or scan.libs
    data = scan.data or scan.exes or scan.libs
    core = []
    for stem in CORE_LIBS:                    # the real libc & co when the trees have them
        for e in libs:
            if os.path.basename(e[0]).startswith(stem):
                core.append(e)
                break
    if not core and libs:
        core = [libs[i] for i in sorted(set(rng.choice(len(libs), size=min(3, len(libs)),
                                                       replace=False).tolist()))]
    procs = []
    for i in range(processes):
        maps = []

        def file_map(kind, entry, prot):
            path, idx, size = entry
            frac = rng.uniform(0.1, 1.0)
            maps.append(Mapping(kind, size, _touches(rng, size, frac, 8), idx, path, prot))

        if exes:
            file_map("exe", exes[int(rng.integers(len(exes)))], "rx")
        if libs:
            for e in core:
                file_map("lib", e, "rx")
            k = int(rng.integers(2, 25))
            for j in sorted(set(rng.choice(len(libs), size=min(k, len(libs)), replace=False).tolist())):
                if libs[j] not in core:
                    file_map("lib", libs[j], "rx")
        if data:
            for j in rng.choice(len(data), size=int(rng.integers(0, 4)), replace=True).tolist():
                file_map("data", data[j], "r")
        # anonymous memory: depends on the seed only
        heap = int(np.clip(rng_anon.lognormal(math.log(16 << 20), 1.2), 256 << 10, 256 << 20))
        heap = -(-heap // (64 << 10)) * (64 << 10)
        maps.append(Mapping("heap", heap, _touches(rng_anon, heap, rng_anon.uniform(0.5, 1.0), 32)))
        stack_len, top = 8 << 20, int(rng_anon.integers(4, 257)) * TOUCH
        maps.append(Mapping("stack", stack_len,
                            np.arange(stack_len - top, stack_len, TOUCH, dtype=np.uint64)[::-1].copy()))
        for _ in range(int(rng_anon.integers(0, 5))):
            n = int(rng_anon.integers(1, 65)) << 20
            maps.append(Mapping("arena", n, _touches(rng_anon, n, rng_anon.uniform(0.05, 0.6), 16)))
        procs.append(ProcSpec(f"{NAMES[i % len(NAMES)]}" + (f"-{i // len(NAMES)}" if i >= len(NAMES) else ""),
                              i in chosen, maps))
    return Workload(seed, procs)


# -------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Config:
    key: str
    label: str
    kernel_page: int
    proc_page: int = 0            # 0: the chosen processes run with the kernel's page
    pgtable: str = "emulated"

    @property
    def per_process(self) -> bool:
        return bool(self.proc_page)


CONFIGS = (
    Config("4K", "4K kernel", 4096),
    Config("16K", "16K kernel", 16384),
    Config("64K", "64K kernel", 65536),
    Config("4K+16K-emulated", "4K kernel, 16K procs, emulated", 4096, 16384, "emulated"),
    Config("4K+16K-native", "4K kernel, 16K procs, native", 4096, 16384, "native"),
    Config("4K+64K-emulated", "4K kernel, 64K procs, emulated", 4096, 65536, "emulated"),
    Config("4K+64K-native", "4K kernel, 64K procs, native", 4096, 65536, "native"),
)
_BY_KEY = {c.key: c for c in CONFIGS}


def config(key) -> Config:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ValueError(f"unknown configuration {key!r}; choose from {', '.join(_BY_KEY)}") from None


@dataclass
class ConfigResult:
    config: Config
    meminfo: dict                 # kB, at the end
    cached_after_read_kB: int     # Cached once every file was read, before the processes
    transitions: int              # min-order transitions (files whose cache was dropped)
    pages_reread: int             # kernel pages read again from disk after the first full read
    procs: list                   # per process: name, page size, pgtable, status()
    outcomes: dict                # access outcomes summed over processes
    seconds: dict
    expected_cached_kB: int       # the rounding identity's prediction (None: no closed form)
    oom: int = 0
    check: str = None             # Kernel.check(): None (not run), "passed", "skipped: why"
    alloc_fail: int = 0           # page-cache folio allocations that failed (fell back)
    blocked: int = 0              # transitions blocked (pinned, mlocked, dirty... folios)
    policy: str = "drop-all"      # the kernel's file policy

    @property
    def cached_kB(self) -> int:
        return self.meminfo["Cached"]

    @property
    def anon_kB(self) -> int:
        return self.meminfo["AnonPages"]

    @property
    def pagetables_kB(self) -> int:
        return self.meminfo["PageTables"]

    @property
    def xarray_kB(self) -> int:
        return self.meminfo["XArrayNodes"]

    @property
    def total_kB(self) -> int:
        return self.cached_kB + self.anon_kB + self.pagetables_kB + self.xarray_kB

    @property
    def reread_kB(self) -> int:
        return self.pages_reread * (self.config.kernel_page >> 10)

    def as_dict(self) -> dict:
        c = self.config
        return {"key": c.key, "label": c.label, "kernel_page": fmt_size(c.kernel_page),
                "process_page": fmt_size(c.proc_page or c.kernel_page),
                "pgtable": c.pgtable if c.per_process else "kernel",
                "page_cache_kB": self.cached_kB, "anon_kB": self.anon_kB,
                "page_tables_kB": self.pagetables_kB, "xarray_kB": self.xarray_kB,
                "total_kB": self.total_kB, "cached_after_read_kB": self.cached_after_read_kB,
                "expected_page_cache_kB": self.expected_cached_kB,
                "transitions": self.transitions, "pages_reread": self.pages_reread,
                "reread_kB": self.reread_kB, "oom": self.oom, "alloc_fail": self.alloc_fail,
                "transitions_blocked": self.blocked, "file_policy": self.policy, "meminfo": dict(self.meminfo),
                "outcomes": dict(self.outcomes), "processes": self.procs, "check": self.check,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


_READ_CHUNK = 4096         # files per read_all call (progress updates between)


def memory_for(scan: ScanResult, workload: Workload) -> int:
    """Kernel memory big enough for the whole tree on a 64K kernel: 1.25 x the
    64K-rounded page cache (the largest of every configuration), plus the
    workload's anon (64K-rounded, every region fully touched as a bound) and 256M,
    rounded up to 256M. The same memory for every configuration."""
    anon = sum(-(-m.length // 65536) * 65536 for p in workload.procs for m in p.mappings if m.file < 0)
    need = scan.cache_bytes(65536) * 5 // 4 + anon + (256 << 20)
    return -(-need // (256 << 20)) * (256 << 20)


def run_config(cfg, scan: ScanResult, workload: Workload, memory=None, thp="madvise",
               policy="drop-all", check=False, progress=None, base=0.0, span=1.0) -> ConfigResult:
    """Build a Kernel for ``cfg``, create every scanned file, read each once in
    full (read(2) through the page cache, in chunks), run the workload, then
    read once more in full every file a min-order transition dropped. ``policy``:
    the kernel's file policy (``Kernel.file_policy``: how a file gets folios of at
    least a larger process page); with "large-unless-eof" the per-process
    configurations use their process page as ``large_folio_size`` from the start
    (the files are read before the processes exist). ``progress`` spans
    [base, base + span] of the bar."""
    from .kernel import Kernel
    if isinstance(cfg, str):
        cfg = config(cfg)
    progress = progress or _NO_PROGRESS
    memory = memory_for(scan, workload) if memory is None else parse_size(memory, "memory")
    secs = {}
    t = time.perf_counter()
    if policy not in FILE_POLICIES:
        raise ValueError(f"unknown file policy {policy!r}; choose one of {', '.join(FILE_POLICIES)}")
    kw = {}
    if policy != "drop-all":
        kw["file_policy"] = policy
        if policy == "large-unless-eof" and cfg.per_process:
            kw["large_folio_size"] = cfg.proc_page
    k = Kernel(cfg.kernel_page, memory=memory, thp=thp, **kw)
    pc = k.pagecache
    sizes = scan.sizes.tolist()
    n = len(sizes)
    named = {idx: path for lst in (scan.libs, scan.exes, scan.data) for path, idx, _ in lst}
    files = []
    for i, size in enumerate(sizes):
        files.append(k.create_file(named.get(i) or f"#{i}", size))
        if i & 8191 == 0:
            progress.update(f"{cfg.label}: creating files {i:,}/{n:,}", base + span * 0.2 * i / max(n, 1))
    secs["create"] = time.perf_counter() - t
    t = time.perf_counter()
    for a in range(0, n, _READ_CHUNK):
        pc.read_all(files[a:a + _READ_CHUNK])
        progress.update(f"{cfg.label}: reading files {a:,}/{n:,}", base + span * (0.2 + 0.5 * a / max(n, 1)))
    secs["read"] = time.perf_counter() - t
    cached_after_read = k.meminfo()["Cached"]
    read0 = pc.stats()["pages_read"]
    t = time.perf_counter()
    outcomes: Counter = Counter()
    procs = []
    for j, spec in enumerate(workload.procs):
        progress.update(f"{cfg.label}: process {spec.name}",
                        base + span * (0.7 + 0.25 * j / len(workload.procs)))
        if spec.chosen and cfg.per_process:
            p = k.spawn(page_size=cfg.proc_page, pgtable=cfg.pgtable, name=spec.name)
        else:
            p = k.spawn(name=spec.name)
        procs.append((spec, p))
        for m in spec.mappings:
            if m.file >= 0:
                addr = p.mmap(m.length, file=files[m.file], prot=m.prot)
                out = p.access(m.offsets + np.uint64(addr), write=False)
            else:
                addr = p.mmap(m.length, prot="rw", stack=m.kind == "stack")
                out = p.access(m.offsets + np.uint64(addr), write=True)
            for code, cnt in zip(*np.unique(out, return_counts=True)):
                outcomes[int(code)] += int(cnt)
    # the premise "every file read once in full" again: re-read what transitions dropped
    done = [tr for tr in k.transitions if tr.get("status", "done") == "done"]
    dropped = sorted({pc.file(tr["file"]).id for tr in done})
    pc.read_all([files[i] for i in dropped])
    secs["workload"] = time.perf_counter() - t
    stats = pc.stats()
    reread = stats["pages_read"] - read0
    check_note = None
    if check:
        t = time.perf_counter()
        k.check()
        check_note = "passed"
        secs["check"] = time.perf_counter() - t
    from .process import Outcome
    bad = {Outcome(c).name.lower(): v for c, v in outcomes.items()
           if Outcome(c) in (Outcome.SEGV_MAPERR, Outcome.SEGV_ACCERR, Outcome.SIGBUS)}
    if bad:
        raise AssertionError(f"{cfg.key}: the workload faulted: {bad}")
    # the rounding identity's prediction (the other policies choose folio sizes
    # of their own: no closed form)
    page = cfg.kernel_page
    expected = scan.cache_bytes(page) if policy in ("drop-all", "range") else None
    if expected is not None and cfg.per_process and dropped:
        big = cfg.proc_page
        d = scan.sizes[np.array(dropped, dtype=np.int64)]
        expected += int(((d + big - 1) // big * big).sum() - ((d + page - 1) // page * page).sum())
    proc_rows = []
    for spec, p in procs:
        st = p.status()
        row = {"name": spec.name, "chosen": spec.chosen, "page": fmt_size(p.page_size),
               "pgtable": p.pgtable, "RssAnon": st["RssAnon"], "RssFile": st["RssFile"],
               "VmPTE": st["VmPTE"], "minflt": st["minflt"], "majflt": st["majflt"]}
        proc_rows.append(row)
    blocked = sum(1 for tr in k.transitions if tr.get("status") == "blocked")
    res = ConfigResult(cfg, k.meminfo(), cached_after_read, len(done), int(reread),
                       proc_rows, {Outcome(c).name.lower(): v for c, v in sorted(outcomes.items())},
                       secs, None if expected is None else expected >> 10, oom=k.oom_count,
                       check=check_note, alloc_fail=stats["alloc_fail"], blocked=blocked,
                       policy=policy)
    progress.update(f"{cfg.label}: done", base + span, force=True)
    return res


# -------------------------------------------------------------------------- compare
def _mib(kb) -> str:
    return f"{kb / 1024:,.1f}"


@dataclass
class CompareResult:
    scan: ScanResult
    workload: Workload
    memory: int
    thp: str
    results: list
    seconds: float
    policy: str = "drop-all"

    def __getitem__(self, key) -> ConfigResult:
        for r in self.results:
            if r.config.key == key:
                return r
        raise KeyError(key)

    @property
    def baseline(self):
        for r in self.results:
            if r.config.key == "4K":
                return r
        return self.results[0] if self.results else None

    def ratio(self, r) -> float:
        return r.total_kB / self.baseline.total_kB if self.baseline.total_kB else float("nan")

    def table(self) -> str:
        rows = []
        for r in self.results:
            rows.append([r.config.label, _mib(r.cached_kB), _mib(r.anon_kB), _mib(r.pagetables_kB),
                         _mib(r.xarray_kB), _mib(r.total_kB), f"{self.ratio(r):.3f}",
                         r.transitions, _mib(r.reread_kB)])
        return _table(["configuration", "page cache", "anon", "page tables", "XArray", "total",
                       "ratio", "transitions", "re-read"], rows)

    def summary(self) -> str:
        s, w = self.scan, self.workload
        skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(s.skipped.items())) or "none"
        touched = sum(m.offsets.size for p in w.procs for m in p.mappings if m.file >= 0) * TOUCH
        return "\n".join([
            f"trees: {', '.join(s.trees)}: {s.nr_files:,} files, {s.total_bytes / (1 << 20):,.1f} MiB "
            f"(st_size), {s.dirs:,} directories, scanned in {s.seconds:.1f} s; skipped: {skipped}",
            f"workload (seed {w.seed}): {len(w.procs)} processes, chosen {w.chosen or 'none'}; "
            f"{len(w.mapped_files()):,} files mapped ({touched >> 20:,} MiB touched), "
            f"anon {sum(p.touched_anon_bytes for p in w.procs) >> 20:,} MiB written "
            f"of {w.anon_bytes >> 20:,} MiB mapped; THP {self.thp}; file policy {self.policy}; "
            f"model memory {fmt_size(self.memory)}",
        ])

    def as_dict(self) -> dict:
        base = self.baseline
        return {"trees": list(self.scan.trees), "scan": self.scan.as_dict(),
                "workload": self.workload.as_dict(), "memory": self.memory, "thp": self.thp,
                "file_policy": self.policy,
                "units": "kB (1024 bytes)", "baseline": base.config.key if base else None,
                "configs": [dict(r.as_dict(), ratio=round(self.ratio(r), 6)) for r in self.results],
                "seconds": round(self.seconds, 3)}


HOST_BYTES_PER_FRAME = 100        # measured: ~430 MiB of RSS for 4M model frames of 4K


def _check_host_memory(mem):
    """Refuse (ValueError) a model memory whose 4K kernel would need more than
    about half of this machine's RAM (a huge sparse file, a whole file system)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    need = mem // 4096 * HOST_BYTES_PER_FRAME
    if ram > 0 and need > ram // 2:
        raise ValueError(f"the trees need {fmt_size(mem)} of model memory (the 64K kernel's page "
                         f"cache): about {need >> 20:,} MiB of RAM to model, more than half of "
                         f"this machine's {ram >> 20:,} MiB; choose smaller trees (--tree)")


def compare(trees=DEFAULT_TREES, seed=0, processes=12, chosen=None, configs=None, thp="madvise",
            policy="drop-all", memory=None, cross_mounts=False, check=False, progress=None,
            scan=None) -> CompareResult:
    """Scan ``trees``, build the seeded workload, and run it on every configuration
    (default all of :data:`CONFIGS`; keys or Config objects). ``thp``: every
    kernel's transparent_hugepage/enabled; ``policy``: the file policy
    (:data:`FILE_POLICIES`, see :func:`run_config`). ``scan``: reuse a
    :class:`ScanResult`. ``check``: verify every Kernel invariant after each run
    (slow on big trees). Returns a :class:`CompareResult`."""
    t0 = time.perf_counter()
    progress = progress or _NO_PROGRESS
    if thp not in ("always", "madvise", "never"):
        raise ValueError(f"unknown THP setting {thp!r}; choose always, madvise or never")
    if policy not in FILE_POLICIES:
        raise ValueError(f"unknown file policy {policy!r}; choose one of {', '.join(FILE_POLICIES)}")
    cfgs = [c if isinstance(c, Config) else config(c) for c in (configs or CONFIGS)]
    if scan is None:
        scan = scan_trees(trees, cross_mounts=cross_mounts, progress=progress)
    workload = make_workload(scan, seed=seed, processes=processes, chosen=chosen)
    mem = memory_for(scan, workload) if memory is None else parse_size(memory, "memory")
    _check_host_memory(mem)
    results = []
    for i, cfg in enumerate(cfgs):
        results.append(run_config(cfg, scan, workload, memory=mem, thp=thp, policy=policy, check=check,
                                  progress=progress, base=i / len(cfgs), span=1 / len(cfgs)))
    progress.close()
    return CompareResult(scan, workload, mem, thp, results, time.perf_counter() - t0, policy)
