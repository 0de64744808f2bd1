"""``ppsize plot`` and ``compare --plot``: each kind's artists checked against the
figures they draw (bars per configuration, heights, the 4K reference), no
overlapping labels, the written file opened again; bad input exits 2."""
import json
import os

import pytest

pytest.importorskip("matplotlib")     # the plot extra (in the test extra: CI has it)

from matplotlib.container import BarContainer  # noqa: E402

from ppsize import compare as cmp  # noqa: E402
from ppsize import plot  # noqa: E402
from ppsize.cli import main  # noqa: E402
from ppsize.sweep.rows import compare_rows  # noqa: E402

KEYS = [c.key for c in cmp.CONFIGS]


@pytest.fixture(scope="module")
def result():
    return cmp.compare(["/etc"], seed=0, steady=4096)


@pytest.fixture(scope="module")
def two_policies():
    """Rows of two compare runs, one per file policy (as a sweep over policies)."""
    per = ["4K", "4K+16K-native", "4K+64K-native"]
    return [r for pol in ("drop-all", "range")
            for r in compare_rows(cmp.compare(["/etc"], seed=1, configs=per, policy=pol,
                                              steady=4096).as_dict())]


def _bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def test_memory_bars_are_the_configurations_stacked(result, tmp_path):
    fig = plot.figure(result, "memory")
    ax = fig.axes[0]
    segs = _bars(ax)
    assert [c.get_label() for c in segs] == ["page cache", "anon", "page tables", "XArray nodes"]
    assert all(len(c) == len(KEYS) for c in segs)                # one bar per configuration
    assert [t.get_text().replace("\n", "") for t in ax.get_xticklabels()] == KEYS
    for i, key in enumerate(KEYS):
        r = result[key]
        top = segs[-1][i].get_y() + segs[-1][i].get_height()
        assert top == pytest.approx(r.total_kB / 1024)
        assert segs[0][i].get_height() == pytest.approx(r.cached_kB / 1024)
        assert segs[1][i].get_height() == pytest.approx(r.anon_kB / 1024)
    ref = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(ref) == 1 and ref[0].get_ydata()[0] == pytest.approx(result["4K"].total_kB / 1024)
    texts = {t.get_text() for t in ax.texts}
    assert f"{result.ratio(result['64K']):.3f}x" in texts
    assert "/etc" in fig._suptitle.get_text() and "seed 0" in fig._suptitle.get_text()
    assert ax.get_ylabel() == "memory (MiB)"
    assert plot.label_overlaps(fig) == []
    path = tmp_path / "m.png"
    plot.save(fig, path)
    import matplotlib.image
    img = matplotlib.image.imread(str(path))
    w, h = fig.get_size_inches() * fig.dpi
    assert img.shape[:2] == (round(h), round(w))
    assert 10_000 < path.stat().st_size < 300_000


def test_cost_bars_are_the_memory_over_the_4k_kernel(result):
    fig = plot.figure(result, "cost")
    ax = fig.axes[0]
    bars = _bars(ax)
    assert [len(c) for c in bars] == [2, 2, 2]                   # 16K, 64K x 3 variants
    ref = result["4K"].total_kB
    for c, fmt in zip(bars, ("{P}", "4K+{P}-emulated", "4K+{P}-native")):
        for bar, page in zip(c, ("16K", "64K")):
            assert bar.get_height() == pytest.approx((result[fmt.format(P=page)].total_kB - ref) / 1024)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["P = 16K", "P = 64K"]
    assert "MiB" in ax.get_ylabel()
    assert plot.label_overlaps(fig) == []


def test_transitions_by_policy(two_policies):
    fig = plot.figure(two_policies, "transitions")
    left, right = fig.axes[:2]
    assert [t.get_text().replace("\n", "") for t in left.get_xticklabels()] == ["drop-all", "range"]
    bars = _bars(left)
    assert [c.get_label() for c in bars] == ["4K+16K-native", "4K+64K-native"]
    for c in bars:
        for bar, pol in zip(c, ("drop-all", "range")):
            row = next(r for r in two_policies if r["config"] == c.get_label() and r["policy"] == pol)
            assert bar.get_height() == row["transitions"]
    for c in _bars(right):
        for bar, pol in zip(c, ("drop-all", "range")):
            row = next(r for r in two_policies if r["config"] == c.get_label() and r["policy"] == pol)
            assert bar.get_height() == pytest.approx(row["reread_kB"] / 1024)
    assert plot.label_overlaps(fig) == []


