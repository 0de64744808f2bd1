"""XArray kernel (ppsize._core.xarray) against the pure-Python reference (ref_xarray.py).

The reference keeps only the content (an interval map) plus the Linux shape rules, so the
node counts, node contents (count, nr_values, marks) and the height of the Cython tree are
compared with what lib/xarray.c would build for the same content.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize._core.xarray import XArray
from ref_xarray import EEXIST, EINVAL, ENOMEM, RefXArray, try_split_min_order

MAX_PAGECACHE_ORDER = 11          # 16K and 64K pages (9 with 4K)
MAX_ORDER = 13                    # a little above it, to reach xas_split's -ENOMEM case


# ----------------------------------------------------------------------------- comparison
def tree_of(xa):
    """{(shift, first): (count, nr_values, marks)} of the Cython tree."""
    out = {}
    for n in xa.nodes():
        out[(int(n["shift"]), int(n["first"]))] = (
            int(n["count"]), int(n["nr_values"]), tuple(int(m) for m in n["marks"]))
    return out


def ref_tree_of(ref):
    return {k: (n["count"], n["nr_values"], tuple(n["marks"])) for k, n in ref.tree().items()}


def probe_indices(ref, extra=()):
    idx = {0, 1, 63, 64, 4095, 4096, (1 << 64) - 1}
    for s, (order, _, _) in ref.entries.items():
        size = 1 << order
        for i in (s - 1, s, s + 1, s + size // 2, s + size - 1, s + size):
            if 0 <= i < 1 << 64:
                idx.add(i)
    idx.update(i for i in extra if 0 <= i < 1 << 64)
    return sorted(idx)


def assert_same(xa, ref, extra=()):
    xa.check()
    # every entry, its order and its marks
    got = xa.items()
    exp = ref.items()
    assert [int(i) for i in got[0]] == [e[0] for e in exp]
    assert [int(o) for o in got[1]] == [e[1] for e in exp]
    assert [int(e) for e in got[2]] == [e[2] for e in exp]
    for m in range(3):
        gm = xa.items(mark=m)
        assert [int(i) for i in gm[0]] == [e[0] for e in ref.items(mark=m)], f"mark {m}"
    # loads, orders, marks, find at probe indices
    probes = probe_indices(ref, extra)
    loads = xa.load_batch(np.array(probes, dtype=np.uint64))
    for i, v in zip(probes, loads):
        assert int(v) == ref.load(i), f"load({i})"
        assert xa.load(i) == ref.load(i)
        assert xa.entry_order(i) == ref.entry_order(i), f"entry_order({i})"
        for m in range(3):
            assert xa.get_mark(i, m) == ref.get_mark(i, m), f"get_mark({i}, {m})"
        assert xa.find(i) == ref.find(i), f"find({i})"
        hi = min(i + 100, (1 << 64) - 1)
        assert xa.find(i, hi, mark=0) == ref.find(i, hi, mark=0), f"find_marked({i})"
    for lo, hi in zip(probes[::3], probes[1::3]):
        g = xa.items(lo, hi)
        assert [int(i) for i in g[0]] == [e[0] for e in ref.items(lo, hi)], f"items({lo}, {hi})"
    # the tree Linux would build for this content
    assert xa.nr_nodes == ref.nr_nodes()
    assert tree_of(xa) == ref_tree_of(ref)
    assert xa.height == ref.height()
    assert xa.node_bytes == 576 * xa.nr_nodes
    assert xa.slab_bytes == -(-xa.nr_nodes // 7) * 4096


# ----------------------------------------------------------------------------- strategies
regions = st.sampled_from([0, 0, 0, 4096, 1 << 20, 1 << 40, (1 << 63)])
orders = st.one_of(st.integers(0, 3), st.integers(0, MAX_PAGECACHE_ORDER), st.integers(0, MAX_ORDER))
entries = st.one_of(
    st.just(0),
    st.integers(0, 1000).map(lambda v: 2 * v + 1),            # value entries (shadows)
    st.integers(1, 1000).map(lambda v: v << 2),                # "folios"
)
real_entries = st.integers(1, 1000).map(lambda v: v << 2)


@st.composite
def index_in(draw):
    base = draw(regions)
    off = draw(st.one_of(st.integers(0, 140), st.integers(0, 1 << 13)))
    return min(base + off, (1 << 64) - 1)


# an index is either absolute, or picked among the entries present when the op runs
# (k-th entry, plus an offset inside it), so erase/split/mark mostly hit something
where = st.one_of(
    index_in().map(lambda i: ("abs", i)),
    st.tuples(st.just("pick"), st.integers(0, 1 << 10), st.integers(0, 1 << 12)),
    st.tuples(st.just("pick"), st.integers(0, 1 << 10), st.just(0)),
)

op = st.one_of(
    st.tuples(st.just("store"), where, orders, entries),
    st.tuples(st.just("add"), where, orders, real_entries),
    st.tuples(st.just("erase"), where),
    st.tuples(st.just("split"), where, orders),
    st.tuples(st.just("try_split"), where, orders),
    st.tuples(st.just("set_mark"), where, st.integers(0, 2)),
    st.tuples(st.just("clear_mark"), where, st.integers(0, 2)),
)


def resolve(ref, w):
    if w[0] == "abs" or not ref.starts:
        return w[1] if w[0] == "abs" else 0
    s = ref.starts[w[1] % len(ref.starts)]
    return s + w[2] % (1 << ref.entries[s][0])


def apply(xa, ref, o):
    o = (o[0], resolve(ref, o[1])) + tuple(o[2:])
    kind = o[0]
    if kind == "store":
        _, i, order, e = o
        xa.store(i, e, order=order)
        ref.store(i, e, order)
    elif kind == "add":
        _, i, order, e = o
        i &= ~((1 << order) - 1)
        nodes = xa.nr_nodes
        r = xa.add(i, e, order=order)
        assert r == ref.add(i, e, order), o
        if r:
            assert r == -EEXIST and xa.nr_nodes == nodes
    elif kind == "erase":
        assert xa.erase(o[1]) == ref.erase(o[1]), o
    elif kind == "split":
        assert xa.split(o[1], o[2]) == ref.split(o[1], o[2]), o
    elif kind == "try_split":
        assert xa.try_split(o[1], o[2]) == ref.try_split(o[1], o[2]), o
    elif kind == "set_mark":
        xa.set_mark(o[1], o[2])
        ref.set_mark(o[1], o[2])
    elif kind == "clear_mark":
        xa.clear_mark(o[1], o[2])
        ref.clear_mark(o[1], o[2])


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=30))
def test_random_sequences_match_reference(ops):
    xa, ref = XArray(), RefXArray()
    for k, o in enumerate(ops):
        i = resolve(ref, o[1])
        apply(xa, ref, o)
        xa.check()
        assert xa.nr_nodes == ref.nr_nodes(), (k, o)
        for j in (i, i ^ 1, i | 63):                 # leaf lookup cache stays right
            assert xa.load(j) == ref.load(j), (k, o, j)
    assert_same(xa, ref, extra=[o[1][1] for o in ops if o[1][0] == "abs"])
    # erase everything: back to no node at all (xas_delete_node / xas_shrink)
    for s, _, _ in ref.items():
        xa.erase(s)
    xa.check()
    assert xa.nr_nodes == 0 and xa.height == 0 and len(xa) == 0


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "erase", "shadow", "mark"]),
                          st.integers(0, 300), st.integers(0, MAX_PAGECACHE_ORDER),
                          st.integers(1, 50)), min_size=1, max_size=40))
def test_page_cache_like_sequences(ops):
    """The page cache's own pattern: folios added (conflict-checked), replaced by shadows on
    eviction (store of a value entry of the folio's order), erased, dirty-marked."""
    xa, ref = XArray(), RefXArray()
    for kind, i, order, v in ops:
        i &= ~((1 << order) - 1)
        if kind == "add":
            assert xa.add(i, v << 2, order) == ref.add(i, v << 2, order)
        elif kind == "shadow":
            c = ref.covering(i)
            if c is not None and not ref.entries[c][1] & 1:
                order = ref.entries[c][0]
                for m in range(3):
                    ref.clear_mark(c, m)
                    xa.clear_mark(c, m)
                xa.store(c, 2 * v + 1, order)        # page_cache_delete: xas_store(shadow)
                ref.store(c, 2 * v + 1, order)
        elif kind == "erase":
            assert xa.erase(i) == ref.erase(i)
        else:
            xa.set_mark(i, 0)
            ref.set_mark(i, 0)
        xa.check()
    assert_same(xa, ref)


# ----------------------------------------------------------------------------- shape rules
@pytest.mark.parametrize("order", range(0, MAX_PAGECACHE_ORDER + 1))
@pytest.mark.parametrize("mult", [0, 1, 3, 64, 4097])
def test_multi_index_layout_every_order(order, mult):
    """xas_store of an order-o entry: node shift o - o % 6, canonical slot plus
    (1 << (o % 6)) - 1 siblings; node count as Linux (xas_expand / xas_create)."""
    index = mult << order
    xa, ref = XArray(), RefXArray()
    xa.store(index, 0x100, order=order)
    ref.store(index, 0x100, order)
    sh = order - order % 6
    if index == 0 and order == 0:
        assert xa.entry_location(0) == ("head", 0, 1) and xa.nr_nodes == 0
    else:
        assert xa.entry_location(index) == (sh, (index >> sh) & 63, 1 << (order % 6))
        last = index + (1 << order) - 1
        assert xa.entry_location(last) == xa.entry_location(index)
    for i in (index, index + (1 << order) - 1):
        assert xa.load(i) == 0x100 and xa.entry_order(i) == order
    assert xa.load(index + (1 << order)) == 0
    assert_same(xa, ref)
    # erase from the last index removes all of it and every node
    assert xa.erase(index + (1 << order) - 1) == 0x100
    xa.check()
    assert xa.nr_nodes == 0


def test_layout_examples_from_the_issue():
    xa = XArray()
    xa.store(0, 8, order=6)            # order 6 -> one slot at shift 6
    assert xa.entry_location(63) == (6, 0, 1) and xa.nr_nodes == 1
    xa = XArray()
    xa.store(512, 8, order=9)          # order 9 -> 8 slots at shift 6
    assert xa.entry_location(1000) == (6, 8, 8) and xa.nr_nodes == 1
    xa = XArray()
    xa.store(4, 8, order=2)            # order 2 -> 4 slots at shift 0
    assert xa.entry_location(7) == (0, 4, 4) and xa.nr_nodes == 1
    xa.check()


def test_head_entry_expand_and_shrink():
    xa = XArray()
    xa.store(0, 4)
    assert xa.nr_nodes == 0 and xa.head_entry == 4 and xa.height == 0
    xa.set_mark(0, "dirty")                      # xa_flags mark
    xa.store(5000, 8)                            # xas_expand: 3 levels, head in slot 0
    # root (shift 12) -> shift-6 and shift-0 nodes on each of the paths to 0 and to 5000
    assert xa.height == 3 and xa.nr_nodes == 5
    assert xa.get_mark(0, 0) and not xa.get_mark(5000, 0)
    assert xa.find(1, mark="dirty") is None and xa.find(0, mark=0) == (0, 4)
    xa.check()
    xa.erase(5000)                               # xas_delete_node + xas_shrink
    assert xa.nr_nodes == 0 and xa.head_entry == 4 and xa.get_mark(0, 0)
    xa.check()
    xa.store(0, 0)
    assert xa.head_entry == 0 and not xa.get_mark(0, 0)
    xa.check()


def test_multi_index_at_zero_never_in_head():
    xa = XArray()
    xa.store(0, 4, order=1)         # xas_max: index 0 of a multi-index entry needs a node
    assert xa.nr_nodes == 1 and xa.entry_location(1) == (0, 0, 2)
    xa.store(0, 4, order=6)         # root grows to shift 6, the shift-0 node is freed
    assert xa.nr_nodes == 1 and xa.entry_location(10) == (6, 0, 1) and xa.height == 2
    xa.check()


def test_store_node_pointer_frees_subtree():
    xa = XArray()
    for i in range(64, 128, 3):
        xa.store(i, 4 * i)
    xa.store(200, 8)
    assert xa.nr_nodes == 3                   # root(6) + leaves for slots 1, 3
    xa.store(64, 0x44, order=6)               # overwrites the slot-1 node pointer
    assert xa.nr_nodes == 2 and xa.entry_order(100) == 6
    xa.check()


def test_store_squashes_marks_onto_the_new_entry():
    xa, ref = XArray(), RefXArray()
    for x in (xa, ref):
        x.store(10, 4)
        x.set_mark(10, 2)
        x.store(8, 8, order=2)
    assert xa.get_mark(8, 2) and xa.get_mark(11, 2)
    assert_same(xa, ref)


def test_smaller_store_into_larger_entry_keeps_order():
    xa = XArray()
    xa.store(0, 5, order=8)       # value entry, shift 6, 4 slots
    xa.store(130, 8)              # order-0 store lands in it: value replaced, order kept
    assert xa.entry_order(0) == 8 and xa.load(255) == 8
    xa.check()                    # nr_values of the sibling slots fixed up too


# ----------------------------------------------------------------------------- add / split
def test_add_conflict_is_eexist_and_changes_nothing():
    xa = XArray()
    assert xa.add(64, 0x40, order=6) == 0
    before = (xa.nr_nodes, xa.items())
    for i, o in [(64, 0), (96, 3), (0, 7), (0, 9), (127, 0)]:
        assert xa.add(i & ~((1 << o) - 1), 0x80, order=o) == -EEXIST
    assert xa.nr_nodes == before[0]
    assert all((a == b).all() for a, b in zip(xa.items(), before[1]))
    assert xa.add(128, 0x80, order=6) == 0
    xa.check()


def test_add_over_larger_shadow_uses_one_node():
    """__filemap_add_folio splits an order-9 shadow with xas_try_split: 9 -> 6 -> 5 -> 0
    needs one new node where xas_split (older kernels) needed 8."""
    xa, ref = XArray(), RefXArray()
    for x in (xa, ref):
        x.store(0, 7, order=9)
    assert xa.nr_nodes == 1
    assert xa.add(5, 0x40) == 0 and ref.add(5, 0x40) == 0
    assert xa.nr_nodes == 2
    assert [xa.entry_order(i) for i in (0, 5, 31, 32, 64, 511)] == [0, 0, 0, 5, 6, 6]
    assert xa.load(5) == 0x40 and xa.load(4) == 7 and xa.load(511) == 7
    assert_same(xa, ref)
    # xas_split of the same shadow down to order 0 takes 8 nodes
    xb = XArray()
    xb.store(0, 7, order=9)
    assert xb.split(0, 0) == 0 and xb.nr_nodes == 9
    xb.check()


def test_add_replaces_smaller_shadows():
    xa, ref = XArray(), RefXArray()
    for x in (xa, ref):
        for i in range(64, 80):
            x.store(i, 2 * i + 1)
        x.store(96, 9, order=4)
    assert xa.add(64, 0x400, order=6) == 0 and ref.add(64, 0x400, 6) == 0
    assert xa.nr_nodes == 1 and xa.entry_location(70) == (6, 1, 1)
    assert_same(xa, ref)


@pytest.mark.parametrize("order", range(1, MAX_PAGECACHE_ORDER + 1))
def test_split_and_try_split_every_order(order):
    for new in range(order):
        for kind in ("split", "try_split"):
            xa, ref = XArray(), RefXArray()
            for x in (xa, ref):
                x.store(3 << order, 0x4c, order)
                x.set_mark((3 << order) + (1 << order) - 1, 1)
            r = getattr(xa, kind)(3 << order, new)
            assert r == getattr(ref, kind)(3 << order, new)
            if kind == "try_split":
                assert (r == 0) == (new >= try_split_min_order(order))
                if r:
                    assert r == -EINVAL
            assert_same(xa, ref)
            assert len(xa.items(mark=1)[0]) == (1 << (order - new) if r == 0 else 1)


def test_split_of_root_slot0_entry_is_not_shrunk():
    """xas_split / xas_try_split never call xas_shrink: splitting the entry alone in slot 0
    of the root keeps a root Linux could drop, until an erase reaches the root."""
    xa, ref = XArray(), RefXArray()
    for x in (xa, ref):
        x.store(0, 0x10, order=6)
        assert x.split(0, 0) == 0
    assert xa.nr_nodes == 2 and xa.height == 2        # root(6) -> leaf(0), root count 1
    assert_same(xa, ref)
    for x in (xa, ref):
        for i in range(1, 64):
            x.erase(i)                                # leaf survives: no xas_shrink
    assert xa.nr_nodes == 2 and xa.head_entry is None
    assert_same(xa, ref)
    for x in (xa, ref):
        x.store(70, 4)
        x.erase(70)                                   # chain reaches the root: shrink
    assert xa.nr_nodes == 0 and xa.head_entry == 0x10
    assert_same(xa, ref)


def test_split_refusals():
    xa = XArray()
    xa.store(0, 4, order=12)
    assert xa.split(0, 5) == -ENOMEM           # xas_split_alloc: "really large entries"
    assert xa.split(0, 6) == 0 and xa.entry_order(4095) == 6
    assert xa.split(0, 6) == -EINVAL           # not smaller
    assert xa.split(1 << 20, 0) == -EINVAL     # nothing there
    assert xa.try_split(64, 3) == -EINVAL      # 6 -> 3 would need a node per sibling step
    assert xa.try_split(64, 5) == 0
    xa.check()


# ----------------------------------------------------------------------------- batches
def test_load_batch_and_store_batch_match_scalar():
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 1 << 16, 3000).astype(np.uint64)
    ent = (rng.integers(1, 1 << 40, 3000).astype(np.uint64) << np.uint64(2))
    xa, xb = XArray(), XArray()
    xa.store_batch(idx, ent)
    for i, e in zip(idx.tolist(), ent.tolist()):
        xb.store(i, e)
    xa.check()
    q = np.arange(0, 1 << 16, 7, dtype=np.uint64)
    assert (xa.load_batch(q) == xb.load_batch(q)).all()
    assert (xa.load_batch(q) == np.array([xb.load(int(i)) for i in q], dtype=np.uint64)).all()
    assert xa.nr_nodes == xb.nr_nodes
    xa.store_batch(idx, np.zeros_like(idx))
    xa.check()
    assert xa.nr_nodes == 0
    assert xa.load_batch([]).shape == (0,)


