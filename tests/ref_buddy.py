"""Pure-Python reference of the buddy allocator (obvious code, dicts and lists).

Follows mm/page_alloc.c the same way ppsize/_core/buddy.pyx does, so the two can be
compared pfn by pfn and list by list: free lists are Python lists with the head at
index 0 (list_add = insert(0), list_add_tail = append); free blocks are a dict
pfn -> (order, migratetype); allocated blocks a dict pfn -> (order, migratetype).
"""
from __future__ import annotations

UNMOVABLE, MOVABLE, RECLAIMABLE, HIGHATOMIC = 0, 1, 2, 3
PCPTYPES = 3
NTYPES = 4
FALLBACKS = {UNMOVABLE: (RECLAIMABLE, MOVABLE),
             MOVABLE: (RECLAIMABLE, UNMOVABLE),
             RECLAIMABLE: (UNMOVABLE, MOVABLE)}
MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One step of splitmix64: returns (new_state, value)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


class RefBuddy:
    def __init__(self, nr_pages, max_order, pageblock_order):
        self.nr_pages = nr_pages
        self.max_order = max_order
        self.pb_order = pageblock_order
        nblocks = -(-nr_pages // (1 << pageblock_order))
        self.pb_mt = [MOVABLE] * nblocks
        self.lists = {(o, mt): [] for o in range(max_order + 1) for mt in range(NTYPES)}
        self.free_blocks = {}          # head pfn -> (order, mt)
        self.allocated = {}            # head pfn -> (order, mt)
        self.nr_free_pages = 0
        self.allocs = [0] * (max_order + 1)
        self.failures = [0] * (max_order + 1)
        self.frees = [0] * (max_order + 1)
        self.claimed = 0
        self.stolen = 0
        # memblock __free_pages_memory(0, nr_pages)
        start = 0
        while start < nr_pages:
            if start:
                order = min(max_order, (start & -start).bit_length() - 1)
            else:
                order = max_order
            while start + (1 << order) > nr_pages:
                order -= 1
            self.split_large_buddy(start, order, to_tail=True)
            start += 1 << order

    # free lists
    def list_add(self, pfn, order, mt, tail):
        lst = self.lists[(order, mt)]
        if tail:
            lst.append(pfn)
        else:
            lst.insert(0, pfn)
        self.free_blocks[pfn] = (order, mt)

    def list_del(self, pfn, order, mt):
        self.lists[(order, mt)].remove(pfn)
        del self.free_blocks[pfn]

    def is_buddy(self, pfn, order):
        return pfn < self.nr_pages and self.free_blocks.get(pfn, (None,))[0] == order

    def pageblock_mt(self, pfn):
        return self.pb_mt[pfn >> self.pb_order]

    def change_pageblock_range(self, pfn, order, mt):
        first = pfn >> self.pb_order
        for b in range(first, first + (1 << (order - self.pb_order))):
            self.pb_mt[b] = mt

    # freeing
    def free_one_page(self, pfn, order, mt, to_tail_flag):
        self.nr_free_pages += 1 << order
        buddy = 0
        while order < self.max_order:
            buddy = pfn ^ (1 << order)
            if not self.is_buddy(buddy, order):
                break
            buddy_mt = mt
            if order >= self.pb_order:
                buddy_mt = self.pageblock_mt(buddy)
            self.list_del(buddy, order, buddy_mt)
            if buddy_mt != mt:
                self.change_pageblock_range(buddy, order, mt)
            pfn &= buddy
            order += 1
        if to_tail_flag:
            tail = True
        elif order < self.max_order - 1:
            higher = buddy & pfn
            tail = self.is_buddy(higher ^ (1 << (order + 1)), order + 1)
        else:
            tail = False
        self.list_add(pfn, order, mt, tail)

    def split_large_buddy(self, pfn, order, to_tail):
        end = pfn + (1 << order)
        order = min(order, self.pb_order)
        while pfn < end:
            self.free_one_page(pfn, order, self.pageblock_mt(pfn), to_tail)
            pfn += 1 << order

    def free(self, pfn, order):
        if self.allocated.get(pfn, (None,))[0] != order:
            raise ValueError(f"pfn {pfn} not allocated at order {order}")
        del self.allocated[pfn]
        self.frees[order] += 1
        self.split_large_buddy(pfn, order, to_tail=False)

    # allocation
    def expand(self, pfn, low, high, mt):
        while high > low:
            high -= 1
            self.list_add(pfn + (1 << high), high, mt, tail=False)

    def rmqueue_smallest(self, order, mt):
        for cur in range(order, self.max_order + 1):
            lst = self.lists[(cur, mt)]
            if lst:
                page = lst[0]
                self.list_del(page, cur, mt)
                self.expand(page, order, cur, mt)
                self.nr_free_pages -= 1 << order
                return page
        return None

    def nr_free_order(self, order):
        return sum(len(self.lists[(order, mt)]) for mt in range(NTYPES))

    def fallback_type(self, order, start_mt):
        for fb in FALLBACKS[start_mt]:
            if self.lists[(order, fb)]:
                return fb
        return None

    def should_try_claim_block(self, order, start_mt):
        return (order >= self.pb_order or order >= self.pb_order // 2
                or start_mt in (RECLAIMABLE, UNMOVABLE))

    def try_to_claim_block(self, page, current_order, order, start_mt, block_mt):
        if current_order >= self.pb_order:
            self.list_del(page, current_order, block_mt)
            self.change_pageblock_range(page, current_order, start_mt)
            self.expand(page, order, current_order, start_mt)
            self.nr_free_pages -= 1 << order
            return page
        nr = 1 << self.pb_order
        start = page - page % nr
        end = start + nr
        if end > self.nr_pages:
            return None
        free = movable = 0
        for pfn in range(start, end):
            if self.frame_is_free(pfn):
                free += 1
            elif self.frame_alloc_mt(pfn) == MOVABLE:
                movable += 1
        if start_mt == MOVABLE:
            alike = movable
        elif block_mt == MOVABLE:
            alike = nr - (free + movable)
        else:
            alike = 0
        if free + alike >= nr // 2:
            for pfn in range(start, end):
                if pfn in self.free_blocks:
                    o, mt = self.free_blocks[pfn]
                    self.list_del(pfn, o, mt)
                    self.list_add(pfn, o, start_mt, tail=True)
            self.pb_mt[start // nr] = start_mt
            return self.rmqueue_smallest(order, start_mt)
        return None

    def frame_is_free(self, pfn):
        return any(h <= pfn < h + (1 << o) for h, (o, _) in self.free_blocks.items())

    def frame_alloc_mt(self, pfn):
        for h, (o, mt) in self.allocated.items():
            if h <= pfn < h + (1 << o):
                return mt
        return None

    def rmqueue_claim(self, order, start_mt):
        for cur in range(self.max_order, order - 1, -1):
            if not self.should_try_claim_block(cur, start_mt):
                break
            if self.nr_free_order(cur) == 0:
                continue
            fb = self.fallback_type(cur, start_mt)
            if fb is None:
                continue
            page = self.try_to_claim_block(self.lists[(cur, fb)][0], cur, order, start_mt, fb)
            if page is not None:
                self.claimed += 1
                return page
        return None

    def rmqueue_steal(self, order, start_mt):
        for cur in range(order, self.max_order + 1):
            fb = self.fallback_type(cur, start_mt)
            if fb is None:
                continue
            page = self.lists[(cur, fb)][0]
            self.list_del(page, cur, fb)
            self.expand(page, order, cur, fb)
            self.nr_free_pages -= 1 << order
            self.stolen += 1
            return page
        return None

    def alloc(self, order, mt):
        page = self.rmqueue_smallest(order, mt)
        if page is None:
            page = self.rmqueue_claim(order, mt)
        if page is None:
            page = self.rmqueue_steal(order, mt)
        if page is None:
            self.failures[order] += 1
            return -1
        self.allocated[page] = (order, mt)
        self.allocs[order] += 1
        return page

    def split(self, pfn, order, new_order):
        o, mt = self.allocated.pop(pfn)
        assert o == order
        for p in range(pfn, pfn + (1 << order), 1 << new_order):
            self.allocated[p] = (new_order, mt)

    # stats
    def free_block_counts(self):
        return [[len(self.lists[(o, mt)]) for o in range(self.max_order + 1)]
                for mt in range(NTYPES)]

    def unusable_index(self):
        counts = [self.nr_free_order(o) for o in range(self.max_order + 1)]
        free_pages = sum(n << o for o, n in enumerate(counts))
        out = []
        for k in range(self.max_order + 1):
            if free_pages == 0:
                out.append(1000)
                continue
            suitable = sum(n << (o - k) for o, n in enumerate(counts) if o >= k)
            out.append((free_pages - (suitable << k)) * 1000 // free_pages)
        return out

    def churn(self, seed, steps, orders, weights, mts, mt_weights, fill, free_prob):
        rng = seed & MASK64
        target = int(fill * self.nr_pages)
        free_ppm = round(free_prob * 1_000_000)
        live = []
        fails = [0] * (self.max_order + 1)

        def pick(ws, r):
            x = r % sum(ws)
            acc = 0
            for i, w in enumerate(ws):
                acc += w
                if x < acc:
                    return i
            raise AssertionError

        for _ in range(steps):
            rng, r1 = splitmix64(rng)
            if live and (self.nr_pages - self.nr_free_pages >= target or r1 % 1_000_000 < free_ppm):
                rng, r2 = splitmix64(rng)
                j = r2 % len(live)
                pfn, o = live[j]
                self.free(pfn, o)
                live[j] = live[-1]
                live.pop()
            else:
                rng, r2 = splitmix64(rng)
                o = orders[pick(weights, r2)]
                rng, r3 = splitmix64(rng)
                mt = mts[pick(mt_weights, r3)]
                pfn = self.alloc(o, mt)
                if pfn < 0:
                    fails[o] += 1
                else:
                    live.append((pfn, o))
        return live, fails
