/*
 * test-qemu.c: the embedded QEMU driver through the C API, on real qcow2 images in a
 * temporary folder: domains, checkpoints on a shut-off and on a running domain, the
 * bitmaps seen with qemu-img, dirty sizes, snapshots and reverts, persistence across
 * connections, read-only access.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "tap.h"

static char dir[] = "/tmp/vbqemuXXXXXX";
static char uri[256];

static void quiet(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

/* Runs a shell command; true when it exits 0. */
static int sh(const char *fmt, const char *arg)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg);
    return system(cmd) == 0;
}

static char *domain_xml(void)
{
    static char xml[2048];
    snprintf(xml, sizeof(xml),
             "<domain type='kvm'><name>ctest</name><memory unit='MiB'>128</memory>"
             "<os><type>hvm</type></os><devices>"
             "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='%s/a.qcow2'/><target dev='vda' bus='virtio'/></disk>"
             "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
             "<source file='%s/b.raw'/><target dev='vdb' bus='virtio'/></disk>"
             "</devices></domain>",
             dir, dir);
    return xml;
}

static const char *CP = "<domaincheckpoint><name>%s</name><disks><disk name='vda'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>";

static virDomainCheckpointPtr make(virDomainPtr dom, const char *name)
{
    char xml[512];
    snprintf(xml, sizeof(xml), CP, name);
    return virDomainCheckpointCreateXML(dom, xml, 0);
}

static int image_has_bitmap(const char *name)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "qemu-img info -U --output=json %s/a.qcow2 | grep -q '\"name\": \"%%s\"'", dir);
    return sh(cmd, name);
}

static void test_shut_off(void)
{
    virConnectPtr conn = virConnectOpen(uri);
    virDomainPtr dom;
    virDomainCheckpointPtr cp;
    char *xml;

    CHECK(conn != NULL, "open %s", uri);
    CHECK(strcmp(virConnectGetType(conn), "QEMU") == 0, "driver type QEMU");
    dom = virDomainDefineXML(conn, domain_xml());
    CHECK(dom != NULL, "define a domain with a qcow2 and a raw disk");
    CHECK(virDomainIsActive(dom) == 0, "defined domains are shut off");

    cp = make(dom, "c1");
    CHECK(cp != NULL, "checkpoint of a shut-off domain: %s", cp ? "ok" : virGetLastErrorMessage());
    CHECK(image_has_bitmap("c1"), "qemu-img sees persistent bitmap c1");
    CHECK(sh("qemu-io -f qcow2 -c 'write -P 0x42 1M 512k' %s/a.qcow2 >/dev/null", dir), "write 512 KiB with qemu-io");
    xml = virDomainCheckpointGetXMLDesc(cp, VIR_DOMAIN_CHECKPOINT_XML_SIZE | VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN);
    CHECK(xml && strstr(xml, "<disk name='vda' checkpoint='bitmap' bitmap='c1' size='524288'/>"),
          "XML_SIZE reports the dirty bytes:\n%s", xml ? xml : virGetLastErrorMessage());
    free(xml);
    virDomainCheckpointFree(cp);

    cp = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><name>raw</name></domaincheckpoint>", 0);
    CHECK(cp == NULL, "a raw disk cannot hold a bitmap");
    CHECK_ERROR(VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_QEMU,
                "unsupported configuration: checkpoint for disk vdb unsupported for storage type raw", "raw disk");
    CHECK(virDomainCheckpointCreateXML(dom, "<domaincheckpoint/>", VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE) == NULL,
          "QUIESCE refused as libvirt's QEMU driver refuses it");
    CHECK_ERROR(VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "unsupported flags (0x2) in function qemuCheckpointCreateXML", "quiesce");

    virDomainFree(dom);
    CHECK(virConnectClose(conn) == 0, "close");
}

