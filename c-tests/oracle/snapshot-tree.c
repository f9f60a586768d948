/*
 * snapshot-tree.c: the shape of a domain's snapshot tree on test:///default.
 *
 * Part 1 builds a branched tree from plain creates and reverts (s1 gets two children),
 * adds redefined snapshots of every state (shutoff, paused, disk-snapshot) and location
 * (internal, external memory, external disks), and lists it with every one of the 2048
 * flag combinations, through Num, ListNames, ListAll and the count-only ListAll, for the
 * domain and for some snapshots' children (NumChildren, ListChildrenNames,
 * ListAllChildren); it prints every parent, which snapshot is current, and moves a
 * snapshot by redefining it under another parent. Part 2 deletes one snapshot of a fixed
 * tree with each flag combination, rebuilding the tree from scratch for every case, and
 * shows what remains, the current snapshot afterwards and where the next plain create
 * attaches. Part 3 deletes chains one at a time and looks at a domain without a current
 * snapshot.
 *
 * Listings of the whole domain without ROOTS and without TOPOLOGICAL come back in an
 * order that varies from run to run, so those names are printed sorted; every other
 * listing is printed in the order returned.
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
#define CURRENT VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
#define CHILDREN VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN
#define METADATA_ONLY VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY
#define CHILDREN_ONLY VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY
#define ROOTS VIR_DOMAIN_SNAPSHOT_LIST_ROOTS
#define DESCENDANTS VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS
#define LEAVES VIR_DOMAIN_SNAPSHOT_LIST_LEAVES
#define NO_LEAVES VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES
#define TOPO VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL
#define NAMES 32

#define TREE_UUID "5e3b1c2a-7d4f-4e8a-9b6c-0d1e2f3a4b5c"

static const char tree_xml[] =
    "<domain type='test'><name>tree</name><uuid>" TREE_UUID "</uuid>"
    "<memory>1048576</memory><os><type>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='/tree.img'/><target dev='vda' bus='virtio'/></disk>"
    "</devices></domain>";

/* ---- helpers --------------------------------------------------------------------------- */

/* Prints a names array filled by a call (all slots NULL before), sorted or not; frees it. */
static void print_slots(char **names, int len, int sorted)
{
    char *filled[NAMES];
    int i, n = 0;

    for (i = 0; i < len; i++)
        if (names[i])
            filled[n++] = names[i];
    if (sorted)
        qsort(filled, (size_t)n, sizeof(*filled), cmp_names);
    for (i = 0; i < n; i++)
        printf(" %s", filled[i]);
    for (i = 0; i < len; i++)
        free(names[i]);
}

/* Prints the names of a returned handle list (and a missing NULL terminator); frees it. */
static void print_list(int n, virDomainSnapshotPtr *arr, int sorted)
{
    const char *names[NAMES];
    int i;

    if (!arr || n < 0 || n > NAMES) {
        printf(" (array %s)", arr ? "non-NULL" : "NULL");
        return;
    }
    for (i = 0; i < n; i++)
        names[i] = s(virDomainSnapshotGetName(arr[i]));
    if (sorted)
        qsort(names, (size_t)n, sizeof(*names), cmp_names);
    for (i = 0; i < n; i++)
        printf(" %s", names[i]);
    if (arr[n])
        printf(" (no NULL slot)");
    for (i = 0; i < n; i++)
        virDomainSnapshotFree(arr[i]);
    free(arr);
}

/* Prints the error of a failed call on its own line; nothing after a success. */
static void error_if(int r)
{
    if (r < 0) {
        printf("\n");
        show_error();
    }
}

/*
 * One line per flag value: the four ways of listing a domain's snapshots (from == NULL)
 * or a snapshot's children. Errors follow on their own lines.
 */
