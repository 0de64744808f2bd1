"""Parse ``perf script`` text of a ``ppsize record`` run into the event sections.

The text comes from ``perf script --ns --show-lost-events -F trace:pid,tid,time,event,trace
-F sw:pid,tid,time,event,addr,ip``: one event per line, ``PID/TID SEC.NSEC: EVENT: FIELDS``,
in time order. Only the recorded command's tasks are kept: its first task from its first
sched_process_exec on (before that it is still the tracer's fork) and every task a kept
task forks (sched_process_fork). Each kept event gets the next index; ``seq`` is
4 * (index + 1), leaving room for the process snapshots and file captures that
``recorder`` places right before or after an event.
"""
from __future__ import annotations

import os
import re

import numpy as np

from . import schema

__all__ = ["PerfScriptParser", "SYSCALLS", "seq_of", "SEQ_BEFORE", "SEQ_AFTER"]

# the memory syscalls recorded (syscalls:sys_enter_NAME / sys_exit_NAME)
SYSCALLS = ("mmap", "munmap", "mprotect", "pkey_mprotect", "mremap", "brk", "madvise", "mlock",
            "mlock2", "munlock", "mlockall", "munlockall", "shmat", "shmdt", "mseal")
SEQ_BEFORE, SEQ_AFTER = -1, 1
_USER_LIMIT = 1 << 63          # faults at kernel addresses (vmalloc) are not the process's

_FORK = re.compile(r"pid=(\d+) child_comm=.* child_pid=(\d+)\s*$")
_EXEC = re.compile(r"filename=(.*) pid=(\d+) old_pid=(\d+)\s*$")
_EXIT = re.compile(r"pid=(\d+) prio=-?\d+(?: group_dead=(\w+))?\s*$")
_LOST = re.compile(r"PERF_RECORD_LOST(?:_SAMPLES)? lost (\d+)")


def _hex(text: str) -> int | None:
    """A %ps field: hex for user addresses, "symbol+0x12/0x40" for kernel text (None)."""
    try:
        return int(text, 16)
    except ValueError:
        return None


def seq_of(index: int, where: int = 0) -> int:
    """The seq of kept event ``index`` (where=0), or of something placed just before
    (SEQ_BEFORE) or after (SEQ_AFTER) it."""
    return 4 * (index + 1) + where


