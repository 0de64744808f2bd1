"""What the sections of a workload recording mean (format version 1).

The container (header, arrays, table of contents, checksums, versioning) is
``ppsize.recording.format``. A workload is a container of kind ``"snapshot"`` (live
processes: ``ppsize snapshot``) or ``"record"`` (a program run: ``ppsize record``, with or
without ``--accesses``). All arrays are little-endian NumPy structured arrays; strings
(paths, VMA names, commands) are indices into ``meta["strings"]``; -1 means "none".

Sections (absent sections are empty):

``vmas`` (VMA_DTYPE), one row per VMA as /proc/PID/smaps lists it (unmerged, in address
    order), rows of one process snapshot contiguous: ``proc`` (index into
    meta["processes"]), ``start``/``end`` (bytes), ``pgoff`` (the maps offset column, in
    bytes), ``dev`` (os.makedev(major, minor) of the maps dev column), ``inode``, ``perms``
    (PERM_READ | PERM_WRITE | PERM_EXEC | PERM_SHARED), ``name`` (string: path,
    "[heap]", "[stack]", "[vdso]", "[vvar]", "[vsyscall]", "" for anonymous), ``file``
    (row of ``files`` or -1), ``vmflags`` (bit i = meta["vmflags"][i], the VmFlags
    mnemonics: rd wr ex sh mr mw me ms gd pf lo io sr rr dc de ac nr ht sf nl ar wf dd sd
    mm hg nh mg um uw ss sl ...).
``vma_smaps`` (u64, shape (n_vmas, len(meta["smaps_fields"]))): every numeric smaps field
    of each VMA as the kernel printed it (kB for sizes: Size, KernelPageSize, MMUPageSize,
    Rss, Pss, Pss_Dirty, Shared_/Private_Clean/Dirty, Referenced, Anonymous, KSM, LazyFree,
    AnonHugePages, ShmemPmdMapped, FilePmdMapped, Shared_/Private_Hugetlb, Swap, SwapPss,
    Locked; THPeligible 0/1; ProtectionKey); 0 where a field was not printed.
``pages`` (PAGE_DTYPE), one row per page with a non-zero /proc/PID/pagemap entry, in the
    order of ``vmas`` then address: ``vma`` (row of ``vmas``), ``addr``, ``pagemap`` (the
    raw entry: PFN or swap entry in bits 0-54, soft-dirty 55, exclusive 56, uffd-wp 57,
    guard 58, file/shared 61, swapped 62, present 63; see ``procmaps.PM``), ``kflags``
    (/proc/kpageflags of the frame, 0 when unknown), ``mapcount`` (/proc/kpagecount).
    VMAs whose smaps Rss and Swap are 0 have no rows (nothing is mapped there).
``folios`` (PROC_FOLIO_DTYPE): every folio with a page in ``pages`` of a process snapshot
    ``proc``: head ``pfn``, ``order`` (from the run of KPF_COMPOUND_TAIL frames after the
    head), the head's ``kflags`` (KPF_THP, KPF_ZERO_PAGE, KPF_ANON, KPF_MMAP, ...).
``files`` (FILE_DTYPE), one row per file, keyed by (``dev``, ``inode``) as the VMAs show
    them (``st_dev``/``st_ino`` from fstat where they differ: overlayfs); ``size``
    (st_size), ``path`` (string), ``kind`` (FILE_REGULAR, FILE_DEVICE, FILE_OTHER),
    ``flags`` (FILE_DELETED, FILE_PROBED: folios of every resident page were read,
    FILE_UNREADABLE, FILE_SHMEM, FILE_MISMATCH: the file at that path is not the mapped
    one, FILE_TREE: found by --cache), the cachestat(2) counts in pages (-1: unknown) and
    ``seq``/``time`` of the capture (a recording captures a file when it is first mapped).
``cache_runs`` (filecache.RUN_DTYPE): runs of resident pages (``file``, first ``index``,
    ``npages``) from mincore(2), sorted by file and index.
``cache_folios`` (filecache.CACHE_FOLIO_DTYPE): the folios of the resident pages of
    probed files (``file``, ``index`` of the head, ``order``, ``pfn``, ``kflags``).
``tree`` (TREE_DTYPE): every process on the machine at capture time (``pid``, ``ppid``,
    ``uid``, ``threads``, ``kthread``, ``comm``), snapshotted or not.

Recordings (kind "record") add, in capture order (``seq`` is one sequence over all
event sections and the process snapshots, so merging by seq gives the order of events):

``ev_fault`` (FAULT_DTYPE): every user page fault exception (x86-64:
    exceptions:page_fault_user, ``error_code`` bits: 0 protection, 1 write, 2 user,
    3 reserved bit, 4 instruction fetch, 5 protection key, 15 SGX; arm64: the software
    page-faults event, ``error_code`` -1), also those that retry or fail.
``ev_acct`` (ACCT_DTYPE): every fault the kernel counted in minflt/majflt
    (mm_account_fault's perf software events minor-faults / major-faults), ``major``.
``ev_cache`` (CACHE_EVENT_DTYPE): filemap:mm_filemap_add_to_page_cache (``op``
    CACHE_ADD) and mm_filemap_delete_from_page_cache (CACHE_DELETE) of the recorded tasks:
    ``dev``, ``inode``, ``index``, ``order``, ``pfn``, ``file`` (row of files or -1).
``ev_syscall`` (SYSCALL_DTYPE): memory syscalls, enter and exit paired per thread:
    ``nr`` (index into meta["syscalls"]: name and argument names), ``args`` (6 u64 as the
    tracepoint's fields), ``ret`` (signed: -errno on failure), ``time_exit``, ``done``
    (0: the exit was not seen), ``file`` (the mapped file of a file mmap, or -1).
``ev_task`` (TASK_DTYPE): ``op`` TASK_FORK (``other`` = child pid), TASK_EXEC (``name`` =
    filename, ``other`` = old pid), TASK_EXIT (``group_dead``), from sched:sched_process_*.
``accesses`` (ACCESS_DTYPE, packed 11 bytes): with --accesses, every memory access of the
    traced process from valgrind's lackey, in program order: ``addr``, ``size`` (bytes),
    ``kind`` (ACCESS_INSTR, ACCESS_LOAD, ACCESS_STORE, ACCESS_MODIFY).

Process snapshots (meta["processes"], one dict each): ``pid``, ``ppid``, ``comm``,
``cmdline`` (list), ``exe``, ``uid``, ``threads``, ``kthread``, ``when`` ("live" for
``ppsize snapshot``; "exec" / "exit" in recordings), ``time_ns``, ``seq``, ``status``
(/proc/PID/status: "N kB" as int kB), ``stat`` (minflt, majflt, cminflt, cmajflt, utime,
stime, starttime, state...), ``vmas``/``pages``/``folios`` ([first, end) rows),
``partial`` (bool) and ``problems`` (why). Top-level meta: ``host`` (kernel release,
machine, page size, THP settings), ``capture`` (command line, options, timings,
``kpageflags``: whether frame flags were readable), ``problems``, ``partial``.
"""
from __future__ import annotations

