/*
 * checkpoint-api.c: argument, handle and flag checks of the twelve checkpoint entry points
 * on test:///default.
 *
 * Covered: NULL and wrongly typed domain/checkpoint pointers, NULL strings, read-only
 * connections, mutually exclusive and dependent flags, unknown flag bits for every
 * function, the order in which these checks fire, list out-parameters being reset even on
 * failure, the error being cleared by every call, handles outliving their checkpoint and
 * keeping their domain and connection alive, reference counting, and list arrays (trailing
 * NULL slot, empty lists, count-only calls).
 *
 * Built against the system's libvirt; run with it and with virbackup's library, and the
 * two outputs must match (see run-oracle.py).
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
#define QUIESCE VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE
#define VALIDATE VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE
#define SECURE VIR_DOMAIN_CHECKPOINT_XML_SECURE
#define NO_DOMAIN VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN
#define CHILDREN VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN
#define CHILDREN_ONLY VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY
#define METADATA_ONLY VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY
#define HIGH (1U << 31)

static const char xml_a[] = "<domaincheckpoint><name>a</name></domaincheckpoint>";

/* NULL pointers and pointers of another class, for every function. */
static void invalid_pointers(virConnectPtr conn, virDomainPtr dom, virDomainCheckpointPtr chk)
{
    virDomainCheckpointPtr *arr;
    virDomainCheckpointPtr bad_conn = (virDomainCheckpointPtr)(void *)conn;
    virDomainCheckpointPtr bad_dom = (virDomainCheckpointPtr)(void *)dom;
    virDomainPtr conn_as_dom = (virDomainPtr)(void *)conn;
    virDomainPtr chk_as_dom = (virDomainPtr)(void *)chk;

    printf("== NULL domain\n");
    PTR(virDomainCheckpointCreateXML(NULL, xml_a, 0));
    PTR(virDomainCheckpointCreateXML(NULL, NULL, 0));
    PTR(virDomainCheckpointCreateXML(NULL, xml_a, HIGH));
    LIST(virDomainListAllCheckpoints(NULL, &arr, 0), arr, 1);
    LIST(virDomainListAllCheckpoints(NULL, &arr, HIGH), arr, 1);
    INT(virDomainListAllCheckpoints(NULL, NULL, 0));
    PTR(virDomainCheckpointLookupByName(NULL, "a", 0));
    PTR(virDomainCheckpointLookupByName(NULL, NULL, HIGH));

    printf("== a connection or a checkpoint passed as a domain\n");
    PTR(virDomainCheckpointCreateXML(conn_as_dom, xml_a, 0));
    LIST(virDomainListAllCheckpoints(conn_as_dom, &arr, 0), arr, 1);
    PTR(virDomainCheckpointLookupByName(conn_as_dom, "a", 0));
    PTR(virDomainCheckpointCreateXML(chk_as_dom, xml_a, 0));
    LIST(virDomainListAllCheckpoints(chk_as_dom, &arr, 0), arr, 1);
    PTR(virDomainCheckpointLookupByName(chk_as_dom, "a", 0));

    printf("== NULL checkpoint\n");
    STR(virDomainCheckpointGetName(NULL));
    PTR(virDomainCheckpointGetDomain(NULL));
    PTR(virDomainCheckpointGetConnect(NULL));
    FREESTR(virDomainCheckpointGetXMLDesc(NULL, 0));
    FREESTR(virDomainCheckpointGetXMLDesc(NULL, HIGH));
    LIST(virDomainCheckpointListAllChildren(NULL, &arr, 0), arr, 0);
    LIST(virDomainCheckpointListAllChildren(NULL, &arr, HIGH), arr, 0);
    INT(virDomainCheckpointListAllChildren(NULL, NULL, 0));
    PTR(virDomainCheckpointGetParent(NULL, 0));
    PTR(virDomainCheckpointGetParent(NULL, HIGH));
    INT(virDomainCheckpointDelete(NULL, 0));
    INT(virDomainCheckpointDelete(NULL, CHILDREN | CHILDREN_ONLY));
    INT(virDomainCheckpointRef(NULL));
    INT(virDomainCheckpointFree(NULL));

    printf("== a connection passed as a checkpoint\n");
    STR(virDomainCheckpointGetName(bad_conn));
    PTR(virDomainCheckpointGetDomain(bad_conn));
    PTR(virDomainCheckpointGetConnect(bad_conn));
    FREESTR(virDomainCheckpointGetXMLDesc(bad_conn, 0));
    LIST(virDomainCheckpointListAllChildren(bad_conn, &arr, 0), arr, 0);
    PTR(virDomainCheckpointGetParent(bad_conn, 0));
    INT(virDomainCheckpointDelete(bad_conn, 0));
    INT(virDomainCheckpointRef(bad_conn));
    INT(virDomainCheckpointFree(bad_conn));

    printf("== a domain passed as a checkpoint\n");
    STR(virDomainCheckpointGetName(bad_dom));
    PTR(virDomainCheckpointGetDomain(bad_dom));
    PTR(virDomainCheckpointGetConnect(bad_dom));
    FREESTR(virDomainCheckpointGetXMLDesc(bad_dom, 0));
    LIST(virDomainCheckpointListAllChildren(bad_dom, &arr, 0), arr, 0);
    PTR(virDomainCheckpointGetParent(bad_dom, 0));
    INT(virDomainCheckpointDelete(bad_dom, 0));
    INT(virDomainCheckpointRef(bad_dom));
    INT(virDomainCheckpointFree(bad_dom));
}

