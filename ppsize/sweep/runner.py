"""Running a sweep on Dask (``dask.distributed``): each tree scanned once here and
scattered to every worker, one task per cell (:func:`.task.run_cell`), results
gathered as they finish, written to the results file every few seconds and at the
end (so an interrupted sweep resumes where it stopped), a progress bar and a
summary. Needs the ``sweep`` extra."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass

from ..compare.progress import NO_PROGRESS
from ..extras import require
from .rows import STATUS_DONE, STATUS_FAILED, failed_row
from .spec import Spec, load_spec
from .task import run_cell

__all__ = ["run", "execute", "connect", "Summary", "SweepRun", "SchedulerUnreachable",
           "CONNECT_TIMEOUT", "SAVE_EVERY"]

CONNECT_TIMEOUT = 5.0          # seconds to reach --scheduler before giving up
SAVE_EVERY = 5.0               # seconds between writes of the results file


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler named by ``scheduler=`` did not answer."""


def connect(scheduler=None, workers=None, timeout=CONNECT_TIMEOUT):
    """A ``distributed.Client``: of the scheduler at ``scheduler`` (an address,
    e.g. ``tcp://host:8786``; raises :class:`SchedulerUnreachable` naming it
    after ``timeout`` seconds), else of a new in-process ``LocalCluster`` of
    ``workers`` single-threaded worker processes (default: one per CPU this process
    may run on). Returns (client, cluster or None); close both when done."""
    require("sweep", "a sweep")
    from distributed import Client, LocalCluster
    if scheduler:
        try:
            return Client(scheduler, timeout=timeout, set_as_default=False), None
        except (OSError, TimeoutError, ValueError) as e:
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {scheduler} within "
                                       f"{timeout:g} s ({type(e).__name__}: {e})") from None
    n = workers or len(os.sched_getaffinity(0))
    if n < 1:
        raise ValueError(f"workers must be at least 1, not {n}")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster, set_as_default=False), cluster


