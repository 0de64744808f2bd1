"""ppsize.abi: random syscall sequences on VmaTable vs the pure-Python reference
table, the errno of each error case, and the per-process page size semantics."""
import errno

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize import abi
from ppsize.abi import (MADV_DONTNEED, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED,
                        MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, MREMAP_DONTUNMAP,
                        MREMAP_FIXED, MREMAP_MAYMOVE, AddressSpace, Effect)
from ref_vma import RefVmaTable

K, M = 1 << 10, 1 << 20
VM_ACCOUNT, VM_HUGEPAGE, VM_WRITE = abi.VM_ACCOUNT, abi.VM_HUGEPAGE, abi.VM_WRITE


def errno_of(fn, *args, **kw):
    with pytest.raises(OSError) as e:
        fn(*args, **kw)
    return e.value.errno


# ------------------------------------------------------------ differential
CONFIGS = [("x86_64-4l", None), ("arm64-4k-48", "16K"), ("arm64-4k-48", "64K"),
           ("arm64-16k-48", "64K")]


def call(asp, op, base, P):
    """Run one generated syscall; return its result or ("err", errno)."""
    kind, a, b, c, d, e = op
    try:
        if kind == "mmap":
            addr = 0 if a < 0 else base + a * P
            d %= 4
            flags = MAP_SHARED if e == 7 or (e >= 5 and c % 2) else MAP_PRIVATE
            flags |= {0: 0, 1: MAP_FIXED, 2: MAP_FIXED_NOREPLACE, 3: MAP_FIXED}[d]
            length = b * P if c % 8 != 7 else asp.thp_size * max(1, b // 4)
            if e in (5, 6) and getattr(asp, "files", None):   # read-write, read-only file
                return asp.sys_mmap(addr, length, [3, 1, 0, 2, 5][c % 5], flags,
                                    asp.files[e - 5], (abs(a) % 8) * P)
            return asp.sys_mmap(addr, length, [3, 1, 0, 2, 5][c % 5], flags | MAP_ANONYMOUS)
        if kind == "munmap":
            return asp.sys_munmap(base + a * P, b * P)
        if kind == "mprotect":
            return asp.sys_mprotect(base + a * P, b * P, [0, 1, 3, 2, 5][c % 5])
        if kind == "madvise":
            return asp.sys_madvise(base + a * P, b * P, [0, 1, 2, 3, 4, 14, 15][c % 7])
        if kind == "mremap":
            flags = [0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED, MREMAP_MAYMOVE | MREMAP_FIXED,
                     MREMAP_MAYMOVE | MREMAP_DONTUNMAP, MREMAP_FIXED][d % 6]
            old_len = (e % 6) * P if e else P
            new_len = old_len if flags & MREMAP_DONTUNMAP or d == 3 else b * P
            return asp.sys_mremap(base + a * P, old_len, new_len, flags,
                                  base + c * P if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) else 0)
        if kind == "touch":
            if asp.vma_at(base + a * P) is not None:
                return asp.anon_prepare(base + a * P)
            return None
    except OSError as exc:
        return ("err", exc.errno)
    raise AssertionError(kind)


# a few fixed mappings first, so that later calls mostly meet mapped memory
_prelude = st.lists(st.tuples(st.just("mmap"), st.integers(0, 28), st.integers(1, 10),
                              st.integers(0, 6), st.just(1), st.integers(0, 7)),
                    min_size=1, max_size=6)
_body = st.lists(st.tuples(
    st.sampled_from(["mmap", "munmap", "mprotect", "mprotect", "madvise", "madvise",
                     "mremap", "mremap", "mremap", "touch"]),
    st.integers(-1, 32), st.integers(1, 8), st.integers(0, 40), st.integers(0, 5),
    st.integers(0, 7)), max_size=25)
