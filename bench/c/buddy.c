/* Baseline for bench_buddy.py: an equal-work plain-C buddy allocator.
 *
 * The same algorithm, state and counters as ppsize/_core/buddy.pyx (mm/page_alloc.c):
 * - free lists per (order, migratetype), 4 migratetypes (MIGRATE_HIGHATOMIC's lists
 *   exist and stay empty), doubly linked through per-frame int32 next/prev arrays with
 *   a head and a tail per list, adds at the head or the tail (FPI_TO_TAIL at boot,
 *   buddy_merge_likely on free), list_del leaving the deleted entry's links stale;
 * - a per-frame state byte [ALLOC:1][FREE:1][migratetype:2][order:4] on block heads
 *   (PageBuddy + buddy_order + the allocation's migratetype);
 * - a per-pageblock migratetype byte: split_large_buddy frees multi-pageblock blocks one
 *   pageblock at a time with each pageblock's type, __free_one_page checks the buddy's
 *   pageblock type at orders >= pageblock_order and retypes it (change_pageblock_range);
 * - __rmqueue: __rmqueue_smallest, then __rmqueue_claim (try_to_claim_block:
 *   whole-pageblock ownership or a scan of the pageblock and __move_freepages_block),
 *   then __rmqueue_steal, with mm/page_alloc.c's fallbacks[] table;
 * - counters: nr_free per list, NR_FREE_PAGES, allocs / failures / frees per order,
 *   claims, steals, bad frees;
 * - boot as memblock's __free_pages_memory (aligned blocks of at most MAX_PAGE_ORDER
 *   through split_large_buddy, FPI_TO_TAIL);
 * - the batch entry points check each entry as ppsize's alloc_batch/free_batch do (all
 *   orders in range before allocating; a free of exactly an allocated head of that
 *   order, else stop there).
 * What it does not do (nor does ppsize): pcp lists, watermarks, CMA, isolation,
 * compaction, page shuffling; no Python objects, no NumPy. Compiled at bench time
 * (bench/conftest.py build_c) and called through ctypes, one call per batch. */
#include <stdint.h>
#include <stdlib.h>

enum { UNMOVABLE = 0, MOVABLE = 1, RECLAIMABLE = 2, PCPTYPES = 3, TYPES = 4,
       ST_FREE = 0x40, ST_ALLOC = 0x80, ORDER_MASK = 0x0F, MT_SHIFT = 4, MT_MASK = 0x30,
       NR_ORDERS = 16 };

static const int fallbacks[3][2] = {
    [UNMOVABLE] = {RECLAIMABLE, MOVABLE},
    [MOVABLE] = {RECLAIMABLE, UNMOVABLE},
    [RECLAIMABLE] = {UNMOVABLE, MOVABLE},
};

typedef struct {
    int64_t nr_pages, nr_pageblocks, nr_free_pages, nr_bad_free, nr_claimed, nr_stolen;
    int max_order, pageblock_order;
    int32_t *next, *prev;
    uint8_t *state, *pb_mt;
    int32_t head[NR_ORDERS * TYPES], tail[NR_ORDERS * TYPES];
    int64_t nr_free[NR_ORDERS * TYPES];
    int64_t nr_alloc[NR_ORDERS], nr_fail[NR_ORDERS], nr_frees[NR_ORDERS];
} buddy_t;

static void list_add(buddy_t *b, int64_t pfn, int order, int mt, int to_tail)
{
    int li = order * TYPES + mt;
    int32_t p = (int32_t)pfn, old;
    if (to_tail) {
        old = b->tail[li];
        b->prev[p] = old;
        b->next[p] = -1;
        if (old >= 0) b->next[old] = p; else b->head[li] = p;
        b->tail[li] = p;
    } else {
        old = b->head[li];
        b->next[p] = old;
        b->prev[p] = -1;
        if (old >= 0) b->prev[old] = p; else b->tail[li] = p;
        b->head[li] = p;
    }
    b->nr_free[li]++;
    b->state[p] = (uint8_t)(ST_FREE | (mt << MT_SHIFT) | order);
}

