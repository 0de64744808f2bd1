"""Real-workload capture speed (issue 10 item 5), each with a same-run baseline:

* snapshot of a process with 1 GiB of resident anonymous memory in 4K pages (target
  <= 2 s), against the bare /proc reads any snapshot has to do (its smaps text, one pread
  of the region's pagemap, the kpageflags of its frames);
* reading a recorded access trace of 20 M records (target >= 20 M records/s): load,
  check the CRC, touch every record; against np.fromfile of the same bytes;
* parsing a lackey log (target >= 5 M lines/s), numba and NumPy parsers, against the
  reference parser (tests/ref_lackey.py: one Python line at a time, on a slice).
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from conftest import note, record, record_value
from ppsize import procmaps
from ppsize.recording import format as fmt
from ppsize.recording import lackey, load, schema, snapshot

GIB = 1 << 30
TRACE_RECORDS = 20_000_000
LOG_LINES = 4_000_000
DIR = "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()

HELPER = """
import mmap, sys, numpy as np
m = mmap.mmap(-1, {size}, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_NOHUGEPAGE)
a = np.frombuffer(m, np.uint8)
a[::4096] = 1
sys.stdout.write(str(a.ctypes.data) + "\\n"); sys.stdout.flush(); sys.stdin.read()
"""


@pytest.fixture(scope="module")
def gib_process():
    p = subprocess.Popen([sys.executable, "-c", HELPER.format(size=GIB)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    addr = int(p.stdout.readline())
    yield p.pid, addr
    p.stdin.close()
    p.wait()


def test_snapshot_1gib(benchmark, gib_process, tmp_path):
    pid, addr = gib_process
    path = tmp_path / "gib.ppw"
    w = benchmark.pedantic(lambda: snapshot([pid], path=path), rounds=3, iterations=1, warmup_rounds=1)
    per = record(benchmark, "recording", "snapshot 1GiB", "ppsize", 1)
    p = w.processes[0]
    assert p.status["RssAnon"] >= GIB >> 10 and len(p.pages) >= GIB // 4096
    note(f"snapshot of a 1 GiB-RSS process (262144 4K pages): {per:.3f} s, file "
         f"{os.path.getsize(path) / 2**20:.1f} MiB")

    def raw():
        with open(f"/proc/{pid}/smaps") as f:
            f.read()
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
        try:
            e = procmaps.read_pagemap(fd, addr, addr + GIB)
        finally:
            os.close(fd)
        if os.access("/proc/kpageflags", os.R_OK):
            kf = os.open("/proc/kpageflags", os.O_RDONLY)
            try:
                procmaps.read_kpage(kf, e & np.uint64(procmaps.PAGEMAP_PFN_MASK))
            finally:
                os.close(kf)
    record_value("recording", "snapshot 1GiB", "raw /proc reads", min(_timed(raw) for _ in range(3)), benchmark)


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.fixture(scope="module")
def trace_file():
    rng = np.random.default_rng(1)
    path = os.path.join(DIR, f"ppsize-bench-trace-{os.getpid()}.ppw")
    with fmt.Writer(path, "record", {"processes": [], "strings": []}) as w:
        s = w.stream("accesses", schema.ACCESS_DTYPE)
        for _ in range(TRACE_RECORDS // 1_000_000):
            a = np.zeros(1_000_000, schema.ACCESS_DTYPE)
            a["addr"] = rng.integers(0x400000, 0x7FFFFFFFFFFF, len(a), dtype=np.uint64)
            a["size"] = rng.choice([1, 2, 4, 8, 16], len(a))
            a["kind"] = rng.integers(0, 4, len(a))
            s.append(a)
        s.close()
    yield path
    os.unlink(path)


def test_read_access_trace(benchmark, trace_file):
    def read():
        a = load(trace_file).accesses
        return int(a["size"].sum()), len(a)
    total, n = benchmark.pedantic(read, rounds=5, iterations=1, warmup_rounds=1)
    assert n == TRACE_RECORDS
    per = record(benchmark, "recording", "read access trace", "ppsize", n)
    r = fmt.Reader(trace_file)
    off, nbytes = r._sections["accesses"]["offset"], r._sections["accesses"]["nbytes"]

    def raw():
        b = np.fromfile(trace_file, dtype=schema.ACCESS_DTYPE, count=nbytes // schema.ACCESS_DTYPE.itemsize, offset=off)
        return int(b["size"].sum())
    assert raw() == total
    record_value("recording", "read access trace", "np.fromfile", min(_timed(raw) for _ in range(3)) / n, benchmark)
    note(f"access trace read: {1 / per / 1e6:.1f} M records/s (CRC checked)")


@pytest.fixture(scope="module")
def lackey_log():
    """A synthetic lackey log shaped like a real one: ~75% instruction fetches at 8-digit
    text addresses, data at 10-12 digit stack/heap addresses, valgrind lines around."""
    rng = np.random.default_rng(2)
    n = LOG_LINES
    kind = rng.choice(np.array([b"I  ", b" L ", b" S ", b" M "]), n, p=[0.75, 0.15, 0.08, 0.02])
    addr = np.where(kind == b"I  ", rng.integers(0x4000000, 0x5000000, n), rng.integers(0x1FFF000000, 0x7FFF000000, n))
    size = np.where(kind == b"I  ", rng.integers(1, 16, n), rng.choice([1, 2, 4, 8, 16, 32], n))
    body = "\n".join(f"{k.decode()}{a:08x},{s}" for k, a, s in zip(kind[:200_000], addr[:200_000], size[:200_000]))
    chunk = ("==1== Lackey\n" + body + "\n").encode()
    data = chunk * (n // 200_000)
    return data, data.count(b"\n")


@pytest.fixture(scope="module")
def python_per_line(lackey_log):
    """The reference parser's cost per line (one Python line at a time), on a slice."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    import ref_lackey
    part = lackey_log[0][:2_000_000].rsplit(b"\n", 1)[0] + b"\n"
    return min(_timed(lambda: ref_lackey.parse_lines(part)) for _ in range(2)) / part.count(b"\n")


@pytest.mark.parametrize("parser", ["numba", "numpy"])
def test_parse_lackey_log(benchmark, lackey_log, python_per_line, parser):
    if parser == "numba" and not lackey.have_numba:
        pytest.skip("numba not installed")
    data, lines = lackey_log
    lackey.parse(data[:1000].rsplit(b"\n", 1)[0] + b"\n", parser)       # compile outside the timing

    def run():
        p = lackey.LackeyParser(parser=parser)
        n = 0
        for i in range(0, len(data), 16 << 20):
            n += len(p.feed(data[i:i + (16 << 20)]))
        return n + len(p.close())
    n = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert n > 0.99 * lines
    case = f"lackey log, {parser}"
    per = record(benchmark, "recording", case, "ppsize", lines)
    record_value("recording", case, "python per line", python_per_line, benchmark)
    note(f"lackey log, {parser} parser: {1 / per / 1e6:.1f} M lines/s")
