/*
 * checkpoint-xml.c: the <domaincheckpoint> document on test:///default, going in and
 * coming out.
 *
 * Input: well-formedness, root element and schema errors (in the order they are checked),
 * the redefine-only rules (name, creationTime, parent, cycles, domain uuid), disk
 * alignment against the domain's disks and its errors, duplicate names, and what a plain
 * create ignores. Output: GetXMLDesc with every flag, escaping of special characters, the
 * full document with the embedded <domain> of the default "test" domain, and the disk
 * defaults computed for a domain with read-only and empty disks. Redefinition: with and
 * without <domain>, replacing a checkpoint in place, and which checkpoint becomes the
 * parent of the next plain create.
 *
 * Creation times of plain creates are wall-clock values and are masked (XML macro). The
 * documents of redefined checkpoints carry only the times this program wrote itself, so
 * those are printed unmasked (XML_RAW). Checkpoints of domains this program defines are
 * printed with NO_DOMAIN: only the default domain's embedded definition is compared. (A
 * few checkpoints redefined without any <domain> are printed without NO_DOMAIN, to show
 * that nothing is embedded then.) Also covered: which names, disk names, sizes and
 * creation times the schema accepts, and that an embedded <domain> is schema-checked.
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
#define SECURE VIR_DOMAIN_CHECKPOINT_XML_SECURE
#define NO_DOMAIN VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN
#define SIZE VIR_DOMAIN_CHECKPOINT_XML_SIZE

#define DISKS_UUID "c41249dc-c201-4421-97f4-f77e0330654b"
#define TEST_UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

/* vda read-write, vdb read-only, vdc read-write, hdc an empty cdrom (in that order). */
static const char disks_domain_xml[] =
    "<domain type='test'><name>disks</name><uuid>" DISKS_UUID "</uuid>"
    "<memory>1048576</memory><os><type>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>"
    "<disk type='file' device='disk'><source file='/b.img'/><target dev='vdb' bus='virtio'/><readonly/></disk>"
    "<disk type='file' device='disk'><source file='/c.img'/><target dev='vdc' bus='virtio'/></disk>"
    "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
    "</devices></domain>";

static const char nodisk_domain_xml[] =
    "<domain type='test'><name>nodisk</name><uuid>c41249dc-c201-4421-97f4-f77e03306500</uuid>"
    "<memory>1048576</memory><os><type>hvm</type></os></domain>";

