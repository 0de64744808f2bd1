"""The MMU model: TLBs, walk caches and a data-cache model for walk references.

One ``TlbCore`` is one CPU's translation hardware: an L1 instruction and an L1 data TLB,
a unified L2 (or separate L2 I/D), walk caches and an optional data cache that the
walker's memory references go through. Every structure is a set-associative array
(``tlb_array``): ``sets x ways`` entries (``tlb_entry``: tag, output, ASID, LRU links
and size class side by side, so a probe's compare and a hit's output share a cache line)
in NumPy-owned buffers, any positive set count (1280 x 5 = 256 sets; 48 x 48 = one
set), LRU, tree-PLRU or seeded random replacement. Entries are tagged with an ASID, so
processes with different page sizes and table modes share one TLB. Validation and
presets live in ``ppsize.tlb``.

Model
-----
- Entry sizes: each TLB level holds a configured set of sizes (base pages, contiguous
  runs, blocks). A translation unit larger than every size a level may hold is
  *splintered*: the level caches the largest size it holds that is <= the unit, aligned
  around the accessed VA (A76 TRM A5.2: the TLB "is responsible for breaking these down
  in to smaller pages when required for the data or instruction L1 TLB").
- Contiguous bit: the walker reports a PTE_CONT run as one unit of the run's size when
  the core coalesces (``coalesce``), else as the page (or block) it is made of.
- Lookup (``lookup``): L1 of the side, then the L2; within a level every size class
  that currently has entries is probed, smallest first; an L2 hit refills the L1.
- Walk (``walk_fill``): walk caches are probed for the entries above the leaf; the
  deepest hit decides where the walk starts; each level read is one memory reference
  (counted per level) and, with a data cache, one 64-byte line lookup; the table
  descriptors read are filled into the walk caches that cache their level, then the
  unit is filled into the L2 and the L1 (no back-invalidation: levels are not kept
  inclusive). Walk caches are keyed by the distance of the level above the last level
  (1: the entry that points at the last-level table, as Arm's walk cache "holds the
  results of a stage 1 translation up to, but not including the last level"; 1..4 for
  ChampSim's PSCL2..PSCL5). A walk cache may live in a TLB array (the A76 L2 TLB
  stores "intermediate PAs obtained during a translation table walk"): its entries then
  compete with leaf entries for the ways.
- Replacement within a set: an invalid way first (the lowest index), else LRU (a list
  per set), tree-PLRU or seeded xorshift64* random. Tree-PLRU with a way count that is
  not a power of two uses the tree of the next power of two P; node bits point at the
  half that holds the next victim; a node pointing at a half with no real way (all its
  leaves >= ways) is read as pointing at the other half, so a victim is always real.
  An access sets every bit on its path to point away from it.
- Set index: (VA >> entry shift) mod sets, per size class (so an L2 probe per size).
- Tag: (VA base | (span / 2 - 1)), bit 63 set for walk-cache entries, and the ASID.

Invalidation (arch/arm64/include/asm/tlbflush.h, arch/arm64/include/asm/tlb.h):
- ``flush_range(asid, start, end, last_level)``: TLBI VALE1IS (last_level: leaf entries
  only) or VAE1IS (leaf and walk-cache entries) for every entry overlapping the range.
  ``flush_tlb_range()`` passes last_level = False (TLBF_NONE); the mmu_gather's
  ``tlb_flush()`` passes last_level = !freed_tables, so a munmap that freed page tables
  (free_pgtables) also drops the walk-cache entries that pointed at them.
- ``flush_mm(asid)``: TLBI ASIDE1IS: every entry of the ASID.
- ``flush_page(asid, va)``: ``__flush_tlb_page`` = TLBF_NOWALKCACHE: leaf entries only.
- Linux's escalation of a long range to flush_tlb_mm (__flush_tlb_range_limit_excess)
  is a policy of the caller: ``ppsize.tlb.linux_flush_range`` applies it.

Integration with the fault engine (mm.pyx, pagetable.pyx; nothing here depends on them)
------------------------------------------------------------------------------------
- ``MMCore.access``: ``lookup(asid, va, side, &out, &base, &size)`` first (SIDE_INSN for
  instruction fetches); a hit whose permission bits (out & 7) allow the access is ACC_HIT
  with no page-table walk; else ``MMCore.tlb_walk_fill`` walks (``pt.walk_tables``: the
  table PA at each level) and calls ``walk_fill`` with the unit the walk found (the
  contiguous run only when ``coalesce``); a walk that ends at an invalid entry has
  ``leaf_ok`` False (references counted, nothing filled); after a fault the retried
  access walks and fills. ``tlb_repeat_hit`` / ``tlb_note_hit`` (tlb.pxd) skip the lookup
  for a further access inside the entry of the last L1 hit while that L1 array's epoch
  is unchanged: same counters, same state.
- Flushes: ``flush_tlb_range`` is Linux's policy (escalation to flush_mm); the page table's
  mmu_gather (PageTableCore.tlb_gather_mmu / tlb_finish_mmu) and its flush sites call it as
  mm/ does (README: the flush table).
- ASIDs: one per MM, assigned by ppsize/cpus.py (arm64's allocator, rollover = flush_all).
- Counters are per ASID (``counters[asid]``): a process's stats are its row, a CPU's
  the sum over rows (``ppsize.tlb.stats_dict``).
"""
cimport cython
cimport numpy as cnp
from libc.stdlib cimport free, realloc
from libc.string cimport memset, memcpy

import numpy as np

from .._validate import buffer_length

from ._types cimport u64, i64, u32, i32, u16, u8, i8, MAX_LEVELS

cnp.import_array()

cdef extern from *:
    int __builtin_ctz(unsigned int x) nogil
    int __builtin_clzll(unsigned long long x) nogil

cdef u64 WALK_BIT = (<u64>1) << 63
cdef u16 NONE16 = 0xffff
cdef u64 ATTR_MASK = 0xfff
cdef u64 MAX_TLBI_RANGE_PAGES = (<u64>32) << 16     # __TLBI_RANGE_PAGES(31, 3)


cdef inline u64 _tag(u64 va, int shift, bint walk) noexcept nogil:
    cdef u64 span = (<u64>1) << shift
    return (va & ~(span - 1)) | ((span >> 1) - 1) | (WALK_BIT if walk else 0)


cdef inline u32 _set(tlb_array* a, u64 va, int shift) noexcept nogil:
    cdef u64 vpn = va >> shift
    if a.pow2:
        return <u32>(vpn & (a.nsets - 1))
    return <u32>(vpn % a.nsets)


cdef inline u32 _home(u64 tag, u16 asid, int hbits) noexcept nogil:
    # Fibonacci hashing of the key (the ASID in bits 47..62, which no tag of a user VA
    # below 2**47 reaches but for the walk bit 63): one multiply, the top hbits
    return <u32>(((tag ^ (<u64>asid << 47)) * <u64>0x9E3779B97F4A7C15) >> (64 - hbits))


cdef inline u64 _rand(tlb_array* a) noexcept nogil:
    cdef u64 x = a.rng            # xorshift64*
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    a.rng = x
    return x * <u64>0x2545F4914F6CDD1D


