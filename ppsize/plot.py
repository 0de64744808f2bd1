"""Figures of ``compare`` and ``sweep`` results (matplotlib, no pyplot: each figure
is a ``matplotlib.figure.Figure`` drawn with Agg, so nothing needs a display).

Kinds (:data:`KINDS`):

* ``memory``: memory per configuration, stacked bars of page cache, anon, page
  tables and XArray nodes (MiB), the 4K kernel's total as a dashed reference line
  and each bar's ratio to it on top;
* ``cost``: the per-process page size against whole 16K/64K kernels: memory over
  the 4K kernel (MiB) of the P kernel and of a 4K kernel running the chosen
  processes at P (emulated and native page tables), for P = 16K and 64K;
* ``transitions``: min-order transitions (files whose cache was dropped) and the
  page cache re-read, by file policy, per per-process configuration;
* ``translation``: L1 and L2 TLB misses per 1000 steady-state accesses against the
  memory cost over the 4K kernel, one point per configuration.

The data: rows as :mod:`ppsize.sweep.rows` makes them (a sweep's DataFrame or
Parquet file, a ``CompareResult``, a ``compare --json`` document or file). Figures
average over seeds (the title says which); one other parameter may vary (one panel
per value); more must be narrowed with ``where`` ({param: value}). Needs the
``plot`` extra (matplotlib)."""
from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict

from .extras import require
from .sweep.spec import TREE_SEP

__all__ = ["KINDS", "figure", "plot", "save", "rows_of", "label_overlaps", "config_records"]

KINDS = ("memory", "cost", "transitions", "translation")
SEGMENTS = (("page_cache_kB", "page cache"), ("anon_kB", "anon"), ("page_tables_kB", "page tables"),
            ("xarray_kB", "XArray nodes"))
MAX_PANELS = 6
_MEMORY_ONLY = ("cpu", "steady")     # parameters the memory figures do not depend on


def _configs():
    from .compare import CONFIGS
    return CONFIGS


# ------------------------------------------------------------------- the data
def rows_of(data) -> list:
    """Rows (dicts) of ``data``: a pandas DataFrame of a sweep, a path to a sweep's
    .parquet or a ``compare --json`` file, a ``CompareResult``, its ``as_dict()``,
    or rows already."""
    from .sweep.rows import compare_rows
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if path.endswith(".json"):
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"cannot read {path}: {e}") from None
        else:
            require("sweep", f"reading {path}")
            from .sweep.results import read_results
            data = read_results(path)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):       # a DataFrame
        return data.to_dict("records")
    if hasattr(data, "as_dict") and hasattr(data, "results"):       # a CompareResult
        data = data.as_dict()
    if isinstance(data, dict):
        if "configs" not in data or "workload" not in data:
            raise ValueError("not a compare --json document (no 'configs' and 'workload')")
        return compare_rows(data)
    return list(data)


def config_records(rows, where=None) -> list:
    """One record per done cell (the first process row of each), narrowed by
    ``where`` ({param: value}; values compared as strings)."""
    from .sweep.rows import GROUP_PARAMS, STATUS_DONE
    seen, out = set(), []
    for r in rows:
        if r.get("status") != STATUS_DONE:
            continue
        key = tuple(r[p] for p in GROUP_PARAMS) + (r["config"],)
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    for k, v in (where or {}).items():
        if out and k not in out[0]:
            raise ValueError(f"where: unknown parameter {k!r}; choose one of {', '.join(GROUP_PARAMS)}, config")
        kept = [r for r in out if str(r[k]).lower() == str(v).lower()]    # check=false, seed=0
        if not kept:
            have = sorted({str(r[k]) for r in out})
            raise ValueError(f"where: no results with {k}={v}; the results have {', '.join(have)}")
        out = kept
    if not out:
        raise ValueError("no finished cells to plot")
    return out


