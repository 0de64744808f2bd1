"""ppsize race --sweep: configurations, parallel outcomes equal to one-by-one exploration,
distinct failures with their shortest traces, the CLI."""
import json

import pytest

from ppsize.cli import main
from ppsize.race import explore
from ppsize.race.sweep import configurations, failure_key, sweep

BASE = dict(policy="drop-all", ranges=1, unlocked={"read_cache_folio"}, bailout="xa_lock")


def test_configurations_enumerate_caches_placements_and_switches():
    cfgs = configurations(BASE, kinds=("fault", "rcf"), nactors=1, over=("bump",))
    # 2 pages: 4 caches x (2 kinds x 2 indices) placements x 4 bump values
    assert len(cfgs) == 4 * 4 * 4
    assert len({c.label for c in cfgs}) == len(cfgs)
    caches = {c.kwargs["cached"] for c in cfgs}
    assert caches == {(), (0,), (1,), (0, 1)}
    assert len(configurations(BASE, kinds=("fault", "rcf"), nactors=2)) == 4 * 10
    with pytest.raises(ValueError, match="unknown sweep switch 'colour'"):
        configurations(BASE, over=("colour",))
    with pytest.raises(ValueError, match="sweep actors must be 0..3"):
        configurations(BASE, nactors=7)


def test_parallel_sweep_equals_one_by_one_exploration():
    cfgs = configurations(BASE, kinds=("fault", "rcf", "write"), nactors=1, over=("bump",))
    res = sweep(cfgs, jobs=2)
    assert len(res.outcomes) == len(cfgs) and res.jobs == 2
    for c, o in zip(cfgs, res.outcomes):
        kw = {k: v for k, v in c.kwargs.items() if not k.startswith("_")}
        r = explore(**kw)
        assert (o.verdict, o.states) == (r.verdict, r.states), c.label
        first = {}
        for f in r.findings:                        # sorted: the first of a key is its shortest
            first.setdefault(failure_key(f.kind, f.message), f)
        assert [k for k, _, _, _ in o.failures] == list(first)
        assert [len(t) for _, _, _, t in o.failures] == [len(f.trace) for f in first.values()]
    assert res.states == sum(o.states for o in res.outcomes)
    counts = res.counts()
    assert counts["violation"] > 0 and counts["ok"] > 0
    # the configuration is in there: plain bump fails, the bump under xa_lock holds
    by = {o.label: o for o in res.outcomes}
    assert by["cached=- actors=rcf@1 bump=plain"].verdict == "violation"
    assert by["cached=- actors=rcf@1 bump=xa_lock"].verdict == "ok"
    assert by["cached=- actors=rcf@1 bump=cycle-if-nonempty"].verdict == "violation"
    # each distinct failure carries the shortest trace among the configurations showing it
    for key, (o, msg, trace, n) in res.distinct().items():
        lengths = [len(t) for oo in res.outcomes for k, _, _, t in oo.failures if k == key]
        assert len(trace) == min(lengths) and n == len(lengths)
        assert failure_key(key.split(":")[0], msg) == key


def test_sweep_in_one_process_gives_the_same():
    cfgs = configurations(BASE, kinds=("rcf",), nactors=1)
    a, b = sweep(cfgs, jobs=1), sweep(cfgs, jobs=2)
    assert [(o.label, o.verdict, o.states) for o in a.outcomes] == \
        [(o.label, o.verdict, o.states) for o in b.outcomes]
    with pytest.raises(ValueError):
        sweep(cfgs, jobs=0)


def test_cli_sweep(capsys, tmp_path):
    js = tmp_path / "s.json"
    argv = ["race", "--policy", "drop-all", "--ranges", "1", "--unlocked-path", "read_cache_folio",
            "--bailout", "xa_lock", "--sweep", "--sweep-kinds", "rcf", "--sweep-over", "bump",
            "--jobs", "2", "--json", str(js)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.startswith("sweep: 32 configurations")
    assert "cached=- actors=rcf@0 bump=plain: violation" in out
    assert "distinct failures: 2" in out and "  1. mmap2p[drop-all]: filemap_invalidate_lock" in out
    # without keep-index, the re-aligned goto repeat of do_read_cache_folio: every bump value
    assert out.count("rcf@1 finished with folio 0/o0 that does not cover index 1 (9 steps)") == 4
    d = json.loads(js.read_text())
    assert d["configurations"] == 32 and sum(d["verdicts"].values()) == 32
    assert d["distinct_failures"][0]["trace"][0]["function"] == "filemap_invalidate_lock"
    # locked paths and one fault/read actor: every configuration holds
    assert main(["race", "--policy", "drop-all", "--sweep", "--sweep-kinds", "fault,read",
                 "--ranges", "1"]) == 0
    assert "16 ok" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["--sweep", "--sweep-over", "colour"], "unknown sweep switch"),
    (["--sweep", "--actor", "fault@1"], "--sweep places the actors itself"),
    (["--sweep", "--sweep-kinds", "eio"], "unknown sweep actor"),
])
def test_cli_sweep_bad_input_exits_2(capsys, argv, needle):
    assert main(["race", "--policy", "drop-all", *argv]) == 2
    assert needle in capsys.readouterr().err
