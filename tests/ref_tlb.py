"""Pure-Python reference of the MMU model (ppsize/_core/tlb.pyx), obvious code: sets are
lists of entries, LRU is a Python list most-recent-first, tree-PLRU a list of node bits,
random the same xorshift64* stream. It takes the config dict that ppsize.tlb.TLB builds
and produces the same counter rows, so TLB.run can be compared access by access."""
from __future__ import annotations

M64 = (1 << 64) - 1
WALK_BIT = 1 << 63
NC = 48   # NR_COUNTERS


def tag_of(va, shift, walk=False):
    span = 1 << shift
    return (va & ~(span - 1)) | ((span >> 1) - 1) | (WALK_BIT if walk else 0)


class Array:
    def __init__(self, spec, leaf_shifts):
        self.sets, self.ways, self.repl = spec["sets"], spec["ways"], spec["repl"]
        self.pn = 1
        while self.pn < self.ways:
            self.pn <<= 1
        self.rng = ((spec.get("seed", 1) * 0x9E3779B97F4A7C15) | 1) & M64
        self.e = [[None] * self.ways for _ in range(self.sets)]   # (tag, asid, out, cls)
        self.lru = [[] for _ in range(self.sets)]
        self.bits = [[0] * self.pn for _ in range(self.sets)]
        self.classes = [(s, False) for s in sorted(leaf_shifts)]
        self.nleaf = len(self.classes)

    def set_of(self, va, shift):
        return (va >> shift) % self.sets

    def count(self, c):
        return sum(1 for st in self.e for x in st if x and x[3] == c)

    def cls(self, shift, walk):
        if (shift, walk) not in self.classes:
            if len(self.classes) == 16:
                return -1
            self.classes.append((shift, walk))
        return self.classes.index((shift, walk))

    def find(self, s, tag, asid):
        for w, x in enumerate(self.e[s]):
            if x and x[0] == tag and x[1] == asid:
                return w
        return -1

    def touch(self, s, w):
        if self.repl == 0:
            if w in self.lru[s]:
                self.lru[s].remove(w)
            self.lru[s].insert(0, w)
        elif self.repl == 1:
            node, lo, hi = 1, 0, self.pn
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if w < mid:
                    self.bits[s][node] = 1
                    node, hi = 2 * node, mid
                else:
                    self.bits[s][node] = 0
                    node, lo = 2 * node + 1, mid

    def rand(self):
        x = self.rng
        x ^= x >> 12
        x ^= (x << 25) & M64
        x ^= x >> 27
        self.rng = x
        return (x * 0x2545F4914F6CDD1D) & M64

    def victim(self, s):
        if self.repl == 0:
            return self.lru[s][-1]
        if self.repl == 1:
            node, lo, hi = 1, 0, self.pn
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.bits[s][node] and mid < self.ways:
                    node, lo = 2 * node + 1, mid
                else:
                    node, hi = 2 * node, mid
            return lo
        return (self.rand() >> 32) % self.ways

    def invalidate(self, s, w):
        self.e[s][w] = None
        if w in self.lru[s]:
            self.lru[s].remove(w)

    def insert(self, c, tag, asid, out, va, ctr=None, k=0):
        s = self.set_of(va, self.classes[c][0])
        f = self.find(s, tag, asid)
        if f >= 0:
            x = self.e[s][f]
            self.e[s][f] = (x[0], x[1], out, x[3])
            self.touch(s, f)
            return
        free = [w for w in range(self.ways) if self.e[s][w] is None]
        if free:
            w = free[0]
        else:
            w = self.victim(s)
            if ctr is not None:
                ctr[4 * k + 3] += 1
            self.invalidate(s, w)
        self.e[s][w] = (tag, asid, out, c)
        self.touch(s, w)