def _panels(recs, ignore=()):
    """[(panel title, records)]: one panel per value of the one parameter (besides
    the configuration and the seed) that varies."""
    from .sweep.rows import GROUP_PARAMS
    varying = [p for p in GROUP_PARAMS if p not in ("seed",) + tuple(ignore)
               and len({r[p] for r in recs}) > 1]
    if len(varying) > 1:
        vals = "; ".join(f"{p}: {', '.join(sorted(map(str, {r[p] for r in recs})))}" for p in varying)
        raise ValueError(f"the results vary in {', '.join(varying)} ({vals}); keep one value of all "
                         f"but one (where={{{varying[0]!r}: ...}}, --where {varying[0]}=...)")
    if not varying:
        return [("", recs)]
    p = varying[0]
    vals = sorted({r[p] for r in recs}, key=str)
    if len(vals) > MAX_PANELS:
        raise ValueError(f"{len(vals)} values of {p} to plot; at most {MAX_PANELS} panels "
                         f"(narrow it with --where {p}=...)")
    return [(f"{p} {v}", [r for r in recs if r[p] == v]) for v in vals]


def _mean_by_config(recs, fields) -> dict:
    """{config: {field: mean over the records (seeds)}}."""
    acc = defaultdict(lambda: defaultdict(list))
    for r in recs:
        for f in fields:
            v = r.get(f)
            if v is not None and v == v:
                acc[r["config"]][f].append(v)
    return {c: {f: statistics.fmean(v) for f, v in d.items()} for c, d in acc.items()}


def _wrap(label: str, width: int = 10) -> str:
    """A tick label broken after hyphens into lines of about ``width`` characters
    (horizontal labels never overlap their neighbours' boxes)."""
    lines, cur = [], ""
    for part in label.replace("-", "-\0").split("\0"):
        if cur and len(cur) + len(part) > width:
            lines.append(cur)
            cur = ""
        cur += part
    return "\n".join(lines + [cur])


def _ordered(configs_present) -> list:
    return [c for c in _configs() if c.key in configs_present]


def _seeds(recs) -> str:
    seeds = sorted({int(r["seed"]) for r in recs})
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    run = seeds == list(range(seeds[0], seeds[-1] + 1))
    return f"mean of seeds {seeds[0]}-{seeds[-1]}" if run else f"mean of seeds {', '.join(map(str, seeds))}"


def _workload_title(recs) -> str:
    r = recs[0]
    chosen = {"alternate": "every other process", "all": "all processes",
              "none": "no process"}.get(str(r["chosen"]), f"processes {r['chosen']}")
    trees = " + ".join(str(r["trees"]).split(TREE_SEP))
    if len({x["trees"] for x in recs}) > 1:
        trees = "the trees of each panel"
    if len({(x["processes"], x["chosen"]) for x in recs}) > 1:
        return f"{trees}, the process mix of each panel, {_seeds(recs)}"
    return f"{trees}, {r['processes']} processes ({chosen} at the large page), {_seeds(recs)}"


# ---------------------------------------------------------------- the kinds
_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def _config_color(key) -> str:
    keys = [c.key for c in _configs()]
    return _COLORS[keys.index(key) % len(_COLORS)]


