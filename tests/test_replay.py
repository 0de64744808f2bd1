"""Replay (ppsize.recording.replay): snapshots rebuilt and recordings re-run in the model,
their figures against the recorded ones; the engine additions replay uses
(PageCache.seed, Process.range_stats / install_special_mapping, Kernel.special_file);
the layout for larger pages."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppsize
from ppsize.recording import schema
from ppsize.recording.layout import Layout
from ppsize.recording.replay import replay
from replay_builder import PAGE, Builder

MB2 = 2 << 20
BASE = 0x7f0000000000


# ---------------------------------------------------------------- engine additions
def test_seed_puts_folios_where_the_snapshot_had_them():
    k = ppsize.Kernel("4K", "256M")
    f = k.create_file("/a", 40 * PAGE)
    added = k.pagecache.seed(f, [0, 4, 8, 16, 39, 40, 60], [2, 2, 0, 3, 0, 0, 0])
    assert k.pagecache.layout(f) == [(0, 2), (4, 2), (8, 0), (16, 3), (39, 0)]   # 40, 60: past EOF
    assert added == 4 + 4 + 1 + 8 + 1
    assert k.pagecache.seed(f, [0, 8], [0, 0]) == 0                          # already cached
    k.check()


def test_seed_respects_min_order_and_rejects_bad_orders():
    k = ppsize.Kernel("4K", "256M")
    f = k.pagecache.create_file("/b", 64 * PAGE, min_order=2)
    k.pagecache.seed(f, [5], [0])
    assert k.pagecache.layout(f) == [(4, 2)]                                 # aligned down to the min order
    with pytest.raises(ValueError, match="orders"):
        k.pagecache.seed(f, [0], [99])
    with pytest.raises(ValueError, match="indices"):
        k.pagecache.seed(f, [-1], [0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 4)), max_size=30))
def test_seed_matches_a_reference(folios):
    """Each (index, order) in turn: the folio aligned at index, shrunk (as
    __filemap_get_folio: __ffs(index), then down) until it overlaps nothing; skipped
    where the index is cached. The largest orders go first."""
    k = ppsize.Kernel("4K", "256M")
    f = k.create_file("/c", 64 * PAGE)
    idx = np.array([i for i, _ in folios], np.int64)
    ords = np.array([o for _, o in folios], np.int64)
    k.pagecache.seed(f, idx, ords)
    have = np.zeros(64, bool)
    ref = []
    for o in sorted(set(ords.tolist()), reverse=True):
        for i in idx[ords == o].tolist():
            if have[i]:
                continue
            oo = o
            if i & ((1 << oo) - 1):
                oo = (i & -i).bit_length() - 1
            while oo > 0 and have[i:i + (1 << oo)].any() or i + (1 << oo) > 64:
                oo -= 1
            have[i:i + (1 << oo)] = True
            ref.append((i, oo))
    assert k.pagecache.layout(f) == sorted(ref)
    k.check()


def test_range_stats_reports_vmas_the_model_merged_apart():
    k = ppsize.Kernel("4K", "256M")
    p = k.spawn()
    a = p.mmap(8 * PAGE, addr=BASE, fixed=True)
    p.mmap(8 * PAGE, addr=BASE + 8 * PAGE, fixed=True)             # merges with the first
    assert len(p.aspace.vmas) == 1
    p.access(np.arange(a, a + 3 * PAGE, PAGE), write=True)
    p.access([a + 9 * PAGE], write=True)
    p.access([a + 10 * PAGE])                                      # the zero page
    lo, hi = p.range_stats(a, a + 8 * PAGE), p.range_stats(a + 8 * PAGE, a + 16 * PAGE)
    assert (lo["Rss"], lo["Anonymous"], hi["Rss"], hi["ZeroPages"]) == (12, 12, 4, 4)
    assert lo["Rss"] + hi["Rss"] == p.smaps()[0]["Rss"]
    assert p.resident(a, a + 16 * PAGE).tolist() == [True] * 3 + [False] * 6 + [True, True] + [False] * 5


def test_special_mappings_as_the_kernel_installs_them():
    k = ppsize.Kernel("4K", "256M")
    p, q = k.spawn(), k.spawn()
    for proc in (p, q):
        proc.install_special_mapping("[vvar]", BASE, 4 * PAGE)
        proc.install_special_mapping("[vdso]", BASE + 4 * PAGE, 2 * PAGE)
        proc.access([BASE + 4 * PAGE], insn=True)
        assert proc.access([BASE], write=True)[0] == ppsize.Outcome.SEGV_ACCERR   # read-only
    assert p.status()["RssFile"] == 4 and p.status()["RssAnon"] == 0   # no fault-around: one page
    assert p.resident(BASE + 4 * PAGE, BASE + 6 * PAGE).tolist() == [True, False]
    assert k.pagecache.info(k.special_file("[vdso]", 2 * PAGE))["map_pages"] is False
    assert p.range_stats(BASE, BASE + 4 * PAGE)["Rss"] == 0       # VM_PFNMAP: never in RSS
    assert p.status()["majflt"] == 0                              # kernel pages: nothing read
    assert set(p.mapped_heads(BASE + 4 * PAGE, BASE + 6 * PAGE).tolist()) == \
        set(q.mapped_heads(BASE + 4 * PAGE, BASE + 6 * PAGE).tolist())        # one vDSO image
    with pytest.raises(ValueError, match="gate area"):
        p.install_special_mapping("[vsyscall]", BASE + (1 << 30), PAGE)
    with pytest.raises(ValueError, match="unknown special mapping"):
        p.install_special_mapping("[nope]", BASE + (1 << 30), PAGE)
    k.check()


# ---------------------------------------------------------------- layout
@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3), st.booleans(), st.integers(0, 200)),
                min_size=1, max_size=12), st.sampled_from([16384, 65536]))
def test_layout_gives_p_aligned_disjoint_regions_with_offsets_congruent(vmas, page):
    ranges, cur = [], BASE
    for npages, gap, is_file, off in vmas:
        cur += gap * PAGE
        ranges.append((cur, cur + npages * PAGE, off * PAGE if is_file else None))
        cur += npages * PAGE
    L = Layout(ranges, page)
    assert (L.new_starts % page == 0).all() and (L.new_ends % page == 0).all()
    assert (L.new_starts[1:] >= L.new_ends[:-1]).all()                       # no two share a P page
    for (s, e, off), ns, ne in zip(ranges, L.new_starts, L.new_ends):
        a = int(L.addr([s])[0])
        assert ns <= a and int(L.addr([e - 1])[0]) < ne
        if off is not None:
            assert (a - off) % page == 0                                      # ELF_PAGEOFFSET kept
        s2, e2 = L.span(s, e)
        assert s2 == ns and e2 <= ne
    assert L.moved == any(int(L.addr([s])[0]) != s for s, _, _ in ranges)


def test_layout_is_the_identity_at_4k():
    L = Layout([(BASE + PAGE, BASE + 5 * PAGE, 3 * PAGE)], PAGE)
    assert L.identity and not L.moved
    assert L.addr([BASE + 2 * PAGE]).tolist() == [BASE + 2 * PAGE]
    assert "kept" in L.describe()


# ---------------------------------------------------------------- snapshot replay (built)
def _snapshot(b=None):
    """A process with: a file mapping (pages 0-2 present, 8 cached), RELRO (a COW
    page in a read-only file VMA), an anon VMA with written pages and a zero page, a
    PMD THP, an mTHP of order 4, a shared anonymous page, [vvar] and [vdso]."""
    b = b or Builder()
    lib = b.file("/lib/libx.so", 16 * PAGE, resident=range(8))
    thp_pfn = 1 << 20
    mthp_pfn = (1 << 20) + 4096
    anon = BASE + 64 * PAGE
    thp = BASE + MB2 * 4
    b.process(4242, status={"VmRSS": 0}, vmas=[
        (BASE, BASE + 4 * PAGE, "r-xp", "/lib/libx.so", lib, 0,
         [(BASE, "file"), (BASE + PAGE, "file"), (BASE + 2 * PAGE, "file")]),
        (BASE + 4 * PAGE, BASE + 5 * PAGE, "r--p", "/lib/libx.so", lib, 4 * PAGE, [(BASE + 4 * PAGE, "anon")]),
        (anon, anon + 32 * PAGE, "rw-p", "", -1, 0,
         [(anon, "anon"), (anon + PAGE, "zero"), (anon + 5 * PAGE, "anon")]
         + [(anon + 16 * PAGE + i * PAGE, ("anon", 4, mthp_pfn + i)) for i in range(16)]),
        (thp, thp + MB2, "rw-p", "", -1, 0, [(thp + i * PAGE, ("anon", 9, thp_pfn + i)) for i in range(512)], ["hg"]),
        (thp + 2 * MB2, thp + 2 * MB2 + 4 * PAGE, "rw-s", "/dev/zero (deleted)", -1, 0, [(thp + 2 * MB2, "file")]),
        (BASE + (1 << 30), BASE + (1 << 30) + 4 * PAGE, "r--p", "[vvar]", -1, 0, []),
        (BASE + (1 << 30) + 4 * PAGE, BASE + (1 << 30) + 6 * PAGE, "r-xp", "[vdso]", -1, 0,
         [(BASE + (1 << 30) + 4 * PAGE, "file")]),
    ])
    st_ = b.procs[0]["status"]
    st_.update({"RssAnon": 4 + 8 + 64 + 2048, "RssFile": 12 + 4, "RssShmem": 4})
    st_["VmRSS"] = st_["RssAnon"] + st_["RssFile"] + st_["RssShmem"]
    return b


def test_built_snapshot_replays_exactly_at_4k():
    w = _snapshot().workload()
    r = replay(w, "4K", check=True)
    p = r.procs[0]
    for name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
        assert p.model[name] == p.truth[name], name
    assert p.model["AnonHugePages"] == p.truth["AnonHugePages"] == 2048
    assert r.cache_adds == 0                       # nothing cold: the cache was seeded
    for v in p.vmas:                               # every VMA lines up with its smaps row
        assert v["Rss"][0] == v["Rss"][1] and v["Anonymous"][0] == v["Anonymous"][1], v
    assert not r.partial and "kept" in r.layout


def test_relro_page_is_a_cow_copy_in_a_read_only_vma():
    w = _snapshot().workload()
    from ppsize.recording.replay import _Replayer
    from ppsize.compare import config
    rp = _Replayer(w, config("4K"))
    proc = rp.build(w.processes[0], 0)
    s = proc.range_stats(BASE + 4 * PAGE, BASE + 5 * PAGE)
    assert s["Anonymous"] == 4                     # COW'ed before mprotect(PROT_READ)
    assert proc.aspace.vma_at(BASE + 4 * PAGE)[2] & ppsize.abi.VM_WRITE == 0
    out = proc.access([BASE + 4 * PAGE], write=True)
    assert out[0] == ppsize.Outcome.SEGV_ACCERR    # read-only again, as after _dl_protect_relro


def test_fault_around_pages_the_snapshot_lacks_are_not_mapped():
    """Pages 3-7 of the library are cached but were not mapped: the model's
    fault-around would map them; the replay must not leave them."""
    w = _snapshot().workload()
    r = replay(w, "4K")
    row = r.procs[0].vmas[0]
    assert row["Rss"] == [12, 12]


def test_larger_pages_are_laid_out_and_said_so():
    w = _snapshot().workload()
    for key, page in (("64K", 65536), ("4K+16K-native", 16384)):
        r = replay(w, key, check=True)
        p = r.procs[0]
        assert p.page_size == page
        assert f"laid out for {page >> 10}K pages" in r.layout
        assert p.model["VmRSS"] >= p.truth["VmRSS"]            # every 4K page became a P page
        assert p.outcomes["segv_maperr"] == p.outcomes["segv_accerr"] == 0


def test_partial_snapshot_is_flagged_in_the_report(capsys, tmp_path):
    from ppsize.cmd_replay import report
    w = _snapshot().workload(partial=True)
    r = replay(w, "4K")
    assert r.partial and r.problems
    assert "PARTIAL" in report(r) and "exited during the snapshot" in report(r)
    from ppsize.compare import compare
    c = compare(trees=(), configs=["4K"], workloads=[w], cpu=None)
    assert "PARTIAL" in c.summary()


# ---------------------------------------------------------------- recording replay (built)
def _recording():
    """exec snapshot (stack page), then: brk(0), brk(+64K), faults on the heap, an
    anonymous mmap written twice, munmap of half of it, a file mmap read (faulting
    around), and the exit snapshot with the real figures."""
    b = Builder(kind="record")
    f = b.file("/data", 256 * PAGE, resident=range(256))
    stack = 0x7ffff0000000
    b.process(77, when="exec", minflt=5, vmas=[(stack - 8 * PAGE, stack, "rw-p", "[stack]", -1, 0,
                                                [(stack - PAGE, "anon")])])
    heap = 0x555555560000
    b.syscall(77, "brk", [0], heap)
    b.syscall(77, "brk", [heap + 16 * PAGE], heap + 16 * PAGE)
    for i in range(10):
        b.fault(77, heap + i * PAGE + 8, write=True)
    m = 0x7f0000100000
    b.syscall(77, "mmap", [0, 8 * PAGE, 3, 0x22, 2**32 - 1, 0], m)
    for i in range(8):
        b.fault(77, m + i * PAGE, write=True)
    b.syscall(77, "munmap", [m + 4 * PAGE, 4 * PAGE], 0)
    fm = 0x7f0000200000
    b.syscall(77, "mmap", [0, 32 * PAGE, 1, 0x02, 3, 0], fm, file=f)
    b.fault(77, fm + 3 * PAGE)                     # fault-around maps 16 pages (64K)
    b.fault(77, fm + 20 * PAGE)
    b.fault(77, stack - 2 * PAGE, write=True)
    b.process(77, when="exit", minflt=5 + 10 + 8 + 2 + 1,
              status={"VmRSS": 4 * (10 + 4 + 2 + 32), "RssAnon": 4 * (10 + 4 + 2), "RssFile": 4 * 32,
                      "RssShmem": 0, "VmPTE": 0},
              vmas=[(stack - 8 * PAGE, stack, "rw-p", "[stack]", -1, 0,
                     [(stack - PAGE, "anon"), (stack - 2 * PAGE, "anon")])])
    b.task(77, schema.TASK_EXIT)
    return b.workload()


def test_recorded_faults_replay_in_order():
    r = replay(_recording(), "4K", check=True)
    p = r.procs[0]
    assert p.model["minflt"] == p.truth["minflt"] == 26
    assert p.model["RssAnon"] == p.truth["RssAnon"]
    assert p.model["RssFile"] == p.truth["RssFile"] == 128      # two fault-around windows
    assert p.model["majflt"] == 0 and r.cache_adds == 0 == r.cache_adds_truth
    assert p.outcomes["fault"] == 1 + 10 + 8 + 2 + 1 and p.outcomes["major"] == 0   # 1: the exec snapshot's page


def test_recorded_faults_at_64k_lay_out_and_fault_less():
    r = replay(_recording(), "4K+64K-emulated", check=True)
    p = r.procs[0]
    assert p.page_size == 65536 and "laid out for 64K pages" in r.layout
    assert p.outcomes["segv_maperr"] == p.outcomes["segv_accerr"] == p.outcomes["sigbus"] == 0
    # 10 heap pages in one 64K page, 8 mmap pages in two, the stack's two in one
    assert p.model["minflt"] - 5 < 26 and p.model["RssAnon"] >= p.truth["RssAnon"]


# ---------------------------------------------------------------- the command
def _save(w, path):
    from ppsize.recording.format import Writer
    with Writer(path, w.kind, w.meta) as wr:
        for name in ("vmas", "vma_smaps", "pages", "folios", "files", "cache_runs", "cache_folios",
                     *schema.EVENT_SECTIONS):
            wr.add(name, w.arrays[name])
    return path


def test_replay_cli_prints_model_beside_recorded(tmp_path, capsys):
    from ppsize.cli import main
    path = _save(_snapshot().workload(), tmp_path / "s.ppw")
    assert main(["replay", str(path), "--config", "4K", "--config", "64K", "--vmas"]) == 0
    out = capsys.readouterr().out
    assert "4K kernel: layout: recorded addresses kept" in out and "laid out for 64K pages" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("VmRSS kB"))
    assert line.split()[2] == line.split()[3] and line.split()[4] == "+0"
    assert "VMAs where the model differs from smaps: 0 of" in out


@pytest.mark.parametrize("content,expect", [
    (b"", "empty file"), (b"PK\x03\x04junk", "zip archive"), (b"PPSIZEW\x00" + b"\x01" * 20, "truncated"),
])
def test_replay_cli_bad_files_one_line(tmp_path, capsys, content, expect):
    from ppsize.cli import main
    path = tmp_path / "bad.ppw"
    path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and expect in err[0]


def test_replay_cli_version_and_corruption(tmp_path, capsys):
    from ppsize.cli import main
    path = _save(_snapshot().workload(), tmp_path / "s.ppw")
    data = bytearray(path.read_bytes())
    v2 = bytearray(data)
    v2[8] = 9                                                      # format version 9
    (tmp_path / "v.ppw").write_bytes(bytes(v2))
    assert main(["replay", str(tmp_path / "v.ppw")]) == 2
    assert "newer" in capsys.readouterr().err
    data[100] ^= 0xff                                              # a byte of the vmas section
    (tmp_path / "c.ppw").write_bytes(bytes(data))
    assert main(["replay", str(tmp_path / "c.ppw")]) == 2
    err = capsys.readouterr().err
    assert "checksum" in err and "c.ppw" in err
    assert main(["replay", str(path), "--config", "5K"]) == 2
    assert "5K" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.ppw")]) == 2
    assert "missing.ppw" in capsys.readouterr().err


# ---------------------------------------------------------------- compare --workload
def test_compare_recorded_instead_of_the_mix():
    from ppsize.compare import compare
    w = _recording()
    c = compare(trees=(), configs=["4K", "64K", "4K+64K-emulated"], workloads=[w], cpu=None, check=True)
    base = c["4K"]
    assert base.check == "passed"
    rep = base.replays[0]
    p = rep.procs[0]
    assert p.model["minflt"] == p.truth["minflt"] and p.model["RssAnon"] == p.truth["RssAnon"]
    # the process is kept as at its exit snapshot: its memory is in meminfo
    assert base.anon_kB == p.model["RssAnon"] and base.pagetables_kB > 0
    assert c["64K"].anon_kB >= base.anon_kB and c["4K+64K-emulated"].procs[0]["page"] == "64K"
    # the 64K process's transition dropped the recorded cache; it is read again at the end
    per = c["4K+64K-emulated"]
    assert per.transitions == 1 and per.cached_kB == base.cached_kB == 256 * 4    # /data, all of it
    assert c.scan is None and "recorded workload <built>" in c.summary()
    assert "64K pages: layout: laid out for 64K" in c.summary()
    assert c.as_dict()["configs"][0]["recorded"][0]["truth"]["minflt"] == 26


def test_compare_with_the_mix_keeps_the_mix_figures(tmp_path):
    """The synthetic mix's own rows are the same with and without a recording in the
    kernel (same memory); the recording's rows come after them."""
    from ppsize.compare import compare
    from test_compare import make_tree
    make_tree(str(tmp_path / "t"), n=8)
    kw = dict(configs=["4K", "4K+16K-emulated"], processes=3, cpu=None, memory="1G")
    plain = compare([str(tmp_path / "t")], **kw)
    both = compare([str(tmp_path / "t")], workloads=[_snapshot().workload()], **kw)
    for key in ("4K", "4K+16K-emulated"):
        a, b = plain[key], both[key]
        assert b.procs[:3] == a.procs
        assert len(b.procs) == 4 and b.procs[3]["RssAnon"] == b.replays[0].procs[0].model["RssAnon"]
        assert b.anon_kB == a.anon_kB + b.procs[3]["RssAnon"]
        assert b.reread_kB == a.reread_kB or key != "4K"       # seeding is not a re-read
        assert b.expected_cached_kB is None                    # no closed form with recordings


