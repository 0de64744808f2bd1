"""perf script text -> event sections (ppsize.recording.perfscript), on text in the exact
format perf 6.x prints (see the sample lines), for a scenario whose events are known."""
import os

import numpy as np

from ppsize.recording import schema
from ppsize.recording.perfscript import SEQ_AFTER, PerfScriptParser, seq_of

TRACER, ROOT, CHILD, THREAD, OTHER = 100, 101, 102, 103, 900


def line(pid, tid, t, event, fields):
    return f"{pid:>6}/{tid:<6} {t // 10**9:>5}.{t % 10**9:09d}: {event:>40}: {fields}\n"


def scenario():
    """(perf script lines, what a correct parser keeps)."""
    L, t = [], 1_000_000_000
    def add(pid, tid, ev, f):
        nonlocal t
        t += 1000
        L.append(line(pid, tid, t, ev, f))
    add(TRACER, TRACER, "sched:sched_process_fork", f"comm=ppsize-tracer pid={TRACER} child_comm=x child_pid={ROOT}")
    add(ROOT, ROOT, "exceptions:page_fault_user", "address=0x7f0000001000 ip=0x7f0000002000 error_code=0x6")  # pre-exec
    add(ROOT, ROOT, "sched:sched_process_exec", f"filename=/usr/bin/my prog pid={ROOT} old_pid={ROOT}")
    add(ROOT, ROOT, "exceptions:page_fault_user", "address=0x55aa00001008 ip=0x55aa00000100 error_code=0x14")
    add(ROOT, ROOT, "minor-faults", "    55aa00001008     55aa00000100")
    add(ROOT, ROOT, "syscalls:sys_enter_mmap", "addr: 0x00000000, len: 0x00004000, prot: 0x00000003, "
                                                 "flags: 0x00000022, fd: 0xffffffff, off: 0x00000000")
    add(ROOT, ROOT, "syscalls:sys_exit_mmap", "0x7f1234560000")
    add(ROOT, ROOT, "syscalls:sys_enter_mmap", "addr: 0x00000000, len: 0x00002000, prot: 0x00000001, "
                                                 "flags: 0x00000002, fd: 0x00000003, off: 0x00000000")
    add(ROOT, ROOT, "exceptions:page_fault_kernel", "address=0x7f1234561000 ip=copy_page_to_iter+0x1a/0x100 error_code=0x2")
    add(ROOT, ROOT, "exceptions:page_fault_kernel", "address=vmalloc_thing+0x0/0x10 ip=foo+0x1/0x2 error_code=0x0")
    add(ROOT, ROOT, "syscalls:sys_exit_mmap", "0x7f1234570000")
    add(ROOT, ROOT, "syscalls:sys_enter_munmap", "addr: 0x7f1234560000, len: 0x00004000")
    add(ROOT, ROOT, "syscalls:sys_exit_munmap", "0xffffffffffffffea")                   # -EINVAL
    add(ROOT, ROOT, "filemap:mm_filemap_add_to_page_cache", "dev 254:0 ino 3f8c pfn=0x12345 ofs=8192 order=2")
    add(ROOT, ROOT, "major-faults", "    7f1234570000     55aa00000200")
    add(ROOT, ROOT, "sched:sched_process_fork", f"comm=my prog pid={ROOT} child_comm=my prog child_pid={CHILD}")
    add(ROOT, ROOT, "sched:sched_process_fork", f"comm=my prog pid={ROOT} child_comm=worker child_pid={THREAD}")
    add(ROOT, THREAD, "exceptions:page_fault_user", "address=0x7f0000009000 ip=0x55aa00000300 error_code=0x6")
    add(OTHER, OTHER, "exceptions:page_fault_user", "address=0x1000 ip=0x2000 error_code=0x4")       # not ours
    add(CHILD, CHILD, "exceptions:page_fault_user", "address=0x55aa00003000 ip=0x55aa00000400 error_code=0x7")
    L.append(f"{CHILD:>6}/{CHILD:<6}  1.000000000: PERF_RECORD_LOST lost 17\n")
    add(CHILD, CHILD, "sched:sched_process_exec", f"filename=/bin/sh pid={CHILD} old_pid={CHILD}")
    add(CHILD, CHILD, "filemap:mm_filemap_delete_from_page_cache", "dev 8:1 ino 10 pfn=0x99 ofs=0 order=0")
    add(CHILD, CHILD, "sched:sched_process_exit", f"comm=sh pid={CHILD} prio=120 group_dead=true")
    add(ROOT, THREAD, "sched:sched_process_exit", f"comm=worker pid={THREAD} prio=120 group_dead=false")
    add(ROOT, ROOT, "syscalls:sys_enter_munlockall", "")
    add(ROOT, ROOT, "syscalls:sys_exit_munlockall", "0x0")
    add(ROOT, ROOT, "syscalls:sys_enter_brk", "brk: 0x00000000")                       # no exit: killed
    add(ROOT, ROOT, "sched:sched_process_exit", f"comm=my prog pid={ROOT} prio=120 group_dead=true")
    return L


