"""FolioTable: per-frame struct-of-arrays folio metadata vs a dict reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsize.buddy import FOLIO_FLAGS, BuddyAllocator, FolioTable, check_frames

TAIL_BASE = -2


class RefFolios:
    """head pfn -> dict(order, refcount, flags, owner, index); mapcount per pfn."""

    def __init__(self, n):
        self.n = n
        self.folios = {}
        self.mapcount = [0] * n

    def head(self, pfn):
        for h, f in self.folios.items():
            if h <= pfn < h + (1 << f["order"]):
                return h
        return -1

    def init(self, pfn, order, flags, owner, index):
        if pfn % (1 << order) or pfn + (1 << order) > self.n:
            return "einval"
        if any(self.head(p) >= 0 for p in range(pfn, pfn + (1 << order))):
            return "eexist"
        self.folios[pfn] = dict(order=order, refcount=1, flags=flags, owner=owner, index=index)
        return "ok"

    def free(self, pfn):
        f = self.folios.pop(pfn)
        for p in range(pfn, pfn + (1 << f["order"])):
            self.mapcount[p] = 0

    def split(self, pfn, new):
        f = self.folios.pop(pfn)
        for p in range(pfn, pfn + (1 << f["order"]), 1 << new):
            self.folios[p] = dict(f, order=new, index=f["index"] + (p - pfn))

    def arrays(self):
        order = np.full(self.n, -1, np.int8)
        ref = np.zeros(self.n, np.int32)
        flags = np.zeros(self.n, np.uint16)
        owner = np.full(self.n, -1, np.int32)
        index = np.zeros(self.n, np.int64)
        for h, f in self.folios.items():
            order[h] = f["order"]
            order[h + 1:h + (1 << f["order"])] = TAIL_BASE - f["order"]
            ref[h], flags[h], owner[h], index[h] = f["refcount"], f["flags"], f["owner"], f["index"]
        return dict(order=order, refcount=ref, mapcount=np.array(self.mapcount, np.int32),
                    flags=flags, owner=owner, index=index)


def assert_same(t: FolioTable, r: RefFolios):
    got = t.as_numpy()
    for name, arr in r.arrays().items():
        assert np.array_equal(got[name], arr), name
    assert t.nr_folios == len(r.folios)
    assert t.nr_folio_pages == sum(1 << f["order"] for f in r.folios.values())
    for pfn in range(t.nr_pages):
        assert t.head(pfn) == r.head(pfn)


def test_basic_lifecycle():
    t = FolioTable(64)
    assert t.init(16, 3, ["anon", "dirty", "uptodate"], owner=7, index=0x7fff0) == 16
    assert [t.head(p) for p in (15, 16, 19, 23, 24)] == [-1, 16, 16, 16, -1]
    assert t.order(21) == 3
    info = t.info(20)
    assert info == {"head": 16, "order": 3, "refcount": 1, "mapcount": 0,
                    "flags": ["uptodate", "dirty", "anon"], "owner": 7, "index": 0x7fff0}
    assert t.test(23, "anon") and not t.test(23, ["anon", "locked"])
    t.set(17, "locked")
    assert t.test(16, "PG_locked")
    t.clear(16, ["locked", "dirty"])
    assert t.info(16)["flags"] == ["uptodate", "anon"]
    assert t.get(18) == 2 and t.put(18) == 1
    assert t.map(17) == 1 and t.map(18, 2) == 2 and t.mapcount_of(23) == 3
    t.check()
    v = t.view(16, 18)
    assert v.dtype.names == ("order", "refcount", "mapcount", "flags", "owner", "index")
    assert v["order"].tolist() == [3, TAIL_BASE - 3] and v["mapcount"].tolist() == [0, 1]
    assert t.free(16) == 3
    assert t.nr_folios == 0 and t.nr_folio_pages == 0
    assert (t.as_numpy()["mapcount"] == 0).all()
    t.check()


def test_split_keeps_metadata():
    t = FolioTable(32)
    t.init(0, 4, "anon", owner=3, index=1000)
    t.map(5)
    t.split(0, 2)
    assert t.heads().tolist() == [0, 4, 8, 12]
    assert [t.info(h)["index"] for h in t.heads()] == [1000, 1004, 1008, 1012]
    assert all(t.info(h)["owner"] == 3 and t.info(h)["flags"] == ["anon"] for h in t.heads())
    assert t.mapcount_of(6) == 1 and t.nr_folios == 4
    t.check()


def test_validation_messages():
    t = FolioTable(32)
    with pytest.raises(ValueError, match="pfn 4 is not aligned to order 3"):
        t.init(4, 3)
    with pytest.raises(ValueError, match="pfn 32 outside memory"):
        t.init(32, 0)
    with pytest.raises(ValueError, match="runs past memory"):
        t.init(0, 6)
    with pytest.raises(ValueError, match="unknown folio flag 'shiny'"):
        t.init(0, 0, ["shiny"])
    with pytest.raises(TypeError, match="pfn must be an int, not str"):
        t.init("0", 0)
    t.init(8, 3)
    with pytest.raises(ValueError, match="cannot create an order-4 folio at pfn 0: pfn 8 already "
                                         "belongs to the folio at pfn 8"):
        t.init(0, 4)
    with pytest.raises(ValueError, match=r"cannot free pfn 9: not a folio head \(it is a tail of "
                                         r"the folio at pfn 8\)"):
        t.free(9)
    with pytest.raises(ValueError, match=r"cannot free pfn 0: not a folio head \(it is in no folio\)"):
        t.free(0)
    with pytest.raises(ValueError, match="pfn 2 is not part of a folio"):
        t.get(2)
    with pytest.raises(ValueError, match="refcount of the folio at pfn 8 would drop below 0"):
        t.put(10, 2)
    with pytest.raises(ValueError, match="new_order 4 out of range 0..3"):
        t.split(8, 4)
    with pytest.raises(ValueError, match="flags 0x8000 has bits outside"):
        t.set(8, 0x8000)
    with pytest.raises(ValueError, match="nr_pages must be >= 1"):
        FolioTable(0)
    t.check()


def test_check_detects_corruption():
    t = FolioTable(16)
    t.init(8, 2)
    a = t.as_numpy()
    assert not a["order"].flags.writeable
    order = a["order"]
    order.flags.writeable = True                      # deliberately corrupt
    order[10] = TAIL_BASE - 1
    with pytest.raises(AssertionError, match="pfn 10 inside the order-2 folio at pfn 8 has order "
                                             "marker -3, expected the tail marker -4"):
        t.check()
    order[10] = TAIL_BASE - 2
    order[3] = TAIL_BASE - 1
    with pytest.raises(AssertionError, match="pfn 3 is a tail"):
        t.check()
    order[3] = -1
    ref = a["refcount"]
    ref.flags.writeable = True
    ref[9] = 1
    with pytest.raises(AssertionError, match="tail pfn 9 of the folio at pfn 8 has refcount 1"):
        t.check()
    ref[9] = 0
    t.check()


def test_bytes_per_frame_budget():
    b = BuddyAllocator(1 << 12, 10, 9)
    t = FolioTable(1 << 12)
    assert b.bytes_per_frame + t.bytes_per_frame == 32
    assert t.nbytes == 23 * (1 << 12)
    assert 0 <= b.nbytes - 9 * (1 << 12) < 2048        # + pageblocks, list heads, counters


def test_check_frames_against_buddy():
    b = BuddyAllocator(64, 4, 3)
    t = FolioTable(64)
    p = b.alloc_pages(2)
    t.init(p, 2, "anon")
    assert check_frames(b, t)
    b.free_pages(p, 2)
    with pytest.raises(AssertionError, match=f"pfn {p} belongs to a folio but is free"):
        check_frames(b, t)


ops = st.lists(st.one_of(
    st.tuples(st.just("init"), st.integers(0, 70), st.integers(0, 4), st.integers(0, 0x1FFF),
              st.integers(-1, 100), st.integers(-2**40, 2**40)),
    st.tuples(st.just("free"), st.integers(0, 10**6)),
    st.tuples(st.just("split"), st.integers(0, 10**6), st.integers(0, 4)),
    st.tuples(st.just("ref"), st.integers(0, 63), st.integers(0, 3)),
    st.tuples(st.just("map"), st.integers(0, 63), st.integers(0, 3)),
    st.tuples(st.just("flags"), st.integers(0, 63), st.integers(0, 0x1FFF), st.booleans()),
), max_size=50)


@settings(max_examples=80, deadline=None)
@given(ops)
def test_against_reference(seq):
    t = FolioTable(64)
    r = RefFolios(64)
    for op in seq:
        kind = op[0]
        if kind == "init":
            _, pfn, order, flags, owner, index = op
            pfn -= pfn % (1 << order) if op[1] % 3 else 0       # mostly aligned
            res = r.init(pfn, order, flags, owner, index) if pfn < 64 else "einval"
            if res == "ok":
                assert t.init(pfn, order, flags, owner, index) == pfn
            else:
                with pytest.raises(ValueError):
                    t.init(pfn, order, flags, owner, index)
        elif kind in ("free", "split"):
            if not r.folios:
                continue
            h = sorted(r.folios)[op[1] % len(r.folios)]
            if kind == "free":
                assert t.free(h) == r.folios[h]["order"]
                r.free(h)
            else:
                new = min(op[2], r.folios[h]["order"])
                t.split(h, new)
                r.split(h, new)
        elif kind == "ref":
            h = r.head(op[1])
            if h < 0:
                continue
            assert t.get(op[1], op[2]) == r.folios[h]["refcount"] + op[2]
            r.folios[h]["refcount"] += op[2]
        elif kind == "map":
            if r.head(op[1]) < 0:
                continue
            t.map(op[1], op[2])
            r.mapcount[op[1]] += op[2]
        else:
            h = r.head(op[1])
            if h < 0:
                continue
            if op[3]:
                t.set(op[1], op[2])
                r.folios[h]["flags"] |= op[2]
            else:
                t.clear(op[1], op[2])
                r.folios[h]["flags"] &= ~op[2]
        t.check()
    assert_same(t, r)
    assert set(FOLIO_FLAGS.values()) == {1 << i for i in range(13)}


def test_head_of_matches_head():
    t = FolioTable(64)
    t.init(0, 3)
    t.init(16, 4)
    t.init(40, 0)
    pfns = np.array([0, 5, 7, 8, 16, 31, 40, 41, 63, 64, -1], dtype=np.int64)
    expect = [t.head(int(p)) if 0 <= p < 64 and t.order(int(p)) >= 0 else -1 for p in pfns]
    assert t.head_of(pfns).tolist() == expect == [0, 0, 0, -1, 16, 16, 40, -1, -1, -1, -1]