/* NULL strings and the public-layer flag rules of CreateXML and Delete. */
static void arguments(virDomainPtr dom, virDomainCheckpointPtr chk)
{
    printf("== NULL and empty strings\n");
    PTR(virDomainCheckpointCreateXML(dom, NULL, 0));
    PTR(virDomainCheckpointCreateXML(dom, NULL, HIGH));
    PTR(virDomainCheckpointCreateXML(dom, NULL, REDEFINE | QUIESCE));
    PTR(virDomainCheckpointLookupByName(dom, NULL, 0));
    PTR(virDomainCheckpointLookupByName(dom, NULL, HIGH));
    PTR(virDomainCheckpointLookupByName(dom, "", 0));
    PTR(virDomainCheckpointLookupByName(dom, "nope", 0));

    printf("== exclusive and dependent flags\n");
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | QUIESCE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | QUIESCE | VALIDATE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | QUIESCE | HIGH));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, VALIDATE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, VALIDATE | QUIESCE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, VALIDATE | HIGH));
    /* With REDEFINE present, VALIDATE reaches the driver, which does not support it. */
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | VALIDATE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | VALIDATE | 8));
    INT(virDomainCheckpointDelete(chk, CHILDREN | CHILDREN_ONLY));
    INT(virDomainCheckpointDelete(chk, CHILDREN | CHILDREN_ONLY | METADATA_ONLY));
    INT(virDomainCheckpointDelete(chk, CHILDREN | CHILDREN_ONLY | HIGH));
}

