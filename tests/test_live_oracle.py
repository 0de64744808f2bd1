"""Opt-in (--live): the live-kernel oracle (tests/live_kernel.py + tests/live/touch.c) against
what the kernel documentation and source say anonymous faults do.  These are the figures the
model's anonymous fault path is compared with, so each test pins the settings (top-level
enabled, every mTHP size), the region alignment and the madvise advice.

Kernel sources read (torvalds/linux): fs/proc/page.c stable_page_flags (KPF_THP for every large
rmappable folio, KPF_ZERO_PAGE|KPF_THP for the huge zero folio, KPF_ZERO_PAGE for the 4K one);
mm/memory.c alloc_anon_folio / do_anonymous_page (highest enabled order whose aligned range
fits the VMA and has only empty PTEs, else next lower, else order 0; read faults map the 4K zero
page); mm/huge_memory.c do_huge_pmd_anonymous_page (read fault + use_zero_page maps the huge
zero folio; both paths deposit a preallocated PTE table, counted in VmPTE).  Measured on Linux
6.18 x86-64: see the numbers asserted below.

Every test runs under thp_settings() and an autouse fixture asserts the sysfs values are back.
"""
import errno
import os

import pytest

import live_kernel as lk

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not lk.available(), reason=f"live oracle: {lk.unavailable_reason()}")]

NEVER = "never"


@pytest.fixture(autouse=True)
def settings_restored():
    before = lk.read_settings()
    yield
    assert lk.read_settings() == before, "THP sysfs settings were not restored"


def only(**sizes):
    """Every supported mTHP size "never" except the given ones: only(s64K="always")."""
    d = {s: NEVER for s in lk.supported_sizes()}
    for k, v in sizes.items():
        name = k.lstrip("s")
        if name not in d:
            pytest.skip(f"mTHP size {name} not supported by this kernel")
        d[name] = v
    return d


def delta(after, before, key):
    return after[key] - before[key]


def folios(r):
    """{order: folios} (ints), or None if /proc/kpageflags cannot be read."""
    return {int(k): v for k, v in r["folios"].items()} if r["kpageflags"] else None


# ------------------------------------------------------------------ harness
def test_settings_restored_on_exception_and_validated():
    orig = lk.read_settings()
    with pytest.raises(ZeroDivisionError):
        with lk.thp_settings(top="never", sizes="always", defrag="never") as s:
            assert s["enabled"] == "never" and s["defrag"] == "never"
            assert all(s[size] == "always" for size in lk.supported_sizes())
            1 / 0
    assert lk.read_settings() == orig
    with pytest.raises(ValueError):
        with lk.thp_settings(sizes={"3K": "always"}):
            pass
    with pytest.raises(ValueError):
        with lk.thp_settings(sizes={"64K": "sometimes"}):
            pass
    assert lk.read_settings() == orig


def test_supported_sizes_are_anon_mthp_dirs():
    sizes = lk.supported_sizes()
    assert "2M" in sizes                      # PMD order on x86-64 4K
    assert "8K" not in sizes                  # order 1: shmem only (no "enabled" file)
    for s in sizes:
        assert os.path.exists(f"/sys/kernel/mm/transparent_hugepage/hugepages-{lk._size_kb(s)}kB/enabled")


def test_bad_spec_and_failed_ops_are_reported():
    with pytest.raises(RuntimeError, match="bad spec"):
        lk.run("len=1M\nfrobnicate 0\n")
    r = lk.run({"len": "64K", "ops": [("munmap", 1, "4K"), "report", "report"]})
    assert r[1]["errors"] == 1 and r[1]["last_errno"] == errno.EINVAL
    assert r[2]["errors"] == 0


def test_compiled_once():
    assert lk.compile_program("touch") == lk.compile_program("touch")


def test_fault_rate():
    d = lk.fault_rate(2048)
    assert d["minflt"] == 2048 and d["majflt"] == 0
    assert d["ns"] > 0 and d["ns_per_fault"] > 0


