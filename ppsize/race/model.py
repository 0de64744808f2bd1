"""The page-cache model explored by :mod:`ppsize.race.checker`.

Shared state: one file of ``ranges`` process-sized ranges of ``1 << order`` pages each, its
page-cache entries (folio start, order, locked-by, uptodate, mapped, pinned), the mapping's min
folio order, ``mapping->invalidate_lock`` (an rwsem: writer, readers, writers waiting). Every
step is atomic; a step that touches the XArray is one ``xas_lock_irq`` critical section, which is
how the XArray lock is modelled. Folio locks live in the cache entries.

Each actor is a small state machine whose steps mirror named kernel functions. The kernel code
mirrored is the linux-mm tree (mm-unstable, early 2026; mm/filemap.c at 009cff43,
mm/readahead.c at 2aaa83f5, mm/truncate.c at 094476a7), which already carries the LBS min folio
order (mapping_min_folio_order, mapping_align_index).

Actor locals are ``(pc, ref, smin, order, cur, chk, lidx)``:
``ref`` the folio the actor holds a reference to, as ``(start, order, detached)`` (detached once
the folio left the page cache, i.e. ``folio->mapping == NULL``); ``smin`` the min order when the
actor started; ``order`` a cached (possibly stale) min order or the order being tried; ``cur`` an
index cursor; ``chk`` whether the early min-order check of ``__filemap_add_folio`` has passed;
``lidx`` the index a ``goto repeat`` looks up (-1: the actor's own index). Like Linux,
``__filemap_get_folio`` and ``do_read_cache_folio`` overwrite their ``index`` with
``mapping_align_index(index)`` before adding, so a ``goto repeat`` after -EEXIST looks up the
*aligned* index.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..filepolicy import TRANSITION_POLICIES as POLICIES   # range, drop-all, max-order-on-mmap
#: paths whose use of invalidate_lock can be switched off with ``unlocked``
PATHS = ("filemap_fault", "filemap_read", "read_cache_folio", "page_cache_ra_order")
DROPS = ("truncate", "invalidate")
BAILOUTS = ("none", "early", "xa_lock")
#: how the transition's min-order bump is ordered against xa_lock sections: plain (the kernel:
#: mapping_set_folio_min_order is a plain store to mapping->flags, no lock), xa_lock (the bump
#: under xa_lock_irq), cycle (an xa_lock_irq/xa_unlock_irq cycle after the bump), cycle-if-nonempty
#: (the cycle only when !mapping_empty(), as truncate_inode_pages_final does after AS_EXITING)
BUMPS = ("plain", "xa_lock", "cycle", "cycle-if-nonempty")
#: how mapping->flags is updated by the bump: plain (the kernel's read-modify-write, which can
#: lose a concurrent set_bit) or atomic (a try_cmpxchg loop, a fix)
RMWS = ("plain", "atomic")
KINDS = ("fault", "read", "rcf", "write", "truncate", "eio", "enospc", "reclaim")
#: actors that take no file index
NOINDEX = ("truncate", "eio", "enospc")
#: bits of mapping->flags (include/linux/pagemap.h, enum mapping_flags)
AS_EIO, AS_ENOSPC = 1 << 0, 1 << 1
#: which lock a write_begin caller holds (the write path: i_rwsem; or invalidate_lock too)
WRITE_LOCKS = ("i_rwsem", "invalidate_lock")
READAHEAD = ("fault", "all", "none")
#: functions of the model's retry loops that call cond_resched() (a cycle without any of them is
#: a busy loop: a soft lockup on a kernel without preemption)
RESCHED = ("find_get_entries", "truncate_inode_pages_range")
#: partial-order reduction stops trying a step kind that failed this often and never passed
SKIP_AFTER = 4
DEFAULT_BAILOUT = {"range": "none", "drop-all": "early", "max-order-on-mmap": "early"}

# locals
PC, REF, SMIN, ORD, CUR, CHK, LIDX, TRIED = range(8)
FREE = -1


@dataclass
class Scenario:
    """What to explore. ``actors`` are ``(kind, index)`` pairs besides the transition."""
    policy: str = "drop-all"
    unlocked: frozenset = frozenset()
    drop: str = "truncate"
    bailout: str | None = None          # None: the policy's default
    ranges: int = 2
    order: int = 1                      # the large process's page order (in model pages)
    cached: tuple = (0, 1, 3)           # indices holding an order-0 uptodate folio initially
    mapped: tuple = ()                  # of those, mapped by some (small-page) process
    pinned: tuple = ()                  # of those, long-term pinned (GUP FOLL_LONGTERM)
    actors: tuple | None = None         # None: the policy's default actors
    transition_range: int = 0           # the range the large process mmaps (policy `range`)
    readahead: str = "fault"            # sync readahead by: fault (do_sync_mmap_readahead),
                                        # all (also filemap_read's page_cache_sync_ra), none
    keep_index: bool = False            # a fix: goto repeat looks up the caller's index,
                                        # not the one mapping_align_index() returned
    bump: str = "plain"                 # the bump against xa_lock sections (see BUMPS)
    rmw: str = "plain"                  # the bump's update of mapping->flags (see RMWS)
    write_lock: str = "i_rwsem"         # what a write_begin caller holds (see WRITE_LOCKS)
    writeback: bool = True              # the transition writes dirty folios back before
                                        # dropping them (filemap_write_and_wait_range)
    dirty: tuple = ()                   # of the cached indices, dirty at the start
    initial_order: int = 0              # order of the initially cached folios (each cached
                                        # index lies in a folio of this order)
    async_ra: bool = False              # a fault hitting an uptodate folio starts async
                                        # readahead of the next range (page_cache_async_ra;
                                        # Linux does it on a PG_readahead folio, and the
                                        # initial folios carry no such mark: off)
    ra_fallback: bool = False           # readahead takes do_page_cache_ra ->
                                        # page_cache_ra_unbounded (min order read under
                                        # invalidate_lock) instead of page_cache_ra_order
    fault_retry: bool = True            # a fault finding its folio locked drops the lock and
                                        # returns VM_FAULT_RETRY once (FAULT_FLAG_ALLOW_RETRY)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {', '.join(POLICIES)}")
        bad = set(self.unlocked) - set(PATHS)
        if bad:
            raise ValueError(f"unknown path {sorted(bad)[0]!r}; choose from {', '.join(PATHS)}")
        self.unlocked = frozenset(self.unlocked)
        self.readahead = {True: "fault", False: "none"}.get(self.readahead, self.readahead)
        if self.readahead not in READAHEAD:
            raise ValueError(f"unknown readahead {self.readahead!r}; choose from "
                             f"{', '.join(READAHEAD)}")
        if self.drop not in DROPS:
            raise ValueError(f"unknown drop method {self.drop!r}; choose from {', '.join(DROPS)}")
        if self.bailout is None:
            self.bailout = DEFAULT_BAILOUT[self.policy]
        if self.bailout not in BAILOUTS:
            raise ValueError(f"unknown bail-out {self.bailout!r}; choose from {', '.join(BAILOUTS)}")
        for name, choices in (("bump", BUMPS), ("rmw", RMWS), ("write_lock", WRITE_LOCKS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name.replace('_', ' ')} {getattr(self, name)!r}; "
                                 f"choose from {', '.join(choices)}")
        if not 1 <= self.ranges <= 4:
            raise ValueError(f"ranges must be 1..4, got {self.ranges}")
        if not 1 <= self.order <= 2:
            raise ValueError(f"order must be 1..2, got {self.order}")
        npages = self.ranges << self.order
        for name in ("cached", "mapped", "pinned", "dirty"):
            vals = tuple(sorted(set(getattr(self, name))))
            for v in vals:
                if not 0 <= v < npages:
                    raise ValueError(f"{name} index {v} outside the file (0..{npages - 1})")
            setattr(self, name, vals)
        for v in self.mapped + self.pinned + self.dirty:
            if v not in self.cached:
                raise ValueError(f"index {v} is mapped/pinned/dirty but not cached")
        if not 0 <= self.initial_order or (1 << self.initial_order) > npages:
            raise ValueError(f"initial order must be 0..{npages.bit_length() - 1} (folios within "
                             f"the file), got {self.initial_order}")
        if not 0 <= self.transition_range < self.ranges:
            raise ValueError(f"transition range {self.transition_range} outside 0..{self.ranges - 1}")
        if self.actors is None:
            self.actors = default_actors(self.policy, npages)
        acts = []
        for kind, idx in self.actors:
            if kind not in KINDS:
                raise ValueError(f"unknown actor {kind!r}; choose from {', '.join(KINDS)}")
            if kind not in NOINDEX and not 0 <= idx < npages:
                raise ValueError(f"{kind} index {idx} outside the file (0..{npages - 1})")
            acts.append((kind, 0 if kind in NOINDEX else int(idx)))
        if len(acts) > 5:
            raise ValueError("at most 5 actors besides the transition")
        self.actors = tuple(acts)

    @property
    def npages(self):
        return self.ranges << self.order

    @property
    def max_order(self):
        """The file's largest folio order (mapping_max_folio_order of the model)."""
        return (self.npages - 1).bit_length() if self.npages > 1 else 0


