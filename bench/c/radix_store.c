/* Baseline for bench_xarray.py: the order-0 store of a plain-C 64-way radix tree with
 * XArray-sized nodes (64 slots + parent, shift, offset, count, nr_values, 3 mark words:
 * 576 bytes, one calloc each, as kmem_cache_zalloc(radix_tree_node_cachep) gives
 * Linux), doing the work ppsize's store does (lib/xarray.c xas_store/xas_create):
 * - the batch first checks every entry is not internal ((e & 3) == 2), as
 *   XArray.store_batch does, and stores nothing if one is;
 * - the root grows on demand as xas_expand does, carrying the tree's marks
 *   (xa_flags XA_FLAGS_MARK) into each new root's mark words;
 * - value entries (odd) are counted per node (nr_values), as update_node does;
 * - multi-index entries: a store checks the old slot and the next one for sibling
 *   entries as ppsize's leaf store does; replacing a multi-index entry (a split) is
 *   not implemented: such a store is counted as failed (the benchmark has none);
 * - erasing (entry 0) and node shrinking are not done (the benchmark only stores).
 * Loaded through ctypes, one call per batch. */
#include <stdint.h>
#include <stdlib.h>

struct node {
    uint8_t shift, offset, count, nr_values;
    struct node *parent;
    void *slots[64];
    uint64_t marks[3];
    uint64_t pad[3];        /* struct xa_node's array and private_list/rcu_head */
};
_Static_assert(sizeof(struct node) == 576, "sizeof(struct xa_node)");

struct tree {
    struct node *root;      /* NULL: empty */
    size_t nodes;
    unsigned marks;         /* xa_flags XA_FLAGS_MARK(0..2) */
};

#define IS_SIBLING(e) (((uintptr_t)(e) & 3) == 2 && (uintptr_t)(e) < 256)

static struct node *node_new(struct tree *t, struct node *parent, int shift, int offset)
{
    struct node *n = calloc(1, sizeof(*n));
    n->shift = shift;
    n->offset = offset;
    n->parent = parent;
    t->nodes++;
    return n;
}

struct tree *rs_new(void) { return calloc(1, sizeof(struct tree)); }

size_t rs_nodes(const struct tree *t) { return t->nodes; }

/* Store entries[i] at indices[i] (entries non-zero), creating nodes on the way.
 * Returns the number of failed stores, or -1 - i when entries[i] is internal. */
long rs_store_batch(struct tree *t, const uint64_t *indices, const uint64_t *entries, size_t n)
{
    long failed = 0;
    uint64_t internal = 0;                  /* branch-free pass; find i only if one is */
    for (size_t i = 0; i < n; i++)
        internal |= (entries[i] & 3) == 2;
    if (internal)
        for (size_t i = 0; i < n; i++)
            if ((entries[i] & 3) == 2)
                return -1 - (long)i;
    for (size_t i = 0; i < n; i++) {
        uint64_t index = indices[i];
        if (!t->root)
            t->root = node_new(t, NULL, 0, 0);
        while (index >> t->root->shift > 63) {            /* xas_expand */
            struct node *up = node_new(t, NULL, t->root->shift + 6, 0);
            up->slots[0] = t->root;
            up->count = 1;
            for (int m = 0; m < 3; m++)
                if (t->marks & (1u << m))
                    up->marks[m] |= 1;
            t->root->parent = up;
            t->root = up;
        }
        struct node *nd = t->root;
        while (nd->shift) {
            int off = (index >> nd->shift) & 63;
            if (!nd->slots[off]) {
                nd->slots[off] = node_new(t, nd, nd->shift - 6, off);
                nd->count++;
            }
            nd = nd->slots[off];
        }
        int off = index & 63;
        void **slot = &nd->slots[off];
        void *old = *slot, *next = off < 63 ? nd->slots[off + 1] : NULL;
        /* internal entries in a leaf are rare: one test of both, then the exact check */
        /* internal entries in a leaf are rare: one test of both, then the exact check */
        if (((((uintptr_t)old & 3) == 2) | (((uintptr_t)next & 3) == 2)) &&
                (IS_SIBLING(old) || IS_SIBLING(next))) {
            failed++;                                      /* a multi-index entry */
            continue;
        }
        uint64_t e = entries[i];
        *slot = (void *)(uintptr_t)e;
        nd->count += !old;
        nd->nr_values += (int)(e & 1) - (int)((uintptr_t)old & 1);
    }
    return failed;
}

uint64_t rs_load(const struct tree *t, uint64_t index)
{
    const struct node *nd = t->root;
    if (!nd || index >> nd->shift > 63)
        return 0;
    while (nd->shift) {
        nd = nd->slots[(index >> nd->shift) & 63];
        if (!nd)
            return 0;
    }
    return (uint64_t)(uintptr_t)nd->slots[index & 63];
}

static void free_node(struct node *nd)
{
    if (nd->shift)
        for (int i = 0; i < 64; i++)
            if (nd->slots[i])
                free_node(nd->slots[i]);
    free(nd);
}

void rs_free(struct tree *t)
{
    if (t->root)
        free_node(t->root);
    free(t);
}
