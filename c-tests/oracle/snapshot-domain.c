/*
 * snapshot-domain.c: snapshots and the state of their domain on test:///default.
 *
 * Covered: snapshots of a running, a paused and a shut-off domain (the <state>, <memory>
 * and disk modes recorded), reverting between those states with no flag, RUNNING,
 * PAUSED, FORCE and their combinations (virDomainGetState, the domain id and the current
 * snapshot before and after), reverting a transient domain, CreateXML with each creation
 * flag (HALT, DISK_ONLY, NO_METADATA, CURRENT, LIVE, QUIESCE, ATOMIC, REUSE_EXT, VALIDATE)
 * on running and shut-off domains, undefining domains that have snapshots with and without
 * SNAPSHOTS_METADATA (and with CHECKPOINTS_METADATA), the HAS_SNAPSHOT / NO_SNAPSHOT
 * filters of virConnectListAllDomains, handles whose domain has vanished, and checkpoints
 * and snapshots on the same domain (the test driver allows only one kind at a time).
 *
 * Only domain functions that virbackup exports are used to change states (no suspend or
 * resume: a paused domain is reached by reverting with PAUSED). Documents are printed as
 * the few lines that describe the state, without the embedded domain.
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
#define CURRENT VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
#define NO_METADATA VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
#define HALT VIR_DOMAIN_SNAPSHOT_CREATE_HALT
#define DISK_ONLY VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
#define REUSE_EXT VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT
#define QUIESCE VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
#define ATOMIC VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
#define LIVE VIR_DOMAIN_SNAPSHOT_CREATE_LIVE
#define VALIDATE VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE
#define RUNNING VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
#define PAUSED VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
#define FORCE VIR_DOMAIN_SNAPSHOT_REVERT_FORCE
#define HAS VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT
#define NO VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT

#define DM_UUID "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define TR_UUID "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"
#define GONE_UUID "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4f"

#define DOMAIN_XML(name, uuid)                                                                        \
    "<domain type='test'><name>" name "</name><uuid>" uuid "</uuid>"                                  \
    "<memory>1048576</memory><os><type>hvm</type></os><devices>"                                      \
    "<disk type='file' device='disk'><source file='/" name ".img'/><target dev='vda' bus='virtio'/>" \
    "</disk></devices></domain>"

static const char dm_xml[] = DOMAIN_XML("dm", DM_UUID);
static const char tr_xml[] = DOMAIN_XML("tr", TR_UUID);
static const char gone_xml[] = DOMAIN_XML("gone", GONE_UUID);

/* ---- helpers --------------------------------------------------------------------------- */

/* State, reason, the id of this handle and of a fresh one, persistence. */
static void show_state(virDomainPtr dom)
{
    int st = -1, reason = -1, r;
    virDomainPtr fresh;
    char uuid[VIR_UUID_STRING_BUFLEN] = "";

    r = virDomainGetState(dom, &st, &reason, 0);
    if (r < 0) {
        printf("  state: failed\n");
        show_error();
        return;
    }
    virDomainGetUUIDString(dom, uuid);
    fresh = virDomainLookupByUUIDString(virDomainGetConnect(dom), uuid);
    printf("  state %d reason %d | id %d, fresh handle %d | active %d persistent %d\n", st, reason,
           (int)virDomainGetID(dom), fresh ? (int)virDomainGetID(fresh) : -2, virDomainIsActive(dom),
           virDomainIsPersistent(dom));
    virDomainFree(fresh);
}

/* The current snapshot's name, or none. */
static void show_current(virDomainPtr dom)
{
    virDomainSnapshotPtr cur = virDomainSnapshotCurrent(dom, 0);
    printf("  current %s, has %d\n", cur ? s(virDomainSnapshotGetName(cur)) : "none",
           virDomainHasCurrentSnapshot(dom, 0));
    virDomainSnapshotFree(cur);
}