def default_actors(policy, npages):
    # the last range is partially populated (see Scenario.cached): its first page is missing
    hole = npages - 2
    if policy == "range":
        # the thread: a fault on another, partially populated range
        return (("fault", hole),)
    return (("fault", hole), ("read", 1), ("rcf", hole))


class PageCacheSystem:
    """The model as a system for :func:`ppsize.race.checker.explore`.

    State: ``(min order, cache, inv writer, inv readers mask, inv waiting mask, actors,
    xa_lock holder, mapping->flags error bits, i_rwsem holder)``. A cache entry is
    ``(start, order, locked-by, uptodate, mapped, pinned, dirty)``."""

    def __init__(self, sc: Scenario):
        self.sc = sc
        self.P = sc.order
        self.npages = sc.npages
        self.target = sc.max_order if sc.policy == "max-order-on-mmap" else sc.order
        self.kinds = ["transition"] + [k for k, _ in sc.actors]
        self.index = [0] + [i for _, i in sc.actors]
        tname = {"range": f"mmap{1 << self.P}p[range {sc.transition_range}]",
                 "drop-all": f"mmap{1 << self.P}p[drop-all]",
                 "max-order-on-mmap": "first-mmap[max-order]"}[sc.policy]
        names = [tname]
        for k, i in sc.actors:
            names.append(k if k in NOINDEX else f"{k}@{i}")
        # disambiguate duplicates
        seen = {}
        for n, nm in enumerate(names):
            if names.count(nm) > 1:
                seen[nm] = seen.get(nm, 0) + 1
                names[n] = f"{nm}#{seen[nm]}"
        self.actor_names = names
        self.locked = {p: p not in sc.unlocked for p in PATHS}
        if sc.policy == "range":
            rs = sc.transition_range << self.P
            self.trange = (rs, rs + (1 << self.P))
        else:
            self.trange = (0, self.npages)
        self.handlers = {
            "transition": self._transition, "fault": self._fault, "read": self._read,
            "rcf": self._rcf, "write": self._write, "truncate": self._truncate_actor,
            "eio": self._set_error, "enospc": self._set_error, "reclaim": self._reclaim}
        # actors that record a writeback error, and the bit each sets
        self.err_bits = [(j, AS_EIO if k == "eio" else AS_ENOSPC)
                         for j, k in enumerate(self.kinds) if k in ("eio", "enospc")]
        #: actors whose finishing check() sees
        self.watched = {0} | {j for j, _ in self.err_bits}
        self._may = {}                  # (actor, past the bump) -> may_touch sets
        self._por_fails = {}            # step kind -> times it was no ample candidate

    # ----------------------------------------------------------------- state
    def initial(self):
        sc = self.sc
        o = sc.initial_order
        starts = sorted({self._align(i, o) for i in sc.cached})

        def has(s, idx):
            return any(s <= v < s + (1 << o) for v in idx)
        cache = tuple((s, o, FREE, True, has(s, sc.mapped), has(s, sc.pinned), has(s, sc.dirty))
                      for s in starts)
        acts = []
        for k in self.kinds:
            first = {"transition": "lock", "truncate": "ilock", "fault": "lookup",
                     "read": "batch", "rcf": "begin", "write": "w_ilock",
                     "eio": "seterr", "enospc": "seterr", "reclaim": "shrink"}[k]
            acts.append((first, None, -1, 0, 0, 0, -1, 0))
        # (min order, cache, inv writer, inv readers mask, inv waiting mask, actors,
        #  xa_lock holder, mapping->flags error bits, i_rwsem holder)
        return (0, cache, FREE, 0, 0, tuple(acts), FREE, 0, FREE)

    def done(self, state, i):
        return state[5][i][PC] == "done"

    def step(self, state, i):
        loc = state[5][i]
        if loc[PC] == "done":
            return None
        w = _World(state)
        loc = list(loc)                 # the handler changes it; stored back after the step
        r = self.handlers[self.kinds[i]](w, i, loc)
        if r is None:
            return None
        w.acts[i] = tuple(loc)
        func, saw, viol = r
        if w.viol:
            viol = list(viol) + [v.format(actor=self.actor_names[i]) for v in w.viol]
        return w.freeze(), func, saw, viol

    # ------------------------------------------------- partial-order reduction
    def tracked_step(self, state, i):
        """:meth:`step` through :class:`footprint.TrackedWorld`: ``(result, reads, writes,
        member)``, result as :meth:`step` returns it (``None``: blocked or finished)."""
        loc0 = state[5][i]
        if loc0[PC] == "done":
            return None, set(), set(), False
        if not hasattr(self, "_page_limit"):
            self._page_limit = _fp.page_limit(self)
        w = _fp.TrackedWorld(state, i, self._page_limit)
        loc = _fp.TrackedLoc(loc0)
        loc.w, loc.me = w, i
        r = self.handlers[self.kinds[i]](w, i, loc)
        R, W = w.R, w.W
        w.R = None                          # stop recording: freeze reads everything
        # a change of the cached folio set is invisible to check() once the transition is
        # done (min order fixed) when every folio it adds or removes is at or above the min
        # order: no "small folio" report can appear or go, and (no overlap before or after)
        # none of overlap
        member = w.member and not (
            state[5][0][PC] == "done" and all(f[1] >= state[0] for f in w.changed))
        if r is None:
            return None, R, W, member
        list.__setitem__(w.acts, i, tuple(loc))
        W.add(("pc", i))
        func, saw, viol = r
        if w.viol:
            viol = list(viol) + [v.format(actor=self.actor_names[i]) for v in w.viol]
        return (w.freeze(), func, saw, viol), R, W, member

    def may_touch(self, j, state=None):
        """(may read or write, may write) of actor ``j`` over its remaining life from
        ``state`` (footprint.may_touch; the transition's shrinks once past its bump)."""
        post = j == 0 and state is not None and state[5][0][PC] not in _fp.BEFORE_BUMP
        key = (j, post)
        may = self._may
        if key not in may:
            r, wr = _fp.may_touch(self, j, post)
            may[key] = (r | wr, wr)
        return may[key]

    def ample(self, state):
        """A step that may be explored alone from ``state`` (a singleton ample set), or None.

        Actor i's next step qualifies when it is enabled, commits no violation, changes
        neither the min order nor the flag word nor (but see :meth:`tracked_step`) the set of
        cached folios, and does not finish if check() watches its finishing (the transition,
        eio, enospc): so no :meth:`check` result changes, it is invisible. (Another actor's
        finishing step may be taken alone: a fair cycle cannot pass a state where it is
        enabled, since it stays enabled until taken and no cycle contains a finish.) It touches
        nothing that any other unfinished actor may touch over its remaining life
        (:func:`footprint.may_touch`): it is then independent of every step the others can
        take from here on, so it stays enabled and commutes with all of them. Returns
        ``(i, result)``, or else the step results of every actor as a dict (the search
        reuses them for the full expansion)."""
        acts = state[5]
        live = [j for j in range(len(acts)) if acts[j][PC] != "done"]
        mays = {j: self.may_touch(j, state) for j in live}
        ctx = (sum(1 << j for j in live), mays[0] if 0 in mays else None)
        fails = self._por_fails
        seen = {}
        for i in live:
            # a cheap, always sound shortcut: skip tracking a step of a kind (actor, pc,
            # who is live, the transition's phase) that was never a candidate in many tries
            key = (i, acts[i][PC], ctx[0], ctx[1] is not None and id(ctx[1]))
            if fails.get(key, 0) >= SKIP_AFTER:
                seen[i] = self.step(state, i)
                continue
            res, R, W, member = self.tracked_step(state, i)
            seen[i] = res
            ok = not (res is None or member or res[3] or "minord" in W or "flags" in W
                      or (res[0][5][i][PC] == "done" and i in self.watched)
                      or w_overlap(self, state, res[0]))
            if ok:
                W.discard(("pc", i))        # others read only whether actor 0 finished: it does not
                for j in live:
                    if j != i:
                        rw, wr = mays[j]
                        if not W.isdisjoint(rw) or not R.isdisjoint(wr):
                            ok = False
                            break
            if ok:
                fails[key] = -(1 << 30)     # once a candidate, always tried
                return i, res
            fails[key] = fails.get(key, 0) + 1
        return seen

    def footprint_check(self, state, i):
        """Verify the footprint machinery on one step: the tracked step gives the same result
        as :meth:`step`, and its reads and writes lie inside :meth:`may_touch` of actor i.
        Returns a list of problems (empty when fine)."""
        res, R, W, _ = self.tracked_step(state, i)
        out = []
        if res != self.step(state, i):
            out.append(f"tracked step of {self.actor_names[i]} differs from step")
        rw, wr = self.may_touch(i, state)
        if not R <= rw:
            out.append(f"{self.actor_names[i]} reads {sorted(map(str, R - rw))} outside may_touch")
        if not W <= wr:
            out.append(f"{self.actor_names[i]} writes {sorted(map(str, W - wr))} outside may_touch")
        return out

    def check(self, state):
        minord, cache = state[0], state[1]
        out = []
        end = -1
        for f in cache:
            if f[0] < end:
                out.append(f"overlapping page-cache entries at index {f[0]}")
            end = max(end, f[0] + (1 << f[1]))
        tloc = state[5][0]
        if tloc[PC] == "done":
            small = [f for f in cache if f[1] < minord]
            if small:
                f = small[0]
                out.append(f"after the min-order transition completed, folio {f[0]}/o{f[1]} "
                           f"below min order {minord} is still cached")
        for j, bit in self.err_bits:
            if state[5][j][PC] == "done" and not state[7] & bit:
                name = "AS_EIO" if bit == AS_EIO else "AS_ENOSPC"
                out.append(f"lost update of mapping->flags: {name}, set by {self.actor_names[j]} "
                           f"(mapping_set_error), is gone: the min-order bump's read-modify-write "
                           f"stored a stale flags word")
        return out

    def describe(self, state):
        minord, cache, wr, rd, wt, acts, xa, flags, irw = state
        parts = []
        for st, o, lk, up, mp, pn, dt in cache:
            fl = ("U" if up else "") + ("M" if mp else "") + ("P" if pn else "") + ("D" if dt else "")
            if lk != FREE:
                fl += f"L({self.actor_names[lk]})"
            parts.append(f"{st}/o{o}" + (f":{fl}" if fl else ""))
        s = f"min={minord} [" + " ".join(parts) + "]"
        if flags:
            s += " flags{" + ",".join(n for b, n in ((AS_EIO, "EIO"), (AS_ENOSPC, "ENOSPC"))
                                      if flags & b) + "}"
        lock = []
        if wr != FREE:
            lock.append("W:" + self.actor_names[wr])
        if rd:
            lock.append("R:" + ",".join(self.actor_names[j] for j in range(len(acts)) if rd >> j & 1))
        if wt:
            lock.append("wait:" + ",".join(self.actor_names[j] for j in range(len(acts)) if wt >> j & 1))
        if lock:
            s += " inv{" + " ".join(lock) + "}"
        if xa != FREE:
            s += f" xa_lock:{self.actor_names[xa]}"
        if irw != FREE:
            s += f" i_rwsem:{self.actor_names[irw]}"
        return s

    # --------------------------------------------------------------- helpers
    def _finish(self, w, i, loc, ref, check_order=True):
        """The actor returns with folio ``ref``; check the postcondition."""
        viol = []
        idx = self.index[i]
        if ref is not None:
            st, o, _ = ref
            if not st <= idx < st + (1 << o):
                viol.append(f"{self.actor_names[i]} finished with folio {st}/o{o} that does "
                            f"not cover index {idx}")
            elif check_order and o < loc[SMIN]:
                viol.append(f"{self.actor_names[i]} started after the transition, yet finished "
                            f"with folio {st}/o{o} below the min order {loc[SMIN]}")
        loc[:] = ("done", None, loc[SMIN], 0, 0, 0, -1, 0)
        return viol

    def _add(self, w, i, loc, start, order):
        """One step of filemap_add_folio -> __filemap_add_folio at ``start``/``order``
        (mm/filemap.c; linux-mm 009cff43).

        Returns ``None`` when the step must wait for xa_lock, else (outcome, saw,
        violations); outcome is "checked" (the function entry's min-order check passed, the
        xa_lock section is next), "entered" (inside xas_lock_irq with the order checked, the
        xas_store is next), "ok" (stored, locked) or "EEXIST". ``loc[CHK]``: 0 at the entry,
        1 past the entry check, 2 holding xa_lock.

        - ``none``: Linux. ``VM_BUG_ON_FOLIO(folio_order(folio) <
          mapping_min_folio_order(mapping))`` at the function entry, a lockless read of
          mapping->flags; a bump after it is not caught there.
        - ``early``: the thread's proposal, the same check at the entry returning -EEXIST.
        - ``xa_lock``: the check inside the ``xas_lock_irq`` section, before ``xas_store``.
          The bump is a plain store to mapping->flags that takes no xa_lock (unless the
          ``bump`` switch says so), so it can land between the check and the store: the
          section is two steps here.

        In ``none`` and ``early`` the section (xas_for_each_conflict .. xas_store) is one step:
        nothing the section reads can change while the lock is held, since every other
        change of the cache takes xa_lock, and those modes read no flags under it."""
        bail = self.sc.bailout
        if loc[CHK] == 0 and bail != "xa_lock":
            loc[CHK] = 1
            if order < w.minord:
                if bail == "early":
                    loc[CHK] = 0
                    return "EEXIST", f"entry: order {order} < min order {w.minord}: bail out (-EEXIST)", []
                return "checked", f"entry: order {order} < min order {w.minord}", [
                    f"VM_BUG_ON_FOLIO: {self.actor_names[i]} adds folio {start}/o{order} below "
                    f"min order {w.minord} (entry of __filemap_add_folio)"]
            return "checked", f"entry: order {order} >= min order {w.minord}", []
        if loc[CHK] == 2:
            # xas_store(&xas, folio); xas_unlock_irq
            w.insert((start, order, i, False, False, False, False))
            w.xa = FREE
            loc[CHK] = 0
            return "ok", f"xas_store {start}/o{order} (locked); xas_unlock_irq", []
        # xas_lock_irq
        if w.xa != FREE:
            return None
        c = w.conflict(start, order)
        if c is not None:
            loc[CHK] = 0
            return "EEXIST", f"xas_for_each_conflict: folio {c[0]}/o{c[1]} -> -EEXIST", []
        if bail == "xa_lock":
            if order < w.minord:
                loc[CHK] = 0
                return "EEXIST", (f"under xa_lock: order {order} < min order {w.minord}: "
                                  f"bail out (-EEXIST)"), []
            w.xa = i
            loc[CHK] = 2
            return "entered", (f"xas_lock_irq: no conflict, order {order} >= min order "
                               f"{w.minord}"), []
        w.insert((start, order, i, False, False, False, False))
        loc[CHK] = 0
        return "ok", f"stored {start}/o{order} (locked)", []

    def _start_min(self, w):
        """The min order an actor starting now must respect: the mapping's min order once
        the transition has completed, none (-2) while it is still in progress or before it.
        (An actor overlapping the transition may see small folios that the transition is
        about to drop; the cache invariants check that they do get dropped.)"""
        return w.minord if w.acts[0][PC] == "done" else -2

    def _align(self, idx, order):
        return idx & ~((1 << order) - 1)

    def _inv_read(self, w, i, path):
        """filemap_invalidate_lock_shared; None when it must wait."""
        if path is not None and not self.locked[path]:
            return "skipped (path does not take invalidate_lock)"
        if w.writer != FREE or w.waiting:
            return None
        w.readers |= 1 << i
        return "got invalidate_lock shared"

    def _inv_write(self, w, i):
        """filemap_invalidate_lock (down_write). Returns (acquired, saw) or None to wait."""
        w.read_all_readers()
        if w.writer == FREE and not w.readers:
            w.writer = i
            w.waiting &= ~(1 << i)
            return True, "got invalidate_lock exclusive"
        if w.waiting >> i & 1:
            return None
        w.waiting |= 1 << i
        return False, "invalidate_lock busy: writer waits (new readers now queue behind it)"

    def _drop_step(self, w, i, loc, mode, lo, hi, next_pc):
        """One step of dropping [lo, hi): truncate_inode_pages_range or mapping_try_invalidate
        (mm/truncate.c; linux-mm 094476a7). Their lookups (mapping_empty, find_get_entries,
        find_lock_entries) are lockless (RCU); only the deletion takes xa_lock."""
        transition = self.kinds[i] == "transition"
        if mode == "truncate":
            if loc[PC] == "walk":
                f = w.next_folio(loc[CUR], lo, hi)
                if f is None:
                    if loc[CUR] == lo:
                        loc[PC] = next_pc
                        return "truncate_inode_pages_range", "range empty: done", []
                    loc[CUR] = lo
                    return "find_get_entries", "nothing left after cursor: restart from start", []
                loc[REF] = (f[0], f[1], False)
                loc[PC] = "trunc"
                return "find_get_entries", f"folio {f[0]}/o{f[1]}", []
            # "trunc": folio_lock (waits) + truncate_inode_folio + folio_unlock
            st, o, det = loc[REF]
            if det:
                loc[REF], loc[PC], loc[CUR] = None, "walk", st + (1 << o)
                return "folio_lock", "folio already gone from the mapping: skip", []
            pos = w.find_exact(st, o)
            if w.cache[pos][2] not in (FREE, i) or w.xa not in (FREE, i):
                return None                     # folio_lock sleeps / xa_lock_irq spins
            f = w.cache[pos]
            saw = "locked"
            viol = []
            if f[4]:
                saw += ", unmap_mapping_folio"
                w.cache[pos] = f[:4] + (False,) + f[5:]
            if f[5]:
                saw += ", pinned folio leaves the cache (the pin keeps the page)"
            if f[6] and transition:
                viol.append(f"data lost: {self.actor_names[i]} truncated dirty folio "
                            f"{st}/o{o} (written after the transition's writeback, or never "
                            f"written back)")
            w.remove(pos, self)
            loc[REF], loc[PC], loc[CUR] = None, "walk", st + (1 << o)
            return "truncate_inode_folio", saw + ", deleted", viol
        # invalidate: one folio per step, a single pass that never waits
        f = w.next_folio(loc[CUR], lo, hi)
        if f is None:
            loc[PC] = next_pc
            return "mapping_try_invalidate", "no more folios: done", []
        if f[2] != FREE:
            loc[CUR] = f[0] + (1 << f[1])
            return "find_lock_entries", f"folio {f[0]}/o{f[1]} locked: folio_trylock fails, skip", []
        refs = w.refs_to(f[0], f[1], exclude=i)
        if f[4] or f[5] or f[6] or refs:
            loc[CUR] = f[0] + (1 << f[1])
            if f[6]:
                return "mapping_evict_folio", f"folio {f[0]}/o{f[1]} dirty: skip", []
            why = "mapped" if f[4] else "pinned" if f[5] else "referenced by " + ",".join(
                self.actor_names[j] for j in refs)
            return "mapping_evict_folio", f"folio {f[0]}/o{f[1]} refcount elevated ({why}): skip", []
        if w.xa != FREE:
            return None                         # __filemap_remove_folio under xa_lock_irq
        loc[CUR] = f[0] + (1 << f[1])
        w.remove(w.find_exact(f[0], f[1]), self)
        return "mapping_evict_folio", f"folio {f[0]}/o{f[1]} evicted", []

    # --------------------------------------------------------------- actors
    def _transition(self, w, i, loc):
        """The min-order transition of the policy, by the large-page process's mmap."""
        pc = loc[PC]
        sc = self.sc
        lo, hi = self.trange
        if pc == "lock":
            r = self._inv_write(w, i)
            if r is None:
                return None
            got, saw = r
            if got:
                loc[PC], loc[CUR] = ("wb" if sc.writeback else "bump_load"), lo
                if loc[SMIN] < 0:
                    loc[SMIN] = w.minord
            return "filemap_invalidate_lock", saw, []
        if pc == "wb":
            # filemap_write_and_wait_range (mm/filemap.c) over the range: do_writepages
            # locks each dirty folio, clears its dirty bit, writes it, waits for writeback
            f = w.next_dirty(loc[CUR], lo, hi)
            if f is None:
                loc[PC], loc[CUR] = "bump_load", lo
                return "filemap_write_and_wait_range", "no dirty folio left", []
            pos = w.find_exact(f[0], f[1])
            if f[2] != FREE:
                return None                     # writepages: folio_lock waits
            w.cache[pos] = f[:6] + (False,)
            loc[CUR] = f[0] + (1 << f[1])
            return ("filemap_write_and_wait_range -> do_writepages",
                    f"{f[0]}/o{f[1]} written back, clean", [])
        if pc == "bump_load":
            # mapping_set_folio_min_order -> mapping_set_folio_order_range
            # (include/linux/pagemap.h): mapping->flags = (mapping->flags & ~AS_FOLIO_ORDER_MASK)
            # | (min << AS_FOLIO_ORDER_MIN) | ...: a plain load and a plain store
            if sc.bump == "xa_lock":
                if w.xa != FREE:
                    return None
                w.xa = i
            old = w.minord
            if sc.policy == "max-order-on-mmap" and old >= self.target:
                if sc.bump == "xa_lock":
                    w.xa = FREE
                loc[PC] = "unlock"
                return "mapping_set_folio_order_range", "already switched", []
            if sc.rmw == "atomic":
                w.minord = max(old, self.target)
                if sc.bump == "xa_lock":
                    w.xa = FREE
                self._after_bump(loc, lo)
                return ("mapping_set_folio_min_order (try_cmpxchg loop on mapping->flags)",
                        f"min order {old} -> {w.minord}", [])
            loc[ORD], loc[LIDX] = max(old, self.target), w.flags
            loc[PC] = "bump_store"
            return ("mapping_set_folio_min_order: load mapping->flags"
                    + (" (under xa_lock_irq)" if sc.bump == "xa_lock" else ""),
                    f"min order {old}, error bits {_bits(w.flags)}", [])
        if pc == "bump_store":
            old, snap = w.minord, loc[LIDX]
            lost = w.flags & ~snap
            w.minord, w.flags = loc[ORD], snap
            if sc.bump == "xa_lock":
                w.xa = FREE
            saw = f"min order {old} -> {w.minord}"
            if lost:
                saw += f"; overwrote {_bits(lost)} set since the load"
            loc[ORD], loc[LIDX] = 0, -1
            self._after_bump(loc, lo)
            return ("mapping_set_folio_min_order: store mapping->flags"
                    + ("; xa_unlock_irq" if sc.bump == "xa_lock" else ""), saw, [])
        if pc == "cycle":
            # truncate_inode_pages_final (mm/truncate.c) after AS_EXITING: "cycle the tree
            # lock to make sure any ongoing tree modification that does not see AS_EXITING
            # is completed" -- there only when !mapping_empty()
            if sc.bump == "cycle-if-nonempty" and not w.cache:
                loc[PC] = "walk"
                return "mapping_empty", "empty: no xa_lock cycle", []
            if w.xa != FREE:
                return None
            loc[PC] = "walk"
            return "xa_lock_irq; xa_unlock_irq", "no adder inside an xa_lock section", []
        if pc in ("walk", "trunc"):
            nxt = "reread" if sc.policy == "range" else "unlock"
            r = self._drop_step(w, i, loc, sc.drop, lo, hi, nxt)
            if r is None:
                return None
            if loc[PC] == "reread":
                loc[CUR] = lo
            return r
        if pc == "reread":
            # page_cache_ra_unbounded over the range, min-order folios, skipping present ones
            cur = loc[CUR]
            nr = 1 << w.minord
            if cur >= hi and not loc[CHK]:
                loc[PC] = "rr_io"
                return "page_cache_ra_unbounded", "window filled", []
            if not loc[CHK]:
                if w.find(cur) is not None:
                    loc[CUR] = cur + nr
                    return "page_cache_ra_unbounded", f"xa_load({cur}): present, skip", []
            start = self._align(cur, w.minord)
            r = self._add(w, i, loc, start, w.minord)
            if r is None:
                return None
            res, saw, viol = r
            if res in ("ok", "EEXIST"):
                loc[CUR] = cur + nr
            return "filemap_add_folio", saw, viol
        if pc == "rr_io":
            n = w.complete_io(i)
            loc[PC] = "unlock"
            return "read_pages", f"{n} folio(s) read, uptodate, unlocked", []
        if pc == "unlock":
            w.writer = FREE
            loc[:] = ("done", None, loc[SMIN], 0, 0, 0, -1, 0)
            return "filemap_invalidate_unlock", "transition complete", []
        raise AssertionError(pc)

    def _after_bump(self, loc, lo):
        loc[PC] = "cycle" if self.sc.bump.startswith("cycle") else "walk"
        loc[CUR] = lo

    def _truncate_actor(self, w, i, loc):
        """Hole punch of the whole file (e.g. ext4_punch_hole): inode_lock, then
        filemap_invalidate_lock, truncate_pagecache_range."""
        pc = loc[PC]
        if pc == "ilock":
            if w.irw != FREE:
                return None
            w.irw = i
            loc[PC] = "lock"
            return "inode_lock", "got i_rwsem", []
        if pc == "lock":
            r = self._inv_write(w, i)
            if r is None:
                return None
            got, saw = r
            if got:
                loc[PC], loc[CUR] = "walk", 0
            return "filemap_invalidate_lock", saw, []
        if pc in ("walk", "trunc"):
            return self._drop_step(w, i, loc, "truncate", 0, self.npages, "unlock")
        if pc == "unlock":
            w.writer = FREE
            w.irw = FREE
            loc[:] = ("done", None, loc[SMIN], 0, 0, 0, -1, 0)
            return "filemap_invalidate_unlock; inode_unlock", "hole punched", []
        raise AssertionError(pc)

    def _reclaim(self, w, i, loc):
        """Memory pressure reaching the folio at index x once (mm/vmscan.c shrink_folio_list:
        folio_trylock; dirty, writeback, mapped folios are kept; __remove_mapping:
        xa_lock_irq, folio_ref_freeze fails while anybody else holds a reference;
        __filemap_remove_folio). A folio it cannot evict stays on the LRU: the actor ends."""
        f = w.find(self.index[i])
        if f is None:
            loc[:] = ("done", None, -2, 0, 0, 0, -1, 0)
            return "shrink_folio_list", "nothing cached there", []
        if f[2] != FREE or f[4] or f[5] or f[6] or w.refs_to(f[0], f[1], exclude=i):
            loc[:] = ("done", None, -2, 0, 0, 0, -1, 0)
            return "shrink_folio_list", f"{f[0]}/o{f[1]} busy (locked, mapped, dirty or referenced): kept", []
        if w.xa != FREE:
            return None
        w.remove(w.find_exact(f[0], f[1]), self)
        loc[:] = ("done", None, -2, 0, 0, 0, -1, 0)
        return "shrink_folio_list -> __remove_mapping", f"evicted {f[0]}/o{f[1]}", []

    def describe_cycle(self, steps):
        """How a livelock's cycle shows in a kernel: a soft lockup when no function of the
        cycle calls cond_resched() (on a kernel without preemption the CPU never leaves the
        loop: the watchdog reports a soft lockup), otherwise a livelock (the tasks spin,
        rescheduling, and never finish)."""
        if any(any(r in s.function for r in RESCHED) for s in steps):
            return "livelock (the loop calls cond_resched: other tasks run, these never finish)"
        return ("soft lockup on a kernel without preemption (the goto repeat loop has no "
                "cond_resched); a livelock with preemption")

    def _set_error(self, w, i, loc):
        """A writeback completion recording an error: mapping_set_error
        (include/linux/pagemap.h) -> set_bit(AS_EIO or AS_ENOSPC, &mapping->flags), an atomic
        RMW that a concurrent plain RMW of mapping->flags can overwrite."""
        bit = AS_EIO if self.kinds[i] == "eio" else AS_ENOSPC
        w.flags |= bit
        loc[:] = ("done", None, -2, 0, 0, 0, -1, 0)
        return "mapping_set_error -> set_bit", f"{_bits(bit)} set", []

    def _get_folio_create(self, w, i, loc, x, found_pc):
        """The ``repeat:`` / ``no_page:`` part of __filemap_get_folio (mm/filemap.c) with
        FGP_CREAT: look up ``index``; on a miss allocate at the min order and overwrite
        ``index`` with mapping_align_index(), which is also what a later goto repeat looks
        up (unless the keep-index fix)."""
        li = x if loc[LIDX] < 0 else loc[LIDX]
        f = w.find(li)
        if f is not None:
            loc[REF] = (f[0], f[1], False)
            loc[PC] = found_pc
            return ("__filemap_get_folio -> filemap_get_entry",
                    f"index {li}: found {f[0]}/o{f[1]}", [])
        m = w.minord
        order = min(m, self.sc.max_order)
        loc[ORD], loc[CUR] = order, self._align(li, m)
        loc[LIDX] = -1 if self.sc.keep_index else loc[CUR]
        loc[PC] = "add"
        return ("__filemap_get_folio -> filemap_get_entry",
                f"index {li}: miss; min order {m}: allocate order {order} at {loc[CUR]}", [])

    def _get_folio_add(self, w, i, loc, ok_pc):
        """The filemap_add_folio of __filemap_get_folio's no_page path; on -EEXIST the order
        loop ends at the min order and it does goto repeat."""
        r = self._add(w, i, loc, loc[CUR], loc[ORD])
        if r is None:
            return None
        res, saw, viol = r
        if res == "ok":
            loc[REF] = (loc[CUR], loc[ORD], False)
            loc[PC] = ok_pc
        elif res == "EEXIST":
            loc[PC] = "get"
            saw += "; goto repeat"
        return "filemap_add_folio", saw, viol

    def _fault(self, w, i, loc):
        """filemap_fault on index x (a read fault by some process that mmapped the file)."""
        x = self.index[i]
        pc = loc[PC]
        held = w.readers >> i & 1
        if pc == "lookup":
            if self.sc.policy == "max-order-on-mmap" and w.acts[0][PC] != "done":
                return None                    # nobody faults before the (first) mmap returns
            if loc[SMIN] == -1:
                loc[SMIN] = self._start_min(w)
            f = w.find(x)
            nxt = self._align(x, self.P) + (1 << self.P)
            if f is not None:
                loc[REF] = (f[0], f[1], False)
                if f[3] and self.sc.async_ra and not loc[TRIED] and nxt < self.npages:
                    # do_async_mmap_readahead -> page_cache_async_ra of the next range
                    loc[PC] = "ara"
                    saw = f"found {f[0]}/o{f[1]} uptodate: async readahead at {nxt}"
                elif f[3]:
                    loc[PC] = "lock"
                    saw = f"found {f[0]}/o{f[1]} uptodate"
                else:
                    loc[PC] = "inv_lock_found"
                    saw = f"found {f[0]}/o{f[1]} not uptodate"
            else:
                loc[PC] = "ra" if self.sc.readahead != "none" else "inv_lock"
                saw = "miss: major fault"
            return "filemap_get_folio", saw, []
        if pc in ("inv_lock", "inv_lock_found"):
            saw = self._inv_read(w, i, "filemap_fault")
            if saw is None:
                return None
            loc[PC] = "get" if pc == "inv_lock" else "lock"
            return "filemap_invalidate_lock_shared", saw, []
        if pc.startswith("ara"):
            return self._ra(w, i, loc, self._align(x, self.P) + (1 << self.P), "lock", "ara")
        if pc.startswith("ra"):
            if pc == "ra" and self.sc.fault_retry and not loc[TRIED]:
                loc[TRIED] = 1          # do_sync_mmap_readahead: maybe_unlock_mmap_for_io
            return self._ra(w, i, loc, x, "inv_lock")
        if pc == "get":
            # __filemap_get_folio(FGP_CREAT|FGP_FOR_MMAP)
            r = self._get_folio_create(w, i, loc, x, "lock")
            if loc[PC] == "lock":
                loc[LIDX] = -1
            return r
        if pc == "add":
            return self._get_folio_add(w, i, loc, "unlock_mmap")
        if pc == "unlock_mmap":
            st, o, _ = loc[REF]
            w.unlock(st, o, i)
            loc[PC] = "lock"
            return "folio_unlock (FGP_FOR_MMAP)", f"{st}/o{o}", []
        if pc == "lock":
            # lock_folio_maybe_drop_mmap + "Did it get truncated?" + uptodate check
            st, o, det = loc[REF]
            if not det:
                pos = w.find_exact(st, o)
                if w.cache[pos][2] != FREE:
                    if self.sc.fault_retry and not loc[TRIED]:
                        # lock_folio_maybe_drop_mmap: trylock failed, drop mmap_lock, sleep
                        loc[TRIED] = 1
                        return ("lock_folio_maybe_drop_mmap",
                                f"{st}/o{o} locked: drop mmap_lock (fpin), __folio_lock", [])
                    return None               # __folio_lock sleeps
            else:
                loc[REF] = None
                loc[PC] = "get" if held else "inv_lock"
                return "folio_lock", f"{st}/o{o} truncated (folio->mapping != mapping): retry_find", []
            f = w.cache[pos]
            w.cache[pos] = f[:2] + (i,) + f[3:]
            bug = []
            if not st <= x < st + (1 << o):
                bug = [f"VM_BUG_ON_FOLIO(!folio_contains(folio, {x})) in filemap_fault: "
                       f"__filemap_get_folio returned {st}/o{o} (goto repeat looked up the "
                       f"aligned index)"]
            if not f[3]:
                if not held:
                    w.cache[pos] = f
                    loc[REF], loc[PC] = None, "inv_lock"
                    return "folio_lock", f"{st}/o{o} not uptodate, no invalidate_lock: retry_find", []
                loc[PC] = "read"
                return "folio_lock", f"{st}/o{o} locked, not uptodate: page_not_uptodate", bug
            if loc[TRIED] == 1:
                # "if (fpin) { folio_unlock(folio); goto out_retry; }": VM_FAULT_RETRY, the
                # fault is redone with FAULT_FLAG_TRIED
                w.cache[pos] = f
                w.readers &= ~(1 << i)
                loc[REF], loc[PC], loc[TRIED] = None, "lookup", 2
                return ("folio_lock; out_retry", f"{st}/o{o} uptodate; mmap_lock was dropped: "
                        f"unlock, filemap_invalidate_unlock_shared, VM_FAULT_RETRY", bug)
            loc[PC] = "inv_unlock" if held else "map"
            return "folio_lock", f"{st}/o{o} locked, uptodate", bug
        if pc == "read":
            st, o, _ = loc[REF]
            w.complete_one(st, o)
            if self.sc.fault_retry and loc[TRIED] < 2:
                # page_not_uptodate: maybe_unlock_mmap_for_io, then "if (fpin) goto out_retry"
                w.readers &= ~(1 << i)
                loc[REF], loc[PC], loc[TRIED] = None, "lookup", 2
                return ("filemap_read_folio; out_retry", f"{st}/o{o} uptodate, unlocked; "
                        f"filemap_invalidate_unlock_shared, VM_FAULT_RETRY", [])
            loc[REF], loc[PC] = None, "get"
            return "filemap_read_folio", f"{st}/o{o} uptodate, unlocked; retry_find", []
        if pc == "inv_unlock":
            w.readers &= ~(1 << i)
            loc[PC] = "map"
            return "filemap_invalidate_unlock_shared", "", []
        if pc == "map":
            # do_read_fault -> finish_fault -> set_pte_range; folio_unlock
            st, o, det = loc[REF]
            viol = []
            if det:
                viol.append(f"{self.actor_names[i]} maps folio {st}/o{o} that is no longer in "
                            f"the page cache")
            else:
                pos = w.find_exact(st, o)
                f = w.cache[pos]
                w.cache[pos] = f[:2] + (FREE, f[3], True) + f[5:]
            viol += self._finish(w, i, loc, loc[REF])
            return "finish_fault -> set_pte_range; folio_unlock", f"mapped {st}/o{o}", viol
        raise AssertionError(pc)

    def _write(self, w, i, loc):
        """A buffered write(2) at index x: generic_perform_write under inode_lock (i_rwsem),
        a_ops->write_begin -> __filemap_get_folio(FGP_WRITEBEGIN) (= FGP_LOCK | FGP_WRITE |
        FGP_CREAT | FGP_STABLE; filemap_grab_folio and iomap_get_folio are the same call),
        copy, write_end: folio_mark_dirty, folio_unlock (mm/filemap.c, linux-mm 009cff43).
        It adds folios under i_rwsem, not invalidate_lock, unless ``write_lock`` says so."""
        x = self.index[i]
        pc = loc[PC]
        if pc == "w_ilock":
            if w.irw != FREE:
                return None
            if loc[SMIN] == -1:
                loc[SMIN] = self._start_min(w)
            w.irw = i
            loc[PC] = "w_inv" if self.sc.write_lock == "invalidate_lock" else "get"
            return "inode_lock", "got i_rwsem", []
        if pc == "w_inv":
            saw = self._inv_read(w, i, None)
            if saw is None:
                return None
            loc[PC] = "get"
            return "filemap_invalidate_lock_shared", saw, []
        if pc == "get":
            return self._get_folio_create(w, i, loc, x, "w_flock")
        if pc == "add":
            return self._get_folio_add(w, i, loc, "w_copy")
        if pc == "w_flock":
            # FGP_LOCK: folio_lock; "Has the page been truncated?" -> goto repeat;
            # VM_BUG_ON_FOLIO(!folio_contains(folio, index), folio) with index as overwritten
            st, o, det = loc[REF]
            if det:
                loc[REF], loc[PC] = None, "get"
                return "folio_lock", f"{st}/o{o} truncated (folio->mapping != mapping): goto repeat", []
            pos = w.find_exact(st, o)
            f = w.cache[pos]
            if f[2] != FREE:
                return None
            w.cache[pos] = f[:2] + (i,) + f[3:]
            li = x if loc[LIDX] < 0 else loc[LIDX]
            viol = []
            if not st <= li < st + (1 << o):
                viol.append(f"VM_BUG_ON_FOLIO(!folio_contains(folio, {li})) in "
                            f"__filemap_get_folio for {self.actor_names[i]}")
            elif not st <= x < st + (1 << o):
                viol.append(f"silent wrong folio: {self.actor_names[i]}'s write_begin got folio "
                            f"{st}/o{o}, which does not contain index {x}; the FGP_LOCK "
                            f"VM_BUG_ON_FOLIO(!folio_contains(folio, index)) checks the aligned "
                            f"index {li} after goto repeat and passes")
            loc[PC] = "w_copy"
            return "__filemap_get_folio (FGP_LOCK) -> folio_lock", f"{st}/o{o} locked", viol
        if pc == "w_copy":
            st, o, det = loc[REF]
            assert not det                      # we hold its lock: truncation waits
            pos = w.find_exact(st, o)
            f = w.cache[pos]
            w.cache[pos] = f[:2] + (FREE, True) + f[4:6] + (True,)
            w.readers &= ~(1 << i)
            w.irw = FREE
            viol = self._finish(w, i, loc, loc[REF])
            return ("copy_folio_from_iter; write_end: folio_mark_dirty, folio_unlock; "
                    "inode_unlock", f"{st}/o{o} uptodate, dirty", viol)
        raise AssertionError(pc)

    def _ra(self, w, i, loc, x, after, pre="ra"):
        """Readahead over the range of x (mm/readahead.c, linux-mm 2aaa83f5), for
        do_sync_mmap_readahead, page_cache_sync_ra or (``pre`` "ara") page_cache_async_ra;
        then continue at ``after``. page_cache_ra_order reads the min order before taking
        invalidate_lock; with ``ra_fallback``, do_page_cache_ra -> page_cache_ra_unbounded
        reads it (mapping_min_folio_nrpages) under the lock."""
        pc = loc[PC][len(pre):]
        held = w.readers >> i & 1
        fb = self.sc.ra_fallback
        if pc == "":
            loc[PC] = pre + "_lock"
            if fb:
                return "do_page_cache_ra", "fallback: page_cache_ra_unbounded", []
            # min_order is read before invalidate_lock is taken
            loc[ORD] = w.minord
            return "page_cache_ra_order", f"new_order = min order {w.minord}", []
        if pc == "_lock":
            saw = self._inv_read(w, i, "page_cache_ra_order")
            if saw is None:
                return None
            rs = self._align(x, self.P)
            loc[CUR] = self._align(rs, w.minord)      # mapping_align_index, under the lock
            if fb:
                loc[ORD] = w.minord
                saw += f"; min order {w.minord}"
            loc[PC] = pre + "_add"
            return "filemap_invalidate_lock_shared", saw, []
        if pc == "_add":
            cur, order = loc[CUR], loc[ORD]
            if cur & ((1 << order) - 1):
                order = (cur & -cur).bit_length() - 1
            r = self._add(w, i, loc, cur, order)
            if r is None:
                return None
            res, saw, viol = r
            if res == "ok":
                loc[CUR] = cur + (1 << order)
                if loc[CUR] >= self._align(x, self.P) + (1 << self.P):
                    loc[PC] = pre + "_io"
            elif res == "EEXIST":
                loc[PC] = pre + "_io"
            return "ra_alloc_folio -> filemap_add_folio", saw, viol
        if pc == "_io":
            n = w.complete_io(i)
            if held:
                w.readers &= ~(1 << i)
            loc[PC] = after
            return "read_pages; filemap_invalidate_unlock_shared", f"{n} folio(s) read", []
        raise AssertionError(pc)

    def _read(self, w, i, loc):
        """Buffered read(2) at index x: filemap_read -> filemap_get_pages."""
        x = self.index[i]
        pc = loc[PC]
        if pc.startswith("ra"):
            return self._ra(w, i, loc, x, "batch2")
        if pc in ("batch", "batch2"):
            if loc[SMIN] == -1:
                loc[SMIN] = self._start_min(w)
            f = w.find(x)
            if f is None:
                if pc == "batch" and self.sc.readahead == "all":
                    loc[PC] = "ra"
                    return "filemap_get_read_batch", "miss: page_cache_sync_ra", []
                loc[PC] = "create"
                return "filemap_get_read_batch", "miss", []
            loc[REF] = (f[0], f[1], False)
            if f[3]:
                viol = self._finish(w, i, loc, loc[REF])
                return "filemap_get_read_batch", f"{f[0]}/o{f[1]} uptodate: copy_folio_to_iter", viol
            loc[PC] = "upd_lock"
            return "filemap_get_read_batch", f"{f[0]}/o{f[1]} not uptodate", []
        if pc == "create":
            # filemap_create_folio: min_order is read before invalidate_lock is taken
            loc[ORD] = w.minord
            loc[PC] = "c_lock"
            return "filemap_create_folio -> filemap_alloc_folio", f"order {w.minord}", []
        if pc == "c_lock":
            saw = self._inv_read(w, i, "filemap_read")
            if saw is None:
                return None
            loc[PC] = "c_add"
            return "filemap_invalidate_lock_shared", saw, []
        if pc == "c_add":
            o = loc[ORD]
            start = self._align(x, o)
            r = self._add(w, i, loc, start, o)
            if r is None:
                return None
            res, saw, viol = r
            if res == "ok":
                loc[REF] = (start, o, False)
                loc[PC] = "c_read"
            elif res == "EEXIST":
                w.readers &= ~(1 << i)
                loc[PC] = "batch"
                saw += "; AOP_TRUNCATED_PAGE: filemap_invalidate_unlock_shared, retry"
            return "filemap_add_folio", saw, viol
        if pc == "c_read":
            st, o, _ = loc[REF]
            w.complete_one(st, o)
            w.readers &= ~(1 << i)
            viol = self._finish(w, i, loc, loc[REF])
            return "filemap_read_folio; filemap_invalidate_unlock_shared", f"{st}/o{o} uptodate", viol
        if pc == "upd_lock":
            saw = self._inv_read(w, i, "filemap_read")
            if saw is None:
                return None
            loc[PC] = "upd_try"
            return "filemap_update_page -> filemap_invalidate_lock_shared", saw, []
        if pc == "upd_try":
            st, o, det = loc[REF]
            pos = None if det else w.find_exact(st, o)
            if pos is not None and w.cache[pos][2] != FREE:
                w.readers &= ~(1 << i)
                loc[PC] = "upd_wait"
                return "folio_trylock", f"{st}/o{o} busy: unlock invalidate_lock, wait", []
            w.readers &= ~(1 << i)
            if pos is None:
                loc[REF], loc[PC] = None, "batch"
                return "folio_trylock", f"{st}/o{o} !folio->mapping: AOP_TRUNCATED_PAGE", []
            f = w.cache[pos]
            saw = f"{st}/o{o} uptodate" if f[3] else f"{st}/o{o} filemap_read_folio"
            w.complete_one(st, o)
            viol = self._finish(w, i, loc, loc[REF])
            return "folio_trylock", saw + "; filemap_invalidate_unlock_shared", viol
        if pc == "upd_wait":
            st, o, det = loc[REF]
            if not det:
                pos = w.find_exact(st, o)
                if w.cache[pos][2] != FREE:
                    return None
            loc[REF], loc[PC] = None, "batch"
            return "folio_put_wait_locked", "unlocked: AOP_TRUNCATED_PAGE, retry", []
        raise AssertionError(pc)

    def _rcf(self, w, i, loc):
        """A read_cache_folio caller (do_read_cache_folio); the caller holds invalidate_lock
        shared around it unless path read_cache_folio is switched to unlocked."""
        x = self.index[i]
        pc = loc[PC]
        if pc == "begin":
            saw = self._inv_read(w, i, "read_cache_folio")
            if saw is None:
                return None
            loc[SMIN] = self._start_min(w)
            loc[PC] = "lookup"
            return "filemap_invalidate_lock_shared (caller)", saw, []
        if pc == "lookup":
            li = x if loc[LIDX] < 0 else loc[LIDX]
            f = w.find(li)
            if f is None:
                loc[PC] = "alloc"
                return "filemap_get_folio", f"index {li}: miss", []
            loc[REF] = (f[0], f[1], False)
            if f[3]:
                return self._rcf_out(w, i, loc, "filemap_get_folio",
                                     f"index {li}: {f[0]}/o{f[1]} uptodate")
            loc[PC] = "trylock"
            return "filemap_get_folio", f"index {li}: {f[0]}/o{f[1]} not uptodate", []
        if pc == "alloc":
            loc[ORD] = w.minord
            loc[PC] = "add"
            return "filemap_alloc_folio(mapping_min_folio_order)", f"order {w.minord}", []
        if pc == "add":
            if not loc[CHK]:
                # index = mapping_align_index(mapping, index): re-reads the min order
                li = x if loc[LIDX] < 0 else loc[LIDX]
                loc[CUR] = self._align(li, w.minord)
                loc[LIDX] = -1 if self.sc.keep_index else loc[CUR]
            start = loc[CUR]
            r = self._add(w, i, loc, start, loc[ORD])
            if r is None:
                return None
            res, saw, viol = r
            if res == "ok":
                loc[REF] = (start, loc[ORD], False)
                loc[PC] = "filler"
            elif res == "EEXIST":
                loc[PC] = "lookup"
                saw += "; goto repeat"
            return "filemap_add_folio", saw, viol
        if pc == "filler":
            st, o, _ = loc[REF]
            w.complete_one(st, o)
            return self._rcf_out(w, i, loc, "filemap_read_folio", f"{st}/o{o} uptodate, unlocked")
        if pc == "trylock":
            st, o, det = loc[REF]
            pos = None if det else w.find_exact(st, o)
            if pos is not None and w.cache[pos][2] != FREE:
                loc[PC] = "wait"
                return "folio_trylock", f"{st}/o{o} busy", []
            if pos is None:
                loc[REF], loc[PC] = None, "lookup"
                return "folio_trylock", f"{st}/o{o} truncated: goto repeat", []
            f = w.cache[pos]
            if f[3]:
                return self._rcf_out(w, i, loc, "folio_trylock", f"{st}/o{o} filled meanwhile")
            w.cache[pos] = f[:2] + (i,) + f[3:]
            loc[PC] = "filler"
            return "folio_trylock", f"{st}/o{o} locked", []
        if pc == "wait":
            st, o, det = loc[REF]
            if not det:
                pos = w.find_exact(st, o)
                if w.cache[pos][2] != FREE:
                    return None
            loc[REF], loc[PC] = None, "lookup"
            return "folio_put_wait_locked", "unlocked: goto repeat", []
        raise AssertionError(pc)

    def _rcf_out(self, w, i, loc, func, saw):
        if w.readers >> i & 1:
            w.readers &= ~(1 << i)
            saw += "; caller drops invalidate_lock"
        return func, saw, self._finish(w, i, loc, loc[REF])


