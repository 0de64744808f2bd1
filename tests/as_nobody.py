"""Run the CLI in a forked child that gave up root: as root every file is readable,
so permission errors can only be seen as another user (nobody)."""
import os
import sys

from ppsize import cli


def main_as_nobody(argv):
    """main(argv) in a forked child that gave up root (as root every directory is
    readable): (exit status, stderr)."""
    import ppsize.compare  # noqa: F401  (nobody cannot read the interpreter's lazily imported modules)
    cli.build_parser()                             # imports every subcommand's module
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: never returns to pytest
        try:
            os.close(r)
            sys.stderr = os.fdopen(wfd, "w", buffering=1)
            os.setgid(65534)
            os.setuid(65534)
            rc = cli.main(argv)
            sys.stderr.flush()
        except BaseException as e:
            print(f"child: {type(e).__name__}: {e}", file=sys.stderr)
            rc = 99
        os._exit(rc)
    os.close(wfd)
    err = os.read(r, 65536).decode()
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status), err