def test_compare_cli_workload_and_bad_file(tmp_path, capsys):
    from ppsize.cli import main
    path = _save(_recording(), tmp_path / "rec.ppw")
    assert main(["compare", "--workload", str(path), "--config", "4K", "--config", "16K"]) == 0
    out = capsys.readouterr().out
    assert "4K kernel " in out and "16K kernel" in out
    assert "the 4K kernel's replay beside the recorded figures" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("minflt"))
    assert line.split()[1:3] == ["26", "26"]
    bad = tmp_path / "bad.ppw"
    bad.write_bytes(b"\x7fELF" + b"\0" * 100)
    assert main(["compare", "--workload", str(bad), "--config", "4K"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.ppw" in err[0] and "ELF" in err[0]


def test_access_trace_replays_through_the_translation_model():
    """--accesses recordings: the layout rebuilt empty, every access in order through
    the TLB; stores write-fault, instruction fetches use the instruction side."""
    b = Builder(kind="record")
    lib = b.file("/lib/t.so", 8 * PAGE, resident=range(8))
    code, heap = BASE, BASE + 64 * PAGE
    b.process(9, when="exit", vmas=[(code, code + 8 * PAGE, "r-xp", "/lib/t.so", lib, 0, []),
                                    (heap, heap + 16 * PAGE, "rw-p", "", -1, 0, [])])
    w = b.workload()
    acc = np.zeros(6, schema.ACCESS_DTYPE)
    acc["addr"] = [code + 8, heap, heap + 8, heap + PAGE, code + 16, heap + 20 * PAGE]
    acc["size"] = 8
    acc["kind"] = [schema.ACCESS_INSTR, schema.ACCESS_STORE, schema.ACCESS_LOAD, schema.ACCESS_MODIFY,
                   schema.ACCESS_INSTR, schema.ACCESS_LOAD]
    w.arrays._src["accesses"] = acc
    r = replay(w, "4K", cpu="neoverse-n1")
    p = r.procs[0]
    assert p.outcomes["fault"] == 3 and p.outcomes["segv_maperr"] == 1      # the last: no VMA
    assert p.model["RssAnon"] == 8 and p.model["RssFile"] > 0
    assert p.truth["VmRSS"] is None and any("valgrind" in n for n in r.notes)
    l1i = r.translation[0]["l1i"]
    assert l1i["accesses"] == 2                                             # the two fetches


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["anon", "zero", "none"]), min_size=8, max_size=64),
       st.lists(st.booleans(), min_size=16, max_size=16), st.booleans())