ops = st.builds(lambda p, b: [("mmap", 0, 32, 0, 1, 0)] + p + b, _prelude, _body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CONFIGS), st.sampled_from([65530, 14]), ops)
def test_differential_syscalls(config, limit, seq):
    g, P = config
    a = AddressSpace(g, P, max_map_count=limit)
    r = AddressSpace(g, P, max_map_count=limit, table=RefVmaTable)
    for sp in (a, r):
        sp.files = [sp.open_file(writable=True), sp.open_file(writable=False)]
    P = a.page_size
    base = a.mmap_base - 48 * P
    for op in seq:
        got, want = call(a, op, base, P), call(r, op, base, P)
        assert got == want, op
        assert a.vmas.rows() == r.vmas.rows(), op
        assert a.drain_effects() == r.drain_effects(), op
        a.check()
        for v in range(-2, 60, 3):
            addr = base + v * P + P // 2
            assert a.vmas.lookup(addr) == r.vmas.lookup(addr)


# ------------------------------------------------------------ page size semantics
def test_process_page_size_rounds_and_aligns():
    a = AddressSpace("arm64-4k-48", "64K")
    assert a.getpagesize() == 64 * K and a.kernel_page_size == 4 * K
    x = a.mmap(1)
    assert x % (64 * K) == 0
    assert a.vma_at(x)[:2] == (x, x + 64 * K)
    assert a.vma_at(x)[3] == x >> 12                        # vm_pgoff in kernel pages
    assert errno_of(a.munmap, x + 4 * K, 4 * K) == errno.EINVAL
    assert errno_of(a.mprotect, x + 4 * K, 4 * K, "r") == errno.EINVAL
    assert errno_of(a.madvise, x + 4 * K, 4 * K, "dontneed") == errno.EINVAL
    assert errno_of(a.mremap, x + 4 * K, 4 * K, 8 * K) == errno.EINVAL
    assert errno_of(a.mmap, 4 * K, x + 64 * K + 4 * K, fixed=True) == errno.EINVAL
    a.munmap(x, 1)                                          # length rounds up to 64K
    assert a.vma_at(x) is None
    a.check()


def test_topdown_and_hints():
    a = AddressSpace("x86_64-4l")
    assert a.mmap_base == 0x7ffff7fff000                   # the no-ASLR x86-64 base
    x = a.mmap(8 * K)
    assert x == a.mmap_base - 8 * K
    y = a.mmap(4 * K)
    assert y == x - 4 * K and len(a.vmas) == 1             # merged, top-down
    hint = 0x200000000000
    assert a.mmap(4 * K, hint) == hint                     # free hint honoured
    assert a.mmap(4 * K, hint) == y - 4 * K                # busy hint: search
    assert a.mmap(4 * K, 0x1000) == 0x10000                # below mmap_min_addr: raised


def test_thp_alignment_of_large_anonymous_mappings():
    a = AddressSpace("x86_64-4l")
    a.mmap(4 * K)
    x = a.mmap(2 * M)
    assert x % (2 * M) == 0
    z = a.mmap(4 * M, prot="r")                            # topdown fix: no hole between
    assert z % (2 * M) == 0 and z + 4 * M == x
    u = a.mmap(3 * M)                                      # not a PMD multiple: unaligned
    assert u == z - 3 * M
    s = a.mmap(2 * M, shared=True)                         # shared anon (shmem): unaligned
    assert s == u - 2 * M and s % (2 * M) != 0
    h = a.mmap(2 * M, 0x300000001000)                      # a hint: no THP alignment
    assert h == 0x300000001000
    b = AddressSpace("arm64-4k-48", "64K", thp=False)
    b.mmap(64 * K)
    assert b.mmap(2 * M) % (2 * M) != 0


def test_map_fixed_replace_and_noreplace():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(16 * K)
    a.drain_effects()
    assert errno_of(a.mmap, 4 * K, x + 4 * K, noreplace=True) == errno.EEXIST
    assert a.mmap(4 * K, x + 4 * K, "r", fixed=True) == x + 4 * K
    assert a.maps() == [(x, x + 4 * K, "rw-p"), (x + 4 * K, x + 8 * K, "r--p"),
                        (x + 8 * K, x + 16 * K, "rw-p")]
    assert a.drain_effects() == [Effect("zap", x + 4 * K, x + 8 * K)]
    a.mmap(4 * K, x + 4 * K, "rw", fixed=True)             # same flags again: one VMA
    assert len(a.vmas) == 1
    assert a.mmap(4 * K, x + 16 * K, noreplace=True) == x + 16 * K


