"""Phase 1 of ``ppsize compare``: the scan of the trees (sizes only; contents are
never read). Its :class:`ScanResult` is a plain, picklable record that every
later phase takes, so one scan serves any number of runs."""
from __future__ import annotations

import os
import re
import stat
import time
from zlib import crc32
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .._validate import as_choice
from ..units import parse_size
from .progress import NO_PROGRESS

__all__ = ["ScanResult", "scan_trees", "SKIP_REASONS", "ERROR_REASONS"]

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _opendir(path):
    """open(2) of a directory to list (scandir of its fd) and stat in (fstatat)."""
    return os.open(path, _O_DIR)


# indirections the tests monkeypatch (a file vanishing, a directory unreadable):
# _opendir(path) -> fd, _scandir(fd) -> entries, _lstat(name, dir_fd=fd)
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

    @cached_property
    def names(self) -> dict:
        """{file index: path} of the files the workload may map (the others are
        nameless in the model)."""
        return {idx: path for lst in (self.libs, self.exes, self.data) for path, idx, _ in lst}

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
    return ".so" in name and _LIB.search(name) is not None


def scan_trees(trees, cross_mounts=False, progress=None, engine="native") -> ScanResult:
    """Walk ``trees`` (directories, or single files) iteratively: regular files only,
    each inode once (by (st_dev, st_ino), also across trees), symbolic links below a
    tree never followed (a tree named itself is, as ``find -H``). Directories on
    another file system are skipped unless ``cross_mounts``. Entries that vanish or
    cannot be read are counted in ``skipped`` by reason (:data:`SKIP_REASONS`), never
    fatal. A tree that does not exist raises FileNotFoundError (NotADirectoryError
    etc. as os.stat raises them).

    One pass, as ``find`` does it: each directory opened (open(2), O_DIRECTORY) and
    listed (readdir), one ``lstat`` per entry that is not a symbolic link (readdir's
    d_type tells those apart without one) relative to the directory's fd (fstatat: no
    path walk from the root); no object is kept per file but its size (an int64 array)
    and, for the files the workload may map, its path. An inode is looked up in the
    set of those seen only if it has further links (st_nlink > 1) or a tree is a
    single file (which a directory tree may hold too).

    ``engine``: "native" (ppsize._core.scan.TreeWalk, one nogil loop) or "python"
    (the same walk with os.scandir, through the indirections the tests replace to
    inject errors: the reference the native walk is tested against). Both give the
    same ScanResult."""
    as_choice(engine, ("native", "python"), "scan engine")
    progress = progress or NO_PROGRESS
    t0 = time.perf_counter()
    trees = [os.fspath(t) for t in trees]
    roots = []
    for t in trees:
        st = os.stat(t)                     # raises for a missing tree: the caller's error
        roots.append((t, st))
    found = _Found()
    seen: set = set()                        # (st_dev, st_ino) of the files named as trees
    dirs: list = []                          # (path, st) of the directory trees, once each
    dirs_seen: set = set()
    for t, st in roots:
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) not in dirs_seen:
                dirs_seen.add((st.st_dev, st.st_ino))
                dirs.append((t, st))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen:
                found.skip("hardlink", t)
                continue
            seen.add(key)
            found.sizes.append(st.st_size)
            if st.st_size > 0:
                found.pick(t, os.path.basename(t), st.st_size, st.st_mode)
        else:
            found.skip("special", t)
    single = bool(seen)                      # a tree is a file: every inode checked
    walk = _walk_native if engine == "native" else _walk_py
    ndirs = walk(found, dirs, seen, single, cross_mounts, progress)
    progress.close()
    key = lambda e: e[0]
    return ScanResult(trees=trees, sizes=np.concatenate([np.frombuffer(found.sizes, dtype=np.int64)]
                                                        + found.more_sizes),
                      libs=sorted(found.libs, key=key), exes=sorted(found.exes, key=key),
                      data=sorted(found.data, key=key), dirs=ndirs, skipped=dict(found.skipped),
                      seconds=time.perf_counter() - t0, examples=found.examples)


class _Found:
    """What a walk found: sizes (int64, walk order), the picked files, the skips."""

    def __init__(self):
        self.sizes = array("q")
        self.more_sizes = []                 # int64 arrays after ``sizes`` (the native walk's)
        self.libs, self.exes, self.data = [], [], []
        self.skipped: Counter = Counter()
        self.examples: dict = {}

    @property
    def nr_files(self):
        return len(self.sizes) + sum(a.size for a in self.more_sizes)

    def skip(self, reason, path):
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 5:
            ex.append(path)

    def pick(self, path, name, size, mode):
        """A file the workload may map: a library, an executable, or the 1-in-32 sample
        (the file just appended to ``sizes``)."""
        idx = len(self.sizes) - 1
        if _is_lib(name):
            self.libs.append((path, idx, size))
        elif mode & 0o111:
            self.exes.append((path, idx, size))
        elif crc32(path.encode("utf-8", "surrogateescape")) & 31 == 0:
            self.data.append((path, idx, size))


