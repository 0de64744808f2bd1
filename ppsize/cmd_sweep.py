"""``ppsize sweep SPEC``: a grid of ``compare`` cells (trees x configurations x seeds
x file policies x THP settings x CPU presets) run as tasks on Dask, by default on a
LocalCluster of one single-threaded worker per CPU. Results: one row per cell and
per process with every ``compare --json`` figure, in a Parquet file (default: the
SPEC's ``output``, else SPEC with a .parquet suffix); running the same SPEC again
skips the cells already done. SPEC is TOML (or YAML); its keys are described in
``ppsize.sweep``'s docstring and the README. Exit status: 0, 1 if a cell failed (its
error is in the results), 2 for bad input, 130 when interrupted."""
from __future__ import annotations

import os
import sys

from .extras import MissingExtraError, require

PROG = "ppsize sweep"


def add_parser(sub):
    p = sub.add_parser("sweep", help="run a grid of compare configurations on Dask, tidy "
                                     "Parquet results (resumable)", description=__doc__)
    p.add_argument("spec", metavar="SPEC", help="the grid: a .toml (or .yaml) file")
    p.add_argument("-o", "--output", metavar="RESULTS",
                   help="the Parquet results file (default: SPEC's output key, else SPEC.parquet)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a SPEC key (repeatable; lists comma-separated: seeds=0,1 or "
                        "seeds=0-7, configs=4K,64K, trees=/usr:/etc,/opt)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="use the Dask scheduler at ADDRESS (tcp://host:8786) instead of a "
                            "LocalCluster")
    where.add_argument("--workers", type=int, metavar="N",
                       help="LocalCluster workers (default: one per CPU)")
    p.add_argument("--archive", action="store_true",
                   help="a results file of another ppsize version is renamed RESULTS.v<version>"
                        ".parquet and the sweep starts afresh (default: refuse it)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    return p


def _fail(msg) -> int:
    print(f"{PROG}: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    try:
        require("sweep", PROG)
    except MissingExtraError as e:
        return _fail(e)
    from .compare import Progress
    from .sweep import ResultsVersionError, SchedulerUnreachable, execute, load_spec
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers must be at least 1, not {args.workers}")
    try:
        spec = load_spec(args.spec, args.overrides)
    except (ValueError, TypeError) as e:
        return _fail(e)
    results = args.output or spec.output or os.path.splitext(args.spec)[0] + ".parquet"
    progress = Progress(enabled=False if args.quiet else None)
    try:
        out = execute(spec, results=results, workers=args.workers, scheduler=args.scheduler,
                      progress=progress, archive=args.archive)
    except (SchedulerUnreachable, ResultsVersionError, ValueError) as e:
        return _fail(e)
    except OSError as e:
        return _fail(f"cannot write {results}: {e}")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the finished cells are in {results}", file=sys.stderr)
        return 130
    if not args.quiet:
        print(out.summary.text())
    return 1 if out.summary.failed else 0
