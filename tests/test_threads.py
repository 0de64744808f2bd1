"""Class 2 of issue 15: the thread contract (ppsize/_lock.py). One Kernel used from
several threads serializes on the Kernel's lock (each call atomic, state consistent);
separate Kernels (and standalone PageTables / TLBs) hold separate locks and run in
parallel. Without the lock these workloads segfaulted or corrupted the buddy lists,
the XArray pool and the counters."""
import threading

import numpy as np
import pytest

import ppsize

THREADS = 4


def _identities(k):
    k.check()
    for p in k.processes.values():
        s = p.status()
        assert s["VmRSS"] == s["RssAnon"] + s["RssFile"] + s["RssShmem"]
    m = k.meminfo()
    assert m["MemFree"] <= m["MemTotal"]


def _worker(k, files, seed, errors, rounds=60):
    try:
        rng = np.random.default_rng(seed)
        p = k.spawn(page_size=("4K", "16K", "64K")[seed % 3], pgtable=("emulated", "native")[seed % 2])
        for _ in range(rounds):
            a = p.mmap(int(rng.integers(1, 64)) << 16)
            p.access(a + rng.integers(0, 1 << 16, 2000).astype(np.uint64) * 16 % (1 << 16), write=True)
            f = files[int(rng.integers(len(files)))]
            p.read(f)
            b = p.mmap(1 << 20, file=f, prot="r")
            p.access(np.arange(b, b + (1 << 20), 4096, dtype=np.uint64))
            if rng.random() < 0.3:
                c = p.fork()
                c.access([a], write=True)
                c.exit()
            p.munmap(b, 1 << 20)
            p.munmap(a, 1 << 16)
            if rng.random() < 0.1:
                k.drop_caches()
        p.exit()
    except BaseException as e:      # noqa: BLE001 - reported to the main thread
        errors.append(e)


def _in_threads(targets):
    """Run the callables in threads of their own; the errors they raised."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            errors.append(e)
    ts = [threading.Thread(target=wrap, args=(fn,)) for fn in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def _run(k, files, n=THREADS, rounds=60):
    errors = []
    assert not _in_threads([lambda i=i: _worker(k, files, i, errors, rounds) for i in range(n)])
    assert not errors, errors
    _identities(k)


def test_one_kernel_many_threads():
    k = ppsize.Kernel("4K", "512M", thp="always", mthp={"64K": "always"})
    files = [k.create_file(f"/f{i}", "1M") for i in range(32)]
    _run(k, files)
    assert not k.processes                       # every worker exited
    assert k.meminfo()["AnonPages"] == 0


def test_threads_sharing_one_process():
    k = ppsize.Kernel("4K", "256M")
    p = k.spawn()
    a = p.mmap("32M")

    def touch(i):
        rng = np.random.default_rng(i)
        for _ in range(50):
            vas = a + (rng.integers(0, 32 << 20, 4000) & ~4095).astype(np.uint64)
            p.access(vas, write=bool(i % 2))
            p.madvise(a + (int(rng.integers(0, 512)) << 16), 1 << 16, "dontneed")
    errors = _in_threads([lambda i=i: touch(i) for i in range(THREADS)])
    assert not errors, errors
    _identities(k)


def _blocks(fn, lock):
    """Does fn() wait while ``lock`` is held by this thread? (It then finishes once
    the lock is released.) No timing asserts: a blocked thread simply has not
    finished when we look, and a free one finishes (join without a deadline)."""
    done = threading.Event()
    t = threading.Thread(target=lambda: (fn(), done.set()))
    with lock:
        t.start()
        waited = not done.wait(0.5)
    t.join()
    assert done.is_set()
    return waited


def test_the_lock_serializes_one_kernel_only():
    k1, k2 = ppsize.Kernel("4K", "64M"), ppsize.Kernel("4K", "64M")
    p1, p2 = k1.spawn(), k2.spawn()
    a1, a2 = p1.mmap("1M"), p2.mmap("1M")
    assert _blocks(lambda: p1.access([a1], write=True), k1._lock)        # same kernel: waits
    assert not _blocks(lambda: p2.access([a2], write=True), k1._lock)    # another: parallel
    assert not _blocks(lambda: k2.spawn().mmap("1M"), k1._lock)
    pt = ppsize.PageTable("arm64-4k-48")
    tlb = ppsize.TLB("cortex-a76")
    assert not _blocks(lambda: pt.map(0x400000, 0, "64K"), k1._lock)     # standalone: its own
    assert _blocks(lambda: pt.translate([0x400000]), pt._lock)
    assert _blocks(lambda: tlb.map(1, [(0, 1 << 20, "4K")]), tlb._lock)
    # everything a kernel owns shares its lock
    k3 = ppsize.Kernel("4K", "64M", cpu="cortex-a76")
    p3 = k3.spawn()
    assert {id(k3._lock)} == {id(p3._lock), id(p3.mm.pt._lock), id(k3.pagecache._lock),
                              id(k3.cpus[0]._lock)}
    assert _blocks(lambda: p3.mm.pt.tables, k3._lock)
    assert _blocks(lambda: k3.pagecache.create_file("/x", "4K"), k3._lock)


@pytest.mark.parametrize("threads", [2, 8])
def test_separate_kernels_in_threads(threads):
    ks = [ppsize.Kernel("4K", "128M") for _ in range(threads)]
    errors = []
    files = [[k.create_file("/f", "1M")] for k in ks]
    assert not _in_threads([lambda i=i: _worker(ks[i], files[i], i, errors, 20) for i in range(threads)])
    assert not errors, errors
    for k in ks:
        _identities(k)


def test_pool_that_cannot_grow_reports_enomem(capfd):
    """xa_grow runs inside nogil loops: a pool that cannot grow gave "Exception
    ignored" and carried on with a pool that did not grow; now the store fails
    with ENOMEM (MemoryError) and the tree stays valid."""
    from ppsize._core.xarray import XAPool, XArray

    class FullPool(XAPool):
        def _resize(self, n):
            if self.capacity:
                raise ValueError("no more nodes")
            XAPool._resize(self, n)
    x = XArray(pool=FullPool(1))
    x.store(0, 5)
    with pytest.raises(MemoryError, match="ENOMEM"):
        x.store(1 << 12, 7)
    with pytest.raises(MemoryError, match="1 of 2 stores failed"):
        x.store_batch([1, 1 << 20], [9, 9])
    assert "Exception ignored" not in capfd.readouterr().err
    x.check()
    assert x.load(0) == 5 and x.load(1) == 9 and x.load(1 << 12) == 0
