"""``ppsize sweep``: a grid of ``compare`` cells run as tasks on Dask, with tidy,
resumable results.

A SPEC (TOML, or YAML when PyYAML is installed; or a dict of the same keys) names
the values of each dimension; every key is optional and takes compare's default::

    trees    = ["/etc"]                      # workloads' trees; "/usr:/etc" = two trees in one
    configs  = ["4K", "16K", "4K+64K-native"]   # compare --config keys (default: all 7)
    seeds    = [0, 1]                        # or "0-7"
    policies = ["drop-all", "range"]         # compare --policy (Kernel.file_policy)
    thp      = ["madvise"]                   # compare --thp
    cpus     = ["neoverse-n1"]               # compare --cpu presets, or "none"
    workloads = ["synthetic"]                # compare's seeded mix (recordings: not yet)
    processes = 12                           # settings every cell shares
    chosen   = "alternate"
    steady   = 131072
    memory   = "auto"
    cross_mounts = false
    check    = false
    output   = "etc.parquet"                 # the results file

The grid is the product of the lists (:meth:`Spec.cells`); a cell is one
configuration on one workload (:class:`Cell`). Each tree set is scanned once and
shared with every worker; each cell is one task (:func:`task.run_cell`). The
results are one row per cell and per process with every ``compare --json`` figure
(:mod:`.rows`), in Parquet (:mod:`.results`), keyed by the cell's parameters and
ppsize's version, so running the same SPEC again skips the done cells; a failed
cell is a row with ``status`` "failed" and its ``error``.

From Python::

    from ppsize import sweep
    df = sweep.run({"trees": ["/etc"], "configs": ["4K", "64K"], "seeds": [0, 1]})
    df = sweep.run("etc.toml", client=my_dask_client)

Everything imports without the extras; running a sweep and reading results need
the ``sweep`` extra (dask[distributed], pandas, pyarrow)."""
from __future__ import annotations

from .results import ResultsVersionError, read_results
from .rows import compare_rows, config_rows, flatten, ratios
from .spec import CELL_PARAMS, LIST_KEYS, SCALAR_KEYS, SPEC_KEYS, Cell, Spec, load_spec
from .runner import SchedulerUnreachable, Summary, SweepRun, connect, execute, run
from .task import run_cell

__all__ = ["run", "execute", "connect", "load_spec", "Spec", "Cell", "run_cell", "read_results",
           "Summary", "SweepRun", "SchedulerUnreachable", "ResultsVersionError", "SPEC_KEYS",
           "LIST_KEYS", "SCALAR_KEYS", "CELL_PARAMS", "compare_rows", "config_rows", "flatten",
           "ratios"]
