"""framemem's pool of host memory (issue 13 item 4): the per-frame arrays and page-table
pools of a dropped Kernel are reused by the next one, zeroed. What a Kernel computes
must not depend on where its host memory came from: the same workload gives the same
outcomes, counters and per-frame state with the pool as without it."""
import gc

import numpy as np
import pytest

import ppsize
from ppsize._core import framemem as fm
from ppsize._core.framemem import FrameMem, frame_array
from ppsize.procmaps import read_smaps

BIG = fm.SMALL_ARRAY // 8 * 2          # int64 elements of a mapped (poolable) array


@pytest.fixture
def pool():
    """An empty pool with the default limits, restored afterwards (and the populate
    ahead setting)."""
    old = fm.pool_stats()
    ahead = fm.set_populate_ahead(False)
    fm.pool_clear()
    fm.set_pool_limit(128 << 20)
    yield fm
    fm.set_pool_limit(old["limit"], old["entry_limit"], old["grow_limit"])
    fm.set_populate_ahead(ahead)
    fm.pool_clear()


def test_frame_array_reused_zeroed(pool):
    a = frame_array(BIG, np.int64)
    a[:] = -7
    del a
    gc.collect()
    st = pool.pool_stats()
    assert st["entries"] >= 1 and 0 < st["bytes"] <= st["limit"]
    reused = st["reused"]
    b = frame_array(BIG + 100, np.int64)          # a different size: resized mapping
    assert pool.pool_stats()["reused"] > reused
    assert not b.any()
    b[:] = 3
    assert (b == 3).all()


def test_small_arrays_are_not_pooled(pool):
    a = frame_array(16, np.int32)
    a[:] = 1
    del a
    gc.collect()
    assert pool.pool_stats()["entries"] == 0


N = fm.SMALL_ARRAY                     # frames: every array below is mapped