_STEP = 1 << 15        # entries the native walk reads between progress updates


_MIN_UNITS = 8         # the parallel walk lists directories until this many subtrees wait


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the host has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def scan_workers() -> int:
    """Threads of the native walk: 2 with two CPUs or more, else 1."""
    return 2 if usable_cpus() >= 2 else 1


def _walk_native(found, dirs, seen, single, cross_mounts, progress, workers=None) -> int:
    """The walk below the directory trees in ppsize._core.scan (nogil); returns the
    number of directories listed. With ``workers`` > 1 (default :func:`scan_workers`)
    and no tree a single file, :func:`_walk_parallel`: the same result."""
    from .._core.scan import TreeWalk
    w = TreeWalk(cross_mounts=cross_mounts, single=single, base=len(found.sizes))
    for dev, ino in seen:
        w.see_file(dev, ino)
    for t, st in dirs:
        w.see_dir(st.st_dev, st.st_ino)
    for t, st in dirs:                       # a stack: the last tree is walked first
        w.push(os.fsencode(t), st.st_dev)
    workers = scan_workers() if workers is None else workers
    if workers > 1 and not single:
        return _walk_parallel(found, w, cross_mounts, progress, workers)
    while w.step(_STEP):
        progress.update(f"scanning: {found.nr_files + w.nr_files:,} files, {w.dirs:,} directories")
    _take(found, w, 0)
    return w.dirs


def _take(found, w, offset):
    """Append walk w's results to found (its file indices + offset)."""
    found.more_sizes.append(w.sizes())
    lists = (found.libs, found.exes, found.data)
    for kind, path, idx, size in w.picks():
        lists[kind].append((os.fsdecode(path), idx + offset, size))
    for reason, (count, examples) in zip(SKIP_REASONS, w.skipped()):
        if count:
            found.skipped[reason] += count
            ex = found.examples.setdefault(reason, [])
            ex.extend(os.fsdecode(p) for p in examples[:5 - len(ex)])


def _added(w) -> tuple:
    """The file and the directory inodes walk w added itself, as sets of (st_dev, st_ino)."""
    return tuple(set(map(tuple, w.added(d).tolist())) for d in (False, True))


def _rows(keys: set):
    return np.array(sorted(keys), dtype=np.uint64).reshape(-1, 2)


def _walk_parallel(found, w, cross_mounts, progress, workers) -> int:
    """The serial walk's result from ``workers`` threads. The trees waiting on w's
    stack (in the order the serial walk pops them) are the units of work; with fewer
    than ``_MIN_UNITS`` of them, each tree's top directory is listed first (in this
    thread, one TreeWalk each) and its subdirectories become the units. Each unit, a
    whole subtree, is walked by a TreeWalk of its own in a pool, starting from the
    inodes seen by w and by its tree's listing; the results are appended in the serial
    order. The one thing a unit's walk could do differently from the serial walk is
    finding new an inode that an earlier unit found (a hard link across units, a
    directory reached twice): each unit's finds (TreeWalk.added) are checked against
    everything found before it, and a unit (or a tree's listing) that found such an
    inode is walked again, alone, from all of those: as the serial walk would."""
    from .._core.scan import TreeWalk
    roots = w.take_stack()
    seed = (w.keys(), w.keys(dirs=True))

    def walk(unit, files, dirs_, count=None, slot=None):
        u = TreeWalk(cross_mounts=cross_mounts)
        u.see_keys(files)
        u.see_keys(dirs_, dirs=True)
        u.push(*unit)
        if count is not None:
            u.list_dirs(count)
            return u
        while u.step(_STEP):
            if slot is not None:
                done[slot] = u.nr_files
        return u

    # items in the serial order: (tree listing or None, unit, seed of the unit)
    items = []
    if len(roots) < _MIN_UNITS:
        for r in roots:
            top = walk(r, *seed, count=1)
            items.append((r, top, None))
            sub_seed = (np.concatenate([seed[0], top.added()]), np.concatenate([seed[1], top.added(True)]))
            items.extend((u, None, sub_seed) for u in top.take_stack())
    else:
        items = [(r, None, seed) for r in roots]
    done = [0] * len(items)
    ndirs = w.dirs
    _take(found, w, 0)
    seen = (set(map(tuple, seed[0].tolist())), set(map(tuple, seed[1].tolist())))
    redo_tree = None                           # a tree's listing was redone: its units are
    ex = ThreadPoolExecutor(workers, thread_name_prefix="ppsize-scan")
    try:
        futs = [None if top is not None else ex.submit(walk, unit, *useed, slot=i)
                for i, (unit, top, useed) in enumerate(items)]
        for i, ((unit, top, useed), fut) in enumerate(zip(items, futs)):
            if top is not None:                # a tree's top directory, listed above
                redo_tree = None
                u = top
            elif redo_tree is not None:        # inside a tree walked again whole: done
                fut.cancel()
                continue
            else:
                while True:
                    try:
                        u = fut.result(timeout=0.1)
                        break
                    except FutureTimeout:
                        progress.update(f"scanning: {found.nr_files + sum(done[i:]):,} files")
            added = _added(u)
            if not (added[0].isdisjoint(seen[0]) and added[1].isdisjoint(seen[1])):
                u = walk(unit, _rows(seen[0]), _rows(seen[1]))    # again, as the serial walk
                added = _added(u)
                if top is not None:
                    redo_tree = unit           # the whole tree was walked: skip its units
            _take(found, u, found.nr_files)
            seen[0].update(added[0])
            seen[1].update(added[1])
            ndirs += u.dirs
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    return ndirs


