"""``ppsize compare`` end to end over a real tree (default /usr; PPSIZE_BENCH_TREE
overrides, e.g. "/usr /etc"): the command run in a subprocess, timed by
pytest-benchmark (one round: it takes seconds), with its peak RSS (ru_maxrss from
wait4) and where the time went (scan, and per configuration: Kernel + create_file,
the full reads, the workload), from the command's own JSON.

Goal: hundreds of thousands of files in well under a minute.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import note, record

TREES = os.environ.get("PPSIZE_BENCH_TREE", "/usr").split()
ROOT = os.path.join(os.path.dirname(__file__), "..")


def run_compare(trees, out):
    """Run ``python -m ppsize compare`` in a child; (seconds, peak RSS kB, rc)."""
    argv = [sys.executable, "-m", "ppsize", "compare", "-q", "--json", out]
    for t in trees:
        argv += ["--tree", t]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(ROOT))
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    err = child.stderr.read().decode()
    child.stderr.close()
    return seconds, usage.ru_maxrss, child.returncode, err


@pytest.mark.skipif(not all(os.path.isdir(t) for t in TREES), reason=f"no {TREES}")
def test_compare_tree(benchmark):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "compare.json")
        box = {}

        def once():
            box["run"] = run_compare(TREES, out)

        benchmark.pedantic(once, rounds=1, iterations=1)
        seconds, maxrss, rc, err = box["run"]
        assert rc == 0, err
        with open(out) as f:
            data = json.load(f)
    files = data["scan"]["files"]
    record(benchmark, "compare", " ".join(TREES), "ppsize", files)
    benchmark.extra_info.update(files=files, wall_s=seconds, peak_rss_kB=maxrss,
                                scan_s=data["scan"]["seconds"])
    parts = {"create": 0.0, "read": 0.0, "workload": 0.0}
    for c in data["configs"]:
        for k in parts:
            parts[k] += c["seconds"].get(k, 0.0)
    note(f"ppsize compare {' '.join(TREES)}: {files:,} files, {data['scan']['bytes'] / 2**30:.2f} GiB, "
         f"{len(data['configs'])} configurations: wall {seconds:.1f} s, peak RSS {maxrss / 1024:.0f} MiB "
         f"(model memory {data['memory'] >> 30} G); scan {data['scan']['seconds']:.1f} s, "
         f"Kernel+create_file {parts['create']:.1f} s, full reads {parts['read']:.1f} s, "
         f"workload {parts['workload']:.1f} s")
