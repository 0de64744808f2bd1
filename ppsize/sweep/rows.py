"""Tidy rows of a sweep: one per cell and per process, each with the cell's
parameters and every figure ``compare --json`` gives for that configuration
(nested keys flattened with dots: ``meminfo.Cached``, ``translation.per_1000.walks``,
``process.RssAnon``). Pure Python (plain dicts): the plots read the same rows from a
``compare`` run without pandas."""
from __future__ import annotations

import numbers

from .spec import CELL_PARAMS, SYNTHETIC, TREE_SEP

__all__ = ["flatten", "config_rows", "failed_row", "compare_rows", "ratios", "BASELINE",
           "GROUP_PARAMS", "STATUS_DONE", "STATUS_FAILED"]

STATUS_DONE, STATUS_FAILED = "done", "failed"
BASELINE = "4K"                     # the ratio's reference: the 4K kernel of the same workload
# the parameters that make one comparison (everything but the configuration)
GROUP_PARAMS = tuple(p for p in CELL_PARAMS if p != "config")


def flatten(d: dict, prefix: str = "", out: dict = None) -> dict:
    """``{"a": {"b": 1}, "c": [1, 2], "d": ["x", "y"]}`` -> ``{"a.b": 1, "c.0": 1,
    "c.1": 2, "d": "x; y"}``: nested dicts joined by dots, lists of numbers indexed,
    other lists joined into one string."""
    out = {} if out is None else out
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            flatten(v, name + ".", out)
        elif isinstance(v, (list, tuple)):
            if all(isinstance(x, numbers.Number) and not isinstance(x, bool) for x in v) and v:
                for i, x in enumerate(v):
                    out[f"{name}.{i}"] = x
            else:
                out[name] = "; ".join(map(str, v))
        else:
            out[name] = v
    return out


def _process_workload(wp: dict) -> dict:
    """One process's share of the workload description (compare's ``workload``)."""
    return {"files": len(wp["files"]), "file_bytes": sum(f["bytes"] for f in wp["files"]),
            "file_touched_kB": sum(f["touched_kB"] for f in wp["files"]),
            "anon_bytes": sum(a["bytes"] for a in wp["anon"]),
            "anon_touched_kB": sum(a["touched_kB"] for a in wp["anon"])}


def config_rows(params: dict, cfg: dict, scan: dict, workload: dict, memory: int) -> list:
    """The rows of one configuration: ``cfg`` is ``ConfigResult.as_dict()`` (one
    entry of compare's ``configs``), ``scan`` and ``workload`` compare's documents
    of the same name, ``memory`` the model memory in bytes."""
    base = dict(params)
    base["status"] = STATUS_DONE
    base["error"] = None
    base["model_memory"] = memory
    flatten({k: v for k, v in cfg.items() if k not in ("processes", "key", "check")}, "", base)
    base["check_result"] = cfg["check"]      # "check" is the cell's parameter (run Kernel.check)
    flatten({k: v for k, v in scan.items() if k != "trees"}, "scan.", base)
    rows = []
    for i, (p, wp) in enumerate(zip(cfg["processes"], workload["processes"])):
        row = dict(base)
        row["process"] = i
        flatten(p, "process.", row)
        flatten(_process_workload(wp), "process.", row)
        rows.append(row)
    return rows


def failed_row(params: dict, error: str) -> dict:
    """The one row of a cell that gave no figures: its parameters and the error."""
    return dict(params, status=STATUS_FAILED, error=error)


def compare_rows(doc: dict, **params) -> list:
    """The rows of a whole ``compare`` run from its ``--json`` document
    (``CompareResult.as_dict()``), with parameters as a sweep would give them
    (derived from the document; ``params`` overrides them, e.g. ``chosen=``)."""
    w = doc["workload"]
    n = len(w["processes"])
    idx = [i for i, p in enumerate(w["processes"]) if p["chosen"]]
    chosen = {tuple(range(1, n, 2)): "alternate", tuple(range(n)): "all", (): "none"}.get(
        tuple(idx), ",".join(map(str, idx)))
    rows = []
    for cfg in doc["configs"]:
        t = cfg.get("translation")
        cell = {"trees": TREE_SEP.join(doc["trees"]), "workload": SYNTHETIC, "seed": w["seed"],
                  "policy": doc["file_policy"], "thp": doc["thp"],
                  "cpu": t["cpu"] if t else "none", "config": cfg["key"],
                  "processes": len(w["processes"]), "chosen": chosen,
                  "steady": t["accesses"] // max(len(w["processes"]), 1) if t else 0,
                  "memory": "auto", "cross_mounts": False, "check": cfg["check"] == "passed"}
        cell.update(params)
        rows.extend(config_rows(cell, cfg, doc["scan"], w, doc["memory"]))
    return rows


def ratios(rows) -> list:
    """Per row: total_kB / the total of the 4K kernel's row of the same comparison
    (same parameters but the configuration), as compare's ``ratio``; NaN where that
    comparison has no 4K row or the row failed."""
    base = {}
    for r in rows:
        if r["config"] == BASELINE and r.get("status") == STATUS_DONE:
            base[tuple(r[p] for p in GROUP_PARAMS)] = r["total_kB"]
    out = []
    for r in rows:
        b = base.get(tuple(r[p] for p in GROUP_PARAMS))
        ok = r.get("status") == STATUS_DONE and b
        out.append(round(r["total_kB"] / b, 6) if ok else float("nan"))
    return out