@pytest.mark.parametrize("lazy", [(0, 0), (N // 4, N - 1000), (1000, N), (N // 2, N // 2 + 4096)])
@pytest.mark.parametrize("prepare", [True, False])
def test_framemem_reused_arrays_read_fresh(pool, lazy, prepare):
    lo, hi = lazy

    def make():
        f = FrameMem(N)
        f.set_lazy(lo, hi)
        return f, f.array(np.int32, 0xFF), f.array(np.int64), f.array(np.uint8)

    f, a, b, c = make()
    if prepare:
        f.prepare_all()
        for x in (a, b, c):
            x[:] = 5                               # everything written, then dropped
    else:
        for x in (a, b, c):                        # what a kernel writes: used frames
            x[:lo] = 5
            x[hi:] = 5
    del f, a, b, c, x
    gc.collect()
    assert pool.pool_stats()["entries"] == 3
    f, a, b, c = make()
    outside = np.ones(N, dtype=bool)
    outside[lo:hi] = False
    # outside the lazy range: the fill values; inside: zero (fresh) until prepared
    assert (a[outside] == -1).all() and not b.any() and not c.any()
    assert not a[lo:hi].any()
    f.prepare_all()
    assert (a == -1).all() and not b.any() and not c.any()


def test_pool_limit(pool):
    pool.set_pool_limit(8 << 20, 4 << 20)
    arrays = [frame_array(BIG, np.int64) for _ in range(4)]   # 8 MiB each
    for x in arrays:
        x[:] = 1
    del arrays, x
    gc.collect()
    st = pool.pool_stats()
    assert st["bytes"] <= 8 << 20 and st["entries"] == 2      # 4 MiB kept of each
    pool.set_pool_limit(0)
    assert pool.pool_stats()["entries"] == 0
    a = frame_array(BIG, np.int64)
    del a
    gc.collect()
    assert pool.pool_stats()["entries"] == 0                 # limit 0: unmapped


GIB = 1 << 30


def workload(page_size):
    """A seeded workload on a 16 GiB Kernel (mapped, poolable arrays; page-table
    pools large enough to be pooled): faults, re-faults after MADV_DONTNEED, a fork
    with COW faults in both, munmap, an exit. Returns what it observed."""
    k = ppsize.Kernel("4K", "16G", thp="never", mthp={"64K": "always"})
    p = k.spawn(page_size=page_size, pgtable="emulated")
    P = p.page_size
    a = p.mmap(GIB)
    rng = np.random.default_rng(7)
    vas = np.arange(a, a + GIB // 2, P, dtype=np.uint64)
    seen = [p.access(vas, write=True)]
    drop = a + (GIB // 8)
    p.madvise(drop, GIB // 8, "dontneed")
    probe = rng.choice(vas, 20000) + np.uint64(8)
    seen.append(p.access(probe, write=bool(rng.integers(2))))
    c = p.fork()
    seen.append(c.access(probe[:5000], write=True))
    seen.append(p.access(probe[5000:9000], write=True))
    p.munmap(a + GIB // 4, GIB // 16)
    b = p.mmap(GIB // 4)
    seen.append(p.access(np.arange(b, b + GIB // 4, P, dtype=np.uint64), write=True))
    c.exit()
    seen.append(p.access(probe, write=False))
    status = p.status()
    folios = {n: v.copy() for n, v in k.core.folios.as_numpy().items()}
    state = k.core.buddy.frame_state().copy()
    k.check()
    return [s.copy() for s in seen], status, folios, state, k.core.buddy.stats()


@pytest.mark.parametrize("ahead", [True, False])
@pytest.mark.parametrize("page_size", ["4K", "64K"])
def test_same_results_with_and_without_pool(pool, page_size, ahead):
    pool.set_pool_limit(0)
    old = pool.set_populate_ahead(False)
    try:
        fresh = workload(page_size)              # new host memory, no worker
    finally:
        pool.set_populate_ahead(old)
    gc.collect()
    pool.set_populate_ahead(ahead)
    pool.set_pool_limit(128 << 20)
    workload(page_size)                          # fills the pool
    gc.collect()
    assert pool.pool_stats()["entries"] > 0
    before = pool.pool_stats()["reused"]
    reused = workload(page_size)                 # runs on the pooled memory
    pool.set_populate_ahead(True)
    assert pool.pool_stats()["reused"] > before
    for x, y in zip(fresh[0], reused[0]):
        assert np.array_equal(x, y)
    assert fresh[1] == reused[1]
    for n in fresh[2]:
        assert np.array_equal(fresh[2][n], reused[2][n]), n
    assert np.array_equal(fresh[3], reused[3])
    for n in fresh[4]:
        assert np.array_equal(np.asarray(fresh[4][n]), np.asarray(reused[4][n])), n


def test_populate_ahead_worker_and_fork(pool):
    """The populate-ahead worker (started once the buddy grows past its boot
    section) is joined when the Kernel goes; a forked child that keeps using the
    parent's Kernel never touches the parent's worker (no lock, no join)."""
    import os
    import time
    pool.set_pool_limit(0)
    pool.set_populate_ahead(True)
    k = ppsize.Kernel("4K", "16G", thp="never")
    p = k.spawn()
    a = p.mmap(GIB)
    p.access(np.arange(a, a + GIB // 2, 4096, dtype=np.uint64), write=True)
    pid = os.fork()
    if pid == 0:                                  # the child: more faults, then drop it all
        code = 1
        try:
            out = p.access(np.arange(a + GIB // 2, a + GIB, 4096, dtype=np.uint64), write=True)
            k.check()
            code = 0 if (out == ppsize.Outcome.FAULT).all() else 2
            del p, k, out
            gc.collect()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung (the parent's worker touched?)")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    out = p.access(np.arange(a + GIB // 2, a + GIB, 4096, dtype=np.uint64), write=True)
    assert (out == ppsize.Outcome.FAULT).all()
    k.check()
    del p, k, out
    gc.collect()                                  # joins the worker


def test_grow_limit_keeps_a_large_growbuf_whole(pool):
    from ppsize._core.xarray import XAPool
    nbytes = 96 * 1024 * 64 * 8                  # an XAPool's slots: 48 MiB, a GrowBuf
    gc.collect()
    base = pool.pool_stats()["bytes"]
    XAPool(96 * 1024)                            # dropped at once
    assert pool.pool_stats()["bytes"] - base <= pool.pool_stats()["entry_limit"]  # default: a part
    pool.pool_clear()
    pool.set_pool_limit(256 << 20, 256 << 20, 256 << 20)
    assert pool.pool_stats()["grow_limit"] == 256 << 20
    XAPool(96 * 1024)
    assert pool.pool_stats()["bytes"] >= nbytes  # kept whole for the next pool
    pool.set_pool_limit(256 << 20, 256 << 20, 1 << 20)
    assert pool.pool_stats()["bytes"] < nbytes   # a lower grow limit trims GrowBufs at once


def _vmflags(addr):
    """The VmFlags of the mapping holding addr (/proc/self/smaps)."""
    sm = read_smaps()
    hit = np.flatnonzero((sm.start <= addr) & (addr < sm.end))
    assert hit.size == 1, f"no mapping holds {addr:#x}"
    return sm.vmflags[hit[0]]


@pytest.mark.parametrize("nbytes, huge, flag", [(8 << 20, True, "hg"), (8 << 20, False, "nh"),
                                                (1 << 20, True, "nh")])
def test_growbuf_thp_advice(nbytes, huge, flag):
    # THP only where asked and from 4 MiB: the page tables' pools (read at random), not
    # the page cache's node pool (first touch of a THP on this VM: 3.5-20 ms per 2 MiB)
    b = fm.GrowBuf(nbytes, huge)
    assert b.huge == huge and b.nbytes == nbytes
    flags = _vmflags(b.address)
    assert flag in flags and ({"hg", "nh"} - {flag}).isdisjoint(flags)


def test_page_cache_node_pool_is_not_thp():
    from ppsize._core.xarray import XAPool
    k = ppsize.Kernel(4096, memory="1G")
    assert not k.pagecache._c.pool.huge
    assert XAPool().huge and not XAPool(16, False).huge


def test_larger_pooled_mapping_kept_whole(pool):
    # a smaller array (a 16K kernel after a 4K one) keeps the whole mapping, so the next
    # large one reuses every page, and reads zero where the first one wrote
    pool.set_pool_limit(256 << 20, 256 << 20)
    big = frame_array(4 * BIG, np.int64)
    big[:] = 9
    del big
    gc.collect()
    kept = pool.pool_stats()["bytes"]
    assert kept >= 4 * BIG * 8
    small = frame_array(BIG, np.int64)
    assert not small.any()
    small[:] = 5
    del small
    gc.collect()
    assert pool.pool_stats()["bytes"] == kept                 # the tail was not given back
    reused = pool.pool_stats()["reused"]
    again = frame_array(4 * BIG, np.int64)
    assert pool.pool_stats()["reused"] - reused == 4 * BIG * 8
    assert not again.any()


@pytest.mark.parametrize("prepare", [True, False])
def test_framemem_smaller_kernel_keeps_tail(pool, prepare):
    # FrameMem's drop keeps what an earlier, larger kernel left past its own frames
    pool.set_pool_limit(256 << 20, 256 << 20)

    def make(n, lo):
        f = FrameMem(n)
        f.set_lazy(lo, n)
        return f, f.array(np.int32, 0xFF), f.array(np.int64)

    f, a, b = make(4 * N, 0)
    f.prepare_all()
    a[:] = 7
    b[:] = 7
    del f, a, b
    gc.collect()
    kept = pool.pool_stats()["bytes"]
    f, a, b = make(N, N // 2)
    if prepare:
        f.prepare_all()
    a[:N // 2] = 3
    b[:N // 2] = 3
    del f, a, b
    gc.collect()
    assert pool.pool_stats()["bytes"] == kept          # nothing given back
    f, a, b = make(4 * N, N)
    assert (a[:N] == -1).all() and not a[N:].any() and not b.any()
    f.prepare_all()
    assert (a == -1).all() and not b.any()


def test_pool_kinds_are_kept_apart(pool):
    files = frame_array(BIG, np.int64, "files")
    files[:] = 1
    del files
    gc.collect()
    reused = pool.pool_stats()["reused"]
    frames = frame_array(BIG, np.int64)                        # no per-file mapping for it
    assert pool.pool_stats()["reused"] == reused and not frames.any()
    again = frame_array(BIG, np.int64, "files")
    assert pool.pool_stats()["reused"] > reused and not again.any()
    with pytest.raises(ValueError, match="'inodes'"):
        frame_array(BIG, np.int64, "inodes")


def test_pool_prefers_the_smallest_that_serves(pool):
    # of two pooled mappings that both hold the request, the smaller is taken: the
    # larger is left for the larger array of the next kernel
    pool.set_pool_limit(256 << 20, 256 << 20)
    big, small = frame_array(4 * BIG, np.int64), frame_array(BIG, np.int64)
    big[:] = 1
    small[:] = 1
    del big, small
    gc.collect()
    before = pool.pool_stats()["bytes"]
    x = frame_array(BIG, np.int64)
    assert before - pool.pool_stats()["bytes"] == BIG * 8
    assert not x.any()


def test_thp_and_small_page_growbufs_pooled_apart(pool):
    # a page-table pool (THP) never reuses an XArray node pool's 4 KiB-page memory: the
    # pages already resident would stay small whatever the advice
    from ppsize._core.xarray import XAPool
    pool.set_pool_limit(256 << 20, 256 << 20, 256 << 20)
    XAPool(8192, False)                          # 4 MiB of slots, dropped at once
    st = pool.pool_stats()
    assert st["entries"] == 1
    XAPool(256, True)._resize(8192)
    assert pool.pool_stats()["reused"] == st["reused"]
    XAPool(256, False)._resize(8192)
    assert pool.pool_stats()["reused"] > st["reused"]


def _resident(addr, nbytes):
    """Per host page of addr .. addr+nbytes: 1 if resident (mincore(2))."""
    import ctypes
    import mmap
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    vec = (ctypes.c_ubyte * (nbytes // mmap.PAGESIZE))()
    assert libc.mincore(addr, nbytes, vec) == 0, ctypes.get_errno()
    return np.frombuffer(vec, np.uint8) & 1


@pytest.mark.parametrize("ahead", [True, False])
def test_node_pool_populated_ahead_of_its_front(pool, ahead):
    """A node pool that is not huge (the page cache's) is filled in order; with
    populate ahead on, a worker faults in the host pages of up to GROW_AHEAD bytes of
    slots past the last node handed out (asked for every 1024 nodes), through the
    pool's doublings (the buffer moves: the worker is quiesced first), and none
    further; off, no page past the front is touched."""
    import mmap
    import time
    from ppsize._core.xarray import XAPool, XArray
    pool.set_pool_limit(0)                       # fresh mappings: residency is the test's
    old = pool.set_populate_ahead(ahead)
    try:
        xp = XAPool(16, huge=False)
        xa = XArray(pool=xp)
        n = 17_000                                   # leaves: 17,000 of the 32,768 nodes' pool
        xa.store_batch(np.arange(n, dtype=np.uint64) * 64, np.arange(n, dtype=np.uint64) * 2 + 1)
        buf = xp.slots_buffer
        front = xp.nr_nodes * 512                    # slots (64 x u64) per node, in id order
        assert buf.nbytes == xp.capacity * 512 > front + fm.GROW_AHEAD + (1 << 20)
        page = mmap.PAGESIZE
        lo = -(-front // page)                       # the first page no node reached
        past = (front + fm.GROW_AHEAD) // page + 1   # the worker never goes this far
        deadline = time.monotonic() + 60
        while True:
            res = _resident(buf.address, buf.nbytes)
            # the front came to within 1024 nodes of `front` when it last asked
            want = res[lo:(front + fm.GROW_AHEAD - 1024 * 512) // page]
            if not ahead or want.all() or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert res[:front // page].all()             # written by the stores
        assert not res[past:].any()
        if ahead:
            assert want.all()
        else:
            assert not res[lo:].any()
        xa.check()
        xp.check()
        assert [xa.load(i * 64) for i in (0, n // 2, n - 1)] == [1, n + 1, 2 * n - 1]
    finally:
        pool.set_populate_ahead(old)
