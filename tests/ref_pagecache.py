"""Pure-Python reference of the page cache (ppsize._core.pagecache), for differential tests.

Each file's cache is a dict {first page index: RefFolio(order, readahead flag)}; lookups
scan the dict (obvious, slow). Memory never runs out and no pfns exist: the tests compare
folio layouts (index, order), nrpages, pages read and the file_ra_state, not physical
placement. The readahead rules are written from mm/readahead.c (linux-mm 2aaa83f5) and
mm/filemap.c directly, as plain integer arithmetic:

  sync (page_cache_sync_ra): start of file / oversized / sequential (index - prev <= 1):
      size = get_init_ra_size(req, max), async = size - req or size / 2; else look back
      for cached history (prev_miss): none -> read req pages as is (state untouched);
      history -> size = min(contig + req, max) (contig doubled if cached from 0), async 1.
      order = 0, then ra_order.
  async (page_cache_async_ra) at a PG_readahead folio: clear it; at the expected index
      start += size, size = max(size, next(size)); else rebuild from next_miss; order += 2;
      end aligned down to 1 << min(order, ffs(max) - 1); async = size; ra_order.
  ra_order: order = max(min, min(max, ra.order, ilog2(size))), unaligned index -> __ffs,
      shrink to the window/EOF limit; stop at a present folio and read the rest with
      min-order readahead (skipping present pages), mark at start + size - async.
  truncate: remove from page ceil(size) on; the folio holding `size` is split (halving,
      keeping the half with that page) down to the min order, or removed if it cannot be.
"""
from dataclasses import dataclass

MAX_PAGECACHE_ORDER = {12: 9, 14: 11, 16: 11}


def ilog2(x):
    return x.bit_length() - 1


def ffs0(x):                      # __ffs
    return (x & -x).bit_length() - 1


def init_ra_size(size, mx):
    n = 1
    while n < size:
        n *= 2
    if n <= mx // 32:
        return n * 4
    if n <= mx // 4:
        return n * 2
    return mx


def next_ra_size(cur, mx):
    if cur < mx // 16:
        return 4 * cur
    if cur <= mx // 2:
        return 2 * cur
    return mx


@dataclass
class RefFolio:
    order: int
    readahead: bool = False
    dirty: bool = False


class RefFile:
    def __init__(self, size, min_order, max_order, ra_pages):
        self.size = size
        self.min_order = min_order
        self.max_order = max_order
        self.cache = {}               # index -> RefFolio
        self.ra = dict(start=0, size=0, async_size=0, order=0, prev_pos=-1, ra_pages=ra_pages)
        self.pages_read = 0

    # --- lookups
    def folio_at(self, index):
        """(first index, RefFolio) covering index, or None."""
        for start, fo in self.cache.items():
            if start <= index < start + (1 << fo.order):
                return start, fo
        return None

    def present(self, index):
        return self.folio_at(index) is not None

    def nrpages(self):
        return sum(1 << fo.order for fo in self.cache.values())

    def layout(self):
        return sorted((i, fo.order) for i, fo in self.cache.items())