/* Prints an XML result as it is (no masking); for documents with known contents only. */
#define XML_RAW(expr)                                       \
    do {                                                    \
        char *r_ = (expr);                                  \
        printf("%s =%s", #expr, r_ ? "\n" : " NULL\n");     \
        if (r_)                                             \
            printf("%s", r_);                               \
        show_error();                                       \
        free(r_);                                           \
    } while (0)

/* Attempts a create that is expected to fail; a surprise success is reported and undone. */
static void try_create(virDomainPtr dom, const char *xml, unsigned int flags)
{
    virDomainCheckpointPtr c = create_chk(dom, xml, flags);
    if (c) {
        virDomainCheckpointDelete(c, 0);
        virDomainCheckpointFree(c);
    }
}

/* Creates a checkpoint, prints its document (NO_DOMAIN, times masked), deletes it. */
static void create_show_delete(virDomainPtr dom, const char *xml, unsigned int flags)
{
    virDomainCheckpointPtr c = create_chk(dom, xml, flags);
    if (!c)
        return;
    XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
    INT(virDomainCheckpointDelete(c, 0));
    virDomainCheckpointFree(c);
}

/* The document of a named checkpoint, with flags, times masked. */
static void show_xml(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainCheckpointPtr c = virDomainCheckpointLookupByName(dom, name, 0);
    if (!c) {
        printf("lookup %s failed\n", name);
        show_error();
        return;
    }
    printf("xml of %s with flags 0x%x:\n", name, flags);
    XML(virDomainCheckpointGetXMLDesc(c, flags));
    virDomainCheckpointFree(c);
}

/* The same, unmasked: for redefined checkpoints, whose times this program chose. */
static void show_xml_raw(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainCheckpointPtr c = virDomainCheckpointLookupByName(dom, name, 0);
    if (!c) {
        printf("lookup %s failed\n", name);
        show_error();
        return;
    }
    printf("xml of %s with flags 0x%x:\n", name, flags);
    XML_RAW(virDomainCheckpointGetXMLDesc(c, flags));
    virDomainCheckpointFree(c);
}

/* Malformed documents, wrong roots and schema violations. */
static void parse_errors(virDomainPtr dom)
{
    printf("== not well-formed (35)\n");
    try_create(dom, "garbage", 0);
    try_create(dom, "", 0);
    try_create(dom, "<domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>x</domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint/><domaincheckpoint/>", 0);
    try_create(dom, "<domaincheckpoint><description>&bogus;</description></domaincheckpoint>", 0);
    try_create(dom, "garbage", REDEFINE);
    /* Flags are checked before the document is read. */
    try_create(dom, "garbage", 8);

    printf("== wrong root element (27, domain 5)\n");
    try_create(dom, "<foo/>", 0);
    try_create(dom, "<domainsnapshot><name>x</name></domainsnapshot>", 0);
    try_create(dom, "<foo><bogus/></foo>", REDEFINE);
    try_create(dom, "<DomainCheckpoint/>", 0);

    printf("== schema violations (92)\n");
    try_create(dom, "<domaincheckpoint><name>bad name</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>.hidden</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>a/b</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name></name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>x</name><name>y</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><bogus/></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>x</name><bogus/></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint bogus='1'><name>x</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda' checkpoint='maybe'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda' checkpoint='default'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda' checkpoint='no' bitmap='x'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda' checkpoint='no' size='1'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda' size='big'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda' bogus='1'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks/></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint xmlns='urn:example:x'><name>x</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='disk.img'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='nvme0'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><creationTime>-1</creationTime></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><creationTime>abc</creationTime></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><parent/></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>-1</creationTime></domaincheckpoint>", REDEFINE);
    /* A schema violation is reported before the redefine rules are applied. */
    try_create(dom, "<domaincheckpoint><bogus/></domaincheckpoint>", REDEFINE);
}

/* Errors only REDEFINE can produce. */
static void redefine_errors(virDomainPtr dom)
{
    printf("== redefine errors\n");
    try_create(dom, "<domaincheckpoint><creationTime>1</creationTime></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint/>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime></creationTime></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>18446744073709551615</creationTime></domaincheckpoint>",
               REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>9223372036854775808</creationTime></domaincheckpoint>",
               REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<parent><name>nope</name></parent></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<parent><name>x</name></parent></domaincheckpoint>", REDEFINE);

    /* r1 <- r2 <- r3; making r1 a child of r3 or of r2 would close a loop. */
    create_drop(dom, "<domaincheckpoint><name>r1</name><creationTime>100</creationTime></domaincheckpoint>", REDEFINE);
    create_drop(dom, "<domaincheckpoint><name>r2</name><creationTime>200</creationTime>"
                    "<parent><name>r1</name></parent></domaincheckpoint>", REDEFINE);
    create_drop(dom, "<domaincheckpoint><name>r3</name><creationTime>300</creationTime>"
                    "<parent><name>r2</name></parent></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>r1</name><creationTime>1</creationTime>"
                    "<parent><name>r2</name></parent></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>r1</name><creationTime>1</creationTime>"
                    "<parent><name>r3</name></parent></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>r2</name><creationTime>1</creationTime>"
                    "<parent><name>r3</name></parent></domaincheckpoint>", REDEFINE);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);

    /* A <domain> with another uuid, and an unusable <domain>. */
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<domain type='test'><name>test</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
                    "<memory>1024</memory><os><type>hvm</type></os></domain></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<domain type='test'><name>test</name><uuid>" TEST_UUID "</uuid>"
                    "<memory>1024</memory></domain></domaincheckpoint>", REDEFINE);
    /* Checks on the tree come before the domain's uuid. */
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<parent><name>nope</name></parent>"
                    "<domain type='test'><name>test</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
                    "<memory>1024</memory><os><type>hvm</type></os></domain></domaincheckpoint>", REDEFINE);
    /* With a <domain>, the disks are checked against it. */
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<disks><disk name='vdz'/></disks>"
                    "<domain type='test'><name>test</name><uuid>" TEST_UUID "</uuid>"
                    "<memory>1024</memory><os><type>hvm</type></os></domain></domaincheckpoint>", REDEFINE);
    try_create(dom, "<domaincheckpoint><name>x</name><creationTime>1</creationTime>"
                    "<domain type='test'><name>test</name><uuid>" TEST_UUID "</uuid>"
                    "<memory>1024</memory><os><type>hvm</type></os></domain></domaincheckpoint>", REDEFINE);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    delete_all(dom);
}

