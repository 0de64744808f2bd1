# PUBLIC C interface of ppsize (stable; an extension may cimport it, see examples/cython/).
# The MMU model: per-CPU TLB hierarchy, walk caches and a data-cache model for walk
# references, ASID-tagged, state in NumPy-owned arrays (see tlb.pyx's docstring for the
# engine-integration notes). The cdef functions below are the interface the fault engine
# calls from its nogil loop.
from ._types cimport u64, i64, u32, i32, u16, u8, i8, MAX_LEVELS

cdef enum:
    TLB_MAX_ARRAYS = 16       # TLB levels + walk caches + the data cache
    TLB_MAX_TLBS = 4          # l1d, l1i, l2 (unified) or l2d + l2i
    TLB_MAX_WCS = 6           # walk caches (PSCs / Arm walk cache)
    TLB_MAX_CLASSES = 16      # entry sizes (leaf) + walk-entry spans an array holds
    TLB_MAX_GEOMS = 16        # table modes (geometries) registered
    HASH_MIN_WAYS = 9         # sets this wide are found through a per-set hash index
                              # (at most 9: tlb._tag_hits compares up to 8 ways)
    HASH_SLOTS_PER_WAY = 8    # the hash index's slots per way (a power of two >= this x ways)

cdef enum:                    # replacement policies
    REPL_LRU = 0
    REPL_PLRU = 1
    REPL_RANDOM = 2

cdef enum:                    # access side
    SIDE_DATA = 0
    SIDE_INSN = 1

cdef enum:                    # what tlb lookup found
    TLB_MISS = -1
    TLB_HIT_L1 = 0
    TLB_HIT_L2 = 1

cdef enum:                    # per-ASID counters (row of TlbCore.counters)
    C_ACC = 0                 # + 4 * tlb level: accesses, hits, fills, evictions
    C_HIT = 1
    C_FILL = 2
    C_EVICT = 3
    C_WALKS = 16
    C_REFS = 17
    C_REFS_L = 18             # .. 22: walk memory references per level (root = 0)
    C_WC_LOOK = 23            # .. 28: lookups per walk cache
    C_WC_HIT = 29             # .. 34: hits per walk cache
    C_DC_ACC = 35             # walk references sent through the data-cache model
    C_DC_HIT = 36
    C_STALE = 37              # hits found stale by run(check=True)
    C_FL_RANGE = 38
    C_FL_MM = 39
    C_FL_PAGE = 40
    C_FL_ENTRIES = 41         # entries (leaf or walk) removed by flushes
    C_FL_LIMIT = 42           # flush_tlb_range calls escalated to flush_tlb_mm (range too long)
    C_WALK_FAULT = 43         # walks that found no valid leaf (the access faulted)
    NR_COUNTERS = 48

cdef struct tlb_entry:
    # One entry (24 bytes: a set of 5 ways spans two or three cache lines of the host).
    u64 tag                   # (base | (span/2 - 1)) with bit 63 set for walk-cache entries; 0 = invalid
    u64 out                   # leaf: PA of the entry's base | attribute bits; walk: next table PA
    u16 asid
    u16 nxt                   # LRU list (per set, most recent at head), way indices
    u16 prv
    u8 cls                    # class index

cdef struct tlb_set:
    u16 head                  # LRU list ends; 0xffff = empty
    u16 tail
    u32 nvalid                # valid entries