static void test_running(void)
{
    virConnectPtr conn = virConnectOpen(uri);
    virDomainPtr dom = virDomainLookupByName(conn, "ctest");
    virDomainCheckpointPtr cp;
    char *xml, sock[512];
    int state = -1, reason = -1, rc;

    rc = virDomainCreate(dom);
    CHECK(rc == 0, "start: %s", virGetLastErrorMessage());
    CHECK(virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING, "running");
    CHECK(virDomainGetID(dom) != (unsigned int)-1, "a running domain has an id");
    xml = virDomainGetXMLDesc(dom, 0);
    snprintf(sock, sizeof(sock), "<virbackup:disk target='vda' interface='fuse' path='%s/root/run/qemu/ctest/disks/vda'/>",
             dir);
    CHECK(xml && strstr(xml, sock), "live XML names the disk's FUSE file");
    free(xml);

    cp = make(dom, "c2");
    CHECK(cp != NULL, "checkpoint of a running domain");
    CHECK(sh("qemu-io -f raw -c 'write -P 0x77 8M 64k' '%s/root/run/qemu/ctest/disks/vda' >/dev/null", dir),
          "write through the disk's FUSE file");
    xml = virDomainCheckpointGetXMLDesc(cp, VIR_DOMAIN_CHECKPOINT_XML_SIZE);
    CHECK(xml && strstr(xml, "bitmap='c2' size='65536'/>"), "live dirty size");
    free(xml);
    virDomainCheckpointFree(cp);

    CHECK(virDomainCreate(dom) == -1, "starting twice is refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, "Requested operation is not valid: domain is already running", "twice");
    CHECK(virDomainShutdown(dom) == 0, "shut down");
    CHECK(virDomainIsActive(dom) == 0, "shut off again");
    CHECK(image_has_bitmap("c2"), "the daemon wrote bitmap c2 back when it quit");
    CHECK(virDomainDestroy(dom) == -1, "destroying a shut-off domain is refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_DOMAIN, "Requested operation is not valid: domain is not running", "destroy");
    virDomainFree(dom);
    virConnectClose(conn);
}

/* What the event callbacks saw. */
static int completed_events;
static int completed_operation = -1;
static int completed_success = -1;
static unsigned long long completed_total;
static char completed_errmsg[256];
static int block_job_events;
static int block_job_type = -1, block_job_status = -1;
static char block_job_disk[64];
static int timed_out;

static void on_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams,
                             void *opaque)
{
    const char *errmsg = NULL;
    (void)conn;
    (void)opaque;
    completed_events++;
    if (strcmp(virDomainGetName(dom), "ctest") != 0)
        return;
    virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &completed_operation);
    virTypedParamsGetBoolean(params, nparams, VIR_DOMAIN_JOB_SUCCESS, &completed_success);
    virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DISK_TOTAL, &completed_total);
    completed_errmsg[0] = '\0';
    if (virTypedParamsGetString(params, nparams, VIR_DOMAIN_JOB_ERRMSG, &errmsg) == 1)
        snprintf(completed_errmsg, sizeof(completed_errmsg), "%s", errmsg);
}

static void on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type, int status, void *opaque)
{
    (void)conn;
    (void)dom;
    (void)opaque;
    block_job_events++;
    snprintf(block_job_disk, sizeof(block_job_disk), "%s", disk);
    block_job_type = type;
    block_job_status = status;
}

static void on_timeout(int timer, void *opaque)
{
    (void)timer;
    (void)opaque;
    timed_out = 1;
}

/* Runs the event loop until a JOB_COMPLETED event arrives (or 60 s pass). */
static int wait_completed(int before)
{
    int timer;
    timed_out = 0;
    timer = virEventAddTimeout(60000, on_timeout, NULL, NULL);
    while (completed_events == before && !timed_out)
        virEventRunDefaultImpl();
    virEventRemoveTimeout(timer);
    return completed_events > before;
}