# ------------------------------------------------------------------ order-0 anonymous faults
def test_4k_write_faults():
    """All THP off: one fault per written 4K page, RssAnon += 4 kB each, one PTE table."""
    with lk.thp_settings(top=NEVER, sizes=NEVER):
        start, w, again = lk.run({"len": "1M", "align": "2M", "ops": [
            ("range", 0, "1M", "4K", "w"), "report", ("range", 0, "1M", "4K", "w"), "report"]})
    assert start["minflt"] == 0 and start["region"]["Rss"] == 0
    assert w["minflt"] == 256 and w["majflt"] == 0
    assert delta(w, start, "RssAnon") == 1024
    assert delta(w, start, "VmRSS") == 1024
    assert delta(w, start, "VmPTE") == 4                 # one PTE table for the 2M-aligned 1M
    assert w["region"]["Rss"] == w["region"]["Anonymous"] == w["region"]["Private_Dirty"] == 1024
    assert w["region"]["AnonHugePages"] == 0
    assert w["present"] == w["exclusive"] == 256
    if w["kpageflags"]:
        assert folios(w) == {0: 256} and w["thp_pages"] == 0
    assert again["minflt"] == 0 and delta(again, w, "RssAnon") == 0


def test_4k_read_maps_zero_page_then_write_faults_again():
    with lk.thp_settings(top=NEVER, sizes=NEVER):
        start, rd, wr = lk.run({"len": "1M", "align": "2M", "ops": [
            ("range", 0, "1M", "4K", "r"), "report", ("range", 0, "1M", "4K", "w"), "report"]})
    assert rd["minflt"] == 256
    assert delta(rd, start, "RssAnon") == 0 and rd["region"]["Rss"] == 0
    assert delta(rd, start, "VmPTE") == 4                # zero-page PTEs still need the table
    assert rd["present"] == 256
    if rd["kpageflags"]:
        assert rd["zero_pages"] == 256 and folios(rd) == {}
    # write to a zero-page PTE: one (wp) fault per page, a fresh order-0 page each
    assert wr["minflt"] == 256 and delta(wr, rd, "RssAnon") == 1024 and delta(wr, rd, "VmPTE") == 0
    if wr["kpageflags"]:
        assert wr["zero_pages"] == 0 and folios(wr) == {0: 256}


# ------------------------------------------------------------------ mTHP
def test_64k_always_one_fault_per_64k():
    with lk.thp_settings(top=NEVER, sizes=only(s64K="always")):
        start, w = lk.run({"len": "1M", "align": "2M", "ops": [("range", 0, "1M", "64K", "w"), "report"]})
    assert w["minflt"] == 16
    assert delta(w, start, "RssAnon") == 1024 and delta(w, start, "VmPTE") == 4
    assert w["region"]["AnonHugePages"] == 0             # smaps counts only PMD-mapped THP there
    if w["kpageflags"]:
        assert folios(w) == {4: 16} and w["thp_pages"] == 256


def test_64k_always_read_faults_still_map_4k_zero_page():
    with lk.thp_settings(top=NEVER, sizes=only(s64K="always")):
        start, r = lk.run({"len": "256K", "align": "64K", "ops": [("range", 0, "256K", "4K", "r"), "report"]})
    assert r["minflt"] == 64 and delta(r, start, "RssAnon") == 0
    if r["kpageflags"]:
        assert r["zero_pages"] == 64 and folios(r) == {}


def test_64k_folio_must_fit_the_vma():
    """A 128K region starting 4K past a 64K boundary: only [60K, 124K) of it is a whole
    aligned 64K range, the 15 pages before and the 1 page after get order 0."""
    with lk.thp_settings(top=NEVER, sizes=only(s64K="always")):
        start, w = lk.run({"len": "128K", "align": "64K", "misalign": "4K",
                           "ops": [("range", 0, "128K", "4K", "w"), "report"]})
    assert w["minflt"] == 17 and delta(w, start, "RssAnon") == 128
    if w["kpageflags"]:
        assert folios(w) == {0: 16, 4: 1}