batch_index = st.one_of(
    index_in(),
    st.integers(0, 300),                                       # a few shared leaves
    st.tuples(st.sampled_from([0, 1 << 20]), st.integers(0, 40)).map(lambda t: t[0] + 64 * t[1]),
)


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=15),
       st.lists(st.tuples(batch_index, entries), min_size=1, max_size=200),
       st.integers(0, 2))
def test_store_batch_matches_reference(ops, batch, order):
    """store_batch (grouped walks, leaf fast path, node creation from where each walk
    stopped; erases fall back to xa_store) against the reference storing one by one,
    over a tree with multi-index entries, marks and shadows already in it."""
    xa, ref = XArray(), RefXArray()
    for o in ops:
        apply(xa, ref, o)
    idx = np.array([i for i, _ in batch], dtype=np.uint64)
    ent = np.array([e for _, e in batch], dtype=np.uint64)
    xa.store_batch(idx, ent, order=order)
    for i, e in batch:
        ref.store(i, e, order)
    assert_same(xa, ref, extra=[i for i, _ in batch])
    xa.pool.check()


def test_store_batch_erase_frees_a_node_later_stores_of_the_group_walked_to():
    # the first pass of a group finds leaf (64, 128) for both stores; the erase frees
    # it (and shrinks the tree), so the second store must not use what the pass found
    for first in (64, 5):
        xa, ref = XArray(), RefXArray()
        for x in (xa, ref):
            x.store(first, 4, 0)
            x.store(70, 8, 0)
        xa.store_batch([70, first, 71], [0, 0, 12])
        for i, e in ((70, 0), (first, 0), (71, 12)):
            ref.store(i, e, 0)
        assert_same(xa, ref, extra=[first, 70, 71])
        xa.pool.check()


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, exc, text", [
    (lambda x: x.store(-1, 4), ValueError, "-1"),
    (lambda x: x.store(1 << 64, 4), ValueError, str(1 << 64)),
    (lambda x: x.store(1.5, 4), TypeError, "1.5"),
    (lambda x: x.store(0, 4, order=64), ValueError, "64"),
    (lambda x: x.store(0, 4, order=-1), ValueError, "-1"),
    (lambda x: x.store(0, 6), ValueError, "0x6"),
    (lambda x: x.store(0, "a"), TypeError, "'a'"),
    (lambda x: x.store(0, -4), ValueError, "-4"),
    (lambda x: x.add(3, 4, order=2), ValueError, "aligned"),
    (lambda x: x.add(0, 5), ValueError, "0x5"),
    (lambda x: x.set_mark(0, "locked"), ValueError, "locked"),
    (lambda x: x.set_mark(0, 3), ValueError, "3"),
    (lambda x: x.get_mark(0, True), TypeError, "True"),
    (lambda x: x.load_batch(np.array([1.0])), TypeError, "float64"),
    (lambda x: x.load_batch(np.array([-3])), ValueError, "-3"),
    (lambda x: x.store_batch([1, 2], [4]), ValueError, "length"),
    (lambda x: x.store_batch([1], [2]), ValueError, "0x2"),
    (lambda x: x.items(mark="bogus"), ValueError, "bogus"),
    (lambda x: x.split(0, 99), ValueError, "99"),
])
def test_bad_input(call, exc, text):
    with pytest.raises(exc, match=text.replace("(", r"\(")):
        call(XArray())


