/* touch.c - live-kernel oracle for anonymous faults (ppsize tests, see tests/live_kernel.py).
 *
 * Maps one private anonymous region, runs a list of operations on it and, at each `report`,
 * prints one JSON object per line on stdout with what the running kernel says: minflt/majflt
 * (getrusage(RUSAGE_SELF)) accumulated over the measured operations since the previous
 * report, VmRSS/RssAnon/RssFile/RssShmem/VmPTE (kB, /proc/self/status), the region's smaps
 * (summed over the VMAs inside it), pagemap counts and, if /proc/kpageflags is readable, the
 * folio orders and zero-page mappings backing the region's present pages.
 *
 * Spec (argv words joined by spaces, or stdin if there are no arguments).  Words are
 * separated by blanks, newlines or ';'; '#' starts a comment to end of line.  Numbers are
 * decimal or 0x-hex with an optional binary suffix K, M or G ("64K", "2M", "0x1000").
 *   Header (key=value words, before the first operation; all optional):
 *     len=N        region length (default 1M; rounded up to 4K)
 *     align=N      the region start is a multiple of N (default 4K; power of two)
 *     misalign=N   ... plus N bytes (default 0), to ask for a deliberately unaligned start
 *     advice=none|hugepage|nohugepage   madvise applied to the whole region before anything
 *     guard=0|1    (default 1) read a PROT_READ "warm" page in its own 2M range next to the
 *                  region at set-up, so the PUD/PMD tables covering the region exist before the
 *                  first report and VmPTE deltas count only the region's own PTE tables (and
 *                  deposited ones).  The region sits in a PROT_NONE reservation with >= 2M on
 *                  both sides (no other mapping shares its page tables); the reservation is
 *                  MADV_DONTFORK, so it never merges with the region's VMA(s).  A region that
 *                  crosses a 1G boundary gets a second PMD table on its first touch there.
 *   Operations (offsets relative to the region start):
 *     touch OFF w|r                 write (stores 1) or read one byte
 *     range START END STRIDE w|r    touch START, START+STRIDE, ... < END
 *     dontneed OFF LEN              madvise(MADV_DONTNEED)
 *     madvise OFF LEN ADV           ADV: hugepage nohugepage dontneed free populate_read
 *                                   populate_write collapse pageout cold
 *     munmap OFF LEN
 *     mprotect OFF LEN none|r|rw
 *     fork ... endfork              the child runs the enclosed operations (its reports carry
 *                                   "who":"child"; it reports "child-start" first) and exits;
 *                                   the parent waits, then continues
 *     report [LABEL]                print one JSON line
 * An automatic report labelled "start" is printed after set-up, before the first operation.
 *
 * Report (one JSON object per line): who ("parent"/"child"), pid, seq, label, minflt, majflt,
 * VmRSS, RssAnon, RssFile, RssShmem, VmPTE (kB, whole process: compare deltas between reports
 * of the same process; a child's absolute values include its settle() copies, so use its
 * "child-start" report as the base), region {start, len, Rss, Anonymous, AnonHugePages,
 * Private_Clean, Private_Dirty, Shared_Clean, Shared_Dirty, Swap (kB), vmas, vma_outside},
 * pagemap/kpageflags/pfn_visible (bools: readable / PFNs shown), present, swapped, exclusive
 * (PM_MMAP_EXCLUSIVE), file_or_shared, zero_pages (4K zero page), huge_zero_pages (region pages
 * mapped from the huge zero folio), thp_pages (KPF_THP: any large rmappable folio),
 * unknown_pages, folios {order: distinct folios with a page mapped in the region}, folio_pages
 * {order: region pages mapped from such folios}, errors, last_errno.
 *
 * Noise: only the operations (not fork, not report) are inside the getrusage window.  After
 * set-up and after fork (both sides), settle() breaks COW / populates every private writable
 * mapping of the process except the region (MADV_POPULATE_WRITE), so the program's own stack
 * and data never fault inside a window; all /proc reads go into static buffers with read();
 * output is written with write(2), no stdio; build with -Wl,-z,now (no lazy PLT binding).
 * Exit status: 0 ok, 2 bad spec, 3 set-up failed; failing operations do not stop the run,
 * they are counted in the next report ("errors", "last_errno").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#define MADV_PAGEOUT 21
#endif

#define PG 4096UL
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_THP 22
#define KPF_ZERO_PAGE 24
#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN_MASK ((1ULL << 55) - 1)

enum { OP_TOUCH, OP_RANGE, OP_MADV, OP_MUNMAP, OP_MPROTECT, OP_FORK, OP_ENDFORK, OP_REPORT };

struct op {
    int kind;
    int write;           /* touch/range */
    int arg;             /* madvise advice, mprotect prot */
    int end_index;       /* fork: index of matching endfork */
    unsigned long a, b, c;
    char label[48];
};

