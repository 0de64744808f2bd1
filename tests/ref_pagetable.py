"""Pure-Python reference page table: leaf descriptors in a dict, tables derived.

Same rules as ppsize.PageTable, written the obvious way, so the hypothesis tests can
compare every translation and every accounting figure. A table at level l exists
when l == 0 or some leaf lies below it (unmap frees empty tables, map creates only
what it needs), so table counts follow from the leaves.
"""
from dataclasses import dataclass, replace

from ppsize.geometry import geometry as lookup


@dataclass(frozen=True)
class Leaf:
    pa: int
    prot: int
    cont: bool = False
    folio: bool = False      # installed as part of a whole aligned one-folio run


class RefPageTable:
    def __init__(self, name):
        g = self.g = lookup(name)
        self.L = g.levels
        self.span = list(g.spans)
        self.cont_n = [1] * self.L
        self.cont_n[-1] = g.cont_ptes
        if self.L >= 2:
            self.cont_n[-2] = g.cont_pmds
        self.block_ok = [l in g.block_levels for l in range(self.L)]
        self.leaves = {}     # (level, va) -> Leaf

    # -------------------------------------------------------------- helpers
    def run_bytes(self, l):
        return self.cont_n[l] * self.span[l]

    def leaves_in(self, va, end):
        return [(l, a) for (l, a) in self.leaves if a < end and a + self.span[l] > va]

    def table_exists(self, l, va):
        """Does the level-l table whose span contains va exist?"""
        if l == 0:
            return True
        tspan = self.span[l - 1]
        base = va - va % tspan
        return any(ll >= l and base <= a < base + tspan for (ll, a) in self.leaves)

    def tables(self):
        counts = [1] + [0] * (self.L - 1)
        for l in range(1, self.L):
            tspan = self.span[l - 1]
            counts[l] = len({a // tspan for (ll, a) in self.leaves if ll >= l})
        return counts

    def vmpte_bytes(self):
        t = self.tables()
        return sum(t[l] * self.g.table_sizes[l] for l in self.g.vmpte_levels())

    def table_bytes(self):
        return sum(n * s for n, s in zip(self.tables(), self.g.table_sizes))

    def leaf_counts(self):
        leaves = [0] * self.L
        conts = [0] * self.L
        for (l, _), leaf in self.leaves.items():
            leaves[l] += 1
            conts[l] += leaf.cont
        return leaves, conts

    # ------------------------------------------------------------------ map
    def overlaps(self, va, size):
        return bool(self.leaves_in(va, va + size))

    def map(self, va, pa, size, prot, cont=True, block=False):
        assert not self.overlaps(va, size)
        end = va + size
        a = va
        placed = []
        while a < end:
            for l in range(self.L):
                s = self.span[l]
                last = l == self.L - 1
                if last or (block and self.block_ok[l] and a % s == 0
                            and (pa + a - va) % s == 0 and a + s <= end):
                    self.leaves[(l, a)] = Leaf(pa + a - va, prot)
                    placed.append((l, a))
                    a += s
                    break
        if cont:   # contpte_set_ptes: CONT on runs whose VA, end and PA are aligned
            for l in range(self.L):
                n = self.cont_n[l]
                if n == 1:
                    continue
                rb = self.run_bytes(l)
                c = -(-va // rb) * rb
                while c + rb <= end:
                    keys = [(l, c + i * self.span[l]) for i in range(n)]
                    if (pa + c - va) % rb == 0 and all(k in placed for k in keys):
                        for k in keys:
                            self.leaves[k] = replace(self.leaves[k], cont=True, folio=True)
                    c += rb

    # ---------------------------------------------------- split and unfold
    def set_run(self, l, va, on):
        rb = self.run_bytes(l)
        start = va - va % rb
        for i in range(self.cont_n[l]):
            k = (l, start + i * self.span[l])
            if k in self.leaves:
                self.leaves[k] = replace(self.leaves[k], cont=on)

    def unfold_partial(self, l, va, end):
        """Every CONT run at level l only partly inside [va, end) loses CONT."""
        rb = self.run_bytes(l)
        for (ll, a) in list(self.leaves):
            if ll == l and self.leaves[(ll, a)].cont:
                start = a - a % rb
                if start < end and start + rb > va and not (va <= start and start + rb <= end):
                    self.set_run(l, a, False)

    def split(self, l, a):
        leaf = self.leaves.pop((l, a))
        cl = l + 1
        cont = leaf.folio and self.cont_n[cl] > 1
        for i in range(self.span[l] // self.span[cl]):
            self.leaves[(cl, a + i * self.span[cl])] = Leaf(
                leaf.pa + i * self.span[cl], leaf.prot, cont, leaf.folio)

    def prepare(self, va, end):
        """Top-down: unfold partial runs at each level, split partial blocks."""
        for l in range(self.L):
            if self.cont_n[l] > 1:
                self.unfold_partial(l, va, end)
            for (ll, a) in list(self.leaves):
                if ll == l and l < self.L - 1 and a < end and a + self.span[l] > va \
                        and not (va <= a and a + self.span[l] <= end):
                    self.split(l, a)

    # ---------------------------------------------------------------- unmap
    def unmap(self, va, size):
        end = va + size
        self.prepare(va, end)
        for k in self.leaves_in(va, end):
            del self.leaves[k]

    # -------------------------------------------------------------- protect
    def foldable(self, l, start):
        n, s = self.cont_n[l], self.span[l]
        keys = [(l, start + i * s) for i in range(n)]
        if not all(k in self.leaves for k in keys):
            return False
        first = self.leaves[keys[0]]
        if not first.folio or first.pa % (n * s):
            return False
        return all(self.leaves[k].pa == first.pa + i * s and self.leaves[k].prot == first.prot
                   and self.leaves[k].folio for i, k in enumerate(keys))

    def protect(self, va, size, prot):
        end = va + size
        self.prepare(va, end)
        for k in self.leaves_in(va, end):
            self.leaves[k] = replace(self.leaves[k], prot=prot)
        # change_protection then commits each table's batch: every level-l table
        # in the range (they all exist now; protect frees none) is visited.
        for l in range(self.L):
            if self.cont_n[l] == 1:
                continue
            rb, s = self.run_bytes(l), self.span[l]
            tspan = self.span[l - 1] if l else self.g.va_size
            tstart = va - va % tspan
            while tstart < end:
                cva, cend = max(va, tstart), min(end, tstart + tspan)
                if self.table_exists(l, cva):
                    c = -(-cva // rb) * rb
                    while c + rb <= cend:
                        self.set_run(l, c, self.foldable(l, c))
                        c += rb
                    if cend - cva == s and cend % rb == 0 and self.foldable(l, cva - cva % rb):
                        self.set_run(l, cva, True)
                tstart += tspan

    # ------------------------------------------------------------ translate
    def translate(self, va):
        """(pa, status, level, size, prot) as PageTable.translate gives them."""
        if va < 0 or va >= self.g.va_size:
            return (0, 2, -1, 0, 0)
        for l in range(self.L):
            s = self.span[l]
            leaf = self.leaves.get((l, va - va % s))
            if leaf is not None:
                unit = s * self.cont_n[l] if leaf.cont else s
                return (leaf.pa + va % s, 0, l, unit, leaf.prot)
            if l + 1 == self.L or not self.table_exists(l + 1, va):
                return (0, 1, l, 0, 0)
