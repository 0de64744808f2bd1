"""File mappings: filemap_fault with readahead and fault-around, private COW,
shared dirty, EOF, the min-order transition for a larger process page, fork."""
import numpy as np
import pytest

import ppsize
from ppsize import Outcome

K, M = 1 << 10, 1 << 20


def setup(memory="256M", size=4 * M, **kw):
    k = ppsize.Kernel("4K", memory, **kw)
    f = k.create_file("/data/file", size)
    return k, f


def test_read_fault_reads_around_then_maps_around():
    k, f = setup()
    p = k.spawn()
    a = p.mmap(4 * M, file=f, prot="r")
    out = p.access([a + 2 * M])
    assert out.tolist() == [Outcome.MAJOR]
    ra = k.pagecache.info(f)
    # do_sync_mmap_readahead read-around: ra_pages centred on the fault, order 0
    ra_pages = 128 * K // 4096
    assert (ra["ra_start"], ra["ra_size"], ra["ra_async_size"]) == (512 - ra_pages // 2, ra_pages, ra_pages // 4)
    assert k.pagecache.nrpages(f) == ra_pages
    st = p.status()
    assert (st["majflt"], st["minflt"]) == (1, 0)
    # filemap_fault dropped mmap_lock for the read and returned VM_FAULT_RETRY; the
    # retried do_read_fault mapped fault_around_bytes at once: the next access in the
    # window is a hit (measured on Linux 6.18: a python3 binary's single major fault
    # left its 15-page window mapped, tests/test_replay_live.py)
    assert p.status()["RssFile"] == 64         # the 64K fault-around window, page 512 included
    out = p.access([a + 2 * M + 32 * K])
    assert out.tolist() == [Outcome.HIT]
    assert p.access([a + 2 * M - 32 * K]).tolist() == [Outcome.FAULT]   # the window below: minor
    assert p.status()["RssFile"] == 128
    k.check()


def test_major_write_fault_maps_only_its_page():
    """A shared write fault that reads (do_shared_fault) has no fault-around, retry
    or not."""
    k, f = setup()
    p = k.spawn()
    a = p.mmap(4 * M, file=f, prot="rw", shared=True)
    assert p.access([a + 2 * M], write=True).tolist() == [Outcome.MAJOR]
    assert p.status()["RssFile"] == 4
    k.check()


def test_fault_around_maps_whole_large_folio():
    k, f = setup()
    reader = k.spawn()
    reader.read(f, 0, 4 * M)                    # readahead grows the folio order
    layout = k.pagecache.layout(f)
    idx, order = max(layout, key=lambda x: x[1])
    assert order >= 4
    p = k.spawn()
    a = p.mmap(4 * M, file=f, prot="r")
    assert p.access([a + idx * 4096]).tolist() == [Outcome.FAULT]
    assert p.status()["RssFile"] == (1 << order) * 4    # the whole folio, not just 64K
    assert p.mm.pt.translate([a + idx * 4096]).size[0] >= 64 * K   # contiguous bit
    k.check()


@pytest.mark.parametrize("pgtable", ["emulated", "native"])
def test_large_process_page_file_fault_maps_page_in_one_set_ptes(pgtable):
    """A 64K process on a 4K kernel (fault-around off: fault_around_bytes is one
    process page) maps each 64K page of a file by one set_ptes of its folio, so
    emulated tables get PTE_CONT runs (one TLB unit per 64K), as native ones get
    one 64K PTE."""
    k, f = setup(size=1 * M)
    p = k.spawn(page_size="64K", pgtable=pgtable)
    a = p.mmap(1 * M, file=f, prot="r")
    p.access(np.arange(a, a + M, 64 * K, dtype=np.uint64))
    assert p.status()["RssFile"] == 1024
    t = p.mm.pt.translate(np.arange(a, a + M, 4 * K, dtype=np.uint64))
    assert (t.status == 0).all()
    assert set(t.size.tolist()) == {64 * K}
    k.check()


def test_private_write_copies_shared_write_dirties():
    k, f = setup()
    p = k.spawn()
    a = p.mmap(1 * M, file=f, prot="rw")
    assert p.access([a], write=True).tolist() == [Outcome.MAJOR]     # do_cow_fault from disk
    st = p.status()
    assert (st["RssAnon"], st["RssFile"]) == (4, 0)
    assert p.access([a + 64 * K], write=True).tolist() == [Outcome.COW]
    s = p.mmap(1 * M, file=f, prot="rw", shared=True)
    assert p.access([s]).tolist() == [Outcome.FAULT]
    assert p.access([s], write=True).tolist() == [Outcome.FAULT]     # wp_page_shared
    folios = k.pagecache.folios(f)
    assert folios["flags"][folios["index"] == 0][0] & ppsize._core.folio.FOLIO_FLAGS["dirty"]
    assert p.access([s], write=True).tolist() == [Outcome.HIT]
    k.check()


def test_beyond_eof_is_sigbus():
    k, f = setup(size=10 * 4096 + 100)
    p = k.spawn()
    a = p.mmap(64 * K, file=f, prot="r")
    out = p.access([a + 10 * 4096, a + 11 * 4096])
    assert out.tolist() == [Outcome.MAJOR, Outcome.SIGBUS]
    assert p.status()["RssFile"] <= 11 * 4
    k.check()


def test_larger_process_page_raises_min_order_and_rereads():
    k, f = setup()
    small = k.spawn(name="4k")
    a = small.mmap(4 * M, file=f, prot="rw")
    small.access(np.arange(a, a + 4 * M, 4096))                     # maps order-0 folios
    small.access([a], write=True)                                   # one private COW copy
    big = k.spawn(page_size="64K", name="64k")
    b = big.mmap(4 * M, file=f, prot="r")
    (t,) = k.transitions
    assert t["min_order"] == (0, 4) and t["pages_blocked"] == 0
    assert t["pages_unmapped"] == 4 * M // 4096 - 1                 # the COW copy stays
    assert small.status()["RssAnon"] == 4
    big.access(np.arange(b, b + 4 * M, 64 * K))
    assert all(order >= 4 for _, order in k.pagecache.layout(f))
    assert big.status()["RssFile"] == 4096
    k.check()
    # a second large-page process finds the order already raised: no transition
    k.spawn(page_size="64K").mmap(1 * M, file=f, prot="r")
    assert len(k.transitions) == 1


def test_fork_copies_file_ptes_only_with_anon_vma():
    k, f = setup()
    p = k.spawn()
    ro = p.mmap(1 * M, file=f, prot="r")
    rw = p.mmap(1 * M, file=f, prot="rw", offset="1M")
    p.access([ro, rw])
    p.access([rw + 4096], write=True)
    c = p.fork()
    assert c.mm.mapped_stats(ro, ro + M)[3] == 0     # no anon_vma: not copied, faults again
    assert c.mm.mapped_stats(rw, rw + M)[3] > 0      # copied along with the COW page
    assert c.status()["RssAnon"] == 4
    k.check()


def test_file_argument_errors():
    k, f = setup()
    other, g = setup()
    p = k.spawn()
    with pytest.raises(TypeError, match="File of this kernel"):
        p.mmap(4096, file=g)
    with pytest.raises(TypeError, match="File of this kernel"):
        p.read("/data/file")
    with pytest.raises(OSError):
        p.mmap(4096, file=f, offset=100)              # not page aligned: EINVAL


def test_truncate_unmaps_beyond_eof_cow_copies_too():
    k, f = setup(size=1 * M)
    p = k.spawn()
    a = p.mmap(1 * M, file=f, prot="rw")
    p.access(np.arange(a, a + M, 4096))
    p.access([a + 900 * K], write=True)                  # a private COW copy beyond the new EOF
    file_kb = p.status()["RssFile"]
    unmapped = k.truncate(f, 300 * K)
    st = p.status()
    assert (st["RssFile"], st["RssAnon"]) == (300, 0)
    assert unmapped == (file_kb - 300) // 4 + 1
    assert k.pagecache.nrpages(f) == 300 * K // 4096
    assert p.access([a + 200 * K, a + 400 * K]).tolist() == [Outcome.HIT, Outcome.SIGBUS]
    k.check()


def test_check_finds_mapped_folio_missing_from_its_mapping():
    k, f = setup(size=64 * K)
    p = k.spawn()
    a = p.mmap(64 * K, file=f, prot="r")
    p.access([a])
    k.pagecache.core.truncate(f.id, 0)                   # the cache only: no unmap (a bug)
    with pytest.raises(AssertionError, match="mapcount 0, mapped 1 times|not in its mapping"):
        k.check()


def test_moved_file_mapping_keeps_thp_alignment_by_offset():
    """thp_get_unmapped_area with the moved range's file offset (vrm_set_new_addr),
    in the parent and in a fork child, which shares the open file."""
    k, f = setup(size=16 * M)
    p = k.spawn()
    a = p.mmap(2 * M, file=f, prot="r", offset=1 * M)
    assert a % (2 * M) == 1 * M                        # address congruent to the offset
    p.mmap(64 * K, addr=a + 2 * M, fixed=True)          # a neighbour: no growing in place
    c = p.fork()
    for proc in (c, p):
        b = proc.mremap(a, 2 * M, 4 * M, "maymove")
        assert b != a and b % (2 * M) == 1 * M
