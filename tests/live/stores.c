/* stores.c - 64 8-byte stores in a known order, for the `record --accesses` test
 * (tests/test_record.py). Usage: stores OUT. OUT gets the address of the array (decimal);
 * then buf[i] = i for i = 0..63 (each a store of 8 bytes at buf + 8*i, in order). */
#include <stdio.h>

volatile long buf[64];

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	FILE *out = fopen(argv[1], "w");
	if (!out)
		return 3;
	fprintf(out, "%lu\n", (unsigned long)buf);
	fclose(out);
	for (long i = 0; i < 64; i++)
		buf[i] = i;
	return 0;
}