static void test_backup(void)
{
    virConnectPtr conn = virConnectOpen(uri);
    virDomainPtr dom = virDomainLookupByName(conn, "ctest");
    virDomainCheckpointPtr cp;
    virTypedParameterPtr params = NULL;
    virDomainJobInfo info;
    virDomainBlockJobInfo block;
    int type = -1, nparams = -1, id_completed, id_block, before, rc;
    char xml[1024], *desc;

    CHECK(virEventRegisterDefaultImpl() == 0, "register the default event loop");
    id_completed = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                                    VIR_DOMAIN_EVENT_CALLBACK(on_job_completed), NULL, NULL);
    id_block = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                                VIR_DOMAIN_EVENT_CALLBACK(on_block_job), NULL, NULL);
    CHECK(id_completed >= 0 && id_block >= 0 && id_block != id_completed, "register JOB_COMPLETED and BLOCK_JOB_2");

    CHECK(virDomainBackupGetXMLDesc(dom, 0) == NULL, "no backup yet");
    CHECK_ERROR(VIR_ERR_NO_DOMAIN_BACKUP, VIR_FROM_QEMU, "Domain backup job id not found: no domain backup job present", "no backup");
    CHECK(virDomainAbortJob(dom) == -1, "nothing to abort");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, "Requested operation is not valid: no job is active on the domain", "abort");

    /* A full push of the shut-off domain, vda only, with a checkpoint. */
    snprintf(xml, sizeof(xml),
             "<domainbackup><disks><disk name='vda' type='file'><target file='%s/full.qcow2'/></disk>"
             "<disk name='vdb' backup='no'/></disks></domainbackup>", dir);
    before = completed_events;
    /* The call runs before the message is read: arguments are evaluated in no fixed order. */
    rc = virDomainBackupBegin(dom, xml, "<domaincheckpoint><name>b1</name><disks><disk name='vda'/>"
                                        "<disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>", 0);
    CHECK(rc == 0, "push backup of a shut-off domain: %s", virGetLastErrorMessage());
    CHECK(wait_completed(before), "JOB_COMPLETED arrives through the event loop");
    CHECK(completed_operation == VIR_DOMAIN_JOB_OPERATION_BACKUP && completed_success == 1 && completed_total == 32 << 20,
          "its typed parameters: operation %d, success %d, disk_total %llu", completed_operation, completed_success,
          completed_total);
    CHECK(block_job_events >= 1 && strcmp(block_job_disk, "vda") == 0 && block_job_type == VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP &&
              block_job_status == VIR_DOMAIN_BLOCK_JOB_COMPLETED,
          "BLOCK_JOB_2 for vda: type %d status %d", block_job_type, block_job_status);
    CHECK(sh("qemu-img compare -q %s/full.qcow2 %s/a.qcow2", dir), "the target equals the disk");
    CHECK(virDomainGetJobStats(dom, &type, &params, &nparams, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0 &&
              type == VIR_DOMAIN_JOB_COMPLETED && nparams >= 6,
          "completed statistics: type %d, %d parameters", type, nparams);
    virTypedParamsFree(params, nparams);
    params = NULL;
    CHECK(virDomainGetJobStats(dom, &type, &params, &nparams, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0 &&
              type == VIR_DOMAIN_JOB_NONE && nparams == 0 && params == NULL,
          "read once");
    cp = virDomainCheckpointLookupByName(dom, "b1", 0);
    CHECK(cp != NULL && image_has_bitmap("b1"), "checkpoint b1 with its bitmap");
    if (cp)
        virDomainCheckpointFree(cp);

    /* A pull backup of the running domain, aborted. */
    CHECK(virDomainCreate(dom) == 0, "start");
    snprintf(xml, sizeof(xml),
             "<domainbackup mode='pull'><incremental>b1</incremental><server transport='unix' socket='%s/b.sock'/>"
             "<disks><disk name='vda' type='file'><scratch file='%s/scratch.qcow2'/></disk>"
             "<disk name='vdb' backup='no'/></disks></domainbackup>", dir, dir);
    rc = virDomainBackupBegin(dom, xml, NULL, 0);
    CHECK(rc == 0, "pull backup: %s", virGetLastErrorMessage());
    desc = virDomainBackupGetXMLDesc(dom, 0);
    CHECK(desc && strstr(desc, "exportname='vda' exportbitmap='backup-vda'"), "backup XML: %s", desc ? desc : "(null)");
    free(desc);
    memset(&info, 0, sizeof(info));
    CHECK(virDomainGetJobInfo(dom, &info) == 0 && info.type == VIR_DOMAIN_JOB_UNBOUNDED, "job info: unbounded");
    CHECK(virDomainGetBlockJobInfo(dom, "vda", &block, 0) == 1 && block.type == VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP,
          "vda has a backup block job");
    CHECK(virDomainGetBlockJobInfo(dom, "vdb", &block, 0) == 0, "vdb has none");
    CHECK(sh("nbdinfo --list 'nbd+unix:///?socket=%s/b.sock' | grep -q 'export=\"vda\"'", dir), "nbdinfo sees export vda");
    CHECK(virDomainBackupBegin(dom, xml, NULL, 0) == -1, "a second backup is refused");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, "Requested operation is not valid: another backup job is already running", "second");
    before = completed_events;
    CHECK(virDomainAbortJobFlags(dom, 0) == 0, "abort ends the pull backup");
    CHECK(wait_completed(before) && completed_success == 1, "successfully (errmsg '%s')", completed_errmsg);
    CHECK(!sh("test -e %s/scratch.qcow2", dir), "the scratch image is gone");
    CHECK(virDomainDestroy(dom) == 0, "stop");
    cp = virDomainCheckpointLookupByName(dom, "b1", 0);
    CHECK(cp && virDomainCheckpointDelete(cp, 0) == 0 && !image_has_bitmap("b1"), "delete checkpoint b1");
    if (cp)
        virDomainCheckpointFree(cp);

    CHECK(virConnectDomainEventDeregisterAny(conn, id_completed) == 0 &&
              virConnectDomainEventDeregisterAny(conn, id_block) == 0,
          "deregister");
    virDomainFree(dom);
    virConnectClose(conn);
}

