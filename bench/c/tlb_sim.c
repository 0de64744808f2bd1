/*
 * tlb_sim.c: the minimal plain-C set-associative TLB simulator that bench_tlb.py measures
 * ppsize's MMU model against, doing the same work on the same stream:
 *
 *   does:   an L1 (sets x ways) and an L2 (sets x ways) of 4K-page entries tagged with
 *           (VPN, ASID), true LRU by per-entry timestamps (scan the set for the hit and,
 *           on a miss, for the oldest or an invalid way), L1 miss -> L2 lookup -> on an L2
 *           miss a walk of `levels` references counted per level, fill L2 and L1;
 *           counters: L1/L2 accesses, hits, walks, walk references; a result byte per
 *           access (0 L1 hit, 1 L2 hit, 2 walk), as ppsize's run() writes.
 *   not:    several entry sizes, splintering, walk caches, a data cache, replacement other
 *           than LRU, flushes, page-size maps or stale-hit checks (ppsize does these; the
 *           benchmark configures ppsize without walk caches and data cache so both sides
 *           simulate the same hardware).
 *
 * Set index: VPN mod sets (any positive set count), as ppsize.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { uint64_t *tag; uint64_t *stamp; uint32_t sets, ways; uint64_t clock; } level_t;

static void level_init(level_t *l, uint32_t sets, uint32_t ways) {
    l->sets = sets; l->ways = ways; l->clock = 0;
    l->tag = calloc((size_t)sets * ways, sizeof(uint64_t));
    l->stamp = calloc((size_t)sets * ways, sizeof(uint64_t));
}

static void level_free(level_t *l) { free(l->tag); free(l->stamp); }

/* 1 on a hit (LRU updated); on a miss fills the entry and returns 0 */
static inline int level_access(level_t *l, uint64_t key, uint64_t vpn, int fill) {
    uint64_t s = vpn % l->sets, base = s * l->ways;
    uint32_t w, victim = 0;
    uint64_t oldest = UINT64_MAX;
    for (w = 0; w < l->ways; w++) {
        if (l->tag[base + w] == key) { l->stamp[base + w] = ++l->clock; return 1; }
    }
    if (!fill) return 0;
    for (w = 0; w < l->ways; w++) {
        if (l->tag[base + w] == 0) { victim = w; break; }
        if (l->stamp[base + w] < oldest) { oldest = l->stamp[base + w]; victim = w; }
    }
    l->tag[base + victim] = key;
    l->stamp[base + victim] = ++l->clock;
    return 0;
}

/* Runs the stream; counters[0..5] = l1 acc, l1 hit, l2 acc, l2 hit, walks, walk refs.
 * Returns nanoseconds spent in the loop. */
long long tlb_sim_run(const uint64_t *vas, int64_t n, uint16_t asid, uint32_t l1_sets,
                      uint32_t l1_ways, uint32_t l2_sets, uint32_t l2_ways, int levels,
                      int8_t *result, int64_t *counters, int rounds) {
    level_t l1, l2;
    struct timespec t0, t1;
    long long best = -1;
    for (int r = 0; r < rounds; r++) {
        level_init(&l1, l1_sets, l1_ways);
        level_init(&l2, l2_sets, l2_ways);
        memset(counters, 0, 6 * sizeof(int64_t));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int64_t i = 0; i < n; i++) {
            uint64_t vpn = vas[i] >> 12, key = (vpn << 16 | asid) + 1;
            counters[0]++;
            if (level_access(&l1, key, vpn, 0)) { counters[1]++; result[i] = 0; continue; }
            counters[2]++;
            if (level_access(&l2, key, vpn, 1)) { counters[3]++; result[i] = 1; }
            else { counters[4]++; counters[5] += levels; result[i] = 2; }
            level_access(&l1, key, vpn, 1);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        if (best < 0 || ns < best) best = ns;
        level_free(&l1);
        level_free(&l2);
    }
    return best;
}
