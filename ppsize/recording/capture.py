"""Capture live processes and files into the arrays of a workload (``schema``).

A ``Capture`` accumulates process snapshots (smaps, status, stat, the pagemap entry of
every mapped page, the kpageflags/kpagecount of the present frames and their folios),
the files they map (identity, size, page-cache residency and folios: ``filecache``), the
process tree and, for ``--cache DIR``, whole trees of files; ``write`` stores it all in
one recording and ``workload`` returns it as a ``Workload`` without a file. ``snapshot``
and ``record`` are built on it.

Failure policy: a process that disappears (ENOENT/ESRCH), turns into a zombie or whose
pid is reused while it is being read is kept with what was read, ``partial`` set and the
reason in ``problems``; permission denied raises ``AccessDenied`` naming the pid and the
file (callers that walk every process turn it into a partial process instead).
"""
from __future__ import annotations

import errno
import os
import platform
import signal
import stat as stat_mod
import time
from pathlib import Path

import numpy as np

from .. import procmaps
from . import filecache, schema
from .format import Writer

__all__ = ["Capture", "AccessDenied", "NoSuchProcess", "host_info", "snapshot", "all_pids"]

PAGE = os.sysconf("SC_PAGE_SIZE")
_GONE = (errno.ENOENT, errno.ESRCH)


class AccessDenied(PermissionError):
    """Permission denied reading a /proc file of a process (or a file it maps)."""

    def __init__(self, pid, path, detail=""):
        self.pid, self.path = pid, path
        self.message = f"permission denied reading {path} (pid {pid})" + (f": {detail}" if detail else "")
        super().__init__(errno.EACCES, self.message, path)

    def __str__(self):
        return self.message


class NoSuchProcess(LookupError):
    """The process does not exist (when its snapshot starts)."""

    def __init__(self, pid):
        self.pid = pid
        super().__init__(f"no process with pid {pid}")


class _Gone(Exception):
    """The process went away while being read (internal)."""


def _thp_settings() -> dict:
    base = Path("/sys/kernel/mm/transparent_hugepage")
    out = {}
    for p in [base / "enabled", base / "defrag", base / "shmem_enabled", *sorted(base.glob("hugepages-*/enabled"))]:
        try:
            text = p.read_text()
        except OSError:
            continue
        key = p.name if p.parent == base else p.parent.name
        sel = text[text.find("[") + 1:text.find("]")] if "[" in text else text.strip()
        out[key] = sel
    return out


def host_info() -> dict:
    u = platform.uname()
    try:
        mem = procmaps.parse_status(Path("/proc/meminfo").read_text()).get("MemTotal")
    except OSError:
        mem = None
    return {"system": u.system, "node": u.node, "release": u.release, "version": u.version,
            "machine": u.machine, "page_size": PAGE, "cpus": os.cpu_count(), "MemTotal": mem,
            "thp": _thp_settings(), "euid": os.geteuid(), "read_ahead_kb": block_readahead()}


def block_readahead(sys_block="/sys/block") -> dict:
    """{"major:minor": read_ahead_kb} of every block device and partition (a
    partition's is its disk's queue: the bdi's ra_pages that file readahead uses)."""
    out = {}
    try:
        disks = os.listdir(sys_block)
    except OSError:
        return out
    for d in disks:
        base = os.path.join(sys_block, d)
        try:
            kb = int(Path(base, "queue", "read_ahead_kb").read_text())
        except (OSError, ValueError):
            continue
        for part in [base] + [os.path.join(base, e) for e in os.listdir(base) if e.startswith(d)]:
            try:
                out[Path(part, "dev").read_text().strip()] = kb
            except OSError:
                pass
    return out