class PerfScriptParser:
    """Feed lines, then ``arrays(strings)``. ``root``: the command's first task (the
    tracer's "start" pid). ``page_size`` converts the filemap events' byte offsets."""

    def __init__(self, root: int, page_size: int | None = None):
        self.root = root
        self.page = page_size or os.sysconf("SC_PAGE_SIZE")
        self.ours: set[int] = set()
        self.started = False
        self.n = 0
        self.faults, self.acct, self.cache, self.tasks = [], [], [], []
        self.syscalls: list[list] = []
        self._open: dict[int, list] = {}          # tid -> syscall row awaiting its exit
        self.syscall_args: dict[str, list[str]] = {}
        self.execs: dict[int, list[int]] = {}      # pid -> event indices of its execs
        self.exits: dict[int, int] = {}            # tid -> event index of its exit
        self.file_mmaps: dict[int, list[list]] = {}  # tid -> syscall rows of file mmaps
        self.lost = 0
        self.unparsed = 0
        self.other_tasks = 0
        self.exec_names: list[str] = []

    def _keep(self) -> int:
        i = self.n
        self.n += 1
        return seq_of(i)

    def feed(self, line: str) -> None:
        head, sep, rest = line.partition(": ")
        if not sep:
            if line.strip():
                self.unparsed += 1
            return
        parts = head.split()
        if len(parts) < 2 or "/" not in parts[0]:
            m = _LOST.search(line)
            if m:
                self.lost += int(m.group(1))
            elif line.strip():
                self.unparsed += 1
            return
        if rest.startswith("PERF_RECORD_LOST") or "PERF_RECORD_LOST" in parts[-1]:
            m = _LOST.search(line)
            self.lost += int(m.group(1)) if m else 0
            return
        pid_s, tid_s = parts[0].split("/")
        pid, tid = int(pid_s), int(tid_s)
        sec, _, frac = parts[1].rstrip(":").partition(".")
        t = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        event, _, fields = rest.partition(": ")
        event = event.strip()
        if event == "sched:sched_process_exec":
            m = _EXEC.search(fields)
            if not m:
                self.unparsed += 1
                return
            if tid == self.root and not self.started:
                self.started = True
                self.ours.add(tid)
            if tid not in self.ours:
                self.other_tasks += 1
                return
            i = self.n
            self.tasks.append((self._keep(), t, pid, tid, schema.TASK_EXEC, int(m.group(3)), m.group(1), 0))
            self.execs.setdefault(pid, []).append(i)
            return
        if tid not in self.ours:
            self.other_tasks += 1
            return
        if event == "sched:sched_process_fork":
            m = _FORK.search(fields)
            if not m:
                self.unparsed += 1
                return
            child = int(m.group(2))
            self.ours.add(child)
            self.tasks.append((self._keep(), t, pid, tid, schema.TASK_FORK, child, "", 0))
        elif event == "sched:sched_process_exit":
            m = _EXIT.search(fields)
            if not m:
                self.unparsed += 1
                return
            self.exits[tid] = self.n
            self.tasks.append((self._keep(), t, pid, tid, schema.TASK_EXIT, 0, "",
                               int(m.group(2) == "true") if m.group(2) else 0))
        elif event in ("exceptions:page_fault_user", "exceptions:page_fault_kernel"):
            kv = dict(f.split("=", 1) for f in fields.split())
            addr = _hex(kv["address"])
            if addr is None or addr >= _USER_LIMIT:
                return                      # a kernel address (%ps prints it as a symbol)
            self.faults.append((self._keep(), t, pid, tid, addr, _hex(kv["ip"]) or 0, int(kv["error_code"], 16)))
        elif event in ("minor-faults", "major-faults", "page-faults"):
            tok = fields.split()
            addr = int(tok[0], 16) if tok else 0
            if event == "page-faults":          # arm64: no exceptions tracepoint
                self.faults.append((self._keep(), t, pid, tid, addr, int(tok[1], 16) if len(tok) > 1 else 0, -1))
            else:
                self.acct.append((self._keep(), t, pid, tid, addr, int(event == "major-faults")))
        elif event.startswith("filemap:mm_filemap_"):
            tok = fields.split()
            major, minor = tok[1].split(":")
            kv = dict(f.split("=", 1) for f in tok[4:])
            op = schema.CACHE_ADD if "add_to" in event else schema.CACHE_DELETE
            self.cache.append((self._keep(), t, pid, tid, op, os.makedev(int(major), int(minor)),
                               int(tok[3], 16), int(kv["ofs"]) // self.page, int(kv["order"]),
                               int(kv["pfn"], 16), -1))
        elif event.startswith("syscalls:sys_enter_"):
            name = event[len("syscalls:sys_enter_"):]
            names, vals = [], []
            for f in fields.split(", ") if fields.strip() else ():
                k, _, v = f.partition(": ")
                names.append(k.strip())
                vals.append(int(v, 16))
            self.syscall_args.setdefault(name, names)
            row = [self._keep(), t, pid, tid, 0, name, (vals + [0] * 6)[:6], 0, 0, -1]
            self.syscalls.append(row)
            self._open[tid] = row
            if name == "mmap" and len(vals) >= 4 and not vals[3] & 0x20:     # not MAP_ANONYMOUS
                self.file_mmaps.setdefault(tid, []).append(row)
        elif event.startswith("syscalls:sys_exit_"):
            name = event[len("syscalls:sys_exit_"):]
            row = self._open.pop(tid, None)
            if row is None or row[5] != name:
                self.unparsed += 1
                return
            ret = int(fields.strip(), 16)
            row[4] = t
            row[7] = ret - (1 << 64) if ret >= 1 << 63 else ret
            row[8] = 1
        else:
            self.unparsed += 1

    def arrays(self, string) -> tuple[dict[str, np.ndarray], list[dict]]:
        """The event sections (schema.EVENT_SECTIONS) and meta["syscalls"]; ``string``
        interns a string (Capture.string)."""
        def arr(rows, dtype):
            a = np.zeros(len(rows), dtype)
            if rows:
                cols = list(zip(*rows))
                for name, col in zip(dtype.names, cols):
                    a[name] = col
            return a
        names = sorted(self.syscall_args, key=lambda n: SYSCALLS.index(n) if n in SYSCALLS else 99)
        nr = {n: i for i, n in enumerate(names)}
        sc = np.zeros(len(self.syscalls), schema.SYSCALL_DTYPE)
        for k, (seq, t, pid, tid, texit, name, args, ret, done, f) in enumerate(self.syscalls):
            sc[k] = (seq, t, pid, tid, texit, nr[name], args, ret, done, f)
        tasks = [(s, t, p, d, op, other, string(name) if name else -1, gd)
                 for s, t, p, d, op, other, name, gd in self.tasks]
        out = {"ev_fault": arr(self.faults, schema.FAULT_DTYPE), "ev_acct": arr(self.acct, schema.ACCT_DTYPE),
               "ev_cache": arr(self.cache, schema.CACHE_EVENT_DTYPE), "ev_syscall": sc,
               "ev_task": arr(tasks, schema.TASK_DTYPE)}
        return out, [{"name": n, "args": self.syscall_args[n]} for n in names]
