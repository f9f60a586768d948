/*
 * snapshot-api.c: argument, handle and flag checks of the twenty-one snapshot entry points
 * on test:///default.
 *
 * Covered: NULL and wrongly typed domain/snapshot pointers (a connection, a domain or a
 * checkpoint passed as a snapshot), NULL strings and NULL names arrays, negative and
 * too-small maxnames, the public layer's dependent and mutually exclusive flags
 * (CreateXML, Revert, Delete) and the order in which the checks fire, unknown flag bits
 * for every function that takes flags (each single bit), read-only connections, every call
 * resetting the thread's error, handles (new on every call, outliving their snapshot,
 * keeping their domain and connection alive), Ref/Free counting, and returned arrays
 * (trailing NULL slot, empty lists, count-only calls, name arrays partly filled).
 *
 * Listings of the whole domain without ROOTS and without TOPOLOGICAL come back in hash
 * order, which varies from run to run; those names are printed sorted.
 *
 * Built against the system's libvirt; run with it and with virbackup's library, and the
 * two outputs must match (see run-oracle.py).
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
#define CURRENT VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
#define NO_METADATA VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
#define HALT VIR_DOMAIN_SNAPSHOT_CREATE_HALT
#define SECURE VIR_DOMAIN_SNAPSHOT_XML_SECURE
#define RUNNING VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
#define PAUSED VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
#define FORCE VIR_DOMAIN_SNAPSHOT_REVERT_FORCE
#define CHILDREN VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN
#define METADATA_ONLY VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY
#define CHILDREN_ONLY VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY
#define ROOTS VIR_DOMAIN_SNAPSHOT_LIST_ROOTS
#define TOPO VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL
#define HIGH (1U << 31)
#define NAMES 8

static const char xml_s1[] = "<domainsnapshot><name>s1</name></domainsnapshot>";

/* ---- snapshot list helpers (the snapshot counterparts of oracle.h's) ---------------- */

#define SNAP_SENTINEL ((virDomainSnapshotPtr *)(void *)&snap_sentinel_target)
static int snap_sentinel_target;

DEFINE_PRINT_LIST(print_snaps, virDomainSnapshotPtr, SNAP_SENTINEL, virDomainSnapshotGetName,
                  virDomainSnapshotFree)

