/*
 * backup-demo.c: a full and an incremental backup of a real disk through libvirt's API,
 * on the embedded QEMU driver, printing each step.
 *
 * In a temporary folder: a 256 MiB qcow2 image with some data, a domain using it, a full
 * push backup of the shut-off domain with checkpoint c1 (libvirt itself refuses backups
 * of shut-off domains), the domain started and written to through its disk's FUSE file,
 * an incremental backup of what changed since c1 (creating c2), and a restore (the
 * incremental rebased onto the full) compared with the disk. Then a snapshot, a mistake
 * written after it and a revert, and an incremental since c2 that still restores the
 * disk: checkpoints stay correct across reverts.
 *
 *   ./build/backup-demo [--keep]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static char dir[] = "/tmp/virbackup-demo-XXXXXX";
static int step;
static int job_done;

static void say(const char *what)
{
    printf("\n[%d] %s\n", ++step, what);
    fflush(stdout);
}

static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    printf("    $ %s\n", cmd);
    fflush(stdout);
    return system(cmd);
}

static void fail(const char *what)
{
    fprintf(stderr, "demo failed: %s: %s\n", what, virGetLastErrorMessage());
    exit(1);
}

static void on_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams,
                             void *opaque)
{
    unsigned long long elapsed = 0, total = 0;
    int success = 0;
    (void)conn;
    (void)opaque;
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_TIME_ELAPSED, &elapsed);
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DISK_TOTAL, &total);
    virTypedParamsGetBoolean(params, nparams, VIR_DOMAIN_JOB_SUCCESS, &success);
    printf("    event job-completed for domain '%s': success=%d, disk_total=%llu bytes, %llu ms\n",
           virDomainGetName(dom), success, total, elapsed);
    job_done = success ? 1 : -1;
}

/* Starts a backup and runs the event loop until its job-completed event. */
static void backup(virDomainPtr dom, const char *xml, const char *checkpoint_xml)
{
    printf("    virDomainBackupBegin(dom, \"%s\",\n                         %s%s%s, 0)\n", xml, checkpoint_xml ? "\"" : "",
           checkpoint_xml ? checkpoint_xml : "NULL", checkpoint_xml ? "\"" : "");
    job_done = 0;
    if (virDomainBackupBegin(dom, xml, checkpoint_xml, 0) < 0)
        fail("virDomainBackupBegin");
    while (job_done == 0)
        if (virEventRunDefaultImpl() < 0)
            fail("virEventRunDefaultImpl");
    if (job_done < 0)
        fail("the backup job");
}

