"""``record``: run a command and record what the real kernel did for it.

Two modes, one file format (kind "record"):

* **events** (default): ``perf record`` of the command's tasks with the tracepoints
  exceptions:page_fault_user and page_fault_kernel (x86-64; arm64 has no such tracepoint,
  so there the software event ``page-faults`` gives the address but no error code), the
  software events minor-faults / major-faults (mm_account_fault: the faults minflt and
  majflt count), filemap:mm_filemap_add_to_page_cache / delete_from_page_cache,
  syscalls:sys_enter_/sys_exit_ of the memory syscalls (perfscript.SYSCALLS) and
  sched:sched_process_fork / exec / exit.
* **accesses** (``accesses=True``): valgrind's lackey (``--trace-mem=yes``) instead of
  perf: every instruction fetch, load, store and modify of the command's process (not of
  its children: ``--trace-children=no --child-silent-after-fork=yes``), parsed while it
  runs (``lackey``) and streamed into the recording.

In both modes the command runs under a small ptrace helper (tracer.c, compiled with the
system C compiler on first use and cached): every task stops after each execve (the new
layout is snapshotted: smaps, pagemap, kpageflags and the mapped files' page cache), before
each file mmap (seccomp; the file's page-cache residency is captured before the command
touches it, for replay to seed) and at the exit of each process's last thread (the final
status, smaps and minflt/majflt, memory still intact: PTRACE_EVENT_EXIT comes before
exit_mm). The snapshots and file captures take their place in the event order (``seq``).

What is not recorded: page-cache deletions done by other tasks (reclaim by kswapd, another
process truncating); faults taken through get_user_pages (MAP_POPULATE, mlock,
MADV_POPULATE_*), which minflt counts but no perf event reports; the perf and valgrind
processes' own work.
"""
from __future__ import annotations

import hashlib
import os
import platform
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import filecache, lackey, schema
from .capture import AccessDenied, Capture, NoSuchProcess
from .format import Writer
from .perfscript import SEQ_AFTER, SEQ_BEFORE, SYSCALLS, PerfScriptParser, seq_of

__all__ = ["record", "RecordError", "tracer_path", "perf_events"]

_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_SRC = Path(__file__).with_name("tracer.c")


class RecordError(RuntimeError):
    """``record`` cannot run: a missing tool, a permission, a failed helper. The message
    names the package or the permission."""


# ---------------------------------------------------------------- the ptrace helper
def _cache_dir() -> Path:
    base = os.environ.get("PPSIZE_CACHE") or os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    d = Path(base) / "ppsize"
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = Path(tempfile.gettempdir()) / f"ppsize-{os.getuid()}"
    d.mkdir(exist_ok=True)
    return d


