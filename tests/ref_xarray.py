"""Pure-Python reference for ppsize._core.xarray.XArray.

Two independent pieces, neither a port of lib/xarray.c's xa_state machinery:

* RefXArray keeps the *content* as an interval map {first index: [order, entry, marks]}
  and applies the semantics of each operation directly (obvious code):
    store   (xa_store_order)   a larger entry covering index keeps its order and range and
                               takes the new value; otherwise every entry inside the range
                               is replaced and the new entry gets the OR of their marks
                               (xas_squash_marks); entry 0 erases the covering entry and
                               everything inside the range
    add     (__filemap_add_folio) -EEXIST if a real entry overlaps; a larger value entry is
                               split step by step (xas_try_split / xas_try_split_min_order)
                               then the folio is stored
    split   (xas_split)        all pieces of the new order, value and marks copied;
                               -ENOMEM when order >= shift(new_order) + 12
    try_split (xas_try_split)  the same for new_order >= xas_try_split_min_order(order)

* tree() builds the node tree Linux ends up with from the content alone, by the shape
  rules: an entry of order o lives in the node of shift o - o % 6, in slot
  (index >> shift) & 63 plus (1 << (o % 6)) - 1 sibling slots; every node on the path from
  the root to it exists, nothing else does; the root is the lowest node covering every
  entry's level and last index; a lone order-0 entry at index 0 lives in xa_head without
  any node. Only the root's height depends on history, and it is tracked (self.R):
  xas_expand grows it for a store; xas_delete_node frees emptied nodes up the tree and
  calls xas_shrink (back to the lowest root) only when the surviving node it stops at is
  the root; xas_split / xas_try_split never shrink, so splitting an entry alone in slot 0
  of the root leaves a root Linux could have removed.
"""
from bisect import bisect_left, bisect_right, insort

XA_CHUNK_SHIFT = 6
XA_CHUNK_SIZE = 64
EEXIST, EINVAL, ENOMEM = 17, 22, 12
MAX_INDEX = (1 << 64) - 1


def try_split_min_order(order):
    """lib/xarray.c xas_try_split_min_order."""
    if order % XA_CHUNK_SHIFT == 0:
        return 0 if order == 0 else order - 1
    return order - order % XA_CHUNK_SHIFT


def level(order):
    return order - order % XA_CHUNK_SHIFT


def is_value(entry):
    return entry & 1 == 1


