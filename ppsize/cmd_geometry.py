"""``ppsize geometry``: the page-table geometry of every supported configuration."""
from __future__ import annotations

import json
import sys

from .geometry import GEOMETRIES, geometry
from .report import table
from .units import fmt_size


def add_parser(sub):
    p = sub.add_parser("geometry", help="page-table geometry of each arm64 granule/VA size and x86-64",
                       description=__doc__)
    p.add_argument("names", nargs="*", metavar="NAME", help=f"geometries to show (default: all of {', '.join(GEOMETRIES)})")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def run(args) -> int:
    try:
        geos = [geometry(n) for n in (args.names or GEOMETRIES)]
    except ValueError as e:
        print(f"ppsize geometry: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"geometries": [g.as_dict() for g in geos]}, sys.stdout, indent=2)
        print()
        return 0
    rows = []
    for g in geos:
        rows.append([
            g.name, g.granule, g.va_bits, g.levels,
            "/".join(str(n) for n in g.entries),
            "/".join(fmt_size(s) for s in g.spans),
            " ".join(f"{k}:{fmt_size(v)}" for k, v in g.block_sizes.items()),
            f"{g.cont_ptes} ({fmt_size(g.cont_pte_size)})",
            f"{g.cont_pmds} ({fmt_size(g.cont_pmd_size)})",
            g.max_page_order, g.pmd_order, g.fault_around_pages, g.max_pagecache_order,
        ])
    print(table(["geometry", "page", "VA", "lvls", "entries (root first)", "entry span",
                 "blocks", "CONT_PTES", "CONT_PMDS", "MAX_ORDER", "PMD_ORD", "fault-around",
                 "MAX_PC_ORD"], rows))
    return 0