def test_mthp_falls_back_to_lower_order_when_ptes_not_empty():
    """16K and 64K "always": a 64K folio; after MADV_DONTNEED of [16K, 32K) a write at 20K cannot
    use the 64K range (PTEs present), takes the 16K one; after zapping 32K..36K, order 0."""
    with lk.thp_settings(top=NEVER, sizes=only(s16K="always", s64K="always")):
        start, a, b, c, d = lk.run({"len": "128K", "align": "64K", "ops": [
            ("touch", 0, "w"), "report", ("dontneed", "16K", "16K"), "report",
            ("touch", "20K", "w"), "report", ("dontneed", "32K", "4K"), ("touch", "32K", "w"), "report"]})
    assert (a["minflt"], delta(a, start, "RssAnon")) == (1, 64)
    assert (b["minflt"], delta(b, a, "RssAnon"), b["present"]) == (0, -16, 12)
    assert (c["minflt"], delta(c, b, "RssAnon"), c["present"]) == (1, 16, 16)
    assert (d["minflt"], delta(d, c, "RssAnon"), d["present"]) == (1, 0, 16)
    if a["kpageflags"]:
        assert folios(a) == {4: 1}
        assert folios(b) == {4: 1}                       # partially unmapped, not split
        assert folios(c) == {2: 1, 4: 1}
        assert folios(d) == {0: 1, 2: 1, 4: 1}


@pytest.mark.parametrize("top,setting,advice,order", [
    ("always", "inherit", "none", 4),
    ("always", "inherit", "nohugepage", 0),        # MADV_NOHUGEPAGE disables every order
    ("madvise", "inherit", "none", 0),
    ("madvise", "inherit", "hugepage", 4),
    ("never", "inherit", "hugepage", 0),
    ("never", "madvise", "hugepage", 4),           # per-size madvise ignores the top level
    ("never", "madvise", "none", 0),
    ("never", "always", "nohugepage", 0),
])
def test_mthp_allowed_orders(top, setting, advice, order):
    """1M region, 2M-aligned (so the PMD size never fits the VMA): one write per 64K."""
    with lk.thp_settings(top=top, sizes=only(s64K=setting)):
        start, w = lk.run({"len": "1M", "align": "2M", "advice": advice,
                           "ops": [("range", 0, "1M", "64K", "w"), "report"]})
    assert w["minflt"] == 16
    assert delta(w, start, "RssAnon") == 16 * 4 * (1 << order)
    if w["kpageflags"]:
        assert folios(w) == {order: 16}


# ------------------------------------------------------------------ PMD-size THP
def thp_2m(**kw):
    return lk.thp_settings(top="madvise", sizes=only(s2M="inherit"), **kw)


def test_pmd_thp_write_fault_deposits_pte_table():
    with thp_2m():
        start, w, rest = lk.run({"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
            ("touch", "1M", "w"), "report", ("range", 0, "2M", "4K", "w"), "report"]})
    assert w["minflt"] == 1
    assert delta(w, start, "RssAnon") == 2048 and w["region"]["AnonHugePages"] == 2048
    assert delta(w, start, "VmPTE") == 4                 # the deposited PTE table
    if w["kpageflags"]:
        assert folios(w) == {9: 1} and w["thp_pages"] == 512
    assert rest["minflt"] == 0 and delta(rest, w, "RssAnon") == 0


def test_pmd_thp_needs_madvise_under_top_madvise():
    with thp_2m():
        start, w = lk.run({"len": "2M", "align": "2M", "ops": [("touch", 0, "w"), "report"]})
    assert w["minflt"] == 1 and delta(w, start, "RssAnon") == 4 and w["region"]["AnonHugePages"] == 0