static void list_line(virDomainPtr dom, virDomainSnapshotPtr from, unsigned int flags)
{
    virDomainSnapshotPtr *arr = NULL;
    char *names[NAMES];
    int sorted = !from && !(flags & (ROOTS | TOPO));
    int i, n;

    printf("  0x%03x:", flags);
    n = from ? virDomainSnapshotNumChildren(from, flags) : virDomainSnapshotNum(dom, flags);
    printf(" num %d", n);
    error_if(n);
    for (i = 0; i < NAMES; i++)
        names[i] = NULL;
    n = from ? virDomainSnapshotListChildrenNames(from, names, NAMES, flags)
             : virDomainSnapshotListNames(dom, names, NAMES, flags);
    printf(" | names %d:", n);
    error_if(n);
    print_slots(names, NAMES, sorted);
    n = from ? virDomainSnapshotListAllChildren(from, &arr, flags) : virDomainListAllSnapshots(dom, &arr, flags);
    printf(" | all %d:", n);
    error_if(n);
    print_list(n, arr, sorted);
    n = from ? virDomainSnapshotListAllChildren(from, NULL, flags) : virDomainListAllSnapshots(dom, NULL, flags);
    printf(" | count %d\n", n);
    if (n < 0)
        show_error();
}

static void list_dom(virDomainPtr dom, unsigned int flags)
{
    printf("list %s:\n", s(virDomainGetName(dom)));
    list_line(dom, NULL, flags);
}

static void children_of(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);
    if (!snap) {
        printf("children of %s: lookup failed\n", name);
        show_error();
        return;
    }
    printf("children of %s:\n", name);
    list_line(dom, snap, flags);
    virDomainSnapshotFree(snap);
}

/* Plain create with a fixed name; reports the result and the new snapshot's parent. */
static void snap_create(virDomainPtr dom, const char *name)
{
    char xml[256];
    virDomainSnapshotPtr snap, parent;

    snprintf(xml, sizeof(xml), "<domainsnapshot><name>%s</name></domainsnapshot>", name);
    snap = virDomainSnapshotCreateXML(dom, xml, 0);
    if (!snap) {
        printf("create %s: failed\n", name);
        show_error();
        return;
    }
    parent = virDomainSnapshotGetParent(snap, 0);
    printf("create %s: ok, parent %s\n", name, parent ? s(virDomainSnapshotGetName(parent)) : "none");
    virDomainSnapshotFree(parent);
    virDomainSnapshotFree(snap);
}

/*
 * Redefines name under parent (NULL: a root) with a fixed creation time and state; extra
 * is inserted before the domain (memory and disks elements). The domain's definition is
 * always included: libvirt logs a warning to stderr (with a time stamp) for a document
 * without it, and crashes when such a document redefines a disk-only snapshot.
 */
static void redefine(virDomainPtr dom, const char *name, const char *parent, int when, const char *state,
                     const char *extra, unsigned int flags)
{
    char xml[2048], par[256] = "";
    virDomainSnapshotPtr snap;

    if (parent)
        snprintf(par, sizeof(par), "<parent><name>%s</name></parent>", parent);
    snprintf(xml, sizeof(xml),
             "<domainsnapshot><name>%s</name><state>%s</state>%s<creationTime>%d</creationTime>%s%s</domainsnapshot>",
             name, state, par, when, extra ? extra : "", tree_xml);
    snap = virDomainSnapshotCreateXML(dom, xml, REDEFINE | flags);
    printf("redefine %s (parent %s, %s, flags 0x%x): %s\n", name, parent ? parent : "none", state,
           REDEFINE | flags, snap ? "ok" : "failed");
    if (!snap)
        show_error();
    virDomainSnapshotFree(snap);
}

/* Every flag value for the children of one snapshot. */
static void children_sweep(virDomainPtr dom, const char *name)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);
    unsigned int f;

    printf("children of %s:\n", name);
    for (f = 0; f < 2048; f++)
        list_line(dom, snap, f);
    virDomainSnapshotFree(snap);
}

static void revert_to(virDomainPtr dom, const char *name)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);
    int r = virDomainRevertToSnapshot(snap, 0);
    printf("revert to %s = %d\n", name, r);
    show_error();
    virDomainSnapshotFree(snap);
}

static void snap_delete(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);
    int r;
    if (!snap) {
        printf("delete %s: lookup failed\n", name);
        show_error();
        return;
    }
    r = virDomainSnapshotDelete(snap, flags);
    printf("delete %s (0x%x) = %d\n", name, flags, r);
    show_error();
    virDomainSnapshotFree(snap);
}

