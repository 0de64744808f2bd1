"""Kernel-level API: aging memory, THP policy settings, meminfo."""
import numpy as np
import pytest

import ppsize


def fallbacks(k):
    p = k.spawn()
    a = p.mmap("64M")
    out = p.access(np.arange(a, a + (64 << 20), 65536), write=True)
    assert (out == ppsize.Outcome.FAULT).all()
    return k.mthp_stats()["64K"]["anon_fault_fallback"]


def test_fragment_makes_high_orders_fail_and_release_restores():
    fresh = ppsize.Kernel("4K", "256M", thp="never", mthp={"64K": "always"})
    assert fallbacks(fresh) == 0
    k = ppsize.Kernel("4K", "256M", thp="never", mthp={"64K": "always"})
    before = k.meminfo()["MemFree"]
    stats = k.fragment(seed=1, steps=200_000)
    kept = int((1 << stats["live_orders"].astype(np.int64)).sum()) * 4
    assert k.meminfo()["MemFree"] == before - kept > 0
    assert k.core.buddy.unusable_index()[4] > 0
    k.check()
    assert fallbacks(k) > 0              # aged memory: some 64K faults fall back
    k.check()
    k.release_fragments()
    for p in list(k.processes.values()):
        p.exit()
    assert k.meminfo()["MemFree"] == k.meminfo()["MemTotal"]
    k.check()


def test_fragment_is_seeded():
    a, b = (ppsize.Kernel("4K", "64M") for _ in range(2))
    sa, sb = a.fragment(seed=7, steps=20_000), b.fragment(seed=7, steps=20_000)
    assert (sa["live_pfns"] == sb["live_pfns"]).all()
    assert str(a.buddyinfo()) == str(b.buddyinfo())


def test_thp_settings_round_trip():
    k = ppsize.Kernel("4K", "64M", thp="madvise", mthp={"64K": "always", "16K": "madvise"})
    t = k.thp
    assert (t["enabled"], t["64K"], t["16K"], t["2M"], t["32K"]) == ("madvise", "always", "madvise",
                                                                     "inherit", "never")
    k.set_thp("never", {"2M": "never"})
    assert (k.thp["enabled"], k.thp["2M"]) == ("never", "never")
    with pytest.raises(ValueError, match="8K"):
        k.set_thp(mthp={"8K": "always"})
    with pytest.raises(ValueError, match="sometimes"):
        k.set_thp(mthp={"64K": "sometimes"})
    with pytest.raises(ValueError, match="maybe"):
        k.set_thp("maybe")


@pytest.mark.parametrize("args, match", [
    ({"page_size": "8K"}, "8192"), ({"memory": "12345"}, "12345"),
    ({"page_size": "16K", "geometry": "arm64-4k-48"}, "arm64-4k-48"), ({"memory": -1}, "-1"),
])
def test_bad_kernel_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        ppsize.Kernel(**args)
