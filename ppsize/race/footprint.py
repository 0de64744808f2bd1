"""What one step of the page-cache model reads and writes, for partial-order reduction.

:class:`TrackedWorld` is :class:`ppsize.race.model._World` recording, per step, the model
resources it touches: a page of the file (an int: the cache entry covering that page), the
scalars ``minord``, ``flags``, ``writer``, ``waiting``, ``xa``, ``irw``, and per actor *j*
``("rd", j)`` (its bit of the invalidate_lock reader mask), ``("pc", j)`` (its program
counter, which others read only as "has it finished") and ``("ref", j)`` (its folio
reference, which a remover detaches). ``member`` says whether the step changed the set of
cached folios (an insert or a removal), the only cache change :meth:`PageCacheSystem.check`
can see, and ``changed`` lists the folios inserted or removed.

:func:`may_touch` is the conservative footprint of an actor over its whole remaining life
(from its kind, index and the scenario's switches). ``PageCacheSystem.footprint_check`` verifies
that every explored step stays inside it, so the table is tested, not trusted.
"""
from __future__ import annotations

from .model import REF, _World


def _pages(f):
    return range(f[0], f[0] + (1 << f[1]))


class TrackedCache(list):
    """The cache list of a :class:`TrackedWorld`: indexing records the entry's pages."""
    __slots__ = ("w",)

    def __getitem__(self, pos):
        f = list.__getitem__(self, pos)
        self.w.R.update(_pages(f))
        return f

    def __setitem__(self, pos, v):
        old = list.__getitem__(self, pos)
        self.w.W.update(_pages(old))
        self.w.W.update(_pages(v))
        if (old[0], old[1]) != (v[0], v[1]):
            self.w.member = True
            self.w.changed += [old, v]
        list.__setitem__(self, pos, v)

    def __len__(self):                       # `not w.cache` (mapping_empty) reads every page
        if self.w.R is not None:
            self.w.R.update(range(self.w.npages))
        return list.__len__(self)


class TrackedActs(list):
    """The actors' locals: another actor reads only ``acts[j][PC]`` (finished yet?)."""
    __slots__ = ("w",)

    def __getitem__(self, j):
        self.w.R.add(("pc", j))
        return list.__getitem__(self, j)

    def __setitem__(self, j, v):
        self.w.W.add(("ref", j))
        list.__setitem__(self, j, v)


class TrackedLoc(list):
    """The stepping actor's own locals: only its folio reference is shared (removers
    detach it, refs_to reads it)."""
    __slots__ = ("w", "me")

    def __getitem__(self, k):
        if k.__class__ is int:
            if k == REF:
                self.w.R.add(("ref", self.me))
        elif REF in range(*k.indices(8)):
            self.w.R.add(("ref", self.me))
        return list.__getitem__(self, k)

    def __setitem__(self, k, v):
        if k.__class__ is int:
            if k == REF:
                self.w.W.add(("ref", self.me))
        elif REF in range(*k.indices(8)):
            self.w.W.add(("ref", self.me))
        list.__setitem__(self, k, v)


def _scalar(name):
    slot = "_" + name

    def get(self):
        if self.R is not None:
            self.R.add(name)
        return getattr(self, slot)

    def put(self, v):
        if self.R is not None:
            self.W.add(name)
        setattr(self, slot, v)
    return property(get, put)