/* The current snapshot (or the error) and HasCurrentSnapshot. */
static void show_current(virDomainPtr dom)
{
    virDomainSnapshotPtr cur = virDomainSnapshotCurrent(dom, 0);
    int has;
    if (cur) {
        printf("current: %s\n", s(virDomainSnapshotGetName(cur)));
        virDomainSnapshotFree(cur);
    } else {
        printf("current: none\n");
        show_error();
    }
    has = virDomainHasCurrentSnapshot(dom, 0);
    printf("has current: %d\n", has);
    if (has < 0)
        show_error();
}

/* Every snapshot in topological order: its parent (or the error code) and IsCurrent. */
static void parents(virDomainPtr dom)
{
    virDomainSnapshotPtr *arr = NULL;
    int n = virDomainListAllSnapshots(dom, &arr, TOPO);
    int i;

    printf("parents:\n");
    for (i = 0; arr && i < n; i++) {
        virDomainSnapshotPtr p = virDomainSnapshotGetParent(arr[i], 0);
        int code = virGetLastErrorCode(); /* before GetName resets it */
        const char *name = virDomainSnapshotGetName(arr[i]);
        int cur = virDomainSnapshotIsCurrent(arr[i], 0);
        if (p) {
            printf("  %s -> %s%s\n", name, s(virDomainSnapshotGetName(p)), cur ? " (current)" : "");
            virDomainSnapshotFree(p);
        } else {
            printf("  %s -> no parent (code %d)%s\n", name, code, cur ? " (current)" : "");
        }
        virDomainSnapshotFree(arr[i]);
    }
    free(arr);
}

/* Removes every snapshot of a domain (roots with all their children). */
static void snap_delete_all(virDomainPtr dom)
{
    virDomainSnapshotPtr *roots = NULL;
    int n = virDomainListAllSnapshots(dom, &roots, ROOTS);
    int i;
    for (i = 0; roots && i < n; i++) {
        virDomainSnapshotDelete(roots[i], CHILDREN);
        virDomainSnapshotFree(roots[i]);
    }
    free(roots);
    printf("deleted all: %d roots, %d left\n", n, virDomainSnapshotNum(dom, 0));
}

/* ---- part 1 ------------------------------------------------------------------------------ */

