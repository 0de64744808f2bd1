"""The native tree walk (ppsize._core.scan.TreeWalk) against the Python walk of
ppsize/compare/scan.py (engine="python", the reference): the same ScanResult, field
by field, on generated trees (hard links, symbolic links, FIFOs, library-like and
odd names, non-UTF-8 names, overlapping trees, trees that are files) and on /etc,
and the same error counts where permissions really fail (as nobody)."""
import os
import pickle
import shutil
import stat
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize import compare as cmp

FIELDS = ("trees", "libs", "exes", "data", "dirs", "skipped", "examples")


def assert_same(a, b):
    assert a.sizes.dtype == b.sizes.dtype == np.int64
    assert a.sizes.tolist() == b.sizes.tolist()
    for f in FIELDS:
        assert getattr(a, f) == getattr(b, f), f


def both(trees, **kw):
    nat = cmp.scan_trees(trees, engine="native", **kw)
    ref = cmp.scan_trees(trees, engine="python", **kw)
    assert_same(nat, ref)
    return nat


# names a library test could get wrong: r"\.so(\.[0-9]+)*$" (and Python's $ before a final \n)
NAMES = st.sampled_from(["libc.so.6", "libx.so", "liby.so.1.2.33", "a.so.", "a.so.1a", "a.so.x.1", ".so",
                         "so", "x.so.1.", "lib.so\n", "lib.so.1\n", "b.sox", "c.so.so", "d.txt", "bin",
                         "e.so.0.so.1", "f..so", "g.so..1"])
ENTRY = st.one_of(
    st.tuples(st.just("file"), NAMES, st.integers(0, 70000), st.booleans()),
    st.tuples(st.just("dir"), st.sampled_from(["d", "e", "sub", "x.so"])),
    st.tuples(st.just("up")),
    st.tuples(st.just("hardlink")),
    st.tuples(st.just("symlink"), st.sampled_from(["file", "dir", "dangling"])),
    st.just(("fifo",)),
    st.just(("raw",)),                   # a name that is not UTF-8
)


def build(root, ops):
    """Create the tree the ops describe below root; returns the directories made."""
    cwd, files, dirs, k = root, [], [root], 0
    for op in ops:
        k += 1
        kind = op[0]
        if kind == "file":
            _, name, size, exe = op
            path = os.path.join(cwd, f"{k}{name}")
            with open(path, "wb") as f:
                f.truncate(size)
            if exe:
                os.chmod(path, 0o755)
            files.append(path)
        elif kind == "dir":
            cwd = os.path.join(cwd, f"{op[1]}{k}")
            os.mkdir(cwd)
            dirs.append(cwd)
        elif kind == "up":
            cwd = root if cwd == root else os.path.dirname(cwd)
        elif kind == "hardlink" and files:
            os.link(files[k % len(files)], os.path.join(cwd, f"h{k}"))
        elif kind == "symlink":
            target = {"file": files[k % len(files)] if files else "/nonexistent",
                      "dir": dirs[k % len(dirs)], "dangling": "/nonexistent"}[op[1]]
            os.symlink(target, os.path.join(cwd, f"l{k}"))
        elif kind == "fifo":
            os.mkfifo(os.path.join(cwd, f"p{k}"))
        elif kind == "raw":
            path = os.path.join(os.fsencode(cwd), b"r%d\xff\xfe.so.1" % k)
            with open(path, "wb") as f:
                f.write(b"z" * k)
    return files, dirs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(ENTRY, max_size=40), extra=st.lists(st.integers(0, 1000), max_size=3),
       slash=st.booleans())
def test_native_walk_equals_python_walk(ops, extra, slash):
    root = tempfile.mkdtemp(prefix="ppsize-scan-")
    try:
        files, dirs = build(root, ops)
        trees = [root + "/" if slash else root]
        for x in extra:                      # overlapping trees and trees that are files
            pool = dirs + files
            trees.append(pool[x % len(pool)])
        both(trees)
    finally:
        shutil.rmtree(root)