import numpy as np

from .filecache import CACHE_FOLIO_DTYPE, RUN_DTYPE
from ..procmaps import FOLIO_DTYPE

SCHEMA_VERSION = 1

PERM_READ, PERM_WRITE, PERM_EXEC, PERM_SHARED = 1, 2, 4, 8

VMA_DTYPE = np.dtype([("proc", "<u4"), ("start", "<u8"), ("end", "<u8"), ("pgoff", "<u8"),
                      ("dev", "<u8"), ("inode", "<u8"), ("perms", "u1"), ("name", "<i4"),
                      ("file", "<i4"), ("vmflags", "<u8")])
PAGE_DTYPE = np.dtype([("vma", "<u4"), ("addr", "<u8"), ("pagemap", "<u8"), ("kflags", "<u8"),
                       ("mapcount", "<u4")])
PROC_FOLIO_DTYPE = np.dtype([("proc", "<u4")] + FOLIO_DTYPE.descr)

FILE_REGULAR, FILE_DEVICE, FILE_OTHER = 0, 1, 2
FILE_DELETED, FILE_PROBED, FILE_UNREADABLE, FILE_SHMEM, FILE_MISMATCH, FILE_TREE = 1, 2, 4, 8, 16, 32
FILE_FLAG_NAMES = {FILE_DELETED: "deleted", FILE_PROBED: "probed", FILE_UNREADABLE: "unreadable",
                   FILE_SHMEM: "shmem", FILE_MISMATCH: "mismatch", FILE_TREE: "tree"}
