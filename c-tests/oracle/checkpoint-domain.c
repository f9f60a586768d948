/*
 * checkpoint-domain.c: checkpoints and the life cycle of their domain on test:///default.
 *
 * Covered: a domain that is shut off (create and redefine refused, SIZE refused, reading
 * and deleting still allowed), the HAS_CHECKPOINT / NO_CHECKPOINT filters of
 * virConnectListAllDomains, undefining domains that have checkpoints (running: the domain
 * turns transient and keeps them; shut off: it goes away with them), the
 * CHECKPOINTS_METADATA undefine flag the test driver does not know, and handles whose
 * domain has vanished (every checkpoint call on them fails with "no domain with matching
 * uuid"), including after a new domain with the same uuid appears.
 *
 * Only functions that virbackup exports are called (no suspend, no snapshots).
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
#define NO_DOMAIN VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN
#define SIZE VIR_DOMAIN_CHECKPOINT_XML_SIZE
#define TOPO VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL
#define HAS VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT
#define NO VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT

#define TR_UUID "11111111-2222-3333-4444-555555555555"

static const char off_xml[] =
    "<domain type='test'><name>off</name><uuid>22222222-3333-4444-5555-666666666666</uuid>"
    "<memory>1048576</memory><os><type>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='/off.img'/><target dev='vda' bus='virtio'/></disk>"
    "</devices></domain>";

static const char tr_xml[] =
    "<domain type='test'><name>tr</name><uuid>" TR_UUID "</uuid>"
    "<memory>1048576</memory><os><type>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='/tr.img'/><target dev='vda' bus='virtio'/></disk>"
    "<disk type='file' device='disk'><source file='/tr2.img'/><target dev='vdb' bus='virtio'/></disk>"
    "</devices></domain>";

static const char keep_xml[] =
    "<domain type='test'><name>keep</name><uuid>33333333-4444-5555-6666-777777777777</uuid>"
    "<memory>1048576</memory><os><type>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='/keep.img'/><target dev='vdk' bus='virtio'/></disk>"
    "</devices></domain>";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* virConnectListAllDomains with flags; names sorted (the order is not part of the test). */
static void list_domains(virConnectPtr conn, unsigned int flags)
{
    virDomainPtr *doms = NULL;
    const char **names;
    int n = virConnectListAllDomains(conn, &doms, flags);
    int i;

    printf("virConnectListAllDomains(conn, &doms, 0x%x) = %d\n", flags, n);
    show_error();
    if (n > 0 && doms) {
        names = calloc((size_t)n, sizeof(*names));
        for (i = 0; i < n; i++)
            names[i] = virDomainGetName(doms[i]);
        qsort(names, (size_t)n, sizeof(*names), cmp_str);
        printf("    domains:");
        for (i = 0; i < n; i++)
            printf(" %s", s(names[i]));
        printf("\n");
        free(names);
    }
    for (i = 0; doms && i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
    n = virConnectListAllDomains(conn, NULL, flags);
    printf("virConnectListAllDomains(conn, NULL, 0x%x) = %d\n", flags, n);
    show_error();
}

static void domain_filters(virConnectPtr conn)
{
    printf("== listing domains by checkpoints\n");
    list_domains(conn, 0);
    list_domains(conn, HAS);
    list_domains(conn, NO);
    list_domains(conn, HAS | NO);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_INACTIVE);
    list_domains(conn, NO | VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    list_domains(conn, NO | VIR_CONNECT_LIST_DOMAINS_INACTIVE);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_PERSISTENT);
    list_domains(conn, HAS | VIR_CONNECT_LIST_DOMAINS_TRANSIENT);
}