/* The lines of a snapshot's document that describe the state it recorded. */
static void summary(virDomainSnapshotPtr snap)
{
    char *xml = virDomainSnapshotGetXMLDesc(snap, 0);
    char *line, *save = NULL;
    virDomainSnapshotPtr parent;

    if (!xml) {
        printf("  document: NULL\n");
        show_error();
        return;
    }
    printf("  document of %s:", s(virDomainSnapshotGetName(snap)));
    for (line = strtok_r(xml, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "  <state>", 9) == 0 || strncmp(line, "  <memory", 9) == 0 ||
            strncmp(line, "    <disk name=", 15) == 0)
            printf(" %s", line + strspn(line, " "));
    }
    free(xml);
    parent = virDomainSnapshotGetParent(snap, 0);
    printf(" parent %s\n", parent ? s(virDomainSnapshotGetName(parent)) : "none");
    virDomainSnapshotFree(parent);
}

/* Creates a snapshot named name with flags (extra elements inside); returns it or NULL. */
static virDomainSnapshotPtr make(virDomainPtr dom, const char *name, const char *extra, unsigned int flags)
{
    char xml[1024];
    virDomainSnapshotPtr snap;

    snprintf(xml, sizeof(xml), "<domainsnapshot><name>%s</name>%s</domainsnapshot>", name, extra ? extra : "");
    printf("create %s on %s (flags 0x%x): ", name, s(virDomainGetName(dom)), flags);
    snap = virDomainSnapshotCreateXML(dom, xml, flags);
    printf("%s\n", snap ? "ok" : "failed");
    if (!snap) {
        show_error();
        return NULL;
    }
    summary(snap);
    return snap;
}

/* make() and drop the handle. */
static void make_drop(virDomainPtr dom, const char *name, const char *extra, unsigned int flags)
{
    virDomainSnapshotFree(make(dom, name, extra, flags));
}

static void revert(virDomainSnapshotPtr snap, unsigned int flags)
{
    int r;
    printf("revert to %s (flags 0x%x) = ", s(virDomainSnapshotGetName(snap)), flags);
    r = virDomainRevertToSnapshot(snap, flags);
    printf("%d\n", r);
    show_error();
}

static void snap_delete(virDomainPtr dom, const char *name)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);
    int r = virDomainSnapshotDelete(snap, 0);
    printf("delete %s = %d\n", name, r);
    show_error();
    virDomainSnapshotFree(snap);
}

/* virConnectListAllDomains with flags; names sorted. */
static void list_domains(virConnectPtr conn, unsigned int flags)
{
    virDomainPtr *doms = NULL;
    const char *names[32];
    int n = virConnectListAllDomains(conn, &doms, flags);
    int i;

    printf("virConnectListAllDomains(conn, &doms, 0x%x) = %d\n", flags, n);
    show_error();
    for (i = 0; doms && i < n && i < 32; i++)
        names[i] = virDomainGetName(doms[i]);
    if (n > 0) {
        qsort(names, (size_t)(n < 32 ? n : 32), sizeof(*names), cmp_names);
        printf("    domains:");
        for (i = 0; i < n && i < 32; i++)
            printf(" %s", s(names[i]));
        printf("\n");
    }
    for (i = 0; doms && i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
}

static void domain_filters(virConnectPtr conn)
{
    list_domains(conn, HAS);
    list_domains(conn, NO);
    list_domains(conn, HAS | NO);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_INACTIVE);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_TRANSIENT);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT);
    list_domains(conn, NO | VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT);
}

/* ---- states and reverts --------------------------------------------------------------- */

/* Snapshots of dm shut off, running and paused. */
static void three_states(virDomainPtr dm, virDomainSnapshotPtr *off, virDomainSnapshotPtr *run,
                         virDomainSnapshotPtr *pau)
{
    printf("== snapshots of a shut-off, a running and a paused domain\n");
    show_state(dm);
    show_current(dm);
    *off = make(dm, "off", NULL, 0);
    show_state(dm);
    INT(virDomainCreate(dm));
    show_state(dm);
    *run = make(dm, "run", NULL, 0);
    revert(*run, PAUSED);
    show_state(dm);
    *pau = make(dm, "pau", NULL, 0);
    show_current(dm);
    /* What a shut-off domain records with explicit memory and disks. */
    revert(*off, 0);
    show_state(dm);
    make_drop(dm, "off-mem", "<memory snapshot='internal'/>", 0);
    make_drop(dm, "off-ext", "<memory file='/off.mem'/><disks><disk name='vda' snapshot='no'/></disks>", 0);
    make_drop(dm, "off-disk", "<disks><disk name='vda' snapshot='no'/></disks>", 0);
    snap_delete(dm, "off-ext");
    snap_delete(dm, "off-mem");
    show_current(dm);
}

