"""Page tables and XArray nodes are kernel memory (issue 15, class 3): table pages come
from the buddy allocator (pagetable_alloc; a PGD below a kernel page from a pgd_cache),
the page cache's XArray nodes are radix_tree_node slab objects on slab pages, a fault
that cannot get a table is VM_FAULT_OOM, and MemTotal - MemFree is exactly the used
counters (Kernel.check())."""
import errno

import numpy as np
import pytest

import ppsize
from ppsize import Outcome as O
from ppsize.kernel import PGTABLE_OWNER, SLAB_OWNER

K4, G = 4096, 1 << 30


def used_kb(m):
    """What the counters say is in use (kB) on an anonymous-only kernel with 4K roots."""
    return m["AnonPages"] + m["PageTables"] + m["Cached"] + m["XArrayNodes"]


def table_folios(k):
    """{head pfn: order} of the page-table folios."""
    f = k.core.folios.as_numpy()
    heads = np.flatnonzero((f["order"] >= 0) & (f["owner"] == PGTABLE_OWNER))
    return {int(h): int(f["order"][h]) for h in heads}


def test_tiny_machine_runs_out_of_table_memory():
    # 16 frames: 4 the zero region, 1 the PGD; each 1G step needs a PMD table, a PTE
    # table and the page (the first also the PUD table)
    k = ppsize.Kernel("4K", "64K", thp="never")
    free0 = k.meminfo()["MemFree"]
    p = k.spawn()
    assert k.meminfo()["MemFree"] == free0 - 4 and k.kmem_stats()["pagetable_pages"] == 1
    a = p.mmap(16 * G, noreserve=True)
    out = p.access(a + np.arange(8, dtype=np.uint64) * np.uint64(G), True)
    # 11 frames: 4 + 3 + 3, then a PMD table but no PTE table: OOM; then no PMD table
    assert out.tolist() == [O.FAULT] * 3 + [O.OOM] * 5
    assert k.oom_count == 5 and k.kmem_stats()["pagetable_fail"] == 5
    m = k.meminfo()
    assert m["MemFree"] == 0 and m["PageTables"] == 9 * 4 and m["AnonPages"] == 3 * 4
    assert m["MemFree"] + used_kb(m) == m["MemTotal"]
    assert p.status()["VmPTE"] == 8 * 4               # PUD, 4 PMDs, 3 PTEs (not the PGD)
    k.check()
    p.munmap(a, 16 * G)                               # free_pgtables of the whole hole
    assert k.meminfo()["MemFree"] == free0 - 4 and k.kmem_stats()["pagetable_pages"] == 1
    assert p.access([a], True).tolist() == [O.SEGV_MAPERR]
    b = p.mmap(64 * K4)
    assert p.access([b], True).tolist() == [O.FAULT]  # memory is back: faults work again
    k.check()
    p.exit()
    assert k.meminfo()["MemFree"] == free0 and k.kmem_stats()["pagetable_pages"] == 0
    k.check()


def test_native_64k_tables_are_order4_blocks_and_fail_under_fragmentation():
    k = ppsize.Kernel("4K", "64M", thp="never")
    p64 = k.spawn("64K", "native")
    p4 = k.spawn()
    e64 = k.spawn("64K", "emulated")
    pgd = k.kmem_stats()["caches"]["pgd-512"]       # the 512-byte native PGD: pgd_cache
    assert (pgd["objects"], pgd["slabs"], pgd["order"]) == (1, 1, 1)
    before = table_folios(k)
    a = p64.mmap(2 * G)
    assert p64.access([a], True).tolist() == [O.FAULT]
    new = {h: o for h, o in table_folios(k).items() if h not in before}
    assert sorted(new.values()) == [4, 4]            # the 64K PMD and PTE tables: order 4
    assert all(h % 16 == 0 for h in new)
    assert k.kmem_stats()["pagetable_pages"] == 2 * 16 + 2   # + the 4K processes' PGDs
    b, c = p4.mmap(2 * G), e64.mmap(2 * G)
    assert p4.access([b], True).tolist() == [O.FAULT]
    assert e64.access([c], True).tolist() == [O.FAULT]
    k.check()
    # an aged machine: only order-0 blocks free (the churn's blocks stay allocated)
    k.fragment(seed=0, steps=200_000, fill=0.999, orders=[0], free_prob=0.002)
    free = [int(x) for x in k.buddyinfo().split()[4:]]
    assert free[0] > 2 and not any(free[1:])
    fail0, oom0 = k.kmem_stats()["pagetable_fail"], k.oom_count
    # a native fault in a new 512M PTE-table span needs an order-4 table first: OOM there
    assert p64.access([a + G], True).tolist() == [O.OOM]
    assert k.kmem_stats()["pagetable_fail"] == fail0 + 1 and k.oom_count == oom0 + 1
    # the emulated 64K process gets its (order-0) table but no 64K folio: OOM, not a table's
    assert e64.access([c + G], True).tolist() == [O.OOM]
    assert k.kmem_stats()["pagetable_fail"] == fail0 + 1
    # a 4K process still faults there: an order-0 PTE table and an order-0 page
    assert p4.access([b + G], True).tolist() == [O.FAULT]
    k.check()
    k.release_fragments()
    assert p64.access([a + G], True).tolist() == [O.FAULT]
    k.check()


