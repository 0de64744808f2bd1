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
    c = p.add_argument_group("per-process page size: emulated vs native page tables")
    c.add_argument("--cost", action="store_true",
                   help="page-table cost of a live process's present pages with each process page size")
    c.add_argument("--pid", default="self", help="process to read (/proc/PID/pagemap; default: this one)")
    c.add_argument("--page-size", action="append", metavar="SIZE",
                   help="process page size (repeatable; default 16K and 64K)")
    c.add_argument("--kernel", default="arm64-4k-48", help="kernel geometry for the emulated tables")
    c.add_argument("--folio-size", metavar="SIZE", help="anon folio size (default: the page size)")
    return p


def run_cost(args) -> int:
    from .pgtable_cost import pgtable_cost
    from .procmaps import present_ranges
    try:
        ranges = present_ranges(args.pid)
    except OSError as e:
        print(f"ppsize geometry: cannot read /proc/{args.pid}/pagemap: {e}", file=sys.stderr)
        return 2
    results = []
    try:
        for size in args.page_size or ["16K", "64K"]:
            results.append(pgtable_cost(ranges, size, kernel=args.kernel, folio_size=args.folio_size))
    except (ValueError, TypeError) as e:
        print(f"ppsize geometry: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"pid": args.pid, "costs": [r.as_dict() for r in results]}, sys.stdout, indent=2)
        print()
        return 0
    print(f"present pages of /proc/{args.pid}: {len(ranges)} ranges, "
          f"{sum(int(e - s) for s, e in ranges) >> 10} kB")
    rows = []
    for r in results:
        for t in r.trees:
            rows.append([fmt_size(r.page_size), t.mode, t.geometry, t.levels,
                         "/".join(str(n) for n in t.tables.values()),
                         t.vmpte_bytes >> 10, t.table_bytes >> 10, t.tlb_entries, t.mapped_bytes >> 10])
    print(table(["page", "tables", "geometry", "walk", "tables/level", "VmPTE kB", "all kB",
                 "TLB entries", "mapped kB"], rows))
    return 0


def run(args) -> int:
    if args.cost:
        return run_cost(args)
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
