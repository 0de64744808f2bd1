/* tlb_chase.c: pointer chase over N slots, one 64-byte line per slot, slots `stride`
 * bytes apart (slot i at i * stride + (i % 64) * 64, so the lines spread over the data
 * cache's sets), in a random cyclic order. Memory: an anonymous mapping aligned to 2M,
 * MADV_NOHUGEPAGE ("4k") or MADV_HUGEPAGE ("thp"). Prints one JSON line:
 * {"n", "stride", "mode", "ns_per_access", "thp_kb"} (thp_kb: AnonHugePages of the
 * mapping from /proc/self/smaps). Usage: tlb_chase N STRIDE MODE STEPS */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static long thp_kb(void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[256];
    long kb = 0;
    int in = 0;
    unsigned long lo, hi;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: tlb_chase N STRIDE 4k|thp STEPS\n"); return 2; }
    long n = atol(argv[1]), stride = atol(argv[2]), steps = atol(argv[4]);
    int thp = strcmp(argv[3], "thp") == 0;
    size_t len = (size_t)n * stride + (2 << 20), align = 2 << 20;
    char *raw = mmap(NULL, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) { perror("mmap"); return 1; }
    char *base = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    madvise(base, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(base, 1, len);
    long *perm = malloc(n * sizeof(long));
    for (long i = 0; i < n; i++) perm[i] = i;
    srand(12345);
    for (long i = n - 1; i > 0; i--) { long j = rand() % (i + 1), t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    #define SLOT(i) (base + (size_t)(i) * stride + ((i) % 64) * 64)
    for (long i = 0; i < n; i++) *(char **)SLOT(perm[i]) = SLOT(perm[(i + 1) % n]);
    char **p = (char **)SLOT(perm[0]);
    for (long i = 0; i < 4 * n + 10000; i++) p = (char **)*p;
    struct timespec t0, t1;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < steps; i++) p = (char **)*p;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / steps;
        if (ns < best) best = ns;
    }
    printf("{\"n\": %ld, \"stride\": %ld, \"mode\": \"%s\", \"ns_per_access\": %.3f, \"thp_kb\": %ld, \"sink\": %d}\n",
           n, stride, argv[3], best, thp_kb(base), (int)((uintptr_t)p & 1));
    return 0;
}
