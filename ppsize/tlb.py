"""Standalone MMU model: ``TLB(cpu)`` builds one CPU's TLB hierarchy, walk caches and
data-cache model (``ppsize._core.tlb``) from a preset (``ppsize.CPU_PRESETS``) or keyword
arguments, and ``TLB.run`` replays raw address arrays through it.

    t = TLB("cortex-a76")
    t.map(asid=1, ranges=[(0x10000000, 0x10400000, "64K")], geometry="arm64-4k-48")
    t.run(addresses, asid=1)          # 0 = L1 hit, 1 = L2 hit, 2 = walk, per access
    t.stats(asid=1)["l1d"]["misses"]

A range's unit is how the walker finds it in the ASID's geometry: the page size (PTE),
the contiguous run (PTE_CONT, CONT_PTES pages), the PMD block, the CONT_PMD run or the
PUD block. Flushes follow Linux's names: ``flush_tlb_range``, ``flush_tlb_mm``,
``flush_tlb_page`` (see ppsize/_core/tlb.pyx for what each covers).
"""
from __future__ import annotations

import numpy as np

from ._lock import new_lock, serialized
from .cpu_presets import CPU_PRESETS, PRESETS
from .geometry import Geometry, geometry as lookup_geometry
from .pagetable import as_addresses
from .units import fmt_size, parse_size

__all__ = ["TLB", "MMU", "CPU_PRESETS", "REPLACEMENTS", "StaleTLBHit", "estimate_cycles",
           "linux_flush_range", "stats_dict"]

REPLACEMENTS = {"lru": 0, "plru": 1, "random": 2}
ALL_SIZES = ("4K", "16K", "64K", "2M", "32M", "512M", "1G", "16G")
LEVEL_KEYS = {"entries", "ways", "sizes", "replacement", "seed", "cite", "assumed"}
WC_KEYS = {"name", "entries", "ways", "distance", "in_tlb", "replacement", "seed", "cite"}
MAX_ASIDS = 64
LINE = 64

# counter layout of ppsize/_core/tlb.pxd (C_*)
_C_WALKS, _C_REFS, _C_REFS_L, _C_WC_LOOK, _C_WC_HIT = 16, 17, 18, 23, 29
_C_DC_ACC, _C_DC_HIT, _C_STALE = 35, 36, 37
_C_FL_RANGE, _C_FL_MM, _C_FL_PAGE, _C_FL_ENTRIES, _C_FL_LIMIT, _C_WALK_FAULT = 38, 39, 40, 41, 42, 43
NR_COUNTERS = 48


class StaleTLBHit(AssertionError):
    """A TLB hit whose translation no longer matches the page-size map: a missing flush."""


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _shift_of(size, what):
    n = parse_size(size, what)
    if n < 4096 or n & (n - 1):
        raise ValueError(f"{what} {size!r} is not a power of two >= 4K")
    return n.bit_length() - 1


def _replacement(name, what):
    if name not in REPLACEMENTS:
        raise ValueError(f"{what}: unknown replacement {name!r}; choose one of {', '.join(REPLACEMENTS)}")
    return REPLACEMENTS[name]


def _geometry_arrays(g: Geometry):
    return {"levels": g.levels, "shifts": list(g.shifts),
            "tbits": [int(e).bit_length() - 1 for e in g.entries], "x86": g.arch == "x86_64"}


