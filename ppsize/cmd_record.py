"""``ppsize record -o FILE -- CMD ARGS...``: run a command and record what the kernel did
for it: its page faults in order (with address and error code), the faults minflt and
majflt count, page-cache insertions and deletions, its memory syscalls with arguments and
results, the fork/exec/exit of its tasks, a snapshot of each process after every exec and
at its exit (status, smaps, pagemap, minflt/majflt), and the page cache of every file it
maps, captured before its first mmap. Needs perf (root, or kernel.perf_event_paranoid
-1). With --accesses, valgrind's lackey records every load, store, modify and instruction
fetch of the command's process instead."""
from __future__ import annotations

import argparse
import sys

from .cli import output_error
from .cmd_inspect import fail, guarded


def add_parser(sub):
    p = sub.add_parser("record", help="run a command and record its faults, page cache, syscalls (perf) "
                                      "or every access (--accesses, valgrind lackey)",
                       description=__doc__, usage="ppsize record -o FILE [options] -- CMD [ARGS...]")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the recording to write")
    p.add_argument("--accesses", action="store_true",
                   help="record every memory access with valgrind --tool=lackey --trace-mem=yes")
    p.add_argument("--lackey-log", metavar="LOG",
                   help="instead of running a command, convert an existing lackey --trace-mem=yes log")
    p.add_argument("--fault-event", choices=("auto", "tracepoint", "sw"), default="auto",
                   help="fault source: exceptions:page_fault_* tracepoints (x86-64), the page-faults "
                        "software event (address only; what arm64 has), auto: the tracepoint if present")
    p.add_argument("--mmap-pages", default="16M", metavar="SIZE",
                   help="perf's per-CPU buffer (perf record -m; default 16M); raise it if events are lost")
    p.add_argument("--no-seccomp", dest="seccomp", action="store_false",
                   help="do not stop at file mmaps (no page-cache capture before each first mapping)")
    p.add_argument("--no-probe", dest="probe", action="store_false",
                   help="do not read the folios of cached file pages (mincore residency only)")
    p.add_argument("--perf", metavar="PATH", help="the perf program (default: perf on PATH)")
    p.add_argument("--valgrind", metavar="PATH", help="the valgrind program (default: valgrind on PATH)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                   help="the command to run (after --)")
    return p


def run(args) -> int:
    from .recording import RecordingError
    from .recording.lackey import LackeyError
    from .recording.recorder import RecordError, record, record_lackey_log
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.lackey_log and cmd:
        return fail("record", "give either --lackey-log LOG or a command, not both")
    if not args.lackey_log and not cmd:
        return fail("record", "no command: ppsize record -o FILE -- CMD ARGS...")
    err = output_error(args.output)
    if err:
        return fail("record", err)

    def run_it():
        if args.lackey_log:
            return record_lackey_log(args.lackey_log, args.output)
        return record(cmd, args.output, accesses=args.accesses, perf=args.perf, valgrind=args.valgrind,
                      fault_event=args.fault_event, mmap_pages=args.mmap_pages, probe=args.probe,
                      seccomp=args.seccomp)
    w, status = guarded("record", args.output, (RecordError, LackeyError, RecordingError, ValueError), run_it)
    if status is not None:
        return status
    if not args.quiet:                 # on stderr: the command's stdout stays its own
        print(w.summary(), file=sys.stderr)
        st = w.capture.get("exit_status")
        if st:
            print(f"note: the command exited with status {st}" if st > 0 else
                  f"note: the command was killed by signal {-st}", file=sys.stderr)
    return 0
