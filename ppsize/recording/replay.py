"""Replay a recording in the model: ``replay(workload, config)`` -> :class:`ReplayResult`.

A **snapshot** (``ppsize snapshot``) is rebuilt: every process's VMAs at their
addresses with their permissions, files by (device, inode) with their real sizes and a
page cache seeded from the snapshot's residency and folio orders
(``PageCache.seed``: nothing the real kernel had cached is cold in the model), the
special mappings as the kernel installs them (``Process.install_special_mapping``:
[vdso] from the kernel's image, [vvar] never counted, [vsyscall] not a VMA), shared
anonymous memory and shmem files as shared file mappings, then every present page:

* file pages by read faults (pages the model's fault-around maps that the snapshot
  does not show are zapped again: the snapshot is a state, not a history);
* anonymous pages by write faults, one folio order at a time with only that order
  enabled (Kernel.set_thp), so THPs and mTHPs come out where the real ones were and
  nowhere else; COW pages in read-only VMAs (RELRO) by a write while the VMA is still
  writable, then mprotect to the recorded permissions, as ld.so does;
* zero-page mappings (KPF_ZERO_PAGE) by read faults of anonymous memory.

A **recording** (``ppsize record``) starts from each process's exec snapshot (seeded
with each file's residency as captured when it was first mapped), then replays the
recorded events in their order: mmap, munmap, mprotect, mremap, brk, madvise with the
recorded arguments at the recorded addresses, fork, exec, exit, and every page-fault
exception as an access (write and instruction fetch from the x86 error code). The
model's minflt and majflt are then its own: a fault the real kernel took that the
model answers from its page tables (fault-around mapped it already) is a hit.
``--accesses`` recordings replay every load, store and instruction fetch, through the
translation model when the kernel has a cpu (``Kernel(cpu=...)``).

For a process page size above the recording's (a 16K or 64K kernel, or per-process
pages) the address space is laid out as for that page size (``layout.Layout``) and
the result says so. Source of the kernel behaviour each step mirrors is named where
it is done.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .. import procmaps
from ..compare.run import CONFIGS, Config, config as _config
from ..kernel import Kernel
from ..process import Outcome
from ..units import fmt_size
from . import schema
from .layout import Layout
from .workload import SPECIAL_MAPPINGS, Workload, load

__all__ = ["replay", "ReplayResult", "ProcessReplay", "FIGURES", "replay_memory"]

FIGURES = ("minflt", "majflt", "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmPTE", "AnonHugePages",
           "cache_adds")
_PM_PRESENT = np.uint64(1 << procmaps.PM["present"])
_PM_FILE = np.uint64(1 << procmaps.PM["file"])
_PFN = np.uint64(procmaps.PAGEMAP_PFN_MASK)
_KPF_ANON = np.uint64(1 << procmaps.KPF["anon"])
_KPF_ZERO = np.uint64(1 << procmaps.KPF["zero_page"])
_KPF_THP = np.uint64(1 << procmaps.KPF["thp"])
MAP_SHARED, MAP_FIXED, MAP_ANONYMOUS, MAP_POPULATE, MAP_NORESERVE = 0x01, 0x10, 0x20, 0x8000, 0x4000
MAP_STACK, MAP_GROWSDOWN = 0x20000, 0x0100
PROT_NAMES = {0: "none", 1: "r", 2: "w", 3: "rw", 4: "x", 5: "rx", 6: "wx", 7: "rwx"}
MADV_NAMES = {0: "normal", 1: "random", 2: "sequential", 3: "willneed", 4: "dontneed",
              14: "hugepage", 15: "nohugepage"}
_FAULTS = (Outcome.FAULT, Outcome.ZERO, Outcome.COW, Outcome.REUSE, Outcome.MAJOR)
_SEGV = (Outcome.SEGV_MAPERR, Outcome.SEGV_ACCERR, Outcome.SIGBUS, Outcome.OOM)


@dataclass
class ProcessReplay:
    """One replayed process: the model's figures next to the recorded ones."""
    pid: int
    comm: str
    page_size: int
    model: dict                       # FIGURES (kB for sizes)
    truth: dict                       # the recorded figures (None where unknown)
    vmas: list = field(repr=False, default_factory=list)   # per recorded VMA: model vs smaps
    outcomes: dict = field(default_factory=dict)
    partial: bool = False

    def error(self, name):
        """model - truth of one figure (None when the truth is unknown)."""
        t = self.truth.get(name)
        return None if t is None else self.model[name] - t

    def rel_error(self, name):
        t = self.truth.get(name)
        if t is None:
            return None
        return 0.0 if t == self.model[name] else (self.model[name] - t) / t if t else float("inf")