/* Puts dm into one of three states by reverting (to run with RUNNING, to pau, to off). */
static void enter(virDomainSnapshotPtr run, virDomainSnapshotPtr pau, virDomainSnapshotPtr off, int which)
{
    int r = which == 0 ? virDomainRevertToSnapshot(run, RUNNING)
          : which == 1 ? virDomainRevertToSnapshot(pau, 0)
                       : virDomainRevertToSnapshot(off, 0);
    if (r < 0) {
        printf("setup failed\n");
        show_error();
    }
}

static void revert_matrix(virDomainPtr dm, virDomainSnapshotPtr off, virDomainSnapshotPtr run,
                          virDomainSnapshotPtr pau)
{
    static const char *const from[] = {"running", "paused", "shut off"};
    static const unsigned int flags[] = {0, RUNNING, PAUSED, FORCE, RUNNING | FORCE, PAUSED | FORCE, RUNNING | PAUSED};
    virDomainSnapshotPtr targets[3];
    int f, t;
    size_t i;

    targets[0] = run;
    targets[1] = pau;
    targets[2] = off;
    printf("== reverting between states\n");
    for (f = 0; f < 3; f++) {
        for (t = 0; t < 3; t++) {
            for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                enter(run, pau, off, f);
                printf("-- %s, revert to %s with 0x%x\n", from[f], virDomainSnapshotGetName(targets[t]), flags[i]);
                show_state(dm);
                revert(targets[t], flags[i]);
                show_state(dm);
                show_current(dm);
            }
        }
    }
    /* Reverting to the snapshot that is already current, twice in a row. */
    enter(run, pau, off, 0);
    revert(run, 0);
    show_state(dm);
    revert(run, 0);
    show_state(dm);
    /* After a plain create from a revert, the new snapshot's parent is the reverted one. */
    revert(pau, 0);
    make_drop(dm, "after-pau", NULL, 0);
    show_current(dm);
    revert(off, RUNNING);
    show_state(dm);
    make_drop(dm, "after-off", NULL, 0);
    snap_delete(dm, "after-off");
    snap_delete(dm, "after-pau");
    show_current(dm);
}

/* A transient domain: reverting to a shut-off snapshot needs RUNNING or PAUSED. */
static void transient(virConnectPtr conn)
{
    virDomainPtr tr, again;
    virDomainSnapshotPtr off, run;

    printf("== a transient domain\n");
    tr = virDomainDefineXML(conn, tr_xml);
    off = make(tr, "t-off", NULL, 0);
    INT(virDomainCreate(tr));
    run = make(tr, "t-run", NULL, 0);
    INT(virDomainUndefine(tr));
    show_state(tr);
    revert(off, 0);
    revert(off, FORCE);
    show_state(tr);
    revert(off, RUNNING);
    show_state(tr);
    again = virDomainLookupByName(conn, "tr");
    PTR(again);
    virDomainFree(again);
    revert(off, PAUSED);
    show_state(tr);
    revert(run, 0);
    show_state(tr);
    revert(run, PAUSED);
    show_state(tr);
    PTR(virDomainSnapshotCreateXML(tr, "<domainsnapshot><name>t-halt</name></domainsnapshot>", HALT));
    make_drop(tr, "t-live", NULL, LIVE);
    show_state(tr);
    domain_filters(conn);
    INT(virDomainDestroy(tr));
    PTR(virDomainLookupByName(conn, "tr"));
    INT(virDomainSnapshotNum(tr, 0));
    revert(run, 0);
    virDomainSnapshotFree(off);
    virDomainSnapshotFree(run);
    virDomainFree(tr);
}

/* ---- creation flags ------------------------------------------------------------------- */

