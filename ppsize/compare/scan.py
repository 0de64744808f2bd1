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
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

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


def scan_trees(trees, cross_mounts=False, progress=None) -> ScanResult:
    """Walk ``trees`` (directories, or single files) iteratively with
    ``os.scandir`` and ``lstat``: regular files only, each inode once (by
    (st_dev, st_ino), also across trees), symbolic links below a tree never
    followed (a tree named itself is, as ``find -H``). Directories on another
    file system are skipped unless ``cross_mounts``. Entries that vanish or cannot
    be read are counted in ``skipped`` by reason (:data:`SKIP_REASONS`), never
    fatal. A tree that does not exist raises FileNotFoundError (NotADirectoryError
    etc. as os.stat raises them).

    One pass, one ``lstat`` per entry that is not a symbolic link (readdir's d_type
    tells those apart without one, as ``find`` does), relative to the directory's fd
    (fstatat, as ``find`` does: no path walk from the root); no object is kept per file but
    its size (an int64 array) and, for the files the workload may map, its path. An
    inode is looked up in the set of those seen only if it has further links
    (st_nlink > 1) or a tree is a single file (which a directory tree may hold too)."""
    progress = progress or NO_PROGRESS
    t0 = time.perf_counter()
    trees = [os.fspath(t) for t in trees]
    roots = []
    for t in trees:
        st = os.stat(t)                     # raises for a missing tree: the caller's error
        roots.append((t, st))
    sizes = array("q")
    libs, exes, data = [], [], []
    seen: set = set()                        # (st_dev, st_ino) of files that may recur
    dirs_seen: set = set()
    skipped: Counter = Counter()
    examples: dict = {}
    ndirs = 0

    def skip(reason, path):
        skipped[reason] += 1
        ex = examples.setdefault(reason, [])
        if len(ex) < 5:
            ex.append(path)

    def pick(path, name, size, mode):
        # a file the workload may map: a library, an executable, or the 1-in-32 sample
        idx = len(sizes) - 1
        if _is_lib(name):
            libs.append((path, idx, size))
        elif mode & 0o111:
            exes.append((path, idx, size))
        elif crc32(path.encode("utf-8", "surrogateescape")) & 31 == 0:
            data.append((path, idx, size))

    stack = []
    single = False                           # a tree is a file: every inode checked
    for t, st in roots:
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) not in dirs_seen:
                dirs_seen.add((st.st_dev, st.st_ino))
                stack.append((t, st.st_dev))
        elif stat.S_ISREG(st.st_mode):
            single = True
            key = (st.st_dev, st.st_ino)
            if key in seen:
                skip("hardlink", t)
                continue
            seen.add(key)
            sizes.append(st.st_size)
            if st.st_size > 0:
                pick(t, os.path.basename(t), st.st_size, st.st_mode)
        else:
            skip("special", t)
    lstat, scandir, opendir, append = _lstat, _scandir, _opendir, sizes.append
    S_ISREG, S_ISDIR, S_ISLNK = stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK
    entries = 0
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
                                progress.update(f"scanning: {len(sizes):,} files, {ndirs:,} directories")
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
    progress.close()
    key = lambda e: e[0]
    return ScanResult(trees=trees, sizes=np.frombuffer(sizes, dtype=np.int64).copy(),
                      libs=sorted(libs, key=key), exes=sorted(exes, key=key),
                      data=sorted(data, key=key), dirs=ndirs, skipped=dict(skipped),
                      seconds=time.perf_counter() - t0, examples=examples)