/* Unknown flag bits: the lowest unsupported bit, the top bit, and mixtures with valid bits. */
static void unknown_flags(virDomainPtr dom, virDomainCheckpointPtr chk)
{
    virDomainCheckpointPtr *arr;
    unsigned int f;

    printf("== unknown flags\n");
    PTR(virDomainCheckpointCreateXML(dom, xml_a, 8));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, HIGH));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, QUIESCE | 8 | 16 | HIGH));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | 0x100));
    PTR(virDomainCheckpointCreateXML(dom, "not xml", 8));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, 8));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, HIGH));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, SECURE | NO_DOMAIN | 8 | 0x40));
    LIST(virDomainListAllCheckpoints(dom, &arr, 0x10), arr, 1);
    LIST(virDomainListAllCheckpoints(dom, &arr, 0x20), arr, 1);
    LIST(virDomainListAllCheckpoints(dom, &arr, 0x30), arr, 1);
    LIST(virDomainListAllCheckpoints(dom, &arr, HIGH), arr, 1);
    LIST(virDomainListAllCheckpoints(dom, &arr, 0xff), arr, 1);
    INT(virDomainListAllCheckpoints(dom, NULL, 0x10));
    INT(virDomainListAllCheckpoints(dom, NULL, HIGH));
    LIST(virDomainCheckpointListAllChildren(chk, &arr, 0x10), arr, 0);
    LIST(virDomainCheckpointListAllChildren(chk, &arr, HIGH), arr, 0);
    LIST(virDomainCheckpointListAllChildren(chk, &arr, 0x1f), arr, 0);
    INT(virDomainCheckpointListAllChildren(chk, NULL, 0x10));
    PTR(virDomainCheckpointLookupByName(dom, "a", 1));
    PTR(virDomainCheckpointLookupByName(dom, "a", HIGH));
    PTR(virDomainCheckpointLookupByName(dom, "nope", 1));
    PTR(virDomainCheckpointGetParent(chk, 1));
    PTR(virDomainCheckpointGetParent(chk, HIGH));
    INT(virDomainCheckpointDelete(chk, 8));
    INT(virDomainCheckpointDelete(chk, HIGH));
    INT(virDomainCheckpointDelete(chk, CHILDREN | METADATA_ONLY | 8));

    /* Each single bit, for every function that takes flags (valid ones are undone). */
    printf("== each single flag bit\n");
    for (f = 0; f < 32; f++) {
        unsigned int bit = 1U << f;
        virDomainCheckpointPtr c;
        char *x;
        int n;

        c = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>bit</name></domaincheckpoint>",
                                         bit | (bit == VALIDATE ? REDEFINE : 0));
        printf("bit %u: create %s\n", f, c ? "ok" : "failed");
        show_error();
        if (c) {
            virDomainCheckpointDelete(c, 0);
            virDomainCheckpointFree(c);
        }
        x = virDomainCheckpointGetXMLDesc(chk, bit);
        printf("bit %u: getxml %s\n", f, x ? "ok" : "failed");
        show_error();
        free(x);
        n = virDomainListAllCheckpoints(dom, NULL, bit);
        printf("bit %u: list = %d\n", f, n);
        show_error();
        n = virDomainCheckpointListAllChildren(chk, NULL, bit);
        printf("bit %u: children = %d\n", f, n);
        show_error();
        c = virDomainCheckpointLookupByName(dom, "a", bit);
        printf("bit %u: lookup %s\n", f, c ? "ok" : "failed");
        show_error();
        if (c)
            virDomainCheckpointFree(c);
        c = virDomainCheckpointGetParent(chk, bit);
        printf("bit %u: parent %s\n", f, c ? "ok" : "failed");
        show_error();
        if (c)
            virDomainCheckpointFree(c);
        /* Delete: valid bits are tried on a throw-away checkpoint. */
        c = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>victim</name></domaincheckpoint>", 0);
        n = virDomainCheckpointDelete(c, bit);
        printf("bit %u: delete = %d\n", f, n);
        show_error();
        /* CHILDREN_ONLY and failed calls leave it in place. */
        virDomainCheckpointDelete(c, 0);
        virDomainCheckpointFree(c);
    }
}

