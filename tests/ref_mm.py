"""Pure-Python reference of the anonymous fault path (obvious code: dicts and sets).

A :class:`RefKernel` (frames from tests/ref_buddy.RefBuddy, so pfns match the
Cython buddy allocator pfn for pfn; folios, mapcounts, THP policy, mTHP stats) and
:class:`RefProcess` (VMAs and errnos from ppsize.abi.AddressSpace, which has its own
tests; everything below it -- page-table leaves and tables, faults, COW, zap,
protect, move, fork, exit -- implemented here independently of ppsize._core.mm).

Linux sources read (torvalds/linux, 6.12-6.18): mm/memory.c do_anonymous_page,
alloc_anon_folio, do_wp_page, wp_page_copy, wp_can_reuse_anon_folio,
copy_page_range / vma_needs_copy / copy_present_ptes (folio_try_dup_anon_rmap clears
PageAnonExclusive), zap_pte_range, free_pgtables / free_pgd_range / free_pmd_range,
can_change_pte_writable (mm/mprotect.c), move_page_tables / move_huge_pmd (mm/mremap.c),
vms_gather_munmap_vmas / vms_clear_ptes (mm/vma.c: floor = prev's end, ceiling =
next's start, the replacing VMA not counted); mm/huge_memory.c do_huge_pmd_anonymous_page
(vmf_anon_prepare before the huge zero path), do_huge_pmd_wp_page, do_huge_zero_wp_pmd
(6.15+), __split_huge_zero_page_pmd, vma_adjust_trans_huge; include/linux/huge_mm.h
thp_vma_allowable_orders, thp_vma_suitable_order(s), count_mthp_stat (order 0 ignored);
arch/arm64/mm/mmap.c and arch/x86/mm/pgprot.c protection_map (write, and on x86 exec,
imply read).

Modelled semantics are the engine's (ppsize/_core/mm.pyx) where it knowingly
simplifies Linux: COW/REUSE decided per process page (PageAnonExclusive of the
page's first frame, else every mapping of the folio in this MM and refcount <= 1;
anonymous folios here never hold extra references, so the refcount test always
passes), tables kept after zaps until free_pgtables of the hole.

Leaves: ``ptes`` maps the VA of each last-level entry (a kernel page when emulated,
a process page when native) to ``[pfn, prot]`` (pfn of its first frame); ``blocks``
maps PMD-aligned VAs to ``[pfn, prot]``. Tables: a dict ``(level, index) -> pfn`` with
level >= 1 (the root is ``root``, freed at exit) and index = va >> shift of the parent
level. Every table is kernel memory, as in Linux: a page-table page of order
log2(table bytes / kernel page) from the buddy (unmovable), or, for a PGD smaller than
a kernel page, an object of a pgd cache (perfectly packed slabs, the newest freed
first); -2 stands for such an object. A fault allocates its tables where Linux does
(__handle_mm_fault's pud/pmd_alloc at the fault, pte_alloc before the folio) and one
that cannot is VM_FAULT_OOM. Every block (an anon THP or the huge zero PMD) has a
deposited PTE table (``deposits``, a LIFO of pfns: pgtable_trans_huge_deposit before
the zero PMD, after the THP's folio; copy_huge_pmd at fork); a split withdraws one as
its PTE table, a zap of a block frees one (zap_deposited_table), mremap keeps them.
"""
from __future__ import annotations

from ppsize.abi import AddressSpace
from ppsize.geometry import default_geometry, geometry as lookup_geometry
from ppsize.units import fmt_size, parse_size
from ppsize._core.vma import VM_FLAGS

from ref_buddy import MOVABLE, UNMOVABLE, RefBuddy

VM_READ, VM_WRITE, VM_EXEC = VM_FLAGS["VM_READ"], VM_FLAGS["VM_WRITE"], VM_FLAGS["VM_EXEC"]
VM_SHARED, VM_MAYWRITE = VM_FLAGS["VM_SHARED"], VM_FLAGS["VM_MAYWRITE"]
VM_DONTCOPY, VM_LOCKED_MASK = VM_FLAGS["VM_DONTCOPY"], VM_FLAGS["VM_LOCKED_MASK"]
VM_HUGEPAGE, VM_NOHUGEPAGE = VM_FLAGS["VM_HUGEPAGE"], VM_FLAGS["VM_NOHUGEPAGE"]
R, W, X = 1, 2, 4
HIT, FAULT, ZERO, COW, REUSE, SEGV_MAPERR, SEGV_ACCERR, OOM, SIGBUS = range(9)
OUTCOME_NAMES = ("hit", "fault", "zero", "cow", "reuse", "segv_maperr", "segv_accerr", "oom", "sigbus", "major")   # major: file faults only