#define MAX_OPS 16384
static struct op ops[MAX_OPS];
static int nops;

static char specbuf[1 << 20];
static char procbuf[1 << 20];
static char outbuf[1 << 16];
#define CHUNK 4096
static uint64_t pmbuf[CHUNK];
static uint64_t kfbuf[CHUNK];
#define MAX_FOLIOS 65536
static struct { uint64_t head; uint32_t nr; } folios[MAX_FOLIOS];
static long nfolios;

static char *region;
static unsigned long rlen;
static unsigned long res_lo, res_hi;   /* the reservation around the region */
static char *warm;
static int pagemap_fd = -1, kpf_fd = -1;
static long acc_min, acc_maj;
static int errors, last_errno;
static const char *who = "parent";
static int seq;
static volatile unsigned char sink;

static void die(int code, const char *msg)
{
    char b[256];
    int n = snprintf(b, sizeof b, "touch: %s (errno %d: %s)\n", msg, errno, strerror(errno));
    if (write(2, b, n) < 0) {}
    _exit(code);
}

/* ---- spec parsing ---- */
static int parse_num(const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s) return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    *out = v;
    return 0;
}

static char *words[1 << 16];
static int nwords;

static void tokenize(char *s)
{
    while (*s) {
        if (*s == '#') { while (*s && *s != '\n') s++; continue; }
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ';') { *s++ = 0; continue; }
        if (nwords >= (int)(sizeof words / sizeof words[0])) { errno = E2BIG; die(2, "spec too long"); }
        words[nwords++] = s;
        while (*s && !strchr(" \t\n\r;#", *s)) s++;
        if (*s == '#') { *s = 0; s++; while (*s && *s != '\n') s++; }
    }
}

static unsigned long hdr_len = 1 << 20, hdr_align = PG, hdr_misalign = 0;
static int hdr_advice = -1, hdr_guard = 1;

static void bad(const char *what, const char *w)
{
    char b[256];
    int n = snprintf(b, sizeof b, "touch: bad spec: %s near '%s'\n", what, w ? w : "(end)");
    if (write(2, b, n) < 0) {}
    _exit(2);
}

static unsigned long need_num(int *i)
{
    unsigned long v;
    if (*i >= nwords || parse_num(words[*i], &v)) bad("number expected", *i < nwords ? words[*i] : 0);
    (*i)++;
    return v;
}

static int need_rw(int *i)
{
    if (*i >= nwords) bad("w|r expected", 0);
    const char *w = words[(*i)++];
    if (!strcmp(w, "w") || !strcmp(w, "write")) return 1;
    if (!strcmp(w, "r") || !strcmp(w, "read")) return 0;
    bad("w|r expected", w);
    return 0;
}

static int advice_of(const char *w)
{
    static const struct { const char *n; int v; } t[] = {
        {"hugepage", MADV_HUGEPAGE}, {"nohugepage", MADV_NOHUGEPAGE}, {"dontneed", MADV_DONTNEED},
        {"free", MADV_FREE}, {"populate_read", MADV_POPULATE_READ},
        {"populate_write", MADV_POPULATE_WRITE}, {"collapse", MADV_COLLAPSE},
        {"pageout", MADV_PAGEOUT}, {"cold", MADV_COLD}, {"normal", MADV_NORMAL}};
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(w, t[i].n)) return t[i].v;
    return -2;
}

