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