/* Disk alignment errors, against the default domain (one disk) and "disks". */
static void alignment_errors(virDomainPtr test, virDomainPtr disks, virDomainPtr nodisk)
{
    printf("== disk alignment errors\n");
    try_create(test, "<domaincheckpoint><disks><disk name='vdz'/></disks></domaincheckpoint>", 0);
    try_create(test, "<domaincheckpoint><disks><disk name='/nope.img'/></disks></domaincheckpoint>", 0);
    try_create(test, "<domaincheckpoint><disks><disk name='vda'/><disk name='vda'/></disks></domaincheckpoint>", 0);
    try_create(test, "<domaincheckpoint><disks><disk name='vdz'/><disk name='vdy'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vdz'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vda'/><disk name='vdb' checkpoint='no'/>"
                      "<disk name='vdc'/><disk name='hdc' checkpoint='no'/><disk name='vdz'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vdc'/><disk name='/c.img'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='/c.img'/><disk name='vdc'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vda'/><disk name='vda' checkpoint='no'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vdb'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vdb' checkpoint='bitmap' bitmap='x'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='/b.img'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='hdc'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vdz'/><disk name='vdb'/></disks></domaincheckpoint>", 0);
    try_create(disks, "<domaincheckpoint><disks><disk name='vdb'/><disk name='vdz'/></disks></domaincheckpoint>", 0);
    try_create(nodisk, "<domaincheckpoint/>", 0);
    try_create(nodisk, "<domaincheckpoint><name>x</name></domaincheckpoint>", 0);
    try_create(nodisk, "<domaincheckpoint><disks><disk name='vda'/></disks></domaincheckpoint>", 0);
    list_domain(disks, 0);
    list_domain(nodisk, 0);
}

/* Names: duplicates, and what happens without one. */
static void names(virDomainPtr dom)
{
    virDomainCheckpointPtr c1, c2;
    int tries;

    printf("== duplicate names\n");
    c1 = create_chk(dom, "<domaincheckpoint><name>dup</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>dup</name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>dup</name><description>other</description></domaincheckpoint>", 0);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    INT(virDomainCheckpointDelete(c1, 0));
    INT(virDomainCheckpointFree(c1));

    /* Without a name, the creation time (seconds) is the name. */
    printf("== unnamed checkpoint\n");
    c1 = virDomainCheckpointCreateXML(dom, "<domaincheckpoint><description>no name</description></domaincheckpoint>", 0);
    PTR(c1);
    if (c1) {
        const char *name = s(virDomainCheckpointGetName(c1));
        char *xml = virDomainCheckpointGetXMLDesc(c1, NO_DOMAIN);
        char *masked = mask_times(xml);
        char *shown = replace_all(masked, name, "N");
        char tag[64];
        size_t i, digits = 0;
        for (i = 0; name[i]; i++)
            digits += name[i] >= '0' && name[i] <= '9';
        printf("name is all digits: %d, length >= 10: %d\n", digits == i, i >= 10);
        snprintf(tag, sizeof(tag), "<creationTime>%s</creationTime>", name);
        printf("creationTime equals the name: %d\n", xml && strstr(xml, tag) != NULL);
        printf("xml with the name shown as N:\n%s", s(shown));
        free(shown);
        free(masked);
        free(xml);
        c2 = virDomainCheckpointLookupByName(dom, name, 0);
        printf("lookup by that name: %s\n", c2 ? "found" : "not found");
        show_error();
        virDomainCheckpointFree(c2);
        INT(virDomainCheckpointDelete(c1, 0));
        virDomainCheckpointFree(c1);
    }

    /*
     * Two unnamed creates in the same second clash. A second boundary can fall between the
     * two calls, so retry a few times; only the clash itself is printed, with the name
     * (the current time) shown as N.
     */
    printf("== two unnamed creates in the same second\n");
    for (tries = 0; tries < 5; tries++) {
        virErrorPtr e;
        c1 = virDomainCheckpointCreateXML(dom, "<domaincheckpoint/>", 0);
        c2 = virDomainCheckpointCreateXML(dom, "<domaincheckpoint/>", 0);
        e = virSaveLastError();
        if (c1 && !c2 && e) {
            const char *name = s(virDomainCheckpointGetName(c1));
            char *msg = replace_all(e->message, name, "N");
            char *str2 = replace_all(e->str2, name, "N");
            printf("second create failed\n    error code=%d domain=%d level=%d\n      message=[%s]\n"
                   "      str1=[%s] str2=[%s] str3=[%s] int1=%d int2=%d\n",
                   e->code, e->domain, e->level, s(msg), s(e->str1), s(str2), s(e->str3), e->int1, e->int2);
            free(msg);
            free(str2);
            virFreeError(e);
            virDomainCheckpointDelete(c1, 0);
            virDomainCheckpointFree(c1);
            break;
        }
        virFreeError(e);
        if (c2) {
            virDomainCheckpointDelete(c2, 0);
            virDomainCheckpointFree(c2);
        }
        if (c1) {
            virDomainCheckpointDelete(c1, 0);
            virDomainCheckpointFree(c1);
        }
    }
    if (tries == 5)
        printf("no clash in 5 attempts\n");
    list_domain(dom, 0);
}

