/* Baseline for bench_xarray.py: the store of a minimal plain-C 64-way radix tree
 * with XArray-sized nodes (64 slots + parent, shift, offset, count, 3 mark words:
 * 576 bytes, one calloc each, as kmem_cache_zalloc(radix_tree_node_cachep) gives
 * Linux), root grown on demand as xas_expand does. No multi-index entries, marks or
 * shrinking: the least work any radix-tree store does, to bound what a store can
 * cost on this machine. Loaded through ctypes, one call per batch. */
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
};

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

/* Store entries[i] at indices[i] (entries non-zero), creating nodes on the way. */
void rs_store_batch(struct tree *t, const uint64_t *indices, const uint64_t *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t index = indices[i];
        if (!t->root)
            t->root = node_new(t, NULL, 0, 0);
        while (index >> t->root->shift > 63) {            /* xas_expand */
            struct node *up = node_new(t, NULL, t->root->shift + 6, 0);
            up->slots[0] = t->root;
            up->count = 1;
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
        void **slot = &nd->slots[index & 63];
        nd->count += !*slot;
        *slot = (void *)(uintptr_t)entries[i];
    }
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