static void creation_flags(virDomainPtr dm, virDomainSnapshotPtr run)
{
    virDomainSnapshotPtr snap;

    printf("== creation flags on a running domain\n");
    virDomainRevertToSnapshot(run, RUNNING);
    show_state(dm);
    make_drop(dm, "f-halt", NULL, HALT);
    show_state(dm);
    show_current(dm);
    INT(virDomainCreate(dm));
    make_drop(dm, "f-disk-only", NULL, DISK_ONLY);
    make_drop(dm, "f-no-metadata", NULL, NO_METADATA);
    make_drop(dm, "f-reuse-ext", NULL, REUSE_EXT);
    make_drop(dm, "f-reuse-ext-disk-only", NULL, REUSE_EXT | DISK_ONLY);
    make_drop(dm, "f-current", NULL, CURRENT);
    make_drop(dm, "f-live", NULL, LIVE);
    make_drop(dm, "f-quiesce", NULL, QUIESCE);
    make_drop(dm, "f-atomic", NULL, ATOMIC);
    make_drop(dm, "f-validate", NULL, VALIDATE);
    make_drop(dm, "f-validate-bad", "<bogus/>", VALIDATE);
    make_drop(dm, "f-all", NULL, LIVE | QUIESCE | ATOMIC | VALIDATE);
    show_state(dm);
    make_drop(dm, "f-all-halt", NULL, LIVE | QUIESCE | ATOMIC | VALIDATE | HALT);
    show_state(dm);

    printf("== creation flags on a shut-off domain\n");
    make_drop(dm, "g-halt", NULL, HALT);
    show_state(dm);
    make_drop(dm, "g-live", NULL, LIVE);
    make_drop(dm, "g-quiesce", NULL, QUIESCE);
    make_drop(dm, "g-disk-only", NULL, DISK_ONLY);
    show_current(dm);

    printf("== REDEFINE with CURRENT\n");
    snap = make(dm, "g-halt",
                "<state>shutoff</state><creationTime>7</creationTime>"
                "<domain type='test'><name>dm</name><uuid>" DM_UUID "</uuid><memory>1048576</memory>"
                "<os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='/dm.img'/>"
                "<target dev='vda' bus='virtio'/></disk></devices></domain>", REDEFINE);
    show_current(dm);
    INT(virDomainSnapshotIsCurrent(snap, 0));
    virDomainSnapshotFree(snap);
    snap = make(dm, "f-live",
                "<state>running</state><creationTime>8</creationTime>"
                "<domain type='test'><name>dm</name><uuid>" DM_UUID "</uuid><memory>1048576</memory>"
                "<os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='/dm.img'/>"
                "<target dev='vda' bus='virtio'/></disk></devices></domain>", REDEFINE | CURRENT);
    show_current(dm);
    INT(virDomainSnapshotIsCurrent(snap, 0));
    show_state(dm);
    /* A reverted redefinition brings the domain to the redefined state. */
    revert(snap, 0);
    show_state(dm);
    virDomainSnapshotFree(snap);
}

/* ---- undefine -------------------------------------------------------------------------- */

