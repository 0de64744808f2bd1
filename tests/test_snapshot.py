"""``ppsize snapshot`` of a child with a known layout (tests/live/layout.c): what the
snapshot captured against what the program did. Pagemap presence, smaps, files and the
process tree need no privileges; frame flags (zero page, THP, mapcounts, folio orders)
need root and are opt-in (--live)."""
import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

import live_kernel as lk
from as_nobody import main_as_nobody
from ppsize.cli import main
from ppsize.recording import capture as capture_mod
from ppsize.recording import kpageflags_bits, load, pagemap_bits, pfn, snapshot
from ppsize.recording.capture import AccessDenied, NoSuchProcess

PAGE = os.sysconf("SC_PAGE_SIZE")
FILE_PAGES = 40
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (kpageflags, PFNs)")


def _cc_or_skip():
    if lk._cc() is None:
        pytest.skip("no C compiler")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """The running layout.c (parent and child) and what it reported."""
    _cc_or_skip()
    exe = lk.compile_program("layout")
    d = tmp_path_factory.mktemp("layout")
    data = d / "data.bin"
    data.write_bytes(os.urandom(FILE_PAGES * PAGE))
    proc = subprocess.Popen([str(exe), str(data), str(FILE_PAGES)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    info["path"] = str(data)
    info["st"] = os.stat(data)
    yield info
    proc.stdin.close()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def snap(layout, tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "layout.ppw"
    w = snapshot([layout["pid"], layout["child"]], path=path)
    return w, load(path), path


def _vma_at(proc, addr):
    for v in proc.vma_list():
        if v.start <= addr < v.end:
            return v
    raise AssertionError(f"no VMA at {addr:#x} in pid {proc.pid}")


def _region_pages(proc, start, npages):
    """Page index (from start) -> pagemap entry of the region's pages with an entry."""
    pg = proc.pages
    sel = (pg["addr"] >= start) & (pg["addr"] < start + npages * PAGE)
    return dict(zip(((pg["addr"][sel] - start) // PAGE).tolist(), pg["pagemap"][sel].tolist())), pg[sel]


def test_file_round_trip_equals_the_in_memory_workload(snap):
    mem, disk, _ = snap
    disk.check()
    mem.check()
    for name in ("vmas", "vma_smaps", "pages", "folios", "files", "cache_runs", "cache_folios", "tree"):
        np.testing.assert_array_equal(mem.arrays[name], disk.arrays[name], err_msg=name)
    assert [p.info for p in mem.processes] == [p.info for p in disk.processes]


def test_anon_region_present_pages_are_the_touched_ones(snap, layout):
    _, w, _ = snap
    p = w.process(layout["pid"])
    v = _vma_at(p, layout["anon"])
    assert v.anonymous and v.perms == "rw-p" and "nh" in v.vmflags      # MADV_NOHUGEPAGE
    pages, _ = _region_pages(p, layout["anon"], layout["anon_pages"])
    written = set(range(0, layout["anon_pages"], 3))
    read = {1, 4}
    present = {i for i, e in pages.items() if pagemap_bits([e])["present"][0]}
    assert present == written | read
    # smaps' Rss counts the written pages, not the zero-page mappings pagemap shows
    # (smaps_pte_entry skips what vm_normal_page does not return)
    assert v.smaps["Rss"] == v.smaps["Anonymous"] == len(written) * PAGE // 1024


def test_file_mapping_names_the_file_and_its_cache(snap, layout):
    _, w, _ = snap
    p = w.process(layout["pid"])
    v = _vma_at(p, layout["file"])
    st = layout["st"]
    assert v.perms == "r--s" and v.inode == st.st_ino and v.pgoff == 0
    f = v.file
    assert f is not None and (f.st_dev, f.st_ino) == (st.st_dev, st.st_ino)
    assert f.size == FILE_PAGES * PAGE and f.path == layout["path"]
    pages, _ = _region_pages(p, layout["file"], FILE_PAGES)
    bits = pagemap_bits(list(pages.values()))
    present = {i for i, ok in zip(pages, bits["present"]) if ok}
    assert set(range(FILE_PAGES // 2)) <= present                   # read by the program
    assert max(present) < -(-(FILE_PAGES // 2) // 16) * 16 + 16      # at most fault-around beyond
    assert all(bits["file"][i] for i, k in enumerate(pages) if k in present)
    resident = f.residency()
    assert resident[sorted(present)].all()                          # mapped pages are cached
    assert f.resident_pages == FILE_PAGES                           # the test just wrote it all
    if f.cachestat is not None:
        assert f.cachestat["nr_cache"] == FILE_PAGES


def test_shared_memory_file(snap, layout):
    _, w, _ = snap
    v = _vma_at(w.process(layout["pid"]), layout["memfd"])
    assert v.perms == "rw-s" and v.name == "/memfd:ppsize-layout (deleted)"
    f = v.file
    assert {"shmem", "deleted"} <= f.flags and f.size == 8 * PAGE and f.path == "/memfd:ppsize-layout"
    assert f.residency().tolist() == [True, False, True, False, False, False, False, False]
    pages, _ = _region_pages(w.process(layout["pid"]), layout["memfd"], 8)
    bits = pagemap_bits(list(pages.values()))
    assert sorted(pages) == [0, 2] and bits["present"].all() and bits["file"].all()


def test_process_tree_and_fork(snap, layout):
    _, w, _ = snap
    parent, child = w.process(layout["pid"]), w.process(layout["child"])
    assert child.ppid == parent.pid and parent.pid == layout["pid"]
    assert parent.comm == child.comm == os.path.basename(parent.exe)[:15]
    tree = w.arrays["tree"]
    row = tree[tree["pid"] == layout["child"]]
    assert len(row) == 1 and row["ppid"][0] == layout["pid"]
    assert tree["pid"].tolist() == sorted(tree["pid"].tolist())
    assert not w.partial and not parent.partial
    # the child's copy of the COW region: all pages present, page 0 its own
    pages, _ = _region_pages(child, layout["cow"], layout["cow_pages"])
    bits = pagemap_bits(list(pages.values()))
    assert sorted(pages) == list(range(layout["cow_pages"])) and bits["present"].all()
    excl = dict(zip(pages, bits["exclusive"]))
    assert excl[0] and not any(excl[i] for i in range(1, layout["cow_pages"]))


def test_status_matches_smaps_and_pagemap(snap, layout):
    _, w, _ = snap
    p = w.process(layout["pid"])
    t = p.totals()
    # VmRSS and the VMAs' Rss are read a moment apart but the program is idle
    assert p.status["VmRSS"] == t["Rss"]
    assert t["present_pages"] * PAGE // 1024 >= t["Rss"]           # + zero-page mappings
    assert p.status["VmRSS"] == p.status["RssAnon"] + p.status["RssFile"] + p.status["RssShmem"]
    assert p.minflt > 0 and p.stat["state"] in "SR"


@root_only
@pytest.mark.live
def test_live_frame_flags_zero_page_thp_mapcount(snap, layout):
    _, w, _ = snap
    assert w.capture["kpageflags"]
    p = w.process(layout["pid"])
    _, anon = _region_pages(p, layout["anon"], layout["anon_pages"])
    zero = kpageflags_bits(anon["kflags"], "zero_page", "anon")
    idx = (anon["addr"] - layout["anon"]) // PAGE
    assert set(idx[zero["zero_page"]].tolist()) == {1, 4}
    assert zero["anon"][~zero["zero_page"]].all()
    assert len(set(pfn(anon["pagemap"])[zero["zero_page"]].tolist())) == 1     # one zero page
    # THP: one order-9 folio mapping the whole 2M if THP is enabled for madvise
    v = _vma_at(p, layout["thp"])
    if w.host["thp"].get("enabled") in ("always", "madvise") and v.smaps["AnonHugePages"] == 2048:
        order = p.page_folio_order()
        sel = (p.pages["addr"] >= layout["thp"]) & (p.pages["addr"] < layout["thp"] + (2 << 20))
        assert sel.sum() == 512 and (order[sel] == 9).all()
        assert kpageflags_bits(p.pages["kflags"][sel], "thp")["thp"].all()
    # COW pages shared with the child: mapcount 2 except page 0 (each has its own)
    _, cow = _region_pages(p, layout["cow"], layout["cow_pages"])
    assert cow["mapcount"].tolist() == [1] + [2] * (layout["cow_pages"] - 1)
    child = w.process(layout["child"])
    _, ccow = _region_pages(child, layout["cow"], layout["cow_pages"])
    assert (pfn(ccow["pagemap"])[1:] == pfn(cow["pagemap"])[1:]).all()
    assert pfn(ccow["pagemap"])[0] != pfn(cow["pagemap"])[0]


@root_only
@pytest.mark.live
def test_live_file_folios_cover_the_resident_pages(snap, layout):
    _, w, _ = snap
    f = _vma_at(w.process(layout["pid"]), layout["file"]).file
    assert f.probed
    covered = np.zeros(FILE_PAGES, bool)
    for idx, order in zip(f.folios["index"].tolist(), f.folios["order"].tolist()):
        assert idx % (1 << order) == 0                      # folios are naturally aligned
        covered[idx:idx + (1 << order)] = True
    assert (covered == f.residency()[:FILE_PAGES]).all()
    # the folios the process maps are among the file's
    p = w.process(layout["pid"])
    _, fp = _region_pages(p, layout["file"], FILE_PAGES)
    present = pagemap_bits(fp["pagemap"])["present"]
    assert set(pfn(fp["pagemap"][present]).tolist()) <= {
        int(h) + k for h, o in zip(f.folios["pfn"], f.folios["order"]) for k in range(1 << int(o))}


def test_exit_during_snapshot_is_partial_and_flagged(monkeypatch, tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    real = capture_mod.procmaps.read_smaps

    def read_then_die(pid):
        s = real(pid)
        if int(pid) == victim.pid:
            victim.kill()
            victim.wait()
        return s
    monkeypatch.setattr(capture_mod.procmaps, "read_smaps", read_then_die)
    path = tmp_path / "partial.ppw"
    w = snapshot([victim.pid], path=path)
    r = load(path)
    for x in (w, r):
        p = x.process(victim.pid)
        assert x.partial and p.partial
        assert any("exited during the snapshot" in s for s in p.problems)
    text = r.summary()
    assert "PARTIAL" in text and str(victim.pid) in text
    monkeypatch.undo()
    assert main(["inspect", str(path)]) == 0


def test_permission_denied_names_pid_and_file(monkeypatch, tmp_path, capsys):
    def denied(pid):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(capture_mod.procmaps, "read_smaps", denied)
    with pytest.raises(AccessDenied, match=rf"/proc/{os.getppid()}/smaps \(pid {os.getppid()}\)"):
        snapshot([os.getppid()])
    assert main(["snapshot", "--pid", str(os.getppid()), "-o", str(tmp_path / "x.ppw")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"/proc/{os.getppid()}/smaps" in err and "Traceback" not in err
    assert not (tmp_path / "x.ppw").exists() and not (tmp_path / "x.ppw.part").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root to test a real EACCES")
def test_real_permission_denied_as_another_user(tmp_path):
    """A forked child that gives up root snapshots pid 1: the kernel refuses. (Its
    output directory must be one it can reach: the CLI checks that first.)"""
    import tempfile
    tmp_path = Path(tempfile.mkdtemp(dir="/tmp"))
    os.chmod(tmp_path, 0o777)
    status, err = main_as_nobody(["snapshot", "--pid", "1", "-o", str(tmp_path / "o.ppw")])
    assert status == 2, err
    assert err.count("\n") == 1 and "permission denied reading /proc/1/" in err and "(pid 1)" in err


def test_no_such_process(tmp_path, capsys):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(NoSuchProcess, match=str(gone.pid)):
        snapshot([gone.pid])
    assert main(["snapshot", "--pid", str(gone.pid), "-o", str(tmp_path / "x.ppw")]) == 2
    assert f"no process with pid {gone.pid}" in capsys.readouterr().err


def test_cache_tree(tmp_path):
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_bytes(b"x" * (3 * PAGE))
    (d / "sub" / "b").write_bytes(b"y" * 100)
    os.link(d / "a", d / "hard")                                # one inode, counted once
    (d / "link").symlink_to(d / "a")                             # not followed
    w = snapshot(cache_dirs=[d])
    by_path = {f.path: f for f in w.files}
    assert set(by_path) == {str(d / "a"), str(d / "sub" / "b")} or set(by_path) == {str(d / "hard"), str(d / "sub" / "b")}
    a = next(f for f in w.files if f.size == 3 * PAGE)
    assert "tree" in a.flags and a.resident_pages == 3
    assert w.capture["cache_counts"][str(d)]["files"] == 2
    with pytest.raises(NotADirectoryError):
        snapshot(cache_dirs=[d / "a"])


def test_cli_snapshot_and_inspect(layout, tmp_path, capsys):
    out = tmp_path / "cli.ppw"
    assert main(["snapshot", "--pid", str(layout["pid"]), "--no-probe", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert str(layout["pid"]) in text and "1 process snapshots" in text
    assert main(["inspect", str(out), "--vmas", str(layout["pid"])]) == 0
    vm = capsys.readouterr().out
    assert f"{layout['anon']:x}-" in vm and layout["path"] in vm
    assert main(["inspect", str(out), "--files"]) == 0
    assert layout["path"] in capsys.readouterr().out
    assert main(["inspect", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["processes"][0]["pid"] == layout["pid"] and d["partial"] is False
    assert main(["snapshot", "-o", str(out)]) == 2
    assert "nothing to capture" in capsys.readouterr().err


def test_freeze_stops_the_process_while_it_is_read_and_resumes_it():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        w = snapshot([sleeper.pid], freeze=True, probe=False)
        assert w.process(sleeper.pid).stat["state"] == "T"           # read while stopped
        assert capture_mod.procmaps.read_stat(sleeper.pid)["state"] in "SR"   # and resumed
    finally:
        sleeper.kill()
        sleeper.wait()


def test_all_processes_and_the_tree():
    w = snapshot(all=True, probe=False)
    pids = {p.pid for p in w.processes}
    assert os.getppid() in pids and os.getpid() not in pids
    assert not any(p.kthread for p in w.processes)
    tree = w.arrays["tree"]
    assert os.getpid() in tree["pid"].tolist()                    # the tree has everyone
    assert not pids & set(tree["pid"][tree["kthread"] == 1].tolist())      # kernel threads: tree only
    w.check()
