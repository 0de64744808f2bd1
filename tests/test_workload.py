"""The Workload object on hand-built sections: accessors, decoded bits, folio lookup,
residency, the timeline, and check() catching every broken invariant."""
import numpy as np
import pytest

from ppsize.recording import kpageflags_bits, pagemap_bits, pfn, schema
from ppsize.recording.workload import Workload

P = 4096
PRESENT, EXCL, FILEB = 1 << 63, 1 << 56, 1 << 61


def build():
    vmas = np.zeros(3, schema.VMA_DTYPE)
    vmas["proc"] = [0, 0, 1]
    vmas["start"] = [0x10000, 0x20000, 0x10000]
    vmas["end"] = [0x14000, 0x30000, 0x11000]
    vmas["perms"] = [schema.perms_code("r-xp"), schema.perms_code("rw-p"), schema.perms_code("rw-s")]
    vmas["name"] = [0, 1, 1]
    vmas["file"] = [0, -1, -1]
    vmas["inode"] = [77, 0, 0]
    vmas["vmflags"] = [0b011, 0b101, 0b001]
    smaps = np.array([[16, 8], [64, 12], [4, 0]], np.uint64)
    pages = np.zeros(5, schema.PAGE_DTYPE)
    pages["vma"] = [0, 0, 1, 1, 2]
    pages["addr"] = [0x10000, 0x11000, 0x20000, 0x21000, 0x10000]
    pages["pagemap"] = [PRESENT | FILEB | 100, PRESENT | FILEB | 101, PRESENT | EXCL | 200, 1 << 62 | 5, PRESENT | 300]
    pages["kflags"] = [1 << 15, 1 << 16, 1 << 12, 0, 0]
    folios = np.zeros(3, schema.PROC_FOLIO_DTYPE)
    folios["proc"] = [0, 0, 1]
    folios["pfn"] = [100, 200, 300]
    folios["order"] = [1, 0, 0]
    files = np.zeros(1, schema.FILE_DTYPE)
    files["inode"], files["st_ino"], files["size"], files["path"] = 77, 77, 5 * P + 1, 0
    files["flags"] = schema.FILE_PROBED
    for f in schema.CACHESTAT_FIELDS:
        files[f] = 3
    runs = np.zeros(2, schema.SECTION_DTYPES["cache_runs"])
    runs["index"], runs["npages"] = [0, 4], [2, 2]
    ev_task = np.zeros(2, schema.TASK_DTYPE)
    ev_task["seq"], ev_task["op"] = [4, 12], [schema.TASK_EXEC, schema.TASK_EXIT]
    ev_fault = np.zeros(1, schema.FAULT_DTYPE)
    ev_fault["seq"] = [8]
    meta = {"kind": "record", "strings": ["/lib/x.so", ""], "smaps_fields": ["Size", "Rss"],
            "vmflags": ["rd", "ex", "wr"],
            "processes": [{"pid": 10, "ppid": 1, "comm": "a", "when": "exec", "seq": 5, "vmas": [0, 2],
                           "pages": [0, 4], "folios": [0, 2], "partial": False, "problems": [],
                           "stat": {"minflt": 7, "majflt": 1}, "status": {"VmRSS": 20}},
                          {"pid": 11, "ppid": 10, "comm": "b", "when": "exit", "seq": 11, "vmas": [2, 3],
                           "pages": [4, 5], "folios": [2, 3], "partial": True, "problems": ["gone"],
                           "stat": {}, "status": {}}]}
    arrays = {"vmas": vmas, "vma_smaps": smaps, "pages": pages, "folios": folios, "files": files,
              "cache_runs": runs, "ev_task": ev_task, "ev_fault": ev_fault}
    return meta, arrays


