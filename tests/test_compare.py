"""``ppsize compare``: the tree scan, the seeded workload, the rounding identity of
the page cache (exact), the figures, the JSON and the CLI."""
import io
import json
import os
import stat

import numpy as np
import pytest

import ppsize
from ppsize import compare as cmp
from ppsize.cli import main

PLAIN = ("4K", "16K", "64K")
PAGE = {"4K": 4096, "16K": 16384, "64K": 65536}


def round_up(sizes, page):
    return sum(-(-int(s) // page) * page for s in sizes)


def make_tree(root, seed=0, n=40):
    """Files of seeded sizes (edge sizes first), some named like libraries or
    executable, in nested directories. Returns {path: size}."""
    rng = np.random.default_rng(seed)
    edge = [0, 1, 4095, 4096, 4097, 16383, 16384, 16385, 65535, 65536, 65537, 3 << 20, (5 << 20) + 7]
    sizes = edge + rng.integers(0, 300_000, n).tolist() + [int(rng.integers(1 << 20, 4 << 20))]
    out = {}
    for i, size in enumerate(sizes):
        d = os.path.join(root, f"d{i % 4}", f"e{i % 3}")
        os.makedirs(d, exist_ok=True)
        name = f"lib{i}.so.{i % 3}" if i % 3 == 0 else f"bin{i}" if i % 3 == 1 else f"data{i}.txt"
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.truncate(size)                   # sparse: st_size is what counts
        if name.startswith("bin"):
            os.chmod(path, 0o755)
        out[path] = size
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    files = make_tree(str(root))
    return str(root), files


@pytest.fixture(scope="module")
def result(tree):
    return cmp.compare([tree[0]], seed=3, processes=6, check=True)


# ------------------------------------------------------------- rounding identity
def test_rounding_identity_is_exact_on_plain_kernels(tree, result):
    _, files = tree
    assert result.scan.nr_files == len(files)
    assert sorted(result.scan.sizes.tolist()) == sorted(files.values())
    for key in PLAIN:
        r = result[key]
        want = round_up(files.values(), PAGE[key])
        assert r.cached_kB * 1024 == want, key
        assert r.cached_after_read_kB * 1024 == want, key     # before the processes, too
        assert r.expected_cached_kB == r.cached_kB
        assert r.transitions == 0 and r.pages_reread == 0
        assert r.check == "passed"


def test_per_process_page_cache_is_exact_and_between(tree, result):
    """Files a large-page process mapped are cached in folios of at least its page
    (round up to P), every other file as on the 4K kernel."""
    _, files = tree
    big = result.workload.mapped_files(chosen_only=True)
    assert big, "the chosen processes map files"
    sizes = result.scan.sizes
    lo, hi = result["4K"].cached_kB, result["64K"].cached_kB
    for key in ("4K+16K-emulated", "4K+16K-native", "4K+64K-emulated", "4K+64K-native"):
        r = result[key]
        p = r.config.proc_page
        want = round_up(sizes, 4096) + sum(round_up([sizes[i]], p) - round_up([sizes[i]], 4096)
                                          for i in big)
        assert r.cached_kB * 1024 == want, key
        assert lo <= r.cached_kB <= hi
        mapped = [i for i in big if sizes[i] % p]
        assert r.transitions == len([i for i in big if sizes[i] > 0])
        if mapped:
            assert r.cached_kB > lo
    assert result["4K+16K-emulated"].cached_kB <= result["4K+64K-emulated"].cached_kB


@pytest.mark.parametrize("key", PLAIN)
def test_rounding_identity_on_a_real_tree(key):
    tree = "/etc" if os.path.isdir("/etc") else None
    if tree is None:
        pytest.skip("no /etc")
    scan = cmp.scan_trees([tree])
    assert scan.nr_files > 0
    w = cmp.make_workload(scan, seed=0, processes=3)
    r = cmp.run_config(key, scan, w)
    assert r.cached_kB * 1024 == round_up(scan.sizes, PAGE[key]) == scan.cache_bytes(PAGE[key])


# ------------------------------------------------------------------------ scan
def test_hard_links_once_symlinks_skipped(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 5000)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "a", tmp_path / "sub" / "c")
    (tmp_path / "d").write_bytes(b"y" * 10)
    os.symlink(tmp_path / "a", tmp_path / "lnk")
    os.symlink(tmp_path / "sub", tmp_path / "dirlnk")
    os.symlink("/nonexistent", tmp_path / "dangling")
    os.mkfifo(tmp_path / "fifo")
    s = cmp.scan_trees([str(tmp_path)])
    assert sorted(s.sizes.tolist()) == [10, 5000]
    assert s.skipped == {"hardlink": 2, "symlink": 3, "special": 1}
    assert s.errors == 0
    # overlapping trees and a tree that is a file: still once per inode
    s2 = cmp.scan_trees([str(tmp_path), str(tmp_path / "sub"), str(tmp_path / "d")])
    assert sorted(s2.sizes.tolist()) == [10, 5000]
    assert s2.dirs == 2


def test_missing_tree_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        cmp.scan_trees([str(tmp_path / "nope")])


def test_file_vanishing_between_scandir_and_lstat(tmp_path, monkeypatch):
    files = make_tree(str(tmp_path), seed=5, n=10)
    victim = sorted(files)[3]
    real = os.lstat

    def lstat(name, dir_fd=None):
        if name == os.path.basename(victim) and os.path.exists(victim):
            os.unlink(victim)               # listed: then the file goes away
        return real(name, dir_fd=dir_fd)

    monkeypatch.setattr(cmp.scan, "_lstat", lstat)
    s = cmp.scan_trees([str(tmp_path)], engine="python")
    assert s.skipped == {"vanished": 1}
    assert s.examples["vanished"] == [victim]
    assert s.nr_files == len(files) - 1
    assert s.total_bytes == sum(files.values()) - files[victim]
    assert s.errors == 1


class _Iter:
    """A scandir iterator stand-in (context manager) over a list of entries."""
    def __init__(self, entries, fail_after=None):
        self.entries, self.fail_after = list(entries), fail_after

    def __iter__(self):
        return self

    def __next__(self):
        if self.fail_after is not None and self.fail_after == 0:
            raise OSError(5, "Input/output error")
        if not self.entries:
            raise StopIteration
        if self.fail_after is not None:
            self.fail_after -= 1
        return self.entries.pop(0)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_unreadable_directory_and_lstat_errors(tmp_path, monkeypatch):
    files = make_tree(str(tmp_path), seed=6, n=20)
    locked = os.path.join(str(tmp_path), "d1")
    lost = {p: s for p, s in files.items() if p.startswith(locked + os.sep)}
    assert lost
    real_opendir, real_lstat = cmp.scan._opendir, os.lstat
    eio = sorted(p for p in files if p not in lost)[0]
    eacces = sorted(p for p in files if p not in lost)[1]

    def opendir(path):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_opendir(path)

    def lstat(name, dir_fd=None):               # file names are unique in the tree
        if name == os.path.basename(eio):
            raise OSError(5, "Input/output error", name)
        if name == os.path.basename(eacces):
            raise PermissionError(13, "Permission denied", name)
        return real_lstat(name, dir_fd=dir_fd)

    monkeypatch.setattr(cmp.scan, "_opendir", opendir)
    monkeypatch.setattr(cmp.scan, "_lstat", lstat)
    s = cmp.scan_trees([str(tmp_path)], engine="python")
    assert s.skipped == {"unreadable_dir": 1, "error": 1, "permission": 1}
    assert s.examples["unreadable_dir"] == [locked]
    gone = set(lost) | {eio, eacces}
    assert s.nr_files == len(files) - len(gone)
    assert s.total_bytes == sum(v for p, v in files.items() if p not in gone)
    # the whole comparison still runs, with correct totals
    r = cmp.compare([str(tmp_path)], processes=2, configs=["4K", "64K"], scan=s)
    assert r["64K"].cached_kB * 1024 == round_up([v for p, v in files.items() if p not in gone], 65536)


def test_readdir_failing_halfway_is_counted(tmp_path, monkeypatch):
    for i in range(6):
        (tmp_path / f"f{i}").write_bytes(b"z" * (i + 1))
    real = os.scandir
    monkeypatch.setattr(cmp.scan, "_scandir", lambda fd: _Iter(list(real(fd)), fail_after=2))
    s = cmp.scan_trees([str(tmp_path)], engine="python")
    assert s.nr_files == 2 and s.skipped == {"unreadable_dir": 1}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
@pytest.mark.parametrize("engine", ["native", "python"])
def test_really_unreadable_directory(tmp_path, engine):
    (tmp_path / "ok").write_bytes(b"1" * 100)
    d = tmp_path / "closed"
    d.mkdir()
    (d / "x").write_bytes(b"2" * 100)
    d.chmod(0)
    try:
        s = cmp.scan_trees([str(tmp_path)], engine=engine)
    finally:
        d.chmod(stat.S_IRWXU)
    assert s.nr_files == 1 and s.skipped == {"unreadable_dir": 1}


# --------------------------------------------------------------------- workload
def test_workload_is_seeded_and_uses_libraries(tree):
    scan = cmp.scan_trees([tree[0]])
    a, b = cmp.make_workload(scan, seed=1), cmp.make_workload(scan, seed=1)
    c = cmp.make_workload(scan, seed=2)
    assert a.as_dict() == b.as_dict() != c.as_dict()
    assert len(a.procs) == 12 and a.chosen == [1, 3, 5, 7, 9, 11]
    kinds = {m.kind for p in a.procs for m in p.mappings}
    assert {"exe", "lib", "heap", "stack"} <= kinds
    for p in a.procs:
        for m in p.mappings:
            assert m.offsets.size >= 1 and int(m.offsets.max()) < m.length
            assert (np.diff(m.offsets.astype(np.int64)) != 0).all()
            if m.kind == "lib":
                assert ".so" in os.path.basename(m.path)
    assert cmp.make_workload(scan, chosen="all").chosen == list(range(12))
    assert cmp.make_workload(scan, chosen="0,2", processes=3).chosen == [0, 2]
    with pytest.raises(ValueError, match="out of range"):
        cmp.make_workload(scan, chosen=[5], processes=3)


def test_no_chosen_process_means_the_4k_kernel(tree):
    r = cmp.compare([tree[0]], processes=4, chosen="none",
                    configs=["4K", "4K+64K-emulated", "4K+64K-native"])
    base = r["4K"]
    for key in ("4K+64K-emulated", "4K+64K-native"):
        x = r[key]
        assert (x.cached_kB, x.anon_kB, x.pagetables_kB, x.xarray_kB, x.transitions) == \
               (base.cached_kB, base.anon_kB, base.pagetables_kB, base.xarray_kB, 0)
        assert r.ratio(x) == 1.0


# ---------------------------------------------------------------------- figures
def test_figures_ratio_and_totals(result):
    base = result["4K"]
    assert result.ratio(base) == 1.0
    for r in result.results:
        assert r.total_kB == r.cached_kB + r.anon_kB + r.pagetables_kB + r.xarray_kB
        assert r.meminfo["Cached"] == r.cached_kB
        assert result.ratio(r) == pytest.approx(r.total_kB / base.total_kB)
        assert r.oom == 0
    # larger pages: more page cache and anon, fewer XArray nodes
    assert result["4K"].cached_kB < result["16K"].cached_kB < result["64K"].cached_kB
    assert result["4K"].anon_kB <= result["16K"].anon_kB <= result["64K"].anon_kB
    # (XArray: fewer nodes, but slab pages are whole kernel pages: one 64K slab at least)
    assert result["4K"].xarray_kB + 64 > result["64K"].xarray_kB
    assert result["4K"].anon_kB <= result["4K+16K-emulated"].anon_kB <= result["4K+64K-emulated"].anon_kB
    # emulated and native differ in page tables only
    for p in ("16K", "64K"):
        e, n = result[f"4K+{p}-emulated"], result[f"4K+{p}-native"]
        assert (e.cached_kB, e.anon_kB, e.xarray_kB) == (n.cached_kB, n.anon_kB, n.xarray_kB)
    # transitions dropped cache that was read again
    assert result["4K+64K-emulated"].transitions > 0 and result["4K+64K-emulated"].pages_reread > 0
    text = result.table()
    assert "ratio" in text and "4K kernel, 64K procs, native" in text
    assert "1.000" in text.splitlines()[2]


def test_as_dict_keys(result):
    d = json.loads(json.dumps(result.as_dict()))
    assert {"trees", "scan", "workload", "memory", "thp", "units", "baseline", "configs",
            "seconds"} <= set(d)
    assert [c["key"] for c in d["configs"]] == [c.key for c in cmp.CONFIGS]
    for c in d["configs"]:
        assert {"key", "label", "kernel_page", "process_page", "pgtable", "page_cache_kB", "anon_kB",
                "page_tables_kB", "xarray_kB", "total_kB", "ratio", "transitions", "pages_reread",
                "reread_kB", "expected_page_cache_kB", "meminfo", "processes", "check"} <= set(c)
    assert {"files", "bytes", "directories", "skipped", "errors"} <= set(d["scan"])
    assert len(d["workload"]["processes"]) == 6


def test_kernel_memory_fits_the_64k_kernel(result):
    assert result.memory >= result.scan.cache_bytes(65536) + result.workload.anon_bytes
    assert result.memory % (256 << 20) == 0


def test_native_file_mapping():
    """A native 64K process maps file folios with 64K PTEs (the last one past EOF)."""
    k = ppsize.Kernel("4K", "256M", thp="madvise")
    f = k.create_file("A", 100_000)
    k.pagecache.read_all()
    p = k.spawn(page_size="64K", pgtable="native")
    a = p.mmap(100_000, file=f, prot="r")
    out = p.access(np.arange(a, a + 100_000, 4096))
    assert (out != ppsize.Outcome.HIT).sum() == 2                 # one fault per 64K page
    assert p.status()["RssFile"] == 128
    k.check()


def test_progress_bar_draws_only_when_enabled():
    buf = io.StringIO()
    bar = cmp.Progress(enabled=True, stream=buf)
    bar.update("reading", 0.5, force=True)
    bar.close()
    assert "[###############" in buf.getvalue() and "50%" in buf.getvalue()
    quiet = io.StringIO()
    cmp.Progress(stream=quiet).update("x", 0.5, force=True)      # StringIO: not a terminal
    assert quiet.getvalue() == ""


# -------------------------------------------------------------------------- CLI
def test_cli_table_and_json(tree, tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = main(["compare", "--tree", tree[0], "--processes", "3", "--config", "4K", "--config", "64K",
               "--json", str(out), "--seed", "4"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "4K kernel" in text and "64K kernel" in text and "ratio" in text
    d = json.loads(out.read_text())
    assert [c["key"] for c in d["configs"]] == ["4K", "64K"]
    assert d["workload"]["seed"] == 4
    assert d["configs"][1]["page_cache_kB"] * 1024 == round_up(tree[1].values(), 65536)


def test_cli_json_to_stdout(tree, capsys):
    assert main(["compare", "--tree", tree[0], "--processes", "2", "--config", "16K", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["configs"][0]["key"] == "16K"


@pytest.mark.parametrize("argv, msg", [
    (["--tree", "/definitely/not/here"], "does not exist"),
    (["--config", "8K"], "unknown configuration"),
    (["--chosen", "x,y"], "chosen"),
    (["--processes", "0"], "must be in 1..1024"),
])
def test_cli_errors_exit_2(tree, argv, msg, capsys):
    if "--tree" not in argv:
        argv = ["--tree", tree[0]] + argv
    assert main(["compare", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_cli_unwritable_json(tree, tmp_path, capsys):
    rc = main(["compare", "--tree", tree[0], "--processes", "1", "--config", "4K", "-q",
               "--json", str(tmp_path / "no" / "such" / "dir.json")])
    assert rc == 2 and "cannot write" in capsys.readouterr().err


# --------------------------------------------------------------- file policies
@pytest.mark.parametrize("policy", ["range", "max-order-on-mmap", "large-unless-eof"])
def test_other_file_policies(tree, policy):
    r = cmp.compare([tree[0]], seed=3, processes=6, policy=policy, check=True,
                    configs=["4K", "64K", "4K+64K-emulated"])
    assert r.as_dict()["file_policy"] == policy
    lo, hi, mid = r["4K"], r["64K"], r["4K+64K-emulated"]
    assert lo.cached_kB <= mid.cached_kB
    if policy != "max-order-on-mmap":     # it switches files on plain kernels too
        assert hi.cached_kB * 1024 == round_up(tree[1].values(), 65536)
    if policy == "range":                 # whole-file mappings: as drop-all, exactly
        assert lo.cached_kB == lo.expected_cached_kB and mid.cached_kB == mid.expected_cached_kB
        assert mid.transitions > 0
    elif policy == "large-unless-eof":    # no transition: large folios from the first read
        assert mid.transitions == 0 and mid.pages_reread == 0
        assert mid.cached_kB <= hi.cached_kB
        assert lo.cached_kB * 1024 == round_up(tree[1].values(), 4096)
    else:                                 # every mmap switches the file: even 4K processes
        assert lo.transitions > 0 and lo.expected_cached_kB is None
        assert lo.cached_kB * 1024 >= round_up(tree[1].values(), 4096)


def test_cli_policy_option(tree, capsys):
    assert main(["compare", "--tree", tree[0], "--processes", "2", "--config", "4K+16K-emulated",
                 "--policy", "range", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["configs"][0]["file_policy"] == "range"
    with pytest.raises(SystemExit) as e:
        main(["compare", "--tree", tree[0], "--policy", "sometimes"])
    assert e.value.code == 2


def test_refuses_a_tree_too_big_to_model(tmp_path, capsys, monkeypatch):
    # The RAM is pinned: on a host that let this process use 200 GiB the model
    # would run (and a CI container that saw its host's RAM was OOM-killed here).
    monkeypatch.setattr(cmp, "host_ram", lambda: 24 << 30)
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(1 << 42)                 # 4 TiB, sparse
    assert main(["compare", "--tree", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "model memory" in err and "24,576 MiB" in err


def test_host_ram_takes_the_cgroup_limit(tmp_path):
    """A container's limit is in its cgroup (v1 memory.limit_in_bytes or v2
    memory.max, on its own level or an ancestor's), not in sysconf."""
    def write(rel, text):
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    write("proc_cgroup", "4:memory:/job/a\n2:cpu:/job/a\n0::/job/a\n")
    write("sys/fs/cgroup/memory/job/a/memory.limit_in_bytes", "9223372036854771712\n")  # no limit
    write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", f"{3 << 30}\n")
    write("sys/fs/cgroup/job/a/memory.max", "max\n")
    write("sys/fs/cgroup/memory.max", f"{5 << 30}\n")
    from ppsize.compare import _cgroup_limits
    assert sorted(_cgroup_limits(str(tmp_path), str(tmp_path / "proc_cgroup"))) == [3 << 30, 5 << 30]
    assert _cgroup_limits(str(tmp_path), str(tmp_path / "missing")) == []
    phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < cmp.host_ram() <= phys


# ------------------------------------------------------------- phases
def test_one_scan_serves_many_runs_and_equals_compare(tree, result):
    """The phases compose: a ScanResult and a Workload passed to run_config give
    the figures compare() gives, run after run (a pure function of its inputs)."""
    scan = cmp.scan_trees([tree[0]])
    w = cmp.make_workload(scan, seed=3, processes=6)
    mem = cmp.memory_for(scan, w)
    for key in ("4K", "4K+64K-native"):
        a = cmp.run_config(key, scan, w, memory=mem)
        b = cmp.run_config(cmp.config(key), scan, w, memory=mem)
        assert a.meminfo == b.meminfo == result[key].meminfo
        assert a.procs == b.procs == result[key].procs


def test_a_faulting_workload_is_an_error_not_figures(tree, monkeypatch, capsys):
    scan = cmp.scan_trees([tree[0]])
    w = cmp.make_workload(scan, seed=0, processes=2)
    real = cmp.run._run_workload

    def faulting(k, cfg, files, workload, bar):
        procs, outcomes, addrs = real(k, cfg, files, workload, bar)
        outcomes[int(ppsize.Outcome.SIGBUS)] += 5
        return procs, outcomes, addrs

    monkeypatch.setattr(cmp.run, "_run_workload", faulting)
    with pytest.raises(cmp.WorkloadFaultError, match=r"^16K: the workload faulted: \{'sigbus': 5\}"):
        cmp.run_config("16K", scan, w)
    assert main(["compare", "--tree", tree[0], "--processes", "2", "--config", "16K", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "16K: the workload faulted" in err and "Traceback" not in err


# ------------------------------------------------------------- translation (steady state)
def test_every_row_has_translation_figures(result):
    for r in result.results:
        t = r.translation
        assert t is not None and t.cpu == cmp.DEFAULT_CPU
        assert t.accesses == 6 * cmp.STEADY_ACCESSES      # the counted pass of 6 processes
        assert t.faults == 0                              # warmed: a steady state
        assert t.stats["l1i"]["accesses"] > 0             # text fetches on the instruction side
        assert 0 <= t.l2_misses <= t.l1_misses <= t.accesses
        assert t.stats["walk"]["walks"] >= t.l2_misses    # every L2 miss walks (+ none faulting)
        assert t.cycles is not None and t.cycles >= 1.0   # N1: every latency sourced
    # 64K pages need fewer TLB misses than 4K pages; a 64K kernel walks 3 levels
    four, big = result["4K"].translation, result["64K"].translation
    assert big.l1_misses < four.l1_misses and big.cycles < four.cycles
    assert big.stats["walk"]["refs_by_level"][3] == 0 < four.stats["walk"]["refs_by_level"][3]
    text = result.table()
    assert "L2 miss/1K" in text and "cyc/acc" in text
    d = result.as_dict()["configs"][0]["translation"]
    assert set(d) >= {"cpu", "accesses", "per_1000", "cycles_per_access", "counters", "assumptions"}
    assert set(d["per_1000"]) == {"l1_misses", "l2_misses", "walks", "walk_refs"}


def test_memory_figures_do_not_depend_on_the_translation_model(tree, result):
    r = cmp.compare([tree[0]], seed=3, processes=6, cpu=None)
    for a, b in zip(r.results, result.results):
        assert a.translation is None
        assert (a.meminfo, a.procs, a.outcomes) == (b.meminfo, b.procs, b.outcomes)
    assert "cyc/acc" not in r.table()


def test_steady_stream_is_seeded_and_stays_on_touched_pages(tree):
    scan = cmp.scan_trees([tree[0]])
    w = cmp.make_workload(scan, seed=1, processes=3)
    for j, spec in enumerate(w.procs):
        m, off, insn = cmp.steady_stream(spec, 1, j, 5000)
        m2, off2, insn2 = cmp.steady_stream(spec, 1, j, 5000)
        assert (m == m2).all() and (off == off2).all() and (insn == insn2).all()
        assert m.size == 5000
        for i in np.unique(m).tolist():
            mp = spec.mappings[i]
            pages = set((mp.offsets // cmp.TOUCH).tolist())
            assert set((off[m == i] // cmp.TOUCH).tolist()) <= pages
            assert insn[m == i].all() == (mp.kind in ("exe", "lib"))
        assert abs(insn.mean() - 0.3) < 0.02
    m3, off3, _ = cmp.steady_stream(w.procs[0], 2, 0, 5000)
    assert not ((m3 == m).all() and (off3 == off).all())


def test_cli_cpu_option(tree, capsys):
    assert main(["compare", "--tree", tree[0], "--processes", "2", "--config", "4K", "--cpu", "cortex-a55",
                 "--json", "-"]) == 0
    t = json.loads(capsys.readouterr().out)["configs"][0]["translation"]
    assert t["cpu"] == "cortex-a55" and t["cycles_per_access"] is None   # A55: no latency sourced
    assert t["latencies_missing"]
    assert main(["compare", "--tree", tree[0], "--processes", "2", "--config", "4K", "--cpu", "none", "-q"]) == 0
    assert "walks/1K" not in capsys.readouterr().out