static void undefine(virConnectPtr conn, virDomainPtr dm)
{
    virDomainSnapshotPtr snap;
    virDomainPtr d;

    printf("== undefine a shut-off domain with snapshots\n");
    INT(virDomainDestroy(dm));
    show_state(dm);
    INT(virDomainSnapshotNum(dm, 0));
    domain_filters(conn);
    snap = virDomainSnapshotLookupByName(dm, "run", 0);
    INT(virDomainUndefine(dm));
    INT(virDomainUndefineFlags(dm, 0));
    INT(virDomainUndefineFlags(dm, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE));
    INT(virDomainUndefineFlags(dm, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA));
    INT(virDomainUndefineFlags(dm, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA));
    INT(virDomainUndefineFlags(dm, VIR_DOMAIN_UNDEFINE_NVRAM));
    INT(virDomainUndefineFlags(dm, 1U << 31));
    INT(virDomainSnapshotNum(dm, 0));
    INT(virDomainUndefineFlags(dm, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA));
    PTR(virDomainLookupByName(conn, "dm"));
    /* The handles of the domain and its snapshots remain, their calls fail. */
    INT(virDomainSnapshotNum(dm, 0));
    PTR(virDomainSnapshotLookupByName(dm, "run", 0));
    INT(virDomainHasCurrentSnapshot(dm, 0));
    PTR(virDomainSnapshotCurrent(dm, 0));
    PTR(virDomainSnapshotCreateXML(dm, "<domainsnapshot><name>x</name></domainsnapshot>", 0));
    PTR(virDomainSnapshotCreateXML(dm, "<domainsnapshot><name>x</name></domainsnapshot>", 1U << 31));
    FREESTR(virDomainSnapshotGetXMLDesc(snap, 0));
    INT(virDomainSnapshotNumChildren(snap, 0));
    INT(virDomainSnapshotListAllChildren(snap, NULL, 0));
    PTR(virDomainSnapshotGetParent(snap, 0));
    INT(virDomainSnapshotIsCurrent(snap, 0));
    INT(virDomainSnapshotHasMetadata(snap, 0));
    INT(virDomainRevertToSnapshot(snap, 0));
    INT(virDomainSnapshotDelete(snap, 0));
    STR(virDomainSnapshotGetName(snap));
    printf("GetDomain is the old handle: %d\n", virDomainSnapshotGetDomain(snap) == dm);
    /* Defined again, with the same uuid: no snapshots come back. */
    d = virDomainDefineXML(conn, dm_xml);
    PTR(d);
    INT(virDomainSnapshotNum(d, 0));
    INT(virDomainSnapshotIsCurrent(snap, 0));
    virDomainSnapshotFree(snap);

    printf("== undefine a shut-off domain without snapshots\n");
    INT(virDomainUndefineFlags(d, 0));
    virDomainFree(d);

    printf("== undefine a running domain with snapshots\n");
    d = virDomainDefineXML(conn, dm_xml);
    INT(virDomainCreate(d));
    make_drop(d, "u1", NULL, 0);
    make_drop(d, "u2", NULL, 0);
    INT(virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA));
    INT(virDomainUndefine(d));
    show_state(d);
    INT(virDomainSnapshotNum(d, 0));
    show_current(d);
    domain_filters(conn);
    /* Defined again while it runs: persistent again, snapshots intact. */
    virDomainFree(virDomainDefineXML(conn, dm_xml));
    show_state(d);
    INT(virDomainSnapshotNum(d, 0));
    INT(virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA));
    show_state(d);
    INT(virDomainSnapshotNum(d, 0));
    /* Destroying the transient domain takes its snapshots. */
    INT(virDomainDestroy(d));
    PTR(virDomainLookupByName(conn, "dm"));
    INT(virDomainSnapshotNum(d, 0));
    virDomainFree(d);
    domain_filters(conn);
}

/* A domain destroyed while undefined, with its snapshot handles still held. */
static void vanished(virConnectPtr conn)
{
    virDomainPtr gone;
    virDomainSnapshotPtr snap, *arr = NULL;
    char *names[4] = {NULL, NULL, NULL, NULL};

    printf("== a domain that vanished\n");
    gone = virDomainDefineXML(conn, gone_xml);
    INT(virDomainCreate(gone));
    snap = make(gone, "v1", NULL, 0);
    INT(virDomainUndefine(gone));
    INT(virDomainDestroy(gone));
    INT(virDomainSnapshotNum(gone, 0));
    INT(virDomainSnapshotListNames(gone, names, 4, 0));
    INT(virDomainListAllSnapshots(gone, &arr, 0));
    printf("    array %s\n", arr ? "non-NULL" : "NULL");
    INT(virDomainSnapshotListChildrenNames(snap, names, 4, 0));
    INT(virDomainSnapshotListAllChildren(snap, &arr, 0));
    printf("    array %s\n", arr ? "non-NULL" : "NULL");
    INT(virDomainRevertToSnapshot(snap, RUNNING));
    INT(virDomainSnapshotRef(snap));
    INT(virDomainSnapshotFree(snap));
    INT(virDomainSnapshotFree(snap));
    virDomainFree(gone);
}

/* ---- checkpoints and snapshots --------------------------------------------------------- */

