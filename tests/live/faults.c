/* faults.c - a program whose page faults and memory syscalls are known, for the record
 * tests (tests/test_record.py). Usage: faults FILE NPAGES OUT
 *
 *  1. anon = mmap(16 pages, rw, private anonymous), MADV_NOHUGEPAGE; byte 8 of each page
 *     written in page order: 16 write faults (error code 0x6) at anon + i*4096 + 8
 *  2. mprotect(anon, 4 pages, PROT_READ); munmap(anon + 12 pages, 4 pages)
 *  3. madvise(anon + 4 pages, 4 pages, MADV_DONTNEED), then byte 16 of page 4 written:
 *     one more write fault
 *  4. FILE (NPAGES pages; the test wrote it) is fsynced and dropped from the page cache
 *     (POSIX_FADV_DONTNEED), mapped private read-only with MADV_RANDOM, and byte 0 of page 5
 *     read: a major fault that adds one folio at index 5 to the page cache
 *  5. fork: the child writes byte 24 of page 8 (a COW fault, error code 0x7) and exits 0;
 *     the parent waits for it
 *  6. OUT gets one JSON line: anon, file, child (decimal); exit status 0
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL

static volatile unsigned char sink;

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	long npages = atol(argv[2]);
	unsigned char *anon = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED || madvise(anon, 16 * PAGE, MADV_NOHUGEPAGE))
		return 3;
	for (int i = 0; i < 16; i++)
		anon[i * PAGE + 8] = 1;
	if (mprotect(anon, 4 * PAGE, PROT_READ) || munmap(anon + 12 * PAGE, 4 * PAGE))
		return 3;
	if (madvise(anon + 4 * PAGE, 4 * PAGE, MADV_DONTNEED))
		return 3;
	anon[4 * PAGE + 16] = 2;

	int fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fsync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		return 3;
	unsigned char *file = mmap(NULL, npages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED || madvise(file, npages * PAGE, MADV_RANDOM))
		return 3;
	sink = file[5 * PAGE];

	pid_t child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		anon[8 * PAGE + 24] = 3;
		_exit(0);
	}
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		return 3;
	FILE *out = fopen(argv[3], "w");
	if (!out)
		return 3;
	fprintf(out, "{\"anon\": %lu, \"file\": %lu, \"child\": %d}\n", (unsigned long)anon,
		(unsigned long)file, child);
	fclose(out);
	return 0;
}
