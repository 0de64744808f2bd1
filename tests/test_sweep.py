"""``ppsize sweep``: the SPEC's validation and expansion, a real 2-worker
LocalCluster whose results equal in-process ``compare`` runs of the same cells,
resume, failed cells, another version's results, the scheduler, the CLI and the
missing extras."""
import itertools
import math
import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsize import __version__
from ppsize import compare as cmp
from ppsize import sweep
from ppsize.cli import main
from ppsize.sweep.results import ResultsVersionError, open_for_resume, read_results, write_results

pytest.importorskip("distributed")   # the sweep extra (in the test extra: CI has it)

CONFIGS = ["4K", "16K", "4K+64K-native"]
SPEC = {"trees": ["/etc"], "configs": CONFIGS, "seeds": [0, 1]}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ the SPEC
def test_spec_defaults_are_compares():
    s = sweep.load_spec({})
    assert s.trees == (("/usr", "/etc"),)
    assert s.configs == tuple(c.key for c in cmp.CONFIGS)
    assert (s.seeds, s.policies, s.thp, s.cpus, s.workloads) == ((0,), ("drop-all",), ("madvise",),
                                                                 (cmp.DEFAULT_CPU,), ("synthetic",))
    assert (s.processes, s.chosen, s.steady, s.memory) == (12, "alternate", cmp.STEADY_ACCESSES, "auto")


def test_spec_expands_the_product_configs_innermost():
    s = sweep.load_spec({"trees": ["/etc", "/usr:/etc"], "configs": ["4K", "64K"], "seeds": "0-2",
                         "policies": ["drop-all", "range"], "thp": ["never", "always"]})
    cells = s.cells()
    assert len(cells) == 2 * 2 * 3 * 2 * 2
    assert [c.config for c in cells[:4]] == ["4K", "64K", "4K", "64K"]
    assert cells[0].trees == ("/etc",) and cells[-1].trees == ("/usr", "/etc")
    assert len({c.key() for c in cells}) == len(cells)
    assert cells[0].params()["trees"] == "/etc" and cells[-1].params()["trees"] == "/usr:/etc"


def test_cell_key_depends_on_parameters_and_version():
    a, b = sweep.load_spec({"trees": ["/etc"], "configs": ["4K"], "seeds": [0, 1]}).cells()
    assert a.key("1") == a.key("1") != b.key("1")
    assert a.key("1") != a.key("2")
    assert a.key() == a.key(__version__)


@pytest.mark.parametrize("spec, message", [
    ({"seed": [0]}, "unknown SPEC key 'seed'; the keys are trees, configs, seeds"),
    ({"configs": ["8K"]}, "configs: unknown configuration '8K'; choose one of 4K, 16K, 64K"),
    ({"policies": "drop"}, "policies: unknown file policy 'drop'; choose one of range, drop-all"),
    ({"thp": ["sometimes"]}, "thp: unknown THP setting 'sometimes'; choose one of always, madvise, never"),
    ({"cpus": ["pentium"]}, "cpus: unknown CPU preset 'pentium'; choose one of"),
    ({"trees": ["/no/such/tree"]}, "trees: '/no/such/tree' does not exist"),
    ({"seeds": [0, 0]}, "seeds: 0 is listed twice"),
    ({"seeds": [-1]}, "seeds must be at least 0, not -1"),
    ({"seeds": "3-1"}, "seeds: range '3-1' is empty"),
    ({"seeds": []}, "seeds: give at least one value"),
    ({"processes": 0}, "processes must be at least 1, not 0"),
    ({"chosen": "odd"}, "chosen 'odd': give 'alternate', 'all', 'none'"),
    ({"chosen": [1, 12]}, "chosen: process 12 out of range 0..11"),
    ({"memory": "lots"}, "memory 'lots' is not a size"),
    ({"check": "maybe"}, "check must be true or false, not 'maybe'"),
    ({"workloads": ["/no/such.ppsz"]}, "workloads: '/no/such.ppsz' is neither 'synthetic'"),
    ({"workloads": ["/etc/hostname"]}, "replaying recorded workloads in a sweep is not yet available"),
])
def test_bad_spec_names_the_key_and_the_allowed_values(spec, message):
    with pytest.raises(ValueError) as e:
        sweep.load_spec(spec)
    assert message in str(e.value)