def test_many_files_same_picks(tmp_path):
    """Enough files that each list (libraries, executables, the 1-in-32 CRC sample) is
    long, in several directories, with a hard-linked file seen from two of them."""
    for i in range(600):
        d = tmp_path / f"d{i % 7}" / f"e{i % 5}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"lib{i}.so.{i % 4}" if i % 5 == 0 else f"f{i}.dat"
        (d / name).write_bytes(b"q" * (i % 97))
        if i % 11 == 0:
            (d / name).chmod(0o755)
    os.link(tmp_path / "d0" / "e0" / "lib0.so.0", tmp_path / "d1" / "again")
    s = both([str(tmp_path)])
    assert len(s.data) > 5 and len(s.libs) > 50 and len(s.exes) > 20
    assert s.skipped == {"hardlink": 1}


def test_cross_mounts_flag_same(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    for cross in (False, True):
        both([str(tmp_path)], cross_mounts=cross)


@pytest.mark.skipif(not os.path.isdir("/etc"), reason="no /etc")
def test_native_walk_equals_python_walk_on_etc():
    s = both(["/etc"])
    assert s.nr_files > 0


def test_bad_engine_named():
    with pytest.raises(ValueError, match="scan engine"):
        cmp.scan_trees(["/"], engine="fast")


def _scan_as_nobody(trees, engine):
    """scan_trees in a forked child that gave up root: its result (pickled)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            data = pickle.dumps(cmp.scan_trees(trees, engine=engine))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give up privileges")
def test_permission_errors_as_nobody():
    """A directory that cannot be listed (unreadable_dir) and one that can be listed
    but not searched (each entry's fstatat fails: permission), really, as nobody."""
    import ppsize._core.scan  # noqa: F401  (loaded before giving up root)
    base = tempfile.mkdtemp(prefix="ppsize-perm-")
    try:
        os.chmod(base, 0o755)
        for sub in ("ok", "noread", "nosearch"):
            os.mkdir(os.path.join(base, sub))
            for i in range(3):
                with open(os.path.join(base, sub, f"f{i}.so"), "wb") as f:
                    f.write(b"x" * (100 + i))
            os.chmod(os.path.join(base, sub), 0o755)
        os.chmod(os.path.join(base, "noread"), 0o311)          # searchable, not listable
        os.chmod(os.path.join(base, "nosearch"), 0o644)        # listable, not searchable
        nat = _scan_as_nobody([base], "native")
        ref = _scan_as_nobody([base], "python")
        assert_same(nat, ref)
        assert nat.skipped == {"unreadable_dir": 1, "permission": 3}
        assert nat.examples["unreadable_dir"] == [os.path.join(base, "noread")]
        assert nat.nr_files == 3 and nat.dirs == 4
    finally:
        for sub in ("noread", "nosearch"):
            os.chmod(os.path.join(base, sub), stat.S_IRWXU)
        shutil.rmtree(base)


def _in_child_limited(body):
    """Run body(limit_as) in a forked child; its exit status (0: body returned True)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = 0 if body() else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def test_out_of_memory_is_memory_error():
    """A failed malloc/realloc in push and in the nogil walk raises MemoryError (the walk
    stays failed), never a crash or a silent short result: the address space is limited
    so the 16 MiB copies of a root's path cannot all be made."""
    import resource
    from ppsize._core.scan import TreeWalk

    def push_fails():
        w = TreeWalk()
        big = b"/" + b"x" * (64 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + (16 << 20), resource.RLIM_INFINITY))
        with pytest.raises(MemoryError):
            w.push(big, 0)
        with pytest.raises(MemoryError):
            w.step(10)
        return True

    def walk_fails():
        w = TreeWalk()
        root = b"/" + b"x" * (16 << 20)                # open fails (ENAMETOOLONG): one example each
        for _ in range(4):
            w.push(root, 0)
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + (24 << 20), resource.RLIM_INFINITY))
        with pytest.raises(MemoryError, match="out of memory"):
            while w.step(10):
                pass
        with pytest.raises(MemoryError):
            w.step(10)
        del w                                          # frees what was allocated
        return True

    assert _in_child_limited(push_fails) == 0
    assert _in_child_limited(walk_fails) == 0


