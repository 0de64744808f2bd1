"""Page-table effects: every change to page tables a syscall (or the kernel's file
policy, truncate, writeback, fork, exec, exit) causes is an abi.Effect, applied by
Process.apply in list order; VMA splits emit vma_adjust_trans_huge's split exactly
where Linux's split_huge_pmd_if_needed would."""
import errno

import numpy as np
import pytest

from ppsize import Kernel, Outcome
from ppsize.abi import EFFECT_KINDS, AddressSpace, Effect
from ppsize.process import EFFECT_APPLY, Process

K, M = 1024, 1 << 20
PMD = 2 * M


def thp_space():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(4 * M)                        # THP-aligned: a PMD multiple, no hint
    assert x % PMD == 0
    a.drain_effects()
    return a, x


def test_every_effect_kind_has_one_applier():
    assert set(EFFECT_APPLY) == set(EFFECT_KINDS)
    assert all(EFFECT_APPLY[k].__name__ == "_apply_" + k for k in EFFECT_KINDS)


def test_munmap_inside_a_pmd_splits_before_zapping():
    a, x = thp_space()
    a.munmap(x + 1 * M, 4 * K)
    assert a.drain_effects() == [Effect("split", x + M, x + M), Effect("split", x + M + 4 * K, x + M + 4 * K),
                                 Effect("zap", x + M, x + M + 4 * K)]
    a.munmap(x + 2 * M, 2 * M)               # PMD-aligned cut: no split
    assert a.drain_effects() == [Effect("zap", x + 2 * M, x + 4 * M)]


def test_split_only_where_the_pmd_lies_in_the_vma():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(64 * K, 0x100000000000)       # smaller than a PMD: no block can exist
    a.drain_effects()
    a.mprotect(x + 16 * K, 16 * K, "r")
    assert a.drain_effects() == [Effect("protect", x + 16 * K, x + 32 * K, a.vma_at(x + 16 * K)[2])]
    a, x = thp_space()
    a.mprotect(x + 3 * M, 4 * K, "r")        # splits at 3M and 3M + 4K, then protects
    kinds = [(e.kind, e.start) for e in a.drain_effects()]
    assert kinds == [("split", x + 3 * M), ("split", x + 3 * M + 4 * K), ("protect", x + 3 * M)]
    a.madvise(x, 1 * M, "nohugepage")        # a split at 1M only (the start is the VMA's)
    assert [(e.kind, e.start) for e in a.drain_effects()] == [("split", x + M)]


def test_native_tables_use_their_own_pmd_size():
    a = AddressSpace("arm64-4k-48", "64K", pmd_size="512M")
    x = a.mmap(1 << 30, 1 << 40, fixed=True)
    a.drain_effects()
    a.munmap(x + PMD, 64 * K)                # 2M-aligned but inside a 512M PMD
    assert [e.kind for e in a.drain_effects()] == ["split", "split", "zap"]


def test_file_mmap_effect_comes_after_the_unmap_and_before_populate():
    a = AddressSpace("x86_64-4l")
    fid = a.open_file()
    x = a.mmap(64 * K, 0x100000000000)
    a.drain_effects()
    y = a.mmap(16 * K, x + 16 * K, "r", file=fid, offset=8 * K, fixed=True, populate=True)
    assert y == x + 16 * K
    assert a.drain_effects() == [Effect("zap", y, y + 16 * K),
                                 Effect("file_mmap", y, y + 16 * K, 2, file=fid),
                                 Effect("populate", y, y + 16 * K)]
    assert a.mremap(y, 16 * K, 32 * K, "maymove") != y  # grows by moving: the new pages only
    eff = [e for e in a.drain_effects() if e.kind == "file_mmap"]
    assert len(eff) == 1 and eff[0].arg == 2 + 4 and eff[0].end - eff[0].start == 16 * K


def test_fork_copies_through_effects():
    a = AddressSpace("x86_64-4l")
    x = a.mmap(16 * K, 0x100000000000)
    a.anon_prepare(x)
    y = a.mmap(16 * K, shared=True)
    child = AddressSpace("x86_64-4l")
    a.dup_mmap(child)
    assert child.vmas.rows() == a.vmas.rows()
    assert child.drain_effects() == [Effect("copy", x, x + 16 * K, 1)]   # y has no anon_vma


def test_process_split_effect_splits_a_thp_and_keeps_translations():
    k = Kernel("4K", "64M", thp="always")
    p = k.spawn()
    x = p.mmap(4 * M)
    p.access([x], write=True)
    assert p.pmd_mapped_heads() and k.meminfo()["AnonHugePages"] == 2048
    before = p.mm.pt.translate(np.arange(x, x + PMD, 4 * K, dtype=np.uint64)).pa.copy()
    tables = p.page_table_bytes()
    p.apply([Effect("split", x + 8 * K, x + 8 * K)])
    assert not p.pmd_mapped_heads() and k.meminfo()["AnonHugePages"] == 0
    assert (p.mm.pt.translate(np.arange(x, x + PMD, 4 * K, dtype=np.uint64)).pa == before).all()
    assert p.page_table_bytes() == tables    # the deposited PTE table is the one used
    k.check()


def test_kernel_page_table_changes_go_through_apply(monkeypatch):
    """truncate, writeback, the file policy's transition, fork, exec and exit apply
    their page-table work as effects, through Process.apply."""
    seen = []
    real = Process.apply

    def spy(self, effects, *a, **kw):
        effects = list(effects)
        seen.extend(e.kind for e in effects)
        return real(self, effects, *a, **kw)

    monkeypatch.setattr(Process, "apply", spy)
    k = Kernel("4K", "256M")
    f = k.create_file("/f", 256 * K)
    small = k.spawn()
    a = small.mmap(256 * K, file=f, prot="rw", shared=True)
    small.access(np.arange(a, a + 256 * K, 4 * K), write=True)
    assert {"file_mmap"} <= set(seen)
    seen.clear()
    assert k.writeback() == 64 and "protect" in seen
    seen.clear()
    k.spawn(page_size="64K").mmap(64 * K, file=f, prot="r")    # drop-all transition
    assert seen.count("unmap_file") >= 1 and k.transitions[-1].status == "done"
    seen.clear()
    assert small.access([a], write=True).tolist() == [Outcome.MAJOR]
    k.truncate(f, 0)
    assert "unmap_file" in seen and small.status()["RssFile"] == 0
    seen.clear()
    anon = small.mmap(64 * K)
    small.access([anon], write=True)
    child = small.fork()
    assert "copy" in seen
    child.exec()
    small.exit()
    assert seen.count("exit_mm") == 2
    k.check()


def test_blocked_transition_applies_nothing_after_the_file_mmap():
    k = Kernel("4K", "256M", readahead=0)
    f = k.create_file("/f", 256 * K)
    small = k.spawn()
    a = small.mmap(256 * K, file=f, prot="r")
    small.access(np.arange(a, a + 256 * K, 4 * K))
    small.pin(a, 4 * K)
    big = k.spawn(page_size="64K")
    with pytest.raises(OSError) as e:
        big.mmap(64 * K, file=f, prot="r", populate=True)
    assert e.value.errno == errno.EBUSY
    assert big.aspace.vmas.rows() == [] and big.status()["RssFile"] == 0   # no populate
    assert k.transitions[-1].status == "blocked"
    k.check()