static void list_del(buddy_t *b, int64_t pfn, int order, int mt)
{
    int li = order * TYPES + mt;
    int32_t p = (int32_t)pfn, n = b->next[p], pr = b->prev[p];
    if (pr >= 0) b->next[pr] = n; else b->head[li] = n;
    if (n >= 0) b->prev[n] = pr; else b->tail[li] = pr;
    /* p's own links are left stale, as ppsize's _list_del does (read only while on a list) */
    b->nr_free[li]--;
    b->state[p] = 0;
}

static int page_is_buddy(const buddy_t *b, int64_t pfn, int order)
{
    if (pfn >= b->nr_pages) return 0;
    uint8_t s = b->state[pfn];
    return (s & ST_FREE) && (s & ORDER_MASK) == order;
}

static void change_pageblock_range(buddy_t *b, int64_t pfn, int order, int mt)
{
    int64_t nr = (int64_t)1 << (order - b->pageblock_order), pb = pfn >> b->pageblock_order;
    for (int64_t i = 0; i < nr; i++) b->pb_mt[pb + i] = (uint8_t)mt;
}

static int64_t nr_free_order(const buddy_t *b, int order)
{
    const int64_t *nf = &b->nr_free[order * TYPES];
    return nf[0] + nf[1] + nf[2] + nf[3];
}

static void free_one_page(buddy_t *b, int64_t pfn, int order, int mt, int fpi_to_tail)
{
    int64_t buddy_pfn = 0;
    b->nr_free_pages += (int64_t)1 << order;
    while (order < b->max_order) {
        buddy_pfn = pfn ^ ((int64_t)1 << order);
        if (!page_is_buddy(b, buddy_pfn, order)) break;
        int buddy_mt = mt;
        if (order >= b->pageblock_order) {
            buddy_mt = b->pb_mt[buddy_pfn >> b->pageblock_order];
            if (mt != buddy_mt && (mt >= PCPTYPES || buddy_mt >= PCPTYPES)) break;
        }
        list_del(b, buddy_pfn, order, buddy_mt);
        if (buddy_mt != mt) change_pageblock_range(b, buddy_pfn, order, mt);
        pfn &= buddy_pfn;
        order++;
    }
    int to_tail = 0;
    if (fpi_to_tail) {
        to_tail = 1;
    } else if (order < b->max_order - 1) {               /* buddy_merge_likely */
        int64_t higher = buddy_pfn & pfn;
        to_tail = page_is_buddy(b, higher ^ ((int64_t)1 << (order + 1)), order + 1);
    }
    list_add(b, pfn, order, mt, to_tail);
}

static void split_large_buddy(buddy_t *b, int64_t pfn, int order, int fpi_to_tail)
{
    int64_t end = pfn + ((int64_t)1 << order);
    if (order > b->pageblock_order) order = b->pageblock_order;
    do {
        free_one_page(b, pfn, order, b->pb_mt[pfn >> b->pageblock_order], fpi_to_tail);
        pfn += (int64_t)1 << order;
    } while (pfn != end);
}

static void expand(buddy_t *b, int64_t pfn, int low, int high, int mt)
{
    int64_t size = (int64_t)1 << high;
    while (high > low) {
        high--;
        size >>= 1;
        list_add(b, pfn + size, high, mt, 0);
    }
}

static int64_t rmqueue_smallest(buddy_t *b, int order, int mt)
{
    for (int cur = order; cur <= b->max_order; cur++) {
        int32_t page = b->head[cur * TYPES + mt];
        if (page < 0) continue;
        list_del(b, page, cur, mt);
        expand(b, page, order, cur, mt);
        b->nr_free_pages -= (int64_t)1 << order;
        return page;
    }
    return -1;
}

