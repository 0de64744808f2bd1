"""A workload read back from a recording: ``load(path)`` -> ``Workload``.

    from ppsize.recording import load
    w = load("firefox.ppw")
    w.kind, w.partial, w.problems            # "snapshot" | "record"; flagged if incomplete
    p = w.process(1234)                      # or w.processes[i]; w.process(pid, "exit")
    p.status["VmRSS"], p.minflt, p.vmas      # smaps-level layout, unmerged as /proc shows it
    for v in p.vma_list(): v.start, v.perms, v.pgoff, v.file, v.vmflags, v.smaps["Rss"]
    pg = p.pages                             # one row per mapped page (pagemap + kpageflags)
    pagemap_bits(pg["pagemap"])["present"]   # decoded bits; pfn(pg["pagemap"])
    f = w.file(dev, inode)                   # f.size, f.resident_runs, f.folios, f.cachestat
    w.events["ev_fault"], w.timeline()       # recordings: events in order
    w.accesses                               # --accesses: (addr, size, kind) records

Every array is a read-only view of the file (memory-mapped; checked against its CRC on
first use). The section layout is documented in ``ppsize.recording.schema``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .. import procmaps
from . import schema
from .format import RecordingError, Reader

__all__ = ["load", "Workload", "Process", "Vma", "File", "pagemap_bits", "pfn", "kpageflags_bits"]

SPECIAL_MAPPINGS = ("[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[vectors]", "[sigpage]", "[uprobes]")


def pagemap_bits(entries) -> dict[str, np.ndarray]:
    """Decode raw pagemap entries: {"present", "swapped", "exclusive", "soft_dirty",
    "file", "uffd_wp", "guard"} -> bool arrays (procmaps.PM)."""
    e = np.asarray(entries, dtype=np.uint64)
    return {name: ((e >> np.uint64(bit)) & np.uint64(1)).astype(bool) for name, bit in procmaps.PM.items()}


def pfn(entries) -> np.ndarray:
    """The PFN field (bits 0-54) of pagemap entries (a swap entry for swapped pages; 0 when
    the reader lacked CAP_SYS_ADMIN)."""
    return np.asarray(entries, dtype=np.uint64) & np.uint64(procmaps.PAGEMAP_PFN_MASK)


def kpageflags_bits(flags, *names) -> dict[str, np.ndarray]:
    """Decode kpageflags: {name: bool array} for ``names`` (default all of procmaps.KPF)."""
    f = np.asarray(flags, dtype=np.uint64)
    return {n: ((f >> np.uint64(procmaps.KPF[n])) & np.uint64(1)).astype(bool) for n in (names or procmaps.KPF)}


@dataclass
class File:
    """A file the workload mapped (or a --cache tree file), keyed by (dev, inode)."""
    index: int
    dev: int
    inode: int
    st_dev: int
    st_ino: int
    size: int
    path: str
    kind: int
    flags: frozenset
    cachestat: dict | None
    seq: int
    resident_runs: np.ndarray = field(repr=False)     # (index, npages)
    folios: np.ndarray = field(repr=False)            # (index, order, pfn, kflags); probed files
    page_size: int = 4096                             # the recording machine's

    @property
    def npages(self) -> int:
        return -(-self.size // self.page_size)

    @property
    def resident_pages(self) -> int:
        return int(self.resident_runs["npages"].sum())

    @property
    def probed(self) -> bool:
        return "probed" in self.flags

    def residency(self) -> np.ndarray:
        """bool per page of the file (plus any cached pages past EOF): cached or not."""
        ends = self.resident_runs["index"] + self.resident_runs["npages"]
        n = max(self.npages, int(ends.max()) if len(ends) else 0)
        mask = np.zeros(n, dtype=bool)
        for s, k in zip(self.resident_runs["index"].tolist(), self.resident_runs["npages"].tolist()):
            mask[s:s + k] = True
        return mask


@dataclass
class Vma:
    """One VMA as /proc/PID/smaps showed it."""
    start: int
    end: int
    perms: str
    pgoff: int
    dev: int
    inode: int
    name: str
    file: File | None
    vmflags: tuple
    smaps: dict
    pages: np.ndarray = field(repr=False)

    @property
    def special(self) -> bool:
        """[vdso], [vvar], [vsyscall] and the other kernel-installed special mappings."""
        return self.name in SPECIAL_MAPPINGS

    @property
    def anonymous(self) -> bool:
        return self.inode == 0 and not self.special


class Process:
    """One process snapshot (a live process, or a recorded one at its exec or exit)."""

    def __init__(self, workload: "Workload", index: int, info: dict):
        self._w, self.index, self.info = workload, index, info
        for k in ("pid", "ppid", "comm", "cmdline", "exe", "uid", "when", "time_ns", "seq",
                  "status", "stat", "partial", "problems", "kthread", "threads"):
            setattr(self, k, info.get(k))

    def __repr__(self):
        flag = " PARTIAL" if self.partial else ""
        return f"<Process {self.pid} {self.comm!r} {self.when}: {len(self.vmas)} VMAs, {len(self.pages)} pages{flag}>"

    @property
    def minflt(self) -> int:
        return int(self.stat.get("minflt", 0))

    @property
    def majflt(self) -> int:
        return int(self.stat.get("majflt", 0))

    def _rows(self, section: str, key: str) -> np.ndarray:
        lo, hi = self.info[key]
        return self._w.arrays[section][lo:hi]

    @property
    def vmas(self) -> np.ndarray:
        """This snapshot's rows of ``vmas`` (schema.VMA_DTYPE), in address order."""
        return self._rows("vmas", "vmas")

    @property
    def vma_smaps(self) -> np.ndarray:
        """Its rows of ``vma_smaps``: the numeric smaps fields of each VMA."""
        return self._rows("vma_smaps", "vmas")

    def smaps(self, name: str) -> np.ndarray:
        """One smaps field (e.g. "Rss", "AnonHugePages") of every VMA (kB; 0 if absent)."""
        fields = self._w.meta["smaps_fields"]
        if name not in fields:
            return np.zeros(len(self.vmas), np.uint64)
        return self.vma_smaps[:, fields.index(name)]

    @property
    def pages(self) -> np.ndarray:
        """Its rows of ``pages``: every page with a pagemap entry (schema.PAGE_DTYPE)."""
        return self._rows("pages", "pages")

    @property
    def folios(self) -> np.ndarray:
        """Its rows of ``folios``: the folios of its present pages, by pfn."""
        return self._rows("folios", "folios")

    def page_folio_order(self) -> np.ndarray:
        """The order of the folio of each present page of ``pages`` (-1: not present or
        not known)."""
        pg, fo = self.pages, self.folios
        out = np.full(len(pg), -1, dtype=np.int8)
        present = pagemap_bits(pg["pagemap"])["present"]
        if not len(fo) or not present.any():
            return out
        p = pfn(pg["pagemap"][present])
        k = np.searchsorted(fo["pfn"], p, side="right") - 1
        ok = (k >= 0) & (p < fo["pfn"][np.maximum(k, 0)] + (np.uint64(1) << fo["order"][np.maximum(k, 0)].astype(np.uint64)))
        res = np.full(len(p), -1, dtype=np.int8)
        res[ok] = fo["order"][k[ok]]
        out[present] = res
        return out

    def vma_list(self) -> list[Vma]:
        w = self._w
        strings, mn, fields = w.strings, w.meta["vmflags"], w.meta["smaps_fields"]
        vm, sm = self.vmas, self.vma_smaps
        pg = self.pages
        first = self.info["vmas"][0]
        bounds = np.searchsorted(pg["vma"], np.arange(first, first + len(vm) + 1))
        out = []
        for i, r in enumerate(vm):
            bits = int(r["vmflags"])
            out.append(Vma(int(r["start"]), int(r["end"]), schema.perms_text(int(r["perms"])),
                           int(r["pgoff"]), int(r["dev"]), int(r["inode"]), strings[r["name"]],
                           w.files[r["file"]] if r["file"] >= 0 else None,
                           tuple(m for j, m in enumerate(mn) if bits >> j & 1),
                           dict(zip(fields, (int(x) for x in sm[i]))), pg[bounds[i]:bounds[i + 1]]))
        return out

    def totals(self) -> dict:
        """Figures to compare with /proc/PID/status, from the snapshot's own data: Rss,
        Anonymous, AnonHugePages, Swap summed over the VMAs (kB), present and swapped
        pages from pagemap."""
        bits = pagemap_bits(self.pages["pagemap"])
        return {"Rss": int(self.smaps("Rss").sum()), "Anonymous": int(self.smaps("Anonymous").sum()),
                "AnonHugePages": int(self.smaps("AnonHugePages").sum()), "Swap": int(self.smaps("Swap").sum()),
                "present_pages": int(bits["present"].sum()), "swapped_pages": int(bits["swapped"].sum())}


