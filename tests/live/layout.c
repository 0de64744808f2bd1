/* layout.c - a process with a known memory layout, for the snapshot tests
 * (tests/test_snapshot.py). Usage: layout FILE NPAGES
 *
 * Sets up, then prints one JSON line on stdout and waits until stdin reaches EOF:
 *   anon     64 private anonymous pages (MADV_NOHUGEPAGE): pages 0, 3, 6, ... written, pages
 *            1 and 4 read (mapped from the zero page), the rest never touched
 *   file     FILE (NPAGES pages, created by the test) mapped MAP_SHARED PROT_READ; pages
 *            0..NPAGES/2-1 read
 *   thp      a 2M-aligned 2M private anonymous range with MADV_HUGEPAGE, one byte written
 *            (a PMD THP where THP is enabled for madvise)
 *   cow      16 private anonymous pages, all written before the fork: after it the child
 *            shares them copy-on-write (read-only in both, mapcount 2) except page 0, which
 *            the child writes (its own copy)
 *   memfd    a memfd "ppsize-layout" of 8 pages mapped MAP_SHARED read-write; pages 0 and 2
 *            written (shmem: the VMA is "/memfd:ppsize-layout (deleted)")
 *   child    the pid of a forked child that stays alive as long as the parent
 * Addresses are decimal. Exit status 3 if set-up failed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define ANON_PAGES 64
#define COW_PAGES 16

static volatile unsigned char sink;

static void wait_stdin(void)
{
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0)
		;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	long npages = atol(argv[2]);
	unsigned char *anon = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED || madvise(anon, ANON_PAGES * PAGE, MADV_NOHUGEPAGE))
		return 3;
	for (int i = 0; i < ANON_PAGES; i += 3)
		anon[i * PAGE] = 1;
	sink = anon[1 * PAGE];
	sink = anon[4 * PAGE];

	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return 3;
	unsigned char *file = mmap(NULL, npages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (file == MAP_FAILED)
		return 3;
	for (long i = 0; i < npages / 2; i++)
		sink = file[i * PAGE];

	unsigned char *raw = mmap(NULL, 4UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return 3;
	unsigned char *thp = (unsigned char *)(((uintptr_t)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	munmap(raw, thp - raw);                              /* leave exactly the aligned 2M */
	munmap(thp + (2UL << 20), raw + (4UL << 20) - (thp + (2UL << 20)));
	madvise(thp, 2UL << 20, MADV_HUGEPAGE);
	thp[0] = 1;

	unsigned char *cow = mmap(NULL, COW_PAGES * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cow == MAP_FAILED || madvise(cow, COW_PAGES * PAGE, MADV_NOHUGEPAGE))
		return 3;
	for (int i = 0; i < COW_PAGES; i++)
		cow[i * PAGE] = 2;

	int mfd = memfd_create("ppsize-layout", 0);
	if (mfd < 0 || ftruncate(mfd, 8 * PAGE))
		return 3;
	unsigned char *shm = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (shm == MAP_FAILED)
		return 3;
	shm[0] = 1;
	shm[2 * PAGE] = 1;

	int ready[2];
	if (pipe(ready))
		return 3;
	pid_t child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		cow[0] = 3;
		close(ready[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		return 3;
	printf("{\"pid\": %d, \"child\": %d, \"anon\": %lu, \"anon_pages\": %d, \"file\": %lu, "
	       "\"file_pages\": %ld, \"thp\": %lu, \"cow\": %lu, \"cow_pages\": %d, \"memfd\": %lu}\n",
	       getpid(), child, (unsigned long)anon, ANON_PAGES, (unsigned long)file, npages,
	       (unsigned long)thp, (unsigned long)cow, COW_PAGES, (unsigned long)shm);
	fflush(stdout);
	wait_stdin();
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