/* Everything a shut-off domain does and does not allow. */
static void inactive(virConnectPtr conn, virDomainPtr test)
{
    virDomainPtr off;
    virDomainCheckpointPtr c1, c2, *arr;

    printf("== a shut-off domain\n");
    off = virDomainDefineXML(conn, off_xml);
    PTR(off);
    INT(virDomainCreate(off));
    create_named(off, "o1");
    create_named(off, "o2");
    create_named(off, "o3");
    domain_filters(conn);
    INT(virDomainDestroy(off));
    INT(virDomainIsActive(off));
    domain_filters(conn);

    PTR(virDomainCheckpointCreateXML(off, "<domaincheckpoint><name>x</name></domaincheckpoint>", 0));
    PTR(virDomainCheckpointCreateXML(off, "<domaincheckpoint/>", VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE));
    PTR(virDomainCheckpointCreateXML(off, "<domaincheckpoint><name>x</name><creationTime>1</creationTime></domaincheckpoint>",
                                     REDEFINE));
    /* The document is read only after the running check, the flags before it. */
    PTR(virDomainCheckpointCreateXML(off, "garbage", 0));
    PTR(virDomainCheckpointCreateXML(off, "garbage", REDEFINE));
    PTR(virDomainCheckpointCreateXML(off, "garbage", 8));
    PTR(virDomainCheckpointCreateXML(off, "garbage", VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE | REDEFINE));
    PTR(virDomainCheckpointCreateXML(off, NULL, 0));

    /* Reading works. */
    list_domain(off, 0);
    list_domain(off, TOPO);
    list_domain(off, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    list_domain(off, VIR_DOMAIN_CHECKPOINT_LIST_LEAVES);
    c1 = virDomainCheckpointLookupByName(off, "o2", 0);
    PTR(c1);
    list_children(c1, 0);
    list_children(c1, VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS);
    c2 = virDomainCheckpointGetParent(c1, 0);
    PTR(c2);
    STR(virDomainCheckpointGetName(c2));
    XML(virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN));
    XML(virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN | VIR_DOMAIN_CHECKPOINT_XML_SECURE));
    XML(virDomainCheckpointGetXMLDesc(c1, SIZE));
    XML(virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN | SIZE));
    {
        char *full = virDomainCheckpointGetXMLDesc(c1, 0);
        printf("full document while shut off: %s\n", full ? "ok" : "NULL");
        show_error();
        free(full);
    }
    PTR(virDomainCheckpointLookupByName(off, "nope", 0));

    /* Deleting works, with any flags. */
    INT(virDomainCheckpointDelete(c1, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY));
    list_domain(off, TOPO);
    INT(virDomainCheckpointDelete(c2, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY));
    list_domain(off, TOPO);
    INT(virDomainCheckpointDelete(c2, 0));
    list_domain(off, TOPO);
    LIST(virDomainListAllCheckpoints(off, &arr, 0), arr, 1);
    virDomainCheckpointFree(c1);
    virDomainCheckpointFree(c2);

    /* Started again, checkpoints can be made again; the old current is gone. */
    INT(virDomainCreate(off));
    create_named(off, "o4");
    show_parent(off, "o4");
    /* A shutdown stops it as well as a destroy. */
    INT(virDomainShutdown(off));
    INT(virDomainIsActive(off));
    PTR(virDomainCheckpointCreateXML(off, "<domaincheckpoint><name>o5</name></domaincheckpoint>", 0));
    INT(virDomainCreate(off));
    create_named(off, "o5");
    show_parent(off, "o5");
    delete_named(off, "o5", 0);
    INT(virDomainDestroy(off));

    /* Undefining a shut-off domain with checkpoints: allowed, and they go with it. */
    printf("== undefine a shut-off domain with checkpoints\n");
    c1 = virDomainCheckpointLookupByName(off, "o4", 0);
    INT(virDomainUndefineFlags(off, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA));
    INT(virDomainUndefineFlags(off, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA));
    INT(virDomainUndefineFlags(off, 1U << 31));
    INT(virDomainUndefineFlags(off, VIR_DOMAIN_UNDEFINE_NVRAM));
    list_domain(off, 0);
    INT(virDomainUndefineFlags(off, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA));
    PTR(virDomainLookupByName(conn, "off"));
    list_domain(off, 0);
    XML(virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN));
    STR(virDomainCheckpointGetName(c1));
    virDomainCheckpointFree(c1);
    virDomainFree(off);
    /* Defined again: no checkpoints survive. */
    off = virDomainDefineXML(conn, off_xml);
    PTR(off);
    list_domain(off, 0);
    INT(virDomainUndefine(off));
    virDomainFree(off);

    /* The default domain, destroyed. */
    printf("== the default domain shut off\n");
    create_named(test, "t1");
    INT(virDomainDestroy(test));
    PTR(virDomainCheckpointCreateXML(test, "<domaincheckpoint><name>t2</name></domaincheckpoint>", 0));
    PTR(virDomainCheckpointCreateXML(test, "<domaincheckpoint><name>t2</name><creationTime>1</creationTime></domaincheckpoint>",
                                     REDEFINE));
    list_domain(test, 0);
    c1 = virDomainCheckpointLookupByName(test, "t1", 0);
    XML(virDomainCheckpointGetXMLDesc(c1, SIZE));
    XML(virDomainCheckpointGetXMLDesc(c1, 0));
    INT(virDomainCreate(test));
    XML(virDomainCheckpointGetXMLDesc(c1, SIZE));
    create_named(test, "t2");
    show_parent(test, "t2");
    INT(virDomainCheckpointDelete(c1, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN));
    virDomainCheckpointFree(c1);
    list_domain(test, 0);
}