class RefTLB:
    """Same config and counter layout as ppsize._core.tlb.TlbCore."""

    def __init__(self, config):
        self.cfg = config
        self.tlbs = [Array(t, t["sizes"]) for t in config["tlbs"]]
        self.arrays = list(self.tlbs)
        self.wc = []
        for w in config["walk_caches"]:
            if w.get("in_tlb", -1) >= 0:
                self.wc.append((self.tlbs[w["in_tlb"]], w["distance"]))
            else:
                a = Array(w, [])
                self.arrays.append(a)
                self.wc.append((a, w["distance"]))
        self.dc = Array(config["dcache"], [6]) if config.get("dcache") else None
        self.l1, self.l2 = config["l1"], config["l2"]
        self.ctr = {}
        self.geom = {}

    def row(self, asid):
        return self.ctr.setdefault(asid, [0] * NC)

    # ---------------------------------------------------------------- lookups
    def lookup(self, asid, va, side):
        ctr = self.row(asid)
        for lvl, k in enumerate((self.l1[side], self.l2[side])):
            if k < 0:
                return -1, None
            a = self.tlbs[k]
            ctr[4 * k] += 1
            for c in range(a.nleaf):
                if a.count(c) == 0:
                    continue
                sh = a.classes[c][0]
                s = a.set_of(va, sh)
                w = a.find(s, tag_of(va, sh), asid)
                if w >= 0:
                    a.touch(s, w)
                    ctr[4 * k + 1] += 1
                    out = a.e[s][w][2]
                    base, size = va & ~((1 << sh) - 1), 1 << sh
                    if lvl == 1:
                        self.fill_leaf(self.l1[side], asid, va, base, size, out)
                    return lvl, (out, base, size)
        return -1, None

    def fill_leaf(self, k, asid, va, base, size, out):
        a = self.tlbs[k]
        fits = [c for c in range(a.nleaf) if (1 << a.classes[c][0]) <= size]
        if not fits:
            return
        c = fits[-1]
        sh = a.classes[c][0]
        nb = va & ~((1 << sh) - 1)
        ctr = self.row(asid)
        a.insert(c, tag_of(va, sh), asid, out + (nb - base), va, ctr, k)
        ctr[4 * k + 2] += 1

    def walk_fill(self, asid, va, side, leaf, unit_base, unit_size, pa_base, table_pa):
        ctr = self.row(asid)
        levels, shifts, tbits = self.geom[asid]
        ctr[16] += 1
        lv = [levels - 1 - d if levels - 1 - d >= 0 else -1 for _, d in self.wc]
        start = 0
        for i, (a, _) in enumerate(self.wc):
            if lv[i] < 0 or lv[i] >= leaf:
                continue
            ctr[23 + i] += 1
            sh = shifts[lv[i]]
            s = a.set_of(va, sh)
            w = a.find(s, tag_of(va, sh, True), asid)
            if w >= 0:
                a.touch(s, w)
                ctr[29 + i] += 1
                start = max(start, lv[i] + 1)
        for l in range(start, leaf + 1):
            ctr[17] += 1
            ctr[18 + l] += 1
            if self.dc:
                addr = table_pa[l] + (((va >> shifts[l]) & ((1 << tbits[l]) - 1)) << 3)
                s = self.dc.set_of(addr, 6)
                ctr[35] += 1
                w = self.dc.find(s, tag_of(addr, 6), 0)
                if w >= 0:
                    self.dc.touch(s, w)
                    ctr[36] += 1
                else:
                    self.dc.insert(0, tag_of(addr, 6), 0, addr & ~63, addr)
        for i, (a, _) in enumerate(self.wc):
            if lv[i] < start or lv[i] >= leaf:
                continue
            sh = shifts[lv[i]]
            c = a.cls(sh, True)
            if c >= 0:
                a.insert(c, tag_of(va, sh, True), asid, table_pa[lv[i] + 1], va)
        if self.l2[side] >= 0:
            self.fill_leaf(self.l2[side], asid, va, unit_base, unit_size, pa_base)
        self.fill_leaf(self.l1[side], asid, va, unit_base, unit_size, pa_base)

    # ---------------------------------------------------------------- flushes
    def _flush(self, a, asid, start, end, leaf, walk):
        n = 0
        for s in range(a.sets):
            for w in range(a.ways):
                x = a.e[s][w]
                if x is None or (asid is not None and x[1] != asid):
                    continue
                sh, is_walk = a.classes[x[3]]
                if not (walk if is_walk else leaf):
                    continue
                span = 1 << sh
                b = x[0] & ~WALK_BIT & ~(span - 1)
                if b < end and b + span > start:
                    a.invalidate(s, w)
                    n += 1
        return n

    def flush_range(self, asid, start, end, last_level):
        ctr = self.row(asid)
        ctr[38] += 1
        n = sum(self._flush(a, asid, start, end, True, not last_level) for a in self.tlbs)
        if not last_level:
            n += sum(self._flush(a, asid, start, end, False, True)
                     for a in {id(a): a for a, _ in self.wc if a not in self.tlbs}.values())
        ctr[41] += n

    def flush_page(self, asid, va):
        ctr = self.row(asid)
        ctr[40] += 1
        ctr[41] += sum(self._flush(a, asid, va, va + 1, True, False) for a in self.tlbs)

    def flush_mm(self, asid):
        ctr = self.row(asid)
        ctr[39] += 1
        ctr[41] += sum(self._flush(a, asid, 0, 1 << 64, True, True) for a in self.arrays)

    # ---------------------------------------------------------------- run
    def run(self, vas, asid, side, rows, table_pa_fn):
        """rows: the ASID's (start, end, unit, pa, leaf) list; returns outcome codes."""
        out = []
        for va in vas:
            r, _ = self.lookup(asid, va, side)
            if r >= 0:
                out.append(r)
                continue
            row = next(x for x in rows if x[0] <= va < x[1])
            start, end, unit, pa, leaf = row
            ub = va & ~(unit - 1)
            self.walk_fill(asid, va, side, leaf, ub, unit, pa + (ub - start),
                           [table_pa_fn(asid, l, va) for l in range(leaf + 1)])
            out.append(2)
        return out


def synthetic_table_pa(geom):
    """The table layout TlbCore.run uses (tlb.pyx): tables side by side in VA order."""
    levels, shifts, tbits = geom

    def f(asid, l, va):
        return (((asid + 1) << 50) | (l << 46)) + ((va >> (shifts[l] + tbits[l])) << (tbits[l] + 3))
    return f