@pytest.mark.parametrize("kpage,page,pgtable", [
    ("4K", None, "emulated"), ("4K", "16K", "native"), ("4K", "64K", "native"),
    ("4K", "64K", "emulated"), ("16K", None, "emulated"), ("64K", None, "emulated")])
def test_munmap_and_exit_give_the_frames_back(kpage, page, pgtable):
    k = ppsize.Kernel(kpage, "256M", thp="always")
    free0 = k.meminfo()["MemFree"]
    p = k.spawn(page, pgtable)
    spawned = k.meminfo()["MemFree"]
    assert spawned < free0                          # the PGD is kernel memory
    a = p.mmap(4 * G, noreserve=True)
    step = np.uint64(p.page_size * 1021)
    p.access(a + np.arange(60, dtype=np.uint64) * step, True)
    m = k.meminfo()
    assert m["PageTables"] > 0 and k.kmem_stats()["pagetable_pages"] > 0
    k.check()                                       # identity: tables and slab included
    q = p.fork()
    k.check()
    q.exit()
    p.munmap(a, 4 * G)
    assert k.meminfo()["MemFree"] == spawned
    p.exit()
    st = k.kmem_stats()
    assert k.meminfo()["MemFree"] == free0 and st["pagetable_pages"] == 0
    assert all(c["objects"] == c["slabs"] == 0 for c in st["caches"].values())
    k.check()


def test_pagecache_enomem_when_no_slab_page():
    # only scattered order-0 frames left: a folio fits, a 2-page radix_tree_node slab not
    k = ppsize.Kernel("4K", "16M", thp="never")
    p = k.spawn()
    k.fragment(seed=1, steps=100_000, fill=0.999, orders=[0], free_prob=0.002)
    assert not any(int(x) for x in k.buddyinfo().split()[5:])
    f = k.create_file("/f", "4M", large_folios=False)
    with pytest.raises(OSError) as e:
        p.read(f, 64 * K4, K4)                       # index 64: the XArray needs nodes
    assert e.value.errno == errno.ENOMEM
    cache = k.kmem_stats()["caches"]["radix_tree_node"]
    assert cache["fail"] >= 1 and cache["objects"] == 0 and k.pagecache.cached_pages == 0
    c = p.mmap(4 << 20, file=f, prot="r")
    oom = k.oom_count
    assert p.access([c + 200 * K4], False).tolist() == [O.OOM]   # filemap_fault: ENOMEM
    assert k.oom_count == oom + 1
    k.check()
    k.release_fragments()
    assert p.access([c + 200 * K4], False).tolist() == [O.MAJOR]
    cache = k.kmem_stats()["caches"]["radix_tree_node"]
    assert cache["objects"] == k.pagecache.xa_nodes > 0
    assert k.meminfo()["XArrayNodes"] == cache["slabs"] * 8  # 14 nodes per 8K slab
    k.check()


def test_fork_without_table_memory_fails_cleanly():
    k = ppsize.Kernel("4K", "64K", thp="never")
    p = k.spawn()
    a = p.mmap(8 * G, noreserve=True)
    p.access(a + np.arange(3, dtype=np.uint64) * np.uint64(G), True)   # 3 + 3 + 4 frames
    m0, procs = k.meminfo(), len(k.processes)
    with pytest.raises(OSError) as e:
        p.fork()                                      # PGD fits, the copy's tables not
    assert e.value.errno == errno.ENOMEM
    assert k.meminfo() == m0 and len(k.processes) == procs
    k.check()
    p.munmap(a + G, 7 * G)
    q = p.fork()
    assert q.access([a], False).tolist() == [O.HIT]
    k.check()


