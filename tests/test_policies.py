"""The page-cache min-order transition policies (Kernel.file_policy), long-term pins,
mlock and dirty folios that block them.

Expected figures are derived from the rules, not recorded: with readahead off
(``readahead=0``) every read or fault adds exactly one folio of the order the rules
give, so a file's layout is known in advance.
"""
import errno

import numpy as np
import pytest

from ppsize import Kernel, Outcome
from ppsize._core.folio import FOLIO_FLAGS

K = 1024
KP = 4096                     # kernel page
BIG = 64 * K                  # the large process page
PORD = 4                      # its order on a 4K kernel
FILE = 256 * K
NR = FILE // KP               # 64 pages
MAXO = 9                      # MAX_PAGECACHE_ORDER on 4K (PMD order)


def setup(policy, size=FILE, **kw):
    k = Kernel("4K", "256M", readahead=0, file_policy=policy, **kw)
    return k, k.create_file("/data", size)


def order0_cache(k, f, mapped=None):
    """A 4K process reads the file (order-0 folios, readahead off); with ``mapped``
    (bytes) it also maps that much of it shared and touches every page."""
    small = k.spawn(name="small")
    small.read(f)
    a = None
    if mapped:
        a = small.mmap(mapped, file=f, prot="rw", shared=True)
        small.access(np.arange(a, a + mapped, KP))
    assert k.pagecache.layout(f) == [(i, 0) for i in range(NR)]
    return small, a


def no_blocks(rep):
    return rep["blocked"]["folios"] == [] and rep["pages_blocked"] == 0


# ------------------------------------------------------------------ drop-all
def test_drop_all_drops_whole_file_and_faults_reread_at_process_order():
    k, f = setup("drop-all")
    small, a = order0_cache(k, f, mapped=FILE)
    big = k.spawn(page_size="64K", name="big")
    b = big.mmap(BIG, file=f, offset=BIG, prot="r")          # pages 16..31
    (t,) = k.transitions
    assert t["policy"] == "drop-all" and t["status"] == "done" and no_blocks(t)
    assert t["min_order"] == (0, PORD) and t["range"] == (0, NR - 1)
    assert t["folios_dropped"] == NR and t["pages_dropped"] == NR
    assert t["pages_unmapped"] == NR                             # every page small mapped
    assert t["cached_before_kb"] == FILE // K and t["cached_after_kb"] == 0
    assert t["meminfo_cached_before_kb"] - t["meminfo_cached_after_kb"] == FILE // K
    assert t["reread_pages"] == 0 and t["leftover_folios"] == []
    assert k.pagecache.layout(f) == [] and small.status()["RssFile"] == 0
    # the faults that follow re-read one process-order folio each, counted as they happen
    assert big.access([b]).tolist() == [Outcome.MAJOR]
    assert k.pagecache.layout(f) == [(16, PORD)]
    assert k.transitions[0]["pages_read_after"] == 1 << PORD
    assert small.access([a]).tolist() == [Outcome.MAJOR]         # small faults too: order 4
    assert k.pagecache.layout(f) == [(0, PORD), (16, PORD)]
    t = k.transitions[0]
    assert t["pages_read_after"] == 2 << PORD and t["bytes_read_after"] == 2 * BIG
    assert t["cached_now_kb"] == 2 * BIG // K
    assert k.check(strict=True) and k.mixed_files() == {}
    # a second 64K process: the order is already raised, no transition
    k.spawn(page_size="64K").mmap(FILE, file=f, prot="r")
    assert len(k.transitions) == 1


def test_drop_all_keeps_private_cow_copies():
    k, f = setup("drop-all")
    small = k.spawn()
    a = small.mmap(FILE, file=f, prot="rw")                      # private
    small.access(np.arange(a, a + FILE, KP))
    small.access([a], write=True)                                 # one COW copy (anon)
    k.spawn(page_size="64K").mmap(BIG, file=f, prot="r")
    (t,) = k.transitions
    assert t["pages_unmapped"] == NR - 1                          # even_cows=0
    assert small.status()["RssAnon"] == 4 and small.status()["RssFile"] == 0
    k.check(strict=True)


