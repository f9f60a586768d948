/*
 * foundation.c: exercises the connection, domain and error API and prints every result
 * and every error record in full.
 *
 * It is built once against the system's libvirt. The test runs it with the system
 * library and again with virbackup's libvirt.so.0 first on LD_LIBRARY_PATH, and the two
 * outputs must be identical: same return values, same error codes, domains, messages,
 * str1/str2/str3, int1/int2, same default error printer output.
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

/* stderr capture, to compare what the default error printer writes. */
static int saved_stderr = -1;
static FILE *capture;

static void capture_begin(void)
{
    fflush(stderr);
    capture = tmpfile();
    saved_stderr = dup(2);
    dup2(fileno(capture), 2);
}

static void capture_end(const char *label)
{
    char buf[8192];
    size_t n;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(capture);
    n = fread(buf, 1, sizeof(buf) - 1, capture);
    buf[n] = '\0';
    fclose(capture);
    printf("stderr of %s: [%s]\n", label, buf);
}

static int callback_calls;
static int callback_last_code;
static void *callback_last_data;

static void counting_handler(void *data, virErrorPtr err)
{
    callback_calls++;
    callback_last_code = err ? err->code : -1;
    callback_last_data = data;
}

static void error_api(virConnectPtr conn)
{
    virError copy;
    virErrorPtr saved;
    static int token;

    printf("== error API\n");
    virResetLastError();
    PTR(virGetLastError());
    INT(virGetLastErrorCode());
    INT(virGetLastErrorDomain());
    STR(virGetLastErrorMessage());
    INT(virCopyLastError(NULL));
    memset(&copy, 0x5a, sizeof(copy));
    INT(virCopyLastError(&copy));
    printf("copy after no error: code=%d message=%s\n", copy.code, copy.message ? "set" : "NULL");
    saved = virSaveLastError();
    printf("saved with no error: code=%d\n", saved ? saved->code : -99);
    virFreeError(saved);
    virFreeError(NULL);
    virResetError(NULL);

    PTR(virDomainLookupByName(conn, "nope"));
    INT(virGetLastErrorCode());
    INT(virGetLastErrorDomain());
    STR(virGetLastErrorMessage());
    memset(&copy, 0x5a, sizeof(copy));
    INT(virCopyLastError(&copy));
    printf("copy: code=%d domain=%d level=%d message=[%s] str1=[%s] str2=[%s] int1=%d\n", copy.code, copy.domain,
           copy.level, s(copy.message), s(copy.str1), s(copy.str2), copy.int1);
    virResetError(&copy);
    printf("after reset: code=%d message=%s\n", copy.code, copy.message ? "set" : "NULL");
    saved = virSaveLastError();
    printf("saved: code=%d domain=%d message=[%s]\n", saved->code, saved->domain, s(saved->message));
    virFreeError(saved);

    /* The connection keeps its own copy. */
    {
        virErrorPtr ce = virConnGetLastError(conn);
        printf("conn error: code=%d message=[%s]\n", ce ? ce->code : -99, ce ? s(ce->message) : "");
        INT(virConnCopyLastError(conn, &copy));
        printf("conn copy: code=%d message=[%s]\n", copy.code, s(copy.message));
        virResetError(&copy);
        virConnResetLastError(conn);
        ce = virConnGetLastError(conn);
        printf("conn error after reset: %s code=%d\n", ce ? "non-NULL" : "NULL", ce ? ce->code : -99);
        INT(virConnCopyLastError(conn, &copy));
        printf("thread error after conn reset: %d\n", virGetLastErrorCode());
        PTR(virConnGetLastError(NULL));
        INT(virConnCopyLastError(NULL, &copy));
    }

    /* Every call clears the thread's error first, even a trivial getter. */
    virDomainLookupByName(conn, "nope");
    printf("before getter: %d\n", virGetLastErrorCode());
    STR(virConnectGetType(conn));
    virDomainLookupByName(conn, "nope");
    virGetLastErrorMessage();
    virGetLastError();
    virConnGetLastError(conn);
    printf("error API calls keep the error: %d\n", virGetLastErrorCode());

    /* Callbacks: global, then the connection's own taking precedence. */
    callback_calls = 0;
    virSetErrorFunc(&token, counting_handler);
    virDomainLookupByName(conn, "nope");
    printf("global handler: calls=%d code=%d data-ok=%d\n", callback_calls, callback_last_code,
           callback_last_data == &token);
    virConnSetErrorFunc(conn, NULL, quiet_handler);
    virDomainLookupByName(conn, "nope");
    printf("conn handler takes precedence: global calls=%d\n", callback_calls);
    virDomainFree(NULL);
    printf("errors without a connection go to the global handler: calls=%d code=%d\n", callback_calls,
           callback_last_code);
    virConnSetErrorFunc(conn, NULL, NULL);
    virDomainLookupByName(conn, "nope");
    printf("conn handler removed: calls=%d\n", callback_calls);

    /* The default printer. */
    virSetErrorFunc(NULL, NULL);
    capture_begin();
    virDomainLookupByName(conn, "nope");
    virDomainFree(NULL);
    virConnectClose(NULL);
    virDomainGetXMLDesc(NULL, 0);
    capture_end("default printer");
    {
        virError crafted;
        int d;
        capture_begin();
        for (d = 0; d <= 74; d++) {
            memset(&crafted, 0, sizeof(crafted));
            crafted.code = VIR_ERR_INTERNAL_ERROR;
            crafted.domain = d;
            crafted.level = (virErrorLevel)(d % 3);
            crafted.message = (char *)(d % 5 == 0 ? "ends with newline\n" : "plain");
            virDefaultErrorFunc(&crafted);
        }
        crafted.code = VIR_ERR_XML_DETAIL;
        crafted.domain = VIR_FROM_XML;
        crafted.int1 = 7;
        crafted.level = VIR_ERR_ERROR;
        crafted.message = (char *)"xml detail";
        virDefaultErrorFunc(&crafted);
        crafted.code = VIR_ERR_OK;
        virDefaultErrorFunc(&crafted);
        virDefaultErrorFunc(NULL);
        capture_end("virDefaultErrorFunc");
    }
    virSetErrorFunc(NULL, quiet_handler);
}

