/*
 * tool-calls.c: the connection and domain calls backup tools make around a backup
 * (virtnbdbackup's list), on test:///default, where libvirt's test driver has them:
 * versions, host name, liveness, authentication callbacks, close callbacks, autostart,
 * file system freeze and thaw, block info, memory statistics with no room, and the
 * public checks of each (NULL and foreign handles, NULL arguments, read-only access).
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

static int auth_calls;

static int auth_cb(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
    (void)cred;
    (void)ncred;
    (void)cbdata;
    auth_calls++;
    return 0;
}

static int close_frees;

static void close_cb(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn;
    (void)reason;
    (void)opaque;
}

static void close_cb_other(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn;
    (void)reason;
    (void)opaque;
}

static void close_free(void *opaque)
{
    (void)opaque;
    close_frees++;
}

static void connection(void)
{
    int credtypes[] = {VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE};
    virConnectAuth auth = {credtypes, 2, auth_cb, NULL};
    virConnectPtr conn;
    unsigned long version = 0;
    char *host;
    char hostname[256] = "";

    printf("== connection\n");
    conn = virConnectOpenAuth("test:///default", &auth, 0);
    PTR(conn);
    printf("    auth callback calls: %d\n", auth_calls);
    INT(virConnectGetLibVersion(conn, &version));
    printf("    version=%lu\n", version);
    INT(virConnectGetLibVersion(conn, NULL));
    INT(virConnectGetLibVersion(NULL, &version));
    host = virConnectGetHostname(conn);
    gethostname(hostname, sizeof(hostname) - 1);
    printf("virConnectGetHostname(conn) is this host: %s\n", host && strcmp(host, hostname) == 0 ? "yes" : "no");
    show_error();
    free(host);
    PTR(virConnectGetHostname(NULL));
    INT(virConnectIsAlive(conn));
    INT(virConnectIsAlive(NULL));

    INT(virConnectRegisterCloseCallback(conn, close_cb, NULL, close_free));
    INT(virConnectRegisterCloseCallback(conn, NULL, NULL, NULL));
    INT(virConnectRegisterCloseCallback(NULL, close_cb, NULL, NULL));
    INT(virConnectUnregisterCloseCallback(conn, close_cb_other));
    INT(virConnectUnregisterCloseCallback(conn, NULL));
    INT(virConnectUnregisterCloseCallback(conn, close_cb));
    INT(virConnectUnregisterCloseCallback(NULL, close_cb));
    INT(virConnectClose(conn));

    conn = virConnectOpenAuth("test:///default", NULL, 0);
    PTR(conn);
    INT(virConnectClose(conn));
    conn = virConnectOpenAuth("test:///default", virConnectAuthPtrDefault, VIR_CONNECT_RO);
    PTR(conn);
    INT(virConnectIsAlive(conn));
    INT(virConnectClose(conn));
}

static void freeze(virDomainPtr dom, const char *label, const char **points, unsigned int n)
{
    printf("-- %s\n", label);
    INT(virDomainFSFreeze(dom, points, n, 0));
    INT(virDomainFSFreeze(dom, points, n, 0));
    INT(virDomainFSThaw(dom, points, n, 0));
    INT(virDomainFSThaw(dom, points, n, 0));
}

static void domain(virConnectPtr conn, virConnectPtr ro)
{
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    virDomainPtr rodom = virDomainLookupByName(ro, "test");
    const char *root[] = {"/"};
    const char *both[] = {"/boot", "/"};
    const char *bad[] = {"/", "/nope"};
    virDomainBlockInfo info;
    virDomainMemoryStatStruct stats[2];
    int autostart = -1;

    printf("== autostart\n");
    INT(virDomainGetAutostart(dom, &autostart));
    printf("    autostart=%d\n", autostart);
    INT(virDomainSetAutostart(dom, 5));
    INT(virDomainGetAutostart(dom, &autostart));
    printf("    autostart=%d\n", autostart);
    INT(virDomainGetAutostart(rodom, &autostart));
    printf("    autostart=%d\n", autostart);
    INT(virDomainSetAutostart(rodom, 0));
    INT(virDomainSetAutostart(dom, 0));
    INT(virDomainGetAutostart(dom, NULL));
    INT(virDomainGetAutostart(NULL, &autostart));
    INT(virDomainSetAutostart(NULL, 1));
    INT(virDomainSetAutostart((virDomainPtr)conn, 1));

    printf("== file systems\n");
    freeze(dom, "all", NULL, 0);
    freeze(dom, "/", root, 1);
    freeze(dom, "/boot and /", both, 2);
    freeze(dom, "an unknown mount point", bad, 2);
    INT(virDomainFSFreeze(dom, NULL, 1, 0));
    INT(virDomainFSFreeze(dom, NULL, 0, 1));
    INT(virDomainFSThaw(dom, NULL, 0, 0x10));
    INT(virDomainFSFreeze(rodom, NULL, 0, 0));
    INT(virDomainFSThaw(rodom, NULL, 0, 0));
    INT(virDomainFSFreeze(NULL, NULL, 0, 0));
    INT(virDomainDestroy(dom));
    INT(virDomainFSFreeze(dom, NULL, 0, 0));
    INT(virDomainFSThaw(dom, NULL, 0, 0));
    INT(virDomainCreate(dom));

    printf("== block info\n");
    memset(&info, 0xff, sizeof(info));
    INT(virDomainGetBlockInfo(dom, "vda", &info, 0));
    printf("    capacity=%llu allocation=%llu physical=%llu\n", info.capacity, info.allocation, info.physical);
    memset(&info, 0xff, sizeof(info));
    INT(virDomainGetBlockInfo(rodom, "/guest/diskimage1", &info, 0));
    printf("    capacity=%llu allocation=%llu physical=%llu\n", info.capacity, info.allocation, info.physical);
    memset(&info, 0xff, sizeof(info));
    INT(virDomainGetBlockInfo(dom, "vdz", &info, 0));
    printf("    capacity=%llu (zeroed on failure)\n", info.capacity);
    INT(virDomainGetBlockInfo(dom, "vda", &info, 1));
    INT(virDomainGetBlockInfo(dom, "", &info, 0));
    INT(virDomainGetBlockInfo(dom, NULL, &info, 0));
    INT(virDomainGetBlockInfo(dom, "vda", NULL, 0));
    INT(virDomainGetBlockInfo(NULL, "vda", &info, 0));

    printf("== memory statistics without room\n");
    INT(virDomainMemoryStats(dom, NULL, 2, 0));
    INT(virDomainMemoryStats(dom, stats, 0, 0));
    INT(virDomainMemoryStats(NULL, stats, 2, 0));

    printf("== an old name\n");
    PTR(virDomainCreateLinux(NULL, "<domain/>", 0));
    PTR(virDomainCreateLinux(ro, "<domain/>", 0));
    PTR(virDomainCreateLinux(conn, NULL, 0));

    virDomainFree(rodom);
    virDomainFree(dom);
}

int main(void)
{
    virConnectPtr conn, ro;

    setvbuf(stdout, NULL, _IONBF, 0);
    virSetErrorFunc(NULL, NULL);
    connection();
    conn = virConnectOpen("test:///default");
    ro = virConnectOpenReadOnly("test:///default");
    domain(conn, ro);
    virConnectClose(ro);
    virConnectClose(conn);
    return 0;
}