# ------------------------------------------------------------ one array
cdef inline u32 _tag_hits(const tlb_entry* e, u32 ways, u64 tag) noexcept nogil:
    """Bit w set: way w of the set at e holds tag (a scanned set: 1 .. HASH_MIN_WAYS - 1
    ways). Unrolled: a test of ways per way, the same outcome at a call site each time
    (one array), instead of a loop's counter and variable shifts."""
    cdef u32 m = <u32>(e[0].tag == tag)
    if ways > 1:
        m |= <u32>(e[1].tag == tag) << 1
    if ways > 2:
        m |= <u32>(e[2].tag == tag) << 2
    if ways > 3:
        m |= <u32>(e[3].tag == tag) << 3
    if ways > 4:
        m |= <u32>(e[4].tag == tag) << 4
    if ways > 5:
        m |= <u32>(e[5].tag == tag) << 5
    if ways > 6:
        m |= <u32>(e[6].tag == tag) << 6
    if ways > 7:
        m |= <u32>(e[7].tag == tag) << 7
    return m


cdef inline i64 _find(tlb_array* a, u32 s, u64 tag, u16 asid) noexcept nogil:
    cdef u32 w, i, m
    cdef u64 base = <u64>s * a.ways
    cdef u16* slot
    cdef u16 v
    if a.hbits:
        slot = &a.hslot[<u64>s << a.hbits]
        m = (1u << a.hbits) - 1
        i = _home(tag, asid, a.hbits)
        v = slot[i]
        while v:
            w = v - 1
            if a.ent[base + w].tag == tag and a.ent[base + w].asid == asid:
                return w
            i = (i + 1) & m
            v = slot[i]
        return -1
    # a scanned set (< HASH_MIN_WAYS ways): every way's tag compared, no early exit,
    # so the only branch is whether a tag matched, not where; then the ASID of each
    # way whose tag matched (one, unless processes share the VA in this set; a
    # (tag, ASID) is in one way at most)
    m = _tag_hits(&a.ent[base], a.ways, tag)
    while m:
        w = __builtin_ctz(m)
        if a.ent[base + w].asid == asid:
            return w
        m &= m - 1
    return -1


cdef inline void _touch(tlb_array* a, u32 s, u32 w) noexcept nogil:
    """Make way w of set s the most recently used."""
    cdef u64 base = <u64>s * a.ways
    cdef u16 p, n
    cdef u32 node, lo, hi, mid
    cdef u8* bits
    if a.repl == REPL_LRU:
        if a.sets[s].head == w:
            return
        p = a.ent[base + w].prv
        n = a.ent[base + w].nxt
        if p != NONE16:                 # unlink (a new entry has no neighbours)
            a.ent[base + p].nxt = n
            if n != NONE16:
                a.ent[base + n].prv = p
            else:
                a.sets[s].tail = p
        a.ent[base + w].prv = NONE16
        a.ent[base + w].nxt = a.sets[s].head
        if a.sets[s].head != NONE16:
            a.ent[base + a.sets[s].head].prv = <u16>w
        a.sets[s].head = <u16>w
        if a.sets[s].tail == NONE16:
            a.sets[s].tail = <u16>w
    elif a.repl == REPL_PLRU:
        bits = &a.plru[<u64>s * a.pn]
        node = 1
        lo = 0
        hi = a.pn
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if w < mid:
                bits[node] = 1          # next victim: the other (right) half
                node = 2 * node
                hi = mid
            else:
                bits[node] = 0
                node = 2 * node + 1
                lo = mid


cdef inline void _hash_del(tlb_array* a, u32 s, u32 w) noexcept nogil:
    """Remove way w of set s from the set's hash index: backward-shift deletion
    (linear probing; hpos and hhome spare the probe and the rehash)."""
    cdef u64 base = <u64>s * a.ways
    cdef u16* slot = &a.hslot[<u64>s << a.hbits]
    cdef u32 m = (1u << a.hbits) - 1
    cdef u32 i = a.hpos[base + w], j = i, k
    while True:
        j = (j + 1) & m
        if slot[j] == 0:
            break
        k = a.hhome[base + slot[j] - 1]
        # move slot[j] back to i unless its home lies cyclically in (i, j]
        if (j > i and (k <= i or k > j)) or (j < i and k <= i and k > j):
            slot[i] = slot[j]
            a.hpos[base + slot[j] - 1] = <u16>i
            i = j
    slot[i] = 0


cdef inline void _invalidate(tlb_array* a, u32 s, u32 w) noexcept nogil:
    cdef u64 base = <u64>s * a.ways, e = base + w
    cdef u16 p, n
    if a.hbits:
        _hash_del(a, s, w)
    if a.repl == REPL_LRU:
        p = a.ent[e].prv
        n = a.ent[e].nxt
        if p != NONE16:
            a.ent[base + p].nxt = n
        else:
            a.sets[s].head = n
        if n != NONE16:
            a.ent[base + n].prv = p
        else:
            a.sets[s].tail = p
        a.ent[e].prv = NONE16
        a.ent[e].nxt = NONE16
    a.cls_count[a.ent[e].cls] -= 1
    if a.cls_count[a.ent[e].cls] == 0:
        a.live &= ~(1u << a.ent[e].cls)
    a.sets[s].nvalid -= 1
    a.ent[e].tag = 0
    a.epoch += 1


cdef inline void _hash_add(tlb_array* a, u32 s, u32 w, u64 tag, u16 asid) noexcept nogil:
    """Enter way w of set s (key tag, asid) in the set's hash index (linear probing)."""
    cdef u64 base = <u64>s * a.ways
    cdef u16* slot = &a.hslot[<u64>s << a.hbits]
    cdef u32 m = (1u << a.hbits) - 1
    cdef u32 i = _home(tag, asid, a.hbits)
    a.hhome[base + w] = <u16>i
    while slot[i]:
        i = (i + 1) & m
    slot[i] = <u16>(w + 1)
    a.hpos[base + w] = <u16>i


cdef inline i64 _insert(tlb_array* a, int c, u64 tag, u16 asid, u64 out, u64 va, i64* ctr,
                        bint probe=True) noexcept nogil:
    """Install (tag, asid) -> out in its set (update in place if present); returns
    the way. ctr[C_EVICT] counts a valid entry replaced (ctr may be NULL)."""
    cdef u32 s = _set(a, va, a.cls_shift[c]), w, node, lo, hi, mid
    cdef u64 base = <u64>s * a.ways, e
    cdef i64 f = _find(a, s, tag, asid) if probe else -1
    cdef int old
    cdef u8* bits
    a.epoch += 1
    if f >= 0:
        a.ent[base + f].out = out
        _touch(a, s, <u32>f)
        return f
    if a.sets[s].nvalid < a.ways:
        w = 0
        while a.ent[base + w].tag != 0:
            w += 1
        e = base + w
        a.ent[e].tag = tag
        a.ent[e].asid = asid
        a.ent[e].out = out
        a.ent[e].cls = <u8>c
        a.cls_count[c] += 1
        a.live |= 1u << c
        a.sets[s].nvalid += 1
        if a.hbits:
            _hash_add(a, s, w, tag, asid)
        _touch(a, s, w)
        return w
    # a full set: the victim's way is reused in place (what invalidating it and
    # filling the free way would do, without the set's counts going down and up)
    if a.repl == REPL_LRU:
        w = a.sets[s].tail
    elif a.repl == REPL_PLRU:
        bits = &a.plru[<u64>s * a.pn]
        node = 1
        lo = 0
        hi = a.pn
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if bits[node] and mid < a.ways:
                node = 2 * node + 1
                lo = mid
            else:
                node = 2 * node
                hi = mid
        w = lo
    else:
        w = <u32>((_rand(a) >> 32) % a.ways)
    if ctr != NULL:
        ctr[C_EVICT] += 1
    e = base + w
    if a.hbits:
        _hash_del(a, s, w)
        _hash_add(a, s, w, tag, asid)
    old = a.ent[e].cls
    if old != c:
        a.cls_count[old] -= 1
        if a.cls_count[old] == 0:
            a.live &= ~(1u << old)
        a.cls_count[c] += 1
        a.live |= 1u << c
        a.ent[e].cls = <u8>c
    a.ent[e].tag = tag
    a.ent[e].asid = asid
    a.ent[e].out = out
    _touch(a, s, w)
    return w


