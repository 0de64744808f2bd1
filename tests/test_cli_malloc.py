"""The compare command's malloc setting (cli.keep_freed_heap): arrays freed together
are reused by the next batch without new page faults, where glibc's default gives
them back and the next batch faults them in again. Run in child processes: the
setting is process-wide."""
import platform
import subprocess
import sys

import pytest

ROUNDS = r"""
import resource, sys
import numpy as np
from ppsize.cli import keep_freed_heap
if sys.argv[1] == "1":
    assert keep_freed_heap()
def batch():                       # four 1 MiB temporaries, freed together
    a = [np.ones(1 << 17) for _ in range(4)]
    del a
batch(); batch()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    batch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's settings are glibc's")
def test_keep_freed_heap_stops_refaults():
    faults = {on: int(subprocess.run([sys.executable, "-c", ROUNDS, on], capture_output=True, text=True,
                                     check=True).stdout) for on in "01"}
    pages = 5 * 4 * (1 << 20) // 4096
    assert faults["0"] > pages // 2            # the default: each batch faults most of it again
    assert faults["1"] < pages // 20           # kept: reused as it is


def test_only_the_command_sets_it(monkeypatch, tmp_path):
    """cli.command (the console script, ``python -m ppsize``) sets it for compare;
    cli.main, which tests and other programs call in their own process, never does
    (a test process's malloc would keep 128 MiB free and mask out-of-memory tests)."""
    from ppsize import cli
    from test_compare import make_tree
    calls = []
    monkeypatch.setattr(cli, "keep_freed_heap", lambda: calls.append(1) or True)
    make_tree(str(tmp_path), seed=1, n=20)
    assert cli.main(["compare", "--tree", str(tmp_path), "--config", "4K", "-q", "--cpu", "none"]) == 0
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["ppsize", "compare", "--help"])
    with pytest.raises(SystemExit) as e:
        cli.command()
    assert e.value.code == 0 and calls == [1]
    monkeypatch.setattr(sys, "argv", ["ppsize", "geometry", "--help"])
    with pytest.raises(SystemExit):
        cli.command()
    assert calls == [1]