def w_overlap(system, before, after):
    """Whether check() reports an overlap in either state (a reduced step must not hide one)."""
    if before[1] == after[1]:
        return False
    return any(m.startswith("overlapping") for m in system.check(before) + system.check(after))


def _bits(flags):
    names = [n for b, n in ((AS_EIO, "AS_EIO"), (AS_ENOSPC, "AS_ENOSPC")) if flags & b]
    return "|".join(names) or "none"


class _World:
    """A mutable copy of a state for one step."""
    __slots__ = ("minord", "cache", "writer", "readers", "waiting", "acts", "xa", "flags",
                 "irw", "viol")

    def __init__(self, state):
        (self.minord, cache, self.writer, self.readers, self.waiting, acts, self.xa,
         self.flags, self.irw) = state
        self.cache = list(cache)
        self.acts = list(acts)
        self.viol = []

    def freeze(self):
        return (self.minord, tuple(self.cache), self.writer, self.readers, self.waiting,
                tuple(self.acts), self.xa, self.flags, self.irw)

    def read_all_readers(self):
        """_inv_write tests the whole reader mask (recorded by footprint.TrackedWorld)."""

    def find(self, idx):
        for f in self.cache:
            if f[0] <= idx < f[0] + (1 << f[1]):
                return f
        return None

    def find_exact(self, start, order):
        for n, f in enumerate(self.cache):
            if f[0] == start and f[1] == order:
                return n
        raise AssertionError(f"folio {start}/o{order} not cached")

    def conflict(self, start, order):
        end = start + (1 << order)
        for f in self.cache:
            if f[0] < end and start < f[0] + (1 << f[1]):
                return f
        return None

    def next_folio(self, cur, lo, hi):
        for f in self.cache:
            if f[0] >= cur and f[0] >= lo and f[0] + (1 << f[1]) <= hi:
                return f
        return None

    def next_dirty(self, cur, lo, hi):
        for f in self.cache:
            if f[6] and f[0] >= cur and f[0] >= lo and f[0] < hi:
                return f
        return None

    def insert(self, folio):
        self.cache.append(folio)
        self.cache.sort()

    def remove(self, pos, system):
        f = self.cache.pop(pos)
        if f[4]:
            self.viol.append(f"{{actor}} removed folio {f[0]}/o{f[1]} from the page cache while "
                             f"a process still maps it")
        key = (f[0], f[1], False)
        for j, loc in enumerate(self.acts):
            if loc[REF] == key:
                self.acts[j] = loc[:REF] + ((f[0], f[1], True),) + loc[REF + 1:]
        return f

    def refs_to(self, start, order, exclude):
        key = (start, order, False)
        return [j for j, loc in enumerate(self.acts) if j != exclude and loc[REF] == key]

    def unlock(self, start, order, i):
        pos = self.find_exact(start, order)
        f = self.cache[pos]
        assert f[2] == i
        self.cache[pos] = f[:2] + (FREE,) + f[3:]

    def complete_one(self, start, order):
        """I/O completion of one folio: uptodate, unlocked (folio_end_read)."""
        pos = self.find_exact(start, order)
        f = self.cache[pos]
        self.cache[pos] = f[:2] + (FREE, True) + f[4:]

    def complete_io(self, i):
        n = 0
        for pos, f in enumerate(self.cache):
            if f[2] == i and not f[3]:
                self.cache[pos] = f[:2] + (FREE, True) + f[4:]
                n += 1
        return n


from . import footprint as _fp        # noqa: E402  (footprint subclasses _World)