cdef inline int _class(tlb_array* a, int shift, bint walk) noexcept nogil:
    """Index of the (shift, walk) class of a, added on first use (-1: no room)."""
    cdef int c
    for c in range(a.ncls):
        if a.cls_shift[c] == shift and a.cls_walk[c] == walk:
            return c
    if a.ncls == TLB_MAX_CLASSES:
        return -1
    c = a.ncls
    a.cls_shift[c] = shift
    a.cls_walk[c] = walk
    a.cls_count[c] = 0
    a.ncls += 1
    return c


cdef inline void _fill_leaf(TlbCore self, int k, u32 asid, u64 va, u64 base, u64 size, u64 out, i64* ctr,
                            bint probe=True) noexcept nogil:
    """Cache the translation [base, base + size) -> out in TLB level k, splintered to
    the largest size the level holds that is <= size (aligned around va)."""
    cdef tlb_array* a = &self.arr[k]
    cdef int best = a.fill_cls[63 - __builtin_clzll(size)] if size else -1
    cdef u64 nb
    if best < 0:
        return
    nb = va & ~(((<u64>1) << a.cls_shift[best]) - 1)
    _insert(a, best, _tag(va, a.cls_shift[best], False), <u16>asid,
                 out + (nb - base), va, &ctr[4 * k], probe)
    ctr[4 * k + C_FILL] += 1


cdef inline i64 _flush_array(tlb_array* a, u32 asid, bint all_asids, u64 start, u64 end,
                      bint leaf, bint walk) noexcept nogil:
    """Invalidate the entries of a (of asid, or of every ASID) overlapping
    [start, end) whose kind is selected; returns how many."""
    cdef int c, sh
    cdef u64 span, first, nunits, u, b, e, n = 0
    cdef u32 s, ww
    cdef i64 f
    for c in range(a.ncls):
        if a.cls_count[c] == 0 or not (walk if a.cls_walk[c] else leaf):
            continue
        sh = a.cls_shift[c]
        span = (<u64>1) << sh
        first = start & ~(span - 1)
        if not all_asids and end - first <= (<u64>a.nsets << sh):
            nunits = (end - first + span - 1) >> sh
            for u in range(nunits):      # probe each unit the range touches
                b = first + (u << sh)
                s = _set(a, b, sh)
                f = _find(a, s, _tag(b, sh, a.cls_walk[c]), <u16>asid)
                if f >= 0:
                    _invalidate(a, s, <u32>f)
                    n += 1
            continue
        for s in range(a.nsets):         # else scan the array
            for ww in range(a.ways):
                e = <u64>s * a.ways + ww
                if a.ent[e].tag == 0 or a.ent[e].cls != c or (not all_asids and a.ent[e].asid != asid):
                    continue
                b = a.ent[e].tag & ~WALK_BIT & ~(span - 1)
                if b < end and b + span > start:
                    _invalidate(a, s, ww)
                    n += 1
    return <i64>n


cdef inline i64 _probe(tlb_array* a, u64 va, u16 asid, u32* sp, int* shp) noexcept nogil:
    """The way holding va for asid in the first of a's live leaf classes that has it
    (smallest first), or -1; its set and shift in sp and shp."""
    cdef u32 live = a.live & ((1u << a.nleaf) - 1), s
    cdef int c, sh
    cdef i64 w
    while live:
        c = __builtin_ctz(live)
        live &= live - 1
        sh = a.cls_shift[c]
        s = _set(a, va, sh)
        w = _find(a, s, _tag(va, sh, False), asid)
        if w >= 0:
            sp[0] = s
            shp[0] = sh
            return w
    return -1


cdef inline bint _hit(TlbCore self, int k, u32 asid, u64 va, u64* out, u64* base, u64* size,
                      i64* ctr) noexcept nogil:
    """Look va up in TLB level k (counted): on a hit the entry is touched and its
    output, base VA and size returned through out, base and size."""
    cdef tlb_array* a = &self.arr[k]
    cdef u32 s = 0
    cdef int sh = 0
    cdef i64 w
    ctr[4 * k + C_ACC] += 1
    w = _probe(a, va, <u16>asid, &s, &sh)
    if w < 0:
        return False
    _touch(a, s, <u32>w)
    ctr[4 * k + C_HIT] += 1
    out[0] = a.ent[<u64>s * a.ways + <u64>w].out
    base[0] = va & ~(((<u64>1) << sh) - 1)
    size[0] = (<u64>1) << sh
    return True


cdef inline int _lookup(TlbCore self, u32 asid, u64 va, int side, u64* out, u64* base, u64* size) noexcept nogil:
    """Translate va through the side's L1, then the L2: TLB_HIT_L1, TLB_HIT_L2 (the
    L1 is refilled) or TLB_MISS. On a hit: the entry's output (PA of base | attribute
    bits), base VA and size."""
    cdef i64* ctr = &self.counters[<u64>asid * NR_COUNTERS]
    cdef int k1 = self.l1[side], k2 = self.l2[side]
    if k1 < 0:
        return TLB_MISS
    if _hit(self, k1, asid, va, out, base, size, ctr):
        return TLB_HIT_L1
    if k2 < 0 or not _hit(self, k2, asid, va, out, base, size, ctr):
        return TLB_MISS
    _fill_leaf(self, k1, asid, va, base[0], size[0], out[0], ctr, False)
    return TLB_HIT_L2


cdef inline void _dc_ref(tlb_array* dc, u64 addr, i64* ctr) noexcept nogil:
    """A walk's read of the descriptor at PA addr through the data-cache model (64-byte
    lines), counted in ctr."""
    cdef u64 tag = _tag(addr, 6, False)
    cdef u32 s = _set(dc, addr, 6)
    cdef i64 f = _find(dc, s, tag, 0)
    ctr[C_DC_ACC] += 1
    if f >= 0:
        _touch(dc, s, <u32>f)
        ctr[C_DC_HIT] += 1
    else:
        _insert(dc, 0, tag, 0, addr & ~(<u64>63), addr, NULL, False)


cdef inline void _dc_log(TlbCore self, u64 addr) noexcept nogil:
    if self.dc_log_n == self.dc_log_cap and not self.dc_log_reserve(1):
        self.dc_log_fail = True           # the log is incomplete: nobody may replay it
        self.dc_log_on = False
        return
    self.dc_log[self.dc_log_n] = addr
    self.dc_log_n += 1


