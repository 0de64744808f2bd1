/* Lower bound for bench_buddy.py (not equal work): the least a buddy allocator does.
 * Per-order int32 doubly linked free lists (head only, no tail), one state byte per
 * frame; no migratetypes, no pageblocks, no counters, no FPI_TO_TAIL or
 * buddy_merge_likely, no checks on free. Equal work is bench/c/buddy.c. Compiled at
 * bench time (bench/conftest.py build_c), one ctypes call per batch. */
#include <stdint.h>
#include <stdlib.h>
typedef struct { int64_t nr; int max_order; int32_t *next, *prev; uint8_t *st;
                 int32_t head[32]; } buddy_t;
static void add(buddy_t *b, int64_t p, int o) {
    int32_t h = b->head[o]; b->next[p] = h; b->prev[p] = -1;
    if (h >= 0) b->prev[h] = (int32_t)p;
    b->head[o] = (int32_t)p; b->st[p] = 0x40 | o;
}
static void del(buddy_t *b, int64_t p, int o) {
    int32_t n = b->next[p], q = b->prev[p];
    if (q >= 0) b->next[q] = n; else b->head[o] = n;
    if (n >= 0) b->prev[n] = q;
    b->st[p] = 0;
}
static void free_one(buddy_t *b, int64_t p, int o) {
    while (o < b->max_order) {
        int64_t q = p ^ ((int64_t)1 << o);
        if (q >= b->nr || b->st[q] != (0x40 | o)) break;
        del(b, q, o); p &= q; o++;
    }
    add(b, p, o);
}
buddy_t *plain_new(int64_t nr, int max_order) {
    buddy_t *b = calloc(1, sizeof *b);
    b->nr = nr; b->max_order = max_order;
    b->next = malloc(nr * 4); b->prev = malloc(nr * 4); b->st = calloc(nr, 1);
    for (int o = 0; o < 32; o++) b->head[o] = -1;
    for (int64_t s = 0; s < nr;) {
        int o = max_order;
        if (s) { o = __builtin_ctzll(s); if (o > max_order) o = max_order; }
        while (s + ((int64_t)1 << o) > nr) o--;
        free_one(b, s, o); s += (int64_t)1 << o;
    }
    return b;
}
void plain_del(buddy_t *b) { free(b->next); free(b->prev); free(b->st); free(b); }
void plain_alloc_batch(buddy_t *b, const int64_t *orders, int64_t n, int64_t *out) {
    for (int64_t i = 0; i < n; i++) {
        int o = (int)orders[i], c; out[i] = -1;
        for (c = o; c <= b->max_order; c++) if (b->head[c] >= 0) break;
        if (c > b->max_order) continue;
        int64_t p = b->head[c]; del(b, p, c);
        while (c > o) { c--; add(b, p + ((int64_t)1 << c), c); }
        b->st[p] = 0x80 | o; out[i] = p;
    }
}
void plain_free_batch(buddy_t *b, const int64_t *pfns, const int64_t *orders, int64_t n) {
    for (int64_t i = 0; i < n; i++) { b->st[pfns[i]] = 0; free_one(b, pfns[i], (int)orders[i]); }
}