def test_mark_names():
    xa = XArray()
    xa.store(7, 4)
    for name, m in (("dirty", 0), ("writeback", 1), ("towrite", 2)):
        xa.set_mark(7, name)
        assert xa.get_mark(7, m)
        xa.clear_mark(7, m)
        assert not xa.get_mark(7, name)
    xa.set_mark(8, 0)                  # no entry: __xa_set_mark does nothing
    assert not xa.get_mark(8, 0)
    xa.check()


def test_find_and_items_report_first_indices():
    xa = XArray()
    xa.store(256, 0x10, order=8)
    xa.store(600, 0x20)
    xa.set_mark(600, "towrite")
    assert xa.find(300) == (256, 0x10)          # straddling start: its first index
    assert xa.find(512) == (600, 0x20)
    assert xa.find(512, max=599) is None
    assert xa.find(0, mark=2) == (600, 0x20)
    i, o, e = xa.items(300, 600)
    assert i.tolist() == [256, 600] and o.tolist() == [8, 0] and e.tolist() == [0x10, 0x20]
    assert xa.items(601, 10 ** 6)[0].size == 0 and xa.items(700, 300)[0].size == 0
    assert len(xa) == 2
    n = xa.nodes()
    assert sorted(zip(n["shift"].tolist(), n["first"].tolist())) == [(0, 576), (6, 0)]