/* A list call with an array out-parameter, which is set to a sentinel first. */
#define SLIST(expr, arr, sorted)                        \
    do {                                                \
        int r_;                                         \
        (arr) = SNAP_SENTINEL;                          \
        r_ = (expr);                                    \
        printf("%s = %d\n", #expr, r_);                 \
        show_error();                                   \
        print_snaps(r_, (arr), (sorted));               \
    } while (0)

/*
 * Prints the slots of a names array that a call filled (the slots were NULL before the
 * call), sorted when the order is unspecified, and frees them. sorted < 0: only the count
 * (for a partial list in hash order, whose members vary from run to run).
 */
static inline void print_slots(char **names, int len, int sorted)
{
    char *filled[64];
    int i, n = 0;

    for (i = 0; i < len && i < 64; i++)
        if (names[i])
            filled[n++] = names[i];
    if (sorted)
        qsort(filled, (size_t)n, sizeof(*filled), cmp_names);
    printf("    %d of %d slots filled%s", n, len, sorted > 0 && n ? " (sorted):" : sorted < 0 ? "" : ":");
    for (i = 0; sorted >= 0 && i < n; i++)
        printf(" %s", filled[i]);
    printf("\n");
    for (i = 0; i < len; i++)
        free(names[i]);
}

/* A call filling a names array of len slots (names must have at least len slots). */
#define NLIST(expr, names, len, sorted)                 \
    do {                                                \
        int r_, i_;                                     \
        for (i_ = 0; i_ < (len); i_++)                  \
            (names)[i_] = NULL;                         \
        r_ = (expr);                                    \
        printf("%s = %d\n", #expr, r_);                 \
        show_error();                                   \
        print_slots((names), (len), (sorted));          \
    } while (0)

/* Every way of listing a domain's snapshots with flags. */
static inline void list_domain_snaps(virDomainPtr dom, unsigned int flags)
{
    virDomainSnapshotPtr *arr = SNAP_SENTINEL;
    char *names[NAMES];
    const char *name = virDomainGetName(dom);
    int sorted = !(flags & (ROOTS | TOPO));
    int n, i;

    n = virDomainSnapshotNum(dom, flags);
    printf("virDomainSnapshotNum(%s, 0x%x) = %d\n", s(name), flags, n);
    show_error();
    for (i = 0; i < NAMES; i++)
        names[i] = NULL;
    n = virDomainSnapshotListNames(dom, names, NAMES, flags);
    printf("virDomainSnapshotListNames(%s, names, %d, 0x%x) = %d\n", s(name), NAMES, flags, n);
    show_error();
    print_slots(names, NAMES, sorted);
    n = virDomainListAllSnapshots(dom, &arr, flags);
    printf("virDomainListAllSnapshots(%s, &arr, 0x%x) = %d\n", s(name), flags, n);
    show_error();
    print_snaps(n, arr, sorted);
    n = virDomainListAllSnapshots(dom, NULL, flags);
    printf("virDomainListAllSnapshots(%s, NULL, 0x%x) = %d\n", s(name), flags, n);
    show_error();
}

/* Every way of listing a snapshot's children with flags (always in a fixed order). */
static inline void list_snap_children(virDomainSnapshotPtr snap, unsigned int flags)
{
    virDomainSnapshotPtr *arr = SNAP_SENTINEL;
    char *names[NAMES];
    const char *name = virDomainSnapshotGetName(snap);
    int n, i;

    n = virDomainSnapshotNumChildren(snap, flags);
    printf("virDomainSnapshotNumChildren(%s, 0x%x) = %d\n", s(name), flags, n);
    show_error();
    for (i = 0; i < NAMES; i++)
        names[i] = NULL;
    n = virDomainSnapshotListChildrenNames(snap, names, NAMES, flags);
    printf("virDomainSnapshotListChildrenNames(%s, names, %d, 0x%x) = %d\n", s(name), NAMES, flags, n);
    show_error();
    print_slots(names, NAMES, 0);
    n = virDomainSnapshotListAllChildren(snap, &arr, flags);
    printf("virDomainSnapshotListAllChildren(%s, &arr, 0x%x) = %d\n", s(name), flags, n);
    show_error();
    print_snaps(n, arr, 0);
    n = virDomainSnapshotListAllChildren(snap, NULL, flags);
    printf("virDomainSnapshotListAllChildren(%s, NULL, 0x%x) = %d\n", s(name), flags, n);
    show_error();
}

/* virDomainGetState, printed as state/reason. */
static inline void show_state(virDomainPtr dom)
{
    int st = -1, reason = -1;
    int r = virDomainGetState(dom, &st, &reason, 0);
    printf("state of %s: r=%d state=%d reason=%d\n", s(virDomainGetName(dom)), r, st, reason);
    if (r < 0)
        show_error();
}

/* The current snapshot's name (or the error), and HasCurrentSnapshot. */
static inline void show_current(virDomainPtr dom)
{
    virDomainSnapshotPtr cur = virDomainSnapshotCurrent(dom, 0);
    int code = virGetLastErrorCode();
    int has = virDomainHasCurrentSnapshot(dom, 0);
    if (cur) {
        printf("current of %s: %s (has=%d)\n", s(virDomainGetName(dom)), s(virDomainSnapshotGetName(cur)), has);
        virDomainSnapshotFree(cur);
    } else {
        printf("current of %s: none, code %d (has=%d)\n", s(virDomainGetName(dom)), code, has);
    }
}

/* ---- the checks ---------------------------------------------------------------------- */

/* NULL pointers and pointers of another class, for every function. */
static void invalid_pointers(virConnectPtr conn, virDomainPtr dom, virDomainSnapshotPtr snap,
                             virDomainCheckpointPtr chk)
{
    virDomainSnapshotPtr *arr;
    char *names[NAMES];
    virDomainSnapshotPtr bad_conn = (virDomainSnapshotPtr)(void *)conn;
    virDomainSnapshotPtr bad_dom = (virDomainSnapshotPtr)(void *)dom;
    virDomainSnapshotPtr bad_chk = (virDomainSnapshotPtr)(void *)chk;
    virDomainPtr conn_as_dom = (virDomainPtr)(void *)conn;
    virDomainPtr snap_as_dom = (virDomainPtr)(void *)snap;

    printf("== NULL domain\n");
    PTR(virDomainSnapshotCreateXML(NULL, xml_s1, 0));
    PTR(virDomainSnapshotCreateXML(NULL, NULL, HIGH));
    INT(virDomainSnapshotNum(NULL, 0));
    INT(virDomainSnapshotNum(NULL, HIGH));
    NLIST(virDomainSnapshotListNames(NULL, names, NAMES, 0), names, NAMES, 0);
    INT(virDomainSnapshotListNames(NULL, NULL, 5, 0));
    INT(virDomainSnapshotListNames(NULL, names, -1, HIGH));
    SLIST(virDomainListAllSnapshots(NULL, &arr, 0), arr, 1);
    SLIST(virDomainListAllSnapshots(NULL, &arr, HIGH), arr, 1);
    INT(virDomainListAllSnapshots(NULL, NULL, 0));
    PTR(virDomainSnapshotLookupByName(NULL, "s1", 0));
    PTR(virDomainSnapshotLookupByName(NULL, NULL, HIGH));
    INT(virDomainHasCurrentSnapshot(NULL, 0));
    PTR(virDomainSnapshotCurrent(NULL, 0));

    printf("== a connection or a snapshot passed as a domain\n");
    PTR(virDomainSnapshotCreateXML(conn_as_dom, xml_s1, 0));
    INT(virDomainSnapshotNum(conn_as_dom, 0));
    NLIST(virDomainSnapshotListNames(conn_as_dom, names, NAMES, 0), names, NAMES, 0);
    SLIST(virDomainListAllSnapshots(conn_as_dom, &arr, 0), arr, 1);
    PTR(virDomainSnapshotLookupByName(conn_as_dom, "s1", 0));
    INT(virDomainHasCurrentSnapshot(conn_as_dom, 0));
    PTR(virDomainSnapshotCurrent(conn_as_dom, 0));
    PTR(virDomainSnapshotCreateXML(snap_as_dom, xml_s1, 0));
    INT(virDomainSnapshotNum(snap_as_dom, 0));
    SLIST(virDomainListAllSnapshots(snap_as_dom, &arr, 0), arr, 1);
    PTR(virDomainSnapshotLookupByName(snap_as_dom, "s1", 0));

    printf("== NULL snapshot\n");
    STR(virDomainSnapshotGetName(NULL));
    PTR(virDomainSnapshotGetDomain(NULL));
    PTR(virDomainSnapshotGetConnect(NULL));
    FREESTR(virDomainSnapshotGetXMLDesc(NULL, 0));
    FREESTR(virDomainSnapshotGetXMLDesc(NULL, HIGH));
    INT(virDomainSnapshotNumChildren(NULL, 0));
    NLIST(virDomainSnapshotListChildrenNames(NULL, names, NAMES, 0), names, NAMES, 0);
    INT(virDomainSnapshotListChildrenNames(NULL, NULL, 3, HIGH));
    SLIST(virDomainSnapshotListAllChildren(NULL, &arr, 0), arr, 0);
    INT(virDomainSnapshotListAllChildren(NULL, NULL, HIGH));
    PTR(virDomainSnapshotGetParent(NULL, 0));
    INT(virDomainSnapshotIsCurrent(NULL, 0));
    INT(virDomainSnapshotHasMetadata(NULL, 0));
    INT(virDomainRevertToSnapshot(NULL, 0));
    INT(virDomainRevertToSnapshot(NULL, RUNNING | PAUSED));
    INT(virDomainSnapshotDelete(NULL, 0));
    INT(virDomainSnapshotDelete(NULL, CHILDREN | CHILDREN_ONLY));
    INT(virDomainSnapshotRef(NULL));
    INT(virDomainSnapshotFree(NULL));

    printf("== a connection, a domain and a checkpoint passed as a snapshot\n");
    {
        virDomainSnapshotPtr bad[3];
        const char *what[3] = {"connection", "domain", "checkpoint"};
        int i;
        bad[0] = bad_conn;
        bad[1] = bad_dom;
        bad[2] = bad_chk;
        for (i = 0; i < 3; i++) {
            virDomainSnapshotPtr b = bad[i];
            printf("-- %s\n", what[i]);
            STR(virDomainSnapshotGetName(b));
            PTR(virDomainSnapshotGetDomain(b));
            PTR(virDomainSnapshotGetConnect(b));
            FREESTR(virDomainSnapshotGetXMLDesc(b, 0));
            INT(virDomainSnapshotNumChildren(b, 0));
            NLIST(virDomainSnapshotListChildrenNames(b, names, NAMES, 0), names, NAMES, 0);
            SLIST(virDomainSnapshotListAllChildren(b, &arr, 0), arr, 0);
            PTR(virDomainSnapshotGetParent(b, 0));
            INT(virDomainSnapshotIsCurrent(b, 0));
            INT(virDomainSnapshotHasMetadata(b, 0));
            INT(virDomainRevertToSnapshot(b, 0));
            INT(virDomainSnapshotDelete(b, 0));
            INT(virDomainSnapshotRef(b));
            INT(virDomainSnapshotFree(b));
        }
    }
}

/* NULL strings, NULL arrays, negative lengths, and the public layer's flag rules. */
static void arguments(virDomainPtr dom, virDomainSnapshotPtr snap)
{
    char *names[NAMES];

    printf("== NULL and empty strings\n");
    PTR(virDomainSnapshotCreateXML(dom, NULL, 0));
    PTR(virDomainSnapshotCreateXML(dom, NULL, HIGH));
    PTR(virDomainSnapshotCreateXML(dom, NULL, CURRENT));
    PTR(virDomainSnapshotLookupByName(dom, NULL, 0));
    PTR(virDomainSnapshotLookupByName(dom, NULL, HIGH));
    PTR(virDomainSnapshotLookupByName(dom, "", 0));
    PTR(virDomainSnapshotLookupByName(dom, "nope", 0));
    PTR(virDomainSnapshotLookupByName(dom, "S1", 0));

    printf("== names arrays and their lengths\n");
    INT(virDomainSnapshotListNames(dom, NULL, 1, 0));
    INT(virDomainSnapshotListNames(dom, NULL, 1, HIGH));
    INT(virDomainSnapshotListNames(dom, NULL, 0, 0));
    INT(virDomainSnapshotListNames(dom, NULL, -1, 0));
    INT(virDomainSnapshotListNames(dom, NULL, 0, HIGH));
    NLIST(virDomainSnapshotListNames(dom, names, -1, 0), names, 0, 0);
    NLIST(virDomainSnapshotListNames(dom, names, -1, HIGH), names, 0, 0);
    NLIST(virDomainSnapshotListNames(dom, names, 0, 0), names, 0, 0);
    NLIST(virDomainSnapshotListNames(dom, names, 1, 0), names, 1, -1);
    NLIST(virDomainSnapshotListNames(dom, names, 1, ROOTS), names, 1, 0);
    NLIST(virDomainSnapshotListNames(dom, names, 1, TOPO), names, 1, 0);
    NLIST(virDomainSnapshotListNames(dom, names, 2, TOPO), names, 2, 0);
    NLIST(virDomainSnapshotListNames(dom, names, NAMES, TOPO), names, NAMES, 0);
    INT(virDomainSnapshotListChildrenNames(snap, NULL, 1, 0));
    INT(virDomainSnapshotListChildrenNames(snap, NULL, 0, 0));
    INT(virDomainSnapshotListChildrenNames(snap, NULL, -1, 0));
    NLIST(virDomainSnapshotListChildrenNames(snap, names, -1, 0), names, 0, 0);
    NLIST(virDomainSnapshotListChildrenNames(snap, names, 0, VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS), names, 0, 0);
    NLIST(virDomainSnapshotListChildrenNames(snap, names, 1, 0), names, 1, 0);
    NLIST(virDomainSnapshotListChildrenNames(snap, names, 1, VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS), names, 1, 0);

    printf("== dependent and exclusive flags (public layer)\n");
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, CURRENT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, CURRENT | HIGH));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, CURRENT | NO_METADATA));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, CURRENT | HALT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, REDEFINE | NO_METADATA));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, REDEFINE | NO_METADATA | HALT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, REDEFINE | HALT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, REDEFINE | CURRENT | HALT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, REDEFINE | HALT | HIGH));
    PTR(virDomainSnapshotCreateXML(dom, "garbage", REDEFINE | HALT));
    /* Not exclusive in the public layer; the test driver rejects NO_METADATA itself. */
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, NO_METADATA | HALT));
    INT(virDomainRevertToSnapshot(snap, RUNNING | PAUSED));
    INT(virDomainRevertToSnapshot(snap, RUNNING | PAUSED | FORCE));
    INT(virDomainRevertToSnapshot(snap, RUNNING | PAUSED | HIGH));
    INT(virDomainSnapshotDelete(snap, CHILDREN | CHILDREN_ONLY));
    INT(virDomainSnapshotDelete(snap, CHILDREN | CHILDREN_ONLY | METADATA_ONLY));
    INT(virDomainSnapshotDelete(snap, CHILDREN | CHILDREN_ONLY | HIGH));
    /* Valid in the public layer, refused by the test driver. */
    INT(virDomainSnapshotDelete(snap, METADATA_ONLY));
    INT(virDomainSnapshotDelete(snap, CHILDREN | METADATA_ONLY));
}