static int64_t try_to_claim_block(buddy_t *b, int64_t page, int current_order, int order,
                                  int start_type, int block_type)
{
    if (current_order >= b->pageblock_order) {
        list_del(b, page, current_order, block_type);
        change_pageblock_range(b, page, current_order, start_type);
        expand(b, page, order, current_order, start_type);
        b->nr_free_pages -= (int64_t)1 << order;
        return page;
    }
    int64_t start = page & ~(((int64_t)1 << b->pageblock_order) - 1);
    int64_t end = start + ((int64_t)1 << b->pageblock_order);
    int64_t free_pages = 0, movable_pages = 0, alike_pages, pfn, nr;
    if (end > b->nr_pages) return -1;
    for (pfn = start; pfn < end;) {
        uint8_t s = b->state[pfn];
        if (s & ST_FREE) {
            nr = (int64_t)1 << (s & ORDER_MASK);
            free_pages += nr;
            pfn += nr;
        } else if (s & ST_ALLOC) {
            nr = (int64_t)1 << (s & ORDER_MASK);
            if (((s & MT_MASK) >> MT_SHIFT) == MOVABLE) movable_pages += nr;
            pfn += nr;
        } else {
            pfn++;
        }
    }
    if (start_type == MOVABLE) alike_pages = movable_pages;
    else if (block_type == MOVABLE) alike_pages = (end - start) - (free_pages + movable_pages);
    else alike_pages = 0;
    if (free_pages + alike_pages >= ((end - start) >> 1)) {
        for (pfn = start; pfn < end;) {
            uint8_t s = b->state[pfn];
            if (!(s & ST_FREE)) { pfn++; continue; }
            int o = s & ORDER_MASK;
            list_del(b, pfn, o, (s & MT_MASK) >> MT_SHIFT);
            list_add(b, pfn, o, start_type, 1);
            pfn += (int64_t)1 << o;
        }
        b->pb_mt[start >> b->pageblock_order] = (uint8_t)start_type;
        return rmqueue_smallest(b, order, start_type);
    }
    return -1;
}

static int find_fallback(const buddy_t *b, int cur, int start_mt)
{
    for (int i = 0; i < PCPTYPES - 1; i++)
        if (b->head[cur * TYPES + fallbacks[start_mt][i]] >= 0) return fallbacks[start_mt][i];
    return -1;
}

static int64_t rmqueue_claim(buddy_t *b, int order, int start_mt)
{
    for (int cur = b->max_order; cur >= order; cur--) {
        if (!(cur >= b->pageblock_order || cur >= b->pageblock_order / 2
              || start_mt == RECLAIMABLE || start_mt == UNMOVABLE))
            break;
        if (nr_free_order(b, cur) == 0) continue;
        int fb = find_fallback(b, cur, start_mt);
        if (fb < 0) continue;
        int64_t page = try_to_claim_block(b, b->head[cur * TYPES + fb], cur, order, start_mt, fb);
        if (page >= 0) {
            b->nr_claimed++;
            return page;
        }
    }
    return -1;
}

static int64_t rmqueue_steal(buddy_t *b, int order, int start_mt)
{
    for (int cur = order; cur <= b->max_order; cur++) {
        if (nr_free_order(b, cur) == 0) continue;
        int fb = find_fallback(b, cur, start_mt);
        if (fb < 0) continue;
        int32_t page = b->head[cur * TYPES + fb];
        list_del(b, page, cur, fb);
        expand(b, page, order, cur, fb);
        b->nr_free_pages -= (int64_t)1 << order;
        b->nr_stolen++;
        return page;
    }
    return -1;
}

static int64_t buddy_alloc(buddy_t *b, int order, int mt)
{
    if (order < 0 || order > b->max_order) return -1;
    if (mt < 0 || mt >= PCPTYPES) { b->nr_fail[order]++; return -1; }
    int64_t page = rmqueue_smallest(b, order, mt);
    if (page < 0) page = rmqueue_claim(b, order, mt);
    if (page < 0) page = rmqueue_steal(b, order, mt);
    if (page < 0) { b->nr_fail[order]++; return -1; }
    b->state[page] = (uint8_t)(ST_ALLOC | (mt << MT_SHIFT) | order);
    b->nr_alloc[order]++;
    return page;
}