CACHESTAT_FIELDS = ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")
FILE_DTYPE = np.dtype([("dev", "<u8"), ("inode", "<u8"), ("st_dev", "<u8"), ("st_ino", "<u8"),
                       ("size", "<u8"), ("path", "<i4"), ("kind", "u1"), ("flags", "u1")]
                      + [(f, "<i8") for f in CACHESTAT_FIELDS] + [("seq", "<i8"), ("time", "<u8")])
TREE_DTYPE = np.dtype([("pid", "<i4"), ("ppid", "<i4"), ("uid", "<u4"), ("threads", "<u4"),
                       ("kthread", "u1"), ("comm", "<i4")])

_EV = [("seq", "<u8"), ("time", "<u8"), ("pid", "<i4"), ("tid", "<i4")]
FAULT_DTYPE = np.dtype(_EV + [("address", "<u8"), ("ip", "<u8"), ("error_code", "<i8")])
ACCT_DTYPE = np.dtype(_EV + [("address", "<u8"), ("major", "u1")])
CACHE_ADD, CACHE_DELETE = 0, 1
CACHE_EVENT_DTYPE = np.dtype(_EV + [("op", "u1"), ("dev", "<u8"), ("inode", "<u8"), ("index", "<u8"),
                                    ("order", "u1"), ("pfn", "<u8"), ("file", "<i4")])
SYSCALL_DTYPE = np.dtype(_EV + [("time_exit", "<u8"), ("nr", "<u2"), ("args", "<u8", (6,)),
                                ("ret", "<i8"), ("done", "u1"), ("file", "<i4")])
TASK_FORK, TASK_EXEC, TASK_EXIT = 0, 1, 2
TASK_DTYPE = np.dtype(_EV + [("op", "u1"), ("other", "<i4"), ("name", "<i4"), ("group_dead", "u1")])
EVENT_SECTIONS = {"ev_fault": FAULT_DTYPE, "ev_acct": ACCT_DTYPE, "ev_cache": CACHE_EVENT_DTYPE,
                  "ev_syscall": SYSCALL_DTYPE, "ev_task": TASK_DTYPE}

ACCESS_INSTR, ACCESS_LOAD, ACCESS_STORE, ACCESS_MODIFY = 0, 1, 2, 3
ACCESS_KINDS = "ILSM"                  # lackey's letters, by kind code
ACCESS_DTYPE = np.dtype([("addr", "<u8"), ("size", "<u2"), ("kind", "u1")])   # packed: 11 bytes

# x86-64 page fault error code (arch/x86/include/asm/trap_pf.h: X86_PF_*)
PF_PROT, PF_WRITE, PF_USER, PF_RSVD, PF_INSTR, PF_PK, PF_SGX = 1, 2, 4, 8, 16, 32, 1 << 15

SECTION_DTYPES = {"vmas": VMA_DTYPE, "pages": PAGE_DTYPE, "folios": PROC_FOLIO_DTYPE,
                  "files": FILE_DTYPE, "cache_runs": RUN_DTYPE, "cache_folios": CACHE_FOLIO_DTYPE,
                  "tree": TREE_DTYPE, "accesses": ACCESS_DTYPE, **EVENT_SECTIONS}


def dev_text(dev: int) -> str:
    """os.makedev value -> "fe:00", as /proc/PID/maps prints a device."""
    import os
    return f"{os.major(dev):02x}:{os.minor(dev):02x}"


def perms_code(perms: str) -> int:
    """"r-xp" -> PERM_READ | PERM_EXEC; "rw-s" -> PERM_READ | PERM_WRITE | PERM_SHARED."""
    return ((perms[0] == "r") * PERM_READ | (perms[1] == "w") * PERM_WRITE
            | (perms[2] == "x") * PERM_EXEC | (perms[3] == "s") * PERM_SHARED)


def perms_text(code: int) -> str:
    return ("r" if code & PERM_READ else "-") + ("w" if code & PERM_WRITE else "-") + \
           ("x" if code & PERM_EXEC else "-") + ("s" if code & PERM_SHARED else "p")