# ------------------------------------------------------------------ range
def test_range_drops_and_rereads_only_the_mapped_range_leaving_small_folios():
    k, f = setup("range")
    small, a = order0_cache(k, f, mapped=FILE // 2)              # maps pages 0..31
    big = k.spawn(page_size="64K")
    lo, hi = 16, 31                                              # offset 64K, 64K long
    big.mmap(BIG, file=f, offset=lo * KP, prot="r")
    (t,) = k.transitions
    assert t["policy"] == "range" and t["status"] == "done" and no_blocks(t)
    assert t["range"] == (lo, hi) and t["min_order"] == (0, PORD)
    n = hi - lo + 1
    assert t["folios_dropped"] == n and t["pages_dropped"] == n
    assert t["pages_unmapped"] == n                              # small mapped the range
    assert t["reread_pages"] == n                                # one order-4 folio
    outside = [(i, 0) for i in range(NR) if not lo <= i <= hi]
    assert t["leftover_folios"] == outside and t["leftover_pages"] == NR - n
    assert t["cached_before_kb"] == t["cached_after_kb"] == FILE // K
    assert k.pagecache.layout(f) == [(i, 0) for i in range(lo)] + [(lo, PORD)] + \
        [(i, 0) for i in range(hi + 1, NR)]
    assert small.status()["RssFile"] == (FILE // 2 - n * KP) // K
    # the policy's flaw, recorded: the file is mixed, check() says exactly how
    mixed = k.mixed_files()
    assert mixed == {"/data": {"min_order": PORD, "folios": outside, "pages": NR - n}}
    assert k.check()
    with pytest.raises(AssertionError, match=r"below their min order.*/data: min order 4"):
        k.check(strict=True)


def test_range_leftovers_livelock_reads_and_faults_in_partial_blocks():
    k, f = setup("range")
    small, a = order0_cache(k, f, mapped=FILE // 2)
    k.spawn(page_size="64K").mmap(BIG, file=f, offset=16 * KP, prot="r")
    # pages 32..35 leave the cache; 36..47 (order 0) stay: a partially populated block
    assert k.pagecache.invalidate(f, 32, 35) == 4
    with pytest.raises(OSError, match="livelocked") as e:
        small.read(f, 33 * KP, 100)
    assert e.value.errno == errno.ELOOP
    c = small.mmap(FILE, file=f, prot="r")
    assert small.access([c + 33 * KP]).tolist() == [Outcome.OOM]  # filemap_fault cannot add
    assert k.pagecache.stats()["livelock"] == 2
    k.check()                                                    # nothing new below min order
    # another 64K process mapping that block: a second range transition fixes it
    k.spawn(page_size="64K").mmap(BIG, file=f, offset=32 * KP, prot="r")
    t = k.transitions[-1]
    assert t["range"] == (32, 47) and t["min_order"] == (PORD, PORD)
    assert t["folios_dropped"] == 12 and t["reread_pages"] == 16
    assert k.mixed_files()["/data"]["pages"] == NR - 32
    assert small.read(f, 33 * KP, 100)["bytes"] == 100
    k.check()


def test_range_without_small_folios_in_range_does_nothing():
    k, f = setup("range")
    big = k.spawn(page_size="64K")
    big.mmap(FILE, file=f, prot="r")                             # empty cache: just the bump
    (t,) = k.transitions
    assert t["min_order"] == (0, PORD) and t["folios_dropped"] == 0 and t["leftover_folios"] == []
    big.mmap(FILE, file=f, prot="r")
    assert len(k.transitions) == 1
    assert k.check(strict=True)


# ------------------------------------------------------------ max-order-on-mmap
def fit_order(size):
    nr = max(1, -(-size // KP))
    return min(MAXO, nr.bit_length() - 1)


@pytest.mark.parametrize("size", [KP, 2 * KP, 3 * KP, 60 * K, 64 * K, 68 * K,
                                  2048 * K - KP, 2048 * K, 4096 * K + KP])
def test_max_order_on_mmap_layouts_around_the_order_boundary(size):
    k, _ = setup("max-order-on-mmap")
    f = k.create_file("/s", size)
    p = k.spawn()
    a = p.mmap(size, file=f, prot="r")
    p.access(np.arange(a, a + size, KP))
    m = fit_order(size)
    nr = -(-size // KP)
    nfolios = -(-nr // (1 << m))
    assert k.pagecache.info(f)["min_order"] == m
    assert k.pagecache.layout(f) == [(i << m, m) for i in range(nfolios)]
    assert k.pagecache.nrpages(f) == nfolios << m       # the last folio may pass EOF
    ts = [t for t in k.transitions if t["file"] == "/s"]
    assert ts == [] if m == 0 else [t["min_order"] for t in ts] == [(0, m)]
    # a second mmap, any page size not above the order: no transition
    p.mmap(size, file=f, prot="r")
    assert [t for t in k.transitions if t["file"] == "/s"] == ts
    k.check(strict=True)


def test_max_order_on_mmap_drops_earlier_cache_and_larger_page_raises_further():
    k, f = setup("max-order-on-mmap", size=3 * KP)
    small = k.spawn()
    small.read(f)
    assert k.pagecache.layout(f) == [(0, 0), (1, 0), (2, 0)]
    small.mmap(3 * KP, file=f, prot="r")
    (t,) = k.transitions
    assert t["reason"] == "first mmap" and t["min_order"] == (0, 1) and t["pages_dropped"] == 3
    big = k.spawn(page_size="64K")
    b = big.mmap(BIG, file=f, prot="r")
    t = k.transitions[-1]
    assert t["reason"] == "larger process page" and t["min_order"] == (1, PORD)
    big.access([b])
    assert k.pagecache.layout(f) == [(0, PORD)]
    k.check(strict=True)


# ------------------------------------------------------------ large-unless-eof
def eof_layout(size, order=PORD):
    """Folios of ``order`` while they fit below EOF, then the tail in the largest
    folios that fit (readahead's shrinking), i.e. the binary digits of the rest."""
    nr = -(-size // KP)
    out, i = [], 0
    while i + (1 << order) <= nr:
        out.append((i, order))
        i += 1 << order
    for o in range(order - 1, -1, -1):
        if (nr - i) >> o & 1:
            out.append((i, o))
            i += 1 << o
    return out


SIZES = [1, KP, 10 * K, 60 * K, 64 * K, 68 * K, 100 * K, 128 * K, 1024 * K + KP]


@pytest.mark.parametrize("size", SIZES)
def test_large_unless_eof_read_layouts(size):
    k = Kernel("4K", "256M", readahead=0, file_policy="large-unless-eof", large_folio_size="64K")
    f = k.create_file("/f", size)
    k.spawn().read(f)
    assert k.pagecache.layout(f) == eof_layout(size)
    assert k.pagecache.nrpages(f) == -(-size // KP)              # nothing past EOF
    assert k.transitions == []
    k.check(strict=True)


@pytest.mark.parametrize("size", SIZES)
def test_large_unless_eof_with_readahead_and_faults(size):
    k = Kernel("4K", "256M", file_policy="large-unless-eof")
    big = k.spawn(page_size="64K")                    # the largest page in use: 64K folios
    assert k.large_folio_size == BIG and k.pagecache.eof_order == PORD
    f = k.create_file("/f", size)
    a = big.mmap(max(size, 1), file=f, prot="r")
    big.access(np.arange(a, a + max(size, 1), BIG)[::-1])         # backwards: no streams
    nr = -(-size // KP)
    lay = k.pagecache.layout(f)
    assert sum(1 << o for _, o in lay) == nr                      # whole file, nothing past EOF
    tail = nr & ~((1 << PORD) - 1)
    assert all(o >= PORD for i, o in lay if i < tail)             # small only in the last block
    assert [x for x in lay if x[0] >= tail] == [x for x in eof_layout(size) if x[0] >= tail]
    assert k.transitions == []                                    # no transition on mmap
    k.check(strict=True)


def test_large_unless_eof_follows_largest_page_and_respects_no_large_folios():
    k = Kernel("4K", "256M", readahead=0, file_policy="large-unless-eof")
    assert k.pagecache.eof_order == -1                            # only 4K processes
    f = k.create_file("/a", 64 * K)
    k.spawn().read(f)
    assert k.pagecache.layout(f) == [(i, 0) for i in range(16)]   # cached before: stays
    k.spawn(page_size="16K")
    assert k.pagecache.eof_order == 2
    g = k.create_file("/b", 64 * K)
    h = k.create_file("/c", 64 * K, large_folios=False)
    p = k.spawn()
    p.read(g)
    p.read(h)
    assert k.pagecache.layout(g) == [(0, 2), (4, 2), (8, 2), (12, 2)]
    assert k.pagecache.layout(h) == [(i, 0) for i in range(16)]
    k.file_policy = "drop-all"
    assert k.pagecache.eof_order == -1
    k.check()


# ------------------------------------------------------------ blocking
def block(kind, small, a, k):
    """Make pages 32..33 of the mapping at a busy; returns (key, pages, release)."""
    if kind == "pin":
        assert small.pin(a + 32 * KP, 2 * KP) == 2
        return "pinned", 2, lambda: small.unpin(a + 32 * KP, 2 * KP)
    if kind == "mlock":
        small.mlock(a + 32 * KP, 2 * KP)
        return "mlocked", 2, lambda: small.munlock(a, FILE)
    small.access([a + 32 * KP, a + 33 * KP], write=True)          # shared writes: dirty
    return "dirty", 2, lambda: k.writeback()


@pytest.mark.parametrize("policy", ["drop-all", "range"])
@pytest.mark.parametrize("kind", ["pin", "mlock", "dirty"])
def test_blocked_transition_fails_mmap_then_succeeds_after_release(kind, policy):
    k, f = setup(policy)
    small, a = order0_cache(k, f, mapped=FILE)
    key, pages, release = block(kind, small, a, k)
    big = k.spawn(page_size="64K")
    with pytest.raises(OSError) as e:
        big.mmap(BIG, file=f, offset=32 * KP, prot="r")
    assert e.value.errno == errno.EBUSY and key in str(e.value)
    (t,) = k.transitions
    assert t["status"] == "blocked" and t["min_order"] == (0, 0) and t["target_order"] == PORD
    assert t["blocked"][key] == pages and t["pages_blocked"] == pages
    assert [(b["index"], b["order"], b["why"]) for b in t["blocked"]["folios"]] == \
        [(32, 0, [key]), (33, 0, [key])]
    assert t["pages_dropped"] == t["pages_unmapped"] == 0
    assert k.pagecache.layout(f) == [(i, 0) for i in range(NR)]    # nothing changed
    assert small.status()["RssFile"] == FILE // K
    assert big.aspace.vmas.rows() == [] and k.pagecache.info(f)["min_order"] == 0
    k.check(strict=True)
    release()
    b = big.mmap(BIG, file=f, offset=32 * KP, prot="r")
    t = k.transitions[-1]
    assert t["status"] == "done" and no_blocks(t) and t["min_order"] == (0, PORD)
    assert t["pages_dropped"] == (NR if policy == "drop-all" else 16)
    assert big.access([b]).tolist() == [Outcome.MAJOR if policy == "drop-all" else Outcome.FAULT]
    assert k.check()


def test_blocking_is_scoped_to_the_range_for_range_policy():
    k, f = setup("range")
    small, a = order0_cache(k, f, mapped=FILE)
    small.pin(a, KP)                                               # page 0, outside the range
    k.spawn(page_size="64K").mmap(BIG, file=f, offset=32 * KP, prot="r")
    assert k.transitions[-1]["status"] == "done"
    small.unpin(a, KP)
    k.check()


def test_max_order_on_mmap_blocked_then_done():
    k, f = setup("max-order-on-mmap", size=3 * KP)
    small = k.spawn()
    a = small.mmap(3 * KP, file=f, prot="rw", shared=True)       # switch: order 1
    small.access([a, a + 2 * KP], write=True)
    big = k.spawn(page_size="64K")
    with pytest.raises(OSError, match="dirty"):
        big.mmap(BIG, file=f, prot="r")
    assert k.transitions[-1]["blocked"]["dirty"] == 4              # two order-1 folios
    assert k.writeback() == 4
    big.mmap(BIG, file=f, prot="r")
    assert k.transitions[-1]["min_order"] == (1, PORD)
    k.check(strict=True)


# ------------------------------------------------------------ mlock / pin / dirty
def mlocked(k, f):
    fo = k.pagecache.folios(f)
    return fo["index"][(fo["flags"] & FOLIO_FLAGS["mlocked"]) != 0].tolist()


def test_mlock_splits_vmas_populates_and_marks_folios():
    k, f = setup("drop-all")
    p = k.spawn()
    a = p.mmap(FILE, file=f, prot="r")
    assert p.mlock(a + 16 * KP + 100, 16 * KP) == 0               # unaligned start widened
    rows = p.aspace.vmas.rows()
    assert [(s - a, e - a) for s, e, *_ in rows] == [(0, 16 * KP), (16 * KP, 33 * KP), (33 * KP, FILE)]
    assert p.status()["RssFile"] == 17 * KP // K                   # __mm_populate
    assert mlocked(k, f) == list(range(16, 33))
    c = p.fork()                                                   # not inherited
    assert not any(fl & 0x2000 for _, _, fl, *_ in c.aspace.vmas.rows())
    p.munlock(a, FILE)
    assert len(p.aspace.vmas.rows()) == 1                          # merged back
    assert mlocked(k, f) == []
    p.mlock(a, 4 * KP, onfault=True)                               # no populate
    assert p.status()["RssFile"] == 17 * KP // K
    p.access([a])
    assert mlocked(k, f) == [0]
    p.munmap(a, KP)                                                # unmapped: munlocked
    assert mlocked(k, f) == []
    with pytest.raises(OSError) as e:
        p.mlock(a, FILE)                                           # a hole at a
    assert e.value.errno == errno.ENOMEM
    k.check()


def test_mlock_shared_by_two_processes_stays_until_both_unlock():
    k, f = setup("drop-all")
    p, q = k.spawn(), k.spawn()
    a = p.mmap(FILE, file=f, prot="r")
    b = q.mmap(FILE, file=f, prot="r")
    p.mlock(a, KP)
    q.mlock(b, KP)
    p.munlock(a, KP)
    assert mlocked(k, f) == [0]
    q.exit()
    assert mlocked(k, f) == []
    k.check()


def test_pin_anon_keeps_unmapped_folio_until_unpin_and_exit_releases():
    k = Kernel("4K", "256M")
    boot = k.meminfo()["MemFree"]
    p = k.spawn()
    a = p.mmap(BIG, prot="rw")
    free0 = k.meminfo()["MemFree"]
    assert p.pin(a, 2 * KP, write=True) == 2
    assert p.pins == [(a, a + 2 * KP, 2)]
    assert free0 - k.meminfo()["MemFree"] > 2 * KP >> 10            # the pages and their tables
    p.munmap(a, BIG)
    assert free0 - k.meminfo()["MemFree"] == 2 * KP >> 10           # pinned: still allocated
    k.check()
    assert p.unpin(a, BIG) == 2
    assert k.meminfo()["MemFree"] == free0
    b = p.mmap(BIG, prot="rw")
    p.pin(b, KP, write=True)
    p.exit()
    assert k.meminfo()["MemFree"] == boot                           # the PGD too
    k.check()


def test_pin_blocks_cow_reuse_and_invalidate():
    k, f = setup("drop-all")
    p = k.spawn()
    a = p.mmap(FILE, file=f, prot="r", shared=False)
    p.pin(a, KP)
    assert k.pagecache.invalidate(f, 0, 0) == 0                    # mapped and pinned
    p.munmap(a, FILE)
    assert k.pagecache.invalidate(f, 0, 0) == 0                    # still pinned
    p.unpin(a, FILE)
    assert k.pagecache.invalidate(f, 0, 0) == 1
    k.check()


def test_writeback_cleans_and_write_protects():
    k, f = setup("drop-all")
    p = k.spawn()
    a = p.mmap(FILE, file=f, prot="rw", shared=True)
    p.access([a, a + KP], write=True)
    assert k.writeback() == 2
    assert not (k.pagecache.folios(f)["flags"] & FOLIO_FLAGS["dirty"]).any()
    assert p.access([a], write=True).tolist() == [Outcome.FAULT]   # wp_page_shared again
    assert k.sync() == 1
    k.check()


# ------------------------------------------------------------ bad input
def test_bad_input():
    with pytest.raises(ValueError, match="range, drop-all, max-order-on-mmap, large-unless-eof"):
        Kernel("4K", "64M", file_policy="drop-some")
    k, f = setup("drop-all")
    with pytest.raises(ValueError, match="unknown file policy"):
        k.file_policy = "max"
    assert k.file_policy == "drop-all"
    for bad in ("3K", "2K"):
        with pytest.raises(ValueError, match="power of two"):
            k.large_folio_size = bad
    with pytest.raises(ValueError, match="MAX_PAGECACHE_ORDER"):
        k.large_folio_size = "4M"
    with pytest.raises(ValueError, match="out of range"):
        k.file_min_order(f, 12)
    with pytest.raises(TypeError, match="order must be an int"):
        k.file_min_order(f, "4")
    with pytest.raises(ValueError, match="no transition"):
        k.file_min_order(f, 4, policy="large-unless-eof")
    with pytest.raises(ValueError, match="unknown file policy"):
        k.file_min_order(f, 4, policy="nope")
    p = k.spawn()
    with pytest.raises(OSError) as e:
        p.pin(0x10000, KP)
    assert e.value.errno == errno.EFAULT
    a = p.mmap(BIG, prot="r")
    with pytest.raises(ValueError, match="not aligned"):
        p.pin(a + 1, KP)
    with pytest.raises(ValueError, match="no pin"):
        p.unpin(a, BIG)
    with pytest.raises(OSError) as e:
        p.mlock(a + BIG, KP)
    assert e.value.errno == errno.ENOMEM
    with pytest.raises(OSError) as e:
        p.aspace.sys_mlock(a, KP, 4)
    assert e.value.errno == errno.EINVAL
    # explicit transitions through the API, without mmap
    assert k.file_min_order(f, 0) is None
    r = k.file_min_order(f, 2, policy="range", first=0, last=3)
    assert r["range"] == (0, 3) and r["min_order"] == (0, 2)
    k.check()


# ------------------------------------------------------------------ mremap
@pytest.mark.parametrize("flags", [0, "maymove"])
def test_range_mremap_growth_transitions_the_new_pages(flags):
    k, f = setup("range")
    small, a = order0_cache(k, f, mapped=FILE)
    big = k.spawn(page_size="64K")
    b = big.mmap(BIG, file=f, offset=16 * KP, prot="r")           # pages 16..31
    if flags:
        big.mmap(BIG, addr=b + BIG, prot="r", fixed=True)         # in-place growth impossible
    assert len(k.transitions) == 1
    c = big.mremap(b, BIG, 2 * BIG, flags)                        # now also pages 32..47
    assert (c != b) == bool(flags)
    t = k.transitions[-1]
    assert len(k.transitions) == 2 and t["status"] == "done" and t["range"] == (32, 47)
    assert t["folios_dropped"] == 16 and t["reread_pages"] == 16
    assert big.access([c + BIG]).tolist() == [Outcome.FAULT]      # minor: the re-read folio
    assert [x for x in k.pagecache.layout(f) if 16 <= x[0] < 48] == [(16, PORD), (32, PORD)]
    big.mremap(c, 2 * BIG, BIG)                                   # shrinking maps nothing new
    assert len(k.transitions) == 2
    k.check()


def test_mremap_growth_blocked_fails_with_ebusy_changing_nothing():
    k, f = setup("range")
    small, a = order0_cache(k, f, mapped=FILE)
    small.pin(a + 40 * KP, KP)
    big = k.spawn(page_size="64K")
    b = big.mmap(BIG, file=f, offset=16 * KP, prot="r")
    before = big.aspace.vmas.rows()
    with pytest.raises(OSError, match="mremap: range transition .* 1 pinned") as e:
        big.mremap(b, BIG, 2 * BIG)
    assert e.value.errno == errno.EBUSY
    assert big.aspace.vmas.rows() == before and len(k.transitions) == 1
    assert [x for x in k.pagecache.layout(f) if 32 <= x[0] < 48] == [(i, 0) for i in range(32, 48)]
    small.unpin(a + 40 * KP, KP)
    assert big.mremap(b, BIG, 2 * BIG) == b and k.transitions[-1]["range"] == (32, 47)
    k.check()


def test_drop_all_mremap_growth_needs_no_transition():
    k, f = setup("drop-all")
    order0_cache(k, f)
    big = k.spawn(page_size="64K")
    b = big.mmap(BIG, file=f, prot="r")
    big.mremap(b, BIG, 2 * BIG)
    assert len(k.transitions) == 1                                # the min order is already 4
    k.check(strict=True)


# ------------------------------------------------------------ the policy module
def test_one_policy_list_and_one_function_per_policy():
    from ppsize import compare, filepolicy, kernel, race
    assert kernel.FILE_POLICIES is compare.FILE_POLICIES is filepolicy.FILE_POLICIES
    assert tuple(filepolicy.ON_MMAP) == filepolicy.FILE_POLICIES
    assert race.POLICIES == filepolicy.TRANSITION_POLICIES == ("range", "drop-all", "max-order-on-mmap")


def test_transition_is_a_frozen_record_readable_as_a_mapping():
    import dataclasses
    from ppsize.filepolicy import Transition
    k, f = setup("drop-all")
    order0_cache(k, f)
    k.spawn(page_size="64K").mmap(BIG, file=f, prot="r")
    (t,) = k.transitions
    assert isinstance(t, Transition)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.status = "blocked"
    assert t["status"] == t.status == "done" and t.get("nope", 3) == 3
    with pytest.raises(KeyError):
        t["nope"]
    d = t.as_dict()
    assert list(d) == t.keys() and dict(t.items()) == d and Transition(**d) == t
    assert {"policy", "file", "pages_read_after", "cached_now_kb", "blocked"} <= set(d)


def test_map_locked_mlocks_what_it_populates():
    k, f = setup("drop-all")
    p = k.spawn()
    a = p.mmap(FILE, file=f, prot="r", locked=True)                # MAP_LOCKED: populated, mlocked
    assert p.status()["RssFile"] == FILE // K and mlocked(k, f) == list(range(NR))
    with pytest.raises(OSError) as e:
        k.spawn(page_size="64K").mmap(BIG, file=f, prot="r")
    assert e.value.errno == errno.EBUSY and f"{NR} mlocked" in str(e.value)
    p.munmap(a, FILE)
    assert mlocked(k, f) == []
    k.check()
