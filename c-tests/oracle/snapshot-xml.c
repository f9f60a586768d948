/*
 * snapshot-xml.c: the <domainsnapshot> document on test:///default, going in and coming
 * out.
 *
 * Input of a plain create: the empty document (the name defaults to the creation time),
 * name and description (escaping), the elements a plain create ignores (<state>,
 * <creationTime>, <parent>, unknown elements), <memory> in every form, <disks> with each
 * snapshot mode, sources, drivers and disk names (by target and by path), the defaults
 * filled in for a domain's other disks (external file names derived from the disk's own
 * file), duplicate and hostile names, malformed documents, wrong root elements and schema
 * errors with VALIDATE. Redefinition (REDEFINE): the required elements, states, parents,
 * <domain> with a wrong uuid, <inactiveDomain>, CURRENT, replacing a snapshot in place
 * (which properties may not change). Output: GetXMLDesc with and without SECURE and with
 * unknown flags.
 *
 * Creation times of plain creates are wall-clock values and are masked, and so are the
 * names that default to them. Redefined snapshots carry only the times this program
 * wrote, which are printed as they are. The <domain> embedded in a snapshot is printed in
 * full only for plain creates on the default "test" domain; elsewhere (domains defined
 * here, redefinitions, <inactiveDomain>) libvirt's re-formatting of a parsed definition
 * is not what is compared, and the block is replaced by a marker line. A temporary
 * directory holds a real disk image for the derived file names; its path is printed as
 * DIR.
 */
#define _POSIX_C_SOURCE 200809L

#include <sys/stat.h>

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
#define CURRENT VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
#define VALIDATE VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE
#define SECURE VIR_DOMAIN_SNAPSHOT_XML_SECURE
#define HIGH (1U << 31)

#define XD_UUID "0b4f7a6e-3c2d-4e1f-8a9b-1c2d3e4f5a6b"
#define TEST_UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

static char dir[64];           /* the temporary directory */
static char xd_xml[2048];      /* the definition of the domain "xd" */
static char xd_xml_big[2048];  /* the same with more memory */

/* ---- printing ----------------------------------------------------------------------- */

/*
 * Replaces each embedded definition, from "\n  <TAG type=" or "\n  <TAG>" to "\n  </TAG>",
 * with one marker line; returns a new string and frees xml.
 */
static char *mask_block(char *xml, const char *tag)
{
    char open1[64], open2[64], close[64];
    char *out, *o;
    const char *p;

    if (!xml)
        return NULL;
    snprintf(open1, sizeof(open1), "\n  <%s type=", tag);
    snprintf(open2, sizeof(open2), "\n  <%s>\n    <name>", tag);
    snprintf(close, sizeof(close), "\n  </%s>", tag);
    out = malloc(strlen(xml) + 64);
    if (!out)
        abort();
    for (o = out, p = xml;;) {
        const char *a = strstr(p, open1);
        const char *b = strstr(p, open2);
        const char *start = a && (!b || a < b) ? a : b;
        const char *end = start ? strstr(start + 1, close) : NULL;
        if (!start || !end) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(start - p));
        o += start - p;
        o += sprintf(o, "\n  <%s>[masked]</%s>", tag, tag);
        p = end + strlen(close);
    }
    free(xml);
    return out;
}

/*
 * Prints a document: the temporary directory as DIR, the creation time masked unless
 * keep_time, the name masked if name_mask is given, the embedded domain (and inactive
 * domain) replaced unless keep_domain. Frees xml.
 */
static void print_doc(char *xml, int keep_time, int keep_domain, const char *name_mask)
{
    char *t;
    if (!xml) {
        printf("NULL\n");
        show_error();
        return;
    }
    t = replace_all(xml, dir, "DIR");
    free(xml);
    xml = t;
    if (!keep_time) {
        t = mask_times(xml);
        free(xml);
        xml = t;
    }
    if (name_mask) {
        t = replace_all(xml, name_mask, "NAME");
        free(xml);
        xml = t;
    }
    if (!keep_domain) {
        xml = mask_block(xml, "domain");
        xml = mask_block(xml, "inactiveDomain");
    }
    printf("%s", xml);
    free(xml);
}

