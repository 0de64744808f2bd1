"""Live-kernel oracle for anonymous faults: what the running Linux kernel reports (minflt,
RSS, VmPTE, smaps, folio orders) for a touch pattern under given THP/mTHP settings.

    import live_kernel as lk
    if lk.available():
        with lk.thp_settings(top="never", sizes="never"):          # every size "never"
            r = lk.run({"len": "1M", "align": "2M", "advice": "none",
                        "ops": [("range", 0, "1M", "4K", "w"), "report"]})
        r[-1]["minflt"], r[-1]["RssAnon"] - r[0]["RssAnon"], r[-1]["folios"]  # 256, 1024, {"0": 256}

``run`` compiles tests/live/touch.c with the system C compiler (cached by source hash, see
``build_dir()``), runs it and returns its reports (the first one, label "start", is printed
after set-up); the spec format is documented at the top of touch.c and in ``format_spec``.
Each report is a dict: who ("parent"/"child"), label, seq, minflt/majflt (deltas over the
measured operations since the previous report of the same process), VmRSS, RssAnon, RssFile,
RssShmem, VmPTE (kB, /proc/self/status), region (smaps of the region, kB: Rss, Anonymous,
AnonHugePages, Private_*/Shared_*, vmas), pagemap counts (present, exclusive, swapped),
kpageflags (bool: readable), zero_pages, huge_zero_pages, thp_pages, folios ({order: number of
distinct folios with a page mapped in the region}), folio_pages ({order: region pages mapped
from folios of that order}), errors/last_errno (failed operations since the previous report).

``thp_settings`` changes /sys/kernel/mm/transparent_hugepage/{enabled,defrag,
hugepages-<N>kB/enabled} for the duration of a with-block and always restores (and re-reads)
every value it captured on entry.  ``fault_rate(npages)`` times tests/live/fault_rate.c.
Needs root, /sys/kernel/mm/transparent_hugepage and a C compiler (``available()``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

THP = Path("/sys/kernel/mm/transparent_hugepage")
SRC = Path(__file__).resolve().parent / "live"
CFLAGS = ["-O2", "-Wall", "-Wl,-z,now"]

__all__ = ["available", "unavailable_reason", "supported_sizes", "thp_settings", "read_settings",
           "run", "format_spec", "fault_rate", "compile_program", "build_dir"]


# ---------------------------------------------------------------- environment
def _cc() -> str | None:
    for c in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def unavailable_reason() -> str | None:
    """None if the oracle can run here, else why not."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "not a POSIX system"
    if os.geteuid() != 0:
        return "needs root (sysfs THP settings, /proc/kpageflags)"
    if not (THP / "enabled").exists():
        return f"{THP} does not exist (no THP in this kernel)"
    if _cc() is None:
        return "no C compiler (cc/gcc/clang, or $CC)"
    return None


def available() -> bool:
    """Root, /sys/kernel/mm/transparent_hugepage exists and a C compiler exists."""
    return unavailable_reason() is None


# ---------------------------------------------------------------- sizes and settings
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)[bB]?\s*$")


def _size_kb(size) -> int:
    """64K, "64K", "64kB", "2M", 65536 (bytes), "hugepages-64kB" -> kB."""
    if isinstance(size, int):
        if size <= 0 or size % 1024:
            raise ValueError(f"size {size!r} is not a positive multiple of 1024 bytes")
        return size // 1024
    s = str(size)
    if s.startswith("hugepages-"):
        s = s[len("hugepages-"):]
    m = _SIZE_RE.match(s)
    if not m:
        raise ValueError(f"bad size {size!r} (want e.g. '64K', '2M', 65536)")
    n, unit = int(m.group(1)), m.group(2).upper()
    if unit == "":
        return _size_kb(n)
    return n * {"K": 1, "M": 1024, "G": 1024 * 1024}[unit]


def _fmt_kb(kb: int) -> str:
    return f"{kb // 1024}M" if kb % 1024 == 0 else f"{kb}K"


def supported_sizes() -> list[str]:
    """Anonymous mTHP sizes of this kernel ("16K", ..., "2M"): the hugepages-<N>kB dirs with an
    ``enabled`` file (a dir with only shmem_enabled, e.g. 8kB, is not an anon size)."""
    out = []
    for d in THP.glob("hugepages-*kB"):
        if (d / "enabled").exists():
            out.append(int(d.name[len("hugepages-"):-2]))
    return [_fmt_kb(kb) for kb in sorted(out)]