def tracer_path() -> str:
    """The compiled ptrace helper (built from tracer.c once per source and compiler)."""
    want = os.environ.get("CC")
    cc = shutil.which(want) if want else (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"))
    if not cc:
        raise RecordError("no C compiler to build the ptrace helper (tracer.c): install gcc "
                          f"(Debian: build-essential) or set $CC{f' ({want!r} was not found)' if want else ''}")
    src = _SRC.read_bytes()
    key = hashlib.sha256(src + cc.encode() + platform.machine().encode()).hexdigest()[:16]
    exe = _cache_dir() / f"ppsize-tracer-{key}"
    if exe.exists():
        return str(exe)
    fd, tmp = tempfile.mkstemp(prefix=".ppsize-tracer-", dir=exe.parent)
    os.close(fd)
    try:
        res = subprocess.run([cc, "-O2", "-Wall", "-o", tmp, str(_SRC)], capture_output=True, text=True)
        if res.returncode:
            raise RecordError(f"building the ptrace helper failed ({cc}): " + res.stderr.strip().splitlines()[-1]
                              if res.stderr.strip() else f"building the ptrace helper with {cc} failed")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(exe)


# ---------------------------------------------------------------- perf
def _tracefs() -> str | None:
    for d in _TRACEFS:
        if os.path.isdir(os.path.join(d, "events")):
            return d
    return None


def _have_tracepoint(name: str) -> bool | None:
    """Whether tracepoint "group:event" exists (None: tracefs not readable)."""
    d = _tracefs()
    if d is None:
        return None
    return os.path.isdir(os.path.join(d, "events", *name.split(":")))


def perf_events(fault_event: str = "auto") -> tuple[list[str], dict]:
    """The perf -e list of a recording and a description for the metadata.
    ``fault_event``: "tracepoint" (exceptions:page_fault_*), "sw" (the page-faults software
    event, address only: what arm64 offers) or "auto" (the tracepoint where it exists)."""
    if fault_event == "auto":
        fault_event = "sw" if _have_tracepoint("exceptions:page_fault_user") is False else "tracepoint"
    if fault_event not in ("tracepoint", "sw"):
        raise ValueError(f"fault_event must be 'auto', 'tracepoint' or 'sw', not {fault_event!r}")
    ev = (["exceptions:page_fault_user", "exceptions:page_fault_kernel"] if fault_event == "tracepoint"
          else ["page-faults"])
    ev += ["minor-faults", "major-faults", "filemap:mm_filemap_add_to_page_cache",
           "filemap:mm_filemap_delete_from_page_cache",
           "sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit"]
    missing = []
    for s in SYSCALLS:
        have = _have_tracepoint(f"syscalls:sys_enter_{s}")
        if have is False:
            missing.append(s)
            continue
        ev += [f"syscalls:sys_enter_{s}", f"syscalls:sys_exit_{s}"]
    return ev, {"fault_event": fault_event, "events": ev, "syscalls_missing": missing}


def _perf_problem(perf: str, text: str) -> str:
    """A one-line reason from perf's error output."""
    low = text.lower()
    try:
        paranoid = Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()
    except OSError:
        paranoid = "?"
    if any(s in low for s in ("permission", "access to performance monitoring", "no permission",
                              "not permitted", "perf_event_paranoid")):
        return (f"perf is not permitted to open tracepoints (kernel.perf_event_paranoid = {paranoid}, "
                f"euid {os.geteuid()}): run as root, or grant CAP_PERFMON, set "
                "kernel.perf_event_paranoid to -1 and make /sys/kernel/tracing readable")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{perf} record failed: " + (lines[0] if lines else "no message")


def find_perf(perf: str | None = None) -> str:
    p = shutil.which(perf or "perf")
    if p is None:
        raise RecordError(f"{perf or 'perf'} not found: install perf (Debian: linux-perf; "
                          "Ubuntu: linux-tools-$(uname -r); Fedora: perf)")
    return p


def find_valgrind(valgrind: str | None = None) -> str:
    p = shutil.which(valgrind or "valgrind")
    if p is None:
        raise RecordError(f"{valgrind or 'valgrind'} not found: install valgrind (Debian package valgrind)")
    return p


# ---------------------------------------------------------------- the session
class _Session:
    """Answers the tracer's stops: snapshots at exec and exit, file captures at mmap."""

    def __init__(self, cap: Capture, ack_fd: int):
        self.cap = cap
        self.ack_fd = ack_fd
        self.buf = b""
        self.root = None
        self.status = None
        self.error = None
        self.execs: dict[int, list] = {}        # pid -> [(info, files created)] in exec order
        self.exits: dict[int, tuple] = {}       # tid -> (info, files created)
        self.mmaps: dict[int, list] = {}        # tid -> [(fd, file index)] in order
        self.problems = cap.problems            # what went wrong goes into the recording

    def _snap(self, pid, when, tgid=None):
        before = self.cap.nfiles
        try:
            info = self.cap.add_process(pid, when=when, tgid=tgid)
        except (NoSuchProcess, AccessDenied) as e:
            self.problems.append(f"{when} snapshot of {pid}: {e}")
            return None
        return info, range(before, self.cap.nfiles)

    def _mmap(self, tid, fd):
        path = f"/proc/{tid}/fd/{fd}"
        try:
            st = os.stat(path)
            name = os.readlink(path)
        except OSError:
            return -1                  # a bad fd: the mmap will fail with EBADF
        return self.cap.add_file(st.st_dev, st.st_ino, name, lambda: filecache.open_file(path))

    def handle(self, line: str) -> None:
        f = line.split()
        kind = f[0]
        needs_ack = kind in ("exec", "mmap") or (kind == "exit" and f[3] == "1")
        try:
            if kind == "start":
                self.root = int(f[1])
            elif kind == "exec":
                self.execs.setdefault(int(f[1]), []).append(self._snap(int(f[1]), "exec"))
            elif kind == "mmap":
                self.mmaps.setdefault(int(f[1]), []).append((int(f[2]), self._mmap(int(f[1]), int(f[2]))))
            elif kind == "exit" and f[3] == "1":
                self.exits[int(f[1])] = self._snap(int(f[1]), "exit", tgid=int(f[2]))
            elif kind == "status":
                self.status = int(f[2])
            elif kind == "error":
                self.error = line[len("error "):].strip()
        finally:
            if needs_ack:
                os.write(self.ack_fd, b"k")

    def feed(self, data: bytes) -> None:
        """What the tracer wrote (b"" at its end)."""
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for ln in lines:
            if ln:
                self.handle(ln.decode(errors="replace"))

    def place(self, parser: PerfScriptParser | None) -> None:
        """Give the snapshots and file captures their seq next to their events."""
        last = seq_of(parser.n if parser else 0, SEQ_BEFORE)
        for pid, snaps in self.execs.items():
            idx = parser.execs.get(pid, []) if parser else []
            for k, s in enumerate(snaps):
                if s is not None:
                    self._set(s, seq_of(idx[k], SEQ_AFTER) if k < len(idx) else last)
        for tid, s in self.exits.items():
            if s is not None:
                i = parser.exits.get(tid) if parser else None
                self._set(s, seq_of(i, SEQ_BEFORE) if i is not None else last)
        for tid, caps in self.mmaps.items():
            rows = parser.file_mmaps.get(tid, []) if parser else []
            for k, (fd, fi) in enumerate(caps):
                row = rows[k] if k < len(rows) else None
                matched = row is not None and row[6][4] & 0xFFFFFFFF == fd & 0xFFFFFFFF
                if matched:
                    row[9] = fi
                if fi >= 0:
                    self.cap.set_file_seq(fi, row[0] + SEQ_BEFORE if matched else last, first=True)

    def _set(self, snap, seq):
        info, files = snap
        info["seq"] = seq
        for i in files:
            self.cap.set_file_seq(i, seq)


def _run_traced(argv: list[str], cap: Capture, prefix: list[str], extra_fd=None, on_extra=None,
                seccomp=True, own_stderr=False) -> tuple[_Session, subprocess.Popen, str]:
    """Run ``prefix + [tracer, R, A, seccomp, E, --] + argv`` and serve the tracer until
    it exits, reading ``extra_fd`` (the lackey pipe: (read end, write end)) meanwhile.
    With ``own_stderr`` the command keeps this process's stderr while the stderr of the
    prefix (perf) is collected and returned."""
    r_rep, w_rep = os.pipe()
    r_ack, w_ack = os.pipe()
    err_fd = os.dup(2) if own_stderr else -1
    pass_fds = [w_rep, r_ack] + ([extra_fd[1]] if extra_fd else []) + ([err_fd] if own_stderr else [])
    full = prefix + [tracer_path(), str(w_rep), str(r_ack), "1" if seccomp else "0", str(err_fd), "--"] + argv
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, lambda *a: None) if main else None   # Ctrl-C: the command's
    try:
        proc = subprocess.Popen(full, pass_fds=pass_fds, stderr=subprocess.PIPE if own_stderr else None)
    except OSError as e:
        if main:
            signal.signal(signal.SIGINT, old)
        raise RecordError(f"cannot run {full[0]}: {e.strerror}") from None
    finally:
        for fd in [w_rep, r_ack] + ([extra_fd[1]] if extra_fd else []) + ([err_fd] if own_stderr else []):
            os.close(fd)
    sess = _Session(cap, w_ack)
    errors = bytearray()

    def on_stderr(data):
        errors.extend(data)
        del errors[:-65536]
    handlers = {r_rep: sess.feed}
    if extra_fd:
        handlers[extra_fd[0]] = on_extra
    if own_stderr:
        handlers[proc.stderr.fileno()] = on_stderr
    sel = selectors.DefaultSelector()
    for fd in handlers:
        sel.register(fd, selectors.EVENT_READ)
    try:
        while handlers:
            for key, _ in sel.select():
                data = os.read(key.fd, 1 << 20)
                handlers[key.fd](data)
                if not data:
                    sel.unregister(key.fd)
                    del handlers[key.fd]
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
        sel.close()
        os.close(w_ack)
        os.close(r_rep)
        if extra_fd:
            os.close(extra_fd[0])
        if own_stderr:
            proc.stderr.close()
    text = errors.decode(errors="replace")
    if sess.error:
        raise RecordError(f"the ptrace helper failed: {sess.error}")
    if sess.root is None:
        if own_stderr:
            raise RecordError(_perf_problem(prefix[0], text))
        raise RecordError(f"the ptrace helper did not start the command (exit status {proc.returncode})")
    return sess, proc, text