def test_mmap_errnos():
    a = AddressSpace("x86_64-4l")
    assert errno_of(a.sys_mmap, 0, 0, 3, MAP_PRIVATE | MAP_ANONYMOUS) == errno.EINVAL
    assert errno_of(a.sys_mmap, 0, (1 << 64) - 1, 3, MAP_PRIVATE | MAP_ANONYMOUS) == errno.ENOMEM
    assert errno_of(a.sys_mmap, 0, a.task_size + 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS) == errno.ENOMEM
    assert errno_of(a.sys_mmap, 0x10001000, 4096, 3, MAP_ANONYMOUS | MAP_FIXED) == errno.EINVAL  # no type
    assert errno_of(a.sys_mmap, 0x10000800, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED) == errno.EINVAL
    assert errno_of(a.sys_mmap, a.task_size - 4096, 8192, 3,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED) == errno.ENOMEM
    assert errno_of(a.sys_mmap, 0x1000, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED) == errno.EPERM
    assert errno_of(a.sys_mmap, 0, 4096, 3, MAP_SHARED | MAP_ANONYMOUS | abi.MAP_GROWSDOWN) == errno.EINVAL
    assert errno_of(a.sys_mmap, 0, 4096, 3, MAP_PRIVATE, file=None) == errno.EBADF
    ro = a.open_file(writable=False)
    assert errno_of(a.mmap, 4096, shared=True, file=ro) == errno.EACCES
    f = a.mmap(8192, prot="r", shared=True, file=ro)       # read-only shared: no VM_MAYWRITE
    assert errno_of(a.mprotect, f, 4096, "rw") == errno.EACCES
    p = a.mmap(8192, prot="r", file=ro, offset=4096)       # private: may become writable
    a.mprotect(p, 4096, "rw")
    assert errno_of(a.mmap, 4096, file=ro, offset=100) == errno.EINVAL
    assert errno_of(a.mmap, 8192, file=ro, offset=(1 << 64) - 4096) == errno.EOVERFLOW
    b = AddressSpace("x86_64-4l", max_map_count=3)
    base = b.mmap_base - 64 * 4096
    for i in range(4):                                      # 4 separate VMAs: > 3 allowed once
        b.mmap(4096, base + 2 * i * 4096, "r" if i % 2 else "rw", fixed=True)
    assert errno_of(b.mmap, 4096) == errno.ENOMEM
    with pytest.raises(ValueError, match="unknown prot 'rwz'"):
        a.mmap(4096, prot="rwz")
    with pytest.raises(ValueError, match="page_size"):
        AddressSpace("arm64-16k-48", "4K")


def test_prot_w_is_write_only_vma():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(4096, prot="w")
    assert a.maps() == [(x, x + 4096, "-w-p")]
    flags = a.vma_at(x)[2]
    assert flags & VM_ACCOUNT
    assert flags & a.fault_mask(write=False) and flags & a.fault_mask(write=True)
    xo = a.vma_at(a.mmap(4096, prot="x"))[2]
    assert xo & a.fault_mask(False) and not xo & a.fault_mask(True)
    arm = AddressSpace("arm64-4k-48", "16K")
    assert not xo & arm.fault_mask(False) and flags & arm.fault_mask(False)
    assert a.maps()[0][2] == "--xp"
    s = a.mmap(4096, prot="r", flags="shared")
    assert a.vma_at(s)[2] & abi.VM_SHARED