def _selected(path: Path) -> str:
    text = path.read_text()
    m = re.search(r"\[([^\]]+)\]", text)
    if not m:
        raise RuntimeError(f"cannot parse {path}: {text!r}")
    return m.group(1)


def _setting_paths() -> dict[str, Path]:
    paths = {"enabled": THP / "enabled", "defrag": THP / "defrag"}
    for s in supported_sizes():
        paths[s] = THP / f"hugepages-{_size_kb(s)}kB" / "enabled"
    return paths


def read_settings() -> dict[str, str]:
    """Current values: {"enabled": ..., "defrag": ..., "64K": ..., "2M": ...}."""
    return {k: _selected(p) for k, p in _setting_paths().items()}


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
    got = _selected(path)
    if got != value:
        raise RuntimeError(f"wrote {value!r} to {path} but it reads back {got!r}")


@contextlib.contextmanager
def thp_settings(top: str | None = None, sizes=None, defrag: str | None = None):
    """Set THP knobs for the with-block, then restore every captured value (also on errors).

    top: /sys/kernel/mm/transparent_hugepage/enabled (always|madvise|never), None = unchanged.
    sizes: {"64K": "always", "2M": "inherit", ...} (keys as accepted by supported sizes:
    "64K", "64kB", 65536, "hugepages-64kB"; values always|inherit|madvise|never), or one string
    applied to every supported size; sizes not named are left unchanged. A size this kernel
    does not have raises ValueError.
    defrag: always|defer|defer+madvise|madvise|never, None = unchanged.
    Yields the settings dict in force inside the block. Raises RuntimeError if restoring
    failed (the values that could not be restored are named)."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"live kernel oracle unavailable: {reason}")
    paths = _setting_paths()
    original = {k: _selected(p) for k, p in paths.items()}
    plan: list[tuple[str, str]] = []
    if top is not None:
        plan.append(("enabled", top))
    if defrag is not None:
        plan.append(("defrag", defrag))
    if isinstance(sizes, str):
        plan += [(s, sizes) for s in supported_sizes()]
    elif sizes:
        for key, val in sizes.items():
            name = _fmt_kb(_size_kb(key))
            if name not in paths:
                raise ValueError(f"mTHP size {key!r} not supported here (have {supported_sizes()})")
            plan.append((name, val))
    try:
        for name, val in plan:
            try:
                _write(paths[name], val)
            except OSError as e:
                raise ValueError(f"cannot set {paths[name]} to {val!r}: {e}") from e
        yield read_settings()
    finally:
        failed = []
        # sizes first, then the top level: never leave a size "always" under a restored top
        for name in sorted(original, key=lambda n: n in ("enabled", "defrag")):
            try:
                if _selected(paths[name]) != original[name]:
                    _write(paths[name], original[name])
            except (OSError, RuntimeError) as e:
                failed.append(f"{paths[name]}: {e}")
        now = {k: _selected(p) for k, p in paths.items()}
        failed += [f"{paths[k]} is {now[k]!r}, was {original[k]!r}" for k in original if now[k] != original[k]]
        if failed:
            raise RuntimeError("THP settings not restored: " + "; ".join(failed))


# ---------------------------------------------------------------- build
def build_dir() -> Path:
    """Where compiled helpers are cached: $PPSIZE_LIVE_BUILD or <tmp>/ppsize-live-<uid>."""
    d = os.environ.get("PPSIZE_LIVE_BUILD") or os.path.join(tempfile.gettempdir(), f"ppsize-live-{os.getuid()}")
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def compile_program(name: str) -> Path:
    """Compile tests/live/<name>.c once per (source, compiler, flags) hash; return the binary."""
    cc = _cc()
    if cc is None:
        raise RuntimeError("no C compiler")
    src = SRC / f"{name}.c"
    key = hashlib.sha256(src.read_bytes() + "\0".join([cc] + CFLAGS).encode()).hexdigest()[:16]
    exe = build_dir() / f"{name}-{key}"
    if exe.exists():
        return exe
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=build_dir())
    os.close(fd)
    try:
        res = subprocess.run([cc, *CFLAGS, "-o", tmp, str(src)], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"compiling {src} failed:\n{res.stderr}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)            # atomic: concurrent builders are fine
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe


# ---------------------------------------------------------------- touch.c
def _num(v) -> str:
    if isinstance(v, bool):
        raise TypeError(f"bad number {v!r}")
    if isinstance(v, int):
        if v < 0:
            raise ValueError(f"negative number {v}")
        return str(v)
    s = str(v)
    if not re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)[kKmMgG]?", s):
        raise ValueError(f"bad number {v!r} (want an int or e.g. '64K', '2M', '0x1000')")
    return s


def _rw(v) -> str:
    if v in ("w", "write", True):
        return "w"
    if v in ("r", "read", False):
        return "r"
    raise ValueError(f"bad access {v!r} (want 'w' or 'r')")


def _format_ops(ops, out: list[str]) -> None:
    for op in ops:
        if isinstance(op, str):
            op = (op,)
        kind, *a = op
        if kind == "report":
            label = a[0] if a else ""
            if label and not re.fullmatch(r"[A-Za-z0-9_.:+-]{1,47}", label):
                raise ValueError(f"bad report label {label!r}")
            out.append(f"report {label}".rstrip())
        elif kind == "touch":
            out.append(f"touch {_num(a[0])} {_rw(a[1] if len(a) > 1 else 'w')}")
        elif kind in ("range", "touch_range"):
            out.append(f"range {_num(a[0])} {_num(a[1])} {_num(a[2])} {_rw(a[3] if len(a) > 3 else 'w')}")
        elif kind == "dontneed":
            out.append(f"dontneed {_num(a[0])} {_num(a[1])}")
        elif kind == "madvise":
            out.append(f"madvise {_num(a[0])} {_num(a[1])} {a[2]}")
        elif kind == "munmap":
            out.append(f"munmap {_num(a[0])} {_num(a[1])}")
        elif kind == "mprotect":
            if a[2] not in ("none", "r", "rw"):
                raise ValueError(f"bad prot {a[2]!r} (want none|r|rw)")
            out.append(f"mprotect {_num(a[0])} {_num(a[1])} {a[2]}")
        elif kind in ("fork", "fork_then_child_touch"):
            out.append("fork")
            _format_ops(a[0], out)
            out.append("endfork")
        else:
            raise ValueError(f"unknown operation {kind!r}")


def format_spec(spec) -> str:
    """dict -> touch.c text. Keys: len, align, misalign, advice (none|hugepage|nohugepage),
    guard (bool), ops: list of
      ("touch", off, "w"|"r")            ("range", start, end, stride, "w"|"r")
      ("dontneed", off, len)             ("madvise", off, len, advice)
      ("munmap", off, len)               ("mprotect", off, len, "none"|"r"|"rw")
      ("fork", [child ops...])           "report" or ("report", label)
    Numbers are ints (bytes) or strings like "64K". A str spec is passed through unchanged."""
    if isinstance(spec, str):
        return spec
    known = {"len", "align", "misalign", "advice", "guard", "ops"}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown spec keys {sorted(unknown)}")
    lines = []
    for k in ("len", "align", "misalign"):
        if k in spec:
            lines.append(f"{k}={_num(spec[k])}")
    if "advice" in spec:
        adv = spec["advice"] or "none"
        if adv not in ("none", "hugepage", "nohugepage"):
            raise ValueError(f"bad advice {adv!r}")
        lines.append(f"advice={adv}")
    if "guard" in spec:
        lines.append(f"guard={int(bool(spec['guard']))}")
    _format_ops(spec.get("ops", []), lines)
    return "\n".join(lines) + "\n"


def run(spec, timeout: float = 60) -> list[dict]:
    """Run touch.c on `spec` (dict or text, see format_spec / touch.c); return its reports in
    output order (the parent waits for each fork child, so a child's reports come between the
    parent's). Raises RuntimeError if the program fails."""
    exe = compile_program("touch")
    res = subprocess.run([str(exe)], input=format_spec(spec), capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode:
        raise RuntimeError(f"touch exited {res.returncode}: {res.stderr.strip()}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def fault_rate(npages: int, timeout: float = 120) -> dict:
    """The running kernel's own anonymous 4K write-fault cost: a fresh MADV_NOHUGEPAGE mapping
    of `npages` pages, one byte written per page. Returns {"npages", "ns", "minflt", "majflt",
    "ns_per_fault"}."""
    if int(npages) <= 0:
        raise ValueError(f"npages must be > 0, got {npages!r}")
    exe = compile_program("fault_rate")
    res = subprocess.run([str(exe), str(int(npages))], capture_output=True, text=True, timeout=timeout)
    if res.returncode:
        raise RuntimeError(f"fault_rate exited {res.returncode}: {res.stderr.strip()}")
    d = json.loads(res.stdout)
    d["ns_per_fault"] = d["ns"] / max(d["minflt"], 1)
    return d