/* What a plain create ignores or normalises. */
static void plain_create_input(virDomainPtr dom)
{
    virDomainCheckpointPtr c;

    printf("== plain create ignores creationTime, parent and domain\n");
    c = create_chk(dom, "<domaincheckpoint><name>base</name></domaincheckpoint>", 0);
    virDomainCheckpointFree(c);
    c = create_chk(dom, "<domaincheckpoint><name>ign</name><creationTime>5</creationTime>"
                        "<parent><name>nope</name></parent>"
                        "<domain type='test'><name>other</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
                        "<memory>1024</memory><os><type>hvm</type></os></domain></domaincheckpoint>", 0);
    if (c) {
        char *xml = virDomainCheckpointGetXMLDesc(c, NO_DOMAIN);
        char *full = virDomainCheckpointGetXMLDesc(c, 0);
        printf("creationTime kept as 5: %d\n", xml && strstr(xml, "<creationTime>5</creationTime>") != NULL);
        printf("embedded domain is the real one: %d\n",
               full && strstr(full, "<name>test</name>") && !strstr(full, "<name>other</name>"));
        free(full);
        free(xml);
        XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
        virDomainCheckpointFree(c);
    }

    printf("== accepted forms\n");
    create_show_delete(dom, "<?xml version='1.0' encoding='UTF-8'?>\n<!-- a comment -->\n"
                            "<domaincheckpoint>\n  <name>decl</name>\n  <!-- inside -->\n</domaincheckpoint>\n", 0);
    create_show_delete(dom, "<domaincheckpoint><description></description><name>emptydesc</name></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><description>   </description><name>spacedesc</name></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>_x-Y.9</name></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>-lead</name></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><disks><disk name='vda' checkpoint='no'/></disks>"
                            "<name>nodisk</name></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>bm</name><disks><disk name='vda' bitmap=''/></disks></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>bm2</name><disks><disk name='/guest/diskimage1' checkpoint='bitmap' "
                            "bitmap='a&amp;b&lt;c&gt;d&apos;e&quot;f' size='12345'/></disks></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>ioemu</name><disks><disk name='ioemu:vda'/></disks></domaincheckpoint>", 0);

    printf("== special characters in the description\n");
    c = create_chk(dom, "<domaincheckpoint><name>special</name>"
                        "<description>amp &amp; lt &lt; gt &gt; apos &apos; quot &quot; raw ' \" >\n"
                        "\tline two\t  \n  trailing  </description></domaincheckpoint>", 0);
    if (c) {
        XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
        virDomainCheckpointFree(c);
    }
    c = create_chk(dom, "<domaincheckpoint><name>unicode</name><description>caf\xc3\xa9 \xe2\x82\xac &#x263A;</description>"
                        "</domaincheckpoint>", 0);
    if (c) {
        XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
        virDomainCheckpointFree(c);
    }
    /* Character references, CDATA, carriage returns and surrounding whitespace. */
    create_show_delete(dom, "<domaincheckpoint><name>refs</name>"
                            "<description>tab&#9;nl&#10;cr&#13;crlf\r\nlone-cr\rend</description></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>cdata</name>"
                            "<description><![CDATA[<b>bold</b> & 'q' \"d\" ]]></description></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint><name>mixed</name>"
                            "<description>a<!-- c -->b</description></domaincheckpoint>", 0);
    create_show_delete(dom, "<domaincheckpoint>\n  <disks>\n    <disk name='vda'\n bitmap='sp ace'/>\n  </disks>\n"
                            "  <description>\n  lead and trail \n</description>\n  <name>ws</name>\n</domaincheckpoint>\n", 0);
    try_create(dom, "<domaincheckpoint><name> ws </name></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><description>x</description><description>y</description></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><disks><disk name='vda'/></disks><disks><disk name='vda'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>x</name><description><b>no markup</b></description></domaincheckpoint>", 0);
}