class Workload:
    """Processes, files, events and accesses of one recording (see the module doc).
    ``arrays`` maps section names to arrays (a Reader loads them lazily)."""

    def __init__(self, meta: dict, arrays, path=None, kind=None):
        self.meta = meta
        self.arrays = _Sections(arrays)
        self.path = path
        self.kind = kind or meta.get("kind")
        self.strings = meta.get("strings", [])
        self.processes = [Process(self, i, p) for i, p in enumerate(meta.get("processes", []))]
        self._files = None

    def __repr__(self):
        return (f"<Workload {self.kind} {self.path or ''}: {len(self.processes)} process snapshots, "
                f"{len(self.files)} files{', PARTIAL' if self.partial else ''}>")

    # ------------------------------------------------------------ top level
    @property
    def host(self) -> dict:
        return self.meta.get("host", {})

    @property
    def capture(self) -> dict:
        return self.meta.get("capture", {})

    @property
    def partial(self) -> bool:
        """True when something is missing: a process exited or could not be read during
        the snapshot, or a recording lost events. Every report shows it."""
        return bool(self.meta.get("partial")) or any(p.partial for p in self.processes)

    @property
    def problems(self) -> list[str]:
        return list(self.meta.get("problems", []))

    def process(self, pid: int, when: str | None = None) -> Process:
        """The snapshot of ``pid`` (the last one, or the one taken ``when``: "live",
        "exec", "exit"). KeyError naming the pid if there is none."""
        found = [p for p in self.processes if p.pid == pid and (when is None or p.when == when)]
        if not found:
            have = sorted({p.pid for p in self.processes})
            raise KeyError(f"no snapshot of pid {pid}{' at ' + when if when else ''} "
                           f"(have pids {have[:20]}{'...' if len(have) > 20 else ''})")
        return found[-1]

    @property
    def files(self) -> list[File]:
        if self._files is None:
            fa = self.arrays["files"]
            runs, fol = self.arrays["cache_runs"], self.arrays["cache_folios"]
            rb = np.searchsorted(runs["file"], np.arange(len(fa) + 1))
            fb = np.searchsorted(fol["file"], np.arange(len(fa) + 1))
            self._files = []
            for i, r in enumerate(fa):
                flags = frozenset(n for b, n in schema.FILE_FLAG_NAMES.items() if int(r["flags"]) & b)
                cs = {k: int(r[k]) for k in schema.CACHESTAT_FIELDS} if r["nr_cache"] >= 0 else None
                self._files.append(File(i, int(r["dev"]), int(r["inode"]), int(r["st_dev"]), int(r["st_ino"]),
                                        int(r["size"]), self.strings[r["path"]], int(r["kind"]), flags, cs,
                                        int(r["seq"]), runs[rb[i]:rb[i + 1]], fol[fb[i]:fb[i + 1]],
                                        int(self.host.get("page_size", 4096))))
        return self._files

    def file(self, dev: int, inode: int) -> File:
        for f in self.files:
            if f.dev == dev and f.inode == inode:
                return f
        raise KeyError(f"no file with dev {os.major(dev)}:{os.minor(dev)} inode {inode}")

    # ------------------------------------------------------------ recordings
    @property
    def events(self) -> dict[str, np.ndarray]:
        """The event sections of a recording (name -> array; empty arrays for a snapshot)."""
        return {name: self.arrays.get(name, np.zeros(0, dt)) for name, dt in schema.EVENT_SECTIONS.items()}

    @property
    def syscalls(self) -> list[dict]:
        """meta["syscalls"]: ev_syscall's nr -> {"name", "args"}."""
        return self.meta.get("syscalls", [])

    @property
    def accesses(self) -> np.ndarray | None:
        """--accesses recordings: every access (schema.ACCESS_DTYPE), else None."""
        return self.arrays.get("accesses")

    def timeline(self) -> np.ndarray:
        """All events and process snapshots in recorded order: a structured array of
        (seq, section, row), section an index into ``timeline_sections`` ("snapshot" rows
        index ``processes``)."""
        seqs, secs, rows = [], [], []
        for k, (name, a) in enumerate(self.events.items()):
            seqs.append(a["seq"])
            secs.append(np.full(len(a), k, np.uint8))
            rows.append(np.arange(len(a), dtype=np.int64))
        snap = [p for p in self.processes if p.seq >= 0]
        seqs.append(np.array([p.seq for p in snap], np.uint64))
        secs.append(np.full(len(snap), len(schema.EVENT_SECTIONS), np.uint8))
        rows.append(np.array([p.index for p in snap], np.int64))
        out = np.zeros(sum(len(s) for s in seqs), [("seq", "<u8"), ("section", "u1"), ("row", "<i8")])
        out["seq"], out["section"], out["row"] = np.concatenate(seqs), np.concatenate(secs), np.concatenate(rows)
        return out[np.argsort(out["seq"], kind="stable")]

    timeline_sections = (*schema.EVENT_SECTIONS, "snapshot")

    # ------------------------------------------------------------ checks and reports
    def check(self) -> None:
        """Verify the recording's invariants; ValueError naming the first broken one."""
        v, pg, fo = self.arrays["vmas"], self.arrays["pages"], self.arrays["folios"]
        nf = len(self.arrays["files"])
        for p in self.processes:
            vm = p.vmas
            if len(vm) and ((vm["end"] <= vm["start"]).any() or (vm["start"][1:] < vm["end"][:-1]).any()):
                raise ValueError(f"pid {p.pid} ({p.when}): VMAs overlap or are empty")
            if len(vm) and (vm["proc"] != p.index).any():
                raise ValueError(f"pid {p.pid} ({p.when}): VMA rows name another process")
            pp = p.pages
            lo, hi = p.info["vmas"]
            if len(pp):
                if ((pp["vma"] < lo) | (pp["vma"] >= hi)).any():
                    raise ValueError(f"pid {p.pid}: a page row names a VMA of another process")
                owner = v[pp["vma"].astype(np.intp)]
                if ((pp["addr"] < owner["start"]) | (pp["addr"] >= owner["end"])).any():
                    raise ValueError(f"pid {p.pid}: a page lies outside its VMA")
                if (np.diff(pp["addr"].astype(np.int64)) <= 0).any():
                    raise ValueError(f"pid {p.pid}: pages are not in address order")
            if len(p.folios) and (p.folios["proc"] != p.index).any():
                raise ValueError(f"pid {p.pid}: folio rows name another process")
        if len(v) and ((v["file"] >= nf) | (v["file"] < -1)).any():
            raise ValueError("a VMA names a file that is not in the files table")
        for name in ("cache_runs", "cache_folios"):
            a = self.arrays[name]
            if len(a) and ((a["file"] >= nf).any() or (np.diff(a["file"].astype(np.int64)) < 0).any()):
                raise ValueError(f"{name}: rows not sorted by file or name a missing file")
        if len(fo) and (fo["order"] > 20).any():
            raise ValueError("folios: order above 20")
        seen = np.concatenate([a["seq"] for a in self.events.values()] + [np.zeros(0, np.uint64)])
        if len(np.unique(seen)) != len(seen):
            raise ValueError("events: a sequence number is used twice")

    def summary(self) -> str:
        """A text report (what ``ppsize inspect`` prints); shows PARTIAL and every problem."""
        from .report import summary
        return summary(self)