/* Unknown flag bits: the top bit and mixtures, then each single bit for every function. */
static void unknown_flags(virDomainPtr dom, virDomainSnapshotPtr s1, virDomainSnapshotPtr s2)
{
    virDomainSnapshotPtr *arr;
    char *names[NAMES];
    unsigned int f;

    printf("== unknown flags\n");
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, HIGH));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, 1U << 10));
    PTR(virDomainSnapshotCreateXML(dom, "not xml", HIGH));
    FREESTR(virDomainSnapshotGetXMLDesc(s1, 2));
    FREESTR(virDomainSnapshotGetXMLDesc(s1, HIGH));
    FREESTR(virDomainSnapshotGetXMLDesc(s1, SECURE | 2));
    INT(virDomainSnapshotNum(dom, 1U << 11));
    INT(virDomainSnapshotNum(dom, HIGH | ROOTS));
    NLIST(virDomainSnapshotListNames(dom, names, NAMES, 1U << 11), names, NAMES, 1);
    SLIST(virDomainListAllSnapshots(dom, &arr, 1U << 11), arr, 1);
    SLIST(virDomainListAllSnapshots(dom, &arr, HIGH | TOPO), arr, 1);
    INT(virDomainListAllSnapshots(dom, NULL, HIGH));
    INT(virDomainSnapshotNumChildren(s1, 1U << 11));
    NLIST(virDomainSnapshotListChildrenNames(s1, names, NAMES, HIGH), names, NAMES, 0);
    SLIST(virDomainSnapshotListAllChildren(s1, &arr, 1U << 11), arr, 0);
    PTR(virDomainSnapshotLookupByName(dom, "s1", 1));
    PTR(virDomainSnapshotLookupByName(dom, "nope", 1));
    INT(virDomainHasCurrentSnapshot(dom, 1));
    PTR(virDomainSnapshotCurrent(dom, 1));
    PTR(virDomainSnapshotGetParent(s2, 1));
    INT(virDomainSnapshotIsCurrent(s1, 1));
    INT(virDomainSnapshotHasMetadata(s1, 1));
    INT(virDomainRevertToSnapshot(s2, HIGH));
    INT(virDomainRevertToSnapshot(s2, VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM));
    INT(virDomainSnapshotDelete(s2, HIGH));
    INT(virDomainSnapshotDelete(s2, 8));

    /*
     * Each single bit. Valid bits are undone: a snapshot created is deleted, a domain
     * halted is started again, a revert to the current snapshot s2 leaves it current, a
     * pause is ended by reverting once more without flags.
     */
    printf("== each single flag bit\n");
    for (f = 0; f < 32; f++) {
        unsigned int bit = 1U << f;
        virDomainSnapshotPtr c;
        char *x;
        int n, i;

        c = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>bit</name></domainsnapshot>", bit);
        printf("bit %u: create %s\n", f, c ? "ok" : "failed");
        show_error();
        if (c) {
            show_current(dom);
            virDomainSnapshotDelete(c, 0);
            virDomainSnapshotFree(c);
        }
        if (virDomainIsActive(dom) == 0) {
            printf("bit %u: domain stopped; started again\n", f);
            show_state(dom);
            virDomainCreate(dom);
        }
        x = virDomainSnapshotGetXMLDesc(s1, bit);
        printf("bit %u: getxml %s\n", f, x ? "ok" : "failed");
        show_error();
        free(x);
        n = virDomainSnapshotNum(dom, bit);
        printf("bit %u: num = %d\n", f, n);
        show_error();
        for (i = 0; i < NAMES; i++)
            names[i] = NULL;
        n = virDomainSnapshotListNames(dom, names, NAMES, bit);
        printf("bit %u: listnames = %d\n", f, n);
        show_error();
        print_slots(names, NAMES, !(bit & (ROOTS | TOPO)));
        n = virDomainListAllSnapshots(dom, NULL, bit);
        printf("bit %u: listall = %d\n", f, n);
        show_error();
        n = virDomainSnapshotNumChildren(s1, bit);
        printf("bit %u: numchildren = %d\n", f, n);
        show_error();
        for (i = 0; i < NAMES; i++)
            names[i] = NULL;
        n = virDomainSnapshotListChildrenNames(s1, names, NAMES, bit);
        printf("bit %u: childrennames = %d\n", f, n);
        show_error();
        print_slots(names, NAMES, 0);
        n = virDomainSnapshotListAllChildren(s1, NULL, bit);
        printf("bit %u: allchildren = %d\n", f, n);
        show_error();
        c = virDomainSnapshotLookupByName(dom, "s1", bit);
        printf("bit %u: lookup %s\n", f, c ? "ok" : "failed");
        show_error();
        if (c)
            virDomainSnapshotFree(c);
        n = virDomainHasCurrentSnapshot(dom, bit);
        printf("bit %u: hascurrent = %d\n", f, n);
        show_error();
        c = virDomainSnapshotCurrent(dom, bit);
        printf("bit %u: current %s\n", f, c ? s(virDomainSnapshotGetName(c)) : "failed");
        show_error();
        if (c)
            virDomainSnapshotFree(c);
        c = virDomainSnapshotGetParent(s2, bit);
        printf("bit %u: parent %s\n", f, c ? s(virDomainSnapshotGetName(c)) : "failed");
        show_error();
        if (c)
            virDomainSnapshotFree(c);
        n = virDomainSnapshotIsCurrent(s2, bit);
        printf("bit %u: iscurrent = %d\n", f, n);
        show_error();
        n = virDomainSnapshotHasMetadata(s2, bit);
        printf("bit %u: hasmetadata = %d\n", f, n);
        show_error();
        n = virDomainRevertToSnapshot(s2, bit);
        printf("bit %u: revert = %d\n", f, n);
        show_error();
        if (n == 0) {
            show_state(dom);
            virDomainRevertToSnapshot(s2, 0);
            show_state(dom);
        }
        /* Delete: tried on a throw-away child of s2, which a failed call leaves in place. */
        c = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>victim</name></domainsnapshot>", 0);
        n = virDomainSnapshotDelete(c, bit);
        printf("bit %u: delete = %d\n", f, n);
        show_error();
        show_current(dom);
        virDomainSnapshotDelete(c, 0);
        virDomainSnapshotFree(c);
        show_current(dom);
    }
}

