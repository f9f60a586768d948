/*
 * test-connect.c: connections and domains on test:///default.
 *
 * Built twice and linked to virbackup's libvirt.so.0 both times: once against
 * virbackup's header and once against the system's libvirt header, which shows that
 * programs written against libvirt compile and behave the same.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "tap.h"

#define TEST_UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

static void quiet(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

static void test_open(void)
{
    virConnectPtr c, r;
    char *uri;
    unsigned long v = 0;

    c = virConnectOpen("test:///default");
    CHECK(c != NULL, "open test:///default");
    uri = virConnectGetURI(c);
    CHECK(uri && strcmp(uri, "test:///default") == 0, "URI is kept: %s", uri ? uri : "(null)");
    free(uri);
    CHECK(strcmp(virConnectGetType(c), "TEST") == 0, "type is TEST");
    CHECK(virConnectGetVersion(c, &v) == 0 && v == 2, "hypervisor version 2");
    CHECK(virConnectGetLibVersion(c, &v) == 0 && v == 9000000, "library version 9.0.0");
    CHECK(virConnectIsAlive(c) == 1 && virConnectIsSecure(c) == 1 && virConnectIsEncrypted(c) == 0,
          "alive, secure, not encrypted");
    {
        char *h = virConnectGetHostname(c);
        CHECK(h && *h, "host name %s", h ? h : "(null)");
        free(h);
    }

    CHECK(virConnectOpen("nope:///x") == NULL, "unknown scheme refused");
    CHECK_ERROR(VIR_ERR_NO_CONNECT, VIR_FROM_NONE, "no connection driver available for nope:///x", "unknown scheme");
    CHECK(virConnectOpen("no-scheme") == NULL, "URI without a scheme refused");
    CHECK(virGetLastErrorCode() == VIR_ERR_NO_CONNECT, "as VIR_ERR_NO_CONNECT");
    CHECK(virConnectOpen("test:///elsewhere") == NULL && virGetLastErrorCode() == VIR_ERR_NO_CONNECT,
          "test driver only serves test:///default");
    CHECK(virConnectOpen("test://remote/default") == NULL && virGetLastErrorCode() == VIR_ERR_NO_CONNECT,
          "remote URIs refused");
    CHECK(virConnectOpenAuth("test:///default", NULL, 4) == NULL, "unknown open flag refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_TEST, "unsupported flags (0x4) in function testConnectOpen", "open flags");

    /* Read-only connections share the state and refuse secrets. */
    r = virConnectOpenAuth("test:///default", virConnectAuthPtrDefault, VIR_CONNECT_RO);
    CHECK(r != NULL, "read-only open through virConnectOpenAuth");
    {
        virDomainPtr d = virDomainLookupByName(r, "test");
        char *xml;
        CHECK(d != NULL, "read-only connection sees the test domain");
        xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE);
        CHECK(xml == NULL, "secure XML refused on a read-only connection");
        CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_DOMAIN,
                    "operation forbidden: virDomainGetXMLDesc with secure flag", "secure XML");
        xml = virDomainGetXMLDesc(d, 0);
        CHECK(xml && strstr(xml, "<name>test</name>"), "plain XML allowed read-only");
        free(xml);
        virDomainFree(d);
    }
    CHECK(virConnectClose(r) == 0, "read-only connection closed");

    /* NULL and the empty string use LIBVIRT_DEFAULT_URI, else the test driver. */
    setenv("LIBVIRT_DEFAULT_URI", "test:///default", 1);
    r = virConnectOpen(NULL);
    CHECK(r != NULL, "NULL URI opens LIBVIRT_DEFAULT_URI");
    uri = virConnectGetURI(r);
    CHECK(uri && strcmp(uri, "test:///default") == 0, "default URI reported");
    free(uri);
    virConnectClose(r);
    unsetenv("LIBVIRT_DEFAULT_URI");
    r = virConnectOpenReadOnly("");
    CHECK(r != NULL, "empty URI falls back to the embedded default");
    virConnectClose(r);

    CHECK(virConnectClose(c) == 0, "last close releases the connection");
}

