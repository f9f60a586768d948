/*
 * demo.c: opens a connection (test:///default unless a URI is given), lists its domains
 * and prints each one's state and XML description.
 *
 *   ./build/demo [URI]
 */
#include <stdio.h>
#include <stdlib.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static const char *state_name(int state)
{
    static const char *const names[] = {"no state", "running", "blocked", "paused",
                                        "shutting down", "shut off", "crashed", "suspended"};
    return state >= 0 && state < (int)(sizeof(names) / sizeof(names[0])) ? names[state] : "unknown";
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "test:///default";
    virConnectPtr conn;
    virDomainPtr *domains = NULL;
    unsigned long version = 0;
    char *real_uri, *host;
    int n, i;

    conn = virConnectOpen(uri);
    if (!conn) {
        fprintf(stderr, "cannot open %s: %s\n", uri, virGetLastErrorMessage());
        return 1;
    }
    real_uri = virConnectGetURI(conn);
    host = virConnectGetHostname(conn);
    virConnectGetLibVersion(conn, &version);
    printf("connected to %s (driver %s) on %s, library %lu.%lu.%lu\n", real_uri, virConnectGetType(conn), host,
           version / 1000000, version / 1000 % 1000, version % 1000);
    free(real_uri);
    free(host);

    n = virConnectListAllDomains(conn, &domains, 0);
    if (n < 0) {
        fprintf(stderr, "cannot list domains: %s\n", virGetLastErrorMessage());
        virConnectClose(conn);
        return 1;
    }
    printf("%d domain(s)\n", n);
    for (i = 0; i < n; i++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        int state = 0, reason = 0;
        char *xml;
        virDomainGetUUIDString(domains[i], uuid);
        virDomainGetState(domains[i], &state, &reason, 0);
        printf("\ndomain %s (id %d, uuid %s): %s\n", virDomainGetName(domains[i]), (int)virDomainGetID(domains[i]),
               uuid, state_name(state));
        xml = virDomainGetXMLDesc(domains[i], 0);
        if (xml)
            printf("%s", xml);
        free(xml);
        virDomainFree(domains[i]);
    }
    free(domains);
    virConnectClose(conn);
    return 0;
}
