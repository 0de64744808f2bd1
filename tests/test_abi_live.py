"""Opt-in (--live): the emulated ABI against this machine's kernel (x86-64, 4K pages,
P = K = 4K), through libc via ctypes.

1. Random syscall sequences (the strategy of test_abi: anonymous private and
   shared, and tmpfs file mappings) run on the model and on the real kernel inside
   a region R at a fixed address far below mmap_base (nothing else is ever placed
   there): return values and errnos must agree, and the VMAs of /proc/self/maps
   inside R (start, end, perms) must equal the model's. Results the kernel places
   outside R (no hint, busy hint, mremap moves) are only checked to be outside R
   on both sides, then unmapped on both. Writes ("touch") fault pages in, giving
   VMAs an anon_vma. PPSIZE_LIVE_EXAMPLES sets the number of sequences (300).
2. Top-down placement: a child without ASLR (setarch -R) loads its own
   /proc/self/maps into a model and compares the model's choice for mmap(NULL, len)
   (THP alignment of PMD multiples included) with the kernel's.
3. Targeted cases: /proc maps permissions, anon_vma merge rules, file pgoff merges.
"""
import ctypes
import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings

from ppsize.abi import AddressSpace, vm_flags_str
from test_abi import call, ops

pytestmark = pytest.mark.live

K, M = 1 << 10, 1 << 20
R_LO = 0x3e0000000000
R_HI = R_LO + 4 * M
SYS_MREMAP = 25                      # x86-64

needs_x86 = pytest.mark.skipif(platform.machine() != "x86_64" or os.sysconf("SC_PAGE_SIZE") != 4096,
                               reason="live comparison needs x86-64 with 4K pages")


class Real:
    """The raw syscall API of AddressSpace, executed by the running kernel."""
    thp_size = 2 * M

    def __init__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap_ = libc.mmap
        self.mmap_.restype = ctypes.c_void_p
        self.mmap_.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_long]
        self.munmap_ = libc.munmap
        self.munmap_.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.mprotect_ = libc.mprotect
        self.mprotect_.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.madvise_ = libc.madvise
        self.madvise_.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.syscall_ = libc.syscall
        self.syscall_.restype = ctypes.c_long
        self.syscall_.argtypes = [ctypes.c_long] * 6

    @staticmethod
    def _fail():
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

    def sys_mmap(self, addr, length, prot, flags, file=None, offset=0):
        r = self.mmap_(addr or None, length & ((1 << 64) - 1), prot, flags,
                       -1 if file is None else file, offset)
        if r is None or r == (1 << 64) - 1:
            if r is None:                 # mapped at 0 (root may)
                return 0
            self._fail()
        return r

    def _int(self, r):
        if r == -1:
            self._fail()
        return r

    def sys_munmap(self, addr, length):
        return self._int(self.munmap_(addr, length & ((1 << 64) - 1)))

    def sys_mprotect(self, addr, length, prot):
        return self._int(self.mprotect_(addr, length & ((1 << 64) - 1), prot))

    def sys_madvise(self, addr, length, advice):
        return self._int(self.madvise_(addr, length & ((1 << 64) - 1), advice))

    def sys_mremap(self, addr, old_len, new_len, flags=0, new_addr=0):
        r = self.syscall_(SYS_MREMAP, addr, old_len, new_len, flags, new_addr)
        return self._int(r) & ((1 << 64) - 1)


def proc_maps(lo=0, hi=1 << 64):
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            rng, perms = line.split()[:2]
            s, e = (int(x, 16) for x in rng.split("-"))
            if e > lo and s < hi:
                out.append((s, e, perms))
    return out


@pytest.fixture(scope="module")
def real():
    if proc_maps(R_LO - M, R_HI + M):
        pytest.skip("the live test region is in use")
    r = Real()
    # a tmpfs file (shmem: no THP placement with huge=never), opened twice:
    # read-write and read-only (two struct files: their VMAs never merge)
    path = "/dev/shm/ppsize-live-%d" % os.getpid()
    rw = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(rw, 4 * M)
    ro = os.open(path, os.O_RDONLY)
    os.unlink(path)
    r.files = [rw, ro]
    yield r
    os.close(rw)
    os.close(ro)


def outside(addr):
    return not R_LO <= addr < R_HI