def test_spawn_without_memory_for_the_pgd():
    k = ppsize.Kernel("4K", "64K", thp="never")
    p = k.spawn()
    a = p.mmap(64 * K4)
    p.access(a + np.arange(64, dtype=np.uint64) * np.uint64(K4), True)
    assert k.meminfo()["MemFree"] == 0
    with pytest.raises(OSError) as e:
        k.spawn()
    assert e.value.errno == errno.ENOMEM
    with pytest.raises(OSError):
        p.exec()                                      # the new MM first: the old one stays
    assert p.alive and p.access([a], False).tolist() == [O.HIT]
    k.check()


def test_check_finds_a_table_frame_that_is_not_a_live_table():
    k = ppsize.Kernel("4K", "16M")
    p = k.spawn()
    a = p.mmap(1 << 20)
    p.access([a], True)
    k.check()
    pfn = max(table_folios(k))
    k.core.folios.free(pfn)                          # the frame loses its table folio
    with pytest.raises(AssertionError, match="MemTotal - MemFree|page-table"):
        k.check()
    k.core.folios.init(pfn, 0, 0, PGTABLE_OWNER, 12345)    # another MM's tag
    with pytest.raises(AssertionError, match="not its own"):
        k.check()


def test_check_finds_a_stray_slab_page():
    k = ppsize.Kernel("4K", "16M")
    f = k.create_file("/f", "1M")
    k.pagecache.read(f, 0, 1 << 20)
    k.check()
    pfn = k.core.buddy.alloc_pages(1, "reclaimable")
    k.core.folios.init(pfn, 1, 0, SLAB_OWNER, -1)    # a slab page on no cache's list
    with pytest.raises(AssertionError, match="slab"):
        k.check()


def test_thp_deposit_is_charged_withdrawn_by_a_split_and_freed_by_a_zap():
    k = ppsize.Kernel("4K", "64M", thp="always")
    p = k.spawn()
    a = p.mmap(4 << 20)
    base = k.kmem_stats()["pagetable_pages"]          # the PGD
    assert p.access([a, a + (2 << 20)], True).tolist() == [O.FAULT, O.FAULT]
    # PUD + PMD tables and one deposited PTE table per PMD-mapped THP
    assert k.kmem_stats()["pagetable_pages"] == base + 2 + 2 and p.mm.pt.ndep == 2
    assert len(p.mm.pt.deposit_pfns()) == 2 and k.meminfo()["AnonHugePages"] == 4096
    k.check()
    before = k.kmem_stats()["pagetable_pages"]
    p.munmap(a + (1 << 20), 4096)                     # splits the first THP's PMD
    assert p.mm.pt.ndep == 1 and k.kmem_stats()["pagetable_pages"] == before   # withdrawn
    assert p.mm.pt.tables["PTE"] == 1
    k.check()
    q = p.fork()                                      # copy_huge_pmd: the child's deposit
    assert q.mm.pt.ndep == 1
    k.check()
    q.exit()
    p.munmap(a + (2 << 20), 2 << 20)                  # zap_huge_pmd frees the deposit
    assert p.mm.pt.ndep == 0
    k.check()


def eat_free_memory(k, keep=None):
    """Allocate every free block as kernel memory (folios owned by the kernel, as
    Kernel.fragment leaves them), but one block of order ``keep`` (movable)."""
    b, folios = k.core.buddy, k.core.folios
    for mt in ("unmovable", "movable", "reclaimable"):
        for order in range(b.max_order + 1):
            for _ in range(len(b.free_list(order, mt))):
                if keep is not None and order == keep and mt == "movable":
                    keep = None
                    continue
                pfn = b.alloc_pages(order, mt)
                assert pfn >= 0
                folios.init(pfn, order, 0, 0, 0)