def test_munmap_errnos_and_holes():
    a = AddressSpace("x86_64-4l")
    assert errno_of(a.munmap, 0x10000, 0) == errno.EINVAL
    assert errno_of(a.munmap, 0x10800, 4096) == errno.EINVAL
    assert errno_of(a.sys_munmap, a.task_size - 4096, 8192) == errno.EINVAL
    assert a.munmap(0x10000, 4096) == 0                    # a hole is fine
    b = AddressSpace("x86_64-4l", max_map_count=1)
    x = b.mmap(12 * K)
    assert errno_of(b.munmap, x + 4 * K, 4 * K) == errno.ENOMEM   # would split 1 -> 2
    assert b.munmap(x, 4 * K) == 0                         # trimming an end is fine


def test_mprotect_partial_failure_as_linux():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(8 * K, 0x100000000000)
    y = a.mmap(8 * K, x + 12 * K)                          # hole [x+8K, x+12K)
    a.drain_effects()
    assert errno_of(a.mprotect, x, 20 * K, "r") == errno.ENOMEM
    # the VMA below the hole was changed, the one above was not
    assert a.maps() == [(x, x + 8 * K, "r--p"), (y, y + 8 * K, "rw-p")]
    assert a.drain_effects() == [Effect("protect", x, x + 8 * K, a.vma_at(x)[2])]
    assert errno_of(a.mprotect, x - 4 * K, 8 * K, "r") == errno.ENOMEM   # starts in a hole
    assert a.mprotect(x, 0, "r") == 0
    assert errno_of(a.mprotect, x + 1, 4096, "r") == errno.EINVAL
    assert errno_of(a.sys_mprotect, x, 4096, 0x10) == errno.EINVAL
    assert errno_of(a.sys_mprotect, x, 4096, abi.PROT_GROWSDOWN | abi.PROT_GROWSUP) == errno.EINVAL
    assert errno_of(a.sys_mprotect, x, (1 << 64) - x, 1) == errno.ENOMEM
    assert a.mprotect(y, 8 * K, "rx") == 0


def test_mprotect_vm_account_and_merging():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(12 * K)
    assert a.vma_at(x)[2] & VM_ACCOUNT
    a.mprotect(x + 4 * K, 4 * K, "r")                     # unfaulted: commit dropped
    assert not a.vma_at(x + 4 * K)[2] & VM_ACCOUNT
    a.mprotect(x + 4 * K, 4 * K, "rw")
    assert len(a.vmas) == 1
    a.anon_prepare(x)                                      # first write fault
    a.mprotect(x + 4 * K, 4 * K, "r")
    a.mprotect(x + 4 * K, 4 * K, "rw")                    # faulted: VM_ACCOUNT kept
    assert len(a.vmas) == 1
    a.mprotect(x, 12 * K, "r")
    assert a.vma_at(x)[2] & VM_ACCOUNT
    n = a.mmap(4 * K, x + 12 * K, "r", fixed=True)         # new RO VMA has no VM_ACCOUNT
    assert a.maps() == [(x, x + 12 * K, "r--p"), (n, n + 4 * K, "r--p")]


def test_split_limit_in_mprotect_and_madvise():
    a = AddressSpace("x86_64-4l", max_map_count=2)
    x = a.mmap(12 * K)
    a.mprotect(x, 4 * K, "r")                              # 1 -> 2
    assert errno_of(a.mprotect, x + 4 * K, 4 * K, "rx") == errno.ENOMEM
    assert errno_of(a.madvise, x + 4 * K, 4 * K, "hugepage") == errno.ENOMEM
    assert len(a.vmas) == 2 and not a.split_left
    b = AddressSpace("x86_64-4l", max_map_count=2)
    y = b.mmap(12 * K)
    # the first split_vma succeeds (1 -> 2), the second fails: Linux keeps the first
    assert errno_of(b.mprotect, y + 4 * K, 4 * K, "r") == errno.ENOMEM
    assert b.maps() == [(y, y + 4 * K, "rw-p"), (y + 4 * K, y + 12 * K, "rw-p")]
    assert b.split_left
    b.check()
    with pytest.raises(AssertionError, match="merged"):
        b.vmas.check()


