/* Baseline for bench_pagetable.py: a minimal plain-C radix page-table walk.
 * Tables are calloc'ed arrays of 64-bit entries: a child pointer, or a leaf
 * (output address | 1) at the last level. Built at bench time with the system
 * C compiler and loaded through ctypes (one call per batch). */
#include <stdint.h>
#include <stdlib.h>

struct radix {
    int levels;
    int shift[5];
    uint64_t mask[5];
    uint64_t *root;
};

static uint64_t *new_table(uint64_t entries) { return calloc(entries, sizeof(uint64_t)); }

struct radix *rw_new(int levels, const int *shift, const uint64_t *entries)
{
    struct radix *r = calloc(1, sizeof(*r));
    r->levels = levels;
    for (int l = 0; l < levels; l++) {
        r->shift[l] = shift[l];
        r->mask[l] = entries[l] - 1;
    }
    r->root = new_table(entries[0]);
    return r;
}

/* Map one page va -> pa (creating tables on the way). */
void rw_map_pages(struct radix *r, const uint64_t *vas, const uint64_t *pas, size_t n,
                  const uint64_t *entries)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t *t = r->root;
        int l;
        for (l = 0; l < r->levels - 1; l++) {
            uint64_t *e = &t[(vas[i] >> r->shift[l]) & r->mask[l]];
            if (!*e)
                *e = (uint64_t)(uintptr_t)new_table(entries[l + 1]);
            t = (uint64_t *)(uintptr_t)*e;
        }
        t[(vas[i] >> r->shift[l]) & r->mask[l]] = pas[i] | 1;
    }
}

/* Walk each address; pa 0 where not mapped. */
void rw_translate(const struct radix *r, const uint64_t *vas, uint64_t *pas, size_t n)
{
    const int last = r->levels - 1;
    const uint64_t off = (1ULL << r->shift[last]) - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t va = vas[i];
        const uint64_t *t = r->root;
        uint64_t e = 0;
        int l;
        for (l = 0; l < last; l++) {
            e = t[(va >> r->shift[l]) & r->mask[l]];
            if (!e)
                break;
            t = (const uint64_t *)(uintptr_t)e;
        }
        if (l == last) {
            e = t[(va >> r->shift[last]) & r->mask[last]];
            pas[i] = e ? (e & ~off) | (va & off) : 0;
        } else {
            pas[i] = 0;
        }
    }
}