@dataclass
class ReplayResult:
    """What :func:`replay` returns: per process, the model and the recorded figures."""
    path: str
    kind: str
    config: Config
    procs: list
    notes: list
    partial: bool
    problems: list
    meminfo: dict
    layout: str
    cache_adds: int
    cache_adds_truth: int = None
    translation: dict = None

    def totals(self, which="model") -> dict:
        out = {}
        for name in FIGURES:
            vals = [getattr(p, which).get(name) for p in self.procs]
            out[name] = None if any(v is None for v in vals) else sum(vals)
        if which == "model":
            out["cache_adds"] = self.cache_adds
        else:
            out["cache_adds"] = self.cache_adds_truth
        return out

    def as_dict(self) -> dict:
        c = self.config
        return {"path": self.path, "kind": self.kind, "config": c.key, "label": c.label,
                "partial": self.partial, "problems": self.problems, "notes": self.notes,
                "layout": self.layout, "meminfo": self.meminfo,
                "model": self.totals("model"), "truth": self.totals("truth"),
                "translation": self.translation,
                "processes": [{"pid": p.pid, "comm": p.comm, "page_size": p.page_size, "model": p.model,
                               "truth": p.truth, "outcomes": p.outcomes, "partial": p.partial,
                               "vmas": p.vmas} for p in self.procs]}


def host_readahead(w: Workload):
    """(bytes, where from) of the readahead window the recording machine used for the
    workload's files: the read_ahead_kb of the device most of its files are on (the
    bdi's ra_pages: page_cache_sync_ra and the mmap read-around size), from the
    recording's host meta, else from /sys when replayed on the machine that recorded
    it, else None (the model's default, 128K)."""
    devs = {}
    for f in w.files:
        if f.kind == schema.FILE_REGULAR and "shmem" not in f.flags:
            devs[f.dev] = devs.get(f.dev, 0) + 1
    if not devs:
        return None, None
    dev = max(devs, key=devs.get)
    key = f"{os.major(dev)}:{os.minor(dev)}"
    table = w.host.get("read_ahead_kb")
    if table is None and w.host.get("node") == os.uname().nodename:
        from .capture import block_readahead
        table = block_readahead()
    if table and key in table:
        return int(table[key]) << 10, f"read_ahead_kb of {key}"
    return None, None