/* Internal snapshots: a shut-off and a running domain with one qcow2 disk; the data
 * comes back on revert; libvirt's refusal of raw disks; undefine needs
 * SNAPSHOTS_METADATA. */
static void test_snapshots(void)
{
    virConnectPtr conn = virConnectOpen(uri);
    virDomainPtr dom, raw;
    virDomainSnapshotPtr s1, s2, live, ext, current, *list = NULL;
    char xml[1024], *desc;
    int n;

    snprintf(xml, sizeof(xml),
             "<domain type='kvm'><name>csnap</name><memory unit='MiB'>128</memory><os><type>hvm</type></os>"
             "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='%s/c.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
             dir);
    dom = virDomainDefineXML(conn, xml);
    CHECK(dom != NULL, "define a domain with one qcow2 disk");
    s1 = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>s1</name></domainsnapshot>", 0);
    CHECK(s1 != NULL, "snapshot of the shut-off domain: %s", s1 ? "ok" : virGetLastErrorMessage());
    CHECK(sh("qemu-io -f qcow2 -c 'write -P 0x5c 0 64k' %s/c.qcow2 >/dev/null", dir), "write after s1");
    s2 = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>s2</name></domainsnapshot>", 0);
    CHECK(s2 != NULL && virDomainSnapshotIsCurrent(s2, 0) == 1, "s2 is current");
    CHECK(virDomainRevertToSnapshot(s1, 0) == 0, "revert to s1: %s", virGetLastErrorMessage());
    CHECK(sh("qemu-io -r -f qcow2 -c 'read -P 0x5c 0 64k' %s/c.qcow2 | grep -q 'Pattern verification failed'", dir),
          "the write after s1 is gone");
    CHECK(virDomainRevertToSnapshot(s2, 0) == 0 &&
              !sh("qemu-io -r -f qcow2 -c 'read -P 0x5c 0 64k' %s/c.qcow2 | grep -q 'Pattern verification failed'", dir),
          "and back with s2");
    desc = virDomainSnapshotGetXMLDesc(s1, 0);
    CHECK(desc && strstr(desc, "<state>shutoff</state>") && strstr(desc, "<disk name='vda' snapshot='internal'/>"),
          "s1's XML:\n%s", desc ? desc : virGetLastErrorMessage());
    free(desc);

    CHECK(virDomainCreate(dom) == 0, "start");
    live = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>live</name></domainsnapshot>", 0);
    CHECK(live != NULL, "snapshot of the running domain: %s", live ? "ok" : virGetLastErrorMessage());
    desc = live ? virDomainSnapshotGetXMLDesc(live, 0) : NULL;
    CHECK(desc && strstr(desc, "<state>disk-snapshot</state>"), "a running domain's snapshot holds its disks");
    free(desc);
    CHECK(virDomainRevertToSnapshot(s1, 0) == 0 && virDomainIsActive(dom) == 0,
          "reverting to a shut-off snapshot shuts the domain off");
    CHECK(live && virDomainRevertToSnapshot(live, 0) == 0 && virDomainIsActive(dom) == 1,
          "reverting to the running domain's snapshot starts it");
    current = virDomainSnapshotCurrent(dom, 0);
    CHECK(current && strcmp(virDomainSnapshotGetName(current), "live") == 0, "live is current");
    if (current)
        virDomainSnapshotFree(current);
    n = virDomainListAllSnapshots(dom, &list, VIR_DOMAIN_SNAPSHOT_LIST_ROOTS);
    CHECK(n == 1 && strcmp(virDomainSnapshotGetName(list[0]), "s1") == 0 && list[1] == NULL, "one root, s1");
    for (n = 0; list && list[n]; n++)
        virDomainSnapshotFree(list[n]);
    free(list);
    CHECK(virDomainDestroy(dom) == 0, "destroy");
    CHECK(virDomainUndefine(dom) == -1, "undefine refused while snapshots exist");
    CHECK_ERROR(VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                "Requested operation is not valid: cannot delete inactive domain with 3 snapshots", "undefine");
    CHECK(virDomainSnapshotDelete(s1, VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN) == 0 &&
              virDomainSnapshotNum(dom, 0) == 0,
          "delete s1 and its descendants");
    CHECK(sh("qemu-img info -U %s/c.qcow2 | grep -q 'Snapshot list'", dir) == 0, "no internal snapshot left");

    /* An external snapshot of the running domain: the engine puts an overlay under the
     * disk; reverting restarts the domain on a new empty overlay; deleting it, shut off,
     * commits it into the image. */
    CHECK(virDomainCreate(dom) == 0, "start again");
    ext = virDomainSnapshotCreateXML(dom, "<domainsnapshot><name>e1</name></domainsnapshot>",
                                     VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY);
    CHECK(ext != NULL, "external snapshot of the running domain: %s", ext ? "ok" : virGetLastErrorMessage());
    desc = virDomainGetXMLDesc(dom, 0);
    snprintf(xml, sizeof(xml), "<source file='%s/c.e1'/>", dir);
    CHECK(desc && strstr(desc, xml), "the running domain is on the overlay");
    free(desc);
    CHECK(ext && virDomainRevertToSnapshot(ext, 0) == 0 && virDomainIsActive(dom) == 1,
          "reverting to it restarts the domain: %s", virGetLastErrorMessage());
    CHECK(virDomainDestroy(dom) == 0, "destroy");
    CHECK(ext && virDomainSnapshotDelete(ext, 0) == 0, "delete e1: %s", virGetLastErrorMessage());
    desc = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    snprintf(xml, sizeof(xml), "<source file='%s/c.qcow2'/>", dir);
    CHECK(desc && strstr(desc, xml), "back on the image once e1 is deleted");
    free(desc);
    snprintf(xml, sizeof(xml), "%s/c.e1", dir);
    CHECK(access(xml, F_OK) != 0, "the overlay is gone");
    if (ext)
        virDomainSnapshotFree(ext);

    raw = virDomainLookupByName(conn, "ctest");
    CHECK(virDomainSnapshotCreateXML(raw, "<domainsnapshot/>", 0) == NULL, "a raw disk cannot hold an internal snapshot");
    CHECK_ERROR(VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_QEMU,
                "unsupported configuration: internal snapshot for disk vdb unsupported for storage type raw", "raw");
    virDomainFree(raw);
    if (s1)
        virDomainSnapshotFree(s1);
    if (s2)
        virDomainSnapshotFree(s2);
    if (live)
        virDomainSnapshotFree(live);
    CHECK(virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) == 0, "undefine");
    virDomainFree(dom);
    virConnectClose(conn);
}