def test_thp_fault_without_a_deposit_is_oom():
    k = ppsize.Kernel("4K", "16M", thp="always")
    p = k.spawn()
    a = p.mmap(8 << 20)
    assert p.access([a], True).tolist() == [O.FAULT]      # tables down to the PMD table
    b = (a + (4 << 20)) & ~((2 << 20) - 1)                 # another PMD entry, same table
    eat_free_memory(k, keep=9)                             # one 2M block, nothing else
    assert k.meminfo()["MemFree"] == 2048
    oom, fails = k.oom_count, k.kmem_stats()["pagetable_fail"]
    # the THP gets the block, then pte_alloc_one for its deposit fails: the folio is
    # released and the fault is VM_FAULT_OOM (no fallback to PTEs)
    assert p.access([b], True).tolist() == [O.OOM]
    assert k.oom_count == oom + 1 and k.kmem_stats()["pagetable_fail"] == fails + 1
    assert k.mthp_stats()["2M"]["anon_fault_alloc"] == 2      # the folio was allocated
    assert k.meminfo()["MemFree"] == 2048 and k.meminfo()["AnonHugePages"] == 2048
    k.check()


# ------------------------------------------------- against the reference, frame for frame
def test_reference_charges_tables_the_same_way_when_they_run_out():
    from test_mm import Twin
    t = Twin("4K", "64K", thp="never")
    t.spawn()
    a = t.call(0, "mmap", 16 * G, noreserve=True)
    out = t.access(0, [a + i * G for i in range(8)], True)
    assert O.OOM in out.tolist()
    t.compare()                                  # MemFree, table frames, outcomes, OOMs
    with pytest.raises(OSError):
        t.fork(0)
    t.compare()
    t.call(0, "munmap", a + G, 15 * G)
    t.fork(0)
    t.access(1, [a], True)                       # COW in the child
    t.compare()
    t.exit(1)
    t.exit(0)
    t.compare()


def test_reference_deposits_split_zap_fork_and_mremap():
    from test_mm import Twin
    t = Twin("4K", "32M", thp="always")
    p, q = t.spawn()
    a = t.call(0, "mmap", 8 << 20)
    a2 = (a + (2 << 20) - 1) & ~((2 << 20) - 1)
    t.access(0, [a2, a2 + (2 << 20)], True)      # two PMD THPs: two deposits
    t.access(0, [a2 + (4 << 20)], False)         # the huge zero PMD: a third
    assert p.mm.pt.ndep == len(q.deposits) == 3
    t.compare()
    t.call(0, "mprotect", a2 + (1 << 20), 4096, "r")         # a split withdraws one
    t.compare()
    t.fork(0)                                    # copy_huge_pmd: the child's deposits
    t.compare()
    t.access(1, [a2 + (2 << 20) + 8], True)      # the child's COW of a THP (split first)
    t.access(0, [a2 + (4 << 20)], True)          # the zero PMD becomes a THP: deposit kept
    t.compare()
    t.call(0, "mremap", a2 + (2 << 20), 2 << 20, 2 << 20, 3, 0x200000000000)   # moves one
    t.compare()
    assert p.mm.pt.ndep == len(q.deposits) == 2  # the moved THP keeps its deposit
    t.call(0, "munmap", a, 8 << 20)              # zaps free them
    assert p.mm.pt.ndep == len(q.deposits) == 1
    t.call(0, "munmap", 0x200000000000, 2 << 20)
    t.compare()
    assert p.mm.pt.ndep == len(q.deposits) == 0


def test_file_pmd_split_without_table_memory_zaps_the_block():
    # a file PMD mapping has no deposit: with no page left for its PTE table, a split
    # (the VMA boundary of a partial munmap) zaps the whole PMD, as
    # __split_huge_pmd_locked does for a file THP; the rest refaults
    k = ppsize.Kernel("4K", "32M", thp="always")
    f = k.create_file("/lib.so", "4M")
    p = k.spawn()
    c = p.mmap(4 << 20, file=f, prot="r")
    p.madvise(c, 4 << 20, "hugepage")
    assert p.access([c], False).tolist() == [O.MAJOR]
    assert p.status()["RssFile"] == 2048 and p.mm.pt.ndep == 0        # one PMD, no deposit
    eat_free_memory(k)
    assert k.meminfo()["MemFree"] == 0
    p.munmap(c + (1 << 20), K4)
    assert p.status()["RssFile"] == 0                 # the block zapped, not split
    k.check()
    out = p.access([c, c + (1 << 20) + K4], False)    # refault: no table memory either
    assert out.tolist() == [O.OOM, O.OOM]
    k.check()