def test_translation_points_are_the_configurations(result):
    fig = plot.figure(result, "translation")
    ax = fig.axes[1]
    pts = {c.get_label(): c.get_offsets()[0] for c in ax.collections}
    assert sorted(pts) == sorted(KEYS)
    ref = result["4K"].total_kB
    for key, (x, y) in pts.items():
        t = result[key].translation
        assert x == pytest.approx((result[key].total_kB / ref - 1) * 100)
        assert y == pytest.approx(t.per_1000(t.l2_misses), abs=1e-3)
    assert plot.label_overlaps(fig) == []


def test_panels_for_one_varying_parameter_and_where(two_policies):
    fig = plot.figure(two_policies, "memory")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["policy drop-all", "policy range"]
    fig = plot.figure(two_policies, "memory", where={"policy": "range"})
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    with pytest.raises(ValueError, match="no results with policy=nope; the results have drop-all, range"):
        plot.figure(two_policies, "memory", where={"policy": "nope"})
    mixed = two_policies + [dict(r, seed=9, thp="never", policy="drop-all") for r in two_policies[:12]]
    with pytest.raises(ValueError, match="the results vary in policy, thp"):
        plot.figure(mixed, "memory")


def test_seeds_are_averaged_and_the_title_says_so(result):
    rows = compare_rows(result.as_dict())
    other = [dict(r, seed=1, total_kB=r["total_kB"] + 2048, anon_kB=r["anon_kB"] + 2048) for r in rows]
    fig = plot.figure(rows + other, "memory")
    ax = fig.axes[0]
    top = _bars(ax)[-1]
    assert top[0].get_y() + top[0].get_height() == pytest.approx(result["4K"].total_kB / 1024 + 1)
    assert "mean of seeds 0-1" in fig._suptitle.get_text()


def test_bad_kinds_and_data():
    with pytest.raises(ValueError, match="unknown figure kind 'pie'"):
        plot.figure([], "pie")
    with pytest.raises(ValueError, match="no finished cells"):
        plot.figure([], "memory")
    with pytest.raises(ValueError, match="not a compare --json document"):
        plot.figure({"x": 1}, "memory")


def test_cli_plot_and_compare_plot(result, tmp_path, capsys):
    js = tmp_path / "c.json"
    js.write_text(json.dumps(result.as_dict()))
    out = tmp_path / "c.svg"
    assert main(["plot", str(js), "--kind", "cost", "-o", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml")
    png = tmp_path / "cmp.png"
    assert main(["compare", "--tree", "/etc", "--config", "4K", "--config", "64K", "--cpu", "none",
                 "-q", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    for argv, msg in ((["plot", str(js), "-o", str(tmp_path / "x.gif")], "must end in .png, .svg, .pdf"),
                      (["plot", str(tmp_path / "none.json"), "-o", str(out)], "no such file"),
                      (["plot", str(js), "--where", "policy", "-o", str(out)], "write PARAM=VALUE"),
                      (["plot", str(js), "--kind", "translation", "--where", "cpu=x", "-o", str(out)],
                       "no results with cpu=x"),
                      (["compare", "--tree", "/etc", "--plot", "x.jpg"], "must end in .png"),
                      (["compare", "--tree", "/etc", "--plot", "x.png", "--plot-kind", "pie"],
                       "--plot-kind 'pie': choose one of memory, cost")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, (argv, err)
    assert not os.path.exists("x.png")


def test_label_overlaps_finds_overlapping_labels(result):
    fig = plot.figure(result, "memory")
    ax = fig.axes[0]
    first = ax.texts[0]
    ax.text(*first.get_position(), "on top of the first ratio", fontsize=8)
    assert ("1.000x", "on top of the first ratio") in plot.label_overlaps(fig)
    fig = plot.figure(result, "cost")
    long = "memory over the 4K kernel (MiB; " * 4
    fig.axes[0].set_ylabel(long)                     # taller than the figure: cut at its edge
    assert (long, "outside the figure") in plot.label_overlaps(fig)
