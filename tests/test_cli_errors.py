"""Class 5 of issue 15: every bad argument or environment gets exit status 2 and one
line on stderr, never a traceback and never 1 (``ppsize race``'s "bug found"). Each
case runs ``python -m ppsize`` as a subprocess."""
import os
import socket
import subprocess
import sys

import pytest

from as_nobody import main_as_nobody
from ppsize import cli
from ppsize.compare import MAX_PROCESSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    (base / "empty").mkdir()
    (base / "afile").write_text("hi\n")
    (base / "tree").mkdir()
    (base / "tree" / "lib.so").write_text("x" * 5000)
    os.mkfifo(base / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(base / "sock"))
    yield str(base)
    s.close()


CASES = [
    # unwritable --json / -o for every subcommand that writes a file
    ("compare --tree {d}/tree --json /nonexistent/x.json", "directory /nonexistent does not exist"),
    ("compare --tree {d}/tree --json {d}/empty", "it is a directory"),
    ("compare --tree {d}/tree --json {d}/fifo", "it is a FIFO"),
    ("race --policy drop-all --json /nonexistent/x.json", "directory /nonexistent does not exist"),
    ("race --policy drop-all --json {d}/fifo", "it is a FIFO"),
    ("race --policy drop-all --sweep --json /nonexistent/x.json", "directory /nonexistent does not exist"),
    ("snapshot --pid 1 -o /nonexistent/x.ppw", "directory /nonexistent does not exist"),
    ("snapshot --pid 1 -o {d}/sock", "it is a socket"),
    ("record -o /nonexistent/x.ppw -- true", "directory /nonexistent does not exist"),
    ("record -o {d}/fifo -- true", "it is a FIFO"),
    # absurd --processes, bounded before anything is scanned
    ("compare --tree {d}/tree --processes 0", f"--processes must be in 1..{MAX_PROCESSES}"),
    ("compare --tree /usr --processes 1000000000000", f"--processes must be in 1..{MAX_PROCESSES}, not 1000000000000"),
    ("compare --processes x", "invalid int value"),
    # trees that are not readable directories
    ("compare --tree {d}/fifo", "is a FIFO, not a directory"),
    ("compare --tree {d}/sock", "is a socket, not a directory"),
    ("compare --tree {d}/afile", "is a regular file, not a directory"),
    ("compare --tree {d}/missing", "does not exist"),
    ("compare --tree {d}/empty", "read no regular file"),
    ("snapshot --cache {d}/afile -o {d}/x.ppw", "is a regular file, not a directory"),
    # inputs that are not recordings (a FIFO would block the open)
    ("inspect {d}/fifo", "it is a FIFO, not a recording file"),
    ("inspect {d}/sock", "it is a socket"),
    ("inspect {d}/empty", "it is a directory"),
    ("inspect {d}/missing", "No such file"),
    # argparse errors: one line, not the usage block
    ("compare --cpu zz", "invalid choice: 'zz'"),
    ("race --max-states -1", "the bound must be at least 1"),
    ("nosuch", "invalid choice: 'nosuch'"),
    ("", "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[c[0] or "no-command" for c in CASES])
def test_exit_2_one_line(d, argv, message):
    args = argv.format(d=d).split()
    r = subprocess.run([sys.executable, "-m", "ppsize", *args], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    lines = r.stderr.splitlines()
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert lines[0].startswith("ppsize")


def _main_err(capsys, argv):
    status = cli.main(argv)
    err = capsys.readouterr().err.splitlines()
    return status, err


@pytest.fixture
def locked():
    import shutil
    import tempfile
    base = tempfile.mkdtemp(dir="/tmp")            # reachable by nobody
    os.chmod(base, 0o755)
    for sub in ("noread", "nosearch"):
        os.makedirs(os.path.join(base, sub, "tree"))
        with open(os.path.join(base, sub, "tree", "f.so"), "w") as f:
            f.write("x" * 5000)
    os.chmod(os.path.join(base, "noread", "tree"), 0o311)     # searchable, not listable
    os.chmod(os.path.join(base, "nosearch"), 0o600)           # nothing below is reachable
    yield base
    os.chmod(os.path.join(base, "nosearch"), 0o755)
    shutil.rmtree(base)


def test_unreadable_tree_root(locked):
    if os.getuid() != 0:
        pytest.skip("needs root to give up privileges")
    status, err = main_as_nobody(["compare", "--tree", os.path.join(locked, "noread", "tree")])
    assert status == 2 and err.count("\n") == 1 and "cannot be read: Permission denied" in err, err


def test_tree_behind_unsearchable_directory(locked):
    """stat fails with EACCES: reported as unreadable, not as missing."""
    if os.getuid() != 0:
        pytest.skip("needs root to give up privileges")
    status, err = main_as_nobody(["compare", "--tree", os.path.join(locked, "nosearch", "tree")])
    assert status == 2 and err.count("\n") == 1, err
    assert "not searchable (permission denied)" in err and "does not exist" not in err


def test_oserror_from_the_environment_is_one_line(monkeypatch, capsys):
    """An OSError no subcommand anticipated (here: /proc unreadable) is one line, exit 2."""
    import ppsize.cmd_geometry as g

    def boom(args):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(g, "run", boom)
    status, err = _main_err(capsys, ["geometry"])
    assert status == 2 and err == ["ppsize geometry: OSError: [Errno 5] Input/output error"]


def test_output_error_creates_nothing(tmp_path):
    p = tmp_path / "new.json"
    assert cli.output_error(str(p)) is None
    assert not p.exists()
    p.write_text("keep")
    assert cli.output_error(str(p)) is None
    assert p.read_text() == "keep"                      # not truncated
    assert cli.output_error("/dev/null") is None
