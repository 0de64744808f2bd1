"""A sweep's SPEC: a TOML (or YAML) file or a dict naming the values of each
dimension of the grid, validated once (:func:`load_spec` -> :class:`Spec`), and
its expansion into cells (:meth:`Spec.cells` -> :class:`Cell`, one ``compare``
configuration on one workload each). Pure Python: no Dask, no pandas."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from itertools import product

from .._validate import as_choice, as_int
from ..units import parse_size

__all__ = ["Spec", "Cell", "load_spec", "parse_override", "LIST_KEYS", "SCALAR_KEYS", "SPEC_KEYS",
           "TREE_SEP", "SYNTHETIC", "CELL_PARAMS"]

TREE_SEP = ":"             # trees scanned together in one workload: "/usr:/etc" (as PATH)
SYNTHETIC = "synthetic"    # compare's seeded process mix (compare.workload.make_workload)

# the grid's dimensions (each a list; a scalar is a list of one) and the settings
# every cell shares; a key left out takes compare's default (see _defaults)
LIST_KEYS = ("trees", "configs", "seeds", "policies", "thp", "cpus", "workloads")
SCALAR_KEYS = ("processes", "chosen", "steady", "memory", "cross_mounts", "check", "output")
SPEC_KEYS = LIST_KEYS + SCALAR_KEYS


def _defaults() -> dict:
    from ..compare import CONFIGS, DEFAULT_CPU, DEFAULT_TREES, STEADY_ACCESSES
    return {"trees": [tuple(DEFAULT_TREES)], "configs": [c.key for c in CONFIGS], "seeds": [0],
            "policies": ["drop-all"], "thp": ["madvise"], "cpus": [DEFAULT_CPU],
            "workloads": [SYNTHETIC], "processes": 12, "chosen": "alternate",
            "steady": STEADY_ACCESSES, "memory": "auto", "cross_mounts": False, "check": False,
            "output": None}


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a ``compare`` configuration (``config``) run on one
    workload (trees, workload, seed, processes, chosen) with one kernel setting
    (policy, thp, cpu, memory). A pure function of these fields, so its figures
    are keyed by them and ppsize's version (:meth:`key`)."""
    trees: tuple
    workload: str
    seed: int
    policy: str
    thp: str
    cpu: str                   # a CPU_PRESETS name, or "none"
    config: str
    processes: int
    chosen: str
    steady: int
    memory: str                # a size, or "auto" (compare.memory_for)
    cross_mounts: bool
    check: bool

    def params(self) -> dict:
        """The fields as result columns (trees joined by ``TREE_SEP``)."""
        d = asdict(self)
        d["trees"] = TREE_SEP.join(self.trees)
        return d

    def key(self, version=None) -> str:
        """The cell's identity in a results file: a hash of its parameters and
        ppsize's version (another version's figures are another cell)."""
        if version is None:
            from .. import __version__ as version
        blob = json.dumps([self.params(), version], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def scan_key(self) -> tuple:
        """The cells of one scan (compare.scan_trees's arguments)."""
        return self.trees, self.cross_mounts


CELL_PARAMS = tuple(f.name for f in fields(Cell))


@dataclass(frozen=True)
class Spec:
    """A validated SPEC (every key filled in). ``cells()`` expands the grid, the
    configurations innermost, so one workload's cells are adjacent."""
    trees: tuple
    configs: tuple
    seeds: tuple
    policies: tuple
    thp: tuple
    cpus: tuple
    workloads: tuple
    processes: int
    chosen: str
    steady: int
    memory: str
    cross_mounts: bool
    check: bool
    output: str = None

    def cells(self) -> list:
        return [Cell(trees, workload, seed, policy, thp, cpu, config, self.processes, self.chosen,
                     self.steady, self.memory, self.cross_mounts, self.check)
                for trees, workload, seed, policy, thp, cpu, config in
                product(self.trees, self.workloads, self.seeds, self.policies, self.thp,
                        self.cpus, self.configs)]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["trees"] = [list(t) for t in self.trees]
        for k in LIST_KEYS[1:]:
            d[k] = list(d[k])
        return d


# ------------------------------------------------------------------- reading
def _read_file(path) -> dict:
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".toml", ".yaml", ".yml"):
        raise ValueError(f"SPEC {path!r}: give a .toml (or .yaml/.yml) file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"cannot read SPEC {path!r}: {e.strerror or e}") from None
    if ext in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"SPEC {path!r} is YAML, which needs PyYAML (pip install pyyaml); "
                             f"or write it as TOML (.toml)") from None
        try:
            data = yaml.safe_load(raw) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"SPEC {path!r} is not valid YAML: {e}") from None
    else:
        try:
            import tomllib
        except ImportError:                  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ValueError(f"SPEC {path!r} is TOML, which needs Python 3.11 or tomli "
                                 f"(pip install tomli)") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"SPEC {path!r} is not valid TOML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"SPEC {path!r} must be a table of keys, not {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple:
    """``"KEY=VALUE"`` (a command-line override) -> (key, value); a list key's
    value is comma-separated (``seeds=0,1,2`` or ``seeds=0-3``; ``trees=/usr:/etc,/opt``:
    two workloads, the first of two trees)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override {text!r}: write KEY=VALUE (keys: {', '.join(SPEC_KEYS)})")
    if key in LIST_KEYS:
        return key, [v.strip() for v in value.split(",") if v.strip()]
    return key, value.strip()


def load_spec(spec, overrides=()) -> Spec:
    """Validate ``spec`` (a path to a TOML/YAML file, a dict of the same content, or
    a Spec) with ``overrides`` (a dict, or "KEY=VALUE" strings) applied on top.
    Raises ValueError naming the key and the allowed values of anything unknown."""
    if isinstance(spec, Spec):
        data = spec.as_dict()
    elif isinstance(spec, dict):
        data = dict(spec)
    elif isinstance(spec, (str, os.PathLike)):
        data = _read_file(spec)
    else:
        raise TypeError(f"spec must be a path, a dict or a Spec, not {type(spec).__name__}")
    if isinstance(overrides, dict):
        overrides = list(overrides.items())
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        data[key] = value
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise ValueError(f"unknown SPEC key {unknown[0]!r}; the keys are {', '.join(SPEC_KEYS)}")
    out = _defaults()
    for key, value in data.items():
        out[key] = _CHECK[key](value)
    if out["chosen"] not in ("alternate", "all", "none"):
        bad = [i for i in map(int, out["chosen"].split(",")) if i >= out["processes"]]
        if bad:
            raise ValueError(f"chosen: process {bad[0]} out of range 0..{out['processes'] - 1}")
    return Spec(**{k: tuple(out[k]) if k in LIST_KEYS else out[k] for k in SPEC_KEYS})


# ---------------------------------------------------------------- validation
def _as_list(key, value) -> list:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"{key}: give at least one value")
    return items


def _unique(key, items) -> list:
    seen = set()
    for v in items:
        h = json.dumps(v) if isinstance(v, (list, tuple)) else v
        if h in seen:
            raise ValueError(f"{key}: {v!r} is listed twice")
        seen.add(h)
    return items


def _choices(key, choices, what):
    def check(value):
        out = []
        for v in _as_list(key, value):
            try:
                out.append(as_choice(v, choices, what))
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        return _unique(key, out)
    return check


def _trees(value) -> list:
    out = []
    for entry in _as_list("trees", value):
        if isinstance(entry, str):
            parts = [p for p in entry.split(TREE_SEP) if p]
        elif isinstance(entry, (list, tuple)) and all(isinstance(p, str) for p in entry):
            parts = list(entry)
        else:
            raise ValueError(f"trees: {entry!r} is neither a path nor a list of paths")
        if not parts:
            raise ValueError(f"trees: {entry!r} names no tree")
        for p in parts:
            if not os.path.exists(p):
                raise ValueError(f"trees: {p!r} does not exist")
        out.append(tuple(os.path.normpath(p) for p in parts))
    return _unique("trees", out)


def _int(key, lo):
    def check(value):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        try:
            n = as_int(value, key)
        except TypeError as e:
            raise ValueError(str(e)) from None
        if n < lo:
            raise ValueError(f"{key} must be at least {lo}, not {n}")
        return n
    return check


def _seeds(value) -> list:
    out = []
    for v in _as_list("seeds", value):
        a, dash, b = v.partition("-") if isinstance(v, str) else ("", "", "")
        if dash and a.strip().isdigit() and b.strip().isdigit():      # "0-7": a range
            lo, hi = int(a), int(b)
            if hi < lo:
                raise ValueError(f"seeds: range {v!r} is empty")
            out.extend(range(lo, hi + 1))
        else:
            out.append(_int("seeds", 0)(v))
    return _unique("seeds", out)


def _workloads(value) -> list:
    out = []
    for v in _as_list("workloads", value):
        if not isinstance(v, str):
            raise ValueError(f"workloads: {v!r} is not a string; give {SYNTHETIC!r} or a recording file")
        if v != SYNTHETIC:
            if not os.path.exists(v):
                raise ValueError(f"workloads: {v!r} is neither {SYNTHETIC!r} (compare's seeded mix) "
                                 f"nor an existing recording file")
            # replaying a recording (issue 10) is not part of this version of ppsize
            raise ValueError(f"workloads: {v!r}: replaying recorded workloads in a sweep is not yet "
                             f"available; the only workload is {SYNTHETIC!r}")
        out.append(v)
    return _unique("workloads", out)


def _chosen(value) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(_int("chosen", 0)(v)) for v in value)
    if not isinstance(value, str):
        raise ValueError(f"chosen must be 'alternate', 'all', 'none' or a list of process indices, "
                         f"not {value!r}")
    if value not in ("alternate", "all", "none"):
        for v in value.split(","):
            if not v.strip().isdigit():
                raise ValueError(f"chosen {value!r}: give 'alternate', 'all', 'none' or "
                                 f"comma-separated process indices")
    return value


def _memory(value) -> str:
    if value == "auto":
        return value
    try:
        parse_size(value, "memory")
    except TypeError as e:
        raise ValueError(str(e)) from None
    return str(value)


def _bool(key):
    def check(value):
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, not {value!r}")
        return value
    return check


def _output(value):
    if value is not None and not isinstance(value, str):
        raise ValueError(f"output must be a file name, not {value!r}")
    return value


def _configs(value):
    from ..compare import CONFIGS
    return _choices("configs", [c.key for c in CONFIGS], "configuration")(value)


def _policies(value):
    from ..filepolicy import FILE_POLICIES
    return _choices("policies", FILE_POLICIES, "file policy")(value)


def _thp(value):
    from ..compare import THP_MODES
    return _choices("thp", THP_MODES, "THP setting")(value)


def _cpus(value):
    from ..cpu_presets import CPU_PRESETS
    return _choices("cpus", [c for c in CPU_PRESETS if c != "custom"] + ["none"], "CPU preset")(value)


_CHECK = {"trees": _trees, "configs": _configs, "seeds": _seeds, "policies": _policies,
          "thp": _thp, "cpus": _cpus, "workloads": _workloads, "processes": _int("processes", 1),
          "chosen": _chosen, "steady": _int("steady", 0), "memory": _memory,
          "cross_mounts": _bool("cross_mounts"), "check": _bool("check"), "output": _output}
assert set(_CHECK) == set(SPEC_KEYS)