def _walk_py(found, dirs, seen, single, cross_mounts, progress) -> int:
    """The walk below the directory trees with os.scandir and lstat (through the
    indirections _opendir, _scandir and _lstat); returns the number of directories
    listed."""
    stack = [(t, st.st_dev) for t, st in dirs]        # the last tree first, as before
    dirs_seen = {(st.st_dev, st.st_ino) for _, st in dirs}
    lstat, scandir, opendir, append = _lstat, _scandir, _opendir, found.sizes.append
    skip, pick = found.skip, found.pick
    S_ISREG, S_ISDIR, S_ISLNK = stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK
    entries = ndirs = 0
    while stack:
        d, dev = stack.pop()
        ndirs += 1
        try:
            fd = opendir(d)
        except FileNotFoundError:
            skip("vanished", d)
            continue
        except OSError:                      # EACCES, ENOTDIR (replaced), EIO, ...
            skip("unreadable_dir", d)
            continue
        prefix = d if d.endswith("/") else d + "/"      # as os.path.join(d, name)
        subdirs = []
        try:
            try:
                it = scandir(fd)
            except OSError:
                skip("unreadable_dir", d)
                it = None
            if it is not None:
                with it:
                    try:
                        for entry in it:         # an OSError out of here: readdir failing halfway
                            entries += 1
                            if entries & 1023 == 0:
                                progress.update(f"scanning: {len(found.sizes):,} files, {ndirs:,} directories")
                            name = entry.name
                            try:
                                if entry.is_symlink():   # d_type (fstatat only where it is unknown)
                                    skip("symlink", prefix + name)
                                    continue
                                st = lstat(name, dir_fd=fd)  # fstatat: no path walk from the root
                            except FileNotFoundError:
                                skip("vanished", prefix + name)
                                continue
                            except PermissionError:
                                skip("permission", prefix + name)
                                continue
                            except OSError:
                                skip("error", prefix + name)
                                continue
                            mode = st.st_mode
                            if S_ISREG(mode):
                                if st.st_nlink > 1 or single:
                                    key = (st.st_dev, st.st_ino)
                                    if key in seen:
                                        skip("hardlink", prefix + name)
                                        continue
                                    seen.add(key)
                                size = st.st_size
                                append(size)
                                if size > 0:
                                    pick(prefix + name, name, size, mode)
                            elif S_ISDIR(mode):
                                key = (st.st_dev, st.st_ino)
                                if st.st_dev != dev and not cross_mounts:
                                    skip("other_fs", prefix + name)
                                elif key not in dirs_seen:
                                    dirs_seen.add(key)
                                    subdirs.append((prefix + name, st.st_dev))
                            elif S_ISLNK(mode):          # replaced by a link since readdir
                                skip("symlink", prefix + name)
                            else:
                                skip("special", prefix + name)
                    except OSError:
                        skip("unreadable_dir", d)
        finally:
            os.close(fd)
        subdirs.reverse()                    # depth first, in listing order
        stack.extend(subdirs)
    return ndirs
