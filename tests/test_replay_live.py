"""Opt-in (--live): programs this project did not write, recorded with ``ppsize record``
on this machine and replayed on the model's 4K kernel; the model against the recording
(issue 10 item 4): VmRSS within 1%, VmPTE and AnonHugePages exact, minflt within 2%,
per process and for the whole program. Needs perf, root and the programs (python3 with
numpy, gcc's cc1, sort, xz, make)."""
import os
import random
import shutil
import sys

import pytest

from ppsize.recording import record
from ppsize.recording.replay import replay

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(shutil.which("perf") is None or os.geteuid() != 0,
                                 reason="needs perf and root")]


def _inputs(d):
    random.seed(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    with open(d / "lines.txt", "w") as f:
        for _ in range(100_000):
            f.write("".join(random.choice(letters) for _ in range(20)) + "\n")
    with open(d / "big.c", "w") as f:
        for i in range(1500):
            f.write(f"int f{i}(int x) {{ int s = 0; for (int i = 0; i < x; i++) s += i * {i} ^ (s >> 3); "
                    f"return s + {i}; }}\n")
    tree = d / "tree"
    tree.mkdir()
    for i in range(4):
        (tree / f"m{i}.c").write_text("".join(f"int g{i}_{j}(int x) {{ return x * {j} + {i}; }}\n"
                                              for j in range(300)))
    (tree / "Makefile").write_text("OBJS = m0.o m1.o m2.o m3.o\nall: $(OBJS)\n\t$(CC) -shared -o libm.so "
                                   "$(OBJS)\n%.o: %.c\n\t$(CC) -O1 -fPIC -c $< -o $@\n")


PROGRAMS = {
    # numpy arrays alive at exit (os._exit: no teardown frees them first)
    "python3-numpy": lambda d: [sys.executable, "-c", "import numpy as np, os; a = np.ones(6_000_000); "
                                "b = a * 2; print(b.sum(), flush=True); os._exit(0)"],
    "cc1": lambda d: ["gcc", "-O1", "-c", str(d / "big.c"), "-o", str(d / "big.o")],
    "sort": lambda d: ["sort", "-S", "50M", "-o", str(d / "sorted.txt"), str(d / "lines.txt")],
    "xz": lambda d: ["xz", "-6", "-k", "-f", str(d / "lines.txt")],
    "make-j2": lambda d: ["make", "-s", "-j2", "-C", str(d / "tree")],
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    _inputs(d)
    return d


def _within(model, truth, rel):
    return abs(model - truth) <= rel * truth


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_replay_matches_the_recording(name, inputs):
    cmd = PROGRAMS[name](inputs)
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} not installed")
    if name == "python3-numpy":
        pytest.importorskip("numpy")
    path = inputs / f"{name}.ppw"
    w = record(cmd, path)
    assert not w.partial, w.problems
    r = replay(w, "4K", check=True)
    assert r.procs, "no process was replayed"
    rows = [(f"pid {p.pid} {p.comm}", p.model, p.truth) for p in r.procs]
    rows.append(("total", r.totals("model"), r.totals("truth")))
    for what, m, t in rows:
        assert _within(m["VmRSS"], t["VmRSS"], 0.01), (what, m, t)
        assert m["VmPTE"] == t["VmPTE"], (what, m, t)
        assert m["AnonHugePages"] == t["AnonHugePages"], (what, m, t)
        assert _within(m["minflt"], t["minflt"], 0.02), (what, m, t)
    if name == "make-j2":
        assert len(r.procs) >= 5                 # make, cc, cc1, as, collect2/ld: fork + exec
