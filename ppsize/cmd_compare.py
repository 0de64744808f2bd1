"""``ppsize compare``: the memory one workload needs on a 4K, a 16K and a 64K kernel,
and on a 4K kernel whose chosen processes run with 16K or 64K pages (emulated and
native page tables): page cache, anonymous memory, page tables, XArray nodes, the
total and its ratio to the 4K kernel.

The workload: every regular file of the trees (default /usr and /etc; once per
inode, st_size as the size, symlinks not followed) read once in full, plus a
seeded mix of processes mapping some of those files (executables, shared
libraries, data) and writing anonymous memory. A progress bar shows on stderr
when it is a terminal (not with --quiet)."""
from __future__ import annotations

import json
import sys

from .cli import fail, input_dir_error, output_error
from .compare import (CONFIGS, DEFAULT_CPU, DEFAULT_TREES, ERROR_REASONS, FILE_POLICIES, MAX_PROCESSES,
                      THP_MODES, Progress, WorkloadFaultError, compare, scan_trees)
from .cpu_presets import CPU_PRESETS


def add_parser(sub):
    p = sub.add_parser("compare", help="memory of one workload on 4K/16K/64K kernels and with "
                                       "per-process 16K/64K pages, side by side",
                       description=__doc__)
    p.add_argument("--tree", action="append", metavar="DIR",
                   help=f"a file tree to read (repeatable; default {' and '.join(DEFAULT_TREES)})")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE ('-': stdout)")
    p.add_argument("--seed", type=int, default=0, help="seed of the process mix (default 0)")
    p.add_argument("--processes", type=int, default=12, metavar="N",
                   help="number of processes in the mix (default 12)")
    p.add_argument("--chosen", default="alternate", metavar="WHICH",
                   help="processes that run with the large page in the per-process "
                        "configurations: 'alternate' (1, 3, 5, ...; default), 'all', 'none', "
                        "or comma-separated indices")
    p.add_argument("--config", action="append", metavar="KEY",
                   help=f"configurations to run (repeatable; default all: {', '.join(c.key for c in CONFIGS)})")
    p.add_argument("--thp", default="madvise", choices=THP_MODES,
                   help="transparent_hugepage/enabled of every kernel (default madvise)")
    p.add_argument("--policy", default="drop-all", choices=FILE_POLICIES,
                   help="how a file gets folios >= a larger process page (Kernel.file_policy; "
                        "default drop-all, the thread's proposal)")
    p.add_argument("--cpu", default=DEFAULT_CPU, choices=[c for c in CPU_PRESETS if c != "custom"] + ["none"],
                   help=f"the translation model of the steady-state phase (default {DEFAULT_CPU}; "
                        "'none': no translation columns)")
    p.add_argument("--workload", action="append", metavar="FILE",
                   help="a recording (ppsize snapshot / ppsize record) replayed under every "
                        "configuration (repeatable); with --tree after the synthetic mix in the "
                        "same kernels, without --tree instead of it")
    p.add_argument("--cross-mounts", action="store_true",
                   help="descend into directories on other file systems (default: skip them)")
    p.add_argument("--check", action="store_true",
                   help="verify every Kernel invariant after each run (slow on big trees)")
    p.add_argument("--plot", metavar="FILE",
                   help="also draw a figure to FILE (.png, .svg, .pdf; needs the plot extra)")
    p.add_argument("--plot-kind", default="memory", metavar="KIND",
                   help="the figure --plot draws (as ppsize plot --kind; default memory)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="configurations run at once, in threads (default: 2 when there are two "
                        "CPUs and two Kernels fit in the host memory, else 1; the figures are the "
                        "same for any N)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary lines")
    return p


def _check_plot(args):
    """Why --plot cannot work (before the run), or None."""
    import os
    from .cmd_plot import FORMATS
    from .extras import MissingExtraError, require
    from .plot import KINDS
    if os.path.splitext(args.plot)[1].lower() not in FORMATS:
        return f"--plot {args.plot}: the figure's name must end in {', '.join(FORMATS)}"
    if args.plot_kind not in KINDS:
        return f"--plot-kind {args.plot_kind!r}: choose one of {', '.join(KINDS)}"
    try:
        require("plot", "--plot")
    except MissingExtraError as e:
        return str(e)
    return None


def run(args) -> int:
    trees = args.tree or ([] if args.workload else list(DEFAULT_TREES))
    # every argument and the environment checked before anything is scanned or allocated
    for t in trees:
        err = input_dir_error(t)
        if err:
            return fail("compare", err)
    if not 1 <= args.processes <= MAX_PROCESSES:
        return fail("compare", f"--processes must be in 1..{MAX_PROCESSES}, not {args.processes}")
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        return fail("compare", f"--jobs must be in 1..64, not {args.jobs}")
    if args.json and args.json != "-":
        err = output_error(args.json)
        if err:
            return fail("compare", f"--json: {err}")
    if args.plot:
        err = _check_plot(args)
        if err:
            return fail("compare", err)
    progress = Progress(enabled=False if args.quiet else None)
    try:
        scan = scan_trees(trees, cross_mounts=args.cross_mounts, progress=progress) if trees else None
        if scan is not None and scan.nr_files == 0:
            progress.close()
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(scan.skipped.items()) if v) or "nothing skipped"
            return fail("compare", f"the scan of {', '.join(trees)} read no regular file "
                                   f"({scan.dirs} directories; {kinds})")
        result = compare(trees, seed=args.seed, processes=args.processes, chosen=args.chosen,
                         configs=args.config, thp=args.thp, policy=args.policy,
                         cross_mounts=args.cross_mounts, cpu=None if args.cpu == "none" else args.cpu,
                         check=args.check, progress=progress, scan=scan,
                         workloads=args.workload or (), workers=args.jobs)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as e:
        progress.close()
        print(f"ppsize compare: cannot read tree: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        progress.close()
        print(f"ppsize compare: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except (ValueError, WorkloadFaultError) as e:
        progress.close()
        print(f"ppsize compare: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.close()
        print("ppsize compare: interrupted", file=sys.stderr)
        return 130
    if args.json:
        data = json.dumps(result.as_dict(), indent=2)
        if args.json == "-":
            print(data)
        else:
            try:
                with open(args.json, "w") as f:
                    f.write(data + "\n")
            except OSError as e:
                print(f"ppsize compare: cannot write {args.json}: {e}", file=sys.stderr)
                return 2
    if args.json != "-":
        if not args.quiet:
            print(result.summary())
            print()
        print(result.table())
        if not args.quiet:
            print()
            print("MiB; total = page cache + anon + page tables + XArray nodes; ratio = total / "
                  "the 4K kernel's; transitions = files whose cache a larger-page process "
                  "dropped (min folio order raised); re-read = cache read again after the first "
                  f"full read. {result.seconds:.1f} s.")
            t = next((r.translation for r in result.results if r.translation), None)
            if t is not None:
                print(f"Translation ({t.cpu}): the steady state of the process mix, each process's "
                      f"seeded stream (sequential scans, random heap, skewed text fetches) run twice "
                      f"through its CPU's TLB, the second counted; per 1000 accesses: L1 and L2 TLB "
                      f"misses, walks, walk memory references; cyc/acc = estimated translation "
                      f"cycles per access from the preset's latencies "
                      f"({', '.join(f'{k} {v}' for k, v in t.latencies.items()) or 'none sourced'}).")
    if args.plot:
        from .cmd_plot import write_figure
        rc = write_figure(result, args.plot, args.plot_kind, prog="ppsize compare")
        if rc:
            return rc
    if not args.quiet and args.json != "-":
        _print_recorded(result)
    errors = result.scan.errors if result.scan else 0
    if errors and not args.quiet:
        kinds = ", ".join(f"{k} {result.scan.skipped[k]}" for k in ERROR_REASONS if result.scan.skipped.get(k))
        print(f"ppsize compare: {errors} entries could not be read and were skipped ({kinds})",
              file=sys.stderr)
    return 0


def _print_recorded(result):
    """compare --workload: the 4K kernel's replay of each recording beside the recorded
    figures (cmd_replay's table), PARTIAL ones flagged."""
    from .cmd_replay import figure_table
    base = next((r for r in result.results if r.config.key == "4K" and r.replays), None)
    if base is None:
        return
    for rep in base.replays:
        t, m = rep.totals("truth"), rep.totals("model")
        print()
        print(f"{rep.path}: the 4K kernel's replay beside the recorded figures"
              + (" (PARTIAL recording)" if rep.partial else ""))
        print(figure_table(m, t, rep.cache_adds, rep.cache_adds_truth))