/* A read-only connection to the same in-process driver. */
static void read_only(virDomainPtr rw_dom)
{
    virConnectPtr ro = virConnectOpenReadOnly("test:///default");
    virDomainPtr dom = virDomainLookupByName(ro, "test");
    virDomainCheckpointPtr chk, *arr;

    printf("== read-only connection\n");
    PTR(ro);
    PTR(dom);
    PTR(virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>ro</name></domaincheckpoint>", 0));
    PTR(virDomainCheckpointCreateXML(dom, NULL, 0));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | QUIESCE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, VALIDATE));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, HIGH));
    /* The checkpoints made through the read-write connection are visible here. */
    list_domain(dom, 0);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    chk = virDomainCheckpointLookupByName(dom, "b", 0);
    PTR(chk);
    STR(virDomainCheckpointGetName(chk));
    XML(virDomainCheckpointGetXMLDesc(chk, NO_DOMAIN));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, SECURE));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, SECURE | NO_DOMAIN));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, SECURE | HIGH));
    FREESTR(virDomainCheckpointGetXMLDesc(chk, HIGH));
    {
        virDomainCheckpointPtr p = virDomainCheckpointGetParent(chk, 0);
        PTR(p);
        STR(virDomainCheckpointGetName(p));
        list_children(p, 0);
        virDomainCheckpointFree(p);
    }
    LIST(virDomainCheckpointListAllChildren(chk, &arr, 0), arr, 0);
    INT(virDomainCheckpointDelete(chk, 0));
    INT(virDomainCheckpointDelete(chk, CHILDREN | CHILDREN_ONLY));
    INT(virDomainCheckpointDelete(chk, HIGH));
    INT(virDomainCheckpointRef(chk));
    INT(virDomainCheckpointFree(chk));
    /* Still there: */
    list_domain(rw_dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    INT(virDomainCheckpointFree(chk));
    virDomainFree(dom);
    INT(virConnectClose(ro));
}