class _Sections:
    """name -> array over a dict or a Reader; missing sections read as empty arrays of
    their schema dtype (so a snapshot and a recording look alike)."""

    def __init__(self, src):
        self._src = src

    def __getitem__(self, name):
        if isinstance(self._src, Reader):
            if name in self._src:
                return self._src.array(name)
        elif name in self._src:
            return self._src[name]
        if name == "vma_smaps":
            return np.zeros((len(self["vmas"]), 0), np.uint64)
        if name in schema.SECTION_DTYPES:
            return np.zeros(0, schema.SECTION_DTYPES[name])
        raise KeyError(f"no section {name!r}")

    def __contains__(self, name):
        return name in self._src

    def get(self, name, default=None):
        return self[name] if name in self else default


def load(path, verify: bool = True) -> Workload:
    """Read a recording written by ``ppsize snapshot`` or ``ppsize record``.

    Raises a ``RecordingError`` (NotARecording, TruncatedRecording, CorruptRecording,
    UnsupportedVersion) naming the file and what is wrong, OSError if it cannot be read.
    With ``verify`` every section's CRC-32 is checked when it is first used."""
    r = Reader(path, verify=verify)
    if r.kind not in ("snapshot", "record"):
        raise RecordingError(path, f"a recording of kind {r.kind!r}, not a workload (snapshot or record)")
    for key in ("processes", "strings"):
        if key not in r.meta:
            raise RecordingError(path, f"metadata has no {key!r}: not a workload recording")
    return Workload(r.meta, r, path=os.fspath(path), kind=r.kind)