def _draw_memory(ax, recs):
    cfgs = _ordered({r["config"] for r in recs})
    mean = _mean_by_config(recs, [f for f, _ in SEGMENTS] + ["total_kB"])
    x = list(range(len(cfgs)))
    bottom = [0.0] * len(cfgs)
    for (field, label), color in zip(SEGMENTS, ("#4c72b0", "#55a868", "#c44e52", "#8172b3")):
        h = [mean[c.key][field] / 1024 for c in cfgs]
        ax.bar(x, h, 0.65, bottom=bottom, label=label, color=color)
        bottom = [b + v for b, v in zip(bottom, h)]
    ref = mean.get("4K", {}).get("total_kB")
    top = max(bottom)
    if ref:
        ax.axhline(ref / 1024, color="black", linestyle="--", linewidth=1,
                   label="4K kernel total (the ratios' reference)")
        for xi, c, b in zip(x, cfgs, bottom):
            ax.text(xi, b + top * 0.01, f"{mean[c.key]['total_kB'] / ref:.3f}x", ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylim(0, top * 1.12)
    ax.set_xticks(x, [_wrap(c.key) for c in cfgs])
    ax.set_ylabel("memory (MiB)")
    ax.set_xlabel("configuration (kernel page + process page, page tables)")


def _draw_cost(ax, recs):
    mean = _mean_by_config(recs, ["total_kB"])
    if "4K" not in mean:
        raise ValueError("the cost figure needs the 4K kernel (config 4K) as its reference")
    ref = mean["4K"]["total_kB"]
    variants = (("{P}", "{P} kernel"), ("4K+{P}-emulated", "4K kernel, {P} procs, emulated"),
                ("4K+{P}-native", "4K kernel, {P} procs, native"))
    pages = [p for p in ("16K", "64K") if any(v.format(P=p) in mean for v, _ in variants)]
    if not pages:
        raise ValueError("the cost figure needs a 16K or 64K configuration")
    w = 0.26
    for j, (var, label) in enumerate(variants):
        xs, hs = [], []
        for i, p in enumerate(pages):
            key = var.format(P=p)
            if key in mean:
                xs.append(i + (j - 1) * w)
                hs.append((mean[key]["total_kB"] - ref) / 1024)
        bars = ax.bar(xs, hs, w, label=label.format(P="P"), color=_COLORS[j + 1])
        ax.bar_label(bars, [f"{h / (ref / 1024) * 100:+.1f}%" for h in hs], fontsize=8, padding=2)
    ax.axhline(0, color="black", linewidth=0.8)
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, 0), hi + (hi - min(lo, 0)) * 0.1)
    ax.set_xticks(range(len(pages)), [f"P = {p}" for p in pages])
    ax.set_xlim(-0.6, len(pages) - 0.4)
    ax.set_ylabel("memory over the 4K kernel (MiB)")
    ax.set_xlabel(f"large page size P (the 4K kernel: {ref / 1024:,.1f} MiB)")


def _draw_transitions(axes, recs):
    per = [c for c in _configs() if c.per_process and c.key in {r["config"] for r in recs}]
    if not per:
        raise ValueError("the transitions figure needs a per-process configuration (4K+16K-..., 4K+64K-...)")
    policies = sorted({r["policy"] for r in recs})
    w = min(0.8 / len(per), 0.2)
    for ax, field, scale, ylabel in ((axes[0], "transitions", 1, "min-order transitions (files)"),
                                     (axes[1], "reread_kB", 1 / 1024, "page cache re-read (MiB)")):
        for j, c in enumerate(per):
            hs = []
            for p in policies:
                m = _mean_by_config([r for r in recs if r["policy"] == p], [field]).get(c.key, {})
                hs.append(m.get(field, 0.0) * scale)
            xs = [i + (j - (len(per) - 1) / 2) * w for i in range(len(policies))]
            ax.bar(xs, hs, w, label=c.key, color=_config_color(c.key))
        ax.set_xticks(range(len(policies)), [_wrap(p) for p in policies])
        ax.set_ylabel(ylabel)
        ax.set_xlabel("file policy")


