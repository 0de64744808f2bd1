"""``ppsize.PageCache``: the page cache of a :class:`ppsize.Kernel`: files (address spaces
with a min/max folio order), buffered reads with Linux's readahead, truncate, invalidation
and drop_caches. The work is done by :mod:`ppsize._core.pagecache` (nogil Cython); this
module validates arguments and shapes results.

    k = Kernel("4K", "1G")
    pc = PageCache(k)
    f = pc.create_file("/etc/passwd", 3000)
    pc.read(f, 0, 3000)        # {'bytes': 3000, 'pages_read': 1, 'folios_added': {0: 1}, ...}
    pc.meminfo_cached           # kB
    ids = pc.create_files(sizes, {0: "/bin/sh"})   # many files in one call: range of ids
    pc.read_all(ids)            # each read once in full, no Python object per file
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import numpy as np

from ._core import pagecache as _pc
from ._core.kcore import KMEM_CACHES
from ._validate import as_int as _int, as_int_or_size, in_range
from ._lock import new_lock, serialized
from .units import S_MAXBYTES, parse_size

__all__ = ["PageCache", "File"]


@dataclass(frozen=True)
class File:
    """A file of a PageCache (an inode with its address_space); ``id`` indexes the core."""
    id: int
    path: str
    cache: "PageCache"

    def __int__(self):
        return self.id

    def __index__(self):
        return self.id


def _errno_error(code, path, offset):
    if code == _pc.ELOOP:
        return OSError(code, f"read of {path} at {offset} livelocked: adding a folio at the "
                             f"min order kept failing with EEXIST (smaller folios in the way, "
                             f"as the range policy leaves them)")
    return OSError(code, f"read of {path} at {offset}: {os.strerror(code)}")


def _nameless_id(path):
    """k if ``path`` is "#k" (k decimal, no leading zeros), else None."""
    digits = path[1:]
    if path[:1] == "#" and digits.isascii() and digits.isdigit() and (digits[0] != "0" or digits == "0"):
        return int(digits)
    return None


class _FileTable:
    """The :class:`File` of each file id of a PageCache, made on first use, and the
    path -> id map. Files of a batch (:meth:`PageCache.create_files`) without a
    name are ``#<id>``; they cost nothing per file until asked for."""

    def __init__(self, cache):
        self.cache = cache
        self.n = 0
        self.made: dict[int, File] = {}
        self.paths: dict[int, str] = {}       # id -> path of every named file
        self.by_path: dict[str, int] = {}

    def __len__(self):
        return self.n

    def __getitem__(self, fid) -> File:
        f = self.made.get(fid)
        if f is None:
            if not 0 <= fid < self.n:
                raise IndexError(fid)
            f = self.made[fid] = File(fid, self.paths.get(fid) or f"#{fid}", self.cache)
        return f

    def id_of(self, path):
        """The id of the file at ``path``, or None."""
        fid = self.by_path.get(path)
        if fid is None:
            fid = _nameless_id(path)
            if fid is not None and (fid >= self.n or fid in self.paths):
                fid = None
        return fid

    def refuse_taken(self, path):
        if self.id_of(path) is not None:
            raise FileExistsError(errno.EEXIST, "file exists in the model", path)

    def refuse_batch(self, first, n, named):
        """FileExistsError if a name of the batch is taken, or is the ``#<id>`` of one
        of its nameless files, or an earlier file's name is."""
        paths = list(named.values())
        if len(set(paths)) != len(paths):
            raise FileExistsError(errno.EEXIST, "two files of the batch have one path")
        if self.n:                            # (an empty cache has nothing taken)
            for path in paths:
                self.refuse_taken(path)
        for path in [p for p in paths if p[:1] == "#"] + [p for p in self.by_path if p[:1] == "#"]:
            k = _nameless_id(path)
            if k is not None and first <= k < first + n and k not in named:
                raise FileExistsError(errno.EEXIST, "file exists in the model", path)

    def add(self, fid, path) -> File:
        assert fid == self.n
        self.n += 1
        self.paths[fid] = path
        self.by_path[path] = fid
        return self[fid]

    def add_batch(self, first, n, named):
        assert first == self.n
        self.n += n
        self.paths.update(named)
        self.by_path.update((p, i) for i, p in named.items())


