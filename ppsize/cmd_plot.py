"""``ppsize plot RESULTS -o FILE``: a figure of a sweep's results (.parquet) or of a
``compare --json`` file: memory per configuration (stacked bars, the 4K kernel as
reference), the per-process page size's cost against 16K/64K kernels, transitions
and re-read page cache by file policy, or TLB misses against memory cost. The
format follows FILE's suffix (.png, .svg, .pdf)."""
from __future__ import annotations

import os
import sys

from .extras import MissingExtraError, require

PROG = "ppsize plot"
FORMATS = (".png", ".svg", ".pdf")


def add_parser(sub):
    from .plot import KINDS
    p = sub.add_parser("plot", help="figures of sweep results or compare --json output",
                       description=__doc__)
    p.add_argument("results", metavar="RESULTS", help="a sweep's .parquet or a compare --json file")
    p.add_argument("--kind", default="memory", choices=KINDS, help="the figure (default memory)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the figure (.png, .svg, .pdf)")
    p.add_argument("--where", action="append", default=[], metavar="PARAM=VALUE",
                   help="plot only the cells with this parameter value (repeatable), e.g. "
                        "policy=drop-all")
    p.add_argument("--title", help="the figure's title (default: the kind and the workload)")
    return p


def parse_where(items) -> dict:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"--where {item!r}: write PARAM=VALUE")
        out[k.strip()] = v.strip()
    return out


def _fail(msg) -> int:
    print(f"{PROG}: {msg}", file=sys.stderr)
    return 2


def write_figure(data, path, kind="memory", where=None, title=None, prog=PROG) -> int:
    """Draw and write one figure; 0, or 2 with one line on stderr (shared with
    ``compare --plot``)."""
    if os.path.splitext(path)[1].lower() not in FORMATS:
        print(f"{prog}: {path}: the figure's name must end in {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    try:
        require("plot", prog)
    except MissingExtraError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    from .plot import plot
    try:
        plot(data, path, kind, where, title)
    except (ValueError, KeyError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except MissingExtraError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{prog}: cannot write {path}: {e}", file=sys.stderr)
        return 2
    return 0


def run(args) -> int:
    if not os.path.exists(args.results):
        return _fail(f"{args.results}: no such file")
    try:
        where = parse_where(args.where)
    except ValueError as e:
        return _fail(e)
    return write_figure(args.results, args.output, args.kind, where, args.title)
