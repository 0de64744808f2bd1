"""``ppsize record``: the ptrace helper, the recording of a program whose faults and
syscalls are known (tests/live/faults.c; perf and root: opt-in --live), ``--accesses``
under valgrind's lackey (tests/live/stores.c; when valgrind is installed), and the errors
for missing or forbidden tools."""
import json
import os
import shutil
import stat

import numpy as np
import pytest

import live_kernel as lk
from ppsize.cli import main
from ppsize.recording import load, schema
from ppsize.recording.capture import Capture
from ppsize.recording.recorder import RecordError, _run_traced, record, tracer_path

PAGE = os.sysconf("SC_PAGE_SIZE")
needs_cc = pytest.mark.skipif(lk._cc() is None, reason="no C compiler")
needs_perf = pytest.mark.skipif(shutil.which("perf") is None or os.geteuid() != 0,
                                reason="needs perf and root")
needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")


def _ptrace_or_skip():
    """Skip unless a child may PTRACE_TRACEME here (containers and yama can forbid it)."""
    import ctypes
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.ptrace(0, 0, None, None) == 0 else 1)        # PTRACE_TRACEME
    _, st = os.waitpid(pid, 0)
    if os.WEXITSTATUS(st) != 0:
        pytest.skip("ptrace is not permitted here")


# ---------------------------------------------------------------- the ptrace helper
@needs_cc
def test_tracer_stops_at_exec_mmap_and_exit(tmp_path):
    _ptrace_or_skip()
    with Capture(probe=False) as cap:
        sess, proc, _ = _run_traced(["sh", "-c", "cat /dev/null; exit 3"], cap, [])
        assert os.WEXITSTATUS(sess.status) == 3 and proc.returncode == 3
        root = sess.root
        execs = {pid: [s[0]["comm"] for s in snaps] for pid, snaps in sess.execs.items()}
        assert execs[root] == ["sh"] and ["cat"] in execs.values()
        assert set(sess.exits) == set(sess.execs)                  # every process's last thread
        for info, _ in sess.exits.values():
            assert info["when"] == "exit" and info["stat"]["minflt"] > 0 and info["vmas"][1] > info["vmas"][0]
        # every file mmap was seen before it ran, and the file was captured
        mm = [fi for caps in sess.mmaps.values() for _, fi in caps]
        assert mm and all(fi >= 0 for fi in mm)
        w = cap.finish("record", {})
        names = {f.path for f in w.files}
        assert any("libc" in n for n in names)
    with Capture(probe=False) as cap:                              # execvp fails in the child
        sess, proc, _ = _run_traced(["/nonexistent/prog"], cap, [])
        assert os.WEXITSTATUS(sess.status) == 127 and not sess.execs and proc.returncode == 127


# ---------------------------------------------------------------- events (perf)
@pytest.fixture(scope="module")
def faults_run(tmp_path_factory):
    if shutil.which("perf") is None or os.geteuid() != 0 or lk._cc() is None:
        pytest.skip("needs perf, root and a C compiler")
    d = tmp_path_factory.mktemp("rec")
    exe = lk.compile_program("faults")
    data = d / "data.bin"
    data.write_bytes(os.urandom(32 * PAGE))
    out = d / "out.json"
    path = d / "faults.ppw"
    w = record([str(exe), str(data), "32", str(out)], path)
    return w, json.loads(out.read_text()), os.stat(data), path


@needs_perf
@pytest.mark.live
def test_record_faults_in_order(faults_run):
    w, info, _, _ = faults_run
    w.check()
    root = w.capture["root"]
    assert w.capture["exit_status"] == 0 and not w.partial and w.capture["lost_events"] == 0
    f = w.events["ev_fault"]
    mine = f[f["tid"] == root]
    want = [info["anon"] + i * PAGE + 8 for i in range(16)] + [info["anon"] + 4 * PAGE + 16]
    pos = [int(np.flatnonzero(mine["address"] == a)[0]) for a in want]
    assert pos == sorted(pos)                                      # in program order
    codes = mine["error_code"][pos]
    assert ((codes & schema.PF_WRITE) != 0).all() and ((codes & schema.PF_USER) != 0).all()
    assert ((codes & schema.PF_PROT) == 0).all()                   # not-present faults
    child = info["child"]
    cf = f[f["tid"] == child]
    cow = cf[cf["address"] == info["anon"] + 8 * PAGE + 24]
    assert len(cow) == 1 and cow["error_code"][0] & (schema.PF_PROT | schema.PF_WRITE) == schema.PF_PROT | schema.PF_WRITE
    # the major fault of the file page, and the faults minflt counts
    acct = w.events["ev_acct"]
    major = acct[acct["major"] == 1]
    assert info["file"] + 5 * PAGE in major["address"].tolist()
    for pid in (root, child):
        exit_snap = w.process(pid, "exit")
        a = acct[acct["pid"] == pid]
        base = w.process(pid, "exec").minflt if pid == root else 0
        assert exit_snap.minflt - base == int((a["major"] == 0).sum())
        assert exit_snap.majflt == int(a["major"].sum()) + (w.process(pid, "exec").majflt if pid == root else 0)