def test_random_snapshots_replay_exactly_per_vma(anon_pages, file_present, thp_region):
    """Any mix of written, zero-page and untouched anonymous pages and present file
    pages (a 16-page file, half of it cached beyond what is mapped) replays with every
    VMA's Rss and Anonymous equal to the snapshot's at 4K."""
    b = Builder()
    lib = b.file("/lib/r.so", 32 * PAGE, resident=range(24))
    anon = BASE + MB2
    fpages = [(BASE + i * PAGE, "file") for i, on in enumerate(file_present) if on]
    apages = [(anon + i * PAGE, kind) for i, kind in enumerate(anon_pages) if kind != "none"]
    vmas = [(BASE, BASE + 16 * PAGE, "r--p", "/lib/r.so", lib, 0, fpages),
            (anon, anon + 64 * PAGE, "rw-p", "", -1, 0, apages)]
    if thp_region:
        t = BASE + 8 * MB2
        vmas.append((t, t + MB2, "rw-p", "", -1, 0, [(t + i * PAGE, ("anon", 9, (1 << 21) + i))
                                                      for i in range(512)], ["hg"]))
    b.process(5, vmas=vmas)
    r = replay(b.workload(), "4K", check=True)
    p = r.procs[0]
    for v in p.vmas:
        assert v["Rss"][0] == v["Rss"][1] and v["Anonymous"][0] == v["Anonymous"][1], v
        assert v["AnonHugePages"][0] == v["AnonHugePages"][1], v
    assert r.cache_adds == 0