def test_pmd_thp_needs_an_aligned_2m_range_in_the_vma():
    with thp_2m():
        start, w = lk.run({"len": "2M", "align": "2M", "misalign": "4K", "advice": "hugepage",
                           "ops": [("range", 0, "2M", "4K", "w"), "report"]})
    assert w["minflt"] == 512 and delta(w, start, "RssAnon") == 2048
    assert w["region"]["AnonHugePages"] == 0
    assert delta(w, start, "VmPTE") == 8                 # spans two 2M ranges
    if w["kpageflags"]:
        assert folios(w) == {0: 512}


def test_pmd_read_fault_maps_huge_zero_page():
    if open("/sys/kernel/mm/transparent_hugepage/use_zero_page").read().strip() != "1":
        pytest.skip("use_zero_page is off")
    with thp_2m():
        start, rd, wr, gone = lk.run({"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
            ("touch", 0, "r"), "report", ("touch", "4K", "w"), "report", ("dontneed", 0, "2M"), "report"]})
    assert rd["minflt"] == 1 and delta(rd, start, "RssAnon") == 0 and rd["region"]["Rss"] == 0
    assert delta(rd, start, "VmPTE") == 4                # deposited with the huge zero PMD too
    assert rd["present"] == 512
    if rd["kpageflags"]:
        assert rd["huge_zero_pages"] == 512 and rd["zero_pages"] == 0
    # write to the huge zero PMD: this kernel allocates a whole THP in one fault
    assert wr["minflt"] == 1 and delta(wr, rd, "RssAnon") == 2048
    assert wr["region"]["AnonHugePages"] == 2048 and delta(wr, rd, "VmPTE") == 0
    if wr["kpageflags"]:
        assert folios(wr) == {9: 1} and wr["huge_zero_pages"] == 0
    assert delta(gone, wr, "RssAnon") == -2048 and delta(gone, wr, "VmPTE") == -4


def test_pmd_thp_partial_unmap_splits_pmd_keeps_table():
    with thp_2m():
        start, w, un, dn = lk.run({"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
            ("touch", 0, "w"), "report", ("munmap", 0, "4K"), "report", ("dontneed", "1M", "1M"), "report"]})
    assert un["minflt"] == 0 and delta(un, w, "RssAnon") == -4
    assert un["region"]["AnonHugePages"] == 0
    assert delta(un, w, "VmPTE") == 0                    # the deposited table became the PTE table
    assert delta(dn, un, "RssAnon") == -1024 and delta(dn, un, "VmPTE") == 0
    if w["kpageflags"]:
        assert folios(un) == {9: 1} and un["folio_pages"] == {"9": 511}   # not split yet
        assert dn["folio_pages"] == {"9": 255}


def test_pmd_thp_dontneed_whole_frees_deposit():
    with thp_2m():
        start, w, dn = lk.run({"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
            ("touch", 0, "w"), "report", ("dontneed", 0, "2M"), "report"]})
    assert delta(dn, w, "RssAnon") == -2048 and delta(dn, w, "VmPTE") == -4
    assert dn["present"] == 0


def test_pmd_thp_mprotect_half_splits_vma_and_pmd():
    with thp_2m():
        start, w, mp = lk.run({"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
            ("touch", 0, "w"), "report", ("mprotect", 0, "1M", "r"), "report"]})
    assert mp["region"]["vmas"] == 2 and mp["region"]["AnonHugePages"] == 0
    assert delta(mp, w, "RssAnon") == 0 and delta(mp, w, "VmPTE") == 0


# ------------------------------------------------------------------ fork / COW
def by_label(reports, who, label):
    return next(r for r in reports if r["who"] == who and r["label"] == label)


