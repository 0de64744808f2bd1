/* Baselines for bench_pagetable.py: plain-C radix page-table walks over tables built
 * here (calloc'ed arrays of 64-bit descriptors in ppsize's encoding: VALID, TABLE,
 * CONT, prot in bits 3..5, the output address in bits 12..; a table descriptor holds
 * the child table's pointer | VALID | TABLE).
 * Built at bench time with the system C compiler (bench/conftest.py build_c) and
 * loaded through ctypes (one call per batch).
 *
 * rw_translate is the equal-work baseline of PageTable.translate: for every address
 * the same five outputs (pa, status, level, log2 of the TLB unit, prot), the same
 * bad-address check against the VA size, block descriptors at any level and the
 * contiguous bit (unit = CONT_PTES / CONT_PMDS entries), as the MMU's table walk
 * reports them. It does not prefetch or interleave walks, and it keeps child tables
 * as pointers (ppsize keeps table indices into per-level pools).
 *
 * rw_translate_pa is a lower bound, not equal work: the PA only (0 when not mapped),
 * no status, level, unit or prot, no bad-address check. */
#include <stdint.h>
#include <stdlib.h>

#define D_VALID 1ULL
#define D_TABLE 2ULL
#define D_CONT 4ULL
#define D_PROT_MASK 56ULL
#define D_PROT_SHIFT 3
#define D_ADDR_MASK (~0xfffULL)
#define D_TABLE_PTR(e) ((const uint64_t *)(uintptr_t)((e) & ~(D_VALID | D_TABLE)))

enum { TR_OK = 0, TR_NOT_MAPPED = 1, TR_BAD_ADDRESS = 2 };

struct radix {
    int levels;
    int shift[5];
    uint64_t mask[5];
    uint64_t entries[5];
    uint8_t cont_shift[5];          /* log2 of a contiguous run's span per level */
    uint64_t va_limit;
    uint64_t *root;
};

static uint64_t *new_table(uint64_t entries) { return calloc(entries, sizeof(uint64_t)); }

struct radix *rw_new(int levels, const int *shift, const uint64_t *entries, const int *cont_n,
                     int va_bits)
{
    struct radix *r = calloc(1, sizeof(*r));
    r->levels = levels;
    for (int l = 0; l < levels; l++) {
        int c = 0;
        while ((1 << c) < cont_n[l])
            c++;
        r->shift[l] = shift[l];
        r->mask[l] = entries[l] - 1;
        r->entries[l] = entries[l];
        r->cont_shift[l] = (uint8_t)(shift[l] + c);
    }
    r->va_limit = 1ULL << va_bits;
    r->root = new_table(entries[0]);
    return r;
}

/* Install one leaf descriptor va -> pa | attrs at level `level` (tables created on the
 * way). attrs: D_CONT and prot bits (prot << D_PROT_SHIFT). */
void rw_map_leaf(struct radix *r, uint64_t va, uint64_t pa, int level, uint64_t attrs)
{
    uint64_t *t = r->root;
    for (int l = 0; l < level; l++) {
        uint64_t *e = &t[(va >> r->shift[l]) & r->mask[l]];
        if (!*e)
            *e = (uint64_t)(uintptr_t)new_table(r->entries[l + 1]) | D_VALID | D_TABLE;
        t = (uint64_t *)D_TABLE_PTR(*e);
    }
    t[(va >> r->shift[level]) & r->mask[level]] = pa | attrs | D_VALID;
}

/* Map n pages (last level) va -> pa with the same attrs. */
void rw_map_pages(struct radix *r, const uint64_t *vas, const uint64_t *pas, size_t n,
                  uint64_t attrs)
{
    for (size_t i = 0; i < n; i++)
        rw_map_leaf(r, vas[i], pas[i], r->levels - 1, attrs);
}

/* The table walk with every output PageTable.translate gives. */
void rw_translate(const struct radix *r, const uint64_t *vas, uint64_t *pa, uint8_t *status,
                  int8_t *level, uint8_t *unit_shift, uint8_t *prot, size_t n)
{
    const int last = r->levels - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t va = vas[i], e;
        const uint64_t *t = r->root;
        int l;
        if (va >= r->va_limit) {
            pa[i] = 0;
            status[i] = TR_BAD_ADDRESS;
            level[i] = -1;
            unit_shift[i] = 0;
            prot[i] = 0;
            continue;
        }
        for (l = 0;; l++) {
            e = t[(va >> r->shift[l]) & r->mask[l]];
            if (l == last || (e & (D_VALID | D_TABLE)) != (D_VALID | D_TABLE))
                break;
            t = D_TABLE_PTR(e);
        }
        level[i] = (int8_t)l;
        if (e & D_VALID) {
            pa[i] = (e & D_ADDR_MASK) | (va & ((1ULL << r->shift[l]) - 1));
            status[i] = TR_OK;
            unit_shift[i] = (e & D_CONT) ? r->cont_shift[l] : (uint8_t)r->shift[l];
            prot[i] = (uint8_t)((e & D_PROT_MASK) >> D_PROT_SHIFT);
        } else {
            pa[i] = 0;
            status[i] = TR_NOT_MAPPED;
            unit_shift[i] = 0;
            prot[i] = 0;
        }
    }
}

/* Lower bound: the PA only (pages and blocks), 0 where not mapped. */
void rw_translate_pa(const struct radix *r, const uint64_t *vas, uint64_t *pas, size_t n)
{
    const int last = r->levels - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t va = vas[i], e;
        const uint64_t *t = r->root;
        int l;
        for (l = 0;; l++) {
            e = t[(va >> r->shift[l]) & r->mask[l]];
            if (l == last || (e & (D_VALID | D_TABLE)) != (D_VALID | D_TABLE))
                break;
            t = D_TABLE_PTR(e);
        }
        pas[i] = (e & D_VALID) ? (e & D_ADDR_MASK) | (va & ((1ULL << r->shift[l]) - 1)) : 0;
    }
}