static int is_op_word(const char *w)
{
    static const char *const k[] = {"touch", "range", "dontneed", "madvise", "munmap", "mprotect",
                                    "fork", "endfork", "report"};
    for (unsigned i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(w, k[i])) return 1;
    return 0;
}

static void parse_spec(void)
{
    int i = 0;
    int stack[64], depth = 0;
    for (; i < nwords && strchr(words[i], '='); i++) {
        char *k = words[i], *v = strchr(k, '=');
        *v++ = 0;
        if (!strcmp(k, "len")) { if (parse_num(v, &hdr_len)) bad("len", v); }
        else if (!strcmp(k, "align")) { if (parse_num(v, &hdr_align)) bad("align", v); }
        else if (!strcmp(k, "misalign")) { if (parse_num(v, &hdr_misalign)) bad("misalign", v); }
        else if (!strcmp(k, "guard")) { unsigned long g; if (parse_num(v, &g)) bad("guard", v); hdr_guard = !!g; }
        else if (!strcmp(k, "advice")) {
            if (!strcmp(v, "none")) hdr_advice = -1;
            else if (!strcmp(v, "hugepage")) hdr_advice = MADV_HUGEPAGE;
            else if (!strcmp(v, "nohugepage")) hdr_advice = MADV_NOHUGEPAGE;
            else bad("advice", v);
        } else bad("unknown header key", k);
    }
    if (hdr_align < PG || (hdr_align & (hdr_align - 1))) bad("align must be a power of two >= 4K", 0);
    if (hdr_misalign % PG) bad("misalign must be a multiple of 4K", 0);
    hdr_len = (hdr_len + PG - 1) & ~(PG - 1);
    if (!hdr_len) bad("len must be > 0", 0);
    while (i < nwords) {
        if (nops >= MAX_OPS - 1) bad("too many operations", words[i]);
        struct op *o = &ops[nops];
        memset(o, 0, sizeof *o);
        const char *w = words[i++];
        if (!strcmp(w, "touch")) { o->kind = OP_TOUCH; o->a = need_num(&i); o->write = need_rw(&i); }
        else if (!strcmp(w, "range")) {
            o->kind = OP_RANGE; o->a = need_num(&i); o->b = need_num(&i); o->c = need_num(&i);
            o->write = need_rw(&i);
            if (!o->c) bad("stride must be > 0", w);
        } else if (!strcmp(w, "dontneed")) {
            o->kind = OP_MADV; o->a = need_num(&i); o->b = need_num(&i); o->arg = MADV_DONTNEED;
        } else if (!strcmp(w, "madvise")) {
            o->kind = OP_MADV; o->a = need_num(&i); o->b = need_num(&i);
            if (i >= nwords || (o->arg = advice_of(words[i])) == -2) bad("madvise advice", i < nwords ? words[i] : 0);
            i++;
        } else if (!strcmp(w, "munmap")) { o->kind = OP_MUNMAP; o->a = need_num(&i); o->b = need_num(&i); }
        else if (!strcmp(w, "mprotect")) {
            o->kind = OP_MPROTECT; o->a = need_num(&i); o->b = need_num(&i);
            if (i >= nwords) bad("prot", 0);
            const char *p = words[i++];
            if (!strcmp(p, "none")) o->arg = PROT_NONE;
            else if (!strcmp(p, "r")) o->arg = PROT_READ;
            else if (!strcmp(p, "rw")) o->arg = PROT_READ | PROT_WRITE;
            else bad("prot must be none|r|rw", p);
        } else if (!strcmp(w, "fork")) {
            if (depth >= 64) bad("fork nesting too deep", w);
            o->kind = OP_FORK; stack[depth++] = nops;
        } else if (!strcmp(w, "endfork")) {
            if (!depth) bad("endfork without fork", w);
            o->kind = OP_ENDFORK; ops[stack[--depth]].end_index = nops;
        } else if (!strcmp(w, "report")) {
            o->kind = OP_REPORT;
            if (i < nwords && !is_op_word(words[i])) {
                snprintf(o->label, sizeof o->label, "%s", words[i]);
                i++;
            }
        } else bad("unknown operation", w);
        nops++;
    }
    if (depth) bad("fork without endfork", 0);
}

