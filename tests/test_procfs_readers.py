"""The /proc readers (ppsize.procmaps) on synthetic input: smaps, status and stat text,
pagemap and kpageflags files, and folio detection against a reference that walks the
frames one by one; the page-cache residency of a file (filecache)."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize import procmaps
from ppsize.recording import filecache

HEAD = 1 << procmaps.KPF["compound_head"]
TAIL = 1 << procmaps.KPF["compound_tail"]
THP = 1 << procmaps.KPF["thp"]

SMAPS = """\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 260131                     /usr/bin/cat
Size:                  8 kB
Rss:                   8 kB
Anonymous:             0 kB
THPeligible:           0
VmFlags: rd mr mw me
7f0000000000-7f0000200000 rw-p 00000000 00:00 0 
Size:               2048 kB
Rss:                2048 kB
Anonymous:          2048 kB
AnonHugePages:      2048 kB
ProtectionKey:         0
VmFlags: rd wr mr mw me ac hg
7fff00000000-7fff00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  12 kB
VmFlags: rd wr mr mw me gd ac
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
VmFlags: ex
7f1000000000-7f1000001000 r--p 00001000 103:02 12 /a file: with spaces (deleted)
Size:                  4 kB
VmFlags: rd mr mw me
"""


def test_parse_smaps():
    s = procmaps.parse_smaps(SMAPS)
    assert len(s) == 5
    assert s.start.tolist()[:2] == [0x55D0C0A00000, 0x7F0000000000]
    assert s.perms == ["r--p", "rw-p", "rw-p", "--xp", "r--p"]
    assert s.names == ["/usr/bin/cat", "", "[stack]", "[vsyscall]", "/a file: with spaces (deleted)"]
    assert s.dev.tolist()[0] == os.makedev(0xFE, 0) and s.dev.tolist()[4] == os.makedev(0x103, 2)
    assert s.pgoff.tolist()[4] == 0x1000 and s.inode.tolist() == [260131, 0, 0, 0, 12]
    assert s.column("Rss").tolist() == [8, 2048, 12, 0, 0]
    assert s.column("AnonHugePages").tolist() == [0, 2048, 0, 0, 0]
    assert s.column("THPeligible").tolist() == [0] * 5 and s.column("Nope").tolist() == [0] * 5
    assert s.vmflags[1] == ("rd", "wr", "mr", "mw", "me", "ac", "hg")
    with pytest.raises(ValueError, match="before the first VMA"):
        procmaps.parse_smaps("Rss: 4 kB\n")
    with pytest.raises(ValueError, match="not an smaps line"):
        procmaps.parse_smaps("garbage line here\n")
    assert procmaps.read_vmas()[0][0] == procmaps.read_smaps().start[0]


def test_parse_status_and_stat():
    st_ = procmaps.parse_status("Name:\tcat\nVmRSS:\t    1628 kB\nThreads:\t1\nUid:\t0\t0\t0\t0\n")
    assert st_ == {"Name": "cat", "VmRSS": 1628, "Threads": 1, "Uid": "0\t0\t0\t0"}
    text = "123 (a (weird) name) S 1 123 123 0 -1 4194560 77 5 3 0 10 20 0 0 20 0 4 0 555 1000 25 " + "0 " * 30
    s = procmaps.parse_stat(text)
    assert s["comm"] == "a (weird) name" and s["pid"] == 123 and s["ppid"] == 1
    assert (s["minflt"], s["cminflt"], s["majflt"], s["cmajflt"]) == (77, 5, 3, 0)
    assert s["num_threads"] == 4 and s["starttime"] == 555 and not s["kthread"]
    me = procmaps.read_stat()
    assert me["pid"] == os.getpid() and me["minflt"] > 0


def test_read_pagemap_short_read(tmp_path):
    f = tmp_path / "pm"
    entries = np.arange(100, dtype=np.uint64) * 3
    f.write_bytes(entries.tobytes())
    fd = os.open(f, os.O_RDONLY)
    try:
        got = procmaps.read_pagemap(fd, 10 * 4096, 20 * 4096, 4096)
        assert got.tolist() == entries[10:20].tolist()
        assert len(procmaps.read_pagemap(fd, 95 * 4096, 105 * 4096, 4096)) == 5
    finally:
        os.close(fd)


@st.composite
def frame_layout(draw):
    """A physical memory of N frames carved into naturally aligned folios: kpageflags."""
    n = 1 << draw(st.integers(6, 12))
    flags = np.zeros(n, np.uint64)
    pfn, folios = 0, []
    while pfn < n:
        order = draw(st.sampled_from([0, 0, 0, 1, 2, 4, 5, 9, 10]))
        while order and (pfn % (1 << order) or pfn + (1 << order) > n):
            order -= 1
        if order:
            flags[pfn] = HEAD | THP
            flags[pfn + 1:pfn + (1 << order)] = TAIL | THP
        else:
            flags[pfn] = draw(st.sampled_from([0, 1 << procmaps.KPF["anon"], 1 << procmaps.KPF["zero_page"]]))
        folios.append((pfn, order))
        pfn += 1 << order
    asked = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=40))
    return flags, folios, asked


def _reference_folios(flags, asked):
    """Walk back to the head, forward over the tails (obvious, one frame at a time)."""
    out = {}
    for p in asked:
        if not flags[p] & (HEAD | TAIL):
            out[p] = (0, int(flags[p]))
            continue
        h = p
        while not flags[h] & HEAD:
            h -= 1
        e = h + 1
        while e < len(flags) and flags[e] & TAIL:
            e += 1
        length = e - h
        if length > 1 << procmaps.FOLIO_WINDOW_ORDER:         # larger than the reader looks
            out[p] = (0, int(flags[p]))
            continue
        out[h] = (int(np.log2(length)), int(flags[h]))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=frame_layout())
def test_folios_of_matches_reference(tmp_path, layout):
    flags, folios, asked = layout
    f = tmp_path / "kpageflags"
    f.write_bytes(flags.tobytes())
    fd = os.open(f, os.O_RDONLY)
    try:
        got = procmaps.folios_of(fd, asked)
        kp = procmaps.read_kpage(fd, asked)
    finally:
        os.close(fd)
    assert kp.tolist() == flags[asked].tolist()
    want = _reference_folios(flags, asked)
    assert {int(r["pfn"]): (int(r["order"]), int(r["kflags"])) for r in got} == want
    assert (np.diff(got["pfn"].astype(np.int64)) > 0).all()


def test_read_kpage_past_the_end_is_nopage(tmp_path):
    f = tmp_path / "k"
    f.write_bytes(np.array([5, 6], np.uint64).tobytes())
    fd = os.open(f, os.O_RDONLY)
    try:
        assert procmaps.read_kpage(fd, [1, 0, 1000]).tolist() == [6, 5, 1 << procmaps.KPF["nopage"]]
    finally:
        os.close(fd)


def test_residency_of_a_file(tmp_path):
    page = filecache.PAGE
    f = tmp_path / "data"
    f.write_bytes(os.urandom(20 * page + 100))
    fd = filecache.open_file(str(f))
    try:
        r = filecache.residency(fd, os.fstat(fd).st_size)
        assert r.resident_pages == 21 and r.runs["index"].tolist() == [0] and r.problem is None
        if r.stat is not None:
            assert r.stat["nr_cache"] == 21 and r.stat["nr_dirty"] >= 0
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        with open(f, "rb") as g:                       # bring back pages 3..5 and 10
            g.seek(3 * page)
            g.read(1)
        r2 = filecache.residency(fd, os.fstat(fd).st_size)
        assert r2.resident_pages < 21 and 3 in {i for s, n in zip(r2.runs["index"], r2.runs["npages"])
                                                for i in range(int(s), int(s + n))}
        empty = filecache.residency(fd, 0)
        assert empty.resident_pages == 0
    finally:
        os.close(fd)


def test_present_ranges_merge_across_vma_boundaries():
    import mmap
    m = mmap.mmap(-1, 8 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    a = np.frombuffer(m, np.uint8)
    a[::4096] = 1
    base = a.ctypes.data
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + 3 * 4096, 2 * 4096, 1) == 0          # three VMAs now
    starts = [v[0] for v in procmaps.read_vmas()]
    assert base + 3 * 4096 in starts and base + 5 * 4096 in starts
    r = procmaps.present_ranges()
    assert ((r[:, 0] <= base) & (r[:, 1] >= base + 8 * 4096)).any()
    assert (r[1:, 0] > r[:-1, 1]).all()                                 # merged and sorted
    del a
    m.close()
