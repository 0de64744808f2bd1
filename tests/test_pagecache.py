"""Page cache (ppsize.pagecache / ppsize._core.pagecache) against the pure-Python reference
(ref_pagecache.py): folio layouts (index, order), nrpages, pages read and file_ra_state
compared after every operation of random sequences, plus directed tests of the readahead
window and folio-order growth (expected figures derived from the kernel formulas), the
rounding identity, truncate splitting and bad input."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize import Kernel
from ppsize.pagecache import PageCache
from ref_pagecache import RefPageCache, ilog2, init_ra_size, next_ra_size

SHIFT = {"4K": 12, "16K": 14, "64K": 16}


def make(page="4K", memory="256M", **kw):
    k = Kernel(page, memory)
    return k, PageCache(k, **kw), RefPageCache(SHIFT[page])


def assert_same(pc, ref, k=None):
    pc.check()
    for fid, F in enumerate(ref.files):
        assert pc.layout(fid) == F.layout(), f"file {fid} layout"
        info = pc.info(fid)
        assert info["nrpages"] == F.nrpages(), f"file {fid} nrpages"
        assert info["pages_read"] == F.pages_read, f"file {fid} pages read"
        assert info["i_size"] == F.size
        for key in ("start", "size", "async_size", "order", "prev_pos"):
            assert info["ra_" + key] == F.ra[key], f"file {fid} ra {key}"
        flags = pc.folios(fid)["flags"]
        ra_flag = [(int(fl) & (1 << 11)) != 0 for fl in flags]
        assert ra_flag == [F.cache[i].readahead for i, _ in F.layout()], f"file {fid} PG_readahead"
    assert pc.cached_pages == ref.cached()
    st_ = pc.stats()
    assert st_["pages_read"] == ref.pages_read
    assert st_["sync_ra"] == ref.n_sync_ra and st_["async_ra"] == ref.n_async_ra
    if k is not None:
        k.check()


# ----------------------------------------------------------------------------- differential
@st.composite
def scenario(draw):
    page = draw(st.sampled_from(["4K", "16K"]))
    P = 1 << SHIFT[page]
    nfiles = draw(st.integers(1, 3))
    files = []
    for _ in range(nfiles):
        large = draw(st.booleans())
        min_order = draw(st.sampled_from([0, 0, 1, 2, 4])) if large else 0
        size = draw(st.one_of(st.integers(0, 3 * P), st.integers(0, 300 * P), st.integers(0, 3000 * P)))
        files.append((size, large, min_order))
    ops = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["seq", "seq", "seq", "read", "truncate", "truncate", "drop",
                                     "get", "stream"]))
        f = draw(st.integers(0, nfiles - 1))
        if kind == "seq":        # continue where the last read of f stopped
            ops.append((kind, f, draw(st.sampled_from([1, 4096, P, 3 * P, 16 * P, 200 * P, 600 * P]))))
        elif kind == "read":
            ops.append((kind, f, draw(st.integers(0, 320 * P)), draw(st.integers(0, 40 * P))))
        elif kind == "truncate":        # a fraction of the file's size, often inside a folio
            ops.append((kind, f, draw(st.floats(0, 1.05)), draw(st.integers(0, P - 1))))
        elif kind == "stream":          # the whole file front to back
            ops.append((kind, f, draw(st.sampled_from([4096, P, 16 * P, 64 * P]))))
        elif kind == "get":
            ops.append((kind, f, draw(st.integers(0, 300)), draw(st.integers(0, 6))))
        else:
            ops.append((kind,))
    ra_kb = draw(st.sampled_from([128, 128, 64, 512, 2048, 0]))
    return page, files, ops, ra_kb


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_differential(sc):
    page, files, ops, ra_kb = sc
    k = Kernel(page, "256M")
    pc = PageCache(k, readahead=ra_kb << 10)
    ref = RefPageCache(SHIFT[page], ra_pages=(ra_kb << 10) >> SHIFT[page])
    for i, (size, large, mo) in enumerate(files):
        pc.create_file(f"/f{i}", size, large_folios=large, min_order=mo)
        ref.new_file(size, mo, large)
    pos = [0] * len(files)
    for op in ops:
        if op[0] == "seq":
            _, f, n = op
            got = pc.read(f, pos[f], n)["bytes"]
            assert got == ref.read(f, pos[f], n)
            pos[f] += got
        elif op[0] == "read":
            _, f, off, n = op
            assert pc.read(f, off, n)["bytes"] == ref.read(f, off, n)
            pos[f] = off + n
        elif op[0] == "truncate":
            _, f, frac, extra = op
            size = int(ref.files[f].size * frac) // 4096 * 4096 + extra
            pc.truncate(f, size)
            ref.truncate(f, size)
        elif op[0] == "stream":
            _, f, n = op
            for off in range(0, ref.files[f].size, n):
                assert pc.read(f, off, n)["bytes"] == ref.read(f, off, n)
        elif op[0] == "get":
            _, f, index, order = op
            got = pc.get_folio(f, index, create=True, order=order)
            exp = ref.get_folio(f, index, order)
            assert got[:2] == exp
        else:
            assert pc.drop_caches() == ref.drop_caches()
        assert_same(pc, ref)
    k.check()


# ----------------------------------------------------------------------------- directed
@pytest.mark.parametrize("page,ra_kb,req", [("4K", 128, 4096), ("4K", 128, 16384), ("16K", 128, 16384),
                                            ("4K", 512, 4096), ("64K", 128, 65536),
                                            ("4K", 4096, 65536)])   # ilog2 10 > MAX 9
def test_sequential_window_and_order_growth(page, ra_kb, req):
    """A sequential read in req-byte calls: the window follows get_init_ra_size then
    get_next_ra_size, ra->order grows by 2 per async readahead capped by ilog2(size) and
    MAX_PAGECACHE_ORDER, and the folios reach the capped order."""
    shift = SHIFT[page]
    k = Kernel(page, "256M")
    pc = PageCache(k, readahead=ra_kb << 10)
    mx = (ra_kb << 10) >> shift
    size = min(64 * (ra_kb << 10), 128 << 20)
    f = pc.create_file("/seq", size)
    req_pages = max(1, req >> shift)
    # the first read: sync readahead at index 0
    pc.read(f, 0, req)
    info = pc.info(f)
    exp_size = init_ra_size(req_pages, mx)
    assert info["ra_start"] == 0 and info["ra_size"] == exp_size
    assert info["ra_async_size"] == (exp_size - req_pages if exp_size > req_pages else exp_size // 2)
    assert info["ra_order"] == 0
    sizes, orders = [info["ra_size"]], [0]
    pos = req
    while pos < size:
        before = pc.info(f)
        r = pc.read(f, pos, req)
        pos += r["bytes"]
        if r["async_ra"]:
            now = pc.info(f)
            sizes.append(now["ra_size"])
            orders.append(now["ra_order"])
            # the window moved to the end of the previous one
            assert now["ra_start"] == before["ra_start"] + before["ra_size"]
    # expected chain from the formulas (page_cache_async_ra at the expected index:
    # start += size, size = max(size, get_next_ra_size), order += 2, window end aligned
    # down to 1 << min(order, __ffs(max)), then page_cache_ra_order's clamp of the order)
    max_order = min(11, {12: 9, 14: 11, 16: 13}[shift])
    exp_sizes, exp_orders = [sizes[0]], [0]
    start, cur, order = 0, sizes[0], 0
    for _ in sizes[1:]:
        start += cur
        cur = max(cur, next_ra_size(cur, mx))
        order += 2
        align = 1 << min(order, (mx & -mx).bit_length() - 1)
        end = start + cur
        if end - end % align > start:
            cur -= end % align
        order = min(order, max_order, ilog2(cur))
        exp_sizes.append(cur)
        exp_orders.append(order)
    assert sizes == exp_sizes
    assert orders == exp_orders
    assert sizes[-1] == mx
    steady = min(max_order, ilog2(mx))
    lay = pc.layout(f)
    assert max(o for _, o in lay) == steady
    # the second half of the file is made of steady-order folios only
    assert {o for i, o in lay if i >= (size >> shift) // 2} == {steady}
    assert pc.nrpages(f) == size >> shift
    pc.check()
    k.check()


def test_large_folios_off_stays_order0():
    k, pc, _ = make("4K")
    f = pc.create_file("/small", "1M", large_folios=False)
    for off in range(0, 1 << 20, 4096):
        pc.read(f, off, 4096)
    assert {o for _, o in pc.layout(f)} == {0}
    assert pc.nrpages(f) == 256
    assert pc.info(f)["ra_order"] == 0
    pc.check()


@pytest.mark.parametrize("min_order", [1, 2, 4])
def test_min_order_everywhere(min_order):
    k, pc, ref = make("4K")
    f = pc.create_file("/lbs", 200_000, min_order=min_order)
    ref.new_file(200_000, min_order)
    for off, n in [(5000, 1), (100_000, 3000), (0, 200_000), (150_001, 10)]:
        assert pc.read(f, off, n)["bytes"] == ref.read(0, off, n)
    assert min(o for _, o in pc.layout(f)) >= min_order
    assert all(i % (1 << o) == 0 for i, o in pc.layout(f))
    assert_same(pc, ref, k)
    # get_folio below the min order is raised to it, the index aligned down
    pc.drop_caches()
    ref.drop_caches()
    got = pc.get_folio(f, 5, order=0)
    assert got[:2] == ref.get_folio(0, 5, 0) == (5 - 5 % (1 << min_order), min_order)


def test_random_small_read_keeps_state():
    """A small read far from the previous one with no cached history: read as is
    (do_page_cache_ra), file_ra_state untouched except prev_pos."""
    k, pc, ref = make("4K")
    f = pc.create_file("/r", "4M")
    pc.read(f, 0, 4096)
    before = pc.info(f)
    r = pc.read(f, 3 << 20, 4096)
    after = pc.info(f)
    assert r["pages_read"] == 1 and r["sync_ra"] == 0
    for key in ("ra_start", "ra_size", "ra_async_size", "ra_order"):
        assert after[key] == before[key]
    assert after["ra_prev_pos"] == (3 << 20) + 4096


@pytest.mark.parametrize("page", ["4K", "16K", "64K"])
@pytest.mark.parametrize("large", [False, True])
def test_rounding_identity(page, large):
    """Reading every file once in full on an N-byte-page kernel: page cache = sum of the
    sizes rounded up to N (readahead never passes the page holding the last byte, and
    large folios shrink at EOF down to the min order 0)."""
    N = 1 << SHIFT[page]
    rng = np.random.default_rng(7)
    sizes = [0, 1, N - 1, N, N + 1, 3 * N + 5, 128 << 10, (2 << 20) + 1, 5_000_001]
    sizes += [int(x) for x in rng.integers(0, 3 << 20, 40)]
    k = Kernel(page, "1G")
    pc = PageCache(k)
    files = [pc.create_file(f"/t/{i}", s, large_folios=large) for i, s in enumerate(sizes)]
    pc.read_all(files)
    exp = sum(-(-s // N) * N for s in sizes)
    assert pc.cached_pages * N == exp
    assert pc.meminfo_cached == exp >> 10
    pc.check()
    k.check()


def test_truncate_splits_large_folio():
    k, pc, ref = make("4K")
    f = pc.create_file("/t", "8M")
    ref.new_file(8 << 20)
    pc.read(f, 0, 8 << 20)
    ref.read(0, 0, 8 << 20)
    big = [(i, o) for i, o in pc.layout(f) if o >= 4]
    i0, o0 = big[len(big) // 2]
    cut = (i0 + 3) * 4096 + 100                  # inside page i0 + 3 of a large folio
    pc.truncate(f, cut)
    ref.truncate(0, cut)
    lay = pc.layout(f)
    assert lay[-1] == (i0 + 3, 0)                 # the page holding the new EOF stays
    assert (i0, 1) in lay and (i0 + 2, 0) in lay  # halves kept below it
    assert pc.nrpages(f) == i0 + 4
    assert_same(pc, ref, k)
    # truncate up: nothing added; truncate to 0: empty
    pc.truncate(f, 9 << 20)
    assert pc.nrpages(f) == i0 + 4
    pc.truncate(f, 0)
    assert pc.nrpages(f) == 0 and pc.info(f)["xa_nodes"] == 0
    pc.check()
    k.check()


def test_truncate_dirty_unsplittable_folio_kept():
    k, pc, _ = make("4K")
    f = pc.create_file("/d", "1M", min_order=2)
    pc.read(f, 0, 1 << 20)
    # a min-order folio cannot be split further: clean -> dropped, dirty -> kept
    assert pc._c.set_flags(f.id, 9, 1 << 2)      # PG_dirty on the folio holding page 9
    pc.truncate(f, 9 * 4096 + 10)
    assert pc.layout(f)[-1] == (8, 2)
    pc.truncate(f, 5 * 4096 + 10)
    assert pc.layout(f)[-1] == (0, 2) or pc.layout(f)[-1][0] < 4
    pc.check()


def test_invalidate_skips_busy_and_drop_range():
    k, pc, _ = make("4K")
    f = pc.create_file("/b", "256K", large_folios=False)
    pc.read(f, 0, 256 << 10)
    assert pc._c.set_flags(f.id, 3, 1 << 2)       # dirty
    assert pc._c.set_flags(f.id, 5, 1 << 0)       # locked
    assert pc._c.set_flags(f.id, 7, 1 << 10)      # mlocked
    assert pc.invalidate(f) == 64 - 3
    assert [i for i, _ in pc.layout(f)] == [3, 5, 7]
    dropped, blocked = pc.drop_range(f, 0, 63)
    assert (dropped, blocked) == (0, 3)
    assert pc.drop_caches() == 0
    pc.check()
    k.check()


def test_folios_belong_to_kernel_and_are_freed():
    k, pc, _ = make("4K")
    free0 = k.core.buddy.nr_free_pages
    f = pc.create_file("/x", "3M")
    pc.read(f, 0, 3 << 20)
    fo = pc.folios(f)
    arr = k.core.folios.as_numpy()
    assert (arr["owner"][fo["pfn"]] == -2 - f.id).all()
    assert (arr["index"][fo["pfn"]] == fo["index"]).all()
    assert (arr["order"][fo["pfn"]] == fo["order"]).all()
    # the folios and the radix_tree_node slab pages of the XArray's nodes
    assert pc.xa_slab_bytes == -(-pc.xa_nodes // 14) * 8192      # 14 nodes per 2-page slab
    assert k.core.buddy.nr_free_pages == free0 - pc.cached_pages - pc.xa_slab_bytes // 4096
    assert pc.stats()["xa_nodes"] == pc.info(f)["xa_nodes"] > 0
    pc.drop_caches()
    assert k.core.buddy.nr_free_pages == free0 and pc.xa_nodes == 0
    k.check()


def test_kernel_freed_by_the_cycle_collector_gives_nodes_back():
    # a Kernel lives in reference cycles, so the collector frees it: the PageCache's
    # __dealloc__ must still find its per-file XArrays and their shared node pool
    # (before no_gc_clear / no_gc, a tp_clear could free either first: a segfault at
    # exit after a million-file compare)
    import gc
    k, pc, _ = make("4K")
    for i in range(50):
        pc.read(pc.create_file(f"/f{i}", "300K"), 0, 300 << 10)
    pool = pc._c.pool
    assert not gc.is_tracked(pool) and pool.nr_nodes > 0
    del k, pc
    gc.collect()
    assert pool.nr_nodes == 0


def test_set_folio_order_range_rules():
    k, pc, _ = make("4K")
    f = pc.create_file("/o", "1M")
    pc.set_folio_order_range(f, 12, 3)            # clamped to MAX_PAGECACHE_ORDER (9), max >= min
    assert (pc.info(f)["min_order"], pc.info(f)["max_order"]) == (9, 9)
    pc.set_folio_order_range(f, 2, 1)
    assert (pc.info(f)["min_order"], pc.info(f)["max_order"]) == (2, 2)
    k16 = Kernel("16K", "256M")
    p16 = PageCache(k16)
    g = p16.create_file("/o", "1M")
    assert p16.info(g)["max_order"] == 11 == p16.max_pagecache_order


def test_add_below_min_order_refused_and_livelock_detected():
    """The proposal's bail-out: a folio below the min order is refused; a min order
    raised over smaller cached folios (without dropping them) makes __filemap_get_folio
    hit -EEXIST forever at the new min order: detected and reported as ELOOP."""
    k, pc, _ = make("4K")
    f = pc.create_file("/l", "64K", large_folios=False)
    pc.read(f, 4096, 4096)              # some order-0 folios around page 1
    pc.set_folio_order_range(f, 4, 4)   # bump the min order without dropping
    with pytest.raises(OSError) as e:
        pc.get_folio(f, 8)              # page 8 is not cached; its 64K range is partly
    assert e.value.errno == 40
    assert pc.stats()["livelock"] == 1


def test_bad_input():
    k, pc, _ = make("4K")
    f = pc.create_file("/bad", 10_000)
    with pytest.raises(ValueError):
        pc.read(f, -1, 10)
    with pytest.raises(ValueError):
        pc.read(f, 0, -10)
    with pytest.raises(ValueError):
        pc.read(99, 0, 10)
    with pytest.raises(TypeError):
        pc.read(f, 0.5, 10)
    with pytest.raises(FileNotFoundError):
        pc.read("/nope", 0, 10)
    with pytest.raises(FileExistsError):
        pc.create_file("/bad", 1)
    with pytest.raises(ValueError):
        pc.create_file("/neg", -5)
    with pytest.raises(ValueError):
        pc.create_file("/mo", 5, min_order=12)
    with pytest.raises(ValueError):
        pc.get_folio(f, 0, order=10)
    assert pc.read(f, 20_000, 10)["bytes"] == 0           # past EOF: 0
    assert pc.read(f, 9_000, 5_000)["bytes"] == 1_000     # short read at EOF
    assert pc.read("/bad", 0, 0)["bytes"] == 0
    pc.check()