cdef struct tlb_array:
    # One set-associative array of nsets * ways entries, each entry's fields side by
    # side (a lookup reads one set's memory, not one line per field).
    tlb_entry* ent
    tlb_set* sets
    u8* plru                  # per set: pn tree-PLRU node bits (heap order, node 1 = root)
    u16* hslot                # per set: (1 << hbits) slots of way + 1, 0 = empty
    u16* hpos                 # per entry (hashed arrays): its slot in hslot, so an
    u16* hhome                # invalidation needs no probe, and its home slot (no rehash)
    u32 nsets
    u32 ways
    u32 pn                    # ways rounded up to a power of two
    int hbits                 # 0: scan the set; else log2(hash slots per set)
    bint pow2                 # nsets is a power of two
    int repl
    u64 rng                   # xorshift64* state (REPL_RANDOM)
    int ncls
    int cls_shift[TLB_MAX_CLASSES]
    bint cls_walk[TLB_MAX_CLASSES]
    i64 cls_count[TLB_MAX_CLASSES]
    u32 live                  # bit c set: class c holds entries (cls_count[c] > 0)
    int nleaf                 # classes [0, nleaf) are leaf sizes, ascending
    i8 fill_cls[64]           # per log2(unit size): the largest leaf class <= it, -1: none
    u64 epoch                 # bumped by every insert and invalidation: a loop that saw an
                              # entry hit may reuse it while the epoch stands (tlb_repeat_hit)

cdef struct tlb_geom:
    int levels
    int shift[MAX_LEVELS]
    int tbits[MAX_LEVELS]
    bint x86                  # flush policy: x86 flush_tlb_mm_range (else arm64 __flush_tlb_range)
    int wc_level[TLB_MAX_WCS]  # absolute level cached by each walk cache (-1: none here)

cdef struct tlb_walk:
    # What the page-table walk found for one VA, handed to TlbCore.walk_fill.
    int leaf_level            # level of the leaf descriptor (root = 0)
    u64 unit_base             # VA base of the translation unit (page, contiguous run, block)
    u64 unit_size             # its size in bytes, after the coalescing decision
    u64 pa_base               # PA of unit_base | attribute bits (low 12 bits)
    u64 table_pa[MAX_LEVELS]  # PA of the table read at each level 0 .. leaf_level
    bint leaf_ok              # False: the walk ended at an invalid entry at leaf_level (a
                              # fault): references and walk caches counted, no leaf filled

cdef class TlbCore:
    cdef tlb_array arr[TLB_MAX_ARRAYS]
    cdef int narr
    cdef int ntlb                        # TLB levels are arrays 0 .. ntlb - 1
    cdef int l1[2]                       # array index per side
    cdef int l2[2]                       # array index per side (-1: none; equal: unified)
    cdef int nwc
    cdef int wc_arr[TLB_MAX_WCS]         # array holding each walk cache's entries
    cdef int wc_dist[TLB_MAX_WCS]        # levels above the last level (1 = entry pointing at a PTE table)
    cdef int dcache                      # array index of the data-cache model, -1: none
    cdef bint wc_shared                  # two walk caches share an array and a distance
    cdef tlb_geom geoms[TLB_MAX_GEOMS]
    cdef int ngeom
    cdef u8* asid_geom                   # per ASID slot
    cdef readonly int max_asids
    cdef readonly bint coalesce          # the core caches a contiguous run as one entry
    cdef readonly bint range_ops         # FEAT_TLBIRANGE: long flushes need no escalation
    cdef i64* counters                   # max_asids x NR_COUNTERS
    cdef object _keep                    # the NumPy arrays owning every buffer
    cdef readonly object _counters_a
    cdef readonly object config

    # the engine's interface (all nogil, none can fail)
    cdef int lookup(self, u32 asid, u64 va, int side, u64* out, u64* base, u64* size) noexcept nogil
    cdef void walk_fill(self, u32 asid, u64 va, int side, tlb_walk* w) noexcept nogil
    cdef void walk_fill_missed(self, u32 asid, u64 va, int side, tlb_walk* w) noexcept nogil
    cdef void flush_range(self, u32 asid, u64 start, u64 end, bint last_level) noexcept nogil
    cdef void flush_mm(self, u32 asid) noexcept nogil
    cdef void flush_page(self, u32 asid, u64 va) noexcept nogil
    cdef void flush_all(self) noexcept nogil
    cdef void _flush(self, u32 asid, u64 start, u64 end, bint leaf, bint walk) noexcept nogil
    # Linux's policy around the primitives (arm64 __flush_tlb_range, x86 flush_tlb_mm_range)
    cdef void flush_tlb_range(self, u32 asid, u64 start, u64 end, u64 stride, bint last_level) noexcept nogil
    # the state as a comparable key and as a copy (MMCore.access_repeat: a pass that
    # repeats the pass before); key_len / state_size are fixed once the core is built
    cdef u64 key_len(self) noexcept nogil
    cdef void key_into(self, u64* out) noexcept nogil
    cdef u64 state_size(self) noexcept nogil
    cdef void state_save(self, u8* buf) noexcept nogil
    cdef void state_restore(self, const u8* buf) noexcept nogil
    cdef void state_restore_tlb(self, const u8* buf) noexcept nogil
    # The data-cache model only counts (C_DC_ACC, C_DC_HIT): nothing a lookup, walk or
    # fill does depends on it. So a pass whose TLB state (the key without the data
    # cache's part) repeats the pass before's makes the same walks from there, and only
    # the data cache's counts need working out: by sending it the pass before's walk
    # references again, logged while dc_log_on (access_repeat).
    cdef u64* dc_log                     # the walk references' addresses, in order
    cdef Py_ssize_t dc_log_n, dc_log_cap
    cdef bint dc_log_on
    cdef bint dc_log_fail                # the log misses references (no memory, or the
                                         # pass before's log it goes on with did)
    cdef u64 dc_key_off                  # key_into's words before the data cache's part
    cdef u64 dc_key_len                  # its words (0: no data cache)
    cdef bint dc_log_reserve(self, Py_ssize_t extra) noexcept nogil
    cdef i64 dcache_replay(self, const u64* addrs, Py_ssize_t n) noexcept nogil
    cdef void dcache_key_into(self, u64* out) noexcept nogil