static void with_checkpoints(virConnectPtr conn)
{
    virDomainPtr both;
    virDomainCheckpointPtr chk;
    virDomainSnapshotPtr snap;

    printf("== checkpoints and snapshots on one domain\n");
    both = virDomainDefineXML(conn, DOMAIN_XML("both", "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c50"));
    INT(virDomainCreate(both));
    chk = virDomainCheckpointCreateXML(both, "<domaincheckpoint><name>c1</name></domaincheckpoint>", 0);
    PTR(chk);
    /* A checkpoint blocks snapshots: plain, redefined, whatever the document. */
    PTR(virDomainSnapshotCreateXML(both, "<domainsnapshot><name>s1</name></domainsnapshot>", 0));
    PTR(virDomainSnapshotCreateXML(both, "<domainsnapshot><name>s1</name><state>running</state>"
                                         "<creationTime>1</creationTime></domainsnapshot>", REDEFINE));
    PTR(virDomainSnapshotCreateXML(both, "garbage", 0));
    PTR(virDomainSnapshotCreateXML(both, "garbage", HALT));
    PTR(virDomainSnapshotCreateXML(both, "garbage", DISK_ONLY));
    PTR(virDomainSnapshotCreateXML(both, "garbage", CURRENT));
    INT(virDomainSnapshotNum(both, 0));
    INT(virDomainListAllCheckpoints(both, NULL, 0));
    INT(virDomainHasCurrentSnapshot(both, 0));
    PTR(virDomainSnapshotCurrent(both, 0));
    domain_filters(conn);
    INT(virDomainCheckpointDelete(chk, 0));
    virDomainCheckpointFree(chk);

    /* A snapshot blocks checkpoints, even before the document is read. */
    snap = make(both, "s1", NULL, 0);
    PTR(virDomainCheckpointCreateXML(both, "<domaincheckpoint><name>c2</name></domaincheckpoint>", 0));
    PTR(virDomainCheckpointCreateXML(both, "<domaincheckpoint><name>c2</name><creationTime>1</creationTime>"
                                           "</domaincheckpoint>", VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE));
    PTR(virDomainCheckpointCreateXML(both, "garbage", 0));
    PTR(virDomainCheckpointCreateXML(both, "garbage", 1U << 31));
    INT(virDomainSnapshotNum(both, 0));
    INT(virDomainListAllCheckpoints(both, NULL, 0));
    PTR(virDomainCheckpointLookupByName(both, "c1", 0));
    domain_filters(conn);
    /* Shut off, the snapshot is reported before the inactive domain. */
    INT(virDomainDestroy(both));
    PTR(virDomainCheckpointCreateXML(both, "<domaincheckpoint><name>c2</name></domaincheckpoint>", 0));
    INT(virDomainCreate(both));
    INT(virDomainSnapshotDelete(snap, 0));
    virDomainSnapshotFree(snap);

    /* Without the snapshot, checkpoints work again; and the other way round. */
    chk = virDomainCheckpointCreateXML(both, "<domaincheckpoint><name>c3</name></domaincheckpoint>", 0);
    PTR(chk);
    STR(virDomainCheckpointGetName(chk));
    INT(virDomainCheckpointDelete(chk, 0));
    virDomainCheckpointFree(chk);
    make_drop(both, "s2", NULL, 0);
    INT(virDomainSnapshotNum(both, 0));
    INT(virDomainListAllCheckpoints(both, NULL, 0));
    INT(virDomainDestroy(both));
    INT(virDomainUndefineFlags(both, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA));
    virDomainFree(both);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr dm;
    virDomainSnapshotPtr off = NULL, run = NULL, pau = NULL;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    dm = virDomainDefineXML(conn, dm_xml);
    PTR(conn);
    PTR(dm);
    domain_filters(conn);

    three_states(dm, &off, &run, &pau);
    revert_matrix(dm, off, run, pau);
    transient(conn);
    creation_flags(dm, run);
    virDomainSnapshotFree(off);
    virDomainSnapshotFree(run);
    virDomainSnapshotFree(pau);
    undefine(conn, dm);
    vanished(conn);
    with_checkpoints(conn);

    domain_filters(conn);
    virDomainFree(dm);
    INT(virConnectClose(conn));
    return 0;
}
