"""Phase 2 of ``ppsize compare``: the seeded process mix over a scan's files
(:func:`make_workload`, a pure function of the scan, the seed and the counts)."""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import numpy as np

from .scan import ScanResult

__all__ = ["make_workload", "check_processes", "MAX_PROCESSES", "Workload", "ProcSpec", "Mapping", "TOUCH", "steady_stream",
           "STEADY_ACCESSES", "STEADY_MIX"]

TOUCH = 4096                      # the workload's touch granularity (bytes)
_TOUCH_SHIFT = np.uint64(TOUCH.bit_length() - 1)
STEADY_ACCESSES = 1 << 17         # accesses per process in the steady-state phase
STEADY_MIX = {"scan": 0.4, "random": 0.3, "text": 0.3}   # shares of the stream
SCAN_STEP = 1024                  # a scan's stride inside a touched page (4 accesses per 4K)
TEXT_ZIPF = 1.2                   # skew of instruction fetches over the touched text pages
BLOCK = 64                        # the three streams interleave in blocks of this many

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


_STEADY_LOCK = threading.Lock()


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

    def steady(self, index, n=STEADY_ACCESSES):
        """:func:`steady_stream` of process ``index`` (this workload's seed), computed
        once and kept: every configuration of a comparison runs the same streams."""
        with _STEADY_LOCK:                  # configurations run in threads: computed once
            cache = self.__dict__.setdefault("_steady", {})
            key = (index, n)
            if key not in cache:
                cache[key] = steady_stream(self.procs[index], self.seed, index, n)
            return cache[key]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_steady"}    # not pickled

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


MAX_PROCESSES = 1024     # each process writes ~100 MiB of anon on average: the model's memory grows with it


def check_processes(processes) -> int:
    """The number of processes of a mix: an int in 1..MAX_PROCESSES (checked before
    anything is scanned or allocated)."""
    if isinstance(processes, bool) or not isinstance(processes, (int, np.integer)):
        raise TypeError(f"processes must be an int, not {type(processes).__name__} ({processes!r})")
    if not 1 <= processes <= MAX_PROCESSES:
        raise ValueError(f"processes must be in 1..{MAX_PROCESSES}, got {processes}")
    return int(processes)


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
    processes = check_processes(processes)
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


def steady_stream(spec: ProcSpec, seed=0, index=0, n=STEADY_ACCESSES):
    """The steady-state access stream of one process over what it touched (seeded by
    ``seed`` and the process ``index``; a pure function of them and ``spec``), for the
    translation figures. Three streams of :mod:`ppsize.workloads` generators over the
    touched pages laid end to end, interleaved in seeded order in blocks of ``BLOCK``
    accesses, in the shares of ``STEADY_MIX``:

    * scan: ``strided`` over the touched pages of the anonymous mappings (heap, stack,
      arenas) in address order, ``SCAN_STEP`` apart inside each page, from a seeded
      start, wrapping;
    * random: ``uniform`` over the touched anonymous pages, a random 8-byte word in each;
    * text: instruction fetches over the touched pages of the executable and the
      libraries, ``zipf`` (exponent ``TEXT_ZIPF``) over a seeded permutation of the
      pages (a few hot pages, a long tail), a random 4-byte instruction in each
      (``uniform``).

    A process without text gives its share to the scan. Returns ``(mapping, offset,
    insn)``: per access the index into ``spec.mappings``, the byte offset inside that
    mapping and whether it is an instruction fetch."""
    from .. import workloads as W
    rng = np.random.default_rng([seed, 3, index])
    seeds = rng.integers(0, 2**62, 4).tolist()
    anon = [(i, m.offsets) for i, m in enumerate(spec.mappings) if m.file < 0 and m.offsets.size]
    text = [(i, m.offsets) for i, m in enumerate(spec.mappings) if m.kind in ("exe", "lib") and m.offsets.size]
    n_text = int(n * STEADY_MIX["text"]) if text else 0
    n_rand = int(n * STEADY_MIX["random"]) if anon else 0
    n_scan = n - n_text - n_rand
    a_map = np.concatenate([np.full(o.size, i, np.int32) for i, o in anon]) if anon else np.zeros(0, np.int32)
    a_off = np.concatenate([o for _, o in anon]) if anon else np.zeros(0, np.uint64)
    parts = []

    def pages(v, maps, offs):          # a position in the touched pages laid end to end
        j = (v >> _TOUCH_SHIFT).astype(np.intp)            # (TOUCH a power of two)
        return maps[j], offs[j] + (v & np.uint64(TOUCH - 1))

    if anon:
        span = a_off.size * TOUCH
        start = seeds[0] % (span // SCAN_STEP) * SCAN_STEP
        parts.append((*pages(W.strided(0, span, SCAN_STEP, start).take(n_scan), a_map, a_off),
                      np.zeros(n_scan, bool)))
        parts.append((*pages(W.uniform(0, span, 8, seeds[1]).take(n_rand), a_map, a_off),
                      np.zeros(n_rand, bool)))
    if text:
        t_map = np.concatenate([np.full(o.size, i, np.int32) for i, o in text])
        t_off = np.concatenate([o for _, o in text])
        v = W.zipf(0, t_off.size * TOUCH, TEXT_ZIPF, TOUCH, seeds[2]).take(n_text) + \
            W.uniform(0, TOUCH, 4, seeds[3]).take(n_text)
        parts.append((*pages(v, t_map, t_off), np.ones(n_text, bool)))
    if not parts:
        return np.zeros(0, np.int32), np.zeros(0, np.uint64), np.zeros(0, bool)
    mapping, offset, insn = (np.concatenate(x) for x in zip(*parts))
    nb = -(-mapping.size // BLOCK)
    perm = rng.permutation(nb)
    if mapping.size == nb * BLOCK:     # whole blocks: a gather of rows
        return tuple(x.reshape(nb, BLOCK)[perm].ravel() for x in (mapping, offset, insn))
    order = (perm[:, None] * BLOCK + np.arange(BLOCK)).ravel()
    order = order[order < mapping.size]
    return mapping[order], offset[order], insn[order]
