/* A third-party program that knows nothing of virbackup: it includes libvirt's headers
 * and links with whatever pkg-config or meson call libvirt. It prints which header it
 * was compiled with and which library provides virConnectOpen() at run time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

int main(void)
{
    Dl_info where;
    unsigned long version = 0;
    virConnectPtr conn;
    virDomainPtr dom;
    char *reply = NULL;

#ifdef VIRBACKUP_LIBVIRT_H
    printf("header: virbackup\n");
#else
    printf("header: libvirt\n");
#endif
    if (!dladdr((void *)virConnectOpen, &where) || !where.dli_fname)
        return 1;
    printf("library: %s\n", where.dli_fname);
    if (virGetVersion(&version, NULL, NULL) < 0)
        return 1;
    printf("version: %lu\n", version);
    conn = virConnectOpen("test:///default");
    if (!conn)
        return 1;
    dom = virDomainLookupByName(conn, "test");
    if (!dom)
        return 1;
    /* libvirt-qemu.so.0 is linked too: the test driver has no monitor. */
    if (virDomainQemuMonitorCommand(dom, "{\"execute\":\"query-status\"}", &reply, 0) == 0)
        return 1;
    printf("qemu monitor: %d\n", virGetLastErrorCode());
    virDomainFree(dom);
    virConnectClose(conn);
    return 0;
}