def _wait_stopped(pid: int, timeout: float = 1.0) -> None:
    """SIGSTOP is delivered asynchronously: wait (up to ``timeout``) until the process
    is in group stop, as /proc/PID/stat shows it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if procmaps.read_stat(pid)["state"] in "tT":
                return
        except OSError:
            return
        time.sleep(0.001)


class Capture:
    """Accumulates snapshots; see the module docstring. ``probe`` reads the folios of
    every resident page of mapped files (needs root); ``map_files`` captures the files
    processes map. The kpageflags/kpagecount files are opened once (None when unreadable:
    ``kpageflags_problem`` says why)."""

    def __init__(self, probe: bool = True, map_files: bool = True):
        self.probe = probe
        self.map_files = map_files
        self._strings: dict[str, int] = {}
        self.processes: list[dict] = []
        self._vmas: list[np.ndarray] = []
        self._smaps: list[tuple[list[str], np.ndarray]] = []
        self._vmflags: list[list[tuple]] = []
        self._pages: list[np.ndarray] = []
        self._folios: list[np.ndarray] = []
        self.n_vmas = self.n_pages = self.n_folios = 0
        self._file_index: dict[tuple[int, int], int] = {}
        self._files: list[np.ndarray] = []
        self._runs: list[np.ndarray] = []
        self._cfolios: list[np.ndarray] = []
        self._tree = np.zeros(0, schema.TREE_DTYPE)
        self.problems: list[str] = []
        self.kpageflags_problem = None
        self._kf = self._kc = None
        try:
            self._kf = os.open("/proc/kpageflags", os.O_RDONLY | os.O_CLOEXEC)
            self._kc = os.open("/proc/kpagecount", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            self.kpageflags_problem = f"/proc/kpageflags unreadable ({e.strerror}; needs root): " \
                                      "no frame flags, folio orders or mapcounts"
        self.pfns_visible = None        # pagemap shows PFNs only with CAP_SYS_ADMIN

    def close(self):
        for fd in (self._kf, self._kc):
            if fd is not None:
                os.close(fd)
        self._kf = self._kc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ strings, files
    def string(self, s: str) -> int:
        i = self._strings.get(s)
        if i is None:
            i = self._strings[s] = len(self._strings)
        return i

    @property
    def strings(self) -> list[str]:
        return list(self._strings)

    @property
    def nfiles(self) -> int:
        return len(self._files)

    def file_index(self, dev: int, inode: int) -> int:
        return self._file_index.get((int(dev), int(inode)), -1)

    def set_file_seq(self, index: int, seq: int, first: bool = False) -> None:
        """Place a captured file in a recording's order (known once the events are read);
        ``first``: only if it has no place yet."""
        if not first or self._files[index]["seq"][0] < 0:
            self._files[index]["seq"] = seq

    def add_file(self, dev: int, inode: int, name: str, opener, seq: int = -1,
                 flags: int = 0) -> int:
        """The row of file (dev, inode), captured now if new: ``opener()`` returns an open
        fd of it (or raises OSError). Its residency and folios are read (``probe``)."""
        key = (int(dev), int(inode))
        if key in self._file_index:
            i = self._file_index[key]
            self._files[i]["flags"] |= flags
            return i
        i = self._file_index[key] = len(self._files)
        row = np.zeros(1, schema.FILE_DTYPE)
        self._files.append(row)                 # filled in below, in place
        row["dev"], row["inode"] = key
        row["seq"], row["time"] = seq, time.time_ns()
        for f in schema.CACHESTAT_FIELDS:
            row[f] = -1
        deleted = name.endswith(" (deleted)")
        path = name[:-len(" (deleted)")] if deleted else name
        row["path"] = self.string(path)
        fl = flags | (schema.FILE_DELETED if deleted else 0)
        try:
            fd = opener()
        except OSError as e:
            row["flags"] = fl | schema.FILE_UNREADABLE
            row["kind"] = schema.FILE_OTHER
            self.problems.append(f"file {path} ({schema.dev_text(dev)} inode {inode}): cannot open: {e.strerror}")
            return i
        try:
            st = os.fstat(fd)
            row["st_dev"], row["st_ino"], row["size"] = st.st_dev, st.st_ino, st.st_size
            if st.st_nlink == 0:
                fl |= schema.FILE_DELETED
            if (st.st_dev, st.st_ino) != key and (inode != 0):
                # overlayfs and btrfs show a different st_dev; the inode must still agree
                if st.st_ino != inode:
                    fl |= schema.FILE_MISMATCH
                    self.problems.append(f"file {path}: mapped inode {inode} but the file opened is inode {st.st_ino}")
            if stat_mod.S_ISREG(st.st_mode):
                row["kind"] = schema.FILE_REGULAR
                if filecache.fs_type(fd) == filecache.TMPFS_MAGIC:
                    fl |= schema.FILE_SHMEM
                kf = self._kf if (self.probe and self._kf is not None and self.pfns_visible is not False) else None
                r = filecache.residency(fd, st.st_size, kf)
                if r.stat is not None:
                    for f in schema.CACHESTAT_FIELDS:
                        row[f] = r.stat[f]
                if r.probed and kf is not None:
                    fl |= schema.FILE_PROBED
                if r.problem:
                    self.problems.append(f"file {path}: {r.problem}")
                if len(r.runs):
                    r.runs["file"] = i
                    self._runs.append(r.runs)
                if len(r.folios):
                    r.folios["file"] = i
                    self._cfolios.append(r.folios)
            elif stat_mod.S_ISCHR(st.st_mode) or stat_mod.S_ISBLK(st.st_mode):
                row["kind"] = schema.FILE_DEVICE
            else:
                row["kind"] = schema.FILE_OTHER
        finally:
            os.close(fd)
            row["flags"] = fl
        return i

    # ------------------------------------------------------------ processes
    def add_process(self, pid: int, when: str = "live", seq: int = -1, freeze: bool = False,
                    tgid: int | None = None) -> dict:
        """Snapshot process ``pid`` now; returns its meta dict (also in ``processes``).
        NoSuchProcess if it does not exist at the start, AccessDenied on EACCES/EPERM.
        ``tgid``: ``pid`` is a thread of process ``tgid`` (the last one alive at its exit):
        the memory is read through the thread, the fault counts from the process."""
        pid = int(pid)
        info = {"pid": int(tgid or pid), "tid": pid, "when": when, "seq": int(seq),
                "time_ns": time.time_ns(), "partial": False, "problems": []}
        try:
            stat0 = procmaps.read_stat(pid)
        except OSError as e:
            if e.errno in _GONE:
                raise NoSuchProcess(pid) from None
            raise self._denied(pid, "stat", e)
        stopped = False
        if freeze and stat0["state"] not in "TtZX" and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped = True
                _wait_stopped(pid)
            except ProcessLookupError:
                pass
        v0, p0, f0 = self.n_vmas, self.n_pages, self.n_folios
        info.update(vmas=[v0, v0], pages=[p0, p0], folios=[f0, f0], comm=stat0["comm"],
                    ppid=stat0["ppid"], kthread=stat0["kthread"], threads=stat0["num_threads"],
                    cmdline=[], exe="", uid=-1, status={}, stat=stat0)
        self.processes.append(info)
        try:
            self._read_process(pid, info, stat0)
        except _Gone as g:
            self._mark_partial(info, f"exited during the snapshot ({g})")
        except AccessDenied as e:
            self._mark_partial(info, str(e))
            raise
        finally:
            if stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        return info

    def _mark_partial(self, info: dict, why: str) -> None:
        info["partial"] = True
        info["problems"].append(why)
        self.problems.append(f"pid {info['pid']} ({info['comm']}): partial: {why}")

    def _denied(self, pid, what, e):
        if isinstance(e, PermissionError) or e.errno in (errno.EACCES, errno.EPERM):
            return AccessDenied(pid, f"/proc/{pid}/{what}", "run as root or as the process's owner")
        return e

    def _proc_read(self, pid, what, fn):
        try:
            return fn()
        except OSError as e:
            if e.errno in _GONE:
                raise _Gone(f"/proc/{pid}/{what}: {e.strerror}") from None
            raise self._denied(pid, what, e) from None

    def _read_process(self, pid: int, info: dict, stat0: dict) -> None:
        base = f"/proc/{pid}"
        info["status"] = self._proc_read(pid, "status", lambda: procmaps.read_status(pid))
        info["uid"] = int(str(info["status"].get("Uid", "-1")).split()[0])
        raw = self._proc_read(pid, "cmdline", lambda: Path(base, "cmdline").read_bytes())
        info["cmdline"] = [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []
        try:
            info["exe"] = os.readlink(f"{base}/exe")
        except OSError:
            info["exe"] = ""            # kernel threads, or not permitted
        sm = self._proc_read(pid, "smaps", lambda: procmaps.read_smaps(pid))
        n = len(sm)
        rss_swap = sm.column("Rss") + sm.column("Swap")
        vma_rows = np.zeros(n, schema.VMA_DTYPE)
        vma_rows["proc"] = len(self.processes) - 1
        vma_rows["start"], vma_rows["end"], vma_rows["pgoff"] = sm.start, sm.end, sm.pgoff
        vma_rows["dev"], vma_rows["inode"] = sm.dev, sm.inode
        vma_rows["perms"] = [schema.perms_code(p) for p in sm.perms]
        vma_rows["name"] = [self.string(nm) for nm in sm.names]
        vma_rows["file"] = -1
        first = self.n_vmas
        # pagemap: one bulk read per VMA that has pages; keep non-zero entries
        pages = []
        if n and rss_swap.any():
            fd = self._proc_read(pid, "pagemap", lambda: os.open(f"{base}/pagemap", os.O_RDONLY | os.O_CLOEXEC))
            try:
                for i in np.flatnonzero(rss_swap).tolist():
                    if sm.names[i] == "[vsyscall]":
                        continue
                    start, end = int(sm.start[i]), int(sm.end[i])
                    e = self._proc_read(pid, "pagemap", lambda: procmaps.read_pagemap(fd, start, end, PAGE))
                    if len(e) < (end - start) // PAGE:
                        raise _Gone(f"/proc/{pid}/pagemap: short read at {start:#x}")
                    nz = np.flatnonzero(e)
                    if len(nz):
                        rows = np.zeros(len(nz), schema.PAGE_DTYPE)
                        rows["vma"] = first + i
                        rows["addr"] = np.uint64(start) + nz.astype(np.uint64) * np.uint64(PAGE)
                        rows["pagemap"] = e[nz]
                        pages.append(rows)
            finally:
                os.close(fd)
        pages = np.concatenate(pages) if pages else np.zeros(0, schema.PAGE_DTYPE)
        # frames: flags, mapcounts, folios
        folios = np.zeros(0, schema.PROC_FOLIO_DTYPE)
        present = (pages["pagemap"] >> np.uint64(63)) != 0
        pfn = pages["pagemap"][present] & np.uint64(procmaps.PAGEMAP_PFN_MASK)
        if len(pfn) and self.pfns_visible is None:
            self.pfns_visible = bool(pfn.any())
            if not self.pfns_visible:
                self.problems.append("pagemap shows no PFNs (needs CAP_SYS_ADMIN): no frame "
                                     "flags, folio orders or mapcounts")
        if len(pfn) and self._kf is not None and self.pfns_visible:
            uniq, inv = np.unique(pfn, return_inverse=True)
            flags = procmaps.read_kpage(self._kf, uniq)
            pages["kflags"][present] = flags[inv]
            pages["mapcount"][present] = procmaps.read_kpage(self._kc, uniq)[inv].astype(np.uint32)
            f = procmaps.folios_of(self._kf, uniq, flags)
            folios = np.zeros(len(f), schema.PROC_FOLIO_DTYPE)
            folios["proc"] = len(self.processes) - 1
            for k in procmaps.FOLIO_DTYPE.names:
                folios[k] = f[k]
        # VmFlags as a bitmask over the mnemonics seen in this capture
        self._vmflags.append(sm.vmflags)
        self._smaps.append((sm.fields, sm.values))
        self._vmas.append(vma_rows)
        self._pages.append(pages)
        self._folios.append(folios)
        self.n_vmas += n
        self.n_pages += len(pages)
        self.n_folios += len(folios)
        info["vmas"] = [first, self.n_vmas]
        info["pages"] = [self.n_pages - len(pages), self.n_pages]
        info["folios"] = [self.n_folios - len(folios), self.n_folios]
        # the process may have exited, become a zombie or been replaced while we read
        try:
            stat1 = procmaps.read_stat(pid)
        except OSError as e:
            raise _Gone(f"/proc/{pid}/stat: {e.strerror}") from None
        if stat1["starttime"] != stat0["starttime"]:
            raise _Gone(f"pid {pid} was reused by another process")
        if stat1["state"] in "ZX":
            raise _Gone(f"it is a zombie (state {stat1['state']})")
        info["stat"] = stat1
        if info["pid"] != pid:
            try:
                info["stat"] = procmaps.read_stat(info["pid"])
            except OSError as e:
                info["problems"].append(f"/proc/{info['pid']}/stat: {e.strerror}: fault counts are the thread's")
        if self.map_files:
            self._map_files(pid, sm, vma_rows)

    def _map_files(self, pid, sm, vma_rows):
        for i in np.flatnonzero(sm.inode).tolist():
            start, end, name = int(sm.start[i]), int(sm.end[i]), sm.names[i]
            mf = f"/proc/{pid}/map_files/{start:x}-{end:x}"

            def opener(mf=mf, name=name):
                try:
                    return filecache.open_file(mf)
                except OSError:
                    if name.startswith("/") and not name.endswith(" (deleted)"):
                        return filecache.open_file(name)
                    raise
            vma_rows["file"][i] = self.add_file(int(sm.dev[i]), int(sm.inode[i]), name, opener)

    def add_tree(self) -> None:
        """The pid, ppid, uid, threads and comm of every process now."""
        rows = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                st = procmaps.read_stat(name)
                uid = os.stat(f"/proc/{name}").st_uid
            except (OSError, ValueError):
                continue
            rows.append((st["pid"], st["ppid"], uid, st["num_threads"], st["kthread"], self.string(st["comm"])))
        tree = np.array(rows, dtype=schema.TREE_DTYPE) if rows else np.zeros(0, schema.TREE_DTYPE)
        self._tree = np.sort(tree, order="pid")

    def add_cache_tree(self, root, cross_mounts: bool = False) -> dict:
        """Every regular file below ``root`` (once per inode, symlinks not followed, other
        file systems skipped unless ``cross_mounts``) with its residency. Returns counts."""
        root = os.fspath(root)
        st_root = os.stat(root)
        counts = {"files": 0, "cached_files": 0, "unreadable": 0, "skipped_mounts": 0}
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except OSError:
                counts["unreadable"] += 1
                continue
            with it:
                for ent in it:
                    try:
                        if ent.is_dir(follow_symlinks=False):
                            if not cross_mounts and ent.stat(follow_symlinks=False).st_dev != st_root.st_dev:
                                counts["skipped_mounts"] += 1
                                continue
                            stack.append(ent.path)
                            continue
                        if not ent.is_file(follow_symlinks=False):
                            continue
                        st = ent.stat(follow_symlinks=False)
                    except OSError:
                        counts["unreadable"] += 1
                        continue
                    before = self.nfiles
                    i = self.add_file(st.st_dev, st.st_ino, ent.path,
                                      lambda p=ent.path: filecache.open_file(p), flags=schema.FILE_TREE)
                    if i == before:
                        counts["files"] += 1
                        if self._files[i]["flags"] & schema.FILE_UNREADABLE:
                            counts["unreadable"] += 1
                        elif self._files[i]["nr_cache"] != 0:
                            counts["cached_files"] += 1
        return counts

    # ------------------------------------------------------------ output
    def arrays(self) -> dict[str, np.ndarray]:
        cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)
        vmas = cat(self._vmas, schema.VMA_DTYPE)
        fields: dict[str, int] = {}
        for names, _ in self._smaps:
            for f in names:
                fields.setdefault(f, len(fields))
        smaps = np.zeros((len(vmas), len(fields)), dtype=np.uint64)
        row = 0
        for names, values in self._smaps:
            if len(values):
                smaps[row:row + len(values), [fields[f] for f in names]] = values
            row += len(values)
        mnemonics: dict[str, int] = {}
        bits, row = np.zeros(len(vmas), np.uint64), 0
        for flags in self._vmflags:
            for fl in flags:
                b = 0
                for m in fl:
                    j = mnemonics.setdefault(m, len(mnemonics))
                    if j >= 64:
                        raise ValueError(f"more than 64 distinct VmFlags mnemonics ({m!r})")
                    b |= 1 << j
                bits[row] = b
                row += 1
        vmas["vmflags"] = bits
        self._smaps_fields, self._mnemonics = list(fields), list(mnemonics)
        return {"vmas": vmas, "vma_smaps": smaps, "pages": cat(self._pages, schema.PAGE_DTYPE),
                "folios": cat(self._folios, schema.PROC_FOLIO_DTYPE),
                "files": cat(self._files, schema.FILE_DTYPE),
                "cache_runs": cat(self._runs, filecache.RUN_DTYPE),
                "cache_folios": cat(self._cfolios, filecache.CACHE_FOLIO_DTYPE),
                "tree": self._tree}

    def meta(self, kind: str, capture: dict, partial_reasons=(), **extra) -> dict:
        """Call after ``arrays()`` (it fixes the smaps field and VmFlags lists).
        ``partial_reasons``: why the recording as a whole is incomplete (lost events...);
        ``extra``: more top-level keys (a recording's "syscalls")."""
        problems = list(self.problems)
        if self.kpageflags_problem:
            problems.insert(0, self.kpageflags_problem)
        from .. import __version__
        return {"schema": schema.SCHEMA_VERSION, "kind": kind, "ppsize": __version__,
                "host": host_info(),
                "capture": {**capture, "kpageflags": self._kf is not None and self.pfns_visible is not False,
                            "probe": self.probe},
                "strings": self.strings, "smaps_fields": self._smaps_fields,
                "vmflags": self._mnemonics, "processes": self.processes, "problems": problems,
                "partial_reasons": list(partial_reasons),
                "partial": bool(partial_reasons) or any(p["partial"] for p in self.processes), **extra}

    def finish(self, kind: str, capture: dict, extra: dict | None = None, path=None, writer=None,
               **meta):
        """The Workload of everything captured (plus ``extra`` arrays, e.g. event
        sections), written to ``path`` if given, or into ``writer`` (a format.Writer that
        already holds streamed sections), which is then closed. ``meta``: see ``meta``."""
        from .workload import Workload
        arrays = self.arrays()
        arrays.update(extra or {})
        meta = self.meta(kind, capture, **meta)
        if path is not None or writer is not None:
            w = writer or Writer(path, kind)
            try:
                w.meta = meta
                for name, a in arrays.items():
                    w.add(name, a)
                w.close()
            except BaseException:
                w.abort()
                raise
            path = w.path
        return Workload(meta, arrays, path=None if path is None else os.fspath(path), kind=kind)


def all_pids() -> list[int]:
    """Every process (thread group) now, kernel threads excluded, this one excluded."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                with open(f"/proc/{name}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            flags = int(text[text.rindex(")") + 2:].split()[6])
            if not flags & 0x00200000:           # PF_KTHREAD
                out.append(int(name))
    return sorted(out)


def snapshot(pids=(), all: bool = False, cache_dirs=(), path=None, freeze: bool = False,
             probe: bool = True, cross_mounts: bool = False):
    """Snapshot processes ``pids`` (or ``all`` of them) and the residency of the files under
    ``cache_dirs``; write the recording to ``path`` if given; return the ``Workload``.

    Explicit pids that do not exist raise NoSuchProcess, unreadable ones AccessDenied
    (naming the pid and the /proc file). With ``all``, processes that exit before their
    turn are skipped and unreadable ones are kept as partial. ``freeze`` stops each
    process (SIGSTOP/SIGCONT) while it is read, for a consistent picture. ``probe``: read
    the folios of the mapped files' resident pages (filecache)."""
    t0 = time.perf_counter()
    pids = [int(p) for p in pids]
    if not pids and not all and not cache_dirs:
        raise ValueError("nothing to snapshot: give pids, all=True or cache_dirs")
    for d in cache_dirs:
        if not os.path.isdir(d):
            raise NotADirectoryError(f"--cache {d!r} is not a directory")
    targets = sorted(set(pids) | set(all_pids() if all else []))
    explicit = set(pids)
    skipped = 0
    cache_counts = {}
    with Capture(probe=probe) as cap:
        for pid in targets:
            try:
                cap.add_process(pid, freeze=freeze)
            except NoSuchProcess:
                if pid in explicit:
                    raise
                skipped += 1
            except AccessDenied:
                if pid in explicit:
                    raise
        cap.add_tree()
        for d in cache_dirs:
            cache_counts[os.fspath(d)] = cap.add_cache_tree(d, cross_mounts=cross_mounts)
        capture = {"tool": "snapshot", "pids": pids, "all": bool(all), "cache": [os.fspath(d) for d in cache_dirs],
                   "freeze": freeze, "exited_before_snapshot": skipped, "cache_counts": cache_counts,
                   "duration_s": time.perf_counter() - t0}
        return cap.finish("snapshot", capture, path=path)