def test_madvise():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(8 * K, 0x100000000000)
    y = a.mmap(8 * K, x + 12 * K)
    a.drain_effects()
    assert errno_of(a.madvise, x, 20 * K, "hugepage") == errno.ENOMEM
    assert a.vma_at(x)[2] & VM_HUGEPAGE and a.vma_at(y)[2] & VM_HUGEPAGE   # applied first
    assert errno_of(a.madvise, x, 20 * K, "dontneed") == errno.ENOMEM
    assert a.drain_effects() == [Effect("zap", x, x + 8 * K), Effect("zap", y, y + 8 * K)]
    a.madvise(x + 4 * K, 4 * K, "nohugepage")
    assert len(a.vmas) == 3
    a.madvise(x + 4 * K, 4 * K, "hugepage")
    assert len(a.vmas) == 2
    a.madvise(x, 4 * K, "random")
    a.madvise(x, 4 * K, "normal")
    assert len(a.vmas) == 2
    assert a.madvise(x, 4 * K, "willneed") == 0
    assert a.madvise(x, 0, "dontneed") == 0
    assert errno_of(a.madvise, x + 8, 4 * K, "dontneed") == errno.EINVAL
    assert errno_of(a.madvise, 0x20000, 4 * K, "dontneed") == errno.ENOMEM
    assert errno_of(a.sys_madvise, x, 4 * K, 999) == errno.EINVAL
    assert errno_of(a.sys_madvise, x, (1 << 64) - 10, MADV_DONTNEED) == errno.EINVAL
    with pytest.raises(ValueError, match="'free'.*dontneed"):
        a.madvise(x, 4 * K, "free")
    locked = a.mmap(4 * K, locked=True)
    assert errno_of(a.madvise, locked, 4 * K, "dontneed") == errno.EINVAL
    assert a.sys_madvise(x, 4 * K, MADV_HUGEPAGE) == 0


def test_mremap_in_place_and_move():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(8 * K, 0x100000000000)
    assert a.mremap(x, 8 * K, 16 * K) == x                  # grows in place
    assert a.vma_at(x)[:2] == (x, x + 16 * K)
    assert a.mremap(x, 16 * K, 4 * K) == x                  # shrinks in place
    a.mmap(4 * K, x + 4 * K, "r", fixed=True)               # blocker
    a.drain_effects()
    assert errno_of(a.mremap, x, 4 * K, 8 * K) == errno.ENOMEM      # no MAYMOVE
    y = a.mremap(x, 4 * K, 8 * K, "maymove")
    assert y != x and a.vma_at(x) is None and a.vma_at(y)[:2] == (y, y + 8 * K)
    assert a.vma_at(y)[3] == y >> 12                        # unfaulted: pgoff follows
    assert a.drain_effects() == [Effect("move", x, x + 4 * K, y), Effect("zap", x, x + 4 * K)]
    z = 0x180000000000
    assert a.mremap(y, 8 * K, 8 * K, "maymove|fixed", z) == z
    a.anon_prepare(z)
    w = a.mremap(z, 8 * K, 8 * K, ["maymove", "dontunmap"])
    assert a.vma_at(z) is not None and a.vma_at(w)[3] == z >> 12   # faulted: pgoff kept
    assert a.vma_at(z)[5] == 0                              # whole VMA moved: anon_vma dropped
    a.check()


def test_mremap_dontunmap_low_hint_by_arch():
    # x86 takes a hint below mmap_min_addr and security_mmap_addr refuses it
    # (EPERM unless CAP_SYS_RAWIO); the generic allocator searches elsewhere
    x86 = AddressSpace("x86_64-4l")
    x = x86.mmap(4 * K)
    assert errno_of(x86.mremap, x, 4 * K, 4 * K, "maymove|dontunmap", 0x1000) == errno.EPERM
    root = AddressSpace("x86_64-4l", privileged=True)
    y = root.mmap(4 * K)
    assert root.mremap(y, 4 * K, 4 * K, "maymove|dontunmap", 0x1000) == 0x1000
    arm = AddressSpace("arm64-4k-48")
    z = arm.mmap(4 * K)
    assert arm.mremap(z, 4 * K, 4 * K, "maymove|dontunmap", 0x1000) == z - 4 * K