static int alloc_order(const buddy_t *b, int64_t pfn)
{
    if (pfn < 0 || pfn >= b->nr_pages) return -1;
    uint8_t s = b->state[pfn];
    return (s & ST_ALLOC) ? (s & ORDER_MASK) : -1;
}

static void free_block(buddy_t *b, int64_t pfn, int order)
{
    b->state[pfn] = 0;
    b->nr_frees[order]++;
    split_large_buddy(b, pfn, order, 0);
}

/* ppsize's BuddyAllocator.free, the C callers' entry (unused by the batch below) */
void cb_free(buddy_t *b, int64_t pfn, int order)
{
    if (pfn < 0 || pfn >= b->nr_pages || order < 0 || order > b->max_order
        || (b->state[pfn] & (ST_ALLOC | ST_FREE | ORDER_MASK)) != (ST_ALLOC | order)) {
        b->nr_bad_free++;
        return;
    }
    free_block(b, pfn, order);
}

buddy_t *cb_new(int64_t nr_pages, int max_order, int pageblock_order)
{
    if (nr_pages < 1 || nr_pages > 0x7FFFFFFF || max_order < 0 || max_order >= NR_ORDERS
        || pageblock_order < 0 || pageblock_order > max_order)
        return NULL;
    buddy_t *b = calloc(1, sizeof *b);
    b->nr_pages = nr_pages;
    b->max_order = max_order;
    b->pageblock_order = pageblock_order;
    b->nr_pageblocks = (nr_pages + ((int64_t)1 << pageblock_order) - 1) >> pageblock_order;
    b->next = malloc(nr_pages * sizeof(int32_t));
    b->prev = malloc(nr_pages * sizeof(int32_t));
    for (int64_t i = 0; i < nr_pages; i++) b->next[i] = b->prev[i] = -1;
    b->state = calloc(nr_pages, 1);
    b->pb_mt = malloc(b->nr_pageblocks);
    for (int64_t i = 0; i < b->nr_pageblocks; i++) b->pb_mt[i] = MOVABLE;
    for (int i = 0; i < NR_ORDERS * TYPES; i++) b->head[i] = b->tail[i] = -1;
    for (int64_t start = 0; start < nr_pages;) {      /* __free_pages_memory */
        int order = max_order;
        if (start) {
            order = __builtin_ctzll((uint64_t)start);
            if (order > max_order) order = max_order;
        }
        while (start + ((int64_t)1 << order) > nr_pages) order--;
        split_large_buddy(b, start, order, 1);
        start += (int64_t)1 << order;
    }
    return b;
}

void cb_del(buddy_t *b)
{
    free(b->next);
    free(b->prev);
    free(b->state);
    free(b->pb_mt);
    free(b);
}

int64_t cb_nr_free_pages(const buddy_t *b) { return b->nr_free_pages; }
int64_t cb_nr_fail(const buddy_t *b, int order) { return b->nr_fail[order]; }

/* As BuddyAllocator.alloc_batch with one migratetype for all: -2 - i (nothing done)
 * when orders[i] is the first order out of range, else 0. */
int64_t cb_alloc_batch(buddy_t *b, const int64_t *orders, int mt, int64_t n, int64_t *out)
{
    if (mt < 0 || mt >= PCPTYPES) return -1;
    for (int64_t i = 0; i < n; i++)
        if ((uint64_t)orders[i] > (uint64_t)b->max_order) return -2 - i;
    for (int64_t i = 0; i < n; i++) out[i] = buddy_alloc(b, (int)orders[i], mt);
    return 0;
}

/* As BuddyAllocator.free_batch: stops at the first entry that is not an allocated
 * head of that order and returns its index, else -1. */
int64_t cb_free_batch(buddy_t *b, const int64_t *pfns, const int64_t *orders, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t pfn = pfns[i], order = orders[i];
        if (order < 0 || order > b->max_order || pfn < 0 || pfn >= b->nr_pages
            || alloc_order(b, pfn) != order)
            return i;
        free_block(b, pfn, (int)order);
    }
    return -1;
}
