/* fault_rate.c - the running kernel's own anonymous 4K write-fault rate (ppsize benchmarks).
 *
 * usage: fault_rate NPAGES
 * mmaps NPAGES fresh private anonymous 4K pages, applies MADV_NOHUGEPAGE (so every page is an
 * order-0 do_anonymous_page fault whatever the mTHP settings), writes one byte per page and
 * prints one JSON line: {"npages":N,"ns":elapsed CLOCK_MONOTONIC ns of the write loop,
 * "minflt":getrusage minflt delta over the loop,"majflt":...}.  Exit 3 if set-up fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: fault_rate NPAGES\n"); return 2; }
    long n = strtol(argv[1], NULL, 0);
    if (n <= 0) { fprintf(stderr, "fault_rate: NPAGES must be > 0\n"); return 2; }
    size_t len = (size_t)n * 4096;
    volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 3; }
    if (madvise((void *)p, len, MADV_NOHUGEPAGE)) { perror("madvise"); return 3; }
    struct rusage a, b;
    struct timespec t0, t1;
    /* warm up: vDSO data pages, the stack slots of a, b, t0, t1 */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &b);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    getrusage(RUSAGE_SELF, &a);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t off = 0; off < len; off += 4096) p[off] = 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &b);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    printf("{\"npages\":%ld,\"ns\":%lld,\"minflt\":%ld,\"majflt\":%ld}\n", n, ns,
           b.ru_minflt - a.ru_minflt, b.ru_majflt - a.ru_majflt);
    return 0;
}