# ----------------------------------------------------------------------------- shared pools
def test_shared_pool_accounting_and_release():
    """XArrays sharing one XAPool (as the page cache's mappings do): nodes are counted per
    array and per pool, freed nodes are reused by any array, and an array's nodes go back
    to the pool when it is destroyed."""
    from ppsize._core.xarray import XAPool
    pool = XAPool(4)                       # small: growth (with the GIL) happens below
    a, b = XArray(pool=pool), XArray(pool=pool)
    ra, rb = RefXArray(), RefXArray()
    for i in range(0, 5000, 7):
        a.store(i, (i + 1) << 2)
        ra.store(i, (i + 1) << 2)
    for i in range(0, 1 << 20, 4099):
        b.store(i, (i + 1) << 2, order=2)
        rb.store(i, (i + 1) << 2, order=2)
    assert_same(a, ra)
    assert_same(b, rb)
    assert pool.nr_nodes == a.nr_nodes + b.nr_nodes > 0
    assert pool.capacity >= pool.nr_nodes
    na = a.nr_nodes
    for i in range(0, 5000, 7):
        a.erase(i)
    assert a.nr_nodes == 0 and pool.nr_nodes == b.nr_nodes
    a.check()
    b.check()
    used_cap = pool.capacity
    for i in range(0, 5000, 7):         # reuses the freed nodes: no growth
        a.store(i, (i + 1) << 2)
    assert a.nr_nodes == na and pool.capacity == used_cap
    del b
    assert pool.nr_nodes == a.nr_nodes
    pool.check()
    a.check()