/* Which names and disk names the schema lets through (a create that succeeds is undone). */
static void name_patterns(virDomainPtr dom)
{
    static const char *const names[] = {
        "A", "0", "_", "-", "x.", "a..b", "a-b_c.d", "caf\xc3\xa9", "a:b", "a@b", "a\tb", "a+b", "x\n", "\xc3\xa9",
    };
    static const char *const disks[] = {
        "vd", "vda", "xvda", "ubda", "fd0", "sda1", "hda_x", "ioemu:hdc", "nvme0n1", "VDA", "vd-a", "vda ", "/", "/x",
        "C:\\x", "c:/x", "relative/x", "//x",
    };
    size_t i;
    char xml[256];

    printf("== name patterns\n");
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(xml, sizeof(xml), "<domaincheckpoint><name>%s</name></domaincheckpoint>", names[i]);
        try_create(dom, xml, 0);
    }
    printf("== disk name patterns\n");
    for (i = 0; i < sizeof(disks) / sizeof(disks[0]); i++) {
        snprintf(xml, sizeof(xml), "<domaincheckpoint><name>dn</name><disks><disk name='%s'/></disks></domaincheckpoint>",
                 disks[i]);
        try_create(dom, xml, 0);
    }
    printf("== size and bitmap attribute values\n");
    try_create(dom, "<domaincheckpoint><name>sz</name><disks><disk name='vda' size='0'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>sz</name><disks><disk name='vda' size='18446744073709551615'/></disks>"
                    "</domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>sz</name><disks><disk name='vda' size='18446744073709551616'/></disks>"
                    "</domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>sz</name><disks><disk name='vda' size='-1'/></disks></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>sz</name><disks><disk name='vda' checkpoint='bitmap' checkpoint='no'/></disks>"
                    "</domaincheckpoint>", 0);
    printf("== the embedded <domain> is validated too\n");
    try_create(dom, "<domaincheckpoint><name>ed</name><domain type='test'><name>test</name><bogus/></domain>"
                    "</domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>ed</name><domain type='nope'><name>test</name></domain></domaincheckpoint>", 0);
    try_create(dom, "<domaincheckpoint><name>ed</name><creationTime>1</creationTime>"
                    "<domain type='test'><name>test</name><bogus/></domain></domaincheckpoint>", REDEFINE);
}

/* Creation times of redefinitions in the forms the schema lets through. */
static void creation_times(virDomainPtr dom)
{
    static const char *const forms[] = {"007", "+5", " 8 ", "\n9\n", "0", "1e3", "4294967296", "-0"};
    size_t i;
    char xml[256], name[32];

    printf("== creationTime forms on redefine\n");
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        virDomainCheckpointPtr c;
        snprintf(name, sizeof(name), "ct%u", (unsigned)i);
        snprintf(xml, sizeof(xml), "<domaincheckpoint><name>%s</name><creationTime>%s</creationTime></domaincheckpoint>",
                 name, forms[i]);
        c = create_chk(dom, xml, REDEFINE);
        if (c) {
            XML_RAW(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
            virDomainCheckpointFree(c);
        }
    }
    delete_all(dom);
}

