/*
 * checkpoints.c: checkpoint API benchmark for libvirt's in-process test driver.
 *
 * This is a benchmark, not a test.  It drives the public checkpoint entry points on domain
 * "test" of test:///default and reports how long each phase takes, so the same binary can
 * be timed against the system libvirt and against virbackup's libvirt.so.0 (by pointing
 * LD_LIBRARY_PATH at virbackup's build directory).  bench/checkpoints.sh does exactly that.
 *
 *   checkpoints [N ...]        (default: 1000 10000, one after the other in this process)
 *
 * Running one N per process is preferred: test:///default keeps its state per process, so a
 * fresh process always starts from an empty checkpoint tree, and the peak-RSS figure then
 * belongs to that N alone.  When several N are given, each run ends by deleting everything
 * and the next run first checks that the tree is empty; the peak RSS printed after each run
 * is then the peak of the whole process so far.
 *
 * Phases, in order, for one N (the checkpoints are called c0 .. c<N-1>):
 *
 *   create            N x virDomainCheckpointCreateXML("<domaincheckpoint><name>cI</name>..."),
 *                     flags 0.  Each new checkpoint's parent is the previous one (the hidden
 *                     "current" checkpoint), so the result is one chain c0 -> c1 -> ... .
 *   list_all          virDomainListAllCheckpoints(flags 0)               expect N
 *   list_topological  virDomainListAllCheckpoints(TOPOLOGICAL)           expect c0 .. cN-1
 *   list_roots        virDomainListAllCheckpoints(ROOTS)                 expect c0
 *   list_leaves       virDomainListAllCheckpoints(LEAVES)                expect cN-1
 *   list_no_leaves    virDomainListAllCheckpoints(NO_LEAVES)             expect N-1, not cN-1
 *   list_descendants  virDomainCheckpointListAllChildren(c0, DESCENDANTS) expect c1 .. cN-1
 *   lookup            N x virDomainCheckpointLookupByName
 *   get_xml           N x virDomainCheckpointGetXMLDesc(flags 0)
 *   get_parent        N x virDomainCheckpointGetParent (c0 must fail with "no parent")
 *   delete_half       virDomainCheckpointDelete(flags 0) on c0, c2, c4, ...; every deleted
 *                     checkpoint's child is moved up to the deleted one's parent
 *   delete_rest       the same on c1, c3, ... (each is the root at that moment)
 *
 * What a phase's time includes: the library calls plus the virDomainCheckpointFree of every
 * handle the phase obtains (freeing handles is part of the cost a real caller pays).  The
 * create phase keeps its handles; they are used by the later phases and freed right after
 * their checkpoint is deleted, inside the delete phases.  Checking that a call did not fail
 * is done inline; checking the *contents* of list results happens with the clock stopped.
 *
 * per_op_us is seconds / ops, in microseconds.  For the per-checkpoint phases an op is one
 * checkpoint.  For the list phases an op is one list call (including freeing what it
 * returned); each list phase makes LIST_REPEAT calls so short ones are not lost in timer
 * noise.
 *
 * Output: first the file the checkpoint API was really loaded from (so a wrapper can confirm
 * that LD_LIBRARY_PATH picked the intended libvirt.so.0), then per N one line per phase and
 * one for memory:
 *   library=<path>
 *   N=<n> phase=<name> seconds=<s> per_op_us=<u>
 *   N=<n> peak_rss_kb=<k>
 *
 * Any failing call prints the libvirt error and exits with status 1: timing calls that fail
 * would produce meaningless numbers.  The error callback is a no-op so libvirt's default
 * handler does not print every (expected) error to stderr.
 */
#define _GNU_SOURCE /* for dladdr */

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define URI "test:///default"
#define DOMAIN_NAME "test"
#define LIST_REPEAT 5
#define NAME_LEN 32

/* ---- failure reporting ------------------------------------------------------------------ */

