"""The task of one cell, run on a Dask worker (or in-process): the cell's
``compare`` configuration on its workload (``compare.run.run_config``, a pure
function of its inputs) over the shared :class:`~ppsize.compare.ScanResult` of its
trees, turned into tidy rows. Never raises: a failure is a row with the error."""
from __future__ import annotations

import time

from ..units import parse_size
from .rows import config_rows, failed_row
from .spec import Cell

__all__ = ["run_cell", "workload_of"]

_CACHE_SIZE = 8
_workloads: dict = {}      # (seed, processes, chosen) -> [(scan, Workload, doc, memory)]


def workload_of(cell: Cell, scan):
    """The cell's workload (``compare.make_workload``), its ``as_dict()`` and the
    model memory, made once per worker for the cells sharing scan and seed (the
    cells of one workload differ only in the configuration)."""
    from ..compare import make_workload, memory_for
    key = (cell.seed, cell.processes, cell.chosen)
    for entry in _workloads.get(key, ()):
        if entry[0] is scan:
            return entry[1:]
    w = make_workload(scan, seed=cell.seed, processes=cell.processes, chosen=cell.chosen)
    memory = memory_for(scan, w) if cell.memory == "auto" else parse_size(cell.memory, "memory")
    if sum(len(v) for v in _workloads.values()) >= _CACHE_SIZE:
        _workloads.clear()
    _workloads.setdefault(key, []).append((scan, w, w.as_dict(), memory))
    return w, w.as_dict(), memory


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def run_cell(cell: Cell, scan, key: str) -> list:
    """Run ``cell`` on ``scan``; its rows (one per process), or one failed row with
    the error's type and message. Each row carries ``cell_key`` (``key``), this
    worker's ppsize version, the cell's wall and CPU seconds (the worker process's)
    and the worker's address."""
    from .. import __version__
    from ..compare import run_config
    started, t0, c0 = time.time(), time.perf_counter(), time.process_time()
    params = cell.params()
    try:
        w, doc, memory = workload_of(cell, scan)
        res = run_config(cell.config, scan, w, memory=memory, thp=cell.thp, policy=cell.policy,
                         check=cell.check, cpu=None if cell.cpu == "none" else cell.cpu,
                         steady=cell.steady)
        rows = config_rows(params, res.as_dict(), scan.as_dict(), doc, memory)
    except Exception as e:                       # recorded in the results, never dropped
        rows = [failed_row(params, f"{type(e).__name__}: {e}")]
    extra = {"cell_key": key, "ppsize_version": __version__, "cell_started": started,
             "cell_seconds": round(time.perf_counter() - t0, 4),
             "cell_cpu_seconds": round(time.process_time() - c0, 4), "worker": _worker_name()}
    for r in rows:
        r.update(extra)
    return rows