def test_spec_files_toml_and_yaml_and_overrides(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('trees = ["/etc"]\nconfigs = ["4K", "64K"]\nseeds = [0, 1]\nprocesses = 6\n')
    s = sweep.load_spec(str(toml), ["seeds=2-4", "configs=16K", "check=true", "trees=/etc:/usr,/etc"])
    assert s.seeds == (2, 3, 4) and s.configs == ("16K",) and s.check is True and s.processes == 6
    assert s.trees == (("/etc", "/usr"), ("/etc",))
    yaml = pytest.importorskip("yaml")
    y = tmp_path / "s.yaml"
    y.write_text(yaml.safe_dump({"trees": ["/etc"], "configs": ["4K"], "seeds": [5]}))
    assert sweep.load_spec(str(y)).seeds == (5,)
    bad = tmp_path / "bad.toml"
    bad.write_text("trees = [\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        sweep.load_spec(str(bad))
    with pytest.raises(ValueError, match="give a .toml"):
        sweep.load_spec(str(tmp_path / "s.json"))
    with pytest.raises(ValueError, match="write KEY=VALUE"):
        sweep.load_spec(str(toml), ["seeds"])


@settings(max_examples=40, deadline=None)
@given(configs=st.lists(st.sampled_from([c.key for c in cmp.CONFIGS]), min_size=1, max_size=7, unique=True),
       seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True),
       policies=st.lists(st.sampled_from(["drop-all", "range", "max-order-on-mmap"]), min_size=1,
                         unique=True),
       thp=st.lists(st.sampled_from(["always", "madvise", "never"]), min_size=1, unique=True),
       cpus=st.lists(st.sampled_from(["neoverse-n1", "none"]), min_size=1, unique=True))
def test_expansion_is_the_product_with_distinct_keys(configs, seeds, policies, thp, cpus):
    s = sweep.load_spec({"trees": ["/etc"], "configs": configs, "seeds": seeds, "policies": policies,
                         "thp": thp, "cpus": cpus})
    cells = s.cells()
    assert len(cells) == len(configs) * len(seeds) * len(policies) * len(thp) * len(cpus)
    assert len({c.key() for c in cells}) == len(cells)
    assert {(c.config, c.seed, c.policy, c.thp, c.cpu) for c in cells} == set(
        itertools.product(configs, seeds, policies, thp, cpus))
    assert [c.config for c in cells[:len(configs)]] == configs          # configurations innermost


# ------------------------------------------------------- a real LocalCluster
@pytest.fixture(scope="module")
def client():
    c, cluster = sweep.connect(workers=2)
    assert len(c.scheduler_info()["workers"]) == 2
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def swept(client, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sweep") / "etc.parquet")
    out = sweep.execute(SPEC, client=client, results=path)
    return path, out


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
            for i in range(len(v)):
                yield f"{prefix}{k}.{i}"
        else:
            yield f"{prefix}{k}"


def _lookup(doc, cfg, i, col):
    """The compare document's value of a results column (an independent reading
    of the column's dotted path)."""
    if col == "model_memory":
        return doc["memory"]
    if col == "check_result":
        return cfg["check"]
    if col.startswith("process."):
        name = col[len("process."):]
        if name in cfg["processes"][i]:
            return cfg["processes"][i][name]
        wp = doc["workload"]["processes"][i]
        return {"files": len(wp["files"]), "file_bytes": sum(f["bytes"] for f in wp["files"]),
                "file_touched_kB": sum(f["touched_kB"] for f in wp["files"]),
                "anon_bytes": sum(a["bytes"] for a in wp["anon"]),
                "anon_touched_kB": sum(a["touched_kB"] for a in wp["anon"])}[name]
    if col.startswith("outcomes."):                  # an outcome this configuration never had
        return cfg["outcomes"].get(col[len("outcomes."):], 0)
    node = doc["scan"] if col.startswith("scan.") else cfg
    for part in (col[5:] if col.startswith("scan.") else col).split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return "; ".join(node) if isinstance(node, list) else node


def _same(a, b):
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None or (isinstance(a, float) and math.isnan(a))
    return a == b


TIMING = ("seconds.", "scan.seconds")


def test_results_equal_in_process_compare(client, swept):
    """Every figure of every row equals the same cell run by compare in-process."""
    path, out = swept
    df = out.frame
    s = out.summary
    assert (s.cells, s.done, s.failed, s.skipped, s.workers) == (6, 6, 0, 0, 2)
    assert len(df) == 6 * 12 and set(df["status"]) == {"done"}
    assert set(df["worker"]) <= set(client.scheduler_info()["workers"])
    figures = [c for c in df.columns if c not in sweep.CELL_PARAMS + (
        "process", "status", "error", "cell_key", "ppsize_version", "cell_started", "cell_seconds",
        "cell_cpu_seconds", "worker")]
    for seed in (0, 1):
        doc = cmp.compare(["/etc"], seed=seed, configs=CONFIGS).as_dict()
        for cfg in doc["configs"]:
            rows = df[(df.seed == seed) & (df.config == cfg["key"])]
            assert list(rows["process"]) == list(range(12))
            # every figure compare --json has is a column
            have = set(df.columns) | {"key", "check", "processes"}
            missing = [p for p in _leaves({k: v for k, v in cfg.items() if k != "processes"})
                       if p not in have]
            assert not missing, missing
            for i, (_, row) in enumerate(rows.iterrows()):
                for col in figures:
                    if col.startswith(TIMING):
                        continue
                    want = _lookup(doc, cfg, i, col)
                    assert _same(row[col], want), (seed, cfg["key"], i, col, row[col], want)


def test_results_file_is_tidy_parquet_stamped_with_the_version(swept):
    path, out = swept
    df = read_results(path)
    assert df.attrs["ppsize_version"] == __version__
    assert len(df) == len(out.frame) and set(df["ppsize_version"]) == {__version__}
    assert df.groupby("cell_key").size().tolist() == [12] * 6      # one row per cell and process
    assert (df.loc[df.config == "4K", "ratio"] == 1.0).all()


def test_resume_skips_done_cells(client, swept, tmp_path):
    path, first = swept
    again = sweep.execute(SPEC, client=client, results=path)
    assert (again.summary.done, again.summary.failed, again.summary.skipped) == (0, 0, 6)
    cols = [c for c in first.frame.columns if not c.startswith("seconds.")]
    assert again.frame[cols].equals(first.frame[cols])
    more = sweep.execute(dict(SPEC, seeds=[0, 1, 2]), client=client, results=path)
    assert (more.summary.done, more.summary.skipped) == (3, 6)
    assert len(read_results(path)) == 9 * 12
    assert set(more.frame["seed"]) == {0, 1, 2}


def test_failed_cell_is_recorded_and_run_again(client, tmp_path):
    """8M of model memory holds /etc's page cache on a 4K kernel, not on a 64K one (one
    process: a second could not get its page tables once the first's faults filled memory)."""
    path = str(tmp_path / "r.parquet")
    spec = {"trees": ["/etc"], "configs": ["4K", "64K"], "memory": "8M", "cpus": ["none"],
            "processes": 1}
    out = sweep.execute(spec, client=client, results=path)
    assert (out.summary.done, out.summary.failed) == (1, 1)
    bad = out.frame[out.frame.status == "failed"]
    assert len(bad) == 1 and bad.iloc[0]["config"] == "64K"
    assert bad.iloc[0]["error"].startswith("OSError: [Errno 12]")
    assert math.isnan(bad.iloc[0]["process"])
    assert "64K on /etc" in out.summary.text() and "Errno 12" in out.summary.text()
    df = read_results(path)
    assert list(df.status).count("failed") == 1
    again = sweep.execute(spec, client=client, results=path)
    assert (again.summary.done, again.summary.failed, again.summary.skipped) == (0, 1, 1)
    assert len(read_results(path)) == len(df)           # the old failed row replaced


def test_results_of_another_version_are_refused_or_archived(client, swept, tmp_path, monkeypatch):
    path, out = swept
    with pytest.raises(ResultsVersionError, match=rf"holds results of ppsize {__version__}.*this is ppsize 9.9"):
        open_for_resume(path, "9.9")
    copy = str(tmp_path / "old.parquet")
    write_results(copy, out.frame, "0.0.1")
    monkeypatch.setattr("ppsize.__version__", "0.0.1")
    assert open_for_resume(copy, "0.0.1") is not None      # the same version resumes
    monkeypatch.setattr("ppsize.__version__", "9.9")
    with pytest.raises(ResultsVersionError):
        sweep.execute(SPEC, client=client, results=copy)
    assert read_results(copy).attrs["ppsize_version"] == "0.0.1"    # untouched
    got = sweep.execute(dict(SPEC, configs=["4K"], seeds=[0]), client=client, results=copy,
                        archive=True)
    assert os.path.exists(str(tmp_path / "old.v0.0.1.parquet"))
    # the workers still run the real version: their figures are refused, not mixed
    assert got.summary.failed == 1
    assert f"the worker runs ppsize {__version__}, this is 9.9" in got.frame.iloc[0]["error"]


def test_each_tree_set_is_scanned_once(client, monkeypatch):
    calls = []
    real = cmp.scan_trees
    monkeypatch.setattr(cmp, "scan_trees", lambda trees, **kw: calls.append(tuple(trees)) or real(trees, **kw))
    out = sweep.execute({"trees": ["/etc", "/etc/ssl:/etc/default"], "configs": ["4K", "64K"],
                         "seeds": [0, 1], "cpus": ["none"], "steady": 0}, client=client)
    assert out.summary.done == 8
    assert sorted(calls) == [("/etc",), ("/etc/ssl", "/etc/default")]
    files = out.frame.groupby("trees")["scan.files"].unique()
    assert files["/etc"].tolist() == [cmp.scan_trees(["/etc"]).nr_files]


def test_interrupted_sweep_keeps_the_finished_cells(client, tmp_path):
    """Ctrl-C after the first finished cell: that cell is in the results file,
    and the next run skips it."""
    path = str(tmp_path / "i.parquet")

    class Interrupt:
        def update(self, *a, **k):
            raise KeyboardInterrupt

        def close(self):
            pass

    spec = {"trees": ["/etc"], "configs": ["4K", "16K", "64K"], "cpus": ["none"]}
    with pytest.raises(KeyboardInterrupt):
        sweep.execute(spec, client=client, results=path, progress=Interrupt())
    kept = read_results(path)
    assert kept["cell_key"].nunique() == 1 and set(kept.status) == {"done"}
    again = sweep.execute(spec, client=client, results=path)
    assert (again.summary.done, again.summary.skipped) == (2, 1)


def test_unreachable_scheduler_fails_fast_naming_it():
    t = time.monotonic()
    with pytest.raises(sweep.SchedulerUnreachable, match=r"tcp://127\.0\.0\.1:9 within 1 s"):
        sweep.connect(scheduler="tcp://127.0.0.1:9", timeout=1)
    assert time.monotonic() - t < 10


def test_run_returns_a_dataframe_with_the_summary(client):
    df = sweep.run({"trees": ["/etc"], "configs": ["64K"], "cpus": ["none"], "steady": 0}, client=client)
    assert len(df) == 12 and df.attrs["summary"]["done"] == 1
    assert df["translation"].isna().all()            # compare --cpu none: no translation figures
    assert not [c for c in df.columns if c.startswith("translation.")]
    assert (df["cpu"] == "none").all()


# ------------------------------------------------------------------- the CLI
def test_cli_sweep_on_an_existing_scheduler(client, tmp_path, capsys):
    spec = tmp_path / "g.toml"
    spec.write_text('trees = ["/etc"]\nconfigs = ["4K", "64K"]\ncpus = ["none"]\n')
    addr = client.scheduler.address
    assert main(["sweep", str(spec), "--scheduler", addr, "--set", "seeds=3"]) == 0
    out = capsys.readouterr().out
    assert "sweep: 2 cells: 2 done, 0 failed, 0 skipped" in out and addr in out
    df = read_results(str(tmp_path / "g.parquet"))
    assert set(df.seed) == {3} and set(df.config) == {"4K", "64K"}
    assert main(["sweep", str(spec), "--scheduler", addr, "--set", "seeds=3"]) == 0
    assert "0 done, 0 failed, 2 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--set", "seed=1"], "unknown SPEC key 'seed'"),
    (["--set", "configs=8K"], "configs: unknown configuration '8K'"),
    (["--workers", "0"], "--workers must be at least 1, not 0"),
    (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    spec = tmp_path / "g.toml"
    spec.write_text('trees = ["/etc"]\nconfigs = ["4K"]\n')
    assert main(["sweep", str(spec)] + args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("ppsize sweep: ")


def test_without_the_extras_everything_imports_and_commands_name_them(tmp_path):
    """dask, pandas, pyarrow and matplotlib blocked: ppsize, ppsize.sweep and
    ppsize.plot import; sweep, plot and compare --plot exit 2 naming the extra."""
    spec = tmp_path / "g.toml"
    spec.write_text('trees = ["/etc"]\nconfigs = ["4K"]\n')
    code = ("import sys\n"
            "for m in ('dask', 'distributed', 'pandas', 'pyarrow', 'matplotlib'): sys.modules[m] = None\n"
            "import ppsize, ppsize.sweep, ppsize.plot, ppsize.compare\n"
            "from ppsize.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    runs = {"sweep": ["sweep", str(spec)],
            "plot": ["plot", str(tmp_path / "x.json"), "-o", str(tmp_path / "x.png")],
            "compare": ["compare", "--tree", "/etc", "--plot", str(tmp_path / "x.png")]}
    (tmp_path / "x.json").write_text("{}")
    for extra, argv in runs.items():
        p = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 2, (extra, p.stderr)
        want = "'plot' extra" if extra != "sweep" else "'sweep' extra"
        assert want in p.stderr and "pip install" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