/* Undefining a running domain keeps its checkpoints; it turns transient. */
static void undefine_running(virConnectPtr conn)
{
    virDomainPtr keep, again;
    virDomainCheckpointPtr c;

    printf("== undefine a running domain with checkpoints\n");
    keep = virDomainDefineXML(conn, keep_xml);
    INT(virDomainCreate(keep));
    create_named(keep, "k1");
    create_named(keep, "k2");
    INT(virDomainUndefineFlags(keep, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA));
    INT(virDomainIsPersistent(keep));
    INT(virDomainUndefine(keep));
    INT(virDomainIsPersistent(keep));
    INT(virDomainIsActive(keep));
    list_domain(keep, TOPO);
    domain_filters(conn);
    again = virDomainLookupByName(conn, "keep");
    PTR(again);
    list_domain(again, TOPO);
    create_named(again, "k3");
    show_parent(again, "k3");
    c = virDomainCheckpointLookupByName(keep, "k3", 0);
    XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
    /* Defining it again while it runs makes it persistent, checkpoints intact. */
    virDomainFree(virDomainDefineXML(conn, keep_xml));
    INT(virDomainIsPersistent(keep));
    list_domain(keep, TOPO);
    INT(virDomainUndefine(keep));
    /* A transient domain disappears when destroyed, and takes its checkpoints. */
    INT(virDomainDestroy(keep));
    PTR(virDomainLookupByName(conn, "keep"));
    list_domain(keep, 0);
    FREESTR(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
    virDomainCheckpointFree(c);
    virDomainFree(again);
    virDomainFree(keep);
    domain_filters(conn);
}

/* Every checkpoint call on handles whose domain no longer exists. */
static void vanished_calls(virDomainPtr dom, virDomainCheckpointPtr chk, virDomainCheckpointPtr child)
{
    virDomainCheckpointPtr *arr;

    PTR(virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>x</name></domaincheckpoint>", 0));
    PTR(virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime></domaincheckpoint>",
                                     REDEFINE));
    PTR(virDomainCheckpointCreateXML(dom, "garbage", 0));
    PTR(virDomainCheckpointCreateXML(dom, "<domaincheckpoint/>", 8));
    PTR(virDomainCheckpointCreateXML(dom, NULL, 0));
    LIST(virDomainListAllCheckpoints(dom, &arr, 0), arr, 1);
    LIST(virDomainListAllCheckpoints(dom, &arr, TOPO), arr, 0);
    INT(virDomainListAllCheckpoints(dom, NULL, 0));
    INT(virDomainListAllCheckpoints(dom, NULL, 0x10));
    PTR(virDomainCheckpointLookupByName(dom, "tr1", 0));
    PTR(virDomainCheckpointLookupByName(dom, "tr1", 1));
    PTR(virDomainCheckpointLookupByName(dom, NULL, 0));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, 0));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, NO_DOMAIN));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, SIZE));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, 8));
    LIST(virDomainCheckpointListAllChildren(chk, &arr, 0), arr, 0);
    INT(virDomainCheckpointListAllChildren(chk, NULL, VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS));
    INT(virDomainCheckpointListAllChildren(chk, NULL, 0x10));
    PTR(virDomainCheckpointGetParent(child, 0));
    PTR(virDomainCheckpointGetParent(child, 1));
    PTR(virDomainCheckpointGetParent(chk, 0));
    INT(virDomainCheckpointDelete(child, 0));
    INT(virDomainCheckpointDelete(chk, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN));
    INT(virDomainCheckpointDelete(chk, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN | VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY));
    INT(virDomainCheckpointDelete(chk, 8));
    /* Handle-only calls still work. */
    STR(virDomainCheckpointGetName(chk));
    STR(virDomainCheckpointGetName(child));
    printf("GetDomain is the old domain handle: %d\n", virDomainCheckpointGetDomain(chk) == dom);
    show_error();
    PTR(virDomainCheckpointGetConnect(chk));
    INT(virDomainCheckpointRef(chk));
    INT(virDomainCheckpointFree(chk));
    STR(virDomainGetName(dom));
    INT(virDomainIsActive(dom));
}

