"""``ppsize inspect``: what a recording holds (``ppsize snapshot`` / ``ppsize record``):
host, processes with their status figures, files and their page cache, events and
accesses; a partial recording says so first, with every reason."""
from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np

from .cli import fail, file_kind
from .report import table




def guarded(command: str, path, known, fn):
    """Run ``fn()``: (its result, None), or (None, 2) after the one-line error for the
    ``known`` exceptions and OSError (naming the file: ``e.filename`` or ``path``). A
    broken pipe is left to ppsize.cli.main."""
    try:
        return fn(), None
    except BrokenPipeError:
        raise
    except known as e:
        return None, fail(command, e.args[0] if isinstance(e, KeyError) else e)
    except OSError as e:
        return None, fail(command, f"{e.filename or path}: {e.strerror or e}")


def add_parser(sub):
    p = sub.add_parser("inspect", help="summarise a snapshot or recording file", description=__doc__)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--vmas", type=int, metavar="PID", help="list the VMAs of process PID as smaps shows them")
    p.add_argument("--files", action="store_true", help="list every file with its size and page cache")
    p.add_argument("--json", action="store_true", help="print the summary figures as JSON")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the checksums")
    return p


def vma_table(proc) -> str:
    from .recording import pagemap_bits
    from .recording.schema import dev_text
    rows = []
    order = proc.page_folio_order()
    first = 0                                  # the VMA's first row in proc.pages
    for v in proc.vma_list():
        present = int(pagemap_bits(v.pages["pagemap"])["present"].sum())
        large = int((order[first:first + len(v.pages)] > 0).sum())
        first += len(v.pages)
        rows.append([f"{v.start:x}-{v.end:x}", v.perms, f"{v.pgoff:x}", dev_text(v.dev), v.inode,
                     v.smaps.get("Rss", 0), v.smaps.get("Anonymous", 0), v.smaps.get("AnonHugePages", 0),
                     present, large, " ".join(v.vmflags), v.name])
    return table(["range", "perms", "offset", "dev", "inode", "Rss", "Anon", "AnonHuge", "present",
                  "in large folios", "VmFlags", "name"], rows,
                 align=["<", "<", ">", "<", ">", ">", ">", ">", ">", ">", "<", "<"])


def files_table(w) -> str:
    from .recording.schema import dev_text
    rows = []
    for f in w.files:
        orders = np.bincount(f.folios["order"]) if len(f.folios) else []
        rows.append([dev_text(f.dev), f.inode, f.size, f.resident_pages,
                     len(f.resident_runs), " ".join(f"{o}:{n}" for o, n in enumerate(orders) if n) or "-",
                     ",".join(sorted(f.flags)) or "-", f.path])
    return table(["dev", "inode", "size", "cached pages", "runs", "folios by order", "flags", "path"], rows,
                 align=["<", ">", ">", ">", ">", "<", "<", "<"])


def as_dict(w) -> dict:
    return {"kind": w.kind, "path": w.path, "partial": w.partial, "problems": w.problems,
            "host": w.host, "capture": w.capture,
            "processes": [{"pid": p.pid, "ppid": p.ppid, "comm": p.comm, "when": p.when,
                           "partial": p.partial, "problems": p.problems, "vmas": len(p.vmas),
                           "status": p.status, "minflt": p.minflt, "majflt": p.majflt, **p.totals()}
                          for p in w.processes],
            "files": len(w.files), "events": {k: len(a) for k, a in w.events.items()},
            "accesses": None if w.accesses is None else len(w.accesses)}


def run(args) -> int:
    from .recording import RecordingError, load
    try:
        mode = os.stat(args.file).st_mode
    except OSError as e:
        return fail("inspect", f"{args.file}: {e.strerror}")
    if not stat.S_ISREG(mode):                 # a FIFO would block the open
        return fail("inspect", f"{args.file}: it is {file_kind(mode)}, not a recording file")

    def show():
        w = load(args.file, verify=args.verify)
        if args.json:
            return json.dumps(as_dict(w), indent=2, default=str)
        if args.vmas is not None:
            return vma_table(w.process(args.vmas))
        return files_table(w) if args.files else w.summary()
    text, status = guarded("inspect", args.file, (RecordingError, KeyError), show)
    if status is None:
        print(text)
    return status or 0