/* GetXMLDesc with each flag combination on the default domain, embedded domain included. */
static void output_flags(virDomainPtr dom)
{
    unsigned int f;

    printf("== GetXMLDesc flags on the default domain\n");
    for (f = 0; f < 8; f++)
        show_xml(dom, "special", f);
    show_xml(dom, "base", 0);
}

/* Disk defaults on "disks": vda rw, vdb read-only, vdc rw, hdc empty cdrom. */
static void alignment_defaults(virDomainPtr disks)
{
    printf("== disk defaults\n");
    create_show_delete(disks, "<domaincheckpoint><name>all</name></domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>onlyvdc</name><disks><disk name='vdc'/></disks></domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>order</name><disks><disk name='vdc'/><disk name='vda'/></disks>"
                              "</domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>paths</name><disks><disk name='/c.img' bitmap='cc'/>"
                              "<disk name='/a.img' checkpoint='no'/></disks></domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>nos</name><disks><disk name='vdb' checkpoint='no'/>"
                              "<disk name='hdc' checkpoint='no'/></disks></domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>full</name><disks><disk name='hdc' checkpoint='no'/>"
                              "<disk name='vdc' checkpoint='bitmap' bitmap='c3'/><disk name='vdb' checkpoint='no'/>"
                              "<disk name='vda' bitmap='a1' size='7'/></disks></domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>allno</name><disks><disk name='vda' checkpoint='no'/>"
                              "<disk name='vdc' checkpoint='no'/></disks></domaincheckpoint>", 0);
    create_show_delete(disks, "<domaincheckpoint><name>roopath</name><disks><disk name='/b.img' checkpoint='no'/>"
                              "</disks></domaincheckpoint>", 0);
    /* SIZE on a running domain: accepted, but no size is printed. */
    {
        virDomainCheckpointPtr c = create_chk(disks, "<domaincheckpoint><name>sz</name></domaincheckpoint>", 0);
        XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN | SIZE));
        XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN | SIZE | SECURE));
        virDomainCheckpointFree(c);
    }
}