@serialized
class PageCache:
    """Every file's page cache on ``kernel`` (a :class:`ppsize.Kernel`, or its
    ``KernelCore``). Folios come from the kernel's buddy allocator and live in its
    FolioTable (owner ``-2 - file id``, index = page index in the file).

    ``readahead``: bdi read_ahead_kb as bytes or a size string (default 128K =
    VM_READAHEAD_PAGES); ``io_size``: the bdi's optimal I/O size (io_pages; default =
    readahead), which lets reads larger than the window read more at once."""

    def __init__(self, kernel, readahead="128K", io_size=None):
        core = getattr(kernel, "core", kernel)
        self.kernel = kernel
        # a Kernel's page cache is the Kernel's (ppsize/_lock.py); on a bare KernelCore its own
        self._lock = getattr(kernel, "_lock", None) or new_lock()
        self.page_size = 1 << core.kshift
        ra = parse_size(readahead, "readahead")
        io = ra if io_size is None else parse_size(io_size, "io_size")
        self._c = _pc.PageCache(core, ra_pages=ra // self.page_size, io_pages=io // self.page_size)
        self._files = _FileTable(self)
        self._mixed: dict[int, set] = {}   # file id -> {(index, order)} left below min order

    # ------------------------------------------------------------ files
    @property
    def core(self):
        return self._c

    @property
    def max_pagecache_order(self) -> int:
        """MAX_PAGECACHE_ORDER = min(11, PMD order)."""
        return self._c.max_pagecache_order

    def create_file(self, path, size, large_folios=True, min_order=0) -> File:
        """A new inode of ``size`` bytes (int or size string). ``large_folios``:
        mapping_set_large_folios (max order MAX_PAGECACHE_ORDER) or order-0 folios only;
        ``min_order``: mapping_set_folio_order_range(min_order, max) as a filesystem with
        blocks larger than the page does (LBS)."""
        path = os.fspath(path)
        self._files.refuse_taken(path)
        size = parse_size(size, "file size")
        if size >= S_MAXBYTES:
            raise ValueError(f"file size {size:#x} beyond the model's s_maxbytes {S_MAXBYTES:#x}")
        max_order = self._order_range(large_folios, min_order)
        fid = self._c.new_file(size, min_order, max_order)
        return self._files.add(fid, path)

    def create_files(self, sizes, names=None, large_folios=True, min_order=0) -> range:
        """``len(sizes)`` new inodes in one call (one nogil loop; the same state as one
        :meth:`create_file` per size, in order): ``sizes`` (int64 array-like of
        bytes), ``names`` {position in ``sizes``: path}; a file without a name gets
        the path ``#<file id>``. No Python object is made per file until one is asked
        for (:meth:`file_of`). Returns the range of the new file ids."""
        raw = np.asarray(sizes)
        if raw.size and raw.dtype.kind not in "iu":
            raise TypeError(f"file sizes must be integers, not {raw.dtype} (e.g. {raw.reshape(-1)[0]!r})")
        if raw.dtype.kind == "u" and raw.size and raw.max() > np.iinfo(np.int64).max:
            raise ValueError(f"file size {int(raw.max())} beyond the model's s_maxbytes {S_MAXBYTES:#x}")
        sz = np.ascontiguousarray(raw, dtype=np.int64).reshape(-1)
        if sz.size and (sz.min() < 0 or sz.max() >= S_MAXBYTES):
            bad = int(sz[(sz < 0) | (sz >= S_MAXBYTES)][0])
            raise ValueError(f"file size {bad} not in 0 .. s_maxbytes {S_MAXBYTES:#x} - 1")
        max_order = self._order_range(large_folios, min_order)
        first = self._c.nr_files
        named = {}
        for i, path in (names or {}).items():
            if type(i) is not int:            # (the scan's indices are ints: checked below at once)
                i = _int(i, "names index")
            named[first + i] = os.fspath(path)
        if named and not first <= min(named) <= max(named) < first + sz.size:
            bad = min(named) if min(named) < first else max(named)
            in_range(bad - first, 0, sz.size - 1, "names index")
        self._files.refuse_batch(first, sz.size, named)
        got = self._c.new_files(sz, min_order, max_order)
        assert got == first
        self._files.add_batch(first, sz.size, named)
        return range(first, first + sz.size)

    def _order_range(self, large_folios, min_order) -> int:
        """The max order of a new file (-1: MAX_PAGECACHE_ORDER), checking min_order."""
        min_order = in_range(_int(min_order, "min_order"), 0, self.max_pagecache_order, "min_order")
        if not large_folios and min_order:
            raise ValueError("large_folios=False means order-0 folios only: min_order must be 0")
        return -1 if large_folios else 0

    @property
    def files(self) -> list:
        return [self._files[i] for i in range(len(self._files))]

    def file(self, path) -> File:
        fid = self._files.id_of(os.fspath(path))
        if fid is None:
            raise FileNotFoundError(errno.ENOENT, "no such file in the model", os.fspath(path))
        return self._files[fid]

    def file_of(self, f) -> File:
        """The :class:`File` named by ``f``: a File of this cache, a path or a file id."""
        return self._files[self._fid(f)]

    def _fid(self, f) -> int:
        if isinstance(f, File):
            if f.cache is not self:
                raise ValueError(f"{f.path!r} belongs to another PageCache")
            return f.id
        if isinstance(f, (str, os.PathLike)):
            return self.file(f).id
        fid = _int(f, "file")
        if not 0 <= fid < len(self._files):
            raise ValueError(f"unknown file id {fid} ({len(self._files)} files)")
        return fid

    # ------------------------------------------------------------ operations
    def read(self, f, offset, length) -> dict:
        """read(2) of ``length`` bytes at ``offset`` (filemap_read): short at EOF, 0 past
        it. Returns {'bytes', 'pages_read' (from disk), 'folios_added' {order: n},
        'sync_ra', 'async_ra'}. Negative offset/length: ValueError (EINVAL)."""
        fid = self._fid(f)
        offset = as_int_or_size(offset, "offset")
        length = as_int_or_size(length, "length")
        if offset < 0:
            raise ValueError(f"offset {offset} is negative (EINVAL)")
        if length < 0:
            raise ValueError(f"length {length} is negative (EINVAL)")
        if offset + length >= S_MAXBYTES:
            raise ValueError(f"offset + length {offset + length} beyond the model's s_maxbytes")
        before = self._c.counters()
        r = self._c.read(fid, offset, length)
        if r < 0:
            raise _errno_error(-r, self._files[fid].path, offset)
        after = self._c.counters()
        self.kernel.hooks_after_batch()          # a readahead order policy's bad returns
        added = {o: a - b for o, (a, b) in enumerate(zip(after["added"], before["added"])) if a != b}
        return {"bytes": r, "pages_read": after["pages_read"] - before["pages_read"],
                "folios_added": added, "sync_ra": after["sync_ra"] - before["sync_ra"],
                "async_ra": after["async_ra"] - before["async_ra"]}

    def read_all(self, files=None) -> int:
        """Read each file (default: all) once in full with one read(2) each; bytes read.
        ``files``: Files, paths or ids; a ``range`` of ids is read without a Python
        object per file (the range :meth:`create_files` returns)."""
        if files is None:
            files = range(len(self._files))
        if isinstance(files, range) and files.step == 1:
            if len(files) and not (0 <= files.start and files.stop <= len(self._files)):
                raise ValueError(f"files {files.start} .. {files.stop - 1}: unknown file ids "
                                 f"({len(self._files)} files)")
            r = self._c.read_range(files.start, len(files))
        else:
            fids = np.fromiter((self._fid(f) for f in files), dtype=np.int64)
            r = self._c.read_files(fids)
        self.kernel.hooks_after_batch()
        if r < 0:
            raise OSError(-r, os.strerror(-r))
        return r

    def get_folio(self, f, index, create=True, order=0):
        """__filemap_get_folio(index, FGP_CREAT if create, order): (index, order, pfn) of
        the folio, or None if absent and not created."""
        fid = self._fid(f)
        index = _int(index, "index")
        order = in_range(_int(order, "order"), 0, self.max_pagecache_order, "order")
        if index < 0:
            raise ValueError(f"index {index} is negative")
        pfn = self._c.get_folio(fid, index, create, order)
        if pfn == -_pc.ENOENT:
            return None
        if pfn < 0:
            raise OSError(-pfn, os.strerror(-pfn))
        fo = self._c.k.folios.as_numpy(used_only=True)     # pfn is a live cache folio
        return int(fo["index"][pfn]), int(fo["order"][pfn]), int(pfn)

    def seed(self, f, index, order) -> int:
        """Put folios into ``f``'s cache as a snapshot found them, without readahead:
        for each (index[i], order[i]) the folio of that order at that index is created
        (__filemap_get_folio(FGP_CREAT, order): one nogil loop per order) unless the
        index is cached already. Folios smaller than the file's min order come out at
        the min order; a folio that no longer fits (a neighbour cached first) is made
        smaller, as filemap_get_folio does. Indices at or past EOF are skipped (the
        model caches nothing beyond i_size). Counts as reads (``stats()["pages_read"]``);
        returns pages newly cached. Replay seeds a recorded page cache with it, so no
        fault finds cold what the real kernel had cached (``ppsize.recording.replay``)."""
        fid = self._fid(f)
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        ords = np.broadcast_to(np.asarray(order, dtype=np.int64), idx.shape)
        if idx.size and (idx.min() < 0 or ords.min() < 0 or ords.max() > self.max_pagecache_order):
            raise ValueError(f"seed: indices must be >= 0 and orders 0..{self.max_pagecache_order}")
        npages = -(-self.info(f)["i_size"] // self.page_size)
        keep = idx < npages
        idx, ords = idx[keep], ords[keep]
        before = self.nrpages(f)
        for o in np.unique(ords).tolist()[::-1]:        # the largest first, as they were
            sel = idx[ords == o]
            r = self._c.get_folio_batch(fid, sel, True, int(o))
            bad = r[(r < 0) & (r != -errno.EEXIST)]
            if bad.size:
                raise OSError(int(-bad[0]), f"seed: {os.strerror(int(-bad[0]))}")
        return self.nrpages(f) - before

    def kernel_folios(self):
        return self._c.k.folios.as_numpy()

    def truncate(self, f, size) -> None:
        """truncate(2) to ``size`` bytes: truncate_setsize + truncate_pagecache."""
        fid = self._fid(f)
        size = parse_size(size, "size")
        self._c.truncate(fid, size)

    def truncate_victim(self, f, size):
        """(first, last) pages of the folio a truncate to ``size`` removes whole although
        it holds data below ``size`` (it cannot be split), or None: the caller unmaps it
        first, as truncate_inode_folio does."""
        return self._c.truncate_victim(self._fid(f), parse_size(size, "size"))

    def invalidate(self, f, start=0, end=None) -> int:
        """invalidate_mapping_pages over pages [start, end] (POSIX_FADV_DONTNEED-like):
        pages removed; locked, dirty, mapped, pinned folios stay."""
        fid = self._fid(f)
        start = _int(start, "start")
        end = -1 if end is None else _int(end, "end")
        if start < 0:
            raise ValueError(f"start {start} is negative")
        return self._c.invalidate(fid, start, end)

    def drop_range(self, f, start, end) -> tuple:
        """Drop every folio overlapping pages [start, end] unless busy: (dropped, blocked)."""
        fid = self._fid(f)
        start, end = _int(start, "start"), _int(end, "end")
        if start < 0 or end < start:
            raise ValueError(f"bad page range [{start}, {end}]")
        return self._c.drop_range(fid, start, end)

    def set_folio_order_range(self, f, min_order, max_order) -> None:
        """mapping_set_folio_order_range (clamped to MAX_PAGECACHE_ORDER, max >= min)."""
        fid = self._fid(f)
        lo, hi = _int(min_order, "min_order"), _int(max_order, "max_order")
        if lo < 0 or hi < 0:
            raise ValueError(f"negative folio order ({lo}, {hi})")
        self._c.set_folio_order_range(fid, lo, hi)

    def drop_caches(self) -> int:
        """echo 1 > /proc/sys/vm/drop_caches: pages removed."""
        return self._c.drop_caches()

    def writeback(self, f) -> int:
        """Write back the file's dirty folios (filemap_fdatawrite +
        folio_end_writeback, I/O instant): PG_dirty and the dirty mark cleared.
        Returns pages cleaned; write-protecting the mappings (folio_mkclean) is
        Kernel.writeback's."""
        return self._c.writeback(self._fid(f))

    # ------------------------------------------------------------ inspection
    def folios(self, f) -> dict:
        """Cached folios of a file: {'index', 'order', 'pfn', 'flags'} arrays, ascending."""
        i, o, p, fl = self._c.folios_of(self._fid(f))
        return {"index": i, "order": o, "pfn": p, "flags": fl}

    def layout(self, f) -> list:
        """[(index, order), ...] of a file's folios."""
        i, o, _, _ = self._c.folios_of(self._fid(f))
        return list(zip(i.tolist(), o.tolist()))

    def info(self, f) -> dict:
        """i_size, min/max order, nrpages, pages_read, xa_nodes, file_ra_state (ra_*)."""
        return self._c.file_info(self._fid(f))

    def nrpages(self, f) -> int:
        return self._c.file_info(self._fid(f))["nrpages"]

    @property
    def cached_pages(self) -> int:
        return self._c.nr_cached

    @property
    def meminfo_cached(self) -> int:
        """Cached in /proc/meminfo, kB."""
        return self._c.nr_cached * self.page_size >> 10

    @property
    def xa_nodes(self) -> int:
        return self._c.pool.nr_nodes

    @property
    def xa_slab_bytes(self) -> int:
        """The radix_tree_node slab's pages (the kernel's cache, perfectly packed:
        KernelCore.cache_stats), in bytes."""
        return self._c.k.cache_stats(KMEM_CACHES["radix_tree_node"])["pages"] * self.page_size

    def stats(self) -> dict:
        c = self._c.counters()
        c["cached_kB"] = self.meminfo_cached
        c["xa_node_bytes"] = 576 * c["xa_nodes"]
        c["xa_slab_bytes"] = self.xa_slab_bytes
        return c

    @property
    def eof_order(self) -> int:
        """The large-unless-eof folio order (-1: off); Kernel.file_policy sets it."""
        return self._c.eof_order

    # ------------------------------------------------------------ mixed files
    def below_min(self, f) -> list:
        """[(index, order)] of the file's folios below its min order (only the
        `range` transition leaves any)."""
        i, o, _, _ = self._c.folios_of(self._fid(f))
        m = self._c.file_info(self._fid(f))["min_order"]
        keep = o < m
        return list(zip(i[keep].tolist(), o[keep].tolist()))

    def mark_mixed(self, f) -> None:
        """Record the folios below the min order a transition left in the file
        (the `range` policy's leftovers): check() then accepts exactly these (and
        no new ones); none left: the file is no longer mixed."""
        fid = self._fid(f)
        left = set(self.below_min(fid))
        if left:
            self._mixed[fid] = left
        else:
            self._mixed.pop(fid, None)

    def mixed(self) -> dict:
        """{path: {'min_order', 'folios': [(index, order)], 'pages'}} of the files
        holding folios below their min order now."""
        out = {}
        for fid in sorted(self._mixed):
            left = self.below_min(fid)
            if not left:
                del self._mixed[fid]
                continue
            out[self._files[fid].path] = {"min_order": self._c.file_info(fid)["min_order"],
                                          "folios": left, "pages": sum(1 << o for _, o in left)}
        return out

    def check(self) -> bool:
        """Every invariant: per-file XArray consistent, folios aligned, >= min order,
        no overlaps, nrpages = recount, FolioTable owner/index, Cached = sum. A
        mixed file (mark_mixed) may hold folios below its min order, but only
        those recorded."""
        self._c.check(mixed=set(self._mixed))
        for fid, allowed in self._mixed.items():
            extra = set(self.below_min(fid)) - allowed
            if extra:
                raise AssertionError(f"file {fid} ({self._files[fid].path}): folios below the min "
                                     f"order that no transition left: {sorted(extra)[:8]}")
        return True