def replay_memory(w: Workload, page: int) -> int:
    """Kernel memory for a replay with ``page``-byte process pages: each present page
    rounded up to ``page`` (a bound: a VMA never more than its size), the page cache
    likewise, twice over, plus 256M; rounded up to 256M."""
    pg = w.host.get("page_size", 4096)
    total = 0
    for p in w.processes:
        vm = p.vmas
        if not len(vm):
            continue
        n = np.bincount(p.pages["vma"].astype(np.int64) - p.info["vmas"][0], minlength=len(vm))[:len(vm)]
        size = (vm["end"] - vm["start"]).astype(np.int64)
        total += int(np.minimum(n.astype(np.int64) * max(page, pg), size + page).sum())
    runs = w.arrays["cache_runs"]
    total += int(runs["npages"].astype(np.int64).sum()) * max(page, pg)
    need = 2 * total + (256 << 20)
    return -(-need // (256 << 20)) * (256 << 20)


class _Replayer:
    def __init__(self, w: Workload, cfg: Config, thp=None, cpu=None, memory=None, chosen=None,
                 kernel=None):
        self.w, self.cfg = w, cfg
        host = w.host
        self.base_page = int(host.get("page_size", 4096))
        self.proc_page = cfg.proc_page or cfg.kernel_page
        if kernel is None:
            geometry = None
            if cfg.kernel_page == 4096 and not cfg.per_process and host.get("machine") == "x86_64":
                geometry = "x86_64-4l"          # the truth row: the recording machine's tables
            hthp = host.get("thp", {})
            enabled = thp or hthp.get("enabled", "madvise")
            if enabled not in ("always", "madvise", "never"):
                enabled = "madvise"
            mem = memory or replay_memory(w, self.proc_page)
            ra, where = host_readahead(w)
            ra = max(ra or 128 << 10, cfg.kernel_page)
            kernel = Kernel(cfg.kernel_page, mem, geometry=geometry, thp=enabled, cpu=cpu,
                            readahead=ra)
            self.readahead = (ra, where)
            kernel.set_thp(mthp=self._host_mthp(kernel, hthp))
        elif kernel.page_size != cfg.kernel_page:
            raise ValueError(f"kernel has {fmt_size(kernel.page_size)} pages, configuration "
                             f"{cfg.key} wants {fmt_size(cfg.kernel_page)}")
        self.k = kernel
        if not hasattr(self, "readahead"):
            self.readahead = (None, "the kernel's")
        pol = kernel.thp                      # restored after each folio-order step
        self.thp_enabled = pol.pop("enabled")
        self.mthp = pol
        self.notes: list = []
        self.seeded_reads = kernel.pagecache.stats()["pages_read"]    # reads before, or seeding
        self.files: dict = {}                 # files row -> model File
        self.seeds: dict = {}                 # file id -> (File, indices, orders) seeded
        self.procs: dict = {}                 # recorded pid -> model Process
        self.shmem_vmas: dict = {}            # model pid -> [(start, end)] of shmem mappings
        self.layout = Layout(self._ranges(), self.proc_page, self.base_page)
        if cfg.per_process and chosen is None:
            chosen = "all"
        self.chosen = chosen

    # ------------------------------------------------------------ setup
    @staticmethod
    def _host_mthp(k, hthp) -> dict:
        """The recording machine's per-size mTHP settings, for the sizes ``k`` has."""
        out = {}
        for size in k.anon_sizes:
            v = hthp.get(f"hugepages-{size >> 10}kB")
            if v in ("always", "inherit", "madvise", "never"):
                out[fmt_size(size)] = v
        return out

    def _ranges(self):
        """What the layout is built from, finest first: every recorded mmap, smallest
        first (an ELF segment before ld.so's reservation of the whole object, and a
        RELRO + data segment as the one mapping it was, not the two VMAs mprotect
        made of it), then the VMAs of exec snapshots (the kernel's ELF loader's
        mappings), then every other snapshot's VMAs."""
        maps = []
        sc = self.w.events["ev_syscall"]
        names = [s["name"] for s in self.w.syscalls]
        for r in sc:
            if names[r["nr"]] == "mmap" and r["done"] and r["ret"] > 0:
                anon = int(r["args"][3]) & MAP_ANONYMOUS
                maps.append((int(r["ret"]), int(r["ret"]) + int(r["args"][1]),
                             None if anon else int(r["args"][5])))
        maps.sort(key=lambda m: m[1] - m[0])
        snaps = sorted(self.w.processes, key=lambda p: p.when != "exec")
        for p in snaps:
            for r in p.vmas:
                name = self.w.strings[r["name"]]
                if name == "[vsyscall]":
                    continue
                anon = r["file"] < 0 and name != "[vdso]"
                maps.append((int(r["start"]), int(r["end"]), None if anon else int(r["pgoff"])))
        return maps

    def _set_thp_only(self, order):
        """Only folios of ``order`` (kernel pages) for anonymous faults; -1: the host's."""
        k = self.k
        if order < 0:
            k.set_thp(self.thp_enabled, self.mthp)
            return
        want = k.page_size << order
        k.set_thp("always" if order else "never",
                  {fmt_size(s): ("always" if s == want else "never") for s in k.anon_sizes})

    def model_file(self, row: int):
        """The model File of files row ``row``, created and seeded on first use."""
        f = self.files.get(row)
        if f is not None:
            return f
        wf = self.w.files[row]
        name = wf.path or f"<file {wf.dev}:{wf.inode}>"
        pc = self.k.pagecache
        try:
            pc.file(name)
            name = f"{name} <{os.major(wf.dev)}:{os.minor(wf.dev)} {wf.inode}>"
        except FileNotFoundError:
            pass
        f = self.k.create_file(name, wf.size, large_folios="shmem" not in wf.flags)
        self._seed(f, wf)
        self.files[row] = f
        return f

    def _seed(self, f, wf):
        """PageCache.seed from the snapshot: the probed folios (index, order), else
        every resident page as order 0; recorded 4K indices in kernel pages."""
        shift = (self.k.page_size // wf.page_size).bit_length() - 1
        if len(wf.folios):
            idx = wf.folios["index"].astype(np.int64)
            order = wf.folios["order"].astype(np.int64)
            covered = np.zeros(0, np.int64)
            res = wf.residency()
            if len(res):
                have = np.zeros(len(res), bool)
                for i, o in zip(idx.tolist(), order.tolist()):
                    have[i:i + (1 << o)] = True
                covered = np.flatnonzero(res & ~have)
            idx = np.concatenate([idx, covered])
            order = np.concatenate([order, np.zeros(len(covered), np.int64)])
        else:
            res = wf.residency()
            idx = np.flatnonzero(res).astype(np.int64)
            order = np.zeros(len(idx), np.int64)
        if shift:
            order = np.maximum(order - shift, 0)
            idx = idx >> shift
            idx, first = np.unique(idx, return_index=True)
            order = order[first]
        if len(idx):
            self.seeded(lambda: self.k.pagecache.seed(f, idx, order))
            self.seeds[f.id] = (f, idx, order)

    def reseed_dropped(self) -> int:
        """Read again what a min-order transition dropped of the seeded caches (the
        recording's cache, at the file's new min order), as compare re-reads the
        files a transition dropped: every configuration ends with the cache the
        recording had. Counted as the replay's insertions. Returns pages read."""
        dropped = {tr.file for tr in self.k.transitions if tr.status == "done"}
        n = 0
        for f, idx, order in self.seeds.values():
            if f.path in dropped or f.id in dropped:
                n += self.k.pagecache.seed(f, idx, order)
        return n

    def seeded(self, fn):
        """Run ``fn`` (a seeding step); its page-cache reads are the snapshot's, not
        insertions of the replay (``seeded_reads``: with the reads of whatever ran in the
        kernel before this replay)."""
        before = self.k.pagecache.stats()["pages_read"]
        try:
            return fn()
        finally:
            self.seeded_reads += self.k.pagecache.stats()["pages_read"] - before

    def cache_adds(self) -> int:
        """Pages the replay inserted into the page cache (reads after seeding)."""
        return int(self.k.pagecache.stats()["pages_read"] - self.seeded_reads)

    # ------------------------------------------------------------ snapshots
    def page_size_for(self, index: int) -> int:
        if not self.cfg.per_process:
            return self.cfg.kernel_page
        ch = self.chosen
        if ch == "all" or (isinstance(ch, (set, frozenset, list, tuple)) and index in ch):
            return self.cfg.proc_page
        return self.cfg.kernel_page

    def build(self, sp, index: int, proc=None, grow_to=None, populate=True):
        """Rebuild process snapshot ``sp`` (a workload Process) as a new model process
        (or in ``proc``, exec'ed). ``grow_to``: {vma start: lower start} for stacks that
        later grow down (a recording's exit snapshot). ``populate``: fault its present
        pages in (False: the VMAs only, for an access trace to fault)."""
        w, L = self.w, self.layout
        page = self.page_size_for(index)
        if proc is None:
            proc = self.k.spawn(page, self.cfg.pgtable, name=sp.comm)
        vm = sp.vmas
        strings = w.strings
        fixups = []
        shmem = self.shmem_vmas.setdefault(proc.pid, [])
        pages = sp.pages
        first = sp.info["vmas"][0]
        bounds = np.searchsorted(pages["vma"], np.arange(first, first + len(vm) + 1))
        for i, r in enumerate(vm):
            name = strings[r["name"]]
            s, e = int(r["start"]), int(r["end"])
            if grow_to and s in grow_to:
                s = grow_to[s]
            ns, ne = L.span(s, e)
            if name == "[vsyscall]":
                continue
            if name in SPECIAL_MAPPINGS:
                self.seeded(lambda: proc.install_special_mapping(name, ns, ne - ns))
                continue
            perms = int(r["perms"])
            prot = (perms & schema.PERM_READ and 1) | (perms & schema.PERM_WRITE and 2) | (perms & schema.PERM_EXEC and 4)
            shared = bool(perms & schema.PERM_SHARED)
            pg = pages[bounds[i]:bounds[i + 1]]
            # COW pages in a read-only private VMA (RELRO, a read-only heap): written
            # while it was writable, then mprotect'ed (ld.so's _dl_protect_relro)
            cow = not shared and not prot & 2 and len(pg) and bool(self.is_anon(pg).any())
            map_prot = prot | 2 if cow else prot
            if map_prot != prot:
                fixups.append((ns, ne, prot))
            kw = dict(addr=ns, prot=PROT_NAMES[map_prot], fixed=True, shared=shared)
            row = int(r["file"])
            shm = False
            if row >= 0:
                wf = w.files[row]
                shm = "shmem" in wf.flags
                if wf.kind == schema.FILE_DEVICE and not shm:
                    self.notes.append(f"pid {sp.pid}: device mapping {name} {s:#x}-{e:#x} mapped as "
                                      "anonymous memory (its pages are not modelled)")
                    row = -1
            if row >= 0:
                f = self.model_file(row)
                off = L.offset(int(r["pgoff"]))
                proc.mmap(ne - ns, file=f, offset=off, **kw)
            elif shared:                    # shared anonymous: a shmem file of its own
                f = self.k.create_file(f"<shmem {proc.pid}:{s:#x}>", e - s, large_folios=False)
                self._seed_shmem(f, pg, s)
                proc.mmap(ne - ns, file=f, offset=0, **kw)
                shm = True
            else:
                proc.mmap(ne - ns, **kw)
            if shm:
                shmem.append((ns, ne))
            flags = set(w.meta["vmflags"][j] for j in range(64) if int(r["vmflags"]) >> j & 1
                        and j < len(w.meta["vmflags"]))
            if "hg" in flags:
                proc.madvise(ns, ne - ns, "hugepage")       # MADV_HUGEPAGE: VM_HUGEPAGE
            elif "nh" in flags:
                proc.madvise(ns, ne - ns, "nohugepage")
        if populate:
            self._fault_pages(proc, sp, vm, bounds)
        for ns, ne, prot in fixups:          # RELRO: mprotect after the COW writes
            proc.mprotect(ns, ne - ns, PROT_NAMES[prot])
        return proc

    def _seed_shmem(self, f, pg, start):
        present = (pg["pagemap"] & _PM_PRESENT) != 0
        idx = ((pg["addr"][present].astype(np.int64) - start) // self.k.page_size)
        if len(idx):
            self.seeded(lambda: self.k.pagecache.seed(f, np.unique(idx), 0))

    @staticmethod
    def _is_zero(pg):
        return (pg["kflags"] & _KPF_ZERO) != 0

    @staticmethod
    def is_anon(pg):
        """Anonymous pages: KPF_ANON where frame flags were read; otherwise pagemap's
        file bit clear (a file VMA's private copies)."""
        present = (pg["pagemap"] & _PM_PRESENT) != 0
        known = pg["kflags"] != 0
        anon = np.where(known, (pg["kflags"] & _KPF_ANON) != 0, (pg["pagemap"] & _PM_FILE) == 0)
        return present & anon & ~((pg["kflags"] & _KPF_ZERO) != 0)

    def _fault_pages(self, proc, sp, vm, bounds):
        """Fault every present page in: file pages (read), zero pages (read), anon
        pages by folio order (write); then zap what fault-around added."""
        pages = sp.pages
        if not len(pages):
            return
        L, kp = self.layout, self.k.page_size
        present = (pages["pagemap"] & _PM_PRESENT) != 0
        vma_rel = pages["vma"].astype(np.int64) - sp.info["vmas"][0]
        is_file_vma = vm["file"][vma_rel] >= 0
        names = np.array([self.w.strings[n] for n in vm["name"]], dtype=object)
        special = np.isin(names[vma_rel], list(SPECIAL_MAPPINGS))
        shared = (vm["perms"][vma_rel] & schema.PERM_SHARED) != 0
        zero = present & self._is_zero(pages)
        anon = self.is_anon(pages) & ~shared
        filep = present & ~anon & ~zero
        vdso = present & special & (names[vma_rel] == "[vdso]")
        filep &= ~special | vdso
        anon &= ~special
        addrs = L.addr(pages["addr"])
        if filep.any():
            proc.access(addrs[filep], write=False)
        if zero.any():
            proc.access(addrs[zero], write=False)
        if anon.any():
            order = sp.page_folio_order()
            order = np.where(order < 0, 0, order).astype(np.int64)
            pfns = (pages["pagemap"] & _PFN).astype(np.int64)
            # a folio is faulted whole only where all its pages are present here, in
            # order and naturally aligned (its head at an aligned address)
            a4 = pages["addr"].astype(np.int64) // self.base_page
            whole = np.zeros(len(pages), bool)
            todo = np.flatnonzero(anon & (order > 0))
            for o in np.unique(order[todo]).tolist():
                n = 1 << o
                heads = todo[(order[todo] == o) & ((a4[todo] & (n - 1)) == 0) & ((pfns[todo] & (n - 1)) == 0)]
                heads = heads[heads + n - 1 < len(pages)]
                ok = ((a4[heads + n - 1] - a4[heads]) == n - 1) & ((pfns[heads + n - 1] - pfns[heads]) == n - 1)
                ok &= anon[heads + n - 1]
                heads = heads[ok]
                kshift = (kp // self.base_page).bit_length() - 1
                korder = o - kshift
                if korder > 0:
                    self._set_thp_only(korder)
                    proc.access(addrs[heads], write=True)
                    for j in range(n):
                        whole[heads + j] = True
            self._set_thp_only(0)
            rest = anon & ~whole
            if rest.any():
                proc.access(addrs[rest], write=True)
            self._set_thp_only(-1)
        self._zap_extra(proc, sp, vm, bounds, present, addrs)

    def _zap_extra(self, proc, sp, vm, bounds, present, addrs):
        """Pages mapped in the model that the snapshot shows absent (fault-around's):
        MADV_DONTNEED them (zap_page_range_single keeps the page tables, as the real
        process's tables were there too)."""
        L, P = self.layout, proc.page_size
        for i, r in enumerate(vm):
            if self.w.strings[r["name"]] in SPECIAL_MAPPINGS and self.w.strings[r["name"]] != "[vdso]":
                continue
            ns, ne = L.span(int(r["start"]), int(r["end"]))
            have = proc.resident(ns, ne)
            if not have.any():
                continue
            kp = self.k.page_size
            want = np.zeros(len(have), bool)
            sel = slice(bounds[i], bounds[i + 1])
            a = addrs[sel][present[sel]].astype(np.int64)
            want[(a - ns) // kp] = True
            per = P // kp
            want = want.reshape(-1, per).any(axis=1).repeat(per) if per > 1 else want
            extra = have & ~want
            if not extra.any():
                continue
            ex = extra.reshape(-1, per).any(axis=1) if per > 1 else extra
            d = np.diff(np.concatenate(([0], ex.view(np.int8), [0])))
            for s_, e_ in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
                proc.madvise(ns + s_ * P, (e_ - s_) * P, "dontneed")

    # ------------------------------------------------------------ figures
    def figures(self, proc) -> dict:
        st = proc.status()
        shm = sum(proc.range_stats(s, e)["FilePages"] for s, e in self.shmem_vmas.get(proc.pid, []))
        thp = sum(proc.range_stats(s, e)["AnonHugePages"] for s, e, *_ in proc.aspace.vmas)
        return {"minflt": st["minflt"], "majflt": st["majflt"], "VmRSS": st["VmRSS"],
                "RssAnon": st["RssAnon"], "RssFile": st["RssFile"] - shm, "RssShmem": shm,
                "VmPTE": st["VmPTE"], "AnonHugePages": thp}

    def vma_rows(self, proc, sp) -> list:
        """Per recorded VMA (as smaps listed it): the model's Rss, Anonymous and
        AnonHugePages over the same range (Process.range_stats), beside the recorded."""
        out = []
        for v in sp.vma_list():
            if v.name == "[vsyscall]":
                continue
            ns, ne = self.layout.span(v.start, v.end)
            m = proc.range_stats(ns, ne)
            out.append({"start": v.start, "end": v.end, "perms": v.perms, "name": v.name,
                        "Rss": [m["Rss"], v.smaps.get("Rss")], "Anonymous": [m["Anonymous"], v.smaps.get("Anonymous")],
                        "AnonHugePages": [m["AnonHugePages"], v.smaps.get("AnonHugePages")]})
        return out


def _truth(sp) -> dict:
    st = sp.status or {}
    out = {"minflt": sp.minflt, "majflt": sp.majflt}
    for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmPTE"):
        out[k] = st.get(k)
    out["AnonHugePages"] = int(sp.smaps("AnonHugePages").sum())
    return out


def replay(workload, config="4K", thp=None, cpu=None, memory=None, chosen=None, check=False,
           pids=None, kernel=None, keep=False) -> ReplayResult:
    """Replay ``workload`` (a path or a loaded :class:`Workload`) on configuration
    ``config`` (a key of ``ppsize.compare.CONFIGS`` or a Config: kernel page, process
    page, page tables). ``thp``: transparent_hugepage/enabled (default the recording
    machine's); ``cpu``: a translation model (Kernel(cpu=)) for access recordings;
    ``chosen``: in the per-process configurations, which processes run with the large
    page ("all", the default, or a set of snapshot indices); ``pids``: only these
    processes of a snapshot. ``check``: Kernel.check() at the end. ``kernel``: replay
    into this Kernel (of the configuration's page size, with its own THP policy and
    whatever else runs there: ``compare --workload`` with the synthetic mix) instead of
    a new one. ``keep``: recorded processes stay alive after their exit (as at their exit
    snapshots, all at once: what compare measures) instead of exiting, and what a
    min-order transition dropped of the recorded page cache is read again at the end
    (compare's premise: every configuration ends with the cache the recording had).

    Returns a :class:`ReplayResult`: per process the model's figures (FIGURES) beside
    the recorded ones, per-VMA rows lined up with the recorded smaps, notes (what
    could not be modelled), the layout line, and the workload's partial flag and
    problems (a partial recording's figures are flagged, never presented as whole).
    A bad file raises a ``RecordingError`` naming it."""
    w = workload if isinstance(workload, Workload) else load(workload)
    cfg = config if isinstance(config, Config) else _config(config)
    r = _Replayer(w, cfg, thp=thp, cpu=cpu, memory=memory, chosen=chosen, kernel=kernel)
    r.keep = bool(keep)
    if w.accesses is not None and len(w.accesses):
        from .events import replay_accesses
        procs, adds_truth, translation = replay_accesses(r)
    elif w.kind == "record":
        from .events import replay_events
        procs, adds_truth, translation = replay_events(r)
    else:
        procs, adds_truth, translation = _replay_snapshot(r, pids), None, None
    if keep:
        r.reseed_dropped()
    if check:
        r.k.check()
    adds = r.cache_adds()
    ra, where = r.readahead
    if ra is not None:
        r.notes.append(f"readahead {fmt_size(ra)} ({where or 'the model default'})")
    if w.partial:
        r.notes.insert(0, "PARTIAL recording: " + ("; ".join(w.problems[:3]) or "some processes are incomplete"))
    return ReplayResult(w.path or "", w.kind, cfg, procs, r.notes, w.partial, w.problems,
                        r.k.meminfo(), r.layout.describe(), adds, adds_truth, translation)


def _replay_snapshot(r: _Replayer, pids=None) -> list:
    w = r.w
    out = []
    built = []
    for i, sp in enumerate(w.processes):
        if pids is not None and sp.pid not in pids:
            continue
        if sp.kthread:
            continue
        proc = r.build(sp, i)
        built.append((sp, proc))
    for sp, proc in built:
        model = r.figures(proc)
        model["minflt"] = None
        model["majflt"] = None
        truth = _truth(sp)
        truth["minflt"] = truth["majflt"] = None
        out.append(ProcessReplay(sp.pid, sp.comm or "", proc.page_size, model, truth,
                                 r.vma_rows(proc, sp), proc.outcome_counts(), bool(sp.partial)))
    return out
