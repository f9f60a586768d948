/*
 * layout-table.h: sizes and field offsets of the public structs, compiled once against
 * libvirt's header (layout-real.c) and once against virbackup's (layout-ours.c).
 * Define LAYOUT_PREFIX before including.
 */
#include <stddef.h>

#define LAYOUT_CAT2(a, b) a##b
#define LAYOUT_CAT(a, b) LAYOUT_CAT2(a, b)

const size_t LAYOUT_CAT(LAYOUT_PREFIX, _layout)[] = {
    sizeof(virError), offsetof(virError, code), offsetof(virError, domain), offsetof(virError, message),
    offsetof(virError, level), offsetof(virError, conn), offsetof(virError, dom), offsetof(virError, str1),
    offsetof(virError, str2), offsetof(virError, str3), offsetof(virError, int1), offsetof(virError, int2),
    offsetof(virError, net), sizeof(virErrorLevel),
    sizeof(virDomainInfo), offsetof(virDomainInfo, state), offsetof(virDomainInfo, maxMem),
    offsetof(virDomainInfo, memory), offsetof(virDomainInfo, nrVirtCpu), offsetof(virDomainInfo, cpuTime),
    sizeof(virConnectCredential), offsetof(virConnectCredential, type), offsetof(virConnectCredential, prompt),
    offsetof(virConnectCredential, challenge), offsetof(virConnectCredential, defresult),
    offsetof(virConnectCredential, result), offsetof(virConnectCredential, resultlen),
    sizeof(virConnectAuth), offsetof(virConnectAuth, credtype), offsetof(virConnectAuth, ncredtype),
    offsetof(virConnectAuth, cb), offsetof(virConnectAuth, cbdata),
    sizeof(virTypedParameter), offsetof(virTypedParameter, field), offsetof(virTypedParameter, type),
    offsetof(virTypedParameter, value), offsetof(virTypedParameter, value.i), offsetof(virTypedParameter, value.ul),
    offsetof(virTypedParameter, value.d), offsetof(virTypedParameter, value.b), offsetof(virTypedParameter, value.s),
    sizeof(((virTypedParameter *)0)->value),
    sizeof(virDomainJobInfo), offsetof(virDomainJobInfo, type), offsetof(virDomainJobInfo, timeElapsed),
    offsetof(virDomainJobInfo, timeRemaining), offsetof(virDomainJobInfo, dataTotal),
    offsetof(virDomainJobInfo, dataProcessed), offsetof(virDomainJobInfo, dataRemaining),
    offsetof(virDomainJobInfo, memTotal), offsetof(virDomainJobInfo, memProcessed),
    offsetof(virDomainJobInfo, memRemaining), offsetof(virDomainJobInfo, fileTotal),
    offsetof(virDomainJobInfo, fileProcessed), offsetof(virDomainJobInfo, fileRemaining),
    sizeof(virDomainBlockJobInfo), offsetof(virDomainBlockJobInfo, type), offsetof(virDomainBlockJobInfo, bandwidth),
    offsetof(virDomainBlockJobInfo, cur), offsetof(virDomainBlockJobInfo, end),
};
