"""The embedding surface: examples/cython/ builds, in a temporary directory, an
extension that cimports ppsize's public C interface (as numpy's test_extending
builds numpy/random/_examples), and what it does through the inline entry helpers
agrees with the Python API. The public .pxd files are the ones the imported ppsize
ships; every other .pxd says it is internal."""
import errno
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import ppsize
from ppsize._core.folio import FolioTable
from ppsize._core.xarray import XArray

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "cython"
CORE = pathlib.Path(ppsize.get_include()) / "ppsize" / "_core"
PUBLIC = ("_types", "xarray", "folio", "tlb")


def test_public_headers_ship_with_the_package():
    headers = {p.stem: p.read_text().splitlines()[0] for p in CORE.glob("*.pxd")}
    assert set(PUBLIC) <= set(headers)
    for name, first in headers.items():
        assert first.startswith("# PUBLIC" if name in PUBLIC else "# INTERNAL"), (name, first)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    if not (shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")):
        pytest.skip("no C compiler")
    build = tmp_path_factory.mktemp("ext")
    for name in ("setup.py", "ppsize_example.pyx"):
        shutil.copy(EXAMPLE / name, build / name)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ppsize.get_include()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=build, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (so,) = build.glob("ppsize_example*.so")
    spec = importlib.util.spec_from_file_location("ppsize_example", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_adds_folios_as_filemap_add_folio(example):
    xa, ft = XArray(), FolioTable(256)
    assert example.ERRNOS == {"EEXIST": errno.EEXIST, "EINVAL": errno.EINVAL}
    assert example.add_folios(xa, ft, 16, 0, 4, 2) == (4, 0)          # 4 order-2 folios
    assert [int(xa.load(i)) >> 2 for i in range(16)] == [16 + (i & ~3) for i in range(16)]
    assert [xa.entry_order(i) for i in (0, 4, 15)] == [2, 2, 2]
    # an index conflict: -EEXIST from xa_add, and the folio made for it is undone
    assert example.add_folios(xa, ft, 64, 2, 1, 1) == (0, -errno.EEXIST)
    assert ft.info(64) is None and len(xa) == 4
    # the folio table's own errors: a frame in use, a misaligned pfn
    assert example.add_folios(xa, ft, 16, 100, 1, 0) == (0, -errno.EEXIST)
    assert example.add_folios(xa, ft, 17, 200, 1, 2) == (0, -errno.EINVAL)
    assert ft.nr_folios == 4 and ft.info(20)["order"] == 2
    xa.check()
    ft.check()


def test_example_decodes_entries_with_the_helpers(example):
    xa, ft = XArray(), FolioTable(1024)
    example.add_folios(xa, ft, 512, 64, 2, 6)                      # two order-6 folios
    example.store_shadows(xa, 1000, 5, 40)
    pages, heads, shadows = example.scan(xa, ft, 0, 2000)
    assert pages == 128 and heads == 64 * 512 + 64 * 576
    assert shadows == sum(range(40, 45))
    idx, orders, entries = xa.items()
    values = [int(e) >> 1 for e in entries if int(e) & 1]
    assert sum(values) == shadows and sorted(set(orders.tolist())) == [0, 6]