/* Redefinition with and without <domain>, replacing in place, and the hidden current. */
static void redefine(virDomainPtr test, virDomainPtr disks)
{
    virDomainCheckpointPtr c;
    char *full, *again;

    printf("== round trip of the full document\n");
    c = create_chk(test, "<domaincheckpoint><name>rt</name><description>round trip</description></domaincheckpoint>", 0);
    full = virDomainCheckpointGetXMLDesc(c, 0);
    XML(virDomainCheckpointGetXMLDesc(c, 0));
    INT(virDomainCheckpointDelete(c, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY));
    virDomainCheckpointFree(c);
    c = virDomainCheckpointCreateXML(test, full, REDEFINE);
    PTR(c);
    again = virDomainCheckpointGetXMLDesc(c, 0);
    printf("redefined document is identical: %d\n", full && again && strcmp(full, again) == 0);
    free(again);
    /* Redefining an existing name replaces it: no duplicate error. */
    virDomainCheckpointFree(c);
    c = virDomainCheckpointCreateXML(test, full, REDEFINE);
    PTR(c);
    virDomainCheckpointFree(c);
    free(full);
    list_domain(test, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    delete_all(test);

    printf("== redefine with <domain> of the default domain\n");
    {
        char *domxml = virDomainGetXMLDesc(test, VIR_DOMAIN_XML_INACTIVE);
        size_t len = strlen(domxml) + 512;
        char *xml = malloc(len);
        snprintf(xml, len, "<domaincheckpoint><name>wd</name><creationTime>1234567890</creationTime>"
                           "<disks><disk name='/guest/diskimage1' bitmap='b'/></disks>%s</domaincheckpoint>", domxml);
        c = create_chk(test, "<domaincheckpoint><name>wd</name><creationTime>1</creationTime></domaincheckpoint>", REDEFINE);
        virDomainCheckpointFree(c);
        c = virDomainCheckpointCreateXML(test, xml, REDEFINE);
        PTR(c);
        virDomainCheckpointFree(c);
        show_xml_raw(test, "wd", 0);
        snprintf(xml, len, "<domaincheckpoint><name>wd2</name><creationTime>0</creationTime>"
                           "<disks><disk name='vda' checkpoint='no'/></disks>%s</domaincheckpoint>", domxml);
        c = virDomainCheckpointCreateXML(test, xml, REDEFINE);
        PTR(c);
        virDomainCheckpointFree(c);
        show_xml_raw(test, "wd2", NO_DOMAIN);
        snprintf(xml, len, "<domaincheckpoint><name>wd3</name><creationTime>3</creationTime>"
                           "<disks><disk name='vda'/><disk name='vda'/></disks>%s</domaincheckpoint>", domxml);
        try_create(test, xml, REDEFINE);
        free(xml);
        free(domxml);
    }
    delete_all(test);

    printf("== redefine without <domain>: disks are not checked\n");
    c = create_chk(disks, "<domaincheckpoint><name>nd</name><creationTime>42</creationTime>"
                          "<description>kept</description>"
                          "<disks><disk name='vdz'/><disk name='vdz' checkpoint='no'/><disk name='/c.img'/>"
                          "<disk name='vdb' bitmap='bb'/><disk name='hdc'/></disks></domaincheckpoint>", REDEFINE);
    virDomainCheckpointFree(c);
    show_xml_raw(disks, "nd", NO_DOMAIN);
    show_xml_raw(disks, "nd", 0);
    c = create_chk(disks, "<domaincheckpoint><name>nd0</name><creationTime>0</creationTime></domaincheckpoint>", REDEFINE);
    virDomainCheckpointFree(c);
    show_xml_raw(disks, "nd0", 0);
    c = create_chk(disks, "<domaincheckpoint><name>big</name><creationTime>9223372036854775807</creationTime>"
                          "</domaincheckpoint>", REDEFINE);
    virDomainCheckpointFree(c);
    show_xml_raw(disks, "big", 0);
    /* A redefined document taken from a NO_DOMAIN dump. */
    {
        char *x;
        c = create_chk(disks, "<domaincheckpoint><name>dump</name><disks><disk name='vdc'/></disks></domaincheckpoint>", 0);
        x = virDomainCheckpointGetXMLDesc(c, NO_DOMAIN);
        INT(virDomainCheckpointDelete(c, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY));
        virDomainCheckpointFree(c);
        c = virDomainCheckpointCreateXML(disks, x, REDEFINE);
        PTR(c);
        again = virDomainCheckpointGetXMLDesc(c, NO_DOMAIN);
        printf("redefined from a NO_DOMAIN dump is identical: %d\n", x && again && strcmp(x, again) == 0);
        free(again);
        free(x);
        virDomainCheckpointFree(c);
    }
    delete_all(disks);

    printf("== replace in place keeps the children\n");
    create_drop(disks, "<domaincheckpoint><name>p1</name><creationTime>10</creationTime></domaincheckpoint>", REDEFINE);
    create_drop(disks, "<domaincheckpoint><name>p2</name><creationTime>20</creationTime>"
                      "<parent><name>p1</name></parent></domaincheckpoint>", REDEFINE);
    create_drop(disks, "<domaincheckpoint><name>p3</name><creationTime>30</creationTime>"
                      "<parent><name>p2</name></parent></domaincheckpoint>", REDEFINE);
    create_drop(disks, "<domaincheckpoint><name>p4</name><creationTime>40</creationTime>"
                      "<parent><name>p1</name></parent></domaincheckpoint>", REDEFINE);
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    /* p2 loses its parent: a new root, still with p3 below it. */
    create_drop(disks, "<domaincheckpoint><name>p2</name><creationTime>21</creationTime>"
                      "<description>replaced</description></domaincheckpoint>", REDEFINE);
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    show_xml_raw(disks, "p2", NO_DOMAIN);
    show_parent(disks, "p3");
    /* Back under p1: it becomes p1's first child again. */
    create_drop(disks, "<domaincheckpoint><name>p2</name><creationTime>22</creationTime>"
                      "<parent><name>p1</name></parent></domaincheckpoint>", REDEFINE);
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    c = virDomainCheckpointLookupByName(disks, "p1", 0);
    list_children(c, 0);
    list_children(c, VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS);
    virDomainCheckpointFree(c);
    /* Moved below its own former sibling. */
    create_drop(disks, "<domaincheckpoint><name>p4</name><creationTime>41</creationTime>"
                      "<parent><name>p3</name></parent></domaincheckpoint>", REDEFINE);
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    show_xml_raw(disks, "p4", NO_DOMAIN);
    delete_all(disks);

    printf("== which checkpoint is current after a redefine\n");
    /* No current yet: the redefined root becomes current. */
    create_drop(disks, "<domaincheckpoint><name>q1</name><creationTime>1</creationTime></domaincheckpoint>", REDEFINE);
    create_named(disks, "n1");
    show_parent(disks, "n1");
    /* A child of the current one becomes current. */
    create_drop(disks, "<domaincheckpoint><name>q2</name><creationTime>2</creationTime>"
                      "<parent><name>n1</name></parent></domaincheckpoint>", REDEFINE);
    create_named(disks, "n2");
    show_parent(disks, "n2");
    /* A new root, or a child of something else, leaves current alone. */
    create_drop(disks, "<domaincheckpoint><name>q3</name><creationTime>3</creationTime></domaincheckpoint>", REDEFINE);
    create_drop(disks, "<domaincheckpoint><name>q4</name><creationTime>4</creationTime>"
                      "<parent><name>q1</name></parent></domaincheckpoint>", REDEFINE);
    create_named(disks, "n3");
    show_parent(disks, "n3");
    /* Redefining the current one in place (same parent) keeps it current. */
    create_drop(disks, "<domaincheckpoint><name>n3</name><creationTime>5</creationTime>"
                      "<parent><name>n2</name></parent></domaincheckpoint>", REDEFINE);
    create_named(disks, "n4");
    show_parent(disks, "n4");
    /* Redefining the current one elsewhere: does it stay current? */
    create_drop(disks, "<domaincheckpoint><name>n4</name><creationTime>6</creationTime>"
                      "<parent><name>q3</name></parent></domaincheckpoint>", REDEFINE);
    create_named(disks, "n5");
    show_parent(disks, "n5");
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    list_domain(disks, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    delete_all(disks);
    /* With everything deleted there is no current: a plain create is a root again. */
    create_named(disks, "fresh");
    show_parent(disks, "fresh");
    delete_all(disks);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr test, disks, nodisk;
    virDomainCheckpointPtr c;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    test = virDomainLookupByName(conn, "test");
    printf("== setup\n");
    disks = virDomainDefineXML(conn, disks_domain_xml);
    PTR(disks);
    INT(virDomainCreate(disks));
    nodisk = virDomainDefineXML(conn, nodisk_domain_xml);
    PTR(nodisk);
    INT(virDomainCreate(nodisk));

    parse_errors(test);
    redefine_errors(test);
    alignment_errors(test, disks, nodisk);
    names(test);
    plain_create_input(test);
    output_flags(test);
    creation_times(disks);
    name_patterns(test);
    list_domain(test, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    delete_all(test);
    alignment_defaults(disks);
    delete_all(disks);
    redefine(test, disks);

    /* SIZE needs a running domain; the other flags do not. */
    printf("== SIZE on an inactive domain\n");
    c = create_chk(disks, "<domaincheckpoint><name>off</name></domaincheckpoint>", 0);
    INT(virDomainDestroy(disks));
    XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN | SIZE));
    XML(virDomainCheckpointGetXMLDesc(c, SIZE));
    XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN));
    XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN | SECURE));
    XML(virDomainCheckpointGetXMLDesc(c, NO_DOMAIN | SIZE | 8));
    INT(virDomainCheckpointDelete(c, 0));
    virDomainCheckpointFree(c);

    virDomainFree(nodisk);
    virDomainFree(disks);
    virDomainFree(test);
    INT(virConnectClose(conn));
    return 0;
}