def test_mremap_errnos():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(8 * K, 0x100000000000)
    assert errno_of(a.mremap, 0x200000000000, 4 * K, 8 * K, "maymove") == errno.EFAULT
    assert errno_of(a.mremap, x, 16 * K, 32 * K, "maymove") == errno.EFAULT   # beyond its VMA
    assert errno_of(a.mremap, x + 8, 4 * K, 8 * K) == errno.EINVAL
    assert errno_of(a.mremap, x, 4 * K, 0) == errno.EINVAL
    assert errno_of(a.sys_mremap, x, 4 * K, 4 * K, 8) == errno.EINVAL        # unknown flag
    assert errno_of(a.mremap, x, 4 * K, 4 * K, "fixed", 0x200000000000) == errno.EINVAL
    assert errno_of(a.mremap, x, 4 * K, 4 * K, "maymove|fixed", x + 2 * K) == errno.EINVAL
    assert errno_of(a.mremap, x, 8 * K, 8 * K, "maymove|fixed", x + 4 * K) == errno.EINVAL  # overlap
    assert errno_of(a.mremap, x, 4 * K, 8 * K, "maymove|dontunmap", 0x200000000000) == errno.EINVAL
    assert errno_of(a.mremap, x, 0, 8 * K, "maymove") == errno.EINVAL        # private duplicate
    assert errno_of(a.sys_mremap, x, 4 * K, a.task_size + 4096, 1) == errno.EINVAL
    with pytest.raises(ValueError, match="'grow'"):
        a.mremap(x, 4 * K, 8 * K, "grow")


def test_mremap_moves_several_vmas_keeping_gaps():
    a = AddressSpace("x86_64-4l")
    x = 0x100000000000
    a.mmap(4 * K, x, fixed=True)
    a.mmap(4 * K, x + 8 * K, "r", fixed=True)
    a.mmap(8 * K, x + 16 * K, fixed=True)
    t = 0x180000000000
    assert a.mremap(x, 20 * K, 20 * K, "maymove|fixed", t) == t
    assert a.maps() == [(x + 20 * K, x + 24 * K, "rw-p"), (t, t + 4 * K, "rw-p"),
                        (t + 8 * K, t + 12 * K, "r--p"), (t + 16 * K, t + 20 * K, "rw-p")]
    assert errno_of(a.mremap, x + 16 * K, 8 * K, 8 * K, "maymove|fixed", t + 64 * K) == errno.EFAULT


def test_max_map_count_mremap():
    a = AddressSpace("x86_64-4l", max_map_count=5)
    x = a.mmap(4 * K, 0x100000000000)
    a.mmap(4 * K, x + 8 * K)
    assert errno_of(a.mremap, x, 4 * K, 8 * K, "maymove") == errno.ENOMEM   # 2 + 4 > 5
    b = AddressSpace("x86_64-4l", max_map_count=6)
    y = b.mmap(4 * K, 0x100000000000)
    b.mmap(4 * K, y + 4 * K, "r")
    assert b.mremap(y, 4 * K, 8 * K, "maymove") != y


def test_anon_prepare_reuses_neighbours():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(8 * K, prot="r")
    a.mprotect(x, 4 * K, "rx")                             # flags differ in access bits only
    first = a.anon_prepare(x + 4 * K)
    assert a.anon_prepare(x) == first                       # compatible neighbour: shared
    y = a.mmap(4 * K, 0x100000000000)
    assert a.anon_prepare(y) != first
    with pytest.raises(ValueError):
        a.anon_prepare(0x10000)


def test_effects_for_populate_and_locked():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(8 * K, populate=True)
    assert a.drain_effects() == [Effect("populate", x, x + 8 * K)]
    y = a.mmap(8 * K, 0x100000000000, locked=True)
    assert a.drain_effects() == [Effect("populate", y, y + 8 * K)]
    assert a.mremap(y, 8 * K, 16 * K) == y
    assert a.drain_effects() == [Effect("populate", y + 8 * K, y + 16 * K)]
    assert a.vma_at(y)[2] & abi.VM_LOCKED