/* Every entry point resets the thread's error first, including the plain getters. */
static void error_clearing(virDomainPtr dom, virDomainCheckpointPtr chk)
{
    virDomainCheckpointPtr c;
    virDomainCheckpointPtr *arr;
    char *x;

    printf("== every call clears the previous error\n");
#define FAIL_FIRST() virDomainCheckpointLookupByName(dom, "nope", 0)
#define AFTER(call)                                                     \
    do {                                                                \
        FAIL_FIRST();                                                   \
        printf("before %s: code=%d\n", #call, virGetLastErrorCode());   \
        call;                                                           \
        printf("after: code=%d\n", virGetLastErrorCode());              \
    } while (0)
    AFTER(virDomainCheckpointGetName(chk));
    AFTER(virDomainCheckpointGetDomain(chk));
    AFTER(virDomainCheckpointGetConnect(chk));
    AFTER(virDomainCheckpointRef(chk));
    AFTER(virDomainCheckpointFree(chk));
    AFTER(x = virDomainCheckpointGetXMLDesc(chk, NO_DOMAIN));
    free(x);
    AFTER(virDomainListAllCheckpoints(dom, NULL, 0));
    AFTER(virDomainListAllCheckpoints(dom, &arr, 0));
    print_names(virDomainListAllCheckpoints(dom, NULL, 0), arr, 1);
    AFTER(virDomainCheckpointListAllChildren(chk, NULL, 0));
    AFTER(c = virDomainCheckpointLookupByName(dom, "a", 0));
    virDomainCheckpointFree(c);
    AFTER(c = virDomainCheckpointGetParent(chk, 0));
    virDomainCheckpointFree(c);
    AFTER(c = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>clr</name></domaincheckpoint>", 0));
    AFTER(virDomainCheckpointDelete(c, 0));
    virDomainCheckpointFree(c);
    /* A failing call replaces the old error with its own. */
    FAIL_FIRST();
    INT(virDomainCheckpointFree(NULL));
    /* The error API itself leaves the error alone. */
    FAIL_FIRST();
    virGetLastError();
    virGetLastErrorMessage();
    printf("error API keeps the error: code=%d\n", virGetLastErrorCode());
#undef AFTER
#undef FAIL_FIRST
}

static int conn_calls, global_calls, last_code;

static void conn_handler(void *data, virErrorPtr err)
{
    (void)data;
    conn_calls++;
    last_code = err ? err->code : -1;
}

static void global_handler(void *data, virErrorPtr err)
{
    (void)data;
    global_calls++;
    last_code = err ? err->code : -1;
}

/*
 * Where a failure is dispatched: errors with a usable connection go to the connection's
 * handler and are copied into its last error; errors about an invalid pointer have no
 * connection and go to the global handler.
 */
static void dispatch(virConnectPtr conn, virDomainPtr dom, virDomainCheckpointPtr chk)
{
    virErrorPtr ce;

    printf("== error dispatch\n");
    virConnResetLastError(conn);
    virSetErrorFunc(NULL, global_handler);
    virConnSetErrorFunc(conn, NULL, conn_handler);
#define WHERE(call)                                                                     \
    do {                                                                                \
        conn_calls = global_calls = 0;                                                  \
        last_code = 0;                                                                  \
        call;                                                                           \
        printf("%s: conn handler %d, global handler %d, code %d\n", #call, conn_calls,  \
               global_calls, last_code);                                                \
    } while (0)
    WHERE(virDomainCheckpointLookupByName(dom, "nope", 0));
    ce = virConnGetLastError(conn);
    printf("connection error: code=%d message=[%s]\n", ce ? ce->code : 0, ce ? s(ce->message) : "");
    WHERE(virDomainCheckpointLookupByName(dom, "a", 4));
    WHERE(virDomainCheckpointLookupByName(dom, NULL, 0));
    WHERE(virDomainCheckpointCreateXML(dom, "garbage", 0));
    WHERE(virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>a</name></domaincheckpoint>", 0));
    WHERE(virDomainCheckpointCreateXML(dom, "<domaincheckpoint/>", VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE));
    WHERE(virDomainCheckpointDelete(chk, CHILDREN | CHILDREN_ONLY));
    WHERE(virDomainCheckpointGetXMLDesc(chk, 8));
    WHERE(virDomainCheckpointListAllChildren(chk, NULL, 0x10));
    WHERE(virDomainListAllCheckpoints(dom, NULL, 0x10));
    WHERE(virDomainCheckpointGetParent(chk, 1));
    ce = virConnGetLastError(conn);
    printf("connection error: code=%d message=[%s]\n", ce ? ce->code : 0, ce ? s(ce->message) : "");
    /* No connection to dispatch to: the global handler, and the connection error stays. */
    WHERE(virDomainCheckpointFree(NULL));
    WHERE(virDomainCheckpointGetName(NULL));
    WHERE(virDomainCheckpointGetXMLDesc((virDomainCheckpointPtr)(void *)conn, 0));
    WHERE(virDomainCheckpointCreateXML(NULL, "<domaincheckpoint/>", 0));
    WHERE(virDomainListAllCheckpoints(NULL, NULL, 0));
    ce = virConnGetLastError(conn);
    printf("connection error: code=%d message=[%s]\n", ce ? ce->code : 0, ce ? s(ce->message) : "");
    /* Successful calls call no handler. */
    WHERE(virDomainCheckpointGetName(chk));
    WHERE(virDomainListAllCheckpoints(dom, NULL, 0));
#undef WHERE
    virConnSetErrorFunc(conn, NULL, NULL);
    virSetErrorFunc(NULL, quiet_handler);
    virConnResetLastError(conn);
}

/* Handles: new on every call, alive after deletion, keeping domain and connection. */
static void handles(virConnectPtr conn, virDomainPtr dom)
{
    virDomainCheckpointPtr c1, c2, c3, gone, *arr;
    virConnectPtr c;
    virDomainPtr d;

    printf("== distinct handles\n");
    c1 = virDomainCheckpointLookupByName(dom, "a", 0);
    c2 = virDomainCheckpointLookupByName(dom, "a", 0);
    PTR(c1);
    PTR(c2);
    printf("lookup twice gives distinct handles: %d\n", c1 != c2);
    c3 = virDomainCheckpointLookupByName(dom, "b", 0);
    gone = c3;
    c3 = virDomainCheckpointGetParent(gone, 0);
    virDomainCheckpointFree(gone);
    printf("GetParent gives another handle: %d %d\n", c3 != c1, c3 != c2);
    printf("GetDomain is the domain used for the lookup: %d\n", virDomainCheckpointGetDomain(c1) == dom);
    printf("GetConnect is the domain's connection: %d\n", virDomainCheckpointGetConnect(c1) == conn);
    STR(virDomainCheckpointGetName(c1));
    printf("GetName of two handles: distinct strings %d, equal %d\n",
           virDomainCheckpointGetName(c1) != virDomainCheckpointGetName(c2),
           strcmp(s(virDomainCheckpointGetName(c1)), s(virDomainCheckpointGetName(c2))) == 0);
    {
        int n = virDomainListAllCheckpoints(dom, &arr, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
        int i, same = 0;
        for (i = 0; arr && i < n; i++)
            same += arr[i] == c1 || arr[i] == c2;
        printf("list handles are new too: roots=%d reused=%d\n", n, same);
        print_names(n, arr, 0);
    }

    printf("== reference counting\n");
    INT(virDomainCheckpointRef(c1));
    INT(virDomainCheckpointRef(c1));
    INT(virDomainCheckpointFree(c1));
    INT(virDomainCheckpointFree(c1));
    STR(virDomainCheckpointGetName(c1));
    INT(virDomainCheckpointFree(c1));
    INT(virDomainCheckpointFree(c2));
    INT(virDomainCheckpointFree(c3));
    INT(virDomainCheckpointFree(NULL));

    printf("== a handle outlives its checkpoint\n");
    gone = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>gone</name></domaincheckpoint>", 0);
    PTR(gone);
    c1 = virDomainCheckpointLookupByName(dom, "gone", 0);
    INT(virDomainCheckpointDelete(gone, 0));
    STR(virDomainCheckpointGetName(gone));
    printf("GetDomain still the domain: %d\n", virDomainCheckpointGetDomain(gone) == dom);
    show_error();
    printf("GetConnect still the connection: %d\n", virDomainCheckpointGetConnect(gone) == conn);
    show_error();
    FREESTR(virDomainCheckpointGetXMLDesc(gone, 0));
    FREESTR(virDomainCheckpointGetXMLDesc(gone, SECURE | NO_DOMAIN));
    LIST(virDomainCheckpointListAllChildren(gone, &arr, 0), arr, 0);
    INT(virDomainCheckpointListAllChildren(gone, NULL, 0));
    INT(virDomainCheckpointListAllChildren(gone, NULL, VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS));
    PTR(virDomainCheckpointGetParent(gone, 0));
    INT(virDomainCheckpointDelete(gone, 0));
    INT(virDomainCheckpointDelete(gone, CHILDREN));
    INT(virDomainCheckpointDelete(gone, CHILDREN_ONLY));
    INT(virDomainCheckpointDelete(gone, METADATA_ONLY));
    PTR(virDomainCheckpointLookupByName(dom, "gone", 0));
    /* Flags are still checked before the name is looked up. */
    FREESTR(virDomainCheckpointGetXMLDesc(gone, 8));
    PTR(virDomainCheckpointGetParent(gone, 1));
    INT(virDomainCheckpointDelete(gone, 8));
    INT(virDomainCheckpointRef(gone));
    INT(virDomainCheckpointFree(gone));
    INT(virDomainCheckpointFree(gone));
    /* A second handle to the same deleted name, and a new checkpoint of the same name. */
    STR(virDomainCheckpointGetName(c1));
    gone = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>gone</name></domaincheckpoint>", 0);
    printf("re-created: %s\n", gone ? "ok" : "failed");
    XML(virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN));
    INT(virDomainCheckpointDelete(c1, 0));
    FREESTR(virDomainCheckpointGetXMLDesc(gone, NO_DOMAIN));
    INT(virDomainCheckpointFree(c1));
    INT(virDomainCheckpointFree(gone));

    printf("== a handle keeps its domain\n");
    d = virDomainLookupByName(conn, "test");
    c1 = virDomainCheckpointLookupByName(d, "b", 0);
    INT(virDomainFree(d));
    d = virDomainCheckpointGetDomain(c1);
    PTR(d);
    STR(virDomainGetName(d));
    INT(virDomainIsActive(d));
    XML(virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN));
    c2 = virDomainCheckpointLookupByName(d, "a", 0);
    STR(virDomainCheckpointGetName(c2));
    INT(virDomainCheckpointFree(c2));
    INT(virDomainCheckpointFree(c1));

    printf("== a handle keeps its connection\n");
    c = virConnectOpen("test:///default");
    d = virDomainLookupByName(c, "test");
    c1 = virDomainCheckpointLookupByName(d, "a", 0);
    INT(virDomainFree(d));
    INT(virConnectClose(c));
    PTR(virDomainCheckpointGetConnect(c1));
    FREESTR(virConnectGetURI(virDomainCheckpointGetConnect(c1)));
    STR(virDomainGetName(virDomainCheckpointGetDomain(c1)));
    list_children(c1, 0);
    INT(virDomainCheckpointFree(c1));
}

/* List arrays: count+1 slots, non-NULL when empty, count-only giving the same numbers. */
static void arrays(virConnectPtr conn, virDomainPtr dom)
{
    virDomainCheckpointPtr *arr, leaf;
    virDomainPtr other;
    unsigned int f;

    printf("== list arrays\n");
    for (f = 0; f < 16; f++)
        list_domain(dom, f);
    leaf = virDomainCheckpointLookupByName(dom, "c", 0);
    for (f = 0; f < 16; f++)
        list_children(leaf, f);
    LIST(virDomainCheckpointListAllChildren(leaf, &arr, 0), arr, 0);
    virDomainCheckpointFree(leaf);

    /* A domain without checkpoints: an empty, but allocated, list. */
    other = virDomainDefineXML(conn,
                               "<domain type='test'><name>empty</name><memory>1024</memory>"
                               "<os><type>hvm</type></os></domain>");
    PTR(other);
    LIST(virDomainListAllCheckpoints(other, &arr, 0), arr, 1);
    LIST(virDomainListAllCheckpoints(other, &arr, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS), arr, 0);
    LIST(virDomainListAllCheckpoints(other, &arr, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL), arr, 0);
    INT(virDomainListAllCheckpoints(other, NULL, 0));
    INT(virDomainListAllCheckpoints(other, NULL, VIR_DOMAIN_CHECKPOINT_LIST_LEAVES));
    PTR(virDomainCheckpointLookupByName(other, "a", 0));
    LIST(virDomainListAllCheckpoints(other, &arr, 0x10), arr, 1);
    INT(virDomainUndefine(other));
    virDomainFree(other);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr dom;
    virDomainCheckpointPtr a, b, c;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    dom = virDomainLookupByName(conn, "test");
    printf("== setup\n");
    PTR(conn);
    PTR(dom);
    list_domain(dom, 0);

    /* a <- b <- c, a chain of plain creates; QUIESCE is accepted by the test driver. */
    a = virDomainCheckpointCreateXML(dom, xml_a, 0);
    PTR(a);
    STR(virDomainCheckpointGetName(a));
    b = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>b</name></domaincheckpoint>", QUIESCE);
    PTR(b);
    STR(virDomainCheckpointGetName(b));
    c = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>c</name></domaincheckpoint>", 0);
    PTR(c);
    PTR(virDomainCheckpointCreateXML(dom, xml_a, 0));
    PTR(virDomainCheckpointCreateXML(dom, xml_a, REDEFINE | 8));
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);

    invalid_pointers(conn, dom, b);
    arguments(dom, b);
    unknown_flags(dom, b);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    read_only(dom);
    error_clearing(dom, b);
    dispatch(conn, dom, b);
    handles(conn, dom);
    arrays(conn, dom);

    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    INT(virDomainCheckpointFree(a));
    INT(virDomainCheckpointFree(b));
    INT(virDomainCheckpointFree(c));
    INT(virDomainFree(dom));
    INT(virConnectClose(conn));
    return 0;
}