def _exit_status(wait_status) -> int | None:
    if wait_status is None:
        return None
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return None


def record(cmd, path, accesses: bool = False, perf: str | None = None, valgrind: str | None = None,
           fault_event: str = "auto", mmap_pages: str = "16M", probe: bool = True, seccomp: bool = True):
    """Run ``cmd`` (a list: program and arguments) and write its recording to ``path``;
    return the ``Workload``. RecordError when perf/valgrind/a C compiler is missing or
    not permitted (the message names the package or the permission). The command's own
    exit status is ``workload.capture["exit_status"]`` (negative: killed by that signal)."""
    cmd = [os.fspath(c) for c in cmd]
    if not cmd:
        raise ValueError("no command to record")
    if shutil.which(cmd[0]) is None:
        raise RecordError(f"command not found: {cmd[0]}")
    t0 = time.perf_counter()
    tool = find_valgrind(valgrind) if accesses else find_perf(perf)
    tracer_path()                                   # build errors before anything runs
    path = os.fspath(path)
    capture = {"tool": "record", "command": cmd, "mode": "accesses" if accesses else "events",
               "seccomp": seccomp}
    with Capture(probe=probe) as cap:
        if accesses:
            return _record_accesses(cmd, path, tool, cap, capture, t0, seccomp)
        events, desc = perf_events(fault_event)
        capture.update(desc)
        out_dir = os.path.dirname(os.path.abspath(path))
        with tempfile.TemporaryDirectory(prefix=".ppsize-record-", dir=out_dir) as tmp:
            data = os.path.join(tmp, "perf.data")
            prefix = [tool, "record", "-q", "--no-bpf-event", "-o", data, "-B", "-N", "-c", "1", "-d",
                      "-m", mmap_pages]
            for e in events:
                prefix += ["-e", e]
            prefix += ["--"]
            sess, proc, perf_err = _run_traced(cmd, cap, prefix, seccomp=seccomp, own_stderr=True)
            if perf_err.strip():
                capture["perf_messages"] = perf_err.strip().splitlines()[-20:]
            capture["exit_status"] = _exit_status(sess.status)
            capture["run_s"] = time.perf_counter() - t0
            parser = PerfScriptParser(sess.root)
            script = subprocess.Popen([tool, "script", "-i", data, "--ns", "--show-lost-events",
                                       "-F", "trace:pid,tid,time,event,trace",
                                       "-F", "sw:pid,tid,time,event,addr,ip"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      errors="replace")
            for line in script.stdout:
                parser.feed(line)
            err = script.stderr.read()
            if script.wait() != 0:
                raise RecordError(f"{tool} script failed: {err.strip().splitlines()[-1] if err.strip() else script.returncode}")
        sess.place(parser)
        ev, syscalls = parser.arrays(cap.string)
        c = ev["ev_cache"]
        for dev, ino in {(int(d), int(i)) for d, i in zip(c["dev"], c["inode"])}:
            c["file"][(c["dev"] == dev) & (c["inode"] == ino)] = cap.file_index(dev, ino)
        capture.update(duration_s=time.perf_counter() - t0, lost_events=parser.lost,
                       unparsed_lines=parser.unparsed, root=sess.root,
                       events_counted={k: len(a) for k, a in ev.items()})
        reasons = [f"perf lost {parser.lost} events (its buffers overflowed: raise --mmap-pages): "
                   "the event stream has gaps"] if parser.lost else []
        return _loaded(cap.finish("record", capture, extra=ev, path=path, syscalls=syscalls,
                                  partial_reasons=reasons))


def _loaded(w):
    """The recording as read back from its file (memory-mapped arrays)."""
    from .workload import load
    return load(w.path)


def _record_accesses(cmd, path, valgrind, cap, capture, t0, seccomp):
    r, wfd = os.pipe()
    parser = lackey.LackeyParser(source=f"lackey output of {cmd[0]}")
    writer = Writer(path, "record")
    try:
        stream = writer.stream("accesses", schema.ACCESS_DTYPE)
        vg = [valgrind, "--tool=lackey", "--trace-mem=yes", f"--log-fd={wfd}", "--trace-children=no",
              "--child-silent-after-fork=yes"]

        def on_data(data):
            stream.append(parser.feed(data) if data else parser.close())
        sess, proc, _ = _run_traced(vg + cmd, cap, [], extra_fd=(r, wfd), on_extra=on_data, seccomp=seccomp)
        stream.close()
        capture.update(exit_status=_exit_status(sess.status), duration_s=time.perf_counter() - t0,
                       root=sess.root, accesses=parser.records, lackey_messages=parser.messages,
                       parser=lackey.PARSER, valgrind=valgrind)
        sess.place(None)
        capture["note"] = "the process snapshots show valgrind's address space: the command's mappings and valgrind's own"
        return _loaded(cap.finish("record", capture, writer=writer, syscalls=[]))
    except BaseException:
        writer.abort()
        raise


def record_lackey_log(log, path):
    """Convert an existing lackey --trace-mem=yes log file into a recording (accesses only)."""
    t0 = time.perf_counter()
    with Capture(probe=False) as cap:
        writer = Writer(path, "record")
        try:
            stream = writer.stream("accesses", schema.ACCESS_DTYPE)
            n = lackey.read_log(log, sink=stream.append)
            stream.close()
            capture = {"tool": "record", "mode": "accesses", "lackey_log": os.fspath(log), "accesses": n,
                       "parser": lackey.PARSER, "duration_s": time.perf_counter() - t0}
            return _loaded(cap.finish("record", capture, writer=writer, syscalls=[]))
        except BaseException:
            writer.abort()
            raise