static void vanished(virConnectPtr conn)
{
    virDomainPtr tr, tr2;
    virDomainCheckpointPtr chk, child;

    printf("== a domain that vanished\n");
    tr = virDomainDefineXML(conn, tr_xml);
    PTR(tr);
    INT(virDomainCreate(tr));
    create_named(tr, "tr1");
    create_named(tr, "tr2");
    chk = virDomainCheckpointLookupByName(tr, "tr1", 0);
    child = virDomainCheckpointLookupByName(tr, "tr2", 0);
    PTR(chk);
    PTR(child);
    XML(virDomainCheckpointGetXMLDesc(child, NO_DOMAIN));
    INT(virDomainDestroy(tr));
    INT(virDomainUndefine(tr));
    PTR(virDomainLookupByUUIDString(conn, TR_UUID));
    vanished_calls(tr, chk, child);

    /* A new domain with the same uuid: the old handles find it, but not the checkpoints. */
    printf("== the same uuid defined again\n");
    tr2 = virDomainDefineXML(conn, tr_xml);
    PTR(tr2);
    list_domain(tr, 0);
    PTR(virDomainCheckpointLookupByName(tr, "tr1", 0));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, NO_DOMAIN));
    PTR(virDomainCheckpointGetParent(child, 0));
    INT(virDomainCheckpointDelete(chk, 0));
    PTR(virDomainCheckpointCreateXML(tr, "<domaincheckpoint><name>tr1</name></domaincheckpoint>", 0));
    INT(virDomainCreate(tr2));
    /* Made through the new handle, seen through the old ones. */
    create_named(tr2, "tr1");
    XML(virDomainCheckpointGetXMLDesc(chk, NO_DOMAIN));
    list_domain(tr, 0);
    create_named(tr, "tr2");
    show_parent(tr2, "tr2");
    XML(virDomainCheckpointGetXMLDesc(child, NO_DOMAIN));
    INT(virDomainCheckpointDelete(chk, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN));
    list_domain(tr2, 0);
    INT(virDomainDestroy(tr2));
    INT(virDomainUndefine(tr2));

    INT(virDomainCheckpointFree(child));
    INT(virDomainCheckpointFree(chk));
    INT(virDomainFree(tr2));
    INT(virDomainFree(tr));
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr test;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    test = virDomainLookupByName(conn, "test");
    PTR(conn);
    PTR(test);

    inactive(conn, test);
    undefine_running(conn);
    vanished(conn);
    domain_filters(conn);

    virDomainFree(test);
    INT(virConnectClose(conn));
    return 0;
}