def test_fork_and_exec_in_a_recording():
    """A parent forks; the child execs (its own exec snapshot), faults and exits; the
    parent faults after the fork (COW of a page it wrote before): each process's
    figures as recorded."""
    b = Builder(kind="record")
    heap = 0x555555560000
    b.process(10, when="exec", minflt=3, vmas=[(heap, heap + 8 * PAGE, "rw-p", "[heap]", -1, 0,
                                               [(heap, "anon")])])
    b.task(10, schema.TASK_FORK, other=11)
    b.fault(10, heap, write=True)                          # COW: the child shares the page
    child_heap = 0x555555700000
    b.process(11, when="exec", minflt=1, vmas=[(child_heap, child_heap + 4 * PAGE, "rw-p", "[heap]", -1, 0, [])])
    for i in range(3):
        b.fault(11, child_heap + i * PAGE, write=True)
    b.process(11, when="exit", minflt=4, status={"VmRSS": 12, "RssAnon": 12, "RssFile": 0, "RssShmem": 0,
                                                  "VmPTE": 0},
              vmas=[(child_heap, child_heap + 4 * PAGE, "rw-p", "[heap]", -1, 0,
                     [(child_heap + i * PAGE, "anon") for i in range(3)])])
    b.task(11, schema.TASK_EXIT)
    b.process(10, when="exit", minflt=4, status={"VmRSS": 4, "RssAnon": 4, "RssFile": 0, "RssShmem": 0,
                                                  "VmPTE": 0},
              vmas=[(heap, heap + 8 * PAGE, "rw-p", "[heap]", -1, 0, [(heap, "anon")])])
    b.task(10, schema.TASK_EXIT)
    r = replay(b.workload(), "4K", check=True)
    by = {p.pid: p for p in r.procs}
    assert set(by) == {10, 11}
    assert by[11].model["minflt"] == 4 and by[11].model["RssAnon"] == 12
    assert by[10].model["minflt"] == 4 and by[10].outcomes["cow"] == 1 and by[10].model["RssAnon"] == 4