class RefPageCache:
    def __init__(self, page_shift=12, ra_pages=None, io_pages=None):
        self.shift = page_shift
        self.max_pc_order = MAX_PAGECACHE_ORDER[page_shift]
        self.ra_pages = (128 * 1024) >> page_shift if ra_pages is None else ra_pages
        self.io_pages = self.ra_pages if io_pages is None else io_pages
        self.files = []
        self.pages_read = 0
        self.n_sync_ra = 0
        self.n_async_ra = 0

    # ------------------------------------------------------------ files
    def new_file(self, size, min_order=0, large=True):
        mo = min(min_order, self.max_pc_order)
        mx = max(self.max_pc_order if large else 0, mo)
        self.files.append(RefFile(size, mo, mx, self.ra_pages))
        return len(self.files) - 1

    def cached(self):
        return sum(f.nrpages() for f in self.files)

    # ------------------------------------------------------------ adding
    def add(self, f, index, order, readahead=False):
        """0, or 'EEXIST' when any page of [index, index + 2**order) is cached."""
        F = self.files[f]
        assert order >= F.min_order and index % (1 << order) == 0
        if any(F.present(i) for i in range(index, index + (1 << order))):
            return "EEXIST"
        F.cache[index] = RefFolio(order, readahead)
        F.pages_read += 1 << order
        self.pages_read += 1 << order
        return 0

    def ra_unbounded(self, f, index, nr, lookahead):
        """Min-order folios over [index, index + nr), present pages skipped; returns the
        index after the last page considered (ractl->_index after read_pages)."""
        F = self.files[f]
        m = 1 << F.min_order
        base = index - index % m
        mark = None
        if lookahead <= nr:
            t = index + nr - lookahead
            mark = -(-t // m) * m - base
        nr += index - base
        i = 0
        while i < nr:
            if F.present(base + i):
                i += m
                continue
            self.add(f, base + i, F.min_order, readahead=(i == mark))
            i += m
        return base + i

    def do_ra(self, f, index, nr, lookahead):
        F = self.files[f]
        if F.size == 0:
            return
        end = (F.size - 1) >> self.shift
        if index > end:
            return
        nr = min(nr, end - index + 1)
        self.ra_unbounded(f, index, nr, lookahead)

    def ra_order(self, f, start):
        F = self.files[f]
        ra = F.ra
        index = start
        if F.max_order == 0:
            ra["order"] = 0
        else:
            limit = (F.size - 1) >> self.shift if F.size > 0 else 1 << 62
            limit = min(limit, index + ra["size"] - 1)
            mark = index + ra["size"] - ra["async_size"]
            new = max(F.min_order, min(F.max_order, ra["order"], ilog2(ra["size"])))
            ra["order"] = new
            index -= index % (1 << F.min_order)
            failed = False
            while index <= limit:
                o = new
                if index % (1 << o):
                    o = ffs0(index)
                while o > F.min_order and index + (1 << o) - 1 > limit:
                    o -= 1
                if self.add(f, index, o, readahead=(index == mark - mark % (1 << o))) != 0:
                    failed = True
                    break
                index += 1 << o
            if not failed:
                return
        if ra["size"] > index - start:
            self.do_ra(f, index, ra["size"] - (index - start), ra["async_size"])

    def sync_ra(self, f, index, req):
        F = self.files[f]
        ra = F.ra
        if ra["ra_pages"] == 0:
            self.do_ra(f, index, 1, 0)        # force_page_cache_ra of one page
            return
        mx = ra["ra_pages"]
        if req > mx and self.io_pages > mx:
            mx = min(req, self.io_pages)
        prev = (ra["prev_pos"] % (1 << 64)) >> self.shift
        if index == 0 or req > mx or (index - prev) % (1 << 64) <= 1:
            ra["start"] = index
            ra["size"] = init_ra_size(req, mx)
            ra["async_size"] = ra["size"] - req if ra["size"] > req else ra["size"] // 2
        else:
            # page_cache_prev_miss(index - 1, mx)
            miss = index - 1 - mx
            for k in range(mx):
                i = index - 1 - k
                if i < 0:
                    miss = -1
                    break
                if not F.present(i):
                    miss = i
                    break
            contig = index - miss - 1
            if contig <= req:
                self.do_ra(f, index, req, 0)
                return
            if miss == -1:
                contig *= 2
            ra["start"] = index
            ra["size"] = min(contig + req, mx)
            ra["async_size"] = 1
        ra["order"] = 0
        self.n_sync_ra += 1
        self.ra_order(f, ra["start"])

    def async_ra(self, f, index, folio, req):
        F = self.files[f]
        ra = F.ra
        if ra["ra_pages"] == 0:
            return
        folio.readahead = False
        mx = ra["ra_pages"]
        if req > mx and self.io_pages > mx:
            mx = min(req, self.io_pages)
        n = 1 << folio.order
        expected = ra["start"] + ra["size"] - ra["async_size"]
        expected -= expected % n
        if index == expected:
            ra["start"] += ra["size"]
            ra["size"] = max(ra["size"], next_ra_size(ra["size"], mx))
        else:
            start = index + 1
            while start < index + 1 + mx and F.present(start):
                start += 1
            if start == 0 or start - index > mx:
                return
            ra["start"] = start
            ra["size"] = next_ra_size(start - index + req, mx)
        ra["order"] += 2
        align = 1 << min(ra["order"], ffs0(mx))
        end = ra["start"] + ra["size"]
        aligned_end = end - end % align
        if aligned_end > ra["start"]:
            ra["size"] -= end - aligned_end
        ra["async_size"] = ra["size"]
        self.n_async_ra += 1
        self.ra_order(f, ra["start"])

    # ------------------------------------------------------------ read(2)
    def read(self, f, pos, count):
        F = self.files[f]
        P = 1 << self.shift
        last_pos = F.ra["prev_pos"]
        done = 0
        while count > 0 and pos < F.size:
            index = pos >> self.shift
            mbytes = P << F.min_order
            last_index = -(-(pos + count) // mbytes) * mbytes >> self.shift
            batch = self.read_batch(f, index, last_index - 1)
            if not batch:
                self.sync_ra(f, index, last_index - index)
                batch = self.read_batch(f, index, last_index - 1)
            if not batch:
                ci = index - index % (1 << F.min_order)
                self.add(f, ci, F.min_order)
                batch = [(ci, F.cache[ci])]
            bi, bf = batch[-1]
            if bf.readahead:
                self.async_ra(f, bi, bf, last_index - bi)
            end_offset = min(F.size, pos + count)
            for fi, fo in batch:
                fpos, fsize = fi * P, P << fo.order
                if end_offset < fpos:
                    break
                n = min(end_offset - pos, fsize - (pos - fpos))
                done += n
                pos += n
                count -= n
                last_pos = pos
        F.ra["prev_pos"] = last_pos
        return done

    def read_batch(self, f, index, last):
        F = self.files[f]
        out = []
        while index <= last:
            hit = F.folio_at(index)
            if hit is None:
                break
            out.append(hit)
            if len(out) == 31 or hit[1].readahead:
                break
            index = hit[0] + (1 << hit[1].order)
        return out

    def get_folio(self, f, index, order=0):
        """__filemap_get_folio(FGP_CREAT, order): (first index, order)."""
        F = self.files[f]
        hit = F.folio_at(index)
        if hit:
            return hit[0], hit[1].order
        o = min(max(F.min_order, order), F.max_order)
        index -= index % (1 << F.min_order)
        if index % (1 << o):
            o = ffs0(index)
        while True:
            if self.add(f, index, o) == 0:
                return index, o
            assert o > F.min_order
            o -= 1

    # ------------------------------------------------------------ truncate, drop
    def truncate(self, f, size):
        F = self.files[f]
        F.size = size
        P = 1 << self.shift
        start = -(-size // P)
        hit = F.folio_at(size // P)
        if hit:
            fi, fo = hit
            if fi * P == size:
                del F.cache[fi]
            elif fo.order > 0:
                if fo.order > F.min_order:
                    # halve, keeping the half with page size // P, down to the min order
                    del F.cache[fi]
                    target, o, base = size // P, fo.order, fi
                    while o > F.min_order:
                        o -= 1
                        lo = RefFolio(o, fo.readahead, fo.dirty)
                        hi = RefFolio(o, fo.readahead, fo.dirty)
                        F.cache[base] = lo
                        F.cache[base + (1 << o)] = hi
                        if target >= base + (1 << o):
                            base += 1 << o
                elif fo.dirty:
                    start = fi + (1 << fo.order)
                else:
                    del F.cache[fi]
        for i in list(F.cache):
            if i >= start:          # find_lock_entries skips a folio that starts before
                del F.cache[i]

    def drop_caches(self):
        n = 0
        for F in self.files:
            for i in list(F.cache):
                if not F.cache[i].dirty:
                    n += 1 << F.cache[i].order
                    del F.cache[i]
        return n