/* ---- /proc readers (no allocation) ---- */
static long read_file(const char *path, char *buf, long cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) { if (errno == EINTR) continue; close(fd); return -1; }
        if (r == 0) break;
        n += r;
        if (n >= cap - 1) break;
    }
    close(fd);
    buf[n] = 0;
    return n;
}

static long status_kb(const char *key)
{
    size_t kl = strlen(key);
    for (char *p = procbuf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, key, kl) && p[kl] == ':') return strtol(p + kl + 1, NULL, 10);
    return -1;
}

/* settle: make every private writable mapping except the region present and exclusive. */
static void settle(void)
{
    if (read_file("/proc/self/maps", procbuf, sizeof procbuf) < 0) die(3, "read maps");
    /* parse into a small static list first: populating can change the file */
    static unsigned long st[4096], en[4096];
    int n = 0;
    for (char *p = procbuf; *p && n < 4096;) {
        unsigned long s, e;
        char perms[8];
        if (sscanf(p, "%lx-%lx %7s", &s, &e, perms) == 3 && perms[0] == 'r' && perms[1] == 'w'
            && perms[3] == 'p' && !(e > res_lo && s < res_hi)) {
            st[n] = s; en[n] = e; n++;
        }
        char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    for (int i = 0; i < n; i++) madvise((void *)st[i], en[i] - st[i], MADV_POPULATE_WRITE);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    getrusage(RUSAGE_SELF, &ru);
}

/* ---- report ---- */
struct smaps_sum { long rss, anon, ahp, pclean, pdirty, sclean, sdirty, swap; int vmas, outside; };

static void smaps_region(struct smaps_sum *r)
{
    memset(r, 0, sizeof *r);
    if (read_file("/proc/self/smaps", procbuf, sizeof procbuf) < 0) return;
    unsigned long rs = (unsigned long)region, re = rs + rlen;
    int in = 0;
    for (char *p = procbuf; *p;) {
        unsigned long s, e;
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        char c = *p;
        int is_hdr = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) && sscanf(p, "%lx-%lx", &s, &e) == 2
                     && strchr(p, ' ') && strchr(p, '-') < strchr(p, ' ');
        if (is_hdr) {
            in = s < re && e > rs;
            if (in) { r->vmas++; if (s < rs || e > re) r->outside = 1; }
        } else if (in) {
            char key[64];
            long v;
            if (sscanf(p, "%63[^:]: %ld", key, &v) == 2) {
                if (!strcmp(key, "Rss")) r->rss += v;
                else if (!strcmp(key, "Anonymous")) r->anon += v;
                else if (!strcmp(key, "AnonHugePages")) r->ahp += v;
                else if (!strcmp(key, "Private_Clean")) r->pclean += v;
                else if (!strcmp(key, "Private_Dirty")) r->pdirty += v;
                else if (!strcmp(key, "Shared_Clean")) r->sclean += v;
                else if (!strcmp(key, "Shared_Dirty")) r->sdirty += v;
                else if (!strcmp(key, "Swap")) r->swap += v;
            }
        }
        if (!nl) break;
        p = nl + 1;
    }
}

static int kpf_read(uint64_t pfn, uint64_t *flags)
{
    return pread(kpf_fd, flags, 8, pfn * 8) == 8 ? 0 : -1;
}