def test_fork_child_write_to_shared_4k_page():
    with lk.thp_settings(top=NEVER, sizes=NEVER):
        rs = lk.run({"len": "64K", "align": "2M", "ops": [
            ("range", 0, "64K", "4K", "w"), ("report", "pre"),
            ("fork", [("touch", 0, "w"), ("report", "cw"), ("touch", 0, "w"), ("report", "cw2")]),
            ("touch", 0, "w"), ("report", "pw")]})
    pre = by_label(rs, "parent", "pre")
    cs, cw, cw2 = (by_label(rs, "child", lbl) for lbl in ("child-start", "cw", "cw2"))
    pw = by_label(rs, "parent", "pw")
    # the child starts with the parent's PTEs (the VMA has an anon_vma), all shared
    assert cs["region"]["Rss"] == 64 and cs["region"]["Shared_Dirty"] == 64 and cs["exclusive"] == 0
    assert cw["minflt"] == 1                             # COW copy of one page
    assert delta(cw, cs, "RssAnon") == 0                 # new page replaces the shared one
    assert cw["region"]["Private_Dirty"] == 4 and cw["region"]["Shared_Dirty"] == 60
    assert delta(cw, cs, "VmPTE") == 0
    assert cw2["minflt"] == 0
    # parent after the child exited: its PTE was write-protected, one fault to reuse the page
    assert pw["minflt"] == 1 and delta(pw, pre, "RssAnon") == 0
    if cw["kpageflags"]:
        assert folios(cw) == {0: 16}


def test_fork_child_write_to_64k_folio_copies_4k():
    with lk.thp_settings(top=NEVER, sizes=only(s64K="always")):
        rs = lk.run({"len": "64K", "align": "64K", "ops": [
            ("touch", 0, "w"), ("report", "pre"), ("fork", [("touch", 0, "w"), ("report", "cw")])]})
    cs, cw = by_label(rs, "child", "child-start"), by_label(rs, "child", "cw")
    assert cw["minflt"] == 1 and delta(cw, cs, "RssAnon") == 0
    assert cw["region"]["Private_Dirty"] == 4
    if cw["kpageflags"]:
        assert folios(cw) == {0: 1, 4: 1} and cw["folio_pages"] == {"0": 1, "4": 15}


def test_fork_child_write_to_pmd_thp_splits_child_pmd_only():
    with thp_2m():
        rs = lk.run({"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
            ("touch", 0, "w"), ("report", "pre"), ("fork", [("touch", 0, "w"), ("report", "cw")]),
            ("touch", "4K", "w"), ("report", "pw")]})
    pre, pw = by_label(rs, "parent", "pre"), by_label(rs, "parent", "pw")
    cs, cw = by_label(rs, "child", "child-start"), by_label(rs, "child", "cw")
    assert cs["region"]["AnonHugePages"] == 2048         # PMD copied with its deposited table
    assert cw["minflt"] == 1 and cw["region"]["AnonHugePages"] == 0
    assert delta(cw, cs, "RssAnon") == 0 and delta(cw, cs, "VmPTE") == 0
    assert pw["minflt"] == 1 and pw["region"]["AnonHugePages"] == 2048   # parent reuses its PMD
    assert delta(pw, pre, "RssAnon") == 0
    if cw["kpageflags"]:
        assert cw["folio_pages"] == {"0": 1, "9": 511}


def test_fork_does_not_copy_a_vma_without_anon_vma():
    """Only zero-page reads: no anon_vma, so fork copies no PTEs and the child faults again."""
    with lk.thp_settings(top=NEVER, sizes=NEVER):
        rs = lk.run({"len": "64K", "align": "2M", "ops": [
            ("range", 0, "64K", "4K", "r"), ("report", "pre"), ("fork", [("touch", 0, "r"), ("report", "cr")])]})
    cs, cr = by_label(rs, "child", "child-start"), by_label(rs, "child", "cr")
    assert cs["present"] == 0 and cr["minflt"] == 1 and cr["present"] == 1
    assert delta(cr, cs, "VmPTE") == 4