static void connections(void)
{
    virConnectPtr c, r, d2;
    unsigned long v;
    unsigned int f;

    printf("== connections\n");
    INT(virInitialize());
    v = 7;
    INT(virGetVersion(&v, NULL, NULL));
    printf("version %lu\n", v);
    {
        unsigned long tv = 7;
        INT(virGetVersion(&v, "Test", &tv));
        printf("version %lu %lu\n", v, tv);
        INT(virGetVersion(NULL, "Test", &tv));
    }
    PTR(virConnectOpen("bogus"));
    PTR(virConnectOpenAuth("test:///default", NULL, 1U << 31));
    for (f = 0; f < 10; f++) {
        virConnectPtr x = virConnectOpenAuth("test:///default", NULL, f);
        printf("open auth flags %u: %s\n", f, x ? "ok" : "failed");
        show_error();
        if (x)
            virConnectClose(x);
    }
    c = virConnectOpenAuth("test:///default", virConnectAuthPtrDefault, 0);
    printf("open with default auth: %s\n", c ? "ok" : "failed");
    if (c)
        virConnectClose(c);

    c = virConnectOpen("test:///default");
    FREESTR(virConnectGetURI(c));
    STR(virConnectGetType(c));
    v = 0;
    INT(virConnectGetVersion(c, &v));
    printf("hv version %lu\n", v);
    INT(virConnectGetVersion(c, NULL));
    INT(virConnectGetLibVersion(c, &v));
    printf("lib version %lu\n", v);
    INT(virConnectGetLibVersion(c, NULL));
    INT(virConnectIsAlive(c));
    INT(virConnectIsSecure(c));
    INT(virConnectIsEncrypted(c));
    INT(virConnectNumOfDomains(c));
    {
        char *h = virConnectGetHostname(c);
        printf("hostname is %s\n", h && *h ? "set" : "missing");
        free(h);
    }

    /* Invalid connections. */
    INT(virConnectClose(NULL));
    INT(virConnectRef(NULL));
    FREESTR(virConnectGetURI(NULL));
    STR(virConnectGetType(NULL));
    INT(virConnectGetVersion(NULL, &v));
    INT(virConnectGetLibVersion(NULL, &v));
    FREESTR(virConnectGetHostname(NULL));
    INT(virConnectIsAlive(NULL));
    INT(virConnectIsSecure(NULL));
    INT(virConnectIsEncrypted(NULL));
    INT(virConnectNumOfDomains(NULL));
    INT(virConnectListAllDomains(NULL, NULL, 0));
    PTR(virDomainLookupByName(NULL, "test"));
    PTR(virDomainLookupByUUIDString(NULL, "x"));
    PTR(virDomainLookupByID(NULL, 1));

    /* References: a domain keeps its connection alive. */
    INT(virConnectRef(c));
    INT(virConnectClose(c));
    {
        virDomainPtr dom = virDomainLookupByName(c, "test");
        INT(virConnectClose(c));
        d2 = virDomainGetConnect(dom);
        FREESTR(virConnectGetURI(d2));
        INT(virDomainRef(dom));
        INT(virDomainFree(dom));
        STR(virDomainGetName(dom));
        INT(virDomainFree(dom));
    }

    /* Read-only connections and shared state. */
    r = virConnectOpenReadOnly("test:///default");
    {
        virDomainPtr dom = virDomainLookupByName(r, "test");
        FREESTR(virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE));
        FREESTR(virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE | (1U << 20)));
        INT(virDomainIsActive(dom));
        virDomainFree(dom);
    }
    INT(virConnectClose(r));
}