def parse():
    p = PerfScriptParser(ROOT, page_size=4096)
    for ln in scenario():
        p.feed(ln)
    ev, sc = p.arrays(lambda s: {"/usr/bin/my prog": 0, "/bin/sh": 1}[s])
    return p, ev, sc


def test_only_the_commands_tasks_are_kept_in_order():
    p, ev, _ = parse()
    seqs = np.sort(np.concatenate([a["seq"] for a in ev.values()]))
    assert seqs.tolist() == [seq_of(i) for i in range(p.n)]
    assert p.n == 20                                   # sys_exit_* fold into their enter row
    assert set(np.concatenate([a["tid"] for a in ev.values()]).tolist()) == {ROOT, CHILD, THREAD}
    assert p.lost == 17 and p.unparsed == 0
    assert p.other_tasks == 3                          # the tracer's fork, the pre-exec fault, OTHER's


def test_faults():
    _, ev, _ = parse()
    f = ev["ev_fault"]
    assert f["address"].tolist() == [0x55aa00001008, 0x7f1234561000, 0x7f0000009000, 0x55aa00003000]
    assert f["error_code"].tolist() == [0x14, 0x2, 0x6, 0x7]
    assert f["ip"].tolist() == [0x55aa00000100, 0, 0x55aa00000300, 0x55aa00000400]
    assert f["tid"].tolist() == [ROOT, ROOT, THREAD, CHILD] and f["pid"].tolist() == [ROOT, ROOT, ROOT, CHILD]
    a = ev["ev_acct"]
    assert a["address"].tolist() == [0x55aa00001008, 0x7f1234570000] and a["major"].tolist() == [0, 1]
    assert (np.diff(f["time"].astype(np.int64)) > 0).all()


def test_syscalls_paired_with_results():
    _, ev, sc = parse()
    names = [s["name"] for s in sc]
    assert names == ["mmap", "munmap", "brk", "munlockall"]          # perfscript.SYSCALLS order
    assert sc[0]["args"] == ["addr", "len", "prot", "flags", "fd", "off"]
    s = ev["ev_syscall"]
    assert [names[n] for n in s["nr"]] == ["mmap", "mmap", "munmap", "munlockall", "brk"]
    assert s["args"][0].tolist() == [0, 0x4000, 3, 0x22, 0xffffffff, 0]
    assert s["ret"].tolist()[:4] == [0x7f1234560000, 0x7f1234570000, -22, 0]
    assert s["done"].tolist() == [1, 1, 1, 1, 0]
    assert (s["time_exit"][:4] > s["time"][:4]).all()


def test_file_mmaps_are_indexed_for_the_file_captures():
    p, _, _ = parse()
    rows = p.file_mmaps[ROOT]
    assert len(rows) == 1 and rows[0][6][4] == 3 and rows[0][9] == -1


def test_cache_and_task_events():
    p, ev, _ = parse()
    c = ev["ev_cache"]
    assert c["op"].tolist() == [schema.CACHE_ADD, schema.CACHE_DELETE]
    assert c["dev"].tolist() == [os.makedev(254, 0), os.makedev(8, 1)]
    assert c["inode"].tolist() == [0x3f8c, 0x10] and c["index"].tolist() == [2, 0]
    assert c["order"].tolist() == [2, 0] and c["pfn"].tolist() == [0x12345, 0x99]
    t = ev["ev_task"]
    assert t["op"].tolist() == [schema.TASK_EXEC, schema.TASK_FORK, schema.TASK_FORK, schema.TASK_EXEC,
                                schema.TASK_EXIT, schema.TASK_EXIT, schema.TASK_EXIT]
    assert t["other"].tolist()[:4] == [ROOT, CHILD, THREAD, CHILD]
    assert t["name"].tolist()[:4] == [0, -1, -1, 1]                  # exec filenames interned
    assert t["group_dead"].tolist()[4:] == [1, 0, 1]
    assert p.execs == {ROOT: [0], CHILD: [13]} and set(p.exits) == {CHILD, THREAD, ROOT}
    assert seq_of(p.execs[ROOT][0], SEQ_AFTER) == t["seq"][0] + 1