static void test_refcounts(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    virDomainPtr d, d2;
    char *uri;

    CHECK(virConnectRef(c) == 0, "connection ref");
    CHECK(virConnectClose(c) == 1, "close with a reference left returns 1");
    d = virDomainLookupByName(c, "test");
    CHECK(virConnectClose(c) == 1, "a domain handle keeps the connection alive");
    uri = virConnectGetURI(virDomainGetConnect(d));
    CHECK(uri && strcmp(uri, "test:///default") == 0, "connection still usable through the domain");
    free(uri);
    CHECK(virDomainRef(d) == 0, "domain ref");
    CHECK(virDomainFree(d) == 0, "domain free with a reference left");
    CHECK(strcmp(virDomainGetName(d), "test") == 0, "handle still valid after one free");
    d2 = virDomainLookupByName(virDomainGetConnect(d), "test");
    CHECK(d2 && d2 != d, "every lookup returns a new handle");
    virDomainFree(d2);
    CHECK(virDomainFree(d) == 0, "last domain reference released (and with it the connection)");
}

static void test_domains(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    virDomainPtr d, *list = NULL;
    unsigned char raw[VIR_UUID_BUFLEN];
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainInfo info;
    int state = -1, reason = -1, n;
    char *xml;

    d = virDomainLookupByName(c, "test");
    CHECK(d != NULL, "lookup by name");
    CHECK(virDomainGetID(d) == 1, "id 1");
    CHECK(virDomainGetUUIDString(d, uuid) == 0 && strcmp(uuid, TEST_UUID) == 0, "UUID %s", uuid);
    CHECK(virDomainGetUUID(d, raw) == 0 && raw[0] == 0x66 && raw[15] == 0x3f, "raw UUID");
    CHECK(virDomainIsActive(d) == 1 && virDomainIsPersistent(d) == 1, "active and persistent");
    CHECK(virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING, "running");
    memset(&info, 0, sizeof(info));
    CHECK(virDomainGetInfo(d, &info) == 0 && info.state == VIR_DOMAIN_RUNNING && info.maxMem == 8388608 &&
              info.memory == 2097152 && info.nrVirtCpu == 2 && info.cpuTime > 0,
          "info");
    xml = virDomainGetXMLDesc(d, 0);
    CHECK(xml && strncmp(xml, "<domain type='test' id='1'>\n", 28) == 0, "live XML has the id");
    CHECK(xml && strstr(xml, "<target dev='vda' bus='virtio'/>"), "live XML has disk vda");
    free(xml);
    xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
    CHECK(xml && strncmp(xml, "<domain type='test'>\n", 21) == 0, "inactive XML has no id");
    free(xml);
    CHECK(virDomainGetXMLDesc(d, VIR_DOMAIN_XML_UPDATE_CPU) == NULL, "UPDATE_CPU refused");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_TEST, "unsupported flags (0x4) in function testDomainGetXMLDesc",
                "xml flags");
    CHECK(virDomainGetState(d, &state, &reason, 1) == -1, "state flags must be 0");

    {
        virDomainPtr byid = virDomainLookupByID(c, 1);
        virDomainPtr byuuid = virDomainLookupByUUIDString(c, TEST_UUID);
        virDomainPtr byraw = virDomainLookupByUUID(c, raw);
        CHECK(byid && byuuid && byraw, "lookup by id, UUID string and raw UUID");
        virDomainFree(byid);
        virDomainFree(byuuid);
        virDomainFree(byraw);
    }
    CHECK(virDomainLookupByName(c, "missing") == NULL, "unknown name");
    CHECK_ERROR(VIR_ERR_NO_DOMAIN, VIR_FROM_TEST, "Domain not found", "unknown name");
    CHECK(virDomainLookupByID(c, -1) == NULL, "negative id");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_DOMAIN, "id in virDomainLookupByID must be zero or greater", "negative id");
    CHECK(virDomainLookupByUUIDString(c, "not-a-uuid") == NULL, "bad UUID text");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_DOMAIN, "Invalid UUID", "bad UUID");
    CHECK(virDomainLookupByName(c, NULL) == NULL, "NULL name");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_DOMAIN, "name in virDomainLookupByName must not be NULL", "NULL name");

    n = virConnectListAllDomains(c, &list, 0);
    CHECK(n == 1 && list && list[1] == NULL && strcmp(virDomainGetName(list[0]), "test") == 0,
          "list all: one domain, NULL-terminated");
    virDomainFree(list[0]);
    free(list);
    n = virConnectListAllDomains(c, &list, VIR_CONNECT_LIST_DOMAINS_SHUTOFF);
    CHECK(n == 0 && list && list[0] == NULL, "empty result is a non-NULL array");
    free(list);
    CHECK(virConnectListAllDomains(c, NULL, VIR_CONNECT_LIST_DOMAINS_ACTIVE | VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT) == 1,
          "count only, combined filters");
    list = (virDomainPtr *)&list;
    CHECK(virConnectListAllDomains(c, &list, 1U << 20) == -1 && list == NULL, "unknown filter refused, array cleared");
    CHECK(virConnectNumOfDomains(c) == 1, "one active domain");

    /* Invalid handles. */
    CHECK(virDomainGetName(NULL) == NULL, "NULL domain");
    CHECK_ERROR(VIR_ERR_INVALID_DOMAIN, VIR_FROM_DOM, "invalid domain pointer in virDomainGetName", "NULL domain");
    CHECK(virDomainGetID(NULL) == (unsigned int)-1, "id of NULL domain is -1");
    CHECK(virDomainIsActive((virDomainPtr)c) == -1, "connection passed as a domain");
    CHECK_ERROR(VIR_ERR_INVALID_DOMAIN, VIR_FROM_DOM, "invalid domain pointer in virDomainIsActive", "wrong kind");
    CHECK(virConnectGetURI((virConnectPtr)d) == NULL, "domain passed as a connection");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, VIR_FROM_DOMAIN, "invalid connection pointer in virConnectGetURI", "wrong kind");
    CHECK(virConnectClose(NULL) == -1, "close NULL");
    CHECK_ERROR(VIR_ERR_INVALID_CONN, VIR_FROM_NONE, "invalid connection pointer in virConnectClose", "close NULL");

    virDomainFree(d);
    virConnectClose(c);
}