/* A read-only connection to the same in-process driver. */
static void read_only(virDomainPtr rw_dom)
{
    virConnectPtr ro = virConnectOpenReadOnly("test:///default");
    virDomainPtr dom = virDomainLookupByName(ro, "test");
    virDomainSnapshotPtr snap, p;
    char *names[NAMES];

    printf("== read-only connection\n");
    PTR(ro);
    PTR(dom);
    PTR(virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>ro</name></domainsnapshot>", 0));
    PTR(virDomainSnapshotCreateXML(dom, NULL, 0));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, CURRENT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, REDEFINE | HALT));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, HIGH));
    PTR(virDomainSnapshotCreateXML(dom, "garbage", 0));
    /* The snapshots made through the read-write connection are visible here. */
    list_domain_snaps(dom, 0);
    list_domain_snaps(dom, TOPO);
    NLIST(virDomainSnapshotListNames(dom, names, -1, 0), names, 0, 0);
    INT(virDomainSnapshotListNames(dom, NULL, 1, 0));
    snap = virDomainSnapshotLookupByName(dom, "s2", 0);
    PTR(snap);
    STR(virDomainSnapshotGetName(snap));
    printf("GetDomain is the read-only domain handle: %d\n", virDomainSnapshotGetDomain(snap) == dom);
    printf("GetConnect is the read-only connection: %d\n", virDomainSnapshotGetConnect(snap) == ro);
    {
        char *xml = virDomainSnapshotGetXMLDesc(snap, 0);
        printf("virDomainSnapshotGetXMLDesc(snap, 0) %s\n", xml ? "ok" : "NULL");
        show_error();
        free(xml);
    }
    FREESTR(virDomainSnapshotGetXMLDesc(snap, SECURE));
    FREESTR(virDomainSnapshotGetXMLDesc(snap, SECURE | HIGH));
    FREESTR(virDomainSnapshotGetXMLDesc(snap, HIGH));
    INT(virDomainHasCurrentSnapshot(dom, 0));
    show_current(dom);
    INT(virDomainSnapshotIsCurrent(snap, 0));
    INT(virDomainSnapshotHasMetadata(snap, 0));
    p = virDomainSnapshotGetParent(snap, 0);
    PTR(p);
    STR(virDomainSnapshotGetName(p));
    list_snap_children(p, 0);
    list_snap_children(p, VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS);
    INT(virDomainRevertToSnapshot(snap, 0));
    INT(virDomainRevertToSnapshot(snap, RUNNING | PAUSED));
    INT(virDomainRevertToSnapshot(snap, HIGH));
    INT(virDomainSnapshotDelete(snap, 0));
    INT(virDomainSnapshotDelete(snap, CHILDREN | CHILDREN_ONLY));
    INT(virDomainSnapshotDelete(snap, HIGH));
    INT(virDomainSnapshotRef(snap));
    INT(virDomainSnapshotFree(snap));
    /* Still there: */
    list_domain_snaps(rw_dom, TOPO);
    INT(virDomainSnapshotFree(snap));
    INT(virDomainSnapshotFree(p));
    virDomainFree(dom);
    INT(virConnectClose(ro));
}