@serialized
class TLB:
    """One CPU's MMU model (L1I, L1D, unified L2 or L2I + L2D, walk caches, a data cache
    for walk references), ASID-tagged.

    ``cpu``: a name from ``CPU_PRESETS`` ("custom": everything from keywords).
    Keywords override or supply levels: ``l1d=dict(entries=48, ways=48, sizes=["4K",
    "64K"], replacement="plru")``, ``l1i``, ``l2`` (unified) or ``l2d``/``l2i``,
    ``walk_caches=[dict(name="psc2", entries=32, ways=32, distance=1), ...]`` (distance 1
    = the entry pointing at the last-level table; ``in_tlb="l2"`` stores it in a TLB
    level), ``dcache=dict(size="64K", ways=4)`` or ``None``, ``coalesce`` (cache
    contiguous-bit runs as one entry), ``replacement`` (default for every level,
    "lru"), ``seed``, ``max_asids``. ``ways`` defaults to ``entries`` (fully associative).
    """

    def __init__(self, cpu: str = "cortex-a76", *, max_asids: int = MAX_ASIDS,
                 replacement: str = "lru", seed: int = 1, **kw):
        from ._core.tlb import TlbCore
        self._lock = new_lock()      # standalone; a Kernel's TLBs get the Kernel's lock
        if not isinstance(cpu, str) or cpu not in CPU_PRESETS:
            raise ValueError(f"unknown CPU preset {cpu!r}; choose one of {', '.join(CPU_PRESETS)}")
        preset = PRESETS.get(cpu, {})
        allowed = {"l1d", "l1i", "l2", "l2d", "l2i", "walk_caches", "dcache", "coalesce", "latencies",
                   "range_ops"}
        unknown = set(kw) - allowed
        if unknown:
            raise ValueError(f"unknown TLB keyword(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        _replacement(replacement, "replacement")
        self.init_args = dict(kw, cpu=cpu, max_asids=max_asids, replacement=replacement, seed=seed)
        self.cpu = cpu
        self.assumptions: list = []      # preset values the model assumes (no source gave them)
        self.max_asids = _positive_int(max_asids, "max_asids")
        self.arch = preset.get("arch", "arm64")
        names = []
        specs = {}
        for name in ("l1d", "l1i", "l2", "l2d", "l2i"):
            spec = dict(preset.get(name, {}))
            if name in kw:
                if kw[name] is None:
                    spec = {}
                else:
                    if not isinstance(kw[name], dict):
                        raise ValueError(f"{name} must be a dict of level settings, got {kw[name]!r}")
                    spec.update(kw[name])
            if spec:
                specs[name] = spec
                names.append(name)
        for side in ("l1d", "l1i"):
            if side not in specs:
                raise ValueError(f"{side} is required (entries=, ways=)")
        if "l2" in specs and ("l2d" in specs or "l2i" in specs):
            raise ValueError("give either a unified l2 or l2d/l2i, not both")
        self.level_names = names
        tlbs = [self._level(n, specs[n], replacement, seed + i) for i, n in enumerate(names)]
        idx = {n: i for i, n in enumerate(names)}
        l2d = idx.get("l2", idx.get("l2d", -1))
        l2i = idx.get("l2", idx.get("l2i", -1))
        wcs = kw["walk_caches"] if "walk_caches" in kw else preset.get("walk_caches", [])
        self.walk_cache_names = []
        wc_cfg = []
        for j, wc in enumerate(wcs or []):
            wc_cfg.append(self._walk_cache(j, wc, idx, replacement, seed + 16 + j))
        if len(wc_cfg) > 6:
            raise ValueError(f"at most 6 walk caches, got {len(wc_cfg)}")
        dc = kw["dcache"] if "dcache" in kw else preset.get("dcache")
        dc_cfg = self._dcache(dc, replacement, seed + 32) if dc else None
        coalesce = kw.get("coalesce", preset.get("coalesce", {}).get("value", True))
        if not isinstance(coalesce, bool):
            raise ValueError(f"coalesce must be True or False, got {coalesce!r}")
        self.coalesce = coalesce
        range_ops = kw.get("range_ops", preset.get("range_ops", {}).get("value", False))
        if not isinstance(range_ops, bool):
            raise ValueError(f"range_ops must be True or False, got {range_ops!r}")
        self.latencies = {k: v["cycles"] for k, v in preset.get("latencies", {}).items()}
        self.latencies.update(kw.get("latencies") or {})
        self.config = {"tlbs": tlbs, "l1": [idx["l1d"], idx["l1i"]], "l2": [l2d, l2i],
                       "walk_caches": wc_cfg, "dcache": dc_cfg, "coalesce": coalesce,
                       "range_ops": range_ops, "max_asids": self.max_asids}
        self._core = TlbCore(self.config)
        self._geoms: dict = {}           # geometry name -> id
        self._maps: dict = {}            # asid -> (geometry, arrays)
        self._csr = None

    # ------------------------------------------------------------ config
    def _level(self, name, spec, replacement, seed):
        unknown = set(spec) - LEVEL_KEYS
        if unknown:
            raise ValueError(f"{name}: unknown setting(s) {sorted(unknown)}; allowed: {sorted(LEVEL_KEYS)}")
        if "entries" not in spec:
            raise ValueError(f"{name}: entries is required")
        entries = _positive_int(spec["entries"], f"{name} entries")
        if spec.get("ways") is None and spec.get("assumed"):
            self.assumptions.append(f"{name}: {spec['assumed']}")
            spec = dict(spec, ways=entries)
        ways = _positive_int(spec.get("ways", entries), f"{name} ways")
        if entries % ways:
            raise ValueError(f"{name}: entries {entries} is not a multiple of ways {ways}")
        if ways > 65534:
            raise ValueError(f"{name}: ways {ways} > 65534")
        sizes = spec.get("sizes") or ALL_SIZES
        shifts = sorted({_shift_of(s, f"{name} size") for s in sizes})
        return {"name": name, "sets": entries // ways, "ways": ways, "sizes": shifts,
                "repl": _replacement(spec.get("replacement", replacement), name),
                "seed": int(spec.get("seed", seed))}

    def _walk_cache(self, j, wc, idx, replacement, seed):
        if not isinstance(wc, dict):
            raise ValueError(f"walk cache {j} must be a dict, got {wc!r}")
        unknown = set(wc) - WC_KEYS
        if unknown:
            raise ValueError(f"walk cache {j}: unknown setting(s) {sorted(unknown)}")
        name = wc.get("name", f"walk_cache{j}")
        dist = wc.get("distance")
        if dist not in (1, 2, 3, 4):
            raise ValueError(f"walk cache {name}: distance must be 1..4 (levels above the last), got {dist!r}")
        self.walk_cache_names.append(name)
        if wc.get("in_tlb") is not None:
            if wc["in_tlb"] not in idx:
                raise ValueError(f"walk cache {name}: in_tlb {wc['in_tlb']!r} is not a TLB level "
                                 f"({', '.join(idx)})")
            return {"name": name, "distance": dist, "in_tlb": idx[wc["in_tlb"]]}
        cfg = self._level(name, {k: v for k, v in wc.items() if k in LEVEL_KEYS}, replacement, seed)
        cfg.update(distance=dist, in_tlb=-1)
        return cfg

    def _dcache(self, dc, replacement, seed):
        if not isinstance(dc, dict):
            raise ValueError(f"dcache must be a dict (size=, ways=) or None, got {dc!r}")
        size = parse_size(dc.get("size", 0), "dcache size")
        ways = _positive_int(dc.get("ways", 0), "dcache ways")
        if size <= 0 or size % LINE:
            raise ValueError(f"dcache size {dc.get('size')!r} must be a positive multiple of {LINE}")
        lines = size // LINE
        if lines % ways:
            raise ValueError(f"dcache: {lines} lines is not a multiple of ways {ways}")
        return {"name": "dcache", "sets": lines // ways, "ways": ways,
                "repl": _replacement(dc.get("replacement", replacement), "dcache"),
                "seed": int(dc.get("seed", seed))}

    # ------------------------------------------------------------ page-size map
    def _geometry_id(self, g: Geometry) -> int:
        if g.name not in self._geoms:
            a = _geometry_arrays(g)
            self._geoms[g.name] = self._core.add_geometry(a["levels"], a["shifts"], a["tbits"], a["x86"])
        return self._geoms[g.name]

    def bind(self, asid: int, geometry) -> None:
        """Tag ``asid``'s walks with the table mode ``geometry`` (walk depth, index bits,
        flush policy): what an engine does for each MM it switches to."""
        self._core.set_asid(self._asid(asid), self._geometry_id(lookup_geometry(geometry)))

    def _unit(self, g: Geometry, size: int):
        """(leaf level, TLB unit) of a range mapped in units of `size` in geometry g."""
        L = g.levels
        cont = {}
        if g.cont_ptes > 1:
            cont[g.cont_pte_size] = (L - 1, g.page_size)
        if g.cont_pmds > 1 and "PMD" in g.block_sizes:
            cont[g.cont_pmd_size] = (L - 2, g.pmd_size)
        plain = {g.page_size: L - 1}
        for name, bsize in g.block_sizes.items():
            plain[bsize] = g.level_of(name)
        if size in plain:
            return plain[size], size
        if size in cont:
            leaf, base = cont[size]
            return leaf, size if self.coalesce else base
        valid = sorted(set(plain) | set(cont))
        raise ValueError(f"unit {fmt_size(size)} is not a way {g.name} maps memory; "
                         f"choose one of {', '.join(fmt_size(v) for v in valid)}")

    def map(self, asid: int, ranges, geometry="arm64-4k-48"):
        """Set the page-size map of one ASID (its page tables): ``ranges`` is a list of
        ``(start, end, unit)`` or ``(start, end, unit, pa)`` (pa defaults to an
        identity-like mapping); ``unit`` is the page size, contiguous run or block size
        the range is mapped with in ``geometry`` (the ASID's table mode). Replaces the
        previous map; it does not flush (call the flush_tlb_* methods as Linux would)."""
        asid = self._asid(asid)
        g = lookup_geometry(geometry)
        gid = self._geometry_id(g)
        rows = []
        for i, r in enumerate(ranges):
            if not isinstance(r, (tuple, list)) or len(r) not in (3, 4):
                raise ValueError(f"range {i} must be (start, end, unit[, pa]), got {r!r}")
            start, end = int(r[0]), int(r[1])
            size = parse_size(r[2], f"range {i} unit")
            leaf, unit = self._unit(g, size)
            pa = int(r[3]) if len(r) == 4 else start + ((asid + 1) << 44)
            if start >= end:
                raise ValueError(f"range {i} {start:#x}-{end:#x} is empty or reversed")
            if (start | end | pa) % size:
                raise ValueError(f"range {i} {start:#x}-{end:#x} (pa {pa:#x}) is not aligned to its unit {fmt_size(size)}")
            if end > g.va_size:
                raise ValueError(f"range {i} ends at {end:#x}, beyond the {g.va_bits}-bit VA of {g.name}")
            rows.append((start, end, unit, pa, leaf))
        rows.sort()
        for a, b in zip(rows, rows[1:]):
            if b[0] < a[1]:
                raise ValueError(f"ranges overlap: {a[0]:#x}-{a[1]:#x} and {b[0]:#x}-{b[1]:#x}")
        self._core.set_asid(asid, gid)
        self._maps[asid] = (g, rows)
        self._csr = None

    def _build_csr(self):
        off = np.zeros(self.max_asids + 1, dtype=np.int64)
        rows = []
        for a in range(self.max_asids):
            rows += self._maps.get(a, (None, []))[1]
            off[a + 1] = len(rows)
        col = list(zip(*rows)) if rows else [[]] * 5
        self._csr = (off, np.array(col[0], np.uint64), np.array(col[1], np.uint64),
                     np.array(col[2], np.uint64), np.array(col[3], np.uint64),
                     np.array(col[4], np.int32))

    def _asid(self, asid):
        if isinstance(asid, bool) or not isinstance(asid, (int, np.integer)) or not 0 <= asid < self.max_asids:
            raise ValueError(f"asid {asid!r} out of range 0..{self.max_asids - 1}")
        return int(asid)

    # ------------------------------------------------------------ run
    def run(self, addresses, asid=0, side="d", page_map=None, geometry="arm64-4k-48", check=False):
        """Translate every address (one nogil loop): returns int8 per access, 0 = L1 hit,
        1 = L2 hit, 2 = walk. ``asid``: an int or an array (one per access); ``side``:
        "d"/"i" or an array (0 data, 1 instruction); ``page_map``: ranges for ``map``
        of a scalar asid. ``check``: compare every hit with the map (stale hits counted
        in stats()["check"]); "raise" raises StaleTLBHit at the first."""
        if page_map is not None:
            if not np.isscalar(asid):
                raise ValueError("page_map needs a scalar asid")
            self.map(asid, page_map, geometry)
        vas = as_addresses(addresses, "addresses")
        if vas.ndim != 1:
            raise ValueError(f"addresses must be one-dimensional, not shape {vas.shape}")
        vas = np.ascontiguousarray(vas, dtype=np.uint64)
        n = vas.shape[0]
        if np.isscalar(asid):
            asids, asid_all = np.zeros(0, np.uint16), self._asid(asid)
            if asid_all not in self._maps:
                raise ValueError(f"asid {asid_all} has no page-size map (call map() first)")
        else:
            a = np.asarray(asid)
            if a.shape != (n,):
                raise ValueError(f"asid array has shape {a.shape}, the addresses ({n},)")
            if n and (a.min() < 0 or a.max() >= self.max_asids):
                raise ValueError(f"asid values must be in 0..{self.max_asids - 1}")
            missing = sorted(set(np.unique(a).tolist()) - set(self._maps))
            if missing:
                raise ValueError(f"asid(s) {missing} have no page-size map")
            asids, asid_all = np.ascontiguousarray(a, np.uint16), 0
        if isinstance(side, str):
            if side not in ("d", "i"):
                raise ValueError(f"side must be 'd', 'i' or an array, got {side!r}")
            sides, side_all = np.zeros(0, np.uint8), int(side == "i")
        else:
            s = np.asarray(side)
            if s.shape != (n,) or (n and s.max() > 1):
                raise ValueError(f"side array must be shape ({n},) of 0 (data) / 1 (instruction)")
            sides, side_all = np.ascontiguousarray(s, np.uint8), 0
        if check not in (False, True, "raise"):
            raise ValueError(f"check must be False, True or 'raise', got {check!r}")
        if self._csr is None:
            self._build_csr()
        result = np.empty(n, dtype=np.int8)
        bad, nstale, first = self._core.run(vas, asids, asid_all, sides, side_all, *self._csr,
                                            result, bool(check))
        if bad >= 0:
            who = asids[bad] if asids.size else asid_all
            raise ValueError(f"address {int(vas[bad]):#x} (index {bad}) is not in asid {int(who)}'s "
                             f"page-size map: the map does not match the address array")
        if check == "raise" and nstale:
            raise StaleTLBHit(f"{nstale} stale TLB hit(s); first at index {first}, va {int(vas[first]):#x}")
        return result

    # ------------------------------------------------------------ flushes (Linux names)
    def flush_tlb_range(self, asid, start, end, last_level=False):
        """flush_tlb_range / mmu_gather tlb_flush: entries of asid overlapping
        [start, end); last_level=False also drops walk-cache entries (tables freed)."""
        self._core.invalidate_range(self._asid(asid), int(start), int(end), bool(last_level))

    def flush_tlb_mm(self, asid):
        """flush_tlb_mm: every entry of the ASID (leaf and walk cache)."""
        self._core.invalidate_mm(self._asid(asid))

    def flush_tlb_page(self, asid, va):
        """flush_tlb_page: leaf entries holding va (walk caches kept)."""
        self._core.invalidate_page(self._asid(asid), int(va))

    def flush_tlb_all(self):
        self._core.invalidate_all()

    # ------------------------------------------------------------ results
    def stats(self, asid=None) -> dict:
        """Counters as a dict keyed by level ("l1d", "l1i", "l2" or "l2d"/"l2i",
        "walk", each walk cache by name, "dcache", "flush", "check"), each a dict of
        counters; ``asid=None`` sums every ASID (the CPU's view)."""
        c = self._core.counters
        row = c.sum(axis=0) if asid is None else c[self._asid(asid)]
        return stats_dict(row, self.level_names, self.walk_cache_names, self.config["dcache"] is not None)

    def reset_stats(self):
        self._core.counters[:] = 0

    def check(self):
        """Verify the model's invariants (AssertionError on a violation)."""
        self._core.check()

    @property
    def core(self):
        """The ppsize._core.tlb.TlbCore (for engines that cimport it)."""
        return self._core

    def __repr__(self):
        return f"TLB({self.cpu!r}, levels={self.level_names}, walk_caches={self.walk_cache_names})"


MMU = TLB


def stats_dict(row, level_names, walk_cache_names, has_dcache=True) -> dict:
    """The stats format shared by TLB.stats and the engine's tlb_stats(): one counter
    row (ppsize/_core/tlb.pxd C_* layout) as nested dicts."""
    row = [int(x) for x in row]
    out = {}
    for k, name in enumerate(level_names):
        acc, hit = row[4 * k], row[4 * k + 1]
        out[name] = {"accesses": acc, "hits": hit, "misses": acc - hit,
                     "fills": row[4 * k + 2], "evictions": row[4 * k + 3]}
    out["walk"] = {"walks": row[_C_WALKS], "refs": row[_C_REFS],
                   "refs_by_level": row[_C_REFS_L:_C_REFS_L + 5],
                   "walk_cache_hits": sum(row[_C_WC_HIT:_C_WC_HIT + 6]),
                   "faulting": row[_C_WALK_FAULT]}
    for j, name in enumerate(walk_cache_names):
        look, hit = row[_C_WC_LOOK + j], row[_C_WC_HIT + j]
        out[name] = {"lookups": look, "hits": hit, "misses": look - hit}
    if has_dcache:
        acc, hit = row[_C_DC_ACC], row[_C_DC_HIT]
        out["dcache"] = {"accesses": acc, "hits": hit, "misses": acc - hit}
    out["flush"] = {"range": row[_C_FL_RANGE], "mm": row[_C_FL_MM], "page": row[_C_FL_PAGE],
                    "entries": row[_C_FL_ENTRIES], "escalated": row[_C_FL_LIMIT]}
    out["check"] = {"stale_hits": row[_C_STALE]}
    return out


def estimate_cycles(stats: dict, latencies: dict):
    """Translation cycles per access from documented latencies: ``l1_hit`` per access,
    ``l2_hit`` per L1 miss, ``walk_ref`` per walk memory reference (or
    ``dcache_hit``/``dcache_miss`` when a data-cache model ran). Returns (cycles per
    access, None) or (None, [names of the latencies the estimate needs but lacks])."""
    l1 = [v for k, v in stats.items() if k.startswith("l1")]
    accesses = sum(v["accesses"] for v in l1)
    if not accesses:
        return 0.0, None
    l1_miss = sum(v["misses"] for v in l1)
    refs = stats["walk"]["refs"]
    need = ["l1_hit", "l2_hit"]
    if refs:
        need += ["dcache_hit", "dcache_miss"] if "dcache" in stats and "walk_ref" not in latencies \
            else ["walk_ref"]
    missing = [k for k in need if k not in latencies]
    if missing:
        return None, missing
    cycles = accesses * latencies["l1_hit"] + l1_miss * latencies["l2_hit"]
    if refs:
        if "walk_ref" in latencies:
            cycles += refs * latencies["walk_ref"]
        else:
            dc = stats["dcache"]
            cycles += dc["hits"] * latencies["dcache_hit"] + dc["misses"] * latencies["dcache_miss"]
    return cycles / accesses, None


def linux_flush_range(tlb: TLB, asid, start, end, stride=0, last_level=False) -> str:
    """flush_tlb_range as Linux issues it for ``asid``'s table mode (bound by ``map`` or
    ``bind``): arm64 __flush_tlb_range rounds to the stride (default the page) and
    escalates to flush_tlb_mm when __flush_tlb_range_limit_excess says the range is
    too long ((end - start) >= PTRS_PER_PTE * stride without FEAT_TLBIRANGE, the
    preset's ``range_ops``); x86 flush_tlb_mm_range flushes the PCID above 33 pages.
    The engine's flushes go through the same C function. Returns "mm" or "range"."""
    asid = tlb._asid(asid)
    before = int(tlb.core.counters[asid, _C_FL_LIMIT])
    tlb.core.invalidate_tlb_range(asid, int(start), int(end), int(stride), bool(last_level))
    return "mm" if tlb.core.counters[asid, _C_FL_LIMIT] > before else "range"