/* The test driver's backup lifecycle, with its events. */
static int completed_events, completed_success = -1, loop_timed_out;

static void on_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams, void *opaque)
{
    (void)conn;
    (void)dom;
    (void)opaque;
    completed_events++;
    virTypedParamsGetBoolean(params, nparams, VIR_DOMAIN_JOB_SUCCESS, &completed_success);
}

static void on_loop_timeout(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
    loop_timed_out = 1;
}

static int run_loop_until(int events)
{
    int timer = virEventAddTimeout(10000, on_loop_timeout, NULL, NULL);
    loop_timed_out = 0;
    while (completed_events < events && !loop_timed_out)
        virEventRunDefaultImpl();
    virEventRemoveTimeout(timer);
    return completed_events >= events;
}

static void test_backup_lifecycle(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    virDomainPtr d = virDomainLookupByName(c, "test");
    virDomainJobInfo info;
    char *xml;
    int id;

    CHECK(virEventRegisterDefaultImpl() == 0, "event loop");
    id = virConnectDomainEventRegisterAny(c, d, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                          VIR_DOMAIN_EVENT_CALLBACK(on_completed), NULL, NULL);
    CHECK(id >= 0, "register JOB_COMPLETED");
    CHECK(virDomainBackupBegin(d, "<domainbackup/>", "<domaincheckpoint><name>bk1</name></domaincheckpoint>", 0) == 0,
          "a push backup of the fictional disk");
    CHECK(run_loop_until(1) && completed_success == 1, "ends at once, with its event");
    CHECK(virDomainListAllCheckpoints(d, NULL, 0) == 1, "and its checkpoint");
    CHECK(virDomainBackupBegin(d, "<domainbackup mode='pull'><server transport='unix' socket='/tmp/vb-test.sock'/></domainbackup>",
                               NULL, 0) == 0,
          "a pull backup");
    xml = virDomainBackupGetXMLDesc(d, 0);
    CHECK(xml && strstr(xml, "exportname='vda'"), "its XML");
    free(xml);
    CHECK(virDomainGetJobInfo(d, &info) == 0 && info.type == VIR_DOMAIN_JOB_UNBOUNDED, "runs until aborted");
    CHECK(virDomainAbortJob(d) == 0 && run_loop_until(2) && completed_success == 1, "abort ends it successfully");
    CHECK(virConnectDomainEventDeregisterAny(c, id) == 0, "deregister");
    virDomainFree(d);
    virConnectClose(c);
}

int main(void)
{
    virSetErrorFunc(NULL, quiet);
    test_open();
    test_refcounts();
    test_domains();
    test_backup_lifecycle();
    return tap_done();
}