/* Every entry point resets the thread's error first, including the plain getters. */
static void error_clearing(virDomainPtr dom, virDomainSnapshotPtr s1, virDomainSnapshotPtr s2)
{
    virDomainSnapshotPtr c;
    virDomainSnapshotPtr *arr;
    char *names[NAMES];
    char *x;
    int i;

    printf("== every call clears the previous error\n");
#define FAIL_FIRST() virDomainSnapshotLookupByName(dom, "nope", 0)
#define AFTER(call)                                                     \
    do {                                                                \
        FAIL_FIRST();                                                   \
        printf("before %s: code=%d\n", #call, virGetLastErrorCode());   \
        call;                                                           \
        printf("after: code=%d\n", virGetLastErrorCode());              \
    } while (0)
    AFTER(virDomainSnapshotGetName(s1));
    AFTER(virDomainSnapshotGetDomain(s1));
    AFTER(virDomainSnapshotGetConnect(s1));
    AFTER(virDomainSnapshotRef(s1));
    AFTER(virDomainSnapshotFree(s1));
    AFTER(x = virDomainSnapshotGetXMLDesc(s1, 0));
    free(x);
    AFTER(virDomainSnapshotNum(dom, 0));
    for (i = 0; i < NAMES; i++)
        names[i] = NULL;
    AFTER(virDomainSnapshotListNames(dom, names, NAMES, 0));
    print_slots(names, NAMES, 1);
    AFTER(virDomainListAllSnapshots(dom, NULL, 0));
    AFTER(virDomainListAllSnapshots(dom, &arr, 0));
    print_snaps(virDomainListAllSnapshots(dom, NULL, 0), arr, 1);
    AFTER(virDomainSnapshotNumChildren(s1, 0));
    for (i = 0; i < NAMES; i++)
        names[i] = NULL;
    AFTER(virDomainSnapshotListChildrenNames(s1, names, NAMES, 0));
    print_slots(names, NAMES, 0);
    AFTER(virDomainSnapshotListAllChildren(s1, NULL, 0));
    AFTER(c = virDomainSnapshotLookupByName(dom, "s1", 0));
    virDomainSnapshotFree(c);
    AFTER(virDomainHasCurrentSnapshot(dom, 0));
    AFTER(c = virDomainSnapshotCurrent(dom, 0));
    virDomainSnapshotFree(c);
    AFTER(c = virDomainSnapshotGetParent(s2, 0));
    virDomainSnapshotFree(c);
    AFTER(virDomainSnapshotIsCurrent(s1, 0));
    AFTER(virDomainSnapshotHasMetadata(s1, 0));
    AFTER(virDomainRevertToSnapshot(s2, 0));
    AFTER(c = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>clr</name></domainsnapshot>", 0));
    AFTER(virDomainSnapshotDelete(c, 0));
    virDomainSnapshotFree(c);
    /* A failing call replaces the old error with its own. */
    FAIL_FIRST();
    INT(virDomainSnapshotFree(NULL));
    FAIL_FIRST();
    PTR(virDomainSnapshotGetParent(s1, 0));
#undef AFTER
#undef FAIL_FIRST
}

/* Handles: new on every call, alive after deletion, keeping domain and connection. */
static void handles(virConnectPtr conn, virDomainPtr dom)
{
    virDomainSnapshotPtr c1, c2, c3, gone, *arr;
    virConnectPtr c;
    virDomainPtr d;
    char *names[NAMES];

    printf("== distinct handles\n");
    c1 = virDomainSnapshotLookupByName(dom, "s1", 0);
    c2 = virDomainSnapshotLookupByName(dom, "s1", 0);
    PTR(c1);
    PTR(c2);
    printf("lookup twice gives distinct handles: %d\n", c1 != c2);
    c3 = virDomainSnapshotLookupByName(dom, "s2", 0);
    gone = c3;
    c3 = virDomainSnapshotGetParent(gone, 0);
    virDomainSnapshotFree(gone);
    printf("GetParent gives another handle: %d %d\n", c3 != c1, c3 != c2);
    STR(virDomainSnapshotGetName(c3));
    gone = virDomainSnapshotCurrent(dom, 0);
    printf("Current gives another handle: %d\n", gone != c1 && gone != c2 && gone != c3);
    virDomainSnapshotFree(gone);
    printf("GetDomain is the domain used for the lookup: %d\n", virDomainSnapshotGetDomain(c1) == dom);
    printf("GetConnect is the domain's connection: %d\n", virDomainSnapshotGetConnect(c1) == conn);
    printf("GetParent keeps the domain handle: %d\n", virDomainSnapshotGetDomain(c3) == dom);
    printf("GetName of two handles: distinct strings %d, equal %d\n",
           virDomainSnapshotGetName(c1) != virDomainSnapshotGetName(c2),
           strcmp(s(virDomainSnapshotGetName(c1)), s(virDomainSnapshotGetName(c2))) == 0);
    {
        int n = virDomainListAllSnapshots(dom, &arr, ROOTS);
        int i, same = 0;
        for (i = 0; arr && i < n; i++)
            same += arr[i] == c1 || arr[i] == c2;
        printf("list handles are new too: roots=%d reused=%d\n", n, same);
        print_snaps(n, arr, 0);
    }

    printf("== reference counting\n");
    INT(virDomainSnapshotRef(c1));
    INT(virDomainSnapshotRef(c1));
    INT(virDomainSnapshotFree(c1));
    INT(virDomainSnapshotFree(c1));
    STR(virDomainSnapshotGetName(c1));
    INT(virDomainSnapshotIsCurrent(c1, 0));
    INT(virDomainSnapshotFree(c1));
    INT(virDomainSnapshotFree(c2));
    INT(virDomainSnapshotFree(c3));

    printf("== a handle outlives its snapshot\n");
    gone = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>gone</name></domainsnapshot>", 0);
    PTR(gone);
    c1 = virDomainSnapshotLookupByName(dom, "gone", 0);
    INT(virDomainSnapshotDelete(gone, 0));
    STR(virDomainSnapshotGetName(gone));
    printf("GetDomain still the domain: %d\n", virDomainSnapshotGetDomain(gone) == dom);
    show_error();
    printf("GetConnect still the connection: %d\n", virDomainSnapshotGetConnect(gone) == conn);
    show_error();
    FREESTR(virDomainSnapshotGetXMLDesc(gone, 0));
    FREESTR(virDomainSnapshotGetXMLDesc(gone, SECURE));
    INT(virDomainSnapshotNumChildren(gone, 0));
    NLIST(virDomainSnapshotListChildrenNames(gone, names, NAMES, 0), names, NAMES, 0);
    NLIST(virDomainSnapshotListChildrenNames(gone, names, 0, 0), names, 0, 0);
    SLIST(virDomainSnapshotListAllChildren(gone, &arr, 0), arr, 0);
    INT(virDomainSnapshotListAllChildren(gone, NULL, VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS));
    PTR(virDomainSnapshotGetParent(gone, 0));
    INT(virDomainSnapshotIsCurrent(gone, 0));
    INT(virDomainSnapshotHasMetadata(gone, 0));
    INT(virDomainRevertToSnapshot(gone, 0));
    INT(virDomainRevertToSnapshot(gone, RUNNING | PAUSED));
    INT(virDomainSnapshotDelete(gone, 0));
    INT(virDomainSnapshotDelete(gone, CHILDREN));
    INT(virDomainSnapshotDelete(gone, CHILDREN_ONLY));
    INT(virDomainSnapshotDelete(gone, METADATA_ONLY));
    PTR(virDomainSnapshotLookupByName(dom, "gone", 0));
    /* Flags are still checked before the name is looked up. */
    FREESTR(virDomainSnapshotGetXMLDesc(gone, 2));
    PTR(virDomainSnapshotGetParent(gone, 1));
    INT(virDomainSnapshotIsCurrent(gone, 1));
    INT(virDomainSnapshotHasMetadata(gone, 1));
    INT(virDomainSnapshotNumChildren(gone, 1U << 11));
    INT(virDomainRevertToSnapshot(gone, 8));
    INT(virDomainSnapshotDelete(gone, 8));
    INT(virDomainSnapshotRef(gone));
    INT(virDomainSnapshotFree(gone));
    INT(virDomainSnapshotFree(gone));
    /* A second handle to the deleted name, and a new snapshot of the same name. */
    STR(virDomainSnapshotGetName(c1));
    gone = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>gone</name></domainsnapshot>", 0);
    printf("re-created: %s\n", gone ? "ok" : "failed");
    INT(virDomainSnapshotIsCurrent(c1, 0));
    INT(virDomainSnapshotHasMetadata(c1, 0));
    c2 = virDomainSnapshotGetParent(c1, 0);
    printf("parent through the old handle: %s\n", c2 ? s(virDomainSnapshotGetName(c2)) : "NULL");
    virDomainSnapshotFree(c2);
    INT(virDomainSnapshotDelete(c1, 0));
    INT(virDomainSnapshotIsCurrent(gone, 0));
    INT(virDomainSnapshotFree(c1));
    INT(virDomainSnapshotFree(gone));
    show_current(dom);

    printf("== a handle keeps its domain\n");
    d = virDomainLookupByName(conn, "test");
    c1 = virDomainSnapshotLookupByName(d, "s2", 0);
    INT(virDomainFree(d));
    d = virDomainSnapshotGetDomain(c1);
    PTR(d);
    STR(virDomainGetName(d));
    INT(virDomainIsActive(d));
    INT(virDomainSnapshotIsCurrent(c1, 0));
    c2 = virDomainSnapshotLookupByName(d, "s1", 0);
    STR(virDomainSnapshotGetName(c2));
    INT(virDomainSnapshotFree(c2));
    INT(virDomainSnapshotFree(c1));

    printf("== a handle keeps its connection\n");
    c = virConnectOpen("test:///default");
    d = virDomainLookupByName(c, "test");
    c1 = virDomainSnapshotLookupByName(d, "s1", 0);
    INT(virDomainFree(d));
    INT(virConnectClose(c));
    PTR(virDomainSnapshotGetConnect(c1));
    FREESTR(virConnectGetURI(virDomainSnapshotGetConnect(c1)));
    STR(virDomainGetName(virDomainSnapshotGetDomain(c1)));
    list_snap_children(c1, 0);
    INT(virDomainSnapshotFree(c1));
}

/* List arrays: count+1 slots, non-NULL when empty, count-only giving the same numbers. */
static void arrays(virConnectPtr conn, virDomainPtr dom)
{
    virDomainSnapshotPtr *arr, s1;
    virDomainPtr other;
    char *names[NAMES];
    unsigned int f;

    printf("== list arrays\n");
    for (f = 0; f < 16; f++)
        list_domain_snaps(dom, f);
    list_domain_snaps(dom, TOPO);
    list_domain_snaps(dom, TOPO | ROOTS);
    s1 = virDomainSnapshotLookupByName(dom, "s1", 0);
    for (f = 0; f < 16; f++)
        list_snap_children(s1, f);
    list_snap_children(s1, TOPO);
    list_snap_children(s1, TOPO | VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS);
    virDomainSnapshotFree(s1);

    /* A domain without snapshots: empty, but allocated, lists. */
    other = virDomainDefineXML(conn,
                               "<domain type='test'><name>empty</name><memory>1024</memory>"
                               "<os><type>hvm</type></os></domain>");
    PTR(other);
    SLIST(virDomainListAllSnapshots(other, &arr, 0), arr, 1);
    SLIST(virDomainListAllSnapshots(other, &arr, ROOTS), arr, 0);
    SLIST(virDomainListAllSnapshots(other, &arr, TOPO), arr, 0);
    INT(virDomainListAllSnapshots(other, NULL, 0));
    INT(virDomainSnapshotNum(other, 0));
    INT(virDomainSnapshotNum(other, VIR_DOMAIN_SNAPSHOT_LIST_LEAVES));
    NLIST(virDomainSnapshotListNames(other, names, NAMES, 0), names, NAMES, 1);
    NLIST(virDomainSnapshotListNames(other, names, 0, 0), names, 0, 1);
    INT(virDomainSnapshotListNames(other, NULL, 0, 0));
    PTR(virDomainSnapshotLookupByName(other, "s1", 0));
    INT(virDomainHasCurrentSnapshot(other, 0));
    PTR(virDomainSnapshotCurrent(other, 0));
    SLIST(virDomainListAllSnapshots(other, &arr, 1U << 11), arr, 1);
    INT(virDomainUndefine(other));
    virDomainFree(other);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr dom, chkdom;
    virDomainSnapshotPtr s1, s2;
    virDomainCheckpointPtr chk;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    dom = virDomainLookupByName(conn, "test");
    printf("== setup\n");
    PTR(conn);
    PTR(dom);
    list_domain_snaps(dom, 0);
    show_current(dom);

    /* s1 <- s2, plain creates on the running default domain. */
    s1 = virDomainSnapshotCreateXML(dom, xml_s1, 0);
    PTR(s1);
    STR(virDomainSnapshotGetName(s1));
    s2 = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>s2</name></domainsnapshot>", 0);
    PTR(s2);
    STR(virDomainSnapshotGetName(s2));
    PTR(virDomainSnapshotCreateXML(dom, xml_s1, 0));
    list_domain_snaps(dom, TOPO);
    show_current(dom);
    show_state(dom);

    /* A checkpoint of another domain, to pass where a snapshot is expected. */
    chkdom = virDomainDefineXML(conn, "<domain type='test'><name>chkdom</name><memory>1024</memory>"
                                      "<os><type>hvm</type></os><devices><disk type='file' device='disk'>"
                                      "<source file='/chk.img'/><target dev='vda' bus='virtio'/></disk>"
                                      "</devices></domain>");
    virDomainCreate(chkdom);
    chk = virDomainCheckpointCreateXML(chkdom, "<domaincheckpoint><name>c</name></domaincheckpoint>", 0);
    PTR(chk);

    invalid_pointers(conn, dom, s1, chk);
    arguments(dom, s2);
    unknown_flags(dom, s1, s2);
    list_domain_snaps(dom, TOPO);
    show_current(dom);
    show_state(dom);
    read_only(dom);
    error_clearing(dom, s1, s2);
    handles(conn, dom);
    arrays(conn, dom);

    list_domain_snaps(dom, TOPO);
    virDomainCheckpointDelete(chk, 0);
    virDomainCheckpointFree(chk);
    virDomainDestroy(chkdom);
    virDomainUndefine(chkdom);
    virDomainFree(chkdom);
    INT(virDomainSnapshotFree(s1));
    INT(virDomainSnapshotFree(s2));
    INT(virDomainFree(dom));
    INT(virConnectClose(conn));
    return 0;
}
