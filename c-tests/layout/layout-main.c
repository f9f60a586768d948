/* Compares the struct layouts of libvirt's header and virbackup's, entry by entry. */
#include <stddef.h>
#include <stdio.h>

#include "../tap.h"

extern const size_t real_layout[];
extern const size_t ours_layout[];

static const char *const names[] = {
    "sizeof(virError)", "virError.code", "virError.domain", "virError.message", "virError.level",
    "virError.conn", "virError.dom", "virError.str1", "virError.str2", "virError.str3", "virError.int1",
    "virError.int2", "virError.net", "sizeof(virErrorLevel)",
    "sizeof(virDomainInfo)", "virDomainInfo.state", "virDomainInfo.maxMem", "virDomainInfo.memory",
    "virDomainInfo.nrVirtCpu", "virDomainInfo.cpuTime",
    "sizeof(virConnectCredential)", "virConnectCredential.type", "virConnectCredential.prompt",
    "virConnectCredential.challenge", "virConnectCredential.defresult", "virConnectCredential.result",
    "virConnectCredential.resultlen",
    "sizeof(virConnectAuth)", "virConnectAuth.credtype", "virConnectAuth.ncredtype", "virConnectAuth.cb",
    "virConnectAuth.cbdata",
};

int main(void)
{
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        CHECK(real_layout[i] == ours_layout[i], "%s: libvirt %zu, virbackup %zu", names[i], real_layout[i],
              ours_layout[i]);
    return tap_done();
}
