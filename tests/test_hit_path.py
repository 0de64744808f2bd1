"""The access loop's hit path (issue 13 item 5): the walk of an address is started
WALK_AHEAD accesses early (the entry it ends on found and prefetched), and a valid
leaf allowing the access is a hit without a second walk; a fault makes the entries
found before it stale. A batch must give exactly what the same accesses one at a
time give (a batch of one never looks ahead): outcomes, counters, page tables."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppsize

K4 = 4096
M = 1 << 20

PROTS = ("r", "rw", "none", "rx")


def _build(kpage, ppage, pgtable, maps, holes, thp="never"):
    k = ppsize.Kernel(kpage, "64M", thp=thp)
    p = k.spawn(page_size=ppage, pgtable=pgtable)
    f = k.create_file("/data", 3 * M)
    addrs = []
    for length, prot, filed in maps:
        a = p.mmap(length * M, prot=prot, file=f if filed else None)
        addrs.append((a, length * M))
    for (a, n), (off, size) in zip(addrs, holes):
        P = p.page_size
        lo = a + (off % max(n // P, 1)) * P
        p.munmap(lo, min(size * P, a + n - lo))       # a hole: those walks fault SEGV
    return k, p, addrs


def _state(k, p, addrs):
    pages = np.concatenate([np.arange(a, a + n, K4, dtype=np.uint64) for a, n in addrs])
    tr = p.mm.pt.translate(pages)
    return (p.status(), k.meminfo(), np.asarray(tr.pa).tolist(), np.asarray(tr.status).tolist(),
            np.asarray(tr.prot).tolist())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kp=st.sampled_from(["4K", "16K"]), pp=st.sampled_from([None, "16K", "64K"]),
       pgtable=st.sampled_from(["emulated", "native"]),
       maps=st.lists(st.tuples(st.integers(1, 4), st.sampled_from(PROTS), st.booleans()),
                     min_size=1, max_size=4),
       holes=st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 8)), max_size=3),
       n=st.integers(33, 3000), seed=st.integers(0, 2**32 - 1),
       thp=st.sampled_from(["never", "always"]))
def test_batch_equals_one_at_a_time(kp, pp, pgtable, maps, holes, n, seed, thp):
    if pp is not None and ppsize.parse_size(pp) < ppsize.parse_size(kp):
        pp = None
    if pp is None:
        pgtable = "emulated"
    maps = [(2, "rw", False)] + maps           # something that hits
    a_k, a_p, addrs = _build(kp, pp, pgtable, maps, holes, thp)
    b_k, b_p, _ = _build(kp, pp, pgtable, maps, holes, thp)
    rng = np.random.default_rng(seed)
    # a small pool of pages (repeats: a fault, then hits on what it mapped, in one
    # batch), some addresses past every mapping and past the address space (no walk
    # at all), reads and writes mixed
    pool = np.concatenate([a + rng.integers(0, n_ // K4, 24, dtype=np.uint64) * K4
                           for a, n_ in addrs] + [np.array([addrs[-1][0] + addrs[-1][1] + 5 * M,
                                                            1 << 60, 1 << 60], np.uint64)])
    vas = (rng.choice(pool, n) + rng.integers(0, K4, n, dtype=np.uint64)).astype(np.uint64)
    writes = rng.random(n) < 0.4
    for _round in range(2):                  # cold (faults among hits), then warm
        batch = a_p.access(vas, write=writes)
        single = np.array([b_p.access(vas[i:i + 1], write=bool(writes[i]))[0] for i in range(n)])
        assert batch.tolist() == single.tolist()
        assert _state(a_k, a_p, addrs) == _state(b_k, b_p, addrs)
    assert (batch == ppsize.Outcome.HIT).any()
    a_k.check()
    b_k.check()


def test_hits_after_a_fault_in_the_look_ahead_window():
    """Addresses found ahead before a fault allocated their page table: each access
    after the fault walks again, so they fault (first touch) instead of being taken
    for hits or misses on stale entries."""
    k = ppsize.Kernel("4K", "64M", thp="never")
    p = k.spawn()
    a = p.mmap(8 * M)
    # 2 MiB apart: each address needs its own PTE table, allocated by its own fault
    vas = np.array([a + i * 2 * M + 8 for i in range(4)] * 20, dtype=np.uint64)
    out = p.access(vas, write=True)
    assert out[:4].tolist() == [ppsize.Outcome.FAULT] * 4
    assert (out[4:] == ppsize.Outcome.HIT).all()
    assert p.status()["minflt"] == 4
    k.check()


def test_faults_growing_the_table_pool_mid_batch():
    """Faults that allocate hundreds of PTE tables in one batch (the table pool grows:
    its arrays move, so entries found ahead before a fault point into freed memory)
    among hits on pages mapped earlier in the batch: the same as one at a time."""
    runs = []
    for one_at_a_time in (False, True):
        k = ppsize.Kernel("4K", "256M", thp="never")
        p = k.spawn()
        a = p.mmap(1 << 30)
        rng = np.random.default_rng(7)
        fresh = a + np.arange(400, dtype=np.uint64) * 2 * M           # a new table each
        vas = np.empty(2 * fresh.size, np.uint64)
        vas[0::2] = fresh
        vas[1::2] = fresh[rng.integers(0, np.arange(1, fresh.size + 1))]   # one seen already
        if one_at_a_time:
            out = np.array([p.access(vas[i:i + 1], write=True)[0] for i in range(vas.size)])
        else:
            out = p.access(vas, write=True)
        k.check()
        runs.append((out.tolist(), p.status(), p.page_table_bytes()))
    assert runs[0] == runs[1]
    assert runs[0][0].count(ppsize.Outcome.HIT) == 400


def test_remembered_leaf_tables_blocks_and_slot_reuse():
    """The access loop remembers the last-level tables its walks reach (LEAF_TABLES
    slots, by the VA range a table maps): PMD blocks (THP) among PTE tables, tables
    whose ranges share a slot (32 MiB apart: 16 slots of 2 MiB ranges), and a fault
    that adds a table mid-batch give exactly what one access at a time gives."""
    runs = []
    for one_at_a_time in (False, True):
        k = ppsize.Kernel("4K", "512M", thp="always")
        p = k.spawn()
        a = p.mmap(256 * M)
        a2 = (a + 2 * M - 1) // (2 * M) * (2 * M)               # 2 MiB aligned inside
        p.madvise(a2, 128 * M, "nohugepage")                    # PTE tables here
        blocks = a2 + 128 * M + 2 * M * np.arange(32, dtype=np.uint64)  # THP blocks here
        ptes = a2 + 32 * M * np.arange(4, dtype=np.uint64)      # one slot, four tables
        ptes = (ptes[:, None] + np.arange(0, 2 * M, 64 * 1024, dtype=np.uint64)).ravel()
        p.access(np.concatenate([ptes[:-32], blocks[:-1]]), write=True)   # some left cold
        rng = np.random.default_rng(5)
        vas = rng.choice(np.concatenate([ptes, blocks]), 6000) + rng.integers(0, 4096, 6000).astype(np.uint64)
        if one_at_a_time:
            out = np.array([p.access(vas[i:i + 1], write=True)[0] for i in range(vas.size)])
        else:
            out = p.access(vas, write=True)
        k.check()
        runs.append((out.tolist(), p.status(), p.page_table_bytes(), len(p.pmd_mapped_heads())))
    assert runs[0] == runs[1]
    assert runs[0][3] > 0                                       # blocks were mapped
    assert runs[0][0].count(ppsize.Outcome.HIT) > 5000


def test_addresses_past_the_address_space_among_hits():
    """An access past the address space (SEGV_MAPERR, no walk) does not leave the
    look-ahead without the entry of the address WALK_AHEAD after it."""
    k = ppsize.Kernel("4K", "64M", thp="never")
    p = k.spawn()
    a = p.mmap(4 * M, prot="r")                # reads of it map the zero page
    ro = p.mmap(4 * M, prot="r")
    p.access(np.arange(a, a + 4 * M, K4, dtype=np.uint64))
    rng = np.random.default_rng(3)
    vas = a + rng.integers(0, 4 * M, 4000).astype(np.uint64)
    vas[rng.random(4000) < 0.3] = np.uint64(1 << 60)
    vas[rng.random(4000) < 0.3] = np.uint64(ro + 8)  # never touched: faults
    one = np.array([p.access(vas[i:i + 1])[0] for i in range(vas.size)])
    k2 = ppsize.Kernel("4K", "64M", thp="never")
    p2 = k2.spawn()
    p2.mmap(4 * M, prot="r")
    p2.mmap(4 * M, prot="r")
    p2.access(np.arange(a, a + 4 * M, K4, dtype=np.uint64))
    batch = p2.access(vas)
    assert batch.tolist() == one.tolist()
    assert (batch == ppsize.Outcome.SEGV_MAPERR).sum() == (vas == np.uint64(1 << 60)).sum()