cdef inline void _walk_fill(TlbCore self, u32 asid, u64 va, int side, tlb_walk* w, bint missed) noexcept nogil:
    """Account the page-table walk that found *w for va (walk caches, memory
    references per level, data cache), then fill walk caches, L2 and L1.
    ``missed``: the lookup of (asid, va, side) just missed in the L1 and the L2 and
    nothing was filled since, so the fills need not probe for an entry to update (the
    lookup probed every live class with the tag the fill uses; a class not live holds
    nothing). A walk-cache entry is filled only at a level whose probe above just missed,
    so it is not probed again either (unless two walk caches share an array and a
    level: then the second finds the first's entry, as before)."""
    cdef i64* ctr = &self.counters[<u64>asid * NR_COUNTERS]
    cdef tlb_geom* g = &self.geoms[self.asid_geom[asid]]
    cdef int L = w.leaf_level, start = 0, i, l, lvl, sh, c
    cdef tlb_array* a
    cdef u64 tag, addr
    cdef u32 s
    cdef i64 f
    ctr[C_WALKS] += 1
    if not w.leaf_ok:
        ctr[C_WALK_FAULT] += 1
    for i in range(self.nwc):
        lvl = g.wc_level[i]
        if lvl < 0 or lvl >= L:
            continue
        a = &self.arr[self.wc_arr[i]]
        ctr[C_WC_LOOK + i] += 1
        sh = g.shift[lvl]
        tag = _tag(va, sh, True)
        s = _set(a, va, sh)
        f = _find(a, s, tag, <u16>asid)
        if f >= 0:
            _touch(a, s, <u32>f)
            ctr[C_WC_HIT + i] += 1
            if lvl + 1 > start:
                start = lvl + 1
    for l in range(start, L + 1):
        ctr[C_REFS] += 1
        ctr[C_REFS_L + l] += 1
        if self.dcache >= 0:
            addr = w.table_pa[l] + (((va >> g.shift[l]) & (((<u64>1) << g.tbits[l]) - 1)) << 3)
            if self.dc_log_on:
                _dc_log(self, addr)
            _dc_ref(&self.arr[self.dcache], addr, ctr)
    for i in range(self.nwc):
        lvl = g.wc_level[i]
        if lvl < start or lvl >= L:
            continue
        a = &self.arr[self.wc_arr[i]]
        sh = g.shift[lvl]
        c = _class(a, sh, True)
        if c >= 0:
            _insert(a, c, _tag(va, sh, True), <u16>asid, w.table_pa[lvl + 1], va, NULL, self.wc_shared)
    if not w.leaf_ok:
        return                            # a faulting walk caches no translation
    if self.l2[side] >= 0:
        _fill_leaf(self, self.l2[side], asid, va, w.unit_base, w.unit_size, w.pa_base, ctr, not missed)
    _fill_leaf(self, self.l1[side], asid, va, w.unit_base, w.unit_size, w.pa_base, ctr, not missed)


cdef inline u64 _key_words(tlb_array* a) noexcept nogil:
    cdef u64 n = 3 + <u64>TLB_MAX_CLASSES + <u64>a.nsets * (1 + 3 * <u64>a.ways)
    if a.repl == REPL_PLRU:
        n += (<u64>a.nsets * a.pn + 7) >> 3
    return n


cdef inline u64* _key_entry(u64* out, tlb_entry* e) noexcept nogil:
    out[0] = e.tag
    out[1] = e.out
    out[2] = <u64>e.asid | (<u64>e.cls << 16)
    return out + 3


cdef u64* _key_array(tlb_array* a, u64* out) noexcept nogil:
    """Array a's part of TlbCore.key_into (fixed length _key_words(a), zero-padded)."""
    cdef u64* end = out + _key_words(a)
    cdef u64 base, n
    cdef u32 s, w
    cdef u16 x
    cdef int c
    out[0] = <u64>a.repl
    out[1] = a.rng if a.repl == REPL_RANDOM else 0
    out[2] = <u64>a.ncls
    out += 3
    for c in range(TLB_MAX_CLASSES):
        out[c] = <u64>a.cls_shift[c] | (<u64>a.cls_walk[c] << 8) if c < a.ncls else 0
    out += TLB_MAX_CLASSES
    for s in range(a.nsets):
        base = <u64>s * a.ways
        out[0] = a.sets[s].nvalid
        out += 1
        if a.repl == REPL_LRU:          # recency order: the way an entry sits in decides nothing
            x = a.sets[s].head
            while x != NONE16:
                out = _key_entry(out, &a.ent[base + x])
                x = a.ent[base + x].nxt
            n = 3 * <u64>(a.ways - a.sets[s].nvalid)
            memset(out, 0, n * sizeof(u64))
            out += n
        else:                           # PLRU and random pick victims by way
            for w in range(a.ways):
                if a.ent[base + w].tag:
                    out = _key_entry(out, &a.ent[base + w])
                else:
                    out[0] = out[1] = out[2] = 0
                    out += 3
    if a.repl == REPL_PLRU:
        memset(out, 0, (end - out) * sizeof(u64))
        memcpy(out, a.plru, <u64>a.nsets * a.pn)
    return end


cdef inline u64 _state_bufs(tlb_array* a, void** buf, u64* sz) noexcept nogil:
    """a's buffers that hold state (entries, sets, PLRU bits, hash index) and their
    bytes (six of each); returns the total."""
    cdef u64 n = <u64>a.nsets * a.ways
    buf[0], buf[1], buf[2] = a.ent, a.sets, a.plru
    buf[3], buf[4], buf[5] = a.hslot, a.hpos, a.hhome
    sz[0] = n * sizeof(tlb_entry)
    sz[1] = <u64>a.nsets * sizeof(tlb_set)
    sz[2] = <u64>a.nsets * a.pn if a.repl == REPL_PLRU else 0
    sz[3] = (<u64>a.nsets << a.hbits) * sizeof(u16) if a.hbits else 0
    sz[4] = n * sizeof(u16) if a.hbits else 0
    sz[5] = sz[4]
    return sz[0] + sz[1] + sz[2] + sz[3] + sz[4] + sz[5]


cdef inline u64 _array_state_size(tlb_array* a) noexcept nogil:
    cdef u64 sz[6]
    cdef void* bufs[6]
    return sizeof(tlb_array) + _state_bufs(a, bufs, sz)


cdef inline u8* _array_save(tlb_array* a, u8* buf) noexcept nogil:
    """Copy a's state (_array_state_size bytes) to buf; returns the end."""
    cdef u64 sz[6]
    cdef void* bufs[6]
    cdef int i
    memcpy(buf, a, sizeof(tlb_array))
    buf += sizeof(tlb_array)
    _state_bufs(a, bufs, sz)
    for i in range(6):
        memcpy(buf, bufs[i], sz[i])
        buf += sz[i]
    return buf


cdef inline const u8* _array_restore(tlb_array* a, const u8* buf) noexcept nogil:
    """Put back _array_save's copy of this array; returns the end. The epoch moves
    past both the saved and the current one."""
    cdef u64 sz[6]
    cdef void* bufs[6]
    cdef int i
    cdef tlb_array fixed = a[0]
    memcpy(a, buf, sizeof(tlb_array))
    # what never changes after construction stays this core's own, whatever the copy
    # holds: the buffers and their layout
    a.ent, a.sets, a.plru = fixed.ent, fixed.sets, fixed.plru
    a.hslot, a.hpos, a.hhome = fixed.hslot, fixed.hpos, fixed.hhome
    a.nsets, a.ways, a.pn, a.hbits = fixed.nsets, fixed.ways, fixed.pn, fixed.hbits
    a.pow2, a.repl, a.nleaf = fixed.pow2, fixed.repl, fixed.nleaf
    a.epoch = (fixed.epoch if fixed.epoch > a.epoch else a.epoch) + 1
    buf += sizeof(tlb_array)
    _state_bufs(a, bufs, sz)
    for i in range(6):
        memcpy(bufs[i], buf, sz[i])
        buf += sz[i]
    return buf