@needs_x86
@settings(max_examples=int(os.environ.get("PPSIZE_LIVE_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops)
def test_live_sequences(real, seq):
    real.sys_munmap(R_LO, R_HI - R_LO)
    model = AddressSpace("x86_64-4l", privileged=True, mmap_base=R_LO - M)
    model.files = [model.open_file(writable=True), model.open_file(writable=False)]
    P = 4096
    for op in seq:
        if op[0] == "touch":
            addr = R_LO + op[1] * P
            v = model.vma_at(addr)
            if v is not None and v[2] & 0x2:              # writable: a write fault
                if v[4] == -1:
                    model.anon_prepare(addr)
                ctypes.c_char.from_address(addr).value = b"x"
            continue
        want = call(model, op, R_LO, P)
        got = call(real, op, R_LO, P)
        moved = op[0] in ("mmap", "mremap") and isinstance(want, int) and isinstance(got, int)
        if moved and (outside(want) or outside(got)):
            assert outside(want) and outside(got), (op, hex(want), hex(got))
            s, e = model.vma_at(want)[:2]
            model.sys_munmap(want, e - want)
            real.sys_munmap(got, e - want)
        else:
            assert got == want, op
        assert proc_maps(R_LO, R_HI) == model.maps(R_LO, R_HI), op
        model.check()
    real.sys_munmap(R_LO, R_HI - R_LO)


CHILD = textwrap.dedent("""
    import ctypes, json, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

    def maps():
        with open("/proc/self/maps") as f:
            return f.read()

    def cover(text):
        out = []
        for line in text.splitlines():
            s, e = (int(x, 16) for x in line.split()[0].split("-"))
            if out and out[-1][1] == s:
                out[-1][1] = e
            else:
                out.append([s, e])
        return out

    def union(iv, s, e):
        pts = sorted([list(x) for x in iv] + [[s, e]])
        out = []
        for a, b in pts:
            if out and out[-1][1] >= a:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return out

    results, keep = [], []
    for length, hold, flags in json.loads(sys.argv[1]):
        for attempt in range(20):
            before = maps()
            addr = libc.mmap(None, length, 3, flags, -1, 0)
            after = maps()
            if cover(after) == union(cover(before), addr, addr + length):
                break
            libc.munmap(addr, length)
        else:
            raise SystemExit("address space kept changing")
        results.append([before, length, flags, addr])
        if hold:
            keep.append((addr, length))
        else:
            libc.munmap(addr, length)
    print(json.dumps(results))
""")


def model_from_maps(text):
    a = AddressSpace("x86_64-4l")
    for n, line in enumerate(text.splitlines()):
        fields = line.split()
        s, e = (int(x, 16) for x in fields[0].split("-"))
        if e > a.task_size:
            continue                                   # [vsyscall]
        perms = fields[1]
        flags = sum(b for c, b in zip(perms[:3], (1, 2, 4)) if c != "-") | 0x70
        if len(fields) > 5 and fields[5] == "[stack]":
            flags |= 0x100                             # VM_GROWSDOWN
        a.vmas.insert(s, e, flags, 0, 1000 + n, 0)     # opaque: never merges
    return a


@needs_x86
def test_live_topdown_placement():
    try:
        subprocess.run(["setarch", "-R", "true"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("setarch -R not available")
    anon, shared, stack = 0x22, 0x21, 0x20022           # MAP_ANONYMOUS with PRIVATE/SHARED/STACK
    plan = [(4 * K, 1, anon), (12 * K, 0, anon), (64 * K, 1, anon), (1 * M, 1, anon),
            (2 * M, 1, anon), (3 * M, 0, anon), (4 * M, 1, anon), (6 * M, 1, anon),
            (8 * K, 1, anon), (2 * M, 1, shared), (2 * M, 0, anon), (4 * M, 1, stack),
            (20 * M, 1, anon), (4 * K, 1, anon)]
    out = subprocess.run(["setarch", "-R", sys.executable, "-c", CHILD, json.dumps(plan)],
                         check=True, capture_output=True, text=True, timeout=60)
    for before, length, flags, addr in json.loads(out.stdout):
        model = model_from_maps(before)
        assert model.mmap_base == 0x7ffff7fff000
        want = model.sys_mmap(0, length, 3, flags)
        assert want == addr, (length, hex(flags), hex(want), hex(addr))
        if length % (2 * M) == 0 and flags != shared:
            assert addr % (2 * M) == 0                  # THP-aligned, MAP_STACK too


@needs_x86
def test_live_maps_perms_match_vm_flags_str(real):
    # "-w-p" for PROT_WRITE alone, "---s" for a shared PROT_NONE mapping
    model = AddressSpace("x86_64-4l", privileged=True)
    for prot, flags in ((2, 0x32), (0, 0x31), (5, 0x32)):
        addr = real.sys_mmap(R_LO, 4096, prot, flags | 0x100000)
        m = model.sys_mmap(R_LO, 4096, prot, flags | 0x100000)
        perms = vm_flags_str(model.vma_at(m)[2])
        assert proc_maps(R_LO, R_HI) == model.maps() == [(addr, addr + 4096, perms)]
        real.sys_munmap(R_LO, 4096)
        model.sys_munmap(R_LO, 4096)


@needs_x86
def test_live_anon_vma_asymmetry(real):
    """is_mergeable_anon_vma since 6.16 (879bca0a2c4f): a faulted range merges into
    a neighbour without an anon_vma, and an unfaulted range into a faulted one
    (before 6.16 the first merge was refused)."""
    P = 4096
    real.sys_munmap(R_LO, R_HI - R_LO)
    model = AddressSpace("x86_64-4l", privileged=True, mmap_base=R_LO - M)
    for sp in (model, real):
        sp.sys_mmap(R_LO, 6 * P, 3, 0x32)
        sp.sys_madvise(R_LO + 2 * P, P, 14)            # [2,3) VM_HUGEPAGE
        sp.sys_madvise(R_LO + 5 * P, P, 14)            # [5,6) VM_HUGEPAGE
    model.anon_prepare(R_LO)                           # write fault in [0,2)
    ctypes.c_char.from_address(R_LO).value = b"x"
    model.anon_prepare(R_LO + 5 * P)                   # write fault in [5,6)
    ctypes.c_char.from_address(R_LO + 5 * P).value = b"x"
    for sp in (model, real):
        sp.sys_madvise(R_LO + P, P, 14)                # faulted [1,2) next to unfaulted [2,3)
        sp.sys_madvise(R_LO + 4 * P, P, 14)            # unfaulted [4,5) next to faulted [5,6)
    want = [(R_LO, R_LO + P, "rw-p"), (R_LO + P, R_LO + 3 * P, "rw-p"),
            (R_LO + 3 * P, R_LO + 4 * P, "rw-p"), (R_LO + 4 * P, R_LO + 6 * P, "rw-p")]
    assert model.maps(R_LO, R_HI) == want
    assert proc_maps(R_LO, R_HI) == want
    assert model.vma_at(R_LO + 2 * P)[5] == model.vma_at(R_LO)[5]   # dup_anon_vma
    real.sys_munmap(R_LO, R_HI - R_LO)


@needs_x86
def test_live_file_pgoff_merging(real):
    """Adjacent mappings of one open file merge only with contiguous offsets; the
    same file opened twice (two struct files) never merges."""
    P = 4096
    real.sys_munmap(R_LO, R_HI - R_LO)
    model = AddressSpace("x86_64-4l", privileged=True, mmap_base=R_LO - M)
    model.files = [model.open_file(writable=True), model.open_file(writable=False)]
    steps = [(R_LO, 2 * P, 1, 0), (R_LO + 2 * P, P, 1, 2 * P),     # contiguous: one VMA
             (R_LO + 3 * P, P, 1, 9 * P),                           # gap in offsets
             (R_LO + 4 * P, P, 1, 10 * P),                          # contiguous again
             (R_LO + 5 * P, P, 1 + 0x200, 11 * P)]                  # other struct file
    for sp in (model, real):
        for addr, length, which, off in steps:
            f = sp.files[which >> 9]
            sp.sys_mmap(addr, length, 1, 0x11, f, off)                # MAP_SHARED|MAP_FIXED
    want = [(R_LO, R_LO + 3 * P, "r--s"), (R_LO + 3 * P, R_LO + 5 * P, "r--s"),
            (R_LO + 5 * P, R_LO + 6 * P, "r--s")]
    assert model.maps(R_LO, R_HI) == want
    assert proc_maps(R_LO, R_HI) == want
    real.sys_munmap(R_LO, R_HI - R_LO)


@needs_x86
def test_live_locked_mappings(real):
    """MAP_LOCKED: MADV_DONTNEED refuses it (EINVAL), MREMAP_DONTUNMAP clears
    VM_LOCKED on the source, which can then merge with an unlocked neighbour."""
    P = 4096
    real.sys_munmap(R_LO, R_HI - R_LO)
    model = AddressSpace("x86_64-4l", privileged=True, mmap_base=R_LO - M)
    for sp in (model, real):
        sp.sys_mmap(R_LO, 2 * P, 3, 0x2032)                     # MAP_LOCKED|FIXED|PRIVATE|ANON
        with pytest.raises(OSError) as e:
            sp.sys_madvise(R_LO, P, 4)
        assert e.value.errno == 22
        sp.sys_mmap(R_LO + 2 * P, P, 3, 0x32)                   # unlocked neighbour: separate
    assert proc_maps(R_LO, R_HI) == model.maps(R_LO, R_HI) == [
        (R_LO, R_LO + 2 * P, "rw-p"), (R_LO + 2 * P, R_LO + 3 * P, "rw-p")]
    for sp in (model, real):
        assert sp.sys_mremap(R_LO, 2 * P, 2 * P, 5, R_LO + 8 * P) == R_LO + 8 * P   # MAYMOVE|DONTUNMAP
        sp.sys_mprotect(R_LO + 2 * P, P, 1)
        sp.sys_mprotect(R_LO + 2 * P, P, 3)                     # re-merge attempt
    assert proc_maps(R_LO, R_HI) == model.maps(R_LO, R_HI)
    real.sys_munmap(R_LO, R_HI - R_LO)