/* folio (head, nr) containing pfn, from KPF_COMPOUND_HEAD/TAIL; cache reset per report */
static long last_folio = -1;
static long folio_of(uint64_t pfn, uint64_t flags)
{
    long last = last_folio;
    if (last >= 0 && last < nfolios && pfn >= folios[last].head && pfn < folios[last].head + folios[last].nr) return last;
    for (long i = 0; i < nfolios; i++)
        if (pfn >= folios[i].head && pfn < folios[i].head + folios[i].nr) return last_folio = i;
    uint64_t head = pfn, f = flags;
    if (f & (1ULL << KPF_COMPOUND_TAIL)) {
        for (unsigned long k = 1; k <= (1UL << 18) && head > 0; k++) {
            head--;
            if (kpf_read(head, &f)) return -1;
            if (f & (1ULL << KPF_COMPOUND_HEAD)) break;
            if (!(f & (1ULL << KPF_COMPOUND_TAIL))) return -1;
        }
    }
    uint32_t nr = 1;
    if (f & (1ULL << KPF_COMPOUND_HEAD)) {
        for (;;) {
            long want = CHUNK;
            ssize_t r = pread(kpf_fd, kfbuf, want * 8, (head + nr) * 8);
            if (r <= 0) break;
            long got = r / 8, j;
            for (j = 0; j < got && (kfbuf[j] & (1ULL << KPF_COMPOUND_TAIL)) && !(kfbuf[j] & (1ULL << KPF_COMPOUND_HEAD)); j++) {}
            nr += j;
            if (j < got || nr >= (1U << 18)) break;
        }
    }
    if (nfolios >= MAX_FOLIOS) return -1;
    folios[nfolios].head = head;
    folios[nfolios].nr = nr;
    return last_folio = nfolios++;
}

static int order_of(uint32_t nr)
{
    int o = 0;
    while ((1U << o) < nr) o++;
    return (1U << o) == nr ? o : -1;
}