@needs_perf
@pytest.mark.live
def test_record_syscalls_with_arguments_and_results(faults_run):
    w, info, st, _ = faults_run
    root = w.capture["root"]
    names = [s["name"] for s in w.syscalls]
    sc = w.events["ev_syscall"]
    sc = sc[sc["tid"] == root]
    by = lambda n: sc[sc["nr"] == names.index(n)]
    anon, length = info["anon"], 16 * PAGE
    mm = by("mmap")
    row = mm[mm["ret"] == anon]
    assert len(row) == 1 and row["args"][0][1] == length and row["args"][0][2] == 3   # PROT_READ|WRITE
    assert row["args"][0][3] & 0x22 == 0x22 and row["file"][0] == -1                  # private anonymous
    mp = by("mprotect")
    assert [anon, 4 * PAGE, 1] in mp["args"][:, :3].tolist() and (mp["ret"] == 0).all()
    mu = by("munmap")
    assert [anon + 12 * PAGE, 4 * PAGE] in mu["args"][:, :2].tolist()
    ma = by("madvise")
    assert [anon + 4 * PAGE, 4 * PAGE, 4] in ma["args"][:, :3].tolist()               # MADV_DONTNEED
    # the file mmap names the file, captured (uncached: just dropped) before it ran
    fm = mm[mm["ret"] == info["file"]]
    assert len(fm) == 1 and fm["file"][0] >= 0
    f = w.files[fm["file"][0]]
    assert (f.st_dev, f.st_ino, f.size) == (st.st_dev, st.st_ino, 32 * PAGE)
    assert 0 <= f.seq < fm["seq"][0] and f.resident_pages == 0
    # ... and the page-cache insertion its major fault caused
    c = w.events["ev_cache"]
    ins = c[(c["inode"] == st.st_ino) & (c["op"] == schema.CACHE_ADD)]
    assert len(ins) >= 1 and ins["index"][0] <= 5 < ins["index"][0] + (1 << int(ins["order"][0]))
    assert ins["pid"][0] == root and ins["file"][0] == fm["file"][0]


@needs_perf
@pytest.mark.live
def test_record_tasks_snapshots_and_order(faults_run):
    w, info, _, path = faults_run
    root, child = w.capture["root"], info["child"]
    t = w.events["ev_task"]
    forks = t[t["op"] == schema.TASK_FORK]
    assert child in forks["other"].tolist()
    assert w.process(child, "exit").ppid == root
    ex = w.process(root, "exec")
    names = {v.name for v in ex.vma_list()}
    assert "[vdso]" in names and "[stack]" in names
    assert any(os.path.basename(n).startswith("faults-") for n in names)       # the program itself
    final = w.process(root, "exit")
    assert final.status["VmRSS"] > 0 and final.seq > ex.seq
    # the timeline: exec snapshot right after its exec event, exit snapshot before its exit
    tl = w.timeline()
    assert (np.diff(tl["seq"].astype(np.int64)) > 0).all()
    snap_sec = w.timeline_sections.index("snapshot")
    k = int(np.flatnonzero((tl["section"] == snap_sec) & (tl["row"] == ex.index))[0])
    prev = tl[k - 1]
    assert w.timeline_sections[prev["section"]] == "ev_task"
    assert w.events["ev_task"][prev["row"]]["op"] == schema.TASK_EXEC
    # the file round trip is what record returned
    again = load(path)
    for name in schema.EVENT_SECTIONS:
        np.testing.assert_array_equal(again.events[name], w.events[name])
    assert main(["inspect", str(path)]) == 0