int main(int argc, char **argv)
{
    char uri[256], xml[2048], *desc;
    virConnectPtr conn;
    virDomainPtr dom;
    virDomainCheckpointPtr cp;
    virDomainSnapshotPtr snap;
    int keep = argc > 1 && strcmp(argv[1], "--keep") == 0;

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    say("A 256 MiB qcow2 disk with 64 MiB of data");
    if (shell("qemu-img create -q -f qcow2 %s/disk.qcow2 256M", dir) ||
        shell("qemu-io -f qcow2 -c 'write -P 0x11 0 64M' %s/disk.qcow2 >/dev/null", dir))
        return 1;

    say("Connect to the embedded QEMU driver and define a domain on the disk");
    snprintf(uri, sizeof(uri), "qemu:///embed?root=%s/root", dir);
    printf("    virConnectOpen(\"%s\")\n", uri);
    if (!(conn = virConnectOpen(uri)))
        fail("virConnectOpen");
    snprintf(xml, sizeof(xml),
             "<domain type='kvm'><name>demo</name><memory unit='MiB'>512</memory><os><type>hvm</type></os>"
             "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='%s/disk.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
             dir);
    if (!(dom = virDomainDefineXML(conn, xml)))
        fail("virDomainDefineXML");
    printf("    domain '%s' defined, shut off\n", virDomainGetName(dom));
    if (virEventRegisterDefaultImpl() < 0 ||
        virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_job_completed), NULL, NULL) < 0)
        fail("event registration");

    say("Full backup of the shut-off domain, creating checkpoint c1 at the same instant");
    snprintf(xml, sizeof(xml), "<domainbackup><disks><disk name='vda' type='file'><target file='%s/full.qcow2'/>"
             "</disk></disks></domainbackup>", dir);
    backup(dom, xml, "<domaincheckpoint><name>c1</name></domaincheckpoint>");
    shell("qemu-img info -U %s/disk.qcow2 | grep -A6 'bitmaps:'", dir);

    say("Start the domain and write 4 MiB into its disk as a guest would, through the file its live XML "
        "names (a FUSE export of the disk, run/qemu/demo/disks/vda)");
    if (virDomainCreate(dom) < 0)
        fail("virDomainCreate");
    if (shell("qemu-io -f raw -c 'write -P 0x22 100M 3M' -c 'write -P 0x33 200M 1M' "
              "'%s/root/run/qemu/demo/disks/vda' >/dev/null", dir))
        return 1;
    if (!(cp = virDomainCheckpointLookupByName(dom, "c1", 0)) ||
        !(desc = virDomainCheckpointGetXMLDesc(cp, VIR_DOMAIN_CHECKPOINT_XML_SIZE | VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN)))
        fail("checkpoint c1");
    printf("    checkpoint c1 with the size of what changed since:\n%s", desc);
    free(desc);
    virDomainCheckpointFree(cp);

    say("Incremental backup of the running domain: only what changed since c1");
    snprintf(xml, sizeof(xml), "<domainbackup><incremental>c1</incremental><disks><disk name='vda' type='file'>"
             "<target file='%s/inc.qcow2'/></disk></disks></domainbackup>", dir);
    backup(dom, xml, "<domaincheckpoint><name>c2</name></domaincheckpoint>");
    if (virDomainDestroy(dom) < 0)
        fail("virDomainDestroy");
    printf("    domain stopped\n");
    shell("ls -s --block-size=K %s/full.qcow2 %s/inc.qcow2", dir, dir);

    say("Restore: the incremental on top of the full, compared with the disk");
    if (shell("cp %s/inc.qcow2 %s/restored.qcow2 && qemu-img rebase -u -F qcow2 -b %s/full.qcow2 %s/restored.qcow2",
              dir, dir, dir, dir) ||
        shell("qemu-img compare %s/restored.qcow2 %s/disk.qcow2", dir, dir)) {
        fprintf(stderr, "demo failed: the restored image differs from the disk\n");
        return 1;
    }

    say("Start the domain again, take snapshot s1, write a mistake after it, and revert to s1");
    if (virDomainCreate(dom) < 0)
        fail("virDomainCreate");
    if (!(snap = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>s1</name></domainsnapshot>", 0)))
        fail("virDomainSnapshotCreateXML");
    printf("    virDomainSnapshotCreateXML(dom, \"<domainsnapshot><name>s1</name></domainsnapshot>\", 0)\n");
    if (shell("qemu-io -f raw -c 'write -P 0x66 150M 2M' '%s/root/run/qemu/demo/disks/vda' >/dev/null", dir))
        return 1;
    if (virDomainRevertToSnapshot(snap, 0) < 0)
        fail("virDomainRevertToSnapshot");
    printf("    virDomainRevertToSnapshot(s1, 0): the domain runs again from s1\n");
    if (shell("qemu-img compare -U %s/restored.qcow2 %s/disk.qcow2", dir, dir)) {
        fprintf(stderr, "demo failed: the revert did not bring the disk back\n");
        return 1;
    }

    say("Incremental backup since c2: checkpoints stay correct across the revert (the clusters it put "
        "back are in the backup)");
    snprintf(xml, sizeof(xml), "<domainbackup><incremental>c2</incremental><disks><disk name='vda' type='file'>"
             "<target file='%s/inc2.qcow2'/></disk></disks></domainbackup>", dir);
    backup(dom, xml, NULL);
    if (virDomainDestroy(dom) < 0)
        fail("virDomainDestroy");
    if (shell("cp %s/inc2.qcow2 %s/restored2.qcow2 && qemu-img rebase -u -F qcow2 -b %s/restored.qcow2 "
              "%s/restored2.qcow2", dir, dir, dir, dir) ||
        shell("qemu-img compare %s/restored2.qcow2 %s/disk.qcow2", dir, dir)) {
        fprintf(stderr, "demo failed: the incremental after the revert does not restore the disk\n");
        return 1;
    }
    virDomainSnapshotFree(snap);

    virDomainFree(dom);
    virConnectClose(conn);
    if (keep)
        printf("\nAll files are in %s\n", dir);
    else
        shell("rm -rf %s", dir);
    printf("\ndemo finished: full + incremental backups restored and identical to the disk, before and after "
           "a revert\n");
    return 0;
}