class RefXArray:
    def __init__(self):
        self.entries = {}       # first index -> [order, entry, set(marks)]
        self.starts = []        # sorted first indices
        self.R = None           # root node shift; None: no node (empty or xa_head entry)

    # -------------------------------------------------------------- helpers
    def covering(self, index):
        """First index of the entry covering index, or None."""
        pos = bisect_right(self.starts, index) - 1
        if pos >= 0:
            s = self.starts[pos]
            if index < s + (1 << self.entries[s][0]):
                return s
        return None

    def _inside(self, first, last):
        lo = bisect_left(self.starts, first)
        hi = bisect_right(self.starts, last)
        return self.starts[lo:hi]

    def _remove(self, s):
        del self.entries[s]
        self.starts.pop(bisect_left(self.starts, s))

    def _insert(self, s, order, entry, marks):
        self.entries[s] = [order, entry, set(marks)]
        insort(self.starts, s)

    def _split_piece(self, s, new_order):
        order, entry, marks = self.entries[s]
        self._remove(s)
        for k in range(1 << (order - new_order)):
            self._insert(s + (k << new_order), new_order, entry, marks)

    # -------------------------------------------------------------- operations
    def store(self, index, entry, order=0):
        size = 1 << order
        index &= ~(size - 1)
        c = self.covering(index)
        if entry == 0:
            self._null_store(index, order, c)
            return
        if c is not None and self.entries[c][0] > order:
            self.entries[c][1] = entry
            return
        marks = set()
        for s in self._inside(index, index + size - 1):
            marks |= self.entries[s][2]
            self._remove(s)
        self._insert(index, order, entry, marks)
        # xas_expand: the root only grows on a store
        need = self.root_shift()
        if self.R is None:
            self.R = need
        elif need is not None:
            self.R = max(self.R, need)

    def _null_store(self, index, order, c):
        """Erase the covering entry and the range; then model xas_delete_node/xas_shrink."""
        size = 1 << order
        removed = ([c] if c is not None else []) + [
            s for s in self._inside(index, index + size - 1) if s != c]
        if not removed:
            return                                   # no count change: update_node no-op
        lvl = level(self.entries[c][0] if c is not None and self.entries[c][0] > order
                    else order)
        for s in removed:
            self._remove(s)
        if self.R is None or lvl > self.R:           # stored into xa_head
            assert not self.entries
            self.R = None
            return
        after = self.node_keys(self.R)
        node = (lvl, index & ~((XA_CHUNK_SIZE << lvl) - 1))
        while node not in after:                     # emptied: freed, parent count--
            if node[0] == self.R:
                self.R = None                        # the root went: xa_head = NULL
                return
            sh = node[0] + XA_CHUNK_SHIFT
            node = (sh, node[1] & ~((XA_CHUNK_SIZE << sh) - 1))
        if node[0] == self.R:                        # stopped at the root: xas_shrink
            self.R = self.root_shift()

    def add(self, index, entry, order=0):
        size = 1 << order
        assert index % size == 0
        c = self.covering(index)
        conflicts = ([c] if c is not None else []) + [
            s for s in self._inside(index, index + size - 1) if s != c]
        for s in conflicts:
            if not is_value(self.entries[s][1]):
                return -EEXIST
        if c is not None and self.entries[c][0] > order:
            cur = self.entries[c][0]
            piece = c
            split_order = max(order, try_split_min_order(cur))
            while cur > order:
                self._split_piece(piece, split_order)
                piece = index & ~((1 << split_order) - 1)
                cur = split_order
                split_order = max(try_split_min_order(split_order), order)
        self.store(index, entry, order)
        return 0

    def erase(self, index):
        c = self.covering(index)
        if c is None:
            return 0
        entry = self.entries[c][1]
        self._null_store(index, 0, c)
        return entry

    def load(self, index):
        c = self.covering(index)
        return 0 if c is None else self.entries[c][1]

    def entry_order(self, index):
        c = self.covering(index)
        return -1 if c is None else self.entries[c][0]

    def split(self, index, new_order):
        c = self.covering(index)
        if c is None or new_order >= self.entries[c][0]:
            return -EINVAL
        if level(new_order) + 2 * XA_CHUNK_SHIFT <= self.entries[c][0]:
            return -ENOMEM
        self._split_piece(c, new_order)
        return 0

    def try_split(self, index, new_order):
        c = self.covering(index)
        if c is None:
            return -EINVAL
        order = self.entries[c][0]
        if new_order >= order or new_order < try_split_min_order(order):
            return -EINVAL
        self._split_piece(c, new_order)
        return 0

    def set_mark(self, index, mark):
        c = self.covering(index)
        if c is not None:
            self.entries[c][2].add(mark)

    def clear_mark(self, index, mark):
        c = self.covering(index)
        if c is not None:
            self.entries[c][2].discard(mark)

    def get_mark(self, index, mark):
        c = self.covering(index)
        return c is not None and mark in self.entries[c][2]

    def items(self, start=0, end=None, mark=None):
        end = MAX_INDEX if end is None else end
        out = []
        c = self.covering(start)
        cands = ([c] if c is not None else []) + [s for s in self._inside(start, end) if s != c]
        for s in cands:
            order, entry, marks = self.entries[s]
            if mark is None or mark in marks:
                out.append((s, order, entry))
        return out

    def find(self, index=0, max=None, mark=None):
        it = self.items(index, max, mark)
        return (it[0][0], it[0][2]) if it else None

    def dict_view(self):
        """index -> entry for every index covered (small arrays only)."""
        d = {}
        for s, (order, entry, _) in self.entries.items():
            for i in range(s, s + (1 << order)):
                d[i] = entry
        return d

    # -------------------------------------------------------------- shape
    def node_keys(self, r):
        """(shift, first index) of every node under a root of shift r."""
        keys = set()
        for s, (order, _, _) in self.entries.items():
            sh = level(order)
            while sh <= r:
                keys.add((sh, s & ~((XA_CHUNK_SIZE << sh) - 1)))
                sh += XA_CHUNK_SHIFT
        return keys

    def root_shift(self):
        """Shift of the lowest root that holds the content (what xas_shrink leaves), or None
        when no node is needed (empty, or a lone order-0 entry at index 0 in xa_head)."""
        if not self.entries or (self.starts == [0] and self.entries[0][0] == 0):
            return None
        r = 0
        for s, (order, _, _) in self.entries.items():
            last = s + (1 << order) - 1
            sh = level(order)
            while last >= (XA_CHUNK_SIZE << sh):
                sh += XA_CHUNK_SHIFT
            r = max(r, sh)
        return r

    def tree(self):
        """{(shift, first index): node} with node = {"slots": {offset: slot}, "count",
        "nr_values", "marks": [bitmap x3]}; slot = ("entry", e) | ("sibling", canon) |
        ("node", (shift, first))."""
        r = self.R
        if r is None:
            assert self.root_shift() is None
            return {}
        nodes = {}

        def node(sh, first):
            key = (sh, first)
            if key not in nodes:
                nodes[key] = {"slots": {}, "marks": [0, 0, 0]}
            return nodes[key]

        for s, (order, entry, marks) in self.entries.items():
            sh = level(order)
            first = s & ~((XA_CHUNK_SIZE << sh) - 1)
            n = node(sh, first)
            off = (s >> sh) & 63
            n["slots"][off] = ("entry", entry)
            for k in range(1, 1 << (order % XA_CHUNK_SHIFT)):
                n["slots"][off + k] = ("sibling", off)
            for m in marks:
                n["marks"][m] |= 1 << off
            # the path up to the root
            while sh < r:
                psh = sh + XA_CHUNK_SHIFT
                pfirst = first & ~((XA_CHUNK_SIZE << psh) - 1)
                p = node(psh, pfirst)
                poff = (first >> psh) & 63
                p["slots"][poff] = ("node", (sh, first))
                sh, first = psh, pfirst
        # marks up the tree (children before parents: increasing shift)
        for (sh, first) in sorted(nodes):
            n = nodes[(sh, first)]
            for off, slot in n["slots"].items():
                if slot[0] == "node":
                    child = nodes[slot[1]]
                    for m in range(3):
                        if child["marks"][m]:
                            n["marks"][m] |= 1 << off
        for n in nodes.values():
            n["count"] = len(n["slots"])
            nv = 0
            for off, slot in n["slots"].items():
                e = slot[1] if slot[0] == "entry" else (
                    n["slots"][slot[1]][1] if slot[0] == "sibling" else 0)
                nv += is_value(e) if slot[0] != "node" else 0
            n["nr_values"] = nv
        return nodes

    def nr_nodes(self):
        return len(self.tree())

    def height(self):
        r = self.R
        return 0 if r is None else r // XA_CHUNK_SHIFT + 1

    def head_marks(self):
        m = set()
        for _, _, marks in self.entries.values():
            m |= marks
        return m
