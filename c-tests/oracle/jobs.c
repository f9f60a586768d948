/*
 * jobs.c: the job, event and typed-parameter calls where libvirt's test driver has them,
 * and the public-layer checks of the backup calls (which libvirt's test driver lacks, so
 * only the checks made before the driver is called are compared).
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

static void dummy_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams,
                                void *opaque)
{
    (void)conn;
    (void)dom;
    (void)params;
    (void)nparams;
    (void)opaque;
}

static void typed_params(void)
{
    virTypedParameter params[4];
    int i = 0;
    unsigned long long ull = 0;
    const char *str = NULL;

    printf("== typed parameters\n");
    memset(params, 0, sizeof(params));
    snprintf(params[0].field, sizeof(params[0].field), "operation");
    params[0].type = VIR_TYPED_PARAM_INT;
    params[0].value.i = 9;
    snprintf(params[1].field, sizeof(params[1].field), "disk_total");
    params[1].type = VIR_TYPED_PARAM_ULLONG;
    params[1].value.ul = 1ULL << 40;
    snprintf(params[2].field, sizeof(params[2].field), "errmsg");
    params[2].type = VIR_TYPED_PARAM_STRING;
    params[2].value.s = (char *)"boom";

    INT(virTypedParamsGetInt(params, 3, "operation", &i));
    printf("    i=%d\n", i);
    INT(virTypedParamsGetULLong(params, 3, "disk_total", &ull));
    printf("    ull=%llu\n", ull);
    INT(virTypedParamsGetString(params, 3, "errmsg", &str));
    printf("    str=%s\n", s(str));
    INT(virTypedParamsGetInt(params, 3, "missing", &i));
    INT(virTypedParamsGetInt(params, 3, "disk_total", &i));
    INT(virTypedParamsGetULLong(params, 3, "operation", &ull));
    INT(virTypedParamsGetInt(NULL, 0, "operation", &i));
    INT(virTypedParamsGetInt(params, 3, NULL, &i));
    INT(virTypedParamsGetInt(params, 3, "operation", NULL));
    PTR(virTypedParamsGet(params, 3, "errmsg"));
    PTR(virTypedParamsGet(params, 3, "nothing"));
    virTypedParamsFree(NULL, 0);
    printf("virTypedParamsFree(NULL, 0) done\n");
}

static void jobs(virConnectPtr conn, virDomainPtr dom)
{
    virDomainJobInfo info;
    int type = -1, nparams = -1;
    (void)type;
    virTypedParameterPtr params = NULL;
    virDomainBlockJobInfo block;

    /* libvirt's test driver has no job calls (virbackup's runs backups); only the checks
     * made before the driver is called are compared. */
    printf("== jobs\n");
    INT(virDomainGetJobInfo(dom, NULL));
    INT(virDomainGetJobInfo(NULL, &info));
    INT(virDomainGetJobStats(dom, NULL, &params, &nparams, 0));
    INT(virDomainGetJobStats(dom, &type, NULL, &nparams, 0));
    INT(virDomainAbortJob(NULL));
    INT(virDomainGetBlockJobInfo(dom, NULL, &block, 0));
    INT(virDomainGetBlockJobInfo(NULL, "vda", &block, 0));

    printf("== backup public checks\n");
    INT(virDomainBackupBegin(NULL, "<domainbackup/>", NULL, 0));
    INT(virDomainBackupBegin(dom, NULL, NULL, 0));
    PTR(virDomainBackupGetXMLDesc(NULL, 0));

    printf("== events\n");
    INT(virEventRegisterDefaultImpl());
    int id = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                              VIR_DOMAIN_EVENT_CALLBACK(dummy_job_completed), NULL, NULL);
    printf("register JOB_COMPLETED: %s\n", id >= 0 ? "an id" : "-1");
    show_error();
    INT(virConnectDomainEventRegisterAny(conn, dom, 1000, VIR_DOMAIN_EVENT_CALLBACK(dummy_job_completed), NULL, NULL));
    INT(virConnectDomainEventRegisterAny(conn, dom, -1, VIR_DOMAIN_EVENT_CALLBACK(dummy_job_completed), NULL, NULL));
    INT(virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, NULL, NULL, NULL));
    INT(virConnectDomainEventRegisterAny(NULL, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                         VIR_DOMAIN_EVENT_CALLBACK(dummy_job_completed), NULL, NULL));
    INT(virConnectDomainEventDeregisterAny(conn, id));
    INT(virConnectDomainEventDeregisterAny(conn, id));
    INT(virConnectDomainEventDeregisterAny(conn, -1));
    INT(virConnectDomainEventDeregisterAny(NULL, 0));
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    virConnectPtr ro = virConnectOpenReadOnly("test:///default");
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    virDomainPtr ro_dom = virDomainLookupByName(ro, "test");

    typed_params();
    jobs(conn, dom);
    printf("== read-only connection\n");
    INT(virDomainBackupBegin(ro_dom, "<domainbackup/>", NULL, 0));
    INT(virDomainAbortJob(ro_dom));

    virDomainFree(ro_dom);
    virDomainFree(dom);
    virConnectClose(ro);
    virConnectClose(conn);
    return 0;
}