static void test_persistence_and_read_only(void)
{
    virConnectPtr ro = virConnectOpenReadOnly(uri);
    virDomainPtr dom = virDomainLookupByName(ro, "ctest");
    virDomainCheckpointPtr *list = NULL, parent, cp;
    int n;

    n = virDomainListAllCheckpoints(dom, &list, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    CHECK(n == 2 && strcmp(virDomainCheckpointGetName(list[0]), "c1") == 0 &&
              strcmp(virDomainCheckpointGetName(list[1]), "c2") == 0 && list[2] == NULL,
          "a new connection lists c1, c2 from disk");
    parent = n == 2 ? virDomainCheckpointGetParent(list[1], 0) : NULL;
    CHECK(parent && strcmp(virDomainCheckpointGetName(parent), "c1") == 0, "c2's parent is c1");
    if (parent)
        virDomainCheckpointFree(parent);
    CHECK(virDomainCheckpointDelete(list[0], 0) == -1, "read-only connections cannot delete");
    CHECK_ERROR(VIR_ERR_OPERATION_DENIED, VIR_FROM_DOMAIN_CHECKPOINT,
                "operation forbidden: read only access prevents virDomainCheckpointDelete", "read-only delete");
    CHECK(make(dom, "c3") == NULL && virGetLastErrorCode() == VIR_ERR_OPERATION_DENIED, "or create");
    for (n = 0; list && list[n]; n++)
        virDomainCheckpointFree(list[n]);
    free(list);
    virDomainFree(dom);
    virConnectClose(ro);

    {
        virConnectPtr rw = virConnectOpen(uri);
        virDomainPtr d = virDomainLookupByName(rw, "ctest");
        cp = virDomainCheckpointLookupByName(d, "c1", 0);
        CHECK(cp && virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN) == 0, "delete c1 and its child");
        CHECK(!image_has_bitmap("c1") && !image_has_bitmap("c2"), "both bitmaps are gone from the image");
        CHECK(virDomainListAllCheckpoints(d, NULL, 0) == 0, "no checkpoints left");
        virDomainCheckpointFree(cp);
        CHECK(virDomainUndefine(d) == 0, "undefine");
        virDomainFree(d);
        virConnectClose(rw);
    }
}

int main(void)
{
    char cmd[512];
    virSetErrorFunc(NULL, quiet);
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    snprintf(uri, sizeof(uri), "qemu:///embed?root=%s/root", dir);
    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s/a.qcow2 32M && qemu-img create -q -f raw %s/b.raw 8M && "
             "qemu-img create -q -f qcow2 %s/c.qcow2 8M", dir, dir, dir);
    if (system(cmd) != 0) {
        printf("Bail out! qemu-img failed\n");
        return 1;
    }
    test_shut_off();
    test_running();
    test_backup();
    test_snapshots();
    test_persistence_and_read_only();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