class RefKernel:
    def __init__(self, page_size="4K", memory="8G", geometry=None, mthp=None, thp="always",
                 use_zero_page=True):
        K = parse_size(page_size, "page_size")
        self.g = default_geometry(K) if geometry is None else lookup_geometry(geometry)
        self.K = K
        self.kshift = K.bit_length() - 1
        self.nr_pages = parse_size(memory, "memory") // K
        self.pmd_order = self.g.pmd_order
        self.buddy = RefBuddy(self.nr_pages, self.g.max_page_order, self.g.pageblock_order)
        # the zero region: the first allocation at boot, order = PMD order lowered
        # while it is more than a quarter of memory
        order = self.pmd_order
        while order > 0 and (1 << order) > self.nr_pages // 4:
            order -= 1
        self.zero_order = order
        self.zero_pfn = self.buddy.alloc(order, UNMOVABLE)
        assert self.zero_pfn >= 0
        self.folio_order = {}      # head pfn -> order (anon folios)
        self.folio_mapped = {}     # head pfn -> mappings of its frames, summed
        self.head_of = {}          # pfn -> head pfn
        self.mapcount = {}         # pfn -> mappings
        self.excl = set()          # pfns with PageAnonExclusive
        self.anon_pages = 0
        self.fault_alloc = {}
        self.fault_fallback = {}
        self.nr_oom = 0
        self.nr_pagetable = 0      # NR_PAGETABLE (kernel pages)
        self.nr_pgtable_fail = 0
        self.caches = {}           # object size -> [per_slab, order, objects, [slab pfns]]
        self.top = "always"
        self.mthp = {self.pmd_order: "inherit"}
        self.use_zero_page = True
        self.procs = {}
        self._next_pid = 1
        self.set_thp(thp, mthp or {}, use_zero_page)

    # ------------------------------------------------------------ policy
    def set_thp(self, enabled=None, mthp=None, use_zero_page=None):
        if enabled is not None:
            self.top = enabled
        for size, setting in (mthp or {}).items():
            order = (parse_size(size, "size") // self.K).bit_length() - 1
            self.mthp[order] = setting
        if use_zero_page is not None:
            self.use_zero_page = bool(use_zero_page)

    def allowed_orders(self, vm_flags):
        """thp_vma_allowable_orders for an anonymous VMA (orders 2..PMD order)."""
        if vm_flags & VM_NOHUGEPAGE:
            return set()
        hp = bool(vm_flags & VM_HUGEPAGE)
        out = set()
        for order in range(2, self.pmd_order + 1):
            s = self.mthp.get(order, "never")
            if s == "always" or (s == "madvise" and hp) or \
                    (s == "inherit" and (self.top == "always" or (self.top == "madvise" and hp))):
                out.add(order)
        return out

    def is_zero(self, pfn):
        return self.zero_pfn <= pfn < self.zero_pfn + (1 << self.zero_order)

    # ------------------------------------------------------------ kernel memory
    def table_alloc(self, nbytes):
        """A page table of nbytes: its pfn, -2 (a pgd cache object) or -1 (no memory)."""
        if nbytes < self.K:
            return -2 if self.cache_alloc(nbytes) else -1
        order = (nbytes // self.K).bit_length() - 1
        pfn = self.buddy.alloc(order, UNMOVABLE)
        if pfn < 0:
            self.nr_pgtable_fail += 1
            return -1
        self.nr_pagetable += 1 << order
        return pfn

    def table_free(self, pfn, nbytes):
        if pfn == -2:
            self.cache_free(nbytes)
            return
        order = (nbytes // self.K).bit_length() - 1
        self.buddy.free(pfn, order)
        self.nr_pagetable -= 1 << order

    def _cache(self, size):
        if size not in self.caches:
            # SLUB calculate_order: min_objects 12 (2 CPUs), leftover <= 1/16 .. 1/2
            min_order = max(0, (-(-12 * size // self.K) - 1).bit_length())
            order = next(o for f in (16, 8, 4, 2) for o in range(min(min_order, 3), 4)
                         if (self.K << o) % size <= (self.K << o) // f)
            self.caches[size] = [(self.K << order) // size, order, 0, []]
        return self.caches[size]

    def cache_alloc(self, size):
        c = self._cache(size)
        per, order, n, slabs = c
        if n == per * len(slabs):
            pfn = self.buddy.alloc(order, UNMOVABLE)
            if pfn < 0:
                return False
            slabs.append(pfn)
        c[2] += 1
        return True

    def cache_free(self, size):
        c = self.caches[size]
        c[2] -= 1
        if (len(c[3]) - 1) * c[0] >= c[2] and c[3]:
            self.buddy.free(c[3].pop(), c[1])

    # ------------------------------------------------------------ folios
    def count(self, order, ok):
        d = self.fault_alloc if ok else self.fault_fallback
        d[order] = d.get(order, 0) + 1

    def alloc_folio(self, order):
        pfn = self.buddy.alloc(order, MOVABLE)
        if pfn < 0:
            return -1
        self.folio_order[pfn] = order
        self.folio_mapped[pfn] = 0
        for i in range(1 << order):
            self.head_of[pfn + i] = pfn
        self.anon_pages += 1 << order
        return pfn

    def unalloc_folio(self, pfn):
        """A new folio never mapped, freed again (folio_put)."""
        order = self.folio_order.pop(pfn)
        del self.folio_mapped[pfn]
        for i in range(1 << order):
            del self.head_of[pfn + i]
        self.anon_pages -= 1 << order
        self.buddy.free(pfn, order)

    def get_frames(self, pfn, nr):
        for i in range(nr):
            self.mapcount[pfn + i] = self.mapcount.get(pfn + i, 0) + 1
            self.folio_mapped[self.head_of[pfn + i]] += 1

    def put_frames(self, pfn, nr):
        """Drop one mapping of each frame; free the folio once nothing maps it."""
        for i in range(nr):
            f = pfn + i
            self.mapcount[f] -= 1
            if not self.mapcount[f]:
                del self.mapcount[f]
            head = self.head_of[f]
            self.folio_mapped[head] -= 1
            if self.folio_mapped[head] == 0:
                order = self.folio_order.pop(head)
                del self.folio_mapped[head]
                for j in range(1 << order):
                    del self.head_of[head + j]
                    self.excl.discard(head + j)
                self.buddy.free(head, order)
                self.anon_pages -= 1 << order

    def set_excl(self, pfn, nr, value):
        """PageAnonExclusive of frames pfn .. pfn + nr - 1."""
        if value:
            self.excl.update(range(pfn, pfn + nr))
        else:
            self.excl.difference_update(range(pfn, pfn + nr))

    # ------------------------------------------------------------ processes
    def spawn(self, page_size=None, pgtable="emulated"):
        P = self.K if page_size is None else parse_size(page_size, "page_size")
        if pgtable == "native" and P > self.K << self.zero_order:
            raise ValueError("a native process needs a zero page of its page size")
        return RefProcess(self, P, pgtable)

    def meminfo(self):
        kb = self.K >> 10
        heads = set()
        tables = 0
        for p in self.procs.values():
            tables += p.table_bytes()
            heads |= {pfn for pfn, _ in p.blocks.values() if not self.is_zero(pfn)}
        return {"MemTotal": (self.nr_pages - (1 << self.zero_order)) * kb,
                "MemFree": self.buddy.nr_free_pages * kb,
                "AnonPages": self.anon_pages * kb,
                "AnonHugePages": len(heads) * (1 << self.pmd_order) * kb,
                "PageTables": tables >> 10,
                "Cached": 0, "XArrayNodes": 0}         # anonymous workloads: no page cache

    def mthp_stats(self):
        # count_mthp_stat ignores order 0: there is no hugepages-<PAGE_SIZE>kB
        orders = sorted(o for o in set(self.fault_alloc) | set(self.fault_fallback) if o > 0)
        return {fmt_size(self.K << o): {"anon_fault_alloc": self.fault_alloc.get(o, 0),
                                        "anon_fault_fallback": self.fault_fallback.get(o, 0)}
                for o in orders}


class RefProcess:
    def __init__(self, k: RefKernel, P, pgtable, *, register=True):
        self.k = k
        self.native = pgtable == "native"
        self.pgtable = pgtable
        self.pid = k._next_pid
        k._next_pid += 1
        self.minflt_prev = 0       # min_flt is the task's: earlier images' faults
        self._setup(P, self._alloc_root(P))
        if register:
            k.procs[self.pid] = self

    def _alloc_root(self, P):
        """pgd_alloc for an MM of page size P: the root's pfn (or -2); OSError(ENOMEM)."""
        k = self.k
        g = default_geometry(P, k.g.arch) if self.native else k.g
        root = k.table_alloc(g.table_sizes[0])
        if root == -1:
            raise OSError(12, "ENOMEM: no memory for the page-table root")
        return root

    def _setup(self, P, root):
        k = self.k
        self.P = P
        self.porder = (P // k.K).bit_length() - 1
        self.tg = default_geometry(P, k.g.arch) if self.native else k.g
        self.unit = self.tg.page_size                 # VA one PTE maps
        self.pte_level = self.tg.levels - 1
        self.pmd_size = self.tg.pmd_size
        self.va_limit = 1 << self.tg.va_bits
        self.aspace = AddressSpace(k.g, P)
        self.read_mask = VM_READ | VM_WRITE | (VM_EXEC if k.g.arch == "x86_64" else 0)
        self.ptes = {}
        self.blocks = {}
        self.tables = {}
        self.deposits = []          # deposited PTE tables (pfns), one per block
        self.root = root
        self.rss = 0
        self.minflt = 0
        self.outcomes = [0] * len(OUTCOME_NAMES)

    # ------------------------------------------------------------ tables
    def _table_key(self, level, va):
        return (level, va >> self.tg.shifts[level - 1])

    def _ensure_tables(self, va, leaf_level, oom=False):
        """The tables of va's walk down to leaf_level, top-down. No memory for one:
        False with ``oom`` (a fault's VM_FAULT_OOM; those allocated stay), else
        MemoryError (a syscall's)."""
        for level in range(1, leaf_level + 1):
            key = self._table_key(level, va)
            if key in self.tables:
                continue
            pfn = self.k.table_alloc(self.tg.table_sizes[level])
            if pfn == -1:
                if oom:
                    return False
                raise MemoryError(f"ENOMEM: no memory for a level-{level} page table")
            self.tables[key] = pfn
        return True

    def _free_table(self, key):
        self.k.table_free(self.tables.pop(key), self.tg.table_sizes[key[0]])

    def table_pfns(self):
        """The page-table pages (pfns) of this process, the root's included."""
        return {pfn for pfn in list(self.tables.values()) + self.deposits + [self.root] if pfn >= 0}

    def _deposit(self):
        """pte_alloc_one + pgtable_trans_huge_deposit: False when there is no memory."""
        pfn = self.k.table_alloc(self.tg.table_sizes[-1])
        if pfn == -1:
            return False
        self.deposits.append(pfn)
        return True

    def _zap_deposit(self):
        self.k.table_free(self.deposits.pop(), self.tg.table_sizes[-1])

    def vmpte_bytes(self):
        g = self.tg
        levels = set(g.vmpte_levels())
        total = sum(g.table_sizes[l] for l, _ in self.tables if l in levels)
        if g.levels >= 2:
            total += len(self.blocks) * g.table_sizes[-1]      # deposited PTE tables
        return total

    def table_bytes(self):
        g = self.tg
        total = g.table_sizes[0] + sum(g.table_sizes[l] for l, _ in self.tables)
        if g.levels >= 2:
            total += len(self.blocks) * g.table_sizes[-1]
        return total

    def pmd_none(self, va):
        """No block and no PTE table under the PMD entry of va."""
        b = va & ~(self.pmd_size - 1)
        return b not in self.blocks and self._table_key(self.pte_level, va) not in self.tables

    def free_tables(self, floor, ceiling):
        """free_pgd_range: tables whose whole span lies in [floor, ceiling) and hold
        nothing, depth first (each table's children, in address order, before it)."""
        self._free_under(0, 0, floor, ceiling)

    def _free_under(self, level, base, floor, ceiling):
        g = self.tg
        if level == g.levels - 1:
            return
        cspan = 1 << g.shifts[level]            # VA of one entry = span of a child table
        end = base + (1 << g.shifts[level - 1]) if level else self.va_limit
        kids = sorted(i for l, i in self.tables if l == level + 1
                      and base <= i * cspan < end and i * cspan + cspan > floor and i * cspan < ceiling)
        for i in kids:
            cva = i * cspan
            self._free_under(level + 1, cva, floor, ceiling)
            if cva >= floor and cva + cspan <= ceiling and not self._table_used(level + 1, cva, cspan):
                self._free_table((level + 1, i))

    def _table_used(self, level, base, span):
        end = base + span
        if level == self.pte_level:
            return any(base <= v < end for v in self.ptes)
        if level == self.pte_level - 1 and any(base <= v < end for v in self.blocks):
            return True
        cspan = 1 << self.tg.shifts[level]
        return any(l == level + 1 and base <= i * cspan < end for l, i in self.tables)

    # ------------------------------------------------------------ leaves
    def lookup(self, va):
        """(pfn of va's frame, prot, is_block) or None."""
        b = va & ~(self.pmd_size - 1)
        if b in self.blocks:
            pfn, prot = self.blocks[b]
            return pfn + ((va - b) >> self.k.kshift), prot, True
        u = va & ~(self.unit - 1)
        if u in self.ptes:
            pfn, prot = self.ptes[u]
            if self.k.is_zero(pfn) and not self.native:
                return pfn, prot, False
            return pfn + ((va - u) >> self.k.kshift), prot, False
        return None

    def any_mapped(self, start, end):
        if any(start < b + self.pmd_size and b < end for b in self.blocks):
            return True
        return any(start <= u < end for u in self.ptes)

    def split_block(self, b):
        """split_huge_pmd: PTEs of the same frames (a huge zero PMD becomes PTEs of
        the zero page, __split_huge_zero_page_pmd); the deposited table is used."""
        self.tables[self._table_key(self.pte_level, b)] = self.deposits.pop()   # withdraw
        pfn, prot = self.blocks.pop(b)
        step = self.unit >> self.k.kshift
        for i in range(self.pmd_size // self.unit):
            f = self.k.zero_pfn if self.k.is_zero(pfn) else pfn + i * step
            self.ptes[b + i * self.unit] = [f, prot]

    def split_at(self, x):
        """split_huge_pmd of a block that straddles x (a VMA boundary, a move's end)."""
        b = x & ~(self.pmd_size - 1)
        if b != x and b in self.blocks:
            self.split_block(b)

    def _split_partial(self, start, end):
        for b in sorted(self.blocks):
            if b < end and start < b + self.pmd_size and not (start <= b and b + self.pmd_size <= end):
                self.split_block(b)

    def leaves_in(self, start, end):
        """[(va, size, pfn, prot, is_block)] ascending (blocks wholly inside)."""
        out = [(b, self.pmd_size, pfn, prot, True) for b, (pfn, prot) in self.blocks.items()
               if start <= b and b + self.pmd_size <= end]
        out += [(u, self.unit, pfn, prot, False) for u, (pfn, prot) in self.ptes.items()
                if start <= u < end]
        return sorted(out)

    def map_folio(self, va, pfn, order, prot, block):
        """A new anon folio: folio_add_new_anon_rmap(RMAP_EXCLUSIVE)."""
        k = self.k
        nr = 1 << order
        k.get_frames(pfn, nr)
        k.set_excl(pfn, nr, True)
        if block:
            self._ensure_tables(va, self.pte_level - 1)
            self.blocks[va] = [pfn, prot]
        else:
            self._ensure_tables(va, self.pte_level)
            step = self.unit >> k.kshift
            for i in range(0, nr, step):
                self.ptes[va + (i << k.kshift)] = [pfn + i, prot]
        self.rss += nr

    def map_zero(self, pva, prot):
        self._ensure_tables(pva, self.pte_level)
        for u in range(pva, pva + self.P, self.unit):
            self.ptes[u] = [self.k.zero_pfn, prot]

    def zap(self, start, end):
        """zap_pte_range over [start, end): partial blocks split, tables kept."""
        self._split_partial(start, end)
        blocks = 0
        for va, size, pfn, prot, block in self.leaves_in(start, end):
            if block:
                del self.blocks[va]
                blocks += 1
            else:
                del self.ptes[va]
            if not self.k.is_zero(pfn):
                nr = size >> self.k.kshift
                self.k.put_frames(pfn, nr)
                self.rss -= nr
        for _ in range(blocks):             # the tables' side of the zap, after the pages
            self._zap_deposit()

    def set_prot(self, start, end, prot):
        self._split_partial(start, end)
        for va, size, pfn, _, block in self.leaves_in(start, end):
            (self.blocks if block else self.ptes)[va][1] = prot

    def leaf_prot(self, vm_flags):
        """PTE permissions of a private VMA before a write fault (protection_map's
        PAGE_COPY-like entries): readable when the flags meet the arch's read mask
        (arm64: read or write; x86: read, write or exec), x for exec; no write."""
        return (R if vm_flags & self.read_mask else 0) | (X if vm_flags & VM_EXEC else 0)

    # ------------------------------------------------------------ faults
    def access(self, vas, writes):
        need = []
        out = []
        for va, w in zip(vas, writes):
            r = self._access_one(int(va), bool(w), need)
            self.outcomes[r] += 1
            out.append(r)
        for start in need:                 # anon_vma_prepare after the batch
            self.aspace.anon_prepare(start)
        return out

    def _access_one(self, va, w, need):
        if va >= self.va_limit:
            return SEGV_MAPERR
        leaf = self.lookup(va)
        if leaf is not None and leaf[1] & (W if w else R):
            return HIT
        return self.fault(va, w, need)

    def fault(self, va, w, need):
        vma = self.aspace.vma_at(va)
        if vma is None:
            return SEGV_MAPERR
        vs, ve, flags, _, fid, anon = vma
        if w:
            if not flags & VM_WRITE:
                return SEGV_ACCERR
        elif not flags & self.read_mask:
            return SEGV_ACCERR
        if fid >= 0 or flags & VM_SHARED:
            return SIGBUS
        pva = va & ~(self.P - 1)
        if self.lookup(pva) is not None:
            if w:
                return self.do_wp(vma, pva, need)
            self.minflt += 1               # spurious: present but the PTE denies it
            return HIT
        # __handle_mm_fault: pud_alloc / pmd_alloc down to the PMD table
        if not self._ensure_tables(pva, self.pte_level - 1, oom=True):
            self.k.nr_oom += 1
            return OOM
        return self.do_anonymous(vma, va, w, need)

    def _note(self, vs, need):
        if vs not in need:
            need.append(vs)

    def do_anonymous(self, vma, va, w, need):
        k = self.k
        vs, ve, flags, _, _, anon = vma
        orders = k.allowed_orders(flags)
        prot = self.leaf_prot(flags)
        pva = va & ~(self.P - 1)
        self.minflt += 1
        if w and not anon:
            self._note(vs, need)
        # create_huge_pmd -> do_huge_pmd_anonymous_page (kernel-granule tables only):
        # thp_vma_suitable_order, then vmf_anon_prepare (reads too), then the huge
        # zero page for a read if use_zero_page, else a PMD THP (maybe_pmd_mkwrite)
        if not self.native and k.pmd_order in orders:
            size = k.K << k.pmd_order
            a = va & ~(size - 1)
            if a >= vs and a + size <= ve and self.pmd_none(a):
                if not anon:
                    self._note(vs, need)
                if not w and k.use_zero_page and k.zero_order >= k.pmd_order:
                    if not self._deposit():             # pte_alloc_one first
                        k.nr_oom += 1
                        self.minflt -= 1
                        return OOM
                    self.blocks[a] = [k.zero_pfn, prot]
                    return ZERO
                pfn = k.alloc_folio(k.pmd_order)
                if pfn >= 0:
                    k.count(k.pmd_order, True)
                    if not self._deposit():             # after the folio: released, OOM
                        k.unalloc_folio(pfn)
                        k.nr_oom += 1
                        self.minflt -= 1
                        return OOM
                    # Linux: maybe_pmd_mkwrite (W only with VM_WRITE); the engine maps it
                    # writable regardless (test_read_only_vma_thp_read_fault_not_writable)
                    self.map_folio(a, pfn, k.pmd_order, prot | W, True)
                    return FAULT
                k.count(k.pmd_order, False)
        if not self._ensure_tables(pva, self.pte_level, oom=True):     # pte_alloc
            k.nr_oom += 1
            self.minflt -= 1
            return OOM
        if not w:
            self.map_zero(pva, prot)
            return ZERO
        # alloc_anon_folio: highest allowed order above the process order whose
        # aligned range is in the VMA and has no PTE; then lower ones on failure
        limit = k.pmd_order + 1 if self.native else k.pmd_order
        cands = sorted((o for o in orders if self.porder < o < limit), reverse=True)
        for i, order in enumerate(cands):
            size = k.K << order
            a = va & ~(size - 1)
            if a < vs or a + size > ve or self.any_mapped(a, a + size):
                continue
            for o in cands[i:]:
                a = va & ~((k.K << o) - 1)
                pfn = k.alloc_folio(o)
                if pfn >= 0:
                    k.count(o, True)
                    self.map_folio(a, pfn, o, prot | W, False)
                    return FAULT
                k.count(o, False)
            break
        pfn = k.alloc_folio(self.porder)
        if pfn < 0:
            k.nr_oom += 1
            self.minflt -= 1
            return OOM
        k.count(self.porder, True)
        self.map_folio(pva, pfn, self.porder, prot | W, False)
        return FAULT

    def do_wp(self, vma, pva, need):
        k = self.k
        vs, ve, flags, _, _, anon = vma
        prot = self.leaf_prot(flags) | W
        self.minflt += 1
        if not anon:
            self._note(vs, need)
        pfn, _, block = self.lookup(pva)
        b = pva & ~(self.pmd_size - 1)
        if k.is_zero(pfn) and block and not self.native:
            # do_huge_zero_wp_pmd: a new PMD THP replaces the huge zero PMD; on
            # failure the PMD is split and the process page copied below
            new = k.alloc_folio(k.pmd_order)
            if new >= 0:
                k.count(k.pmd_order, True)
                del self.blocks[b]
                self.map_folio(b, new, k.pmd_order, prot, True)
                return COW
            k.count(k.pmd_order, False)
        elif not k.is_zero(pfn):
            if block:
                head = self.blocks[b][0]
                if self.can_reuse(b, head):
                    k.set_excl(head, 1 << k.pmd_order, True)
                    self.blocks[b][1] = prot
                    return REUSE
            elif self.can_reuse(pva, pfn):
                k.set_excl(pfn, self.P >> k.kshift, True)
                self.set_prot(pva, pva + self.P, prot)
                return REUSE
        # wp_page_copy: a process page, not counted in the mTHP stats; a block is
        # split first (its PTE table allocated here: no memory is VM_FAULT_OOM)
        if block:
            self.split_block(b)             # the deposit is its PTE table
        new = k.alloc_folio(self.porder)
        if new < 0:
            k.nr_oom += 1
            self.minflt -= 1
            return OOM
        self.zap(pva, pva + self.P)
        self.map_folio(pva, new, self.porder, prot, False)
        return COW

    def can_reuse(self, pva, pfn):
        """do_wp_page's test for the page (or block) at pva whose first frame is pfn:
        PageAnonExclusive, else wp_can_reuse_anon_folio: every mapping of the folio
        is one of this MM's, found where the folio would lie around pva. (Linux
        6.15+ looks anywhere in the MM and never reuses a large folio with one page
        mapped: the two xfails after test_mremap_dontunmap_keeps_source_tables.)"""
        k = self.k
        if pfn in k.excl:
            return True
        head = k.head_of[pfn]
        nr = 1 << k.folio_order[head]
        fva = pva - ((pfn - head) << k.kshift)
        here = 0
        for va in range(fva, fva + (nr << k.kshift), k.K):
            leaf = self.lookup(va)
            if leaf is not None and head <= leaf[0] < head + nr:
                here += 1
        return k.folio_mapped[head] == here

    # ------------------------------------------------------------ effects
    def apply(self, free_tables=True):
        """The page-table work of the last syscall; madvise never frees tables."""
        for eff in self.aspace.drain_effects():
            if eff.kind == "zap":
                self.zap(eff.start, eff.end)
                if free_tables:
                    self.free_hole(eff.start, eff.end)
            elif eff.kind == "protect":
                self.protect(eff.start, eff.end, eff.arg)
            elif eff.kind == "move":
                self.move(eff.start, eff.end, eff.arg)
                # as the engine, also after MREMAP_DONTUNMAP, which Linux never
                # unmaps (test_mremap_dontunmap_keeps_source_tables, xfail)
                self.free_hole(eff.start, eff.end)
            elif eff.kind == "populate":
                self.populate(eff.start, eff.end)
            elif eff.kind == "split":
                pass        # the reference splits at every VMA boundary itself (_split_ends)
            else:
                raise AssertionError(eff)

    def free_hole(self, start, end):
        """free_pgtables(floor = end of the last VMA ending at or before start,
        ceiling = start of the first VMA starting at or after end); VMAs overlapping
        [start, end) replaced it later (MAP_FIXED, MREMAP_FIXED) and do not count."""
        floor, ceiling = 0, self.va_limit
        for s, e, *_ in self.aspace.vmas:
            if e <= start:
                floor = max(floor, e)
            elif s >= end:
                ceiling = min(ceiling, s)
        self.free_tables(floor, ceiling)

    def protect(self, start, end, vm_flags):
        """change_protection: new r/x bits everywhere; write only on process pages
        whose first frame is PageAnonExclusive (can_change_pte_writable), never on
        the zero page."""
        prot = self.leaf_prot(vm_flags)
        self.set_prot(start, end, prot)
        if not vm_flags & VM_WRITE:
            return
        runs = []
        for pva in range(start, end, self.P):
            leaf = self.lookup(pva)
            ok = leaf is not None and not self.k.is_zero(leaf[0]) and leaf[0] in self.k.excl
            if ok:
                if runs and runs[-1][1] == pva:
                    runs[-1][1] = pva + self.P
                else:
                    runs.append([pva, pva + self.P])
        for s, e in runs:
            self.set_prot(s, e, prot | W)

    def move(self, start, end, new_start):
        """move_page_tables: blocks straddling start or end are split first (a
        partial PMD extent), then the leaves of [start, end) go to new_start. A whole
        block stays a block where the destination is PMD-aligned and its PMD entry
        empty (move_huge_pmd needs pmd_none), else it becomes PTEs; source tables
        kept, destination tables allocated."""
        self.split_at(start)
        self.split_at(end)
        delta = new_start - start
        leaves = self.leaves_in(start, end)
        stays = []                  # the destination's tables first, leaf by leaf
        for va, size, pfn, prot, block in leaves:
            nva = va + delta
            stay = block and nva % self.pmd_size == 0 and self.pmd_none(nva)
            if stay:
                self._ensure_tables(nva, self.pte_level - 1)
            else:
                for i in range(size // self.unit):
                    self._ensure_tables(nva + i * self.unit, self.pte_level)
            stays.append(stay)
        blocks = 0
        for va, size, pfn, prot, block in leaves:
            if block:
                del self.blocks[va]
                blocks += 1
            else:
                del self.ptes[va]
        for _ in range(blocks):            # the source's zap frees the deposits
            self._zap_deposit()
        for (va, size, pfn, prot, block), stay in zip(leaves, stays):
            nva = va + delta
            if stay:
                self.blocks[nva] = [pfn, prot]
                assert self._deposit()     # what the zap just freed
            elif block:
                step = self.unit >> self.k.kshift
                for i in range(size // self.unit):
                    self.ptes[nva + i * self.unit] = [pfn + i * step, prot]
            else:
                self.ptes[nva] = [pfn, prot]

    def populate(self, start, end):
        vma = self.aspace.vma_at(start)
        flags = vma[2] if vma else 0
        write = (flags & (VM_WRITE | VM_SHARED)) == VM_WRITE
        vas = list(range(start, end, self.P))
        self.access(vas, [write] * len(vas))

    # ------------------------------------------------------------ syscalls
    def _call(self, fn, args, rng, free_tables=True):
        """The syscall on the VMAs, then vma_adjust_trans_huge at both ends of its
        range (rng(result)) where they are VMA boundaries, then its page-table work."""
        try:
            res = fn(*args)
            self._split_ends(*rng(res))
            return res
        finally:
            self.apply(free_tables)

    def _split_ends(self, addr, length):
        start = parse_size(addr, "addr")
        end = start + -(-parse_size(length, "length") // self.P) * self.P
        vma_at = self.aspace.vma_at
        for x in (start, end):
            if x < self.va_limit and vma_at(x) != (vma_at(x - 1) if x else None):
                self.split_at(x)

    def mmap(self, length, addr=None, prot="rw", **flags):
        return self._call(lambda: self.aspace.mmap(length, addr, prot, **flags), (),
                          lambda res: (res, length))

    def munmap(self, addr, length):
        return self._call(self.aspace.munmap, (addr, length), lambda _: (addr, length))

    def mprotect(self, addr, length, prot):
        return self._call(self.aspace.mprotect, (addr, length, prot), lambda _: (addr, length))

    def mremap(self, old, old_len, new_len, flags=0, new_addr=None):
        return self._call(self.aspace.mremap, (old, old_len, new_len, flags, new_addr),
                          lambda _: (old, old_len))

    def madvise(self, addr, length, advice):
        return self._call(self.aspace.madvise, (addr, length, advice), lambda _: (addr, length),
                          free_tables=False)

    # ------------------------------------------------------------ fork / exec / exit
    def fork(self):
        """copy_page_range for each VMA with an anon_vma (vma_needs_copy); COW
        mappings write-protected in both and their pages lose PageAnonExclusive
        (folio_try_dup_anon_rmap); the child's tables mirror the parent's."""
        k = self.k
        child = RefProcess(k, self.P, self.pgtable)
        try:
            return self._copy_into(child)
        except MemoryError:
            child.exit()
            raise OSError(12, "fork: ENOMEM") from None

    def _copy_into(self, child):
        k = self.k
        g = self.tg
        for s, e, flags, pgoff, fid, anon in self.aspace.vmas:
            if flags & VM_DONTCOPY:
                continue
            # dup_mmap: mlock is not inherited (VM_LOCKED_MASK cleared), no merging
            child.aspace.vmas.insert(s, e, flags & ~VM_LOCKED_MASK, pgoff, fid, anon, merge=False)
            if not anon:
                continue
            cow = (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE
            if cow:
                self.set_prot(s, e, self.leaf_prot(flags))
            # copy_page_range: the child's tables and its blocks' deposits (copy_huge_pmd)
            # in walk order (each table before those below it)
            walk = [((idx << g.shifts[level - 1]), level, (level, idx)) for level, idx in self.tables
                    if idx << g.shifts[level - 1] < e and s < (idx + 1) << g.shifts[level - 1]
                    and (level, idx) not in child.tables]
            walk += [(b, self.pte_level, None) for b in self.blocks if s <= b < e]
            n_dep = len(child.deposits)
            try:
                for _, level, key in sorted(walk):
                    if key is None:
                        if not child._deposit():
                            raise MemoryError("ENOMEM: fork's deposited tables")
                        continue
                    pfn = k.table_alloc(g.table_sizes[level])
                    if pfn == -1:
                        raise MemoryError("ENOMEM: fork's page tables")
                    child.tables[key] = pfn
            except MemoryError:
                while len(child.deposits) > n_dep:      # the partial copy's blocks zapped
                    child._zap_deposit()
                raise
            for va, size, pfn, prot, block in self.leaves_in(s, e):
                p = prot & ~W if cow else prot
                (child.blocks if block else child.ptes)[va] = [pfn, p]
                if not k.is_zero(pfn):
                    nr = size >> k.kshift
                    k.get_frames(pfn, nr)
                    if cow:
                        k.set_excl(pfn, nr, False)
                    child.rss += nr
        child.aspace._next_anon = self.aspace._next_anon
        return child

    def exit_mm(self):
        self.zap(0, self.va_limit)
        self.free_tables(0, self.va_limit)
        self.k.table_free(self.root, self.tg.table_sizes[0])     # mm_free_pgd
        self.root = None

    def exec(self, page_size=None):
        P = self.P if page_size is None else parse_size(page_size, "page_size")
        root = self._alloc_root(P)          # bprm_mm_init: the new MM first
        self.exit_mm()
        self.minflt_prev += self.minflt
        self._setup(P, root)

    def exit(self):
        self.exit_mm()
        del self.k.procs[self.pid]

    # ------------------------------------------------------------ accounting
    def status(self):
        kb = self.k.K >> 10
        return {"VmSize": sum(e - s for s, e, *_ in self.aspace.vmas) >> 10,
                "VmRSS": self.rss * kb, "RssAnon": self.rss * kb, "RssFile": 0, "RssShmem": 0,
                "VmPTE": self.vmpte_bytes() >> 10, "minflt": self.minflt_prev + self.minflt, "majflt": 0}

    def outcome_counts(self):
        return dict(zip(OUTCOME_NAMES, self.outcomes))

    def range_stats(self, start, end):
        """(rss, pmd-mapped, zero) kernel pages mapped in [start, end) (a block
        straddling start or end would be clipped)."""
        rss = pmd = zero = 0
        ks = self.k.kshift
        leaves = [(u, u + self.unit, pfn, False) for u, (pfn, _) in self.ptes.items() if start <= u < end]
        leaves += [(max(b, start), min(b + self.pmd_size, end), pfn, True)
                   for b, (pfn, _) in self.blocks.items() if b < end and start < b + self.pmd_size]
        for s, e, pfn, block in leaves:
            nr = (e - s) >> ks
            if self.k.is_zero(pfn):
                zero += nr
            else:
                rss += nr
                pmd += nr if block else 0
        return rss, pmd, zero