static void branching(virDomainPtr dom)
{
    static const char *const all[] = {"s1", "s2", "s3", "s4", "s5", "r1", "r1a", "r1b", "r2"};
    unsigned int f;
    size_t i;

    printf("== plain creates and reverts\n");
    show_current(dom);
    snap_create(dom, "s1");
    snap_create(dom, "s2");
    revert_to(dom, "s1");
    show_current(dom);
    snap_create(dom, "s3");
    snap_create(dom, "s4");
    revert_to(dom, "s2");
    snap_create(dom, "s5");
    show_current(dom);

    printf("== redefined snapshots of other states and locations\n");
    redefine(dom, "r1", NULL, 100, "shutoff", NULL, 0);
    redefine(dom, "r1a", "r1", 101, "disk-snapshot",
             "<disks><disk name='vda' snapshot='external'><source file='/r1a.qcow2'/></disk></disks>", 0);
    redefine(dom, "r1b", "r1", 102, "running",
             "<memory snapshot='external' file='/r1b.mem'/><disks><disk name='vda' snapshot='no'/></disks>", 0);
    redefine(dom, "r2", NULL, 200, "paused", NULL, 0);
    show_current(dom);
    parents(dom);

    printf("== the domain with every flag combination\n");
    for (f = 0; f < 2048; f++)
        list_line(dom, NULL, f);

    printf("== children with every flag combination\n");
    children_sweep(dom, "s1");
    children_sweep(dom, "r1");

    printf("== children of every snapshot\n");
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        children_of(dom, all[i], 0);
        children_of(dom, all[i], DESCENDANTS);
        children_of(dom, all[i], DESCENDANTS | TOPO);
        children_of(dom, all[i], DESCENDANTS | LEAVES);
        children_of(dom, all[i], DESCENDANTS | NO_LEAVES);
        children_of(dom, all[i], LEAVES);
    }

    printf("== parents, roots and the current snapshot\n");
    {
        virDomainSnapshotPtr root = virDomainSnapshotLookupByName(dom, "r2", 0);
        PTR(virDomainSnapshotGetParent(root, 0));
        INT(virDomainSnapshotIsCurrent(root, 0));
        virDomainSnapshotFree(root);
    }

    printf("== moving a snapshot by redefining it under another parent\n");
    redefine(dom, "s4", "s2", 300, "running", NULL, 0);
    parents(dom);
    children_of(dom, "s1", 0);
    children_of(dom, "s2", 0);
    children_of(dom, "s3", 0);
    children_of(dom, "s1", DESCENDANTS);
    list_dom(dom, TOPO);
    list_dom(dom, ROOTS);
    list_dom(dom, LEAVES);
    /* Into a loop, onto itself, under a missing parent: refused. */
    redefine(dom, "s1", "s4", 1, "running", NULL, 0);
    redefine(dom, "s2", "s5", 1, "running", NULL, 0);
    redefine(dom, "s1", "s1", 1, "running", NULL, 0);
    redefine(dom, "s1", "nope", 1, "running", NULL, 0);
    /* A root made a child, and a child made a root. */
    redefine(dom, "r2", "s5", 201, "paused", NULL, 0);
    redefine(dom, "r1a", NULL, 101, "disk-snapshot",
             "<disks><disk name='vda' snapshot='external'><source file='/r1a.qcow2'/></disk></disks>", 0);
    /* Without a file for its disk, a disk-only snapshot needs a name derived from the disk's. */
    redefine(dom, "r1a", NULL, 101, "disk-snapshot", NULL, 0);
    parents(dom);
    list_dom(dom, ROOTS);
    list_dom(dom, TOPO);
    show_current(dom);

    printf("== CURRENT moves the current snapshot; the next create attaches there\n");
    redefine(dom, "r1", NULL, 100, "shutoff", NULL, CURRENT);
    show_current(dom);
    snap_create(dom, "n1");
    show_current(dom);
    redefine(dom, "r1b", "r1", 102, "running", NULL, CURRENT);
    snap_create(dom, "n2");
    redefine(dom, "fresh", "n2", 400, "running", NULL, CURRENT);
    snap_create(dom, "n3");
    show_current(dom);
    parents(dom);
    snap_delete_all(dom);
    show_current(dom);
}

/* ---- part 2 ------------------------------------------------------------------------------ */

/*
 * The fixed tree, built by redefinition: a -> b -> {c, d}, c -> e, d -> f, and a separate
 * root z; e is made current with CURRENT.
 */
static void build_delete_tree(virDomainPtr dom, const char *current)
{
    static const char *const names[] = {"a", "b", "c", "e", "d", "f", "z"};
    static const char *const parent[] = {NULL, "a", "b", "c", "b", "d", NULL};
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        redefine(dom, names[i], parent[i], (int)i + 1, "running", NULL,
                 current && strcmp(current, names[i]) == 0 ? CURRENT : 0);
}

/* One row of the delete table: fresh tree, delete, look at what is left. */
static void delete_case(virDomainPtr dom, const char *victim, unsigned int flags, const char *current)
{
    printf("== delete %s with flags 0x%x, current %s\n", victim, flags, current ? current : "none");
    build_delete_tree(dom, current);
    list_dom(dom, TOPO);
    snap_delete(dom, victim, flags);
    list_dom(dom, TOPO);
    list_dom(dom, ROOTS);
    list_dom(dom, 0);
    list_dom(dom, LEAVES);
    parents(dom);
    children_of(dom, victim, 0);
    children_of(dom, "a", 0);
    children_of(dom, "b", 0);
    children_of(dom, "b", DESCENDANTS);
    show_current(dom);
    /* The next plain create attaches to the current snapshot. */
    snap_create(dom, "next");
    list_dom(dom, TOPO);
    snap_delete_all(dom);
}

