/* Baseline for bench_filemap.py: the running kernel's own minor file faults.
 * Reads the file once (so it is cached), maps it read-only, touches every 4K
 * page, and prints the elapsed ns and the minor/major fault deltas as JSON. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    static char buf[1 << 16];
    struct stat st;
    struct rusage r0, r1;
    volatile unsigned long sum = 0;
    int fd;

    if (argc != 2 || (fd = open(argv[1], O_RDONLY)) < 0 || fstat(fd, &st))
        return 2;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return 3;
    getrusage(RUSAGE_SELF, &r0);
    long long t0 = now_ns();
    for (off_t off = 0; off < st.st_size; off += 4096)
        sum += p[off];
    long long t1 = now_ns();
    getrusage(RUSAGE_SELF, &r1);
    printf("{\"ns\": %lld, \"minflt\": %ld, \"majflt\": %ld}\n", t1 - t0,
           r1.ru_minflt - r0.ru_minflt, r1.ru_majflt - r0.ru_majflt);
    return 0;
}