def _draw_translation(axes, recs):
    mean = _mean_by_config(recs, ["total_kB", "translation.per_1000.l1_misses",
                                  "translation.per_1000.l2_misses"])
    cfgs = [c for c in _ordered(mean) if "translation.per_1000.l1_misses" in mean[c.key]]
    if not cfgs:
        raise ValueError("no translation figures in these results (cpu none)")
    ref = mean.get("4K", {}).get("total_kB")
    for ax, field, ylabel in ((axes[0], "translation.per_1000.l1_misses", "L1 TLB misses / 1000 accesses"),
                              (axes[1], "translation.per_1000.l2_misses", "L2 TLB misses / 1000 accesses")):
        for c in cfgs:
            m = mean[c.key]
            xv = (m["total_kB"] / ref - 1) * 100 if ref else m["total_kB"] / 1024
            color = _config_color(c.key)
            if not c.per_process:               # filled circles: whole kernels
                style = dict(marker="o", s=60, color=color)
            elif c.pgtable == "native":         # filled squares, small: drawn over ...
                style = dict(marker="s", s=40, color=color, zorder=4)
            else:                               # ... hollow triangles, large: both show
                style = dict(marker="^", s=130, facecolors="none", edgecolors=color, linewidths=1.5)
            ax.scatter([xv], [m[field]], label=c.key, **{"zorder": 3, **style})
        ax.set_xlabel("memory over the 4K kernel (%)" if ref else "memory (MiB)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, max(mean[c.key][field] for c in cfgs) * 1.12 or 1)
        ax.grid(True, alpha=0.3)


_DRAW = {"memory": _draw_memory, "cost": _draw_cost, "transitions": _draw_transitions,
         "translation": _draw_translation}
_TWO_AXES = ("transitions", "translation")
_TITLES = {"memory": "Memory per configuration", "cost": "Per-process page size vs 16K/64K kernels",
           "transitions": "Transitions and re-read page cache by file policy",
           "translation": "TLB misses vs memory cost"}


def figure(data, kind="memory", where=None, title=None):
    """The ``kind`` figure (:data:`KINDS`) of ``data`` (see :func:`rows_of`) as a
    ``matplotlib.figure.Figure``; ``where`` narrows the results ({param: value});
    ``title`` replaces the generated title (which names the workload)."""
    require("plot", "a figure")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from ._validate import as_choice
    as_choice(kind, KINDS, "figure kind")
    recs = config_records(rows_of(data), where)
    ignore = {"memory": _MEMORY_ONLY, "cost": _MEMORY_ONLY, "transitions": _MEMORY_ONLY + ("policy",),
              "translation": ("steady",)}[kind]            # policy is the transitions' x axis
    panels = _panels(recs, ignore)
    pairs = kind in _TWO_AXES                  # two axes side by side per panel
    ncfg = len({r["config"] for r in recs})
    width = {"memory": 1.0 + 0.85 * ncfg, "cost": 7.0}.get(kind, 10.0)
    width = max(width, 6.5) * (1 if pairs else min(len(panels), 3))
    rows, cols = (len(panels), 2) if pairs else (-(-len(panels) // 3), min(len(panels), 3))
    fig = Figure(figsize=(width, 4.2 * rows + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)                       # Agg: no display, no pyplot state
    grid = fig.subplots(rows, cols, squeeze=False)
    flat = [ax for row in grid for ax in row]
    for i, (ptitle, precs) in enumerate(panels):
        axes = list(grid[i]) if pairs else [flat[i]]
        _DRAW[kind](axes if pairs else axes[0], precs)
        for ax in axes:
            if ptitle:
                ax.set_title(ptitle, fontsize=10)
    for ax in flat[len(panels):] if not pairs else ():
        ax.set_visible(False)
    handles, labels = flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9,
               frameon=False)
    fig.suptitle(title or f"{_TITLES[kind]}\n{_workload_title(recs)}", fontsize=11)
    return fig


def save(fig, path) -> None:
    """Write ``fig`` (PNG, SVG, PDF: by the suffix) with Agg."""
    fig.savefig(os.fspath(path), dpi=fig.dpi)


def plot(data, path, kind="memory", where=None, title=None):
    """:func:`figure` written to ``path``; returns the figure."""
    fig = figure(data, kind, where, title)
    save(fig, path)
    return fig


def _drawn_texts(fig) -> list:
    """The texts ``fig`` draws: suptitle, legends, and per visible axes its title,
    axis labels, texts (bar labels) and the tick labels inside the view limits."""
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for leg in fig.legends:
        texts += leg.get_texts()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend():
            texts += ax.get_legend().get_texts()
        for labels, lim, pos in ((ax.get_xticklabels(), ax.get_xlim(), 0),
                                 (ax.get_yticklabels(), ax.get_ylim(), 1)):
            lo, hi = sorted(lim)
            eps = (hi - lo) * 1e-9
            texts += [t for t in labels if lo - eps <= t.get_position()[pos] <= hi + eps]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def label_overlaps(fig) -> list:
    """Pairs of texts ``fig`` draws (titles, axis and tick labels, legend entries,
    bar labels) whose boxes overlap, and (text, "outside the figure") for a text
    cut by the figure's edge: empty when every label is readable. Every label of
    these figures is horizontal, so the boxes are exact."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t, t.get_window_extent(renderer)) for t in _drawn_texts(fig)]
    edge = fig.bbox
    out = [(t.get_text(), "outside the figure") for t, b in boxes
           if b.x0 < edge.x0 - 0.5 or b.y0 < edge.y0 - 0.5 or b.x1 > edge.x1 + 0.5 or b.y1 > edge.y1 + 0.5]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            if ba.overlaps(bb) and ba.width > 0 and bb.width > 0:
                out.append((a.get_text(), b.get_text()))
    return out