cdef struct tlb_last:
    # The last L1 hit of a batch loop, in the smallest size the L1 holds: while the L1
    # array's epoch is unchanged the same entry is still there, the most recently used of
    # its set and the first a lookup finds, so a further access inside it is an L1 hit
    # with nothing to update but the counters (tlb_repeat_hit).
    u64 epoch
    u64 base
    u64 size
    u64 out
    int side                  # -1: none


cdef inline bint tlb_repeat_hit(TlbCore t, u32 asid, u64 va, int side, tlb_last* last, u64* out) noexcept nogil:
    """An L1 hit on the entry of the last hit (see tlb_last), counted as lookup would."""
    cdef int k = t.l1[side]
    cdef i64* ctr
    if last.side != side or t.arr[k].epoch != last.epoch or va - last.base >= last.size:
        return False
    ctr = &t.counters[<u64>asid * NR_COUNTERS + 4 * k]
    ctr[C_ACC] += 1
    ctr[C_HIT] += 1
    out[0] = last.out
    return True


cdef inline void tlb_note_hit(TlbCore t, int side, int level, u64 out, u64 base, u64 size,
                              tlb_last* last) noexcept nogil:
    """Remember an L1 hit (level 0) for tlb_repeat_hit; anything else forgets. Only a hit
    in the smallest leaf size the L1 holds: lookup probes the sizes smallest first, so
    inside a larger entry another access may hit a smaller one (a 64K entry inside a
    32M block's), which is the one it touches."""
    cdef tlb_array* a = &t.arr[t.l1[side]]
    cdef u32 live = a.live & ((1u << a.nleaf) - 1)
    cdef int c = 0
    if level != 0:
        last.side = -1
        return
    while live and not (live >> c) & 1:
        c += 1
    if size != (<u64>1) << a.cls_shift[c]:
        last.side = -1
        return
    last.side = side
    last.epoch = t.arr[t.l1[side]].epoch
    last.base = base
    last.size = size
    last.out = out
