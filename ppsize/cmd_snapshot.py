"""``ppsize snapshot``: capture live processes without their memory contents: their VMAs
with every smaps field, status, the pagemap bits of every mapped page, the kpageflags of
the present frames and their folios, the process tree, and the page-cache residency and
folio sizes of every file they map (and, with --cache, of every file of a tree). One
recording file (see ``ppsize inspect`` and ``ppsize.recording.load``)."""
from __future__ import annotations

import argparse

from .cli import input_dir_error, output_error
from .cmd_inspect import fail, guarded


def _pid(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pid") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not a pid (pids are >= 1)")
    return v


def add_parser(sub):
    p = sub.add_parser("snapshot", help="capture live processes' memory layout, pages and mapped files' page cache",
                       description=__doc__)
    p.add_argument("--pid", type=_pid, nargs="+", action="extend", default=[], metavar="PID",
                   help="process to capture (repeatable; several after one --pid too)")
    p.add_argument("--all", action="store_true", help="every process (kernel threads and this one excluded)")
    p.add_argument("--cache", action="append", default=[], metavar="DIR",
                   help="also the page-cache residency of every regular file below DIR (repeatable)")
    p.add_argument("--cross-mounts", action="store_true", help="with --cache: descend into other file systems")
    p.add_argument("--freeze", action="store_true",
                   help="stop each process (SIGSTOP, then SIGCONT) while it is read, for a consistent picture")
    p.add_argument("--no-probe", dest="probe", action="store_false",
                   help="do not read the folios of cached file pages (mincore residency only)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the recording to write")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    return p


def run(args) -> int:
    from .recording.capture import AccessDenied, NoSuchProcess, snapshot
    from .recording.report import file_line, header, process_table
    if not (args.pid or args.all or args.cache):
        return fail("snapshot", "nothing to capture: give --pid PID, --all or --cache DIR")
    err = output_error(args.output) or next(filter(None, (input_dir_error(d, "--cache") for d in args.cache or ())), None)
    if err:
        return fail("snapshot", err)
    w, status = guarded("snapshot", args.output, (NoSuchProcess, AccessDenied, NotADirectoryError, ValueError),
                        lambda: snapshot(args.pid, all=args.all, cache_dirs=args.cache, path=args.output,
                                         freeze=args.freeze, probe=args.probe, cross_mounts=args.cross_mounts))
    if status is not None:
        return status
    if not args.quiet:
        print("\n".join(header(w)))
        if w.processes and len(w.processes) <= 40:
            print()
            print(process_table(w))
            print()
        print(file_line(w))
        for name, c in w.capture.get("cache_counts", {}).items():
            print(f"--cache {name}: {c['files']} files, {c['cached_files']} with cached pages, "
                  f"{c['unreadable']} unreadable, {c['skipped_mounts']} mounts skipped")
    return 0
