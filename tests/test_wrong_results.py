"""Class 4 of issue 15: inputs that gave wrong results (or crashed) before, each with
the result Linux gives."""
import errno

import numpy as np
import pytest

import ppsize
from ppsize import Outcome

T = 1 << 64


def _pages(a, n, step=4096):
    return np.arange(a, a + n, step, dtype=np.uint64)


@pytest.mark.parametrize("page", ["16K", "64K"])
def test_large_unless_eof_native_maps_below_i_size(page):
    """A native-table page must come from one folio of its size: the small EOF folio
    of large-unless-eof gave SIGBUS below i_size; now the file's min order is raised
    for the native process (drop-all's step) and every page below i_size maps."""
    k = ppsize.Kernel("4K", "256M", file_policy="large-unless-eof")
    f = k.create_file("/lib/x.so", 1_000_000)
    k.spawn().read(f)                                  # small folios cached first
    p = k.spawn(page_size=page, pgtable="native")
    a = p.mmap(1_000_000, file=f, prot="r")
    out = p.access(_pages(a, 1_000_000))
    assert not (out == Outcome.SIGBUS).any()
    assert k.pagecache.info(f)["min_order"] == (ppsize.parse_size(page) // 4096).bit_length() - 1
    assert k.transitions[-1]["policy"] == "large-unless-eof"
    k.check()
    e = k.spawn(page_size=page, pgtable="emulated")    # emulated: still no transition
    n = len(k.transitions)
    e.mmap(1_000_000, file=k.create_file("/lib/y.so", 1_000_000), prot="r")
    assert len(k.transitions) == n


def test_compare_large_unless_eof_runs():
    from ppsize.compare import compare
    c = compare(["/etc"], seed=0, processes=4, policy="large-unless-eof", cpu=None)
    assert c["4K+64K-native"].total_kB > 0


@pytest.mark.parametrize("page", ["4M", "1G"])
def test_process_page_beyond_one_folio_refused(page):
    k = ppsize.Kernel("4K", "8G")
    with pytest.raises(ValueError, match=f"page_size {page} is larger than a 4K kernel can map"):
        k.spawn(page_size=page)
    p = k.spawn(page_size="2M")                        # MAX_PAGECACHE_ORDER 9 still maps
    a = p.mmap("4M")
    assert list(p.access([a, a + (2 << 20)], write=True)) == [Outcome.FAULT] * 2
    assert p.status()["RssAnon"] == 4096
    with pytest.raises(ValueError, match="larger than"):
        p.exec(page_size=page)
    k.check()


@pytest.mark.parametrize("call", [
    lambda p, a: p.mmap(T + 4096),
    lambda p, a: p.munmap(a, T + 4096),
    lambda p, a: p.mprotect(a, T + 4096, "r"),
    lambda p, a: p.madvise(a, T + 4096, "dontneed"),
    lambda p, a: p.mlock(a, T + 4096),
    lambda p, a: p.mremap(a, 4096, T + 8192),
    lambda p, a: p.pin(a, T + 4096),
    lambda p, a: p.mremap(T, 4096, 8192),
    lambda p, a: p.mmap(4096, addr=T),
    lambda p, a: p.range_stats(a, T),
    lambda p, a: p.resident(T, T + 4096),
])
def test_values_of_64_bits_or_more_refused(call):
    """They were reduced mod 2**64 (mmap(2**64 + 4096) mapped 4K; munmap unmapped) or
    gave OverflowError."""
    k = ppsize.Kernel("4K", "64M")
    p = k.spawn()
    a = p.mmap("64K")
    p.access(_pages(a, 65536), write=True)
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        call(p, a)
    assert p.status()["VmSize"] == 64 and p.status()["RssAnon"] == 64
    k.check()


def test_addresses_near_2_64_get_linux_errnos():
    k = ppsize.Kernel("4K", "64M")
    p = k.spawn()
    f = k.create_file("/x", "64K")
    for call, err in ((lambda: p.munmap(T - 4096, 8192), errno.EINVAL),
                      (lambda: p.mprotect(T - 4096, 8192, "r"), errno.ENOMEM),
                      (lambda: p.madvise(T - 4096, 8192, "dontneed"), errno.EINVAL),
                      (lambda: p.mlock(T - 4096, 8192), errno.EINVAL),
                      (lambda: k.truncate(f, 1 << 63), errno.EFBIG)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == err
    with pytest.raises(ValueError, match="s_maxbytes"):
        k.create_file("/y", 1 << 63)
    k.check()


def test_fork_of_fork_after_partial_mlock():
    """dup_mmap never merges: the VMAs a partial mlock split stay apart in the child
    and in its child (the grandchild's check() failed)."""
    k = ppsize.Kernel("4K", "64M")
    p = k.spawn()
    a = p.mmap("64K")
    p.access(_pages(a, 65536), write=True)
    p.mlock(a + 16384, 16384)
    c = p.fork()
    g = c.fork()
    assert len(g.smaps()) == 3
    k.check()
    g.access(_pages(a, 65536), write=True)
    k.check()


def test_truncate_native_16k_shared_mapping():
    """unmap_file zapped part of a native 16K PTE (segfault)."""
    k = ppsize.Kernel("4K", "256M")
    f = k.create_file("/a", "1M")
    p = k.spawn(page_size="16K", pgtable="native")
    a = p.mmap("1M", file=f, prot="rw", shared=True)
    p.access(_pages(a, 1 << 20), write=True)
    k.truncate(f, 5000)
    k.check()
    out = p.access(_pages(a, 1 << 20, 16384))
    assert out[0] != Outcome.SIGBUS and (out[1:] == Outcome.SIGBUS).all()
    k.check()


def test_truncate_keeps_the_split_eof_folio_mapped():
    """truncate_inode_partial_folio splits the dirty EOF folio (order 4) to the min
    order; the part holding EOF stays cached and mapped (find_lock_entries skips a
    folio that starts before the range): it was removed while still mapped."""
    shared = True
    k = ppsize.Kernel("4K", "256M")
    f = k.create_file("/a", "1M")
    p = k.spawn(page_size="16K")
    p.read(f)
    a = p.mmap("1M", file=f, prot="rw" if shared else "r", shared=shared)
    p.access(_pages(a, 1 << 20), write=shared)
    k.truncate(f, 200000)                              # page 48 holds EOF
    k.check()
    fo = k.pagecache.folios(f)
    assert fo["index"][-1] == 48 and fo["order"][-1] == 2
    assert p.access([a + 48 * 4096])[0] == Outcome.HIT
    k.check()


def test_truncate_unmaps_the_eof_folio_it_removes_whole():
    """A clean EOF folio that cannot be split (at the min order) is removed whole:
    truncate_inode_folio unmaps it first."""
    k = ppsize.Kernel("4K", "256M")
    f = k.pagecache.create_file("/a", "1M", min_order=2)
    p = k.spawn()
    a = p.mmap("1M", file=f, prot="r")
    p.access(_pages(a, 1 << 20))
    assert k.pagecache.truncate_victim(f, 200000) == (48, 51)
    k.truncate(f, 200000)
    k.check()
    assert 48 not in k.pagecache.folios(f)["index"]
    assert p.access([a + 48 * 4096])[0] == Outcome.MAJOR    # re-read below i_size
    k.check()


def test_fork_copies_a_pte_the_parent_just_folded():
    """Found by the stateful long run (721,720 operations in): fork write-protects the
    one-page rw VMA at the end of a 64K run whose other pages mprotect made r; the
    parent's contpte_try_fold folds the run, and copying that single PTE copied its
    CONT bit into a child run whose other entries had none (check() failed). The copy
    is set_ptes(nr == 1): CONT stripped, then contpte_try_fold folds the child's run."""
    k = ppsize.Kernel("4K", "48M", thp="madvise", mthp={"64K": "always"})
    p = k.spawn()
    p.mmap(0x54000, prot="none", populate=True)
    b = p.mmap(0x5c000, prot="rw", populate=True)
    p.munmap(b, 0x1a000)
    c = p.mmap(0x36000, prot="rw", populate=True)      # fills the hole: a 64K folio at c + 0xc000
    p.mprotect(c + 0xa000, 0x11000, "r")               # the run's first 15 pages r, the last rw
    p.mprotect(b, 0x30000, "none")
    run = np.arange(c + 0xc000, c + 0x1c000, 4096, dtype=np.uint64)
    assert p.mm.pt.translate(run).size.tolist() == [4096] * 16
    child = p.fork()
    k.check()
    assert p.mm.pt.translate(run).size.tolist() == [65536] * 16      # folded in the parent
    assert child.mm.pt.translate(run).size.tolist() == [65536] * 16  # and in the child
    assert list(child.access(run)) == [Outcome.HIT] * 16
    k.check()
