"""compare's batch path (issue 13 item 6): the scanned files created in one call
(PageCache.create_files: one nogil loop) and read by id range give the state and
the figures of one create_file call and one read per file (the path compare had),
on a real tree; compare never loads numba; the lazily made Files keep their paths."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ppsize
import ppsize.compare as cmp
from ppsize.compare import run as run_mod

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = [t for t in ("/etc", "/usr/include", "/usr/share/doc") if os.path.isdir(t)]
pytestmark = pytest.mark.skipif(not TREES, reason="no real tree to scan")


@pytest.fixture(scope="module")
def scan():
    s = cmp.scan_trees(TREES)
    assert s.nr_files > 100
    return s


def _per_file_create(k, scan, bar):
    """compare's file creation before the batch: one Kernel.create_file per scanned file."""
    names = scan.names
    return [k.create_file(names.get(i) or f"#{i}", int(s)) for i, s in enumerate(scan.sizes)]


def _per_file_read(k, files, bar):
    for f in files:
        k.pagecache.read_all([f])


def _state(k):
    """Every frame's folio fields, every file's address_space, the counters."""
    pc = k.pagecache
    fo = {name: a.copy() for name, a in k.core.folios.as_numpy().items()}
    files = [pc.core.file_info(i) for i in range(len(pc.files))]
    return fo, files, pc.core.counters(), k.meminfo()


def _same(a, b):
    fa, files_a, ca, ma = a
    fb, files_b, cb, mb = b
    for name in fa:
        np.testing.assert_array_equal(fa[name], fb[name], err_msg=name)
    assert files_a == files_b
    assert ca == cb and ma == mb


@pytest.mark.parametrize("page", ["4K", "64K"])
def test_batch_create_and_read_is_per_file_state(scan, page):
    k1 = ppsize.Kernel(page, "2G", thp="never")
    ids = k1.create_files(scan.sizes, scan.names)
    assert ids == range(scan.nr_files)
    k1.pagecache.read_all(ids)
    k2 = ppsize.Kernel(page, "2G", thp="never")
    files = [k2.create_file(scan.names.get(i) or f"#{i}", int(s)) for i, s in enumerate(scan.sizes)]
    for f in files:
        k2.pagecache.read_all([f])
    _same(_state(k1), _state(k2))
    assert [f.path for f in k1.pagecache.files] == [f.path for f in files]
    k1.check()


@pytest.mark.parametrize("key", ["4K", "64K", "4K+64K-emulated"])
def test_run_config_figures_are_the_per_file_path(scan, key, monkeypatch):
    w = cmp.make_workload(scan, seed=3, processes=4)
    batch = cmp.run_config(key, scan, w, check=True).as_dict()
    monkeypatch.setattr(run_mod, "_create", _per_file_create)
    monkeypatch.setattr(run_mod, "_read_all", _per_file_read)
    per_file = cmp.run_config(key, scan, w, check=True).as_dict()
    for d in (batch, per_file):
        d.pop("seconds")
    assert batch == per_file
    page = cmp.config(key).kernel_page
    assert batch["expected_page_cache_kB"] is not None
    if not cmp.config(key).per_process:        # the rounding identity
        assert batch["page_cache_kB"] * 1024 == scan.cache_bytes(page)


def test_batch_files_named_and_nameless():
    k = ppsize.Kernel("4K", "64M")
    pc = k.pagecache
    first = k.create_file("/a", 100)
    ids = k.create_files([10, 0, 5000], {1: "/b"})
    assert ids == range(1, 4) and first.id == 0
    assert [f.path for f in pc.files] == ["/a", "#1", "/b", "#3"]
    assert pc.file("#3").id == 3 and pc.file("/b").id == 2
    with pytest.raises(FileNotFoundError):
        pc.file("#2")                          # named: "#2" is nobody's path
    with pytest.raises(FileNotFoundError):
        pc.file("#03")
    with pytest.raises(FileExistsError):
        k.create_file("#3", 1)                 # a nameless file's path
    with pytest.raises(FileExistsError):
        k.create_files([1, 2], {0: "/a"})
    with pytest.raises(FileExistsError):
        k.create_files([1, 2], {0: "/x", 1: "/x"})
    k.create_file("#5", 1)                     # id 4; a later batch's id 5 would be "#5"
    with pytest.raises(FileExistsError):
        k.create_files([1, 2])
    with pytest.raises(ValueError, match="-1"):
        k.create_files([1, -1])
    with pytest.raises(ValueError):
        k.create_files([1], {1: "/out-of-range"})
    with pytest.raises(TypeError, match="integers"):
        k.create_files([1.5, 2.0])
    with pytest.raises(ValueError, match="s_maxbytes"):
        k.create_files(np.array([2**64 - 1], np.uint64))
    assert len(pc.files) == 5                  # the refused batches made nothing
    assert pc.read_all(range(0, 4)) == 100 + 10 + 0 + 5000
    with pytest.raises(ValueError, match="unknown file ids"):
        pc.read_all(range(3, 9))
    k.check()


def test_compare_does_not_import_numba():
    script = ("import sys, ppsize, ppsize.compare as c\n"
              "r = c.compare(['/etc'], processes=3, configs=['4K', '64K'], steady=4096)\n"
              "assert r['4K'].translation.accesses > 0\n"
              "print(sorted(m for m in sys.modules if m == 'numba' or m.startswith('numba.')))\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == []
    # the CLI too
    cli = ("import sys, runpy\nsys.argv = ['ppsize', 'compare', '-q', '--tree', '/etc', '--processes', '2']\n"
           "try:\n    runpy.run_module('ppsize', run_name='__main__')\nexcept SystemExit as e:\n"
           "    assert not e.code, e.code\nprint('numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