@needs_perf
@pytest.mark.live
def test_record_cli(tmp_path, capsys):
    out = tmp_path / "t.ppw"
    assert main(["record", "-o", str(out), "--", "sh", "-c", "echo hello; exit 5"]) == 0
    cap = capsys.readouterr()
    text = cap.err
    assert "exited with status 5" in text and "execs" in text
    assert load(out).capture["exit_status"] == 5


@needs_perf
@pytest.mark.live
def test_record_software_fault_event(tmp_path):
    """The arm64 path (software page-faults event: address, no error code), here on x86-64."""
    w = record(["sh", "-c", "true"], tmp_path / "sw.ppw", fault_event="sw")
    f = w.events["ev_fault"]
    assert len(f) > 10 and (f["error_code"] == -1).all() and w.capture["fault_event"] == "sw"


# ---------------------------------------------------------------- accesses (lackey)
@needs_cc
@needs_valgrind
def test_record_accesses_stores_in_order(tmp_path):
    _ptrace_or_skip()
    exe = lk.compile_program("stores")
    out = tmp_path / "addr.txt"
    path = tmp_path / "acc.ppw"
    w = record([str(exe), str(out)], path, accesses=True, probe=False)
    buf = int(out.read_text())
    a = w.accesses
    assert len(a) == w.capture["accesses"] > 10000
    mine = a[(a["addr"] >= buf) & (a["addr"] < buf + 64 * 8)]
    stores = mine[mine["kind"] == schema.ACCESS_STORE]
    assert stores["addr"].tolist() == [buf + 8 * i for i in range(64)]
    assert (stores["size"] == 8).all()
    assert set(np.unique(a["kind"]).tolist()) >= {schema.ACCESS_INSTR, schema.ACCESS_LOAD, schema.ACCESS_STORE}
    again = load(path)
    np.testing.assert_array_equal(again.accesses, a)
    assert again.process(w.capture["root"], "exit").status["VmRSS"] > 0
    again.check()


# ---------------------------------------------------------------- missing tools, permissions
def test_missing_perf_and_valgrind_name_the_package(tmp_path, capsys):
    with pytest.raises(RecordError, match="linux-perf"):
        record(["true"], tmp_path / "x.ppw", perf="/nonexistent/perf")
    with pytest.raises(RecordError, match="Debian package valgrind"):
        record(["true"], tmp_path / "x.ppw", accesses=True, valgrind="/nonexistent/valgrind")
    assert main(["record", "-o", str(tmp_path / "x.ppw"), "--perf", "/nonexistent/perf", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "linux-perf" in err
    assert main(["record", "-o", str(tmp_path / "x.ppw")]) == 2
    assert "no command" in capsys.readouterr().err
    assert main(["record", "-o", str(tmp_path / "x.ppw"), "--", "/no/such/program"]) == 2
    assert "command not found" in capsys.readouterr().err


@needs_cc
def test_perf_permission_error_names_the_permission(tmp_path):
    fake = tmp_path / "perf"
    fake.write_text("#!/bin/sh\necho 'Error:' >&2\necho 'No permission to enable exceptions:page_fault_user "
                    "event.' >&2\necho 'Consider tweaking /proc/sys/kernel/perf_event_paranoid' >&2\nexit 255\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RecordError, match=r"not permitted.*perf_event_paranoid = -?\d+.*run as root") as e:
        record(["true"], tmp_path / "x.ppw", perf=str(fake))
    assert "\n" not in str(e.value)
    assert not list(tmp_path.glob("x.ppw*")) and not list(tmp_path.glob(".ppsize-record-*"))


def test_no_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PPSIZE_CACHE", str(tmp_path))
    with pytest.raises(RecordError, match="C compiler"):
        tracer_path()


@needs_perf
@pytest.mark.live
def test_lost_events_make_the_recording_partial(tmp_path):
    """A one-page perf buffer cannot keep up with 50,000 faults: the gap is flagged."""
    w = record(["python3", "-c", "b = bytearray(200 << 20)"], tmp_path / "lost.ppw", mmap_pages="4K",
               seccomp=False, probe=False)
    assert w.capture["lost_events"] > 0 and w.partial
    assert any("perf lost" in r for r in w.meta["partial_reasons"])
    text = load(tmp_path / "lost.ppw").summary()
    assert "PARTIAL" in text and "perf lost" in text
