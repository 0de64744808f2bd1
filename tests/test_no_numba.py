"""Without numba (the optional extra): ppsize, its hooks, policies and generators
import and run; a policy goes through the slow path with one SlowPolicyWarning and
gives the folios the compiled one gives; the generators give the same streams."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import sys, json, warnings
if sys.argv[1] == "blocked":
    sys.modules["numba"] = None                 # import numba -> ImportError
import numpy as np
import ppsize
from ppsize import policies, workloads as W, hooks
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    pol = policies.grow_after_faults(8)
    k = ppsize.Kernel("4K", "64M", thp="never", mthp={"16K": "always", "64K": "always"},
                      anon_order_policy=pol)
    k.anon_order_policy = policies.fixed(2)
    k.anon_order_policy = pol
slow = [str(x.message) for x in w if issubclass(x.category, hooks.SlowPolicyWarning)]
p = k.spawn()
a = p.mmap(4 << 20)
counts = W.run(p, W.sequential(a, 4 << 20, 4096), 1024, write=True)
k.check()
streams = {n: W.__dict__[n](*args).take(300).tolist() for n, args in
           [("uniform", (1 << 30, 1 << 20, 8, 3)), ("zipf", (1 << 30, 1 << 22, 1.1, 4096, 2)),
            ("pointer_chase", (1 << 30, 1 << 16, 64, 1)), ("gups", (1 << 30, 1 << 16, 5)),
            ("hash_join", (1 << 30, 1 << 20, 1 << 32, 1 << 16, 64, 16, 4))]}
print(json.dumps({"numba": hooks.have_numba(), "compiled": bool(pol.address), "slow": slow,
                  "mthp": k.mthp_stats(), "counts": counts, "streams": streams}))
"""


def _run(mode):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_everything_runs_without_numba_and_agrees():
    without = _run("blocked")
    assert without["numba"] is False and without["compiled"] is False
    assert len(without["slow"]) == 1 and "numba is not installed" in without["slow"][0]
    assert without["counts"]["fault"] == 1024 - without["counts"]["hit"]
    assert len(without["mthp"]) >= 2                       # the policy grew the orders
    try:
        import numba  # noqa: F401
    except ImportError:
        return
    with_numba = _run("numba")
    assert with_numba["compiled"] is True and with_numba["slow"] == []
    assert with_numba["mthp"] == without["mthp"] and with_numba["counts"] == without["counts"]
    assert with_numba["streams"] == without["streams"]
