"""Build small snapshot and recording workloads in memory (the schema's arrays and
meta), for replay tests that need no /proc, perf or root."""
import numpy as np

from ppsize import procmaps
from ppsize.recording import schema
from ppsize.recording.filecache import CACHE_FOLIO_DTYPE, RUN_DTYPE
from ppsize.recording.workload import Workload

PAGE = 4096
VMFLAGS = ["rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "hg", "nh"]
SMAPS = ["Rss", "Anonymous", "AnonHugePages"]
PRESENT = 1 << procmaps.PM["present"]
FILEBIT = 1 << procmaps.PM["file"]
KPF_ANON = 1 << procmaps.KPF["anon"]
KPF_ZERO = 1 << procmaps.KPF["zero_page"]
KPF_THP = 1 << procmaps.KPF["thp"]
KPF_MMAP = 1 << procmaps.KPF["mmap"]
ZERO_PFN = 7


class Builder:
    """Add files, processes (snapshots), VMAs and pages; ``workload()`` returns a
    Workload as ``load`` would. Pages: (addr, kind) with kind "anon", "file", "zero",
    or ("anon", order, pfn) for a page of a large folio."""

    def __init__(self, kind="snapshot", thp="madvise"):
        self.kind = kind
        self.strings = [""]
        self.files, self.runs, self.cfolios = [], [], []
        self.procs, self.vmas, self.smaps, self.pages, self.folios = [], [], [], [], []
        self.events = {k: [] for k in schema.EVENT_SECTIONS}
        self.thp = thp
        self.seq = 0
        self._pfn = 1000

    def s(self, text):
        if text not in self.strings:
            self.strings.append(text)
        return self.strings.index(text)

    def file(self, path, size, resident=(), folios=(), shmem=False):
        """A file row; ``resident``: page indices cached; ``folios``: (index, order)."""
        i = len(self.files)
        row = np.zeros(1, schema.FILE_DTYPE)[0]
        row["dev"], row["inode"], row["size"], row["path"] = 0xfe00, 100 + i, size, self.s(path)
        row["flags"] = schema.FILE_PROBED | (schema.FILE_SHMEM if shmem else 0)
        for f in schema.CACHESTAT_FIELDS:
            row[f] = -1
        self.files.append(row)
        res = sorted(set(resident) | {j for ix, o in folios for j in range(ix, ix + (1 << o))})
        for j in res:
            self.runs.append((i, j, 1))
        for ix, o in folios:
            self.cfolios.append((i, ix, o, 0, 0))
        return i

    def next_seq(self):
        self.seq += 1
        return self.seq

    def process(self, pid, when="live", status=None, minflt=0, vmas=()):
        """vmas: (start, end, perms, name, file row or -1, pgoff, pages, flags)."""
        pi = len(self.procs)
        v0, p0, f0 = len(self.vmas), len(self.pages), len(self.folios)
        for start, end, perms, name, frow, pgoff, pages, *fl in vmas:
            vi = len(self.vmas)
            row = np.zeros(1, schema.VMA_DTYPE)[0]
            row["proc"], row["start"], row["end"], row["pgoff"] = pi, start, end, pgoff
            row["perms"], row["name"], row["file"] = schema.perms_code(perms), self.s(name), frow
            if frow >= 0:
                row["dev"], row["inode"] = self.files[frow]["dev"], self.files[frow]["inode"]
            bits = 0
            for m in ["rd", "mr", "mw", "me"] + (["wr"] if "w" in perms else []) + list(fl[0] if fl else ()):
                bits |= 1 << VMFLAGS.index(m)
            row["vmflags"] = bits
            self.vmas.append(row)
            rss = anon = thp = 0
            for addr, kind in pages:
                order, pfn = 0, None
                if isinstance(kind, tuple):
                    kind, order, pfn = kind
                if pfn is None:
                    pfn = self._pfn
                    self._pfn += 1
                kf = {"anon": KPF_ANON, "file": KPF_MMAP, "zero": KPF_ZERO}[kind]
                if order:
                    kf |= KPF_THP
                if kind == "zero":
                    pfn = ZERO_PFN
                pm = PRESENT | pfn | (FILEBIT if kind == "file" else 0)
                self.pages.append((vi, addr, pm, kf, 1))
                if kind != "zero":
                    rss += 4
                if kind == "anon":
                    anon += 4
                    if order == 9:
                        thp += 4
                if order and (pfn & ((1 << order) - 1)) == 0:
                    self.folios.append((pi, pfn, order, kf))
            self.smaps.append([rss, anon, thp])
        info = {"pid": pid, "ppid": 1, "comm": f"p{pid}", "when": when, "time_ns": 0,
                "seq": self.next_seq() if self.kind == "record" else -1, "status": status or {},
                "stat": {"minflt": minflt, "majflt": 0}, "partial": False, "problems": [],
                "kthread": False, "threads": 1, "cmdline": [], "exe": "", "uid": 0,
                "vmas": [v0, len(self.vmas)], "pages": [p0, len(self.pages)],
                "folios": [f0, len(self.folios)]}
        self.procs.append(info)
        return info

    def fault(self, pid, addr, write=False, insn=False):
        ec = schema.PF_USER | (schema.PF_WRITE if write else 0) | (schema.PF_INSTR if insn else 0)
        self.events["ev_fault"].append((self.next_seq(), 0, pid, pid, addr, 0, ec))

    def syscall(self, pid, name, args, ret, file=-1):
        names = [n for n, _ in SYSCALLS]
        a = list(args) + [0] * (6 - len(args))
        self.events["ev_syscall"].append((self.next_seq(), 0, pid, pid, 0, names.index(name), a, ret, 1, file))

    def task(self, pid, op, other=0, group_dead=1):
        self.events["ev_task"].append((self.next_seq(), 0, pid, pid, op, other, -1, group_dead))

    def workload(self, partial=False):
        def arr(rows, dt):
            return np.array([tuple(r) for r in rows], dtype=dt) if rows else np.zeros(0, dt)
        folios = sorted(self.folios, key=lambda f: (f[0], f[1]))
        arrays = {"vmas": np.array(self.vmas, schema.VMA_DTYPE) if self.vmas else np.zeros(0, schema.VMA_DTYPE),
                  "vma_smaps": np.array(self.smaps, np.uint64).reshape(-1, len(SMAPS)),
                  "pages": arr(self.pages, schema.PAGE_DTYPE),
                  "folios": arr(folios, schema.PROC_FOLIO_DTYPE),
                  "files": np.array(self.files, schema.FILE_DTYPE) if self.files else np.zeros(0, schema.FILE_DTYPE),
                  "cache_runs": arr(self.runs, RUN_DTYPE), "cache_folios": arr(self.cfolios, CACHE_FOLIO_DTYPE)}
        for k, dt in schema.EVENT_SECTIONS.items():
            arrays[k] = arr(self.events[k], dt)
        meta = {"kind": self.kind, "strings": self.strings, "processes": self.procs,
                "vmflags": VMFLAGS, "smaps_fields": SMAPS, "partial": partial,
                "problems": ["pid 1: exited during the snapshot"] if partial else [],
                "host": {"page_size": PAGE, "machine": "x86_64",
                         "thp": {"enabled": self.thp, "hugepages-2048kB": "inherit"}},
                "capture": {"root": self.procs[0]["pid"] if self.procs else 0},
                "syscalls": [{"name": n, "args": a} for n, a in SYSCALLS]}
        return Workload(meta, arrays, path="<built>", kind=self.kind)


SYSCALLS = [("mmap", ["addr", "len", "prot", "flags", "fd", "off"]), ("munmap", ["addr", "len"]),
            ("mprotect", ["start", "len", "prot"]), ("brk", ["brk"]), ("madvise", ["start", "len", "behavior"])]