def test_private_pool_default():
    xa = XArray()
    xa.store(1 << 30, 4)
    assert xa.pool.nr_nodes == xa.nr_nodes == xa.height
    other = XArray()
    assert other.pool is not xa.pool


def test_pool_growth_keeps_entries_and_zero_nodes():
    """XAPool's slots grow in place (a framemem GrowBuf: mremap, or a dropped pool's
    mapping taken over): every stored entry survives each doubling, the never-used
    nodes read zero (pool.check), and a pool made after others were dropped (their
    mappings reused, written before) starts zeroed too."""
    from ppsize._core.xarray import XAPool
    rng = np.random.default_rng(5)
    for rnd in range(3):
        pool = XAPool(1)
        xa = XArray(pool=pool)
        idx = rng.choice(1 << 22, 20000, replace=False).astype(np.uint64)
        ent = (np.arange(1, idx.size + 1, dtype=np.uint64) << np.uint64(2)) | np.uint64(rnd & 1)
        caps = set()
        for k in range(0, idx.size, 2500):
            xa.store_batch(idx[k:k + 2500], ent[k:k + 2500])
            caps.add(pool.capacity)
            assert (xa.load_batch(idx[:k + 2500]) == ent[:k + 2500]).all()
        assert len(caps) > 2                # it grew several times on the way
        pool.check()
        xa.check()
        del xa, pool
