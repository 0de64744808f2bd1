"""The ``ppsize`` command. Each subcommand lives in its own module, which provides
``add_parser(subparsers)`` and ``run(args) -> int``."""
from __future__ import annotations

import argparse
import importlib
import os
import stat
import sys

# subcommand -> module (imported only when needed)
SUBCOMMANDS = {
    "compare": "ppsize.cmd_compare",
    "geometry": "ppsize.cmd_geometry",
    "inspect": "ppsize.cmd_inspect",
    "plot": "ppsize.cmd_plot",
    "race": "ppsize.race.cli",
    "record": "ppsize.cmd_record",
    "replay": "ppsize.cmd_replay",
    "snapshot": "ppsize.cmd_snapshot",
    "sweep": "ppsize.cmd_sweep",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):          # bad arguments: exit 2 with one line
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def fail(command: str, message) -> int:
    """The CLI's one-line error: ``ppsize COMMAND: message`` on stderr, status 2."""
    print(f"ppsize {command}: {message}", file=sys.stderr)
    return 2


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISREG, "a regular file"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def output_error(path: str):
    """Why ``path`` cannot take an output file (None if it can), checked before any
    work: it must be a regular file or a character device (/dev/null) we can open
    for writing, or a new name in a writable directory. Nothing is created or
    truncated; a FIFO is refused (opening it would wait for a reader)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            return f"cannot write {path}: directory {parent} does not exist"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot write {path}: directory {parent} is not writable"
        return None
    except OSError as e:
        return f"cannot write {path}: {e.strerror}"
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        return f"cannot write {path}: it is {file_kind(st.st_mode)}"
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
    except OSError as e:
        return f"cannot write {path}: {e.strerror}"
    return None


def input_dir_error(path: str, what: str = "tree"):
    """Why ``path`` cannot be read as a directory tree (None if it can): missing,
    behind an unreadable directory, not a directory, or unreadable itself."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{what} {path!r} does not exist"
    except PermissionError:
        return f"{what} {path!r} cannot be read: a directory on its path is not searchable (permission denied)"
    except OSError as e:
        return f"{what} {path!r} cannot be read: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{what} {path!r} is {file_kind(st.st_mode)}, not a directory"
    try:
        with os.scandir(path) as it:
            next(it, None)
    except OSError as e:
        return f"{what} {path!r} cannot be read: {e.strerror}"
    return None


def build_parser(only=None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or (``only``: a name of SUBCOMMANDS) of that one
    alone: its module is the only one imported (``main`` does this when the first
    argument names a subcommand; ``ppsize --help`` and errors list them all)."""
    parser = _Parser(prog="ppsize", description="Memory model of Linux with a per-process page size: "
                     "compare kernel configurations, page-table geometries and page-cache races.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:      # a subcommand still being written
            if e.name and module.startswith(e.name):
                continue
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc <malloc.h>


def keep_freed_heap() -> bool:
    """Let glibc's malloc keep freed memory for the next allocation: blocks under 32
    MiB from the heap (not a mapping each), the heap trimmed only past 128 MiB free.
    compare allocates and frees NumPy arrays of 0.1-4 MiB in every batch and every
    Kernel (access outcomes, addresses, the small per-frame arrays); by default glibc
    unmaps or trims them, and the next batch faults the same memory in again
    (compare /usr /etc: 117k minor faults with the default, 93k with this; peak RSS
    +15 MiB). Process-wide, so only the command calls it (:func:`command`, not
    :func:`main`, which tests and other programs call in their own process). False
    where there is no glibc mallopt."""
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 128 << 20))
    except (OSError, AttributeError):
        return False


def command() -> int:
    """The ``ppsize`` command (console script, ``python -m ppsize``): the process-wide
    settings a subcommand wants, then :func:`main`."""
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        # compare does no linear algebra, but OpenBLAS (loaded with NumPy) starts a thread per
        # core that busy-waits for work (~0.1 s of a core at start-up): one, unless the user
        # says otherwise (only here: record's and replay's children keep the user's environment)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        keep_freed_heap()
    return main()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        return args._run(args)
    except BrokenPipeError:
        return 0
    except (OSError, MemoryError) as e:     # the environment, not a bug: one line, status 2
        return fail(args.command, f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    sys.exit(command())