def test_out_of_memory_limit_is_real():
    """The same limited walk, with room enough, completes (the limit above is what fails)."""
    from ppsize._core.scan import TreeWalk

    w = TreeWalk()
    root = b"/" + b"x" * (16 << 20)
    for _ in range(4):
        w.push(root, 0)
    while w.step(10):
        pass
    count, examples = w.skipped()[5]                 # unreadable_dir
    assert count == 4 and len(examples) == 4 and all(e == root for e in examples)


# ------------------------------------------------- the walk in threads (issue 13 item 6)
def _scan_with(trees, workers, monkeypatch, **kw):
    monkeypatch.setattr(cmp.scan, "scan_workers", lambda: workers)
    return cmp.scan_trees(trees, engine="native", **kw)


def _linked_tree(root, n=14):
    """n subdirectories of files (some nested), hard links across them (each to an
    earlier and to a later subdirectory), a symbolic link to a subdirectory."""
    paths = []
    for i in range(n):
        d = os.path.join(root, f"s{i:02d}", "deep" if i % 3 == 0 else "")
        os.makedirs(d, exist_ok=True)
        for j in range(5):
            p = os.path.join(d, f"f{j}.so.{i}" if j == 0 else f"f{j}")
            with open(p, "wb") as f:
                f.truncate(1000 * i + j)
            paths.append(p)
    for i in range(1, n, 2):       # s<i>/link<k> -> a file of s<i-1> and of s<i+1>
        os.link(paths[5 * (i - 1)], os.path.join(root, f"s{i:02d}", "back"))
        if i + 1 < n:
            os.link(paths[5 * (i + 1) + 1], os.path.join(root, f"s{i:02d}", "fwd"))
    os.symlink(os.path.join(root, "s03"), os.path.join(root, "s03-link"))
    with open(os.path.join(root, "top"), "wb") as f:
        f.truncate(7)


def test_threaded_walk_is_the_serial_walk(tmp_path, monkeypatch):
    _linked_tree(str(tmp_path))
    sub = str(tmp_path / "s04")
    for trees in ([str(tmp_path)], [str(tmp_path), sub], [sub, str(tmp_path)],
                  [str(tmp_path / "s01"), str(tmp_path / "s02"), str(tmp_path)]):
        one = _scan_with(trees, 1, monkeypatch)
        two = _scan_with(trees, 2, monkeypatch)
        assert_same(one, two)
        assert_same(two, cmp.scan_trees(trees, engine="python"))
        assert two.skipped["hardlink"] >= 6


def test_threaded_walk_walks_a_unit_again_after_a_shared_inode(tmp_path, monkeypatch):
    """A hard link found in two units: the later unit is walked again from every inode
    seen before it (the same result as the serial walk, not a second count)."""
    _linked_tree(str(tmp_path))
    again = []
    real = cmp.scan._rows
    monkeypatch.setattr(cmp.scan, "_rows", lambda keys: again.append(len(keys)) or real(keys))
    two = _scan_with([str(tmp_path)], 2, monkeypatch)
    assert again                            # the re-walk happened
    assert_same(two, _scan_with([str(tmp_path)], 1, monkeypatch))


def test_tree_walk_stack_and_keys(tmp_path):
    from ppsize._core.scan import TreeWalk
    _linked_tree(str(tmp_path), n=3)
    st = os.stat(tmp_path)
    w = TreeWalk()
    assert w.see_dir(st.st_dev, st.st_ino)
    w.push(os.fsencode(str(tmp_path)), st.st_dev)
    assert w.list_dirs(1) == w.stack_size == 3          # s00 s01 s02 wait
    units = w.take_stack()
    listed = [n for n in os.listdir(tmp_path) if os.path.isdir(tmp_path / n) and not os.path.islink(tmp_path / n)]
    assert [os.fsdecode(os.path.basename(p)) for p, _ in units] == listed     # readdir order
    assert w.stack_size == 0 and not w.step(100)
    keys = w.keys(dirs=True)
    assert keys.shape == (4, 2) and (st.st_dev, st.st_ino) in set(map(tuple, keys.tolist()))
    u = TreeWalk()
    u.see_keys(keys, dirs=True)
    assert not u.see_dir(st.st_dev, st.st_ino)
    with pytest.raises(ValueError):
        u.see_keys(np.zeros((2, 3), np.uint64))