static void quiet_error_handler(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

/* A library call failed: print what was being done and libvirt's last error, then exit. */
static void die_virt(const char *fmt, ...)
{
    virErrorPtr err = virGetLastError();
    va_list ap;

    fputs("checkpoints: FAILED: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (err)
        fprintf(stderr, ": %s (code %d, domain %d)\n", err->message ? err->message : "(no message)",
                err->code, err->domain);
    else
        fputs(": (no libvirt error set)\n", stderr);
    exit(1);
}

/* A call succeeded but returned something other than what the scenario implies. */
static void die_check(const char *fmt, ...)
{
    va_list ap;

    fputs("checkpoints: WRONG RESULT: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "checkpoints: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- timing ----------------------------------------------------------------------------- */

/* A stopwatch that can be paused: phases stop it while they verify results. */
typedef struct {
    double total;
    struct timespec started;
} stopwatch;

static void sw_start(stopwatch *sw)
{
    clock_gettime(CLOCK_MONOTONIC, &sw->started);
}

static void sw_stop(stopwatch *sw)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    sw->total += (double)(now.tv_sec - sw->started.tv_sec) + (double)(now.tv_nsec - sw->started.tv_nsec) / 1e9;
}

static void report(long n, const char *phase, const stopwatch *sw, long ops)
{
    printf("N=%ld phase=%s seconds=%.6f per_op_us=%.3f\n", n, phase, sw->total,
           ops > 0 ? sw->total * 1e6 / (double)ops : 0.0);
    fflush(stdout);
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void cp_name(char *buf, long i)
{
    snprintf(buf, NAME_LEN, "c%ld", i);
}

/* Parse "c<k>" with 0 <= k < n; returns k or -1. */
static long cp_index(const char *name, long n)
{
    char *end;
    long k;

    if (!name || name[0] != 'c' || name[1] < '0' || name[1] > '9')
        return -1;
    errno = 0;
    k = strtol(name + 1, &end, 10);
    if (errno || *end || k < 0 || k >= n)
        return -1;
    return k;
}

static void free_handle(virDomainCheckpointPtr cp, const char *what)
{
    if (virDomainCheckpointFree(cp) < 0)
        die_virt("virDomainCheckpointFree(%s)", what);
}

static void free_list(virDomainCheckpointPtr *list, int count, const char *what)
{
    int i;
    for (i = 0; i < count; i++)
        free_handle(list[i], what);
    free(list);
}

/* The listed names must be exactly c<first>, c<first+step>, ... (count of them), in order. */
static void expect_sequence(virDomainCheckpointPtr *list, int count, long first, long step, long expected_count,
                            const char *what)
{
    char want[NAME_LEN];
    long i;

    if (count != expected_count)
        die_check("%s returned %d checkpoints, expected %ld", what, count, expected_count);
    if (!list || list[count] != NULL)
        die_check("%s: array missing or not NULL-terminated", what);
    for (i = 0; i < count; i++) {
        const char *got = virDomainCheckpointGetName(list[i]);
        cp_name(want, first + i * step);
        if (!got || strcmp(got, want) != 0)
            die_check("%s: entry %ld is '%s', expected '%s'", what, i, got ? got : "(null)", want);
    }
}

/* The listed names must be distinct members of c0 .. c<n-1>, never c<exclude>, and there
 * must be expected_count of them.  Order is not checked (it is hash order in libvirt). */
static void expect_set(virDomainCheckpointPtr *list, int count, long n, long exclude, long expected_count,
                       const char *what)
{
    unsigned char *seen;
    int i;

    if (count != expected_count)
        die_check("%s returned %d checkpoints, expected %ld", what, count, expected_count);
    if (!list || list[count] != NULL)
        die_check("%s: array missing or not NULL-terminated", what);
    seen = xcalloc((size_t)n + 1, 1);
    for (i = 0; i < count; i++) {
        const char *got = virDomainCheckpointGetName(list[i]);
        long k = cp_index(got, n);
        if (k < 0 || k == exclude || seen[k])
            die_check("%s: unexpected or repeated entry '%s'", what, got ? got : "(null)");
        seen[k] = 1;
    }
    free(seen);
}

enum list_kind { LIST_DOMAIN, LIST_CHILDREN };

/* One list phase: LIST_REPEAT calls, each followed (clock stopped) by a content check and
 * (clock running) by freeing every returned handle and the array. */
static void list_phase(long n, const char *phase, enum list_kind kind, virDomainPtr dom,
                       virDomainCheckpointPtr from, unsigned int flags,
                       void (*check)(virDomainCheckpointPtr *, int, long, const char *))
{
    stopwatch sw = {0};
    int r;

    for (r = 0; r < LIST_REPEAT; r++) {
        virDomainCheckpointPtr *list = NULL;
        int count;

        sw_start(&sw);
        if (kind == LIST_DOMAIN)
            count = virDomainListAllCheckpoints(dom, &list, flags);
        else
            count = virDomainCheckpointListAllChildren(from, &list, flags);
        sw_stop(&sw);
        if (count < 0)
            die_virt("%s (flags 0x%x)", phase, flags);

        check(list, count, n, phase);

        sw_start(&sw);
        free_list(list, count, phase);
        sw_stop(&sw);
    }
    report(n, phase, &sw, LIST_REPEAT);
}

static void check_all(virDomainCheckpointPtr *l, int c, long n, const char *w) { expect_set(l, c, n, -1, n, w); }
static void check_topo(virDomainCheckpointPtr *l, int c, long n, const char *w) { expect_sequence(l, c, 0, 1, n, w); }
static void check_roots(virDomainCheckpointPtr *l, int c, long n, const char *w) { (void)n; expect_sequence(l, c, 0, 1, 1, w); }
static void check_leaves(virDomainCheckpointPtr *l, int c, long n, const char *w) { expect_sequence(l, c, n - 1, 1, 1, w); }
static void check_no_leaves(virDomainCheckpointPtr *l, int c, long n, const char *w) { expect_set(l, c, n, n - 1, n - 1, w); }
static void check_desc(virDomainCheckpointPtr *l, int c, long n, const char *w) { expect_sequence(l, c, 1, 1, n - 1, w); }

/* How many checkpoints the domain has (count-only listing). */
static int count_checkpoints(virDomainPtr dom, unsigned int flags)
{
    int c = virDomainListAllCheckpoints(dom, NULL, flags);
    if (c < 0)
        die_virt("virDomainListAllCheckpoints(count only, flags 0x%x)", flags);
    return c;
}

/* ---- one benchmark run ------------------------------------------------------------------ */

static void run(virDomainPtr dom, long n)
{
    virDomainCheckpointPtr *cps = xcalloc((size_t)n, sizeof(*cps));
    char name[NAME_LEN], want[NAME_LEN], xml[128], prefix[256];
    stopwatch sw;
    long i, half;
    struct rusage ru;

    if (count_checkpoints(dom, 0) != 0)
        die_check("domain '%s' already has checkpoints before the N=%ld run", DOMAIN_NAME, n);

    /* create: a linear chain c0 -> c1 -> ... -> c<n-1> */
    sw = (stopwatch){0};
    sw_start(&sw);
    for (i = 0; i < n; i++) {
        snprintf(xml, sizeof(xml), "<domaincheckpoint><name>c%ld</name></domaincheckpoint>", i);
        cps[i] = virDomainCheckpointCreateXML(dom, xml, 0);
        if (!cps[i])
            die_virt("virDomainCheckpointCreateXML(c%ld)", i);
    }
    sw_stop(&sw);
    report(n, "create", &sw, n);

    /* listings */
    list_phase(n, "list_all", LIST_DOMAIN, dom, NULL, 0, check_all);
    list_phase(n, "list_topological", LIST_DOMAIN, dom, NULL, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL, check_topo);
    list_phase(n, "list_roots", LIST_DOMAIN, dom, NULL, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS, check_roots);
    list_phase(n, "list_leaves", LIST_DOMAIN, dom, NULL, VIR_DOMAIN_CHECKPOINT_LIST_LEAVES, check_leaves);
    list_phase(n, "list_no_leaves", LIST_DOMAIN, dom, NULL, VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES, check_no_leaves);
    list_phase(n, "list_descendants", LIST_CHILDREN, NULL, cps[0], VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS,
               check_desc);

    /* lookup: every checkpoint by name; the returned handle must carry that name */
    sw = (stopwatch){0};
    sw_start(&sw);
    for (i = 0; i < n; i++) {
        virDomainCheckpointPtr cp;
        const char *got;
        cp_name(name, i);
        cp = virDomainCheckpointLookupByName(dom, name, 0);
        if (!cp)
            die_virt("virDomainCheckpointLookupByName(%s)", name);
        got = virDomainCheckpointGetName(cp);
        if (!got || strcmp(got, name) != 0)
            die_check("lookup of '%s' returned a handle named '%s'", name, got ? got : "(null)");
        free_handle(cp, name);
    }
    sw_stop(&sw);
    report(n, "lookup", &sw, n);

    /* get_xml: the document must start with the checkpoint's name and, except for c0, its
     * parent (the fixed element order of the checkpoint XML writer) */
    sw = (stopwatch){0};
    sw_start(&sw);
    for (i = 0; i < n; i++) {
        char *doc = virDomainCheckpointGetXMLDesc(cps[i], 0);
        size_t len;
        if (!doc)
            die_virt("virDomainCheckpointGetXMLDesc(c%ld)", i);
        if (i == 0)
            len = (size_t)snprintf(prefix, sizeof(prefix), "<domaincheckpoint>\n  <name>c0</name>\n  <creationTime>");
        else
            len = (size_t)snprintf(prefix, sizeof(prefix),
                                   "<domaincheckpoint>\n  <name>c%ld</name>\n  <parent>\n    <name>c%ld</name>\n  </parent>\n",
                                   i, i - 1);
        if (strncmp(doc, prefix, len) != 0)
            die_check("XML of c%ld does not start as expected:\n--- expected prefix\n%s\n--- got\n%.300s", i, prefix,
                      doc);
        free(doc);
    }
    sw_stop(&sw);
    report(n, "get_xml", &sw, n);

    /* get_parent: c0 is the root, so it must fail with VIR_ERR_NO_DOMAIN_CHECKPOINT; every
     * other checkpoint's parent is its predecessor */
    sw = (stopwatch){0};
    sw_start(&sw);
    for (i = 0; i < n; i++) {
        virDomainCheckpointPtr parent = virDomainCheckpointGetParent(cps[i], 0);
        if (i == 0) {
            virErrorPtr err = virGetLastError();
            if (parent)
                die_check("c0 (a root) reported parent '%s'", virDomainCheckpointGetName(parent));
            if (!err || err->code != VIR_ERR_NO_DOMAIN_CHECKPOINT)
                die_virt("virDomainCheckpointGetParent(c0) failed, but not with VIR_ERR_NO_DOMAIN_CHECKPOINT");
            continue;
        }
        if (!parent)
            die_virt("virDomainCheckpointGetParent(c%ld)", i);
        cp_name(want, i - 1);
        {
            const char *got = virDomainCheckpointGetName(parent);
            if (!got || strcmp(got, want) != 0)
                die_check("parent of c%ld is '%s', expected '%s'", i, got ? got : "(null)", want);
        }
        free_handle(parent, want);
    }
    sw_stop(&sw);
    report(n, "get_parent", &sw, n);

    /* delete_half: c0, c2, c4, ... with flags 0; each deleted checkpoint's child moves up */
    half = (n + 1) / 2;
    sw = (stopwatch){0};
    sw_start(&sw);
    for (i = 0; i < n; i += 2) {
        if (virDomainCheckpointDelete(cps[i], 0) < 0)
            die_virt("virDomainCheckpointDelete(c%ld)", i);
        free_handle(cps[i], "deleted checkpoint");
        cps[i] = NULL;
    }
    sw_stop(&sw);
    report(n, "delete_half", &sw, half);

    /* Clock stopped: the survivors c1, c3, ... must still form one chain, in that order. */
    {
        virDomainCheckpointPtr *list = NULL;
        int count = virDomainListAllCheckpoints(dom, &list, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
        if (count < 0)
            die_virt("virDomainListAllCheckpoints(TOPOLOGICAL) after delete_half");
        expect_sequence(list, count, 1, 2, n / 2, "topological list after delete_half");
        free_list(list, count, "topological list after delete_half");
        if (n / 2 > 0 && count_checkpoints(dom, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS) != 1)
            die_check("after delete_half the survivors do not form a single chain");
    }

    /* delete_rest: c1, c3, ... ; each is a root when it is deleted */
    sw = (stopwatch){0};
    sw_start(&sw);
    for (i = 1; i < n; i += 2) {
        if (virDomainCheckpointDelete(cps[i], 0) < 0)
            die_virt("virDomainCheckpointDelete(c%ld)", i);
        free_handle(cps[i], "deleted checkpoint");
        cps[i] = NULL;
    }
    sw_stop(&sw);
    report(n, "delete_rest", &sw, n / 2);

    if (count_checkpoints(dom, 0) != 0)
        die_check("checkpoints remain after deleting all of them");
    free(cps);

    if (getrusage(RUSAGE_SELF, &ru) < 0) {
        perror("checkpoints: getrusage");
        exit(1);
    }
    printf("N=%ld peak_rss_kb=%ld\n", n, ru.ru_maxrss); /* Linux reports ru_maxrss in KiB */
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const long defaults[] = {1000, 10000};
    long ns[64];
    int nn = 0, i, left;
    virConnectPtr conn;
    virDomainPtr dom;

    if (argc > 1 + (int)(sizeof(ns) / sizeof(ns[0]))) {
        fprintf(stderr, "checkpoints: too many arguments\n");
        return 2;
    }
    for (i = 1; i < argc; i++) {
        char *end;
        errno = 0;
        ns[nn] = strtol(argv[i], &end, 10);
        if (errno || end == argv[i] || *end || ns[nn] < 1 || ns[nn] > 100000000) {
            fprintf(stderr, "usage: %s [N ...]   (N >= 1; default: 1000 10000)\n", argv[0]);
            return 2;
        }
        nn++;
    }
    if (nn == 0) {
        ns[nn++] = defaults[0];
        ns[nn++] = defaults[1];
    }

    {
        Dl_info info;
        if (dladdr((void *)virDomainCheckpointCreateXML, &info) && info.dli_fname)
            printf("library=%s\n", info.dli_fname);
        else
            printf("library=unknown\n");
    }

    virSetErrorFunc(NULL, quiet_error_handler);

    conn = virConnectOpen(URI);
    if (!conn)
        die_virt("virConnectOpen(%s)", URI);
    dom = virDomainLookupByName(conn, DOMAIN_NAME);
    if (!dom)
        die_virt("virDomainLookupByName(%s)", DOMAIN_NAME);

    for (i = 0; i < nn; i++)
        run(dom, ns[i]);

    if (virDomainFree(dom) < 0)
        die_virt("virDomainFree");
    /* Every checkpoint handle holds a domain reference and every domain a connection
     * reference, so anything left over would show up here as a count above 0. */
    left = virConnectClose(conn);
    if (left < 0)
        die_virt("virConnectClose");
    if (left > 0)
        die_check("virConnectClose: %d references still held (leaked handles)", left);
    return 0;
}