class TrackedWorld(_World):
    """A :class:`_World` that records what the step of actor ``me`` reads and writes."""
    __slots__ = ("R", "W", "member", "changed", "me", "npages", "_minord", "_writer", "_waiting", "_xa",
                 "_flags", "_irw", "_readers")

    minord = _scalar("minord")
    writer = _scalar("writer")
    waiting = _scalar("waiting")
    xa = _scalar("xa")
    flags = _scalar("flags")
    irw = _scalar("irw")

    def __init__(self, state, me, npages):
        self.R = None
        _World.__init__(self, state)
        self.me, self.npages, self.member, self.changed = me, npages, False, []
        c = TrackedCache(self.cache)
        c.w = self
        self.cache = c
        a = TrackedActs(self.acts)
        a.w = self
        self.acts = a
        self.R, self.W = set(), set()

    # the reader mask: the stepping actor touches its own bit; _inv_write reads them all
    @property
    def readers(self):
        if self.R is not None:
            self.R.add(("rd", self.me))
        return self._readers

    @readers.setter
    def readers(self, v):
        if self.R is not None:
            self.W.add(("rd", self.me))
        self._readers = v

    def read_all_readers(self):
        self.R.update(("rd", j) for j in range(list.__len__(self.acts)))

    def find(self, idx):
        self.R.add(idx)
        return _World.find(self, idx)

    def find_exact(self, start, order):
        self.R.update(range(start, start + (1 << order)))
        return _World.find_exact(self, start, order)

    def conflict(self, start, order):
        self.R.update(range(start, start + (1 << order)))
        return _World.conflict(self, start, order)

    def next_folio(self, cur, lo, hi):
        self.R.update(range(max(cur, lo), hi))
        return _World.next_folio(self, cur, lo, hi)

    def next_dirty(self, cur, lo, hi):
        self.R.update(range(max(cur, lo), hi))
        return _World.next_dirty(self, cur, lo, hi)

    def insert(self, folio):
        self.W.update(_pages(folio))
        self.member = True
        self.changed.append(folio)
        _World.insert(self, folio)

    def remove(self, pos, system):
        f = list.__getitem__(self.cache, pos)
        self.W.update(_pages(f))
        self.R.update(("ref", j) for j in range(list.__len__(self.acts)))
        self.member = True
        self.changed.append(f)
        return _World.remove(self, pos, system)

    def refs_to(self, start, order, exclude):
        self.R.update(("ref", j) for j in range(list.__len__(self.acts)) if j != exclude)
        return _World.refs_to(self, start, order, exclude)

    def complete_io(self, i):
        # only actor i locks folios for its I/O, and nobody removes a locked folio: the
        # result depends on the folios it holds locked
        for f in list.__iter__(self.cache):
            if f[2] == i:
                self.R.update(_pages(f))
        return _World.complete_io(self, i)


#: the transition's program counters before (and at) its store of mapping->flags; from any
#: other one it never writes the min order or the flag word again
BEFORE_BUMP = ("lock", "wb", "bump_load", "bump_store")


def page_limit(system):
    """One past the last page a folio can cover: the file's end rounded up to the largest
    folio order (a max-order folio of a 6-page file covers pages 0..7)."""
    omax = max(system.P, system.sc.initial_order, system.target)
    return (((system.npages - 1) >> omax) + 1) << omax


def may_touch(system, j, post_bump=False):
    """(may read, may write): every resource actor ``j`` of ``system`` can touch from now on.

    Every folio is aligned to its order, and no folio is larger than ``Omax`` (the largest of
    the process page order, the initial folios' order and the transition's target order), so
    an adder at index x stays inside the Omax-aligned block of x (and, with async readahead,
    of the next range). ``post_bump``: the transition is past its bump."""
    sc = system.sc
    kind, x = system.kinds[j], system.index[j]
    n = len(system.kinds)
    omax = max(system.P, sc.initial_order, system.target)
    allpages = set(range(page_limit(system)))

    def block(i):
        s = i & ~((1 << omax) - 1)
        return set(range(s, s + (1 << omax)))
    refs = {("ref", k) for k in range(n)}
    rds = {("rd", k) for k in range(n)}
    own = {("pc", j), ("ref", j)}
    xa_w = {"xa"} if sc.bailout == "xa_lock" else set()
    if kind in ("fault", "read", "rcf", "write"):
        pages = block(x)
        if kind == "fault" and sc.async_ra:
            pages |= block((x & ~((1 << system.P) - 1)) + (1 << system.P))
        w = pages | own | {("rd", j)} | xa_w | ({"irw"} if kind == "write" else set())
        r = w | {"minord", "writer", "waiting", "xa", ("pc", 0)}
        return r, w
    if kind == "transition":
        w = allpages | own | refs | {"writer", "waiting"}
        if not post_bump:
            w |= {"minord", "flags"}
        if sc.bump == "xa_lock" or sc.bailout == "xa_lock":
            w.add("xa")
        return w | rds | {"xa", "minord"}, w
    if kind == "truncate":
        w = allpages | own | refs | {"writer", "waiting", "irw"}
        return w | rds | {"xa"}, w
    if kind == "reclaim":
        w = block(x) | own | refs
        return w | {"xa"}, w
    if kind in ("eio", "enospc"):
        w = own | {"flags"}
        return w, w
    raise AssertionError(kind)