def test_accessors():
    w = Workload(*build())
    w.check()
    a, b = w.processes
    assert (a.pid, a.minflt, a.majflt, b.minflt) == (10, 7, 1, 0)
    assert w.partial and b.partial and not a.partial
    assert w.process(10).comm == "a" and w.process(11, "exit").ppid == 10
    with pytest.raises(KeyError, match="no snapshot of pid 12"):
        w.process(12)
    with pytest.raises(KeyError, match="at live"):
        w.process(10, "live")
    v0, v1 = a.vma_list()
    assert (v0.perms, v0.vmflags, v0.smaps, v0.name) == ("r-xp", ("rd", "ex"), {"Size": 16, "Rss": 8}, "/lib/x.so")
    assert v0.file is w.files[0] and v1.file is None and v1.anonymous and not v0.anonymous
    assert v1.vmflags == ("rd", "wr") and len(v0.pages) == 2 and len(v1.pages) == 2
    assert a.smaps("Rss").tolist() == [8, 12] and a.smaps("Nope").tolist() == [0, 0]
    t = a.totals()
    assert (t["Rss"], t["present_pages"], t["swapped_pages"]) == (20, 3, 1)


def test_decoding_and_folio_orders():
    w = Workload(*build())
    a = w.processes[0]
    bits = pagemap_bits(a.pages["pagemap"])
    assert bits["present"].tolist() == [True, True, True, False]
    assert bits["file"].tolist() == [True, True, False, False] and bits["exclusive"].tolist() == [False, False, True, False]
    assert bits["swapped"].tolist() == [False, False, False, True]
    assert pfn(a.pages["pagemap"]).tolist() == [100, 101, 200, 5]
    assert kpageflags_bits(a.pages["kflags"], "compound_head")["compound_head"].tolist() == [True, False, False, False]
    assert a.page_folio_order().tolist() == [1, 1, 0, -1]       # pfn 101 is the tail of 100's order-1 folio
    assert w.processes[1].page_folio_order().tolist() == [0]


def test_files_and_residency():
    w = Workload(*build())
    f = w.files[0]
    assert f.npages == 6 and f.resident_pages == 4 and f.probed and f.cachestat["nr_cache"] == 3
    assert f.residency().tolist() == [True, True, False, False, True, True]
    assert w.file(0, 77) is f
    with pytest.raises(KeyError, match="inode 78"):
        w.file(0, 78)


def test_timeline_merges_events_and_snapshots():
    w = Workload(*build())
    tl = w.timeline()
    assert tl["seq"].tolist() == [4, 5, 8, 11, 12]
    names = [w.timeline_sections[s] for s in tl["section"]]
    assert names == ["ev_task", "snapshot", "ev_fault", "snapshot", "ev_task"]
    assert tl["row"][names.index("snapshot")] == 0
    assert len(w.events["ev_syscall"]) == 0 and w.accesses is None


@pytest.mark.parametrize("breakage, message", [
    (lambda m, a: a["vmas"].__setitem__("end", [0x14000, 0x13000, 0x11000]), "overlap"),
    (lambda m, a: a["vmas"].__setitem__("proc", [0, 1, 1]), "another process"),
    (lambda m, a: a["pages"].__setitem__("vma", [0, 0, 1, 2, 2]), "VMA of another process"),
    (lambda m, a: a["pages"].__setitem__("addr", [0x10000, 0x11000, 0x40000, 0x41000, 0x10000]), "outside"),
    (lambda m, a: a["pages"].__setitem__("addr", [0x11000, 0x10000, 0x20000, 0x21000, 0x10000]), "address order"),
    (lambda m, a: a["vmas"].__setitem__("file", [3, -1, -1]), "files table"),
    (lambda m, a: a["folios"].__setitem__("proc", [0, 1, 1]), "folio rows"),
    (lambda m, a: a["ev_fault"].__setitem__("seq", [4]), "used twice"),
    (lambda m, a: a["cache_runs"].__setitem__("file", [0, 5]), "cache_runs"),
])
def test_check_catches(breakage, message):
    meta, arrays = build()
    breakage(meta, arrays)
    with pytest.raises(ValueError, match=message):
        Workload(meta, arrays).check()


def test_partial_reasons_are_reported():
    meta, arrays = build()
    meta["processes"][1]["partial"] = False
    w = Workload(meta, arrays)
    assert not w.partial and "PARTIAL" not in w.summary()
    meta["partial_reasons"] = ["perf lost 12 events"]
    meta["partial"] = True
    w = Workload(meta, arrays)
    text = w.summary()
    assert w.partial and "PARTIAL" in text and "perf lost 12 events" in text