static void report(const char *label)
{
    char *o = outbuf;
    char *end = outbuf + sizeof outbuf;
#define P(...) (o += snprintf(o, end - o, __VA_ARGS__))
    if (read_file("/proc/self/status", procbuf, sizeof procbuf) < 0) die(3, "read status");
    long vmrss = status_kb("VmRSS"), ranon = status_kb("RssAnon"), rfile = status_kb("RssFile"),
         rshm = status_kb("RssShmem"), vmpte = status_kb("VmPTE");
    struct smaps_sum s;
    smaps_region(&s);
    P("{\"who\":\"%s\",\"pid\":%d,\"seq\":%d,\"label\":\"%s\",\"minflt\":%ld,\"majflt\":%ld,"
      "\"VmRSS\":%ld,\"RssAnon\":%ld,\"RssFile\":%ld,\"RssShmem\":%ld,\"VmPTE\":%ld,",
      who, (int)getpid(), seq++, label, acc_min, acc_maj, vmrss, ranon, rfile, rshm, vmpte);
    P("\"region\":{\"start\":%lu,\"len\":%lu,\"Rss\":%ld,\"Anonymous\":%ld,\"AnonHugePages\":%ld,"
      "\"Private_Clean\":%ld,\"Private_Dirty\":%ld,\"Shared_Clean\":%ld,\"Shared_Dirty\":%ld,"
      "\"Swap\":%ld,\"vmas\":%d,\"vma_outside\":%s},",
      (unsigned long)region, rlen, s.rss, s.anon, s.ahp, s.pclean, s.pdirty, s.sclean, s.sdirty,
      s.swap, s.vmas, s.outside ? "true" : "false");
    acc_min = acc_maj = 0;

    /* pagemap + kpageflags */
    long present = 0, swapped = 0, excl = 0, filebit = 0, zero = 0, hzero = 0, thp = 0, unknown = 0;
    long pages_by_order[20] = {0}, folios_by_order[20] = {0};
    int pfn_visible = 0;
    nfolios = 0;
    last_folio = -1;
    unsigned long npages = rlen / PG;
    for (unsigned long base = 0; pagemap_fd >= 0 && base < npages; base += CHUNK) {
        unsigned long cnt = npages - base < CHUNK ? npages - base : CHUNK;
        ssize_t r = pread(pagemap_fd, pmbuf, cnt * 8, ((unsigned long)region / PG + base) * 8);
        if (r < (ssize_t)(cnt * 8)) break;
        for (unsigned long k = 0; k < cnt; k++) {
            uint64_t e = pmbuf[k];
            if (e & PM_SWAP) swapped++;
            if (!(e & PM_PRESENT)) continue;
            present++;
            if (e & PM_EXCLUSIVE) excl++;
            if (e & PM_FILE) filebit++;
            uint64_t pfn = e & PM_PFN_MASK;
            if (!pfn) continue;
            pfn_visible = 1;
            uint64_t f;
            if (kpf_fd < 0 || kpf_read(pfn, &f)) { unknown++; continue; }
            if (f & (1ULL << KPF_ZERO_PAGE)) {
                if (f & (1ULL << KPF_THP)) hzero++; else zero++;
                continue;
            }
            if (f & (1ULL << KPF_THP)) thp++;
            long fi = folio_of(pfn, f);
            int ord = fi < 0 ? -1 : order_of(folios[fi].nr);
            if (ord < 0 || ord >= 20) { unknown++; continue; }
            pages_by_order[ord]++;
        }
    }
    for (long i = 0; i < nfolios; i++) {
        int ord = order_of(folios[i].nr);
        if (ord >= 0 && ord < 20) folios_by_order[ord]++;
    }
    P("\"pagemap\":%s,\"kpageflags\":%s,\"pfn_visible\":%s,\"present\":%ld,\"swapped\":%ld,\"exclusive\":%ld,"
      "\"file_or_shared\":%ld,\"zero_pages\":%ld,\"huge_zero_pages\":%ld,\"thp_pages\":%ld,"
      "\"unknown_pages\":%ld,",
      pagemap_fd >= 0 ? "true" : "false", kpf_fd >= 0 ? "true" : "false", pfn_visible ? "true" : "false",
      present, swapped, excl, filebit, zero, hzero, thp, unknown);
    P("\"folios\":{");
    int first = 1;
    for (int i = 0; i < 20; i++)
        if (folios_by_order[i]) { P("%s\"%d\":%ld", first ? "" : ",", i, folios_by_order[i]); first = 0; }
    P("},\"folio_pages\":{");
    first = 1;
    for (int i = 0; i < 20; i++)
        if (pages_by_order[i]) { P("%s\"%d\":%ld", first ? "" : ",", i, pages_by_order[i]); first = 0; }
    P("},\"errors\":%d,\"last_errno\":%d}\n", errors, last_errno);
#undef P
    errors = 0;
    last_errno = 0;
    long len = o - outbuf, off = 0;
    while (off < len) {
        ssize_t w = write(1, outbuf + off, len - off);
        if (w <= 0) { if (errno == EINTR) continue; _exit(3); }
        off += w;
    }
}

/* ---- execution ---- */
static void measured_op(const struct op *op)
{
    struct rusage a, b;
    int rc = 0;
    getrusage(RUSAGE_SELF, &a);
    switch (op->kind) {
    case OP_TOUCH:
        if (op->write) ((volatile char *)region)[op->a] = 1;
        else sink = ((volatile unsigned char *)region)[op->a];
        break;
    case OP_RANGE:
        if (op->write)
            for (unsigned long x = op->a; x < op->b; x += op->c) ((volatile char *)region)[x] = 1;
        else
            for (unsigned long x = op->a; x < op->b; x += op->c) sink = ((volatile unsigned char *)region)[x];
        break;
    case OP_MADV: rc = madvise(region + op->a, op->b, op->arg); break;
    case OP_MUNMAP: rc = munmap(region + op->a, op->b); break;
    case OP_MPROTECT: rc = mprotect(region + op->a, op->b, op->arg); break;
    }
    int e = errno;
    getrusage(RUSAGE_SELF, &b);
    if (rc) { errors++; last_errno = e; }
    acc_min += b.ru_minflt - a.ru_minflt;
    acc_maj += b.ru_majflt - a.ru_majflt;
}