static void delete_table(virDomainPtr dom)
{
    delete_case(dom, "b", 0, "e");
    delete_case(dom, "a", 0, "e");
    delete_case(dom, "b", CHILDREN, "e");
    delete_case(dom, "b", CHILDREN_ONLY, "e");
    delete_case(dom, "b", METADATA_ONLY, "e");
    delete_case(dom, "b", CHILDREN | METADATA_ONLY, "e");
    delete_case(dom, "b", CHILDREN_ONLY | METADATA_ONLY, "e");
    delete_case(dom, "b", CHILDREN | CHILDREN_ONLY, "e");
    delete_case(dom, "f", 0, "e");
    delete_case(dom, "e", 0, "e");
    delete_case(dom, "e", CHILDREN, "e");
    delete_case(dom, "e", CHILDREN_ONLY, "e");
    delete_case(dom, "c", 0, "e");
    delete_case(dom, "c", CHILDREN, "e");
    delete_case(dom, "c", CHILDREN_ONLY, "e");
    delete_case(dom, "d", 0, "e");
    delete_case(dom, "d", CHILDREN, "e");
    delete_case(dom, "d", CHILDREN_ONLY, "e");
    delete_case(dom, "a", CHILDREN, "e");
    delete_case(dom, "a", CHILDREN_ONLY, "e");
    delete_case(dom, "z", 0, "e");
    delete_case(dom, "z", CHILDREN, "e");
    delete_case(dom, "z", CHILDREN_ONLY, "e");
    /* Other positions of the current snapshot. */
    delete_case(dom, "b", 0, "b");
    delete_case(dom, "b", CHILDREN, "b");
    delete_case(dom, "b", CHILDREN_ONLY, "b");
    delete_case(dom, "a", 0, "a");
    delete_case(dom, "z", 0, "z");
    delete_case(dom, "b", CHILDREN, "z");
    delete_case(dom, "b", 0, NULL);
    delete_case(dom, "b", CHILDREN, NULL);
    delete_case(dom, "b", CHILDREN_ONLY, NULL);
}

/* ---- part 3 ------------------------------------------------------------------------------ */

static void delete_sequences(virDomainPtr dom)
{
    virDomainSnapshotPtr *arr;

    printf("== current moves up as the chain is deleted from the end\n");
    snap_create(dom, "c1");
    snap_create(dom, "c2");
    snap_create(dom, "c3");
    snap_delete(dom, "c3", 0);
    show_current(dom);
    snap_delete(dom, "c2", 0);
    snap_create(dom, "c4");
    snap_delete(dom, "c4", 0);
    snap_delete(dom, "c1", 0);
    show_current(dom);
    snap_create(dom, "c5");
    snap_delete_all(dom);

    printf("== deleting a middle snapshot moves its children in front of its siblings\n");
    redefine(dom, "m", NULL, 1, "running", NULL, 0);
    redefine(dom, "m1", "m", 2, "running", NULL, 0);
    redefine(dom, "m2", "m", 3, "running", NULL, 0);
    redefine(dom, "m1a", "m1", 4, "running", NULL, 0);
    redefine(dom, "m1b", "m1", 5, "running", NULL, 0);
    children_of(dom, "m", 0);
    children_of(dom, "m1", 0);
    snap_delete(dom, "m1", 0);
    children_of(dom, "m", 0);
    children_of(dom, "m", DESCENDANTS);
    list_dom(dom, TOPO);
    parents(dom);
    /* Deleting the root: its children become roots, in front of the other roots. */
    redefine(dom, "other", NULL, 9, "running", NULL, 0);
    list_dom(dom, ROOTS);
    snap_delete(dom, "m", 0);
    list_dom(dom, ROOTS);
    list_dom(dom, TOPO);
    parents(dom);
    show_current(dom);
    snap_delete_all(dom);

    printf("== a domain without snapshots\n");
    show_current(dom);
    list_dom(dom, 0);
    list_dom(dom, ROOTS);
    list_dom(dom, TOPO | LEAVES);
    arr = NULL;
    INT(virDomainListAllSnapshots(dom, &arr, 0));
    printf("    empty array allocated: %s, first slot NULL: %s\n", arr ? "yes" : "no", arr && !arr[0] ? "yes" : "no");
    free(arr);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr dom;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    dom = virDomainDefineXML(conn, tree_xml);
    PTR(conn);
    PTR(dom);
    INT(virDomainCreate(dom));

    branching(dom);
    delete_table(dom);
    delete_sequences(dom);

    INT(virDomainDestroy(dom));
    INT(virDomainUndefine(dom));
    virDomainFree(dom);
    INT(virConnectClose(conn));
    return 0;
}