/* Is the string a non-empty run of digits (a name defaulted to the creation time)? */
static int numeric(const char *name)
{
    const char *p = name;
    if (!p || !*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* Prints a document given to CreateXML, with xd's definition abbreviated. */
static void print_input(virDomainPtr dom, const char *xml, unsigned int flags)
{
    char *a = replace_all(xml, xd_xml, "[xd]");
    char *b = replace_all(a, xd_xml_big, "[xd with 2097152 KiB]");
    char *c = replace_all(b, dir, "DIR");
    printf("create(%s, flags=0x%x) %s\n", s(virDomainGetName(dom)), flags, c);
    free(a);
    free(b);
    free(c);
}

/*
 * Creates a snapshot and prints its name (or whether it is numeric), its document and
 * the name lookup; deletes it afterwards unless keep. Returns 0 on success.
 */
static int create_show(virDomainPtr dom, const char *xml, unsigned int flags, int keep_domain, int keep)
{
    virDomainSnapshotPtr snap, again;
    const char *name;
    int num;

    print_input(dom, xml, flags);
    snap = virDomainSnapshotCreateXML(dom, xml, flags);
    if (!snap) {
        printf("  = NULL\n");
        show_error();
        return -1;
    }
    name = virDomainSnapshotGetName(snap);
    num = numeric(name) && !strstr(xml, name);
    if (num)
        printf("  = a snapshot with a numeric name\n");
    else
        printf("  = [%s]\n", s(name));
    print_doc(virDomainSnapshotGetXMLDesc(snap, 0), (flags & REDEFINE) != 0, keep_domain, num ? name : NULL);
    again = virDomainSnapshotLookupByName(dom, name, 0);
    printf("  lookup by that name: %s\n", again ? "ok" : "failed");
    if (!again)
        show_error();
    virDomainSnapshotFree(again);
    if (!keep && virDomainSnapshotDelete(snap, 0) < 0) {
        printf("  delete failed\n");
        show_error();
    }
    virDomainSnapshotFree(snap);
    return 0;
}

/* A create expected to fail; a surprise success is shown and undone. */
static void try_create(virDomainPtr dom, const char *xml, unsigned int flags)
{
    create_show(dom, xml, flags, 0, 0);
}

/* The document of a named snapshot with flags. */
static void show_named(virDomainPtr dom, const char *name, unsigned int flags, int keep_time)
{
    char *xml;
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);
    if (!snap) {
        printf("lookup %s failed\n", name);
        show_error();
        return;
    }
    printf("xml of %s with flags 0x%x:\n", name, flags);
    xml = virDomainSnapshotGetXMLDesc(snap, flags);
    if (xml)
        printf("    contains passwd: %s\n", strstr(xml, "passwd=") ? "yes" : "no");
    print_doc(xml, keep_time, 0, NULL);
    virDomainSnapshotFree(snap);
}

/* ---- plain creates ------------------------------------------------------------------- */

/* The default domain: documents printed in full, the embedded <domain> included. */
static void plain_documents(virDomainPtr test)
{
    printf("== plain creates on the default domain\n");
    create_show(test, "<domainsnapshot/>", 0, 1, 0);
    create_show(test, "<domainsnapshot><name></name></domainsnapshot>", 0, 1, 0);
    create_show(test, "<domainsnapshot>\n  <name>n1</name>\n  <description>first</description>\n</domainsnapshot>", 0, 1,
                0);
    create_show(test, "<domainsnapshot><description>no name</description></domainsnapshot>", 0, 0, 0);
    create_show(test,
                "<domainsnapshot><name>esc&amp;&lt;&gt;'\"</name>"
                "<description>a &lt;b&gt; &amp; 'q' \"dq\"</description></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>  padded  </name><description>  </description></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name><![CDATA[<cdata>]]></name></domainsnapshot>", 0, 0, 0);

    printf("== what a plain create ignores\n");
    create_show(test, "<domainsnapshot><name>st</name><state>paused</state></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>st</name><state>bogus</state></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>ct</name><creationTime>5</creationTime></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>ct</name><creationTime>abc</creationTime></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>pa</name><parent><name>nope</name></parent></domainsnapshot>", 0, 0, 0);
    create_show(test,
                "<domainsnapshot><name>un</name><bogus/><active>1</active>"
                "<domain><uuid>" TEST_UUID "</uuid></domain></domainsnapshot>", 0, 0, 0);
    create_show(test,
                "<domainsnapshot><name>dom</name><domain type='test'><name>other</name>"
                "<memory>1024</memory><os><type>hvm</type></os></domain></domainsnapshot>", 0, 1, 0);
    create_show(test, "<domainsnapshot bogus='1'><name>attr</name></domainsnapshot>", 0, 0, 0);
}

/* <memory> in every form, on the running default domain (one disk, vda). */
static void memory_forms(virDomainPtr test)
{
    printf("== <memory>\n");
    create_show(test, "<domainsnapshot><name>m</name><memory snapshot='no'/></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>m</name><memory snapshot='internal'/></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>m</name><memory/></domainsnapshot>", 0, 0, 0);
    /* External memory makes the disks external too, which needs files for them. */
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='external' file='/m.mem'/></domainsnapshot>", 0);
    create_show(test,
                "<domainsnapshot><name>m</name><memory snapshot='external' file='/m.mem'/>"
                "<disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>", 0, 0, 0);
    create_show(test,
                "<domainsnapshot><name>m</name><memory file='/m.mem'/>"
                "<disks><disk name='vda'><source file='/vda.m'/></disk></disks></domainsnapshot>", 0, 0, 0);
    create_show(test,
                "<domainsnapshot><name>m</name><memory snapshot='external' file='/m.mem'/>"
                "<disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>", 0, 0, 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='external'/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='internal' file='/m.mem'/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='no' file='/m.mem'/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='external' file='m.mem'/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='manual'/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='bogus'/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot=''/></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>m</name><memory snapshot='default'/></domainsnapshot>", 0);
}

/* <disks> on the default domain: internal snapshots must cover every disk uniformly. */
static void disks_default_domain(virDomainPtr test)
{
    printf("== <disks> on the default domain\n");
    create_show(test, "<domainsnapshot><name>d</name><disks/></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>d</name><disks><disk name='vda'/></disks></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>",
                0, 0, 0);
    create_show(test, "<domainsnapshot><name>d</name><disks><disk name='/guest/diskimage1'/></disks></domainsnapshot>", 0,
                0, 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>", 0);
    try_create(test,
               "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='external'>"
               "<source file='/x.qcow2'/></disk></disks></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda'><source file='/x.qcow2'/></disk></disks>"
                     "</domainsnapshot>", 0);
    try_create(test,
               "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='internal'>"
               "<source file='/x.qcow2'/></disk></disks></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda'><driver type='qcow2'/></disk></disks>"
                     "</domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vdz'/></disks></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda'/><disk name='vda'/></disks></domainsnapshot>",
               0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda'/><disk name='/guest/diskimage1'/></disks>"
                     "</domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk/></disks></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='manual'/></disks></domainsnapshot>",
               0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='bogus'/></disks></domainsnapshot>",
               0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda' type='dir'/></disks></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><disk name='vda' type='bogus'/></disks></domainsnapshot>", 0);
    try_create(test,
               "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='external'>"
               "<source file='rel.qcow2'/></disk></disks></domainsnapshot>", 0);
    try_create(test,
               "<domainsnapshot><name>d</name><disks><disk name='vda' snapshot='external'>"
               "<driver type='bogus'/></disk></disks></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>d</name><disks><bogus name='vda'/></disks></domainsnapshot>", 0);
}

/* A domain of three disks: vda (a real file), vdb (a missing file), hdc (an empty cdrom). */
static void disks_defined_domain(virDomainPtr xd)
{
    printf("== <disks> on a domain of three disks\n");
    create_show(xd, "<domainsnapshot><name>x1</name></domainsnapshot>", 0, 0, 0);
    create_show(xd, "<domainsnapshot><name>x2</name><disks><disk name='hdc' snapshot='internal'/></disks></domainsnapshot>",
                0, 0, 0);
    try_create(xd, "<domainsnapshot><name>x3</name><disks><disk name='vdb' snapshot='no'/></disks></domainsnapshot>", 0);
    /* External: vda's file gets a derived name; vdb has no file to derive from. */
    try_create(xd, "<domainsnapshot><name>x4</name><memory file='/x4.mem'/></domainsnapshot>", 0);
    create_show(xd,
                "<domainsnapshot><name>x5</name><memory file='/x5.mem'/>"
                "<disks><disk name='vdb' snapshot='no'/></disks></domainsnapshot>", 0, 0, 0);
    create_show(xd,
                "<domainsnapshot><name>x6.b</name><memory file='/x6.mem'/><memory snapshot='no'/>"
                "<disks><disk name='vdb'><source file='/vdb.new'/><driver type='qcow2'/></disk>"
                "<disk name='vda' snapshot='external'/></disks></domainsnapshot>", 0, 0, 0);
    create_show(xd,
                "<domainsnapshot><name>x7</name><memory file='/x7.mem'/>"
                "<disks><disk name='vda' snapshot='external' type='block'><source dev='/dev/vda-snap'/></disk>"
                "<disk name='vdb' snapshot='external' type='network'><source protocol='nbd' name='vdb'>"
                "<host name='example.org' port='10809'/></source></disk>"
                "<disk name='hdc' snapshot='no'/></disks></domainsnapshot>", 0, 0, 0);
    try_create(xd,
               "<domainsnapshot><name>x8</name><memory file='/x8.mem'/>"
               "<disks><disk name='vda'><source file='/same'/></disk><disk name='vdb'><source file='/same'/></disk>"
               "</disks></domainsnapshot>", 0);
    try_create(xd,
               "<domainsnapshot><name>x9</name><disks><disk name='vda'/><disk name='vdb'/><disk name='hdc'/>"
               "<disk name='vdd'/></disks></domainsnapshot>", 0);
    /* The document of x1 with each flag: the domain has a VNC password. */
    create_show(xd, "<domainsnapshot><name>keep</name></domainsnapshot>", 0, 0, 1);
    show_named(xd, "keep", 0, 0);
    show_named(xd, "keep", SECURE, 0);
    show_named(xd, "keep", 2, 0);
    show_named(xd, "keep", HIGH, 0);
    show_named(xd, "keep", SECURE | HIGH, 0);
    show_named(xd, "nope", 0, 0);
}

/* Names: duplicates and characters other drivers refuse. */
static void names(virDomainPtr test)
{
    char xml[1024], longname[401];

    printf("== names\n");
    create_show(test, "<domainsnapshot><name>dup</name></domainsnapshot>", 0, 0, 1);
    try_create(test, "<domainsnapshot><name>dup</name></domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>dup</name><description>other</description></domainsnapshot>", 0);
    {
        virDomainSnapshotPtr d = virDomainSnapshotLookupByName(test, "dup", 0);
        virDomainSnapshotDelete(d, 0);
        virDomainSnapshotFree(d);
    }
    create_show(test, "<domainsnapshot><name>a/b</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>/</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>.</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>..</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>.hidden</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>new\nline</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>tab\there</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>\xc3\xbcnic\xc3\xb6" "de</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>-1</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>12345</name></domainsnapshot>", 0, 0, 0);
    create_show(test, "<domainsnapshot><name>a</name><name>b</name></domainsnapshot>", 0, 0, 0);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(xml, sizeof(xml), "<domainsnapshot><name>%s</name></domainsnapshot>", longname);
    create_show(test, xml, 0, 0, 0);
    /* Names the schema refuses, with VALIDATE. */
    try_create(test, "<domainsnapshot><name>a/b</name></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><name>ok</name></domainsnapshot>", VALIDATE);
}

/* Malformed documents, wrong roots, and schema errors with VALIDATE. */
static void parse_errors(virDomainPtr test)
{
    printf("== not well-formed\n");
    try_create(test, "garbage", 0);
    try_create(test, "", 0);
    try_create(test, "<domainsnapshot>", 0);
    try_create(test, "<domainsnapshot><name>x</domainsnapshot>", 0);
    try_create(test, "<domainsnapshot/><domainsnapshot/>", 0);
    try_create(test, "<domainsnapshot><description>&bogus;</description></domainsnapshot>", 0);
    try_create(test, "garbage", REDEFINE);
    try_create(test, "garbage", VALIDATE);
    /* Flags are checked before the document is read. */
    try_create(test, "garbage", HIGH);

    printf("== wrong root element\n");
    try_create(test, "<domaincheckpoint><name>x</name></domaincheckpoint>", 0);
    try_create(test, "<foo/>", 0);
    try_create(test, "<DomainSnapshot/>", 0);
    try_create(test, "<foo><bogus/></foo>", REDEFINE);
    try_create(test, "<foo/>", VALIDATE);

    printf("== schema errors (VALIDATE)\n");
    try_create(test, "<domainsnapshot><bogus/></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot bogus='1'/>", VALIDATE);
    try_create(test, "<domainsnapshot><name>x</name><name>y</name></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><state>bogus</state></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><memory snapshot='bogus'/></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><memory snapshot='external' file='rel'/></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><disks><disk/></disks></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><creationTime>abc</creationTime></domainsnapshot>", VALIDATE);
    try_create(test, "<domainsnapshot><name>v</name><state>paused</state><creationTime>7</creationTime></domainsnapshot>",
               VALIDATE);
    try_create(test, "<domainsnapshot><name>v</name><bogus/></domainsnapshot>", REDEFINE | VALIDATE);
    create_show(test, "<domainsnapshot><name>v</name><description>d</description><memory snapshot='internal'/>"
                      "<disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>", VALIDATE, 0, 0);
}

/* ---- redefinition --------------------------------------------------------------------- */

/* A redefinition document for xd: name, state, time, extra elements and the domain. */
static void redef(virDomainPtr xd, const char *name, const char *state, const char *time, const char *extra,
                  const char *domain, unsigned int flags, int keep)
{
    char xml[8192];
    snprintf(xml, sizeof(xml), "<domainsnapshot>%s%s%s%s%s%s%s%s%s%s%s</domainsnapshot>",
             name ? "<name>" : "", name ? name : "", name ? "</name>" : "",
             state ? "<state>" : "", state ? state : "", state ? "</state>" : "",
             time ? "<creationTime>" : "", time ? time : "", time ? "</creationTime>" : "",
             extra ? extra : "", domain ? domain : "");
    create_show(xd, xml, REDEFINE | flags, 0, keep);
}

static void redefinitions(virDomainPtr xd)
{
    char other[2048], inactive[4096];
    virDomainSnapshotPtr snap;

    printf("== redefine: required parts\n");
    redef(xd, "r", "running", "10", NULL, xd_xml, 0, 0);
    redef(xd, NULL, "running", "10", NULL, xd_xml, 0, 0);
    redef(xd, "r", NULL, "10", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", NULL, NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", "", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", "abc", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", "-5", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", "0", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", " 12 ", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", "9223372036854775807", NULL, xd_xml, 0, 0);
    redef(xd, "r", "running", "9223372036854775808", NULL, xd_xml, 0, 0);
    redef(xd, "r", "bogus", "10", NULL, xd_xml, 0, 0);
    redef(xd, "r", "nostate", "10", NULL, xd_xml, 0, 0);
    redef(xd, "r", "", "10", NULL, xd_xml, 0, 0);
    redef(xd, "", "running", "10", NULL, xd_xml, 0, 0);

    printf("== redefine: every state\n");
    redef(xd, "st", "paused", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "blocked", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "shutdown", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "shutoff", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "crashed", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "pmsuspended", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "disk-snapshot", "11",
          "<memory snapshot='no'/><disks><disk name='vda' snapshot='no'/><disk name='vdb'><source file='/st.vdb'/></disk>"
          "</disks>", xd_xml, 0, 0);
    redef(xd, "st", "disk-snapshot", "11", "<disks><disk name='vdb' snapshot='no'/></disks>", xd_xml, 0, 0);
    redef(xd, "st", "disk-snapshot", "11", NULL, xd_xml, 0, 0);
    redef(xd, "st", "shutoff", "11", "<memory snapshot='internal'/>", xd_xml, 0, 0);
    redef(xd, "st", "disk-snapshot", "11", "<memory file='/st.mem'/>", xd_xml, 0, 0);
    redef(xd, "st", "running", "11", "<memory file='/st.mem'/><disks><disk name='vdb' snapshot='no'/></disks>", xd_xml,
          0, 0);
    redef(xd, "st", "running", "11", "<disks><disk name='vda' snapshot='no'/></disks>", xd_xml, 0, 0);

    printf("== redefine: the domain\n");
    snprintf(other, sizeof(other), "%s", xd_xml);
    memcpy(strstr(other, XD_UUID), "11111111-2222-3333-4444-555555555555", 36);
    redef(xd, "u", "running", "12", NULL, other, 0, 0);
    redef(xd, "u", "running", "12", NULL,
          "<domain type='test'><name>xd</name><uuid>" XD_UUID "</uuid><memory>1024</memory></domain>", 0, 0);
    redef(xd, "u", "running", "12", NULL, "<domain type='test'><name>xd</name><memory>1024</memory>"
                                          "<os><type>hvm</type></os></domain>", 0, 0);
    {
        /* The same definition again, as <inactiveDomain>. */
        char *a = replace_all(xd_xml, "<domain ", "<inactiveDomain ");
        char *b = replace_all(a, "</domain>", "</inactiveDomain>");
        snprintf(inactive, sizeof(inactive), "%s%s", xd_xml, b);
        free(a);
        free(b);
    }
    redef(xd, "i", "running", "13", NULL, inactive, 0, 0);

    printf("== redefine: parents, CURRENT, replacing in place\n");
    redef(xd, "p1", "running", "20", NULL, xd_xml, 0, 1);
    redef(xd, "p2", "running", "21", "<parent><name>p1</name></parent><description>two</description>", xd_xml, 0, 1);
    redef(xd, "p3", "running", "22", "<parent><name>nope</name></parent>", xd_xml, 0, 0);
    redef(xd, "p3", "running", "22", "<parent><name>p3</name></parent>", xd_xml, 0, 0);
    redef(xd, "p3", "shutoff", "22", "<parent><name>p2</name></parent>", xd_xml, CURRENT, 1);
    snap = virDomainSnapshotLookupByName(xd, "p3", 0);
    INT(virDomainSnapshotIsCurrent(snap, 0));
    virDomainSnapshotFree(snap);
    /* p2 again: a new description and time, the same parent; its child stays. */
    redef(xd, "p2", "paused", "99", "<parent><name>p1</name></parent><description>again</description>", xd_xml, 0, 1);
    show_named(xd, "p3", 0, 1);
    /* p2 may not change between online and offline, nor between disk-only and full. */
    redef(xd, "p2", "shutoff", "21", "<parent><name>p1</name></parent>", xd_xml, 0, 1);
    redef(xd, "p3", "running", "22", "<parent><name>p2</name></parent>", xd_xml, 0, 1);
    redef(xd, "p3", "disk-snapshot", "22", "<disks><disk name='vda' snapshot='no'/></disks>", xd_xml, 0, 1);
    /* Another domain definition must keep the ABI of the one already stored. */
    redef(xd, "p1", "running", "20", NULL, xd_xml_big, 0, 1);
    redef(xd, "p1", "running", "20", "<description>same domain</description>", xd_xml, CURRENT, 1);
    show_named(xd, "p1", 0, 1);
    show_named(xd, "p2", 0, 1);
    snap = virDomainSnapshotLookupByName(xd, "p1", 0);
    virDomainSnapshotDelete(snap, VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN);
    virDomainSnapshotFree(snap);
}

/* Everything about the domains: the temporary directory, xd's definition. */
static int setup(void)
{
    char path[128];
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/snapshot-xml-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/vda.qcow2", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fclose(f);
    snprintf(xd_xml, sizeof(xd_xml),
             "<domain type='test'><name>xd</name><uuid>" XD_UUID "</uuid>"
             "<memory>1048576</memory><os><type>hvm</type></os><devices>"
             "<disk type='file' device='disk'><source file='%s/vda.qcow2'/><target dev='vda' bus='virtio'/></disk>"
             "<disk type='file' device='disk'><source file='/nonexistent/vdb.img'/><target dev='vdb' bus='virtio'/></disk>"
             "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
             "<graphics type='vnc' port='5900' passwd='secret'/>"
             "</devices></domain>", dir);
    snprintf(xd_xml_big, sizeof(xd_xml_big), "%s", xd_xml);
    memcpy(strstr(xd_xml_big, "1048576"), "2097152", 7);
    return 0;
}

static void teardown(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/vda.qcow2", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr test, xd;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);
    if (setup() < 0) {
        perror("setup");
        return 1;
    }

    conn = virConnectOpen("test:///default");
    test = virDomainLookupByName(conn, "test");
    xd = virDomainDefineXML(conn, xd_xml);
    PTR(conn);
    PTR(test);
    PTR(xd);
    INT(virDomainCreate(xd));

    plain_documents(test);
    memory_forms(test);
    disks_default_domain(test);
    disks_defined_domain(xd);
    names(test);
    parse_errors(test);
    redefinitions(xd);

    printf("== left over\n");
    INT(virDomainSnapshotNum(test, 0));
    INT(virDomainSnapshotNum(xd, 0));
    {
        virDomainSnapshotPtr k = virDomainSnapshotLookupByName(xd, "keep", 0);
        INT(virDomainSnapshotDelete(k, 0));
        virDomainSnapshotFree(k);
    }
    INT(virDomainDestroy(xd));
    INT(virDomainUndefine(xd));
    virDomainFree(xd);
    virDomainFree(test);
    INT(virConnectClose(conn));
    teardown();
    return 0;
}