@dataclass
class Summary:
    """What a sweep did. ``speedup`` is an estimate of the speed-up over one worker:
    the cells' own times (measured inside the tasks) added up, i.e. what one worker
    would take running them back to back, over the wall time of the cell phase
    (submitting the first task to receiving the last result). ``overhead``: the
    mean gap between the end of a cell and the start of the next on the same
    worker (Dask's per-task cost: the result sent, the next task received)."""
    cells: int
    done: int
    failed: int
    skipped: int
    workers: int
    cluster: str               # "LocalCluster" or the scheduler's address
    wall: float                # the whole sweep (cluster start, scans, cells, writes)
    startup: float             # the cluster's start
    scans: float               # scanning the trees (once each)
    cell_wall: float           # the cell phase
    compute: float             # the cells' own seconds, summed
    compute_cpu: float = 0.0   # their CPU seconds (less than compute: other load took the CPU)
    results: str = None
    rows: int = 0
    errors: tuple = ()         # (cell, error) of the first failed cells
    overhead: float = float("nan")   # seconds between a worker's cells, on average

    @property
    def ran(self) -> int:
        return self.done + self.failed

    @property
    def speedup(self) -> float:
        return self.compute / self.cell_wall if self.cell_wall > 0 and self.ran else float("nan")

    def text(self) -> str:
        on = f"{self.workers} workers ({self.cluster})" if self.ran else "nothing to run"
        lines = [f"sweep: {self.cells} cells: {self.done} done, {self.failed} failed, {self.skipped} "
                 f"skipped (already in the results); {on}",
                 f"wall {self.wall:.1f} s (cluster start {self.startup:.1f} s, scans {self.scans:.2f} s, "
                 f"cells {self.cell_wall:.1f} s)"]
        if self.ran:
            share = self.compute_cpu / self.compute * 100 if self.compute else 0.0
            lines.append(f"cells' own time {self.compute:.1f} s, {self.compute_cpu:.1f} s of it on a CPU "
                         f"({share:.0f}%; less: other load): speed-up over one worker "
                         f"~{self.speedup:.2f}x (estimated: the cells' times added up over the cell "
                         f"phase's wall time); {self.overhead * 1000:.1f} ms between a worker's cells")
        if self.results:
            lines.append(f"results: {self.results} ({self.rows} rows)")
        for cell, err in self.errors:
            lines.append(f"failed: {cell}: {err}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return dict(asdict(self), speedup=self.speedup)


@dataclass
class SweepRun:
    frame: object              # pandas.DataFrame: this SPEC's rows
    summary: Summary


def _describe(cell) -> str:
    return (f"{cell.config} on {':'.join(cell.trees)} seed {cell.seed} policy {cell.policy} "
            f"thp {cell.thp} cpu {cell.cpu}")


def run(spec, client=None, **kw):
    """Run the sweep ``spec`` (a SPEC path, dict or :class:`~.spec.Spec`) and return
    its rows as a pandas DataFrame (one row per cell and process; a failed cell one
    row with ``status`` "failed" and its ``error``); ``attrs["summary"]``: the
    :class:`Summary` as a dict. ``client``: a ``distributed.Client`` to use (default:
    a LocalCluster sized to the machine, closed at the end). Keywords as
    :func:`execute`."""
    out = execute(spec, client=client, **kw)
    out.frame.attrs["summary"] = out.summary.as_dict()
    return out.frame


def execute(spec, client=None, overrides=(), results=None, workers=None, scheduler=None,
            progress=None, archive=False) -> SweepRun:
    """Run a sweep; returns :class:`SweepRun` (frame and summary). ``results``: the
    Parquet file to resume from and write (default: the SPEC's ``output``; None:
    none, every cell runs). ``scheduler``/``workers``: see :func:`connect` (not with
    ``client``). ``progress``: a ``compare.Progress``. ``archive``: set a results
    file of another ppsize version aside instead of refusing it."""
    require("sweep", "a sweep")
    from .. import __version__
    from ..compare import scan_trees
    from .results import open_for_resume, to_frame, write_results
    t_start = time.perf_counter()
    progress = progress or NO_PROGRESS
    spec = spec if isinstance(spec, Spec) else load_spec(spec, overrides)
    results = results if results is not None else spec.output
    cells = spec.cells()
    keys = [c.key(__version__) for c in cells]
    existing = open_for_resume(results, __version__, archive) if results else None
    done_keys = set()
    if existing is not None:
        done_keys = set(existing.loc[existing["status"] == STATUS_DONE, "cell_key"])
        rerun = set(keys) - done_keys          # failed cells run again: drop their old rows
        existing = existing[~existing["cell_key"].isin(rerun)]
    todo = [(c, k) for c, k in zip(cells, keys) if k not in done_keys]

    own = client is None
    if not own and (scheduler or workers):
        raise ValueError("give either client or scheduler/workers, not both")
    t = time.perf_counter()
    cluster = None
    if own and (todo or scheduler):           # an unreachable scheduler fails before any work
        client, cluster = connect(scheduler, workers)
    try:
        if todo:
            client.run(_warm)
        t_startup = time.perf_counter() - t
        t = time.perf_counter()
        scans = {}
        for cell, _ in todo:
            if cell.scan_key not in scans:
                try:
                    scans[cell.scan_key] = scan_trees(cell.trees, cross_mounts=cell.cross_mounts)
                except OSError as e:
                    raise ValueError(f"cannot scan {', '.join(cell.trees)}: {e}") from None
        t_scans = time.perf_counter() - t
    except BaseException:
        _close(own, client, cluster)
        raise

    t_cells = time.perf_counter()
    nworkers = len(client.scheduler_info().get("workers", {})) if todo else 0
    save = (lambda rows: write_results(results, to_frame(rows, existing), __version__)) if results else None
    rows, errors = [], []
    try:
        if todo:
            rows, errors = _run_cells(client, todo, scans, __version__, progress, save)
    finally:
        progress.close()
        _close(own, client, cluster)
    t_cells = time.perf_counter() - t_cells
    frame = to_frame(rows, existing)
    if results and (rows or existing is None):
        write_results(results, frame, __version__)
    order = {k: i for i, k in enumerate(keys)}
    mine = frame[frame["cell_key"].isin(order)].copy()
    mine["_order"] = mine["cell_key"].map(order)
    mine = mine.sort_values(["_order", "process"], na_position="first", kind="stable")
    mine = mine.drop(columns="_order").reset_index(drop=True)
    firsts = [r for r in rows if r.get("process") in (0, None)]      # one row per cell
    compute = sum(r["cell_seconds"] for r in firsts)
    failed = sum(1 for r in firsts if r["status"] == STATUS_FAILED)
    summary = Summary(len(cells), len(firsts) - failed, failed, len(cells) - len(todo), nworkers,
                      "LocalCluster" if cluster is not None else (scheduler or "client"),
                      time.perf_counter() - t_start, t_startup, t_scans, t_cells if todo else 0.0,
                      compute, sum(r["cell_cpu_seconds"] for r in firsts), results, len(frame),
                      tuple(errors), _gaps(firsts))
    return SweepRun(mine, summary)


def _run_cells(client, todo, scans, version, progress, save):
    """Scatter the scans, submit one task per cell, gather the rows as the tasks
    finish (``save(rows)`` every SAVE_EVERY seconds, and with what finished when
    interrupted). Returns (rows, [(cell, error)] of the first failed cells)."""
    from distributed import as_completed
    scattered = {k: client.scatter(s, broadcast=True, hash=False) for k, s in scans.items()}
    futures = {client.submit(run_cell, cell, scattered[cell.scan_key], key, pure=False): (cell, key)
               for cell, key in todo}
    rows, errors, done, failed = [], [], 0, 0
    t0 = last_save = time.perf_counter()
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            cell, key = futures.pop(fut)
            got = _collect(fut, cell, key, version)
            rows.extend(got)
            if got[0]["status"] == STATUS_FAILED:
                failed += 1
                if len(errors) < 5:
                    errors.append((_describe(cell), got[0]["error"]))
            else:
                done += 1
            progress.update(f"{done + failed}/{len(todo)} cells, {failed} failed, "
                            f"{time.perf_counter() - t0:.0f} s", (done + failed) / len(todo))
            if save and time.perf_counter() - last_save > SAVE_EVERY:
                save(rows)
                last_save = time.perf_counter()
    except BaseException:                        # interrupted: keep what finished, then stop
        client.cancel(list(futures))
        if save and rows:
            save(rows)
        raise
    return rows, errors


def _close(own, client, cluster):
    if own and client is not None:
        client.close()
        if cluster is not None:
            cluster.close()


def _warm():
    """Import the model on a worker (before the cell phase, so its first cell is
    not charged the imports)."""
    import ppsize.kernel  # noqa: F401
    import ppsize.sweep.task  # noqa: F401


def _gaps(firsts) -> float:
    """The mean gap between consecutive cells of the same worker (NaN: no worker
    ran two)."""
    by_worker = {}
    for r in firsts:
        if r.get("worker") and r.get("cell_started"):
            by_worker.setdefault(r["worker"], []).append((r["cell_started"], r["cell_seconds"]))
    gaps = []
    for runs in by_worker.values():
        runs.sort()
        gaps += [b[0] - (a[0] + a[1]) for a, b in zip(runs, runs[1:])]
    return sum(gaps) / len(gaps) if gaps else float("nan")


def _collect(fut, cell, key, version) -> list:
    """A finished task's rows; a task that raised (a worker lost, ...) or ran
    another ppsize version gives one failed row saying so."""
    params = cell.params()
    try:
        rows = fut.result()
    except Exception as e:
        return [dict(failed_row(params, f"{type(e).__name__}: {e}"), cell_key=key,
                     ppsize_version=version, cell_started=None, cell_seconds=0.0,
                     cell_cpu_seconds=0.0, worker=None)]
    theirs = rows[0]["ppsize_version"]
    if theirs != version:
        return [dict(failed_row(params, f"the worker runs ppsize {theirs}, this is {version}"),
                     cell_key=key, ppsize_version=version, cell_started=rows[0]["cell_started"],
                     cell_seconds=rows[0]["cell_seconds"], cell_cpu_seconds=rows[0]["cell_cpu_seconds"], worker=rows[0]["worker"])]
    return rows