cdef class TlbCore:
    """One CPU's MMU state. Build it with ``ppsize.tlb.TLB`` (which validates)."""

    def __cinit__(self, dict config):
        cdef int k, i, side
        self.config = config
        self._keep = []
        self.narr = 0
        self.ngeom = 0
        self.coalesce = bool(config["coalesce"])
        self.range_ops = bool(config.get("range_ops", False))
        self.max_asids = int(config["max_asids"])
        tlbs = config["tlbs"]
        self.ntlb = len(tlbs)
        for spec in tlbs:
            self._add_array(spec, spec["sizes"])
        for side in range(2):
            self.l1[side] = int(config["l1"][side])
            self.l2[side] = int(config["l2"][side])
        wcs = config["walk_caches"]
        self.nwc = len(wcs)
        for i, spec in enumerate(wcs):
            self.wc_dist[i] = int(spec["distance"])
            if spec.get("in_tlb", -1) >= 0:
                self.wc_arr[i] = int(spec["in_tlb"])
            else:
                self.wc_arr[i] = self._add_array(spec, [])
        self.wc_shared = False            # two walk caches in one array at one distance
        for i in range(self.nwc):
            for k in range(i):
                if self.wc_arr[i] == self.wc_arr[k] and self.wc_dist[i] == self.wc_dist[k]:
                    self.wc_shared = True
        dc = config.get("dcache")
        self.dcache = self._add_array(dc, [6]) if dc else -1
        ag = np.zeros(self.max_asids, dtype=np.uint8)
        self._keep.append(ag)
        self.asid_geom = <u8*>cnp.PyArray_DATA(ag)
        self._counters_a = np.zeros((self.max_asids, NR_COUNTERS), dtype=np.int64)
        self.counters = <i64*>cnp.PyArray_DATA(self._counters_a)
        for g in config.get("geometries", []):
            self.add_geometry(g["levels"], g["shifts"], g["tbits"], g.get("x86", False))
        self.dc_key_off = self.dc_key_len = 0
        if self.dcache >= 0:
            for k in range(self.dcache):
                self.dc_key_off += _key_words(&self.arr[k])
            self.dc_key_len = _key_words(&self.arr[self.dcache])

    def __dealloc__(self):
        free(self.dc_log)

    def _add_array(self, spec, sizes):
        """Allocate one set-associative array (NumPy-owned buffers)."""
        cdef int k = self.narr, c, i
        cdef tlb_array* a = &self.arr[k]
        cdef u32 nsets = spec["sets"], ways = spec["ways"], n = nsets * ways, pn = 1
        if k >= TLB_MAX_ARRAYS:
            raise ValueError(f"more than {TLB_MAX_ARRAYS} arrays")
        while pn < ways:
            pn <<= 1
        a.nsets = nsets
        a.ways = ways
        a.pn = pn
        a.pow2 = (nsets & (nsets - 1)) == 0
        a.repl = spec["repl"]
        a.rng = (<u64>spec.get("seed", 1) * <u64>0x9E3779B97F4A7C15) | 1
        a.hbits = 0
        if ways >= HASH_MIN_WAYS:
            # sparse (HASH_SLOTS_PER_WAY slots a way): short probe runs, so the probe
            # loops' trip counts, and their branches, are nearly always the same; at
            # most 1 << 16 slots, so a slot index fits hpos' u16 (ways <= 65534 leaves
            # an empty slot to end every probe)
            a.hbits = 1
            while (1 << a.hbits) < HASH_SLOTS_PER_WAY * ways and a.hbits < 16:
                a.hbits += 1

        def buf(count, dtype, fill=0):
            arr = np.full(max(count, 1), fill, dtype=dtype)
            self._keep.append(arr)
            return arr
        a.ent = <tlb_entry*>cnp.PyArray_DATA(buf(n * sizeof(tlb_entry), np.uint8))
        a.sets = <tlb_set*>cnp.PyArray_DATA(buf(nsets * sizeof(tlb_set), np.uint8))
        for i in range(n):
            a.ent[i].nxt = NONE16
            a.ent[i].prv = NONE16
        for i in range(nsets):
            a.sets[i].head = NONE16
            a.sets[i].tail = NONE16
        a.plru = <u8*>cnp.PyArray_DATA(buf(nsets * pn, np.uint8))
        a.hslot = <u16*>cnp.PyArray_DATA(buf(nsets << a.hbits if a.hbits else 1, np.uint16))
        a.hpos = <u16*>cnp.PyArray_DATA(buf(n if a.hbits else 1, np.uint16))
        a.hhome = <u16*>cnp.PyArray_DATA(buf(n if a.hbits else 1, np.uint16))
        sizes = sorted(int(s) for s in sizes)
        if len(sizes) > TLB_MAX_CLASSES:
            raise ValueError(f"more than {TLB_MAX_CLASSES} entry sizes")
        a.ncls = len(sizes)
        a.live = 0
        a.nleaf = len(sizes)
        for c in range(a.ncls):
            a.cls_shift[c] = sizes[c]
            a.cls_walk[c] = False
            a.cls_count[c] = 0
        for i in range(64):              # the leaf classes never change (walk classes come after)
            a.fill_cls[i] = -1
            for c in range(a.nleaf):
                if a.cls_shift[c] <= i:
                    a.fill_cls[i] = c
        self.narr += 1
        return k

    def add_geometry(self, int levels, shifts, tbits, bint x86=False):
        """Register a table mode (walk depth, VA shift and index bits per level, root
        first; ``x86``: Linux's x86 flush policy applies to it); returns its id for
        ``set_asid``."""
        cdef int g = self.ngeom, l, i, lvl
        if g >= TLB_MAX_GEOMS:
            raise ValueError(f"more than {TLB_MAX_GEOMS} geometries")
        if not 1 <= levels <= MAX_LEVELS:
            raise ValueError(f"levels must be 1..{MAX_LEVELS}, got {levels}")
        self.geoms[g].levels = levels
        self.geoms[g].x86 = x86
        for l in range(levels):
            self.geoms[g].shift[l] = int(shifts[l])
            self.geoms[g].tbits[l] = int(tbits[l])
        for i in range(TLB_MAX_WCS):
            lvl = levels - 1 - self.wc_dist[i] if i < self.nwc else -1
            self.geoms[g].wc_level[i] = lvl if lvl >= 0 else -1
        self.ngeom += 1
        return g

    def set_asid(self, int asid, int geom):
        """Bind an ASID to a registered table mode (a process's geometry)."""
        if not 0 <= asid < self.max_asids:
            raise ValueError(f"asid {asid} out of range 0..{self.max_asids - 1}")
        if not 0 <= geom < self.ngeom:
            raise ValueError(f"geometry id {geom} not registered (have {self.ngeom})")
        self.asid_geom[asid] = <u8>geom

    # ------------------------------------------------------------ state
    cdef u64 key_len(self) noexcept nogil:
        """Words of key_into's key."""
        cdef u64 n = 0
        cdef int k
        for k in range(self.narr):
            n += _key_words(&self.arr[k])
        return n

    cdef void key_into(self, u64* out) noexcept nogil:
        """The state that decides every later lookup, walk and fill, as key_len words:
        two cores with equal keys give the same outcomes and counters for any accesses
        from here. Per array: its size classes and, per set, its valid entries (tag,
        ASID, output, class), most recently used first for LRU, in way order with the
        tree-PLRU bits or the RNG state otherwise. Not the epochs (compared only within
        one batch loop), not the counters."""
        cdef int k
        for k in range(self.narr):
            out = _key_array(&self.arr[k], out)

    cdef u64 state_size(self) noexcept nogil:
        """Bytes of state_save's copy."""
        cdef u64 n = 0
        cdef int k
        for k in range(self.narr):
            n += _array_state_size(&self.arr[k])
        return n

    cdef void state_save(self, u8* buf) noexcept nogil:
        """Copy the whole state (state_size bytes; not the counters or ASID bindings)."""
        cdef int k
        for k in range(self.narr):
            buf = _array_save(&self.arr[k], buf)

    cdef void state_restore(self, const u8* buf) noexcept nogil:
        """Put back a copy from state_save of this core. Every epoch moves past both
        the saved and the current one."""
        cdef int k
        for k in range(self.narr):
            buf = _array_restore(&self.arr[k], buf)

    cdef void state_restore_tlb(self, const u8* buf) noexcept nogil:
        """state_restore but for the data cache, which keeps its own state."""
        cdef int k
        for k in range(self.narr):
            if k == self.dcache:
                buf += _array_state_size(&self.arr[k])
            else:
                buf = _array_restore(&self.arr[k], buf)

    # ------------------------------------------------------------ the data cache alone
    cdef bint dc_log_reserve(self, Py_ssize_t extra) noexcept nogil:
        """Room in dc_log for extra more references; False: no memory."""
        cdef Py_ssize_t want = self.dc_log_n + extra, cap = self.dc_log_cap
        cdef u64* p
        if want <= cap:
            return True
        cap = cap * 2 if cap * 2 > want else want
        if cap < 4096:
            cap = 4096
        p = <u64*>realloc(self.dc_log, cap * sizeof(u64))
        if p == NULL:
            return False
        self.dc_log, self.dc_log_cap = p, cap
        return True

    cdef i64 dcache_replay(self, const u64* addrs, Py_ssize_t n) noexcept nogil:
        """Send n walk references (descriptor PAs) through the data-cache model, as the
        walks that made them did; returns how many hit (no counter is touched)."""
        cdef i64 ctr[NR_COUNTERS]
        cdef Py_ssize_t i
        ctr[C_DC_ACC] = ctr[C_DC_HIT] = 0
        for i in range(n):
            _dc_ref(&self.arr[self.dcache], addrs[i], ctr)
        return ctr[C_DC_HIT]

    cdef void dcache_key_into(self, u64* out) noexcept nogil:
        """The data cache's part of key_into (dc_key_len words)."""
        _key_array(&self.arr[self.dcache], out)

    def state_key(self):
        """key_into as bytes (tests: equal keys, equal futures)."""
        key = np.zeros(self.key_len(), np.uint64)
        cdef u64[::1] v = key
        self.key_into(&v[0])
        return key.tobytes()

    def save_state(self):
        """state_save as a uint8 array, for restore_state."""
        buf = np.zeros(self.state_size(), np.uint8)
        cdef u8[::1] v = buf
        self.state_save(&v[0])
        return buf

    def restore_state(self, const u8[::1] saved):
        """state_restore from save_state's array (of this core)."""
        buffer_length(saved.shape[0], self.state_size(), "saved state")
        self.state_restore(&saved[0])

    # ------------------------------------------------------------ interface
    cdef int lookup(self, u32 asid, u64 va, int side, u64* out, u64* base, u64* size) noexcept nogil:
        """Translate va: TLB_HIT_L1, TLB_HIT_L2 (L1 refilled) or TLB_MISS."""
        return _lookup(self, asid, va, side, out, base, size)

    cdef void walk_fill(self, u32 asid, u64 va, int side, tlb_walk* w) noexcept nogil:
        """Account the walk that found *w for va, then fill walk caches, L2, L1."""
        _walk_fill(self, asid, va, side, w, False)

    cdef void walk_fill_missed(self, u32 asid, u64 va, int side, tlb_walk* w) noexcept nogil:
        """walk_fill right after lookup(asid, va, side) returned TLB_MISS (nothing filled
        since): the same state and counters, without probing again for the entries the
        lookup just found absent."""
        _walk_fill(self, asid, va, side, w, True)

    cdef void flush_range(self, u32 asid, u64 start, u64 end, bint last_level) noexcept nogil:
        """TLBI VALE1IS (last_level) / VAE1IS over [start, end) for asid."""
        self.counters[<u64>asid * NR_COUNTERS + C_FL_RANGE] += 1
        self._flush(asid, start, end, True, not last_level)

    cdef void _flush(self, u32 asid, u64 start, u64 end, bint leaf, bint walk) noexcept nogil:
        """Drop asid's leaf and/or walk-cache entries overlapping [start, end)."""
        cdef int k, i, j
        cdef bint seen
        cdef i64 n = 0
        for k in range(self.ntlb):
            n += _flush_array(&self.arr[k], asid, False, start, end, leaf, walk)
        if walk:
            for i in range(self.nwc):
                if self.wc_arr[i] < self.ntlb:
                    continue
                seen = False
                for j in range(i):
                    seen = seen or self.wc_arr[j] == self.wc_arr[i]
                if not seen:
                    n += _flush_array(&self.arr[self.wc_arr[i]], asid, False, start, end, False, True)
        self.counters[<u64>asid * NR_COUNTERS + C_FL_ENTRIES] += n

    cdef void flush_tlb_range(self, u32 asid, u64 start, u64 end, u64 stride, bint last_level) noexcept nogil:
        """A range flush as Linux issues it for the ASID's table mode. arm64
        (__flush_tlb_range_nosync): [start, end) rounded out to the stride; a range of
        (end - start) >= MAX_DVM_OPS (PTRS_PER_PTE) * stride without FEAT_TLBIRANGE, or
        of more than MAX_TLBI_RANGE_PAGES pages with it, becomes flush_tlb_mm
        (__flush_tlb_range_limit_excess); else TLBI VALE1IS / VAE1IS over the range.
        x86 (flush_tlb_mm_range): more than tlb_single_page_flush_ceiling (33) pages
        of the stride flush the whole PCID; else INVLPG per page, which also drops every
        paging-structure-cache entry of the PCID (Intel SDM 4.10.4.1)."""
        cdef tlb_geom* g = &self.geoms[self.asid_geom[asid]]
        cdef i64* ctr = &self.counters[<u64>asid * NR_COUNTERS]
        cdef int pshift = g.shift[g.levels - 1]
        cdef u64 ptrs_per_pte = (<u64>1) << g.tbits[g.levels - 1], pages
        if end <= start:
            return
        if stride == 0:
            stride = (<u64>1) << pshift
        start &= ~(stride - 1)
        end = (end + stride - 1) & ~(stride - 1)
        if g.x86:
            if (end - start) / stride > 33:
                ctr[C_FL_LIMIT] += 1
                self.flush_mm(asid)
                return
            ctr[C_FL_RANGE] += 1
            self._flush(asid, start, end, True, False)
            self._flush(asid, 0, ~(<u64>0), False, True)
            return
        pages = (end - start) >> pshift
        if (not self.range_ops and end - start >= ptrs_per_pte * stride) or pages > MAX_TLBI_RANGE_PAGES:
            ctr[C_FL_LIMIT] += 1
            self.flush_mm(asid)
            return
        self.flush_range(asid, start, end, last_level)

    cdef void flush_page(self, u32 asid, u64 va) noexcept nogil:
        """flush_tlb_page: TLBI VALE1IS of the page holding va (walk caches kept)."""
        cdef i64* ctr = &self.counters[<u64>asid * NR_COUNTERS]
        cdef int k
        cdef i64 n = 0
        ctr[C_FL_PAGE] += 1
        for k in range(self.ntlb):
            n += _flush_array(&self.arr[k], asid, False, va, va + 1, True, False)
        ctr[C_FL_ENTRIES] += n

    cdef void flush_mm(self, u32 asid) noexcept nogil:
        """flush_tlb_mm: TLBI ASIDE1IS, every entry of the ASID."""
        cdef i64* ctr = &self.counters[<u64>asid * NR_COUNTERS]
        cdef int k
        cdef i64 n = 0
        ctr[C_FL_MM] += 1
        for k in range(self.narr):
            if k != self.dcache:
                n += _flush_array(&self.arr[k], asid, False, 0, ~(<u64>0), True, True)
        ctr[C_FL_ENTRIES] += n

    cdef void flush_all(self) noexcept nogil:
        """flush_tlb_all: TLBI VMALLE1IS (the data cache is not a TLB and stays)."""
        cdef int k
        for k in range(self.narr):
            if k != self.dcache:
                _flush_array(&self.arr[k], 0, True, 0, ~(<u64>0), True, True)

    # ------------------------------------------------------------ Python side
    def invalidate_range(self, u32 asid, u64 start, u64 end, bint last_level=False):
        self._asid_ok(asid)
        self.flush_range(asid, start, end, last_level)

    def invalidate_page(self, u32 asid, u64 va):
        self._asid_ok(asid)
        self.flush_page(asid, va)

    def invalidate_tlb_range(self, u32 asid, u64 start, u64 end, u64 stride=0, bint last_level=False):
        """flush_tlb_range with Linux's escalation (see the cdef flush_tlb_range)."""
        self._asid_ok(asid)
        self.flush_tlb_range(asid, start, end, stride, last_level)

    def invalidate_mm(self, u32 asid):
        self._asid_ok(asid)
        self.flush_mm(asid)

    def invalidate_all(self):
        self.flush_all()

    def _asid_ok(self, asid):
        if not 0 <= asid < self.max_asids:
            raise ValueError(f"asid {asid} out of range 0..{self.max_asids - 1}")

    def lookup_one(self, u32 asid, u64 va, int side=SIDE_DATA):
        """(level hit or -1, out, base, size) for one access (tests, engines in Python)."""
        cdef u64 out = 0, base = 0, size = 0
        self._asid_ok(asid)
        r = self.lookup(asid, va, side, &out, &base, &size)
        return r, out, base, size

    def walk_fill_one(self, u32 asid, u64 va, int side, int leaf_level, u64 unit_base,
                      u64 unit_size, u64 pa_base, table_pa, bint leaf_ok=True):
        """walk_fill for one access with explicit table PAs (root first)."""
        cdef tlb_walk w
        cdef int l
        self._asid_ok(asid)
        if not 0 <= leaf_level < self.geoms[self.asid_geom[asid]].levels or len(table_pa) <= leaf_level:
            raise ValueError(f"leaf_level {leaf_level} out of range for asid {asid}'s "
                             f"{self.geoms[self.asid_geom[asid]].levels} levels (table_pa: {len(table_pa)})")
        if unit_size == 0 or unit_size & (unit_size - 1) or unit_base & (unit_size - 1) or side not in (0, 1):
            raise ValueError(f"unit {unit_base:#x}+{unit_size:#x} is not a power-of-two aligned "
                             f"unit, or side {side} not 0/1")
        w.leaf_ok = leaf_ok
        w.leaf_level = leaf_level
        w.unit_base = unit_base
        w.unit_size = unit_size
        w.pa_base = pa_base
        for l in range(leaf_level + 1):
            w.table_pa[l] = table_pa[l]
        self.walk_fill(asid, va, side, &w)

    @cython.boundscheck(False)
    def run(self, const u64[::1] vas, const u16[::1] asids, u16 asid_all,
            const u8[::1] sides, u8 side_all, const i64[::1] m_off,
            const u64[::1] m_start, const u64[::1] m_end, const u64[::1] m_unit,
            const u64[::1] m_pa, const i32[::1] m_leaf, i8[::1] result, bint check):
        """The batch loop over raw addresses (ppsize.tlb.TLB.run validates). The map is
        per ASID, CSR: ranges m_off[a] .. m_off[a+1] sorted by start; m_unit is the TLB
        unit after the coalescing decision, m_pa its PA base | attributes, m_leaf the
        leaf level. result[i]: 0 L1 hit, 1 L2 hit, 2 walk. Returns (index of the first
        address no range maps or -1, number of stale hits, index of the first or -1)."""
        cdef Py_ssize_t i, n = vas.shape[0]
        cdef bint per_asid = asids.shape[0] > 0, per_side = sides.shape[0] > 0
        self._check_run(n, asids, asid_all, sides, side_all, m_off, m_start, m_end, m_unit,
                        m_pa, m_leaf, result)
        cdef u64 va, out = 0, base = 0, size = 0, off
        cdef u32 asid
        cdef int side, r, l
        cdef i64 lo, hi, mid, bad = -1, first_stale = -1, nstale = 0
        cdef tlb_walk w
        cdef tlb_geom* g
        cdef tlb_last last
        last.side = -1
        with nogil:
            for i in range(n):
                va = vas[i]
                asid = asids[i] if per_asid else asid_all
                side = sides[i] if per_side else side_all
                if not per_asid and not check and tlb_repeat_hit(self, asid, va, side, &last, &out):
                    result[i] = 0
                    continue
                r = _lookup(self, asid, va, side, &out, &base, &size)
                tlb_note_hit(self, side, r, out, base, size, &last)
                if r >= 0 and not check:
                    result[i] = <i8>r
                    continue
                lo = m_off[asid]
                hi = m_off[asid + 1]
                while lo < hi:                  # the range holding va
                    mid = (lo + hi) >> 1
                    if m_end[mid] <= va:
                        lo = mid + 1
                    else:
                        hi = mid
                if r >= 0:                      # check: the hit must match the map
                    if lo == m_off[asid + 1] or m_start[lo] > va or base < m_start[lo] \
                            or base + size > m_end[lo] or size > m_unit[lo] \
                            or (out & ~ATTR_MASK) + (va - base) != (m_pa[lo] & ~ATTR_MASK) + (va - m_start[lo]):
                        nstale += 1
                        self.counters[<u64>asid * NR_COUNTERS + C_STALE] += 1
                        if first_stale < 0:
                            first_stale = i
                    result[i] = <i8>r
                    continue
                if lo == m_off[asid + 1] or m_start[lo] > va:
                    bad = i
                    break
                w.leaf_ok = True
                w.leaf_level = m_leaf[lo]
                w.unit_size = m_unit[lo]
                w.unit_base = va & ~(w.unit_size - 1)
                w.pa_base = m_pa[lo] + (w.unit_base - m_start[lo])
                g = &self.geoms[self.asid_geom[asid]]
                for l in range(w.leaf_level + 1):
                    # synthetic table layout: the tables of each level lie side by side
                    # in VA order, in a region of their own per ASID and level
                    w.table_pa[l] = (((<u64>asid + 1) << 50) | (<u64>l << 46)) + \
                        ((va >> (g.shift[l] + g.tbits[l])) << (g.tbits[l] + 3))
                _walk_fill(self, asid, va, side, &w, True)      # (r < 0: the lookup missed)
                result[i] = 2
        return bad, nstale, first_stale

    def _check_run(self, Py_ssize_t n, asids, u16 asid_all, sides, u8 side_all, m_off, m_start,
                   m_end, m_unit, m_pa, m_leaf, result):
        """run()'s nogil loop trusts every index it reads: check them once per batch."""
        buffer_length(result.shape[0], n, "result")
        buffer_length(asids.shape[0], n, "asids", optional=True)
        buffer_length(sides.shape[0], n, "sides", optional=True)
        buffer_length(m_off.shape[0], self.max_asids + 1, "m_off (max_asids + 1 offsets)")
        off = np.asarray(m_off)
        nr = int(off[-1])
        for name, a in (("m_start", m_start), ("m_end", m_end), ("m_unit", m_unit),
                        ("m_pa", m_pa), ("m_leaf", m_leaf)):
            buffer_length(a.shape[0], nr, name)
        if off[0] != 0 or (np.diff(off) < 0).any():
            raise ValueError("m_off must rise from 0")
        if asid_all >= self.max_asids or side_all > 1 or (asids.shape[0] and np.asarray(asids).max() >= self.max_asids) \
                or (sides.shape[0] and np.asarray(sides).max() > 1):
            raise ValueError(f"asids must be < {self.max_asids} and sides 0 or 1")
        if nr:
            unit, leaf = np.asarray(m_unit), np.asarray(m_leaf)
            if ((unit == 0) | (unit & (unit - np.uint64(1)))).any() or leaf.min() < 0 or leaf.max() >= MAX_LEVELS:
                raise ValueError(f"m_unit must be powers of two and m_leaf in 0..{MAX_LEVELS - 1}")

    def _k(self, int k):
        if not 0 <= k < self.narr:
            raise ValueError(f"array {k} out of range 0..{self.narr - 1}")

    def entries(self, int k):
        """Valid entries of array k: dict of NumPy arrays (set, way, tag, asid, out,
        base, size, walk) for inspection and tests."""
        self._k(k)
        cdef tlb_array* a = &self.arr[k]
        n = a.nsets * a.ways
        tag = np.empty(n, np.uint64)
        asid = np.empty(n, np.uint16)
        out = np.empty(n, np.uint64)
        for i in range(n):
            tag[i] = a.ent[i].tag
            asid[i] = a.ent[i].asid
            out[i] = a.ent[i].out
        idx = np.flatnonzero(tag)
        t = tag[idx]
        walk = (t >> np.uint64(63)).astype(bool)
        low = t & ~np.uint64(WALK_BIT)
        # span/2 - 1 is the run of low one bits: span = 2 * (lowest zero bit)
        span = ((low + np.uint64(1)) & ~low) << np.uint64(1)
        return {"set": idx // a.ways, "way": idx % a.ways, "tag": t, "asid": asid[idx],
                "out": out[idx], "base": low & ~(span - np.uint64(1)), "size": span, "walk": walk}

    def array_info(self, int k):
        self._k(k)
        cdef tlb_array* a = &self.arr[k]
        return {"sets": a.nsets, "ways": a.ways, "repl": a.repl, "hash_bits": a.hbits,
                "classes": [(a.cls_shift[c], bool(a.cls_walk[c]), a.cls_count[c]) for c in range(a.ncls)]}

    @property
    def narrays(self):
        return self.narr

    @property
    def counters(self):
        """(max_asids, NR_COUNTERS) int64 view of the per-ASID counters."""
        return self._counters_a

    def check(self):
        """Verify every invariant: per-set valid counts, class counts, no duplicate
        (tag, ASID) in a set, the hash index finds every entry and nothing else, the
        LRU list holds exactly the valid ways. Raises AssertionError."""
        cdef int k, c
        cdef u32 s, w
        cdef tlb_array* a
        for k in range(self.narr):
            a = &self.arr[k]
            counts = [0] * a.ncls
            for s in range(a.nsets):
                base = s * a.ways
                valid = [w for w in range(a.ways) if a.ent[base + w].tag != 0]
                assert a.sets[s].nvalid == len(valid), f"array {k} set {s}: nvalid {a.sets[s].nvalid} != {len(valid)}"
                keys = {(a.ent[base + w].tag, a.ent[base + w].asid) for w in valid}
                assert len(keys) == len(valid), f"array {k} set {s}: duplicate entries"
                for w in valid:
                    c = a.ent[base + w].cls
                    assert c < a.ncls, f"array {k}: class {c} out of range"
                    counts[c] += 1
                    assert _set(a, a.ent[base + w].tag & ~WALK_BIT, a.cls_shift[c]) == s, \
                        f"array {k}: entry in the wrong set"
                    assert _find(a, s, a.ent[base + w].tag, a.ent[base + w].asid) == w, \
                        f"array {k} set {s}: entry {w} not found"
                if a.hbits:
                    used = [a.hslot[(s << a.hbits) + i] for i in range(1 << a.hbits)]
                    assert sorted(v - 1 for v in used if v) == valid, f"array {k} set {s}: hash index"
                    for i in range(1 << a.hbits):
                        if used[i]:
                            assert a.hpos[base + used[i] - 1] == i, f"array {k} set {s}: hash position"
                            assert a.hhome[base + used[i] - 1] == _home(a.ent[base + used[i] - 1].tag,
                                a.ent[base + used[i] - 1].asid, a.hbits), f"array {k} set {s}: hash home"
                if a.repl == REPL_LRU:
                    order = []
                    x = a.sets[s].head
                    while x != NONE16 and len(order) <= a.ways:
                        order.append(x)
                        x = a.ent[base + x].nxt
                    assert sorted(order) == valid, f"array {k} set {s}: LRU list {order} != {valid}"
                    assert (a.sets[s].tail == (order[len(order) - 1] if order else NONE16)), f"array {k} set {s}: LRU tail"
            assert counts == [a.cls_count[c] for c in range(a.ncls)], f"array {k}: class counts"
            assert a.live == sum(1 << c for c in range(a.ncls) if counts[c]), f"array {k}: live classes"

    def lru_order(self, int k, u32 s):
        """Ways of set s, most recently used first (LRU arrays)."""
        self._k(k)
        cdef tlb_array* a = &self.arr[k]
        if s >= a.nsets:
            raise ValueError(f"set {s} out of range 0..{a.nsets - 1}")
        order = []
        x = a.sets[s].head
        while x != NONE16:
            order.append(x)
            x = a.ent[s * a.ways + x].nxt
        return order