static void domains(virConnectPtr c)
{
    virDomainPtr d, d2, *list;
    unsigned char uuid[VIR_UUID_BUFLEN];
    char uuidstr[VIR_UUID_STRING_BUFLEN];
    virDomainInfo info;
    int state = -5, reason = -5, n, i;
    unsigned int f;

    printf("== domains\n");
    d = virDomainLookupByName(c, "test");
    PTR(d);
    STR(virDomainGetName(d));
    printf("id %u\n", virDomainGetID(d));
    INT(virDomainGetUUID(d, uuid));
    INT(virDomainGetUUIDString(d, uuidstr));
    printf("uuid %s first bytes %02x%02x\n", uuidstr, uuid[0], uuid[1]);
    INT(virDomainGetUUID(d, NULL));
    INT(virDomainGetUUIDString(d, NULL));
    d2 = virDomainLookupByUUID(c, uuid);
    STR(virDomainGetName(d2));
    printf("distinct handles: %d\n", d2 != d);
    virDomainFree(d2);
    PTR(virDomainLookupByUUID(c, NULL));
    d2 = virDomainLookupByUUIDString(c, "6695eb01f6a4830479aa97f2502e193f");
    STR(virDomainGetName(d2));
    virDomainFree(d2);
    PTR(virDomainLookupByUUIDString(c, "zz"));
    PTR(virDomainLookupByUUIDString(c, NULL));
    PTR(virDomainLookupByUUIDString(c, "11111111-2222-3333-4444-555555555555"));
    d2 = virDomainLookupByID(c, 1);
    STR(virDomainGetName(d2));
    virDomainFree(d2);
    PTR(virDomainLookupByID(c, 2));
    PTR(virDomainLookupByID(c, -1));
    PTR(virDomainLookupByName(c, NULL));
    PTR(virDomainLookupByName(c, "nope"));
    PTR(virDomainLookupByName(c, ""));

    INT(virDomainIsActive(d));
    INT(virDomainIsPersistent(d));
    INT(virDomainGetState(d, &state, &reason, 0));
    printf("state %d reason %d\n", state, reason);
    INT(virDomainGetState(d, &state, NULL, 0));
    INT(virDomainGetState(d, NULL, NULL, 0));
    INT(virDomainGetState(d, &state, &reason, 1));
    memset(&info, 0x5a, sizeof(info));
    INT(virDomainGetInfo(d, &info));
    printf("info state=%d maxMem=%lu memory=%lu vcpus=%u cpuTime-set=%d\n", info.state, info.maxMem, info.memory,
           info.nrVirtCpu, info.cpuTime > 0);
    INT(virDomainGetInfo(d, NULL));
    for (f = 0; f < 16; f++) {
        char *xml = virDomainGetXMLDesc(d, f);
        printf("xml flags %u:\n%s", f, xml ? xml : "(NULL)\n");
        show_error();
        free(xml);
    }

    /* Invalid domains. */
    INT(virDomainRef(NULL));
    INT(virDomainFree(NULL));
    STR(virDomainGetName(NULL));
    printf("id of NULL %u\n", virDomainGetID(NULL));
    show_error();
    INT(virDomainGetUUID(NULL, uuid));
    INT(virDomainGetUUIDString(NULL, uuidstr));
    PTR(virDomainGetConnect(NULL));
    INT(virDomainIsActive(NULL));
    INT(virDomainIsPersistent(NULL));
    INT(virDomainGetState(NULL, &state, &reason, 0));
    INT(virDomainGetInfo(NULL, &info));
    FREESTR(virDomainGetXMLDesc(NULL, 0));
    /* A connection pointer is not a domain, and a domain is not a connection. */
    INT(virDomainIsActive((virDomainPtr)c));
    INT(virConnectIsAlive((virConnectPtr)d));

    /* Listing with each filter. */
    for (f = 0; f < 16; f++) {
        n = virConnectListAllDomains(c, &list, 1U << f);
        printf("list flag 1<<%u: %d", f, n);
        for (i = 0; i < n; i++) {
            printf(" %s", virDomainGetName(list[i]));
            virDomainFree(list[i]);
        }
        printf(" last-slot-null=%d\n", n >= 0 ? list[n] == NULL : -1);
        free(list);
    }
    list = (virDomainPtr *)&list;
    n = virConnectListAllDomains(c, &list, 1U << 16);
    printf("list bad flag: %d list=%s\n", n, list ? "non-NULL" : "NULL");
    show_error();
    INT(virConnectListAllDomains(c, NULL, 0));
    INT(virConnectListAllDomains(c, NULL, VIR_CONNECT_LIST_DOMAINS_INACTIVE));
    INT(virConnectListAllDomains(c, NULL, VIR_CONNECT_LIST_DOMAINS_ACTIVE | VIR_CONNECT_LIST_DOMAINS_INACTIVE));
    INT(virConnectListAllDomains(c, NULL, VIR_CONNECT_LIST_DOMAINS_RUNNING | VIR_CONNECT_LIST_DOMAINS_INACTIVE));
    virDomainFree(d);
}

int main(void)
{
    virConnectPtr c;

    /* The real library must be initialised before any call can fail. */
    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);
    connections();
    c = virConnectOpen("test:///default");
    domains(c);
    error_api(c);
    printf("close: %d\n", virConnectClose(c));
    return 0;
}