static void execute(int from, int to)
{
    for (int i = from; i < to; i++) {
        const struct op *op = &ops[i];
        if (op->kind == OP_REPORT) {
            report(op->label[0] ? op->label : "");
        } else if (op->kind == OP_FORK) {
            pid_t pid = fork();
            if (pid < 0) { errors++; last_errno = errno; i = op->end_index; continue; }
            if (pid == 0) {
                who = "child";
                seq = 0;
                /* the inherited fd reads the parent's pagemap: /proc/self is resolved at open */
                if (pagemap_fd >= 0) close(pagemap_fd);
                pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
                settle();
                acc_min = acc_maj = 0;
                report("child-start");
                execute(i + 1, op->end_index);
                _exit(0);
            }
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
            if (!WIFEXITED(st) || WEXITSTATUS(st)) { errors++; last_errno = -1; }
            settle();
            i = op->end_index;
        } else if (op->kind == OP_ENDFORK) {
            /* only reached inside a child's range end; nothing to do */
        } else {
            measured_op(op);
        }
    }
}

int main(int argc, char **argv)
{
    long n = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            size_t l = strlen(argv[i]);
            if (n + l + 2 >= (long)sizeof specbuf) { errno = E2BIG; die(2, "spec too long"); }
            memcpy(specbuf + n, argv[i], l);
            n += l;
            specbuf[n++] = ' ';
        }
        specbuf[n] = 0;
    } else {
        ssize_t r;
        while ((r = read(0, specbuf + n, sizeof specbuf - 1 - n)) > 0) n += r;
        specbuf[n] = 0;
    }
    tokenize(specbuf);
    parse_spec();

    /* Layout: one PROT_NONE reservation; the region is MAP_FIXED inside it, start aligned
     * (plus misalign), with at least 2M of reservation on both sides, so no other mapping
     * shares a page table with the region.  If guard=1, a PROT_READ "warm" page is read (zero
     * page) in its own 2M range next to the region (below it unless that crosses a 1G
     * boundary, else above), so the region's PMD/PUD tables exist before "start"; the region's
     * PTE tables never do.  Everything but the region is MADV_DONTFORK (VM_DONTCOPY: never
     * merges with the region, not copied to children). */
    rlen = hdr_len;
    const unsigned long PMD = 2UL << 20, GIG = 1UL << 30;
    unsigned long total = rlen + hdr_align + hdr_misalign + 8 * PMD;
    char *res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) die(3, "reserve");
    res_lo = (unsigned long)res;
    res_hi = res_lo + total;
    unsigned long start = ((res_lo + 4 * PMD + hdr_align - 1) & ~(hdr_align - 1)) + hdr_misalign;
    region = (char *)start;
    unsigned long r0 = start & ~(PMD - 1), r1 = (start + rlen + PMD - 1) & ~(PMD - 1);
    warm = (r0 % GIG) ? (char *)(r0 - PG) : (char *)r1;
    if (mmap(region, rlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
        die(3, "map region");
    if (hdr_guard && mmap(warm, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
        die(3, "map warm page");
    if (madvise(res, start - res_lo, MADV_DONTFORK) || madvise(region + rlen, res_hi - start - rlen, MADV_DONTFORK))
        die(3, "reservation dontfork");
    if (hdr_guard) sink = *(volatile unsigned char *)warm;
    if (hdr_advice >= 0 && madvise(region, rlen, hdr_advice)) die(3, "region advice");

    pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

    /* warm-up: run the report path once (discarding output), then settle */
    {
        int saved = dup(1), nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (saved >= 0 && nul >= 0) { dup2(nul, 1); report("warmup"); dup2(saved, 1); }
        if (nul >= 0) close(nul);
        if (saved >= 0) close(saved);
        seq = 0;
    }
    settle();
    acc_min = acc_maj = 0;
    report("start");
    execute(0, nops);
    return 0;
}