def test_moved_layout_maps_what_the_4k_run_had_mapped():
    """A fault trace lacks the 4K run's hits: with a larger page every file page the
    exit snapshot shows mapped is read at the end (not counted in minflt); at 4K the
    trace alone decides."""
    b = Builder(kind="record")
    f = b.file("/data", 64 * PAGE, resident=range(64))
    b.process(3, when="exec", vmas=[])
    fm = 0x7f0000203000
    b.syscall(3, "mmap", [0, 40 * PAGE, 1, 0x02, 3, 0], fm, file=f)
    b.fault(3, fm)
    b.process(3, when="exit", minflt=1, status={"VmRSS": 0, "RssAnon": 0, "RssFile": 0, "RssShmem": 0, "VmPTE": 0},
              vmas=[(fm, fm + 40 * PAGE, "r--p", "/data", f, 0, [(fm, "file"), (fm + 30 * PAGE, "file")])])
    b.task(3, schema.TASK_EXIT)
    w = b.workload()
    at4 = replay(w, "4K", keep=True)
    at64 = replay(w, "4K+64K-emulated", keep=True)
    m4, m64 = at4.procs[0].model, at64.procs[0].model
    assert m4["minflt"] == 1 and m64["minflt"] + m64["majflt"] == 1     # 64K: drop-all made it major
    rows64 = {v["start"]: v for v in at64.procs[0].vmas}
    assert rows64[fm]["Rss"][0] >= 2 * 64                       # the faulted and the floor P page
    assert at4.procs[0].vmas[0]["Rss"][0] == 64     # one fault-around window (from the VMA start)
