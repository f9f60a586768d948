/*
 * checkpoint-tree.c: the shape of a domain's checkpoint tree on test:///default.
 *
 * Part 1 builds a branched tree from plain creates, deletes and redefinitions and lists
 * it with every flag combination, for the domain and for each checkpoint's children,
 * with and without an array. Part 2 deletes one checkpoint of a fixed tree with each
 * flag combination, rebuilding the tree from scratch for every case, and shows the tree
 * that remains and where the next plain create attaches (which reveals the domain's
 * hidden current checkpoint).
 *
 * Listings of the whole domain without ROOTS and without TOPOLOGICAL come back in an
 * order that varies from run to run, so those names are printed sorted; every other
 * listing is printed in the order returned.
 */
#define _POSIX_C_SOURCE 200809L

#include "oracle.h"

#define REDEFINE VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
#define NO_DOMAIN VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN
#define CHILDREN VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN
#define METADATA_ONLY VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY
#define CHILDREN_ONLY VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY
#define TOPO VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL

/* Redefines name under parent (NULL: a root) with a fixed creation time. */
static int redefine(virDomainPtr dom, const char *name, const char *parent, int when)
{
    char xml[512];
    if (parent)
        snprintf(xml, sizeof(xml),
                 "<domaincheckpoint><name>%s</name><parent><name>%s</name></parent>"
                 "<creationTime>%d</creationTime></domaincheckpoint>", name, parent, when);
    else
        snprintf(xml, sizeof(xml), "<domaincheckpoint><name>%s</name><creationTime>%d</creationTime></domaincheckpoint>",
                 name, when);
    return create_drop(dom, xml, REDEFINE);
}

/* Prints the unmasked document of a redefined checkpoint (its times are ours). */
static void show_doc(virDomainPtr dom, const char *name)
{
    virDomainCheckpointPtr c = virDomainCheckpointLookupByName(dom, name, 0);
    char *xml;
    if (!c) {
        printf("%s: lookup failed\n", name);
        show_error();
        return;
    }
    xml = virDomainCheckpointGetXMLDesc(c, NO_DOMAIN);
    printf("document of %s:\n%s", name, xml ? xml : "NULL\n");
    if (!xml)
        show_error();
    free(xml);
    virDomainCheckpointFree(c);
}

static void children_of(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainCheckpointPtr c = virDomainCheckpointLookupByName(dom, name, 0);
    if (!c) {
        printf("children of %s: lookup failed\n", name);
        show_error();
        return;
    }
    list_children(c, flags);
    virDomainCheckpointFree(c);
}

/* The parent of every checkpoint, in topological order. */
static void parents(virDomainPtr dom)
{
    virDomainCheckpointPtr *arr = NULL;
    int n = virDomainListAllCheckpoints(dom, &arr, TOPO);
    int i;
    for (i = 0; arr && i < n; i++) {
        virDomainCheckpointPtr p = virDomainCheckpointGetParent(arr[i], 0);
        int code = virGetLastErrorCode(); /* before GetName resets it */
        const char *name = virDomainCheckpointGetName(arr[i]);
        if (p) {
            printf("  %s -> parent %s\n", name, virDomainCheckpointGetName(p));
            virDomainCheckpointFree(p);
        } else {
            printf("  %s -> no parent (code %d)\n", name, code);
        }
        virDomainCheckpointFree(arr[i]);
    }
    free(arr);
}

/* The §4.4 example: a, b, c; delete c; d, e; redefine r2, r2c, b2; create f. */
static void worked_example(virDomainPtr dom)
{
    static const char *const all[] = {"a", "b", "b2", "d", "e", "f", "r2", "r2c"};
    unsigned int f;
    size_t i;

    printf("== building the example tree\n");
    create_named(dom, "a");
    create_named(dom, "b");
    create_named(dom, "c");
    delete_named(dom, "c", 0);
    create_named(dom, "d");
    show_parent(dom, "d");
    create_named(dom, "e");
    redefine(dom, "r2", NULL, 1000);
    redefine(dom, "r2c", "r2", 1001);
    redefine(dom, "b2", "a", 1002);
    create_named(dom, "f");
    show_parent(dom, "f");
    parents(dom);

    printf("== listing the domain with every flag combination\n");
    for (f = 0; f < 16; f++)
        list_domain(dom, f);

    printf("== listing children with every flag combination\n");
    for (f = 0; f < 16; f++)
        children_of(dom, "a", f);
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        children_of(dom, all[i], 0);
        children_of(dom, all[i], VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS);
        children_of(dom, all[i], VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS | VIR_DOMAIN_CHECKPOINT_LIST_LEAVES);
        children_of(dom, all[i], VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS | VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES);
    }

    printf("== parents\n");
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        show_parent(dom, all[i]);
    {
        virDomainCheckpointPtr root = virDomainCheckpointLookupByName(dom, "r2", 0);
        PTR(virDomainCheckpointGetParent(root, 0));
        PTR(virDomainCheckpointGetParent(root, 1));
        virDomainCheckpointFree(root);
    }
}

/*
 * The fixed tree of §7, built by redefinition:
 *   a -> b -> {d, c}, c -> e, d -> f, and a separate root z; current = e.
 * Redefining a while there is no current makes it current, and so on down the chain
 * a, b, c, e; d, f and z are attached afterwards and leave current at e.
 */
static void build_delete_tree(virDomainPtr dom)
{
    redefine(dom, "a", NULL, 1);
    redefine(dom, "b", "a", 2);
    redefine(dom, "c", "b", 3);
    redefine(dom, "e", "c", 5);
    redefine(dom, "d", "b", 4);
    redefine(dom, "f", "d", 6);
    redefine(dom, "z", NULL, 26);
}

/* One row of the delete table: fresh tree, delete, look at what is left. */
static void delete_case(virDomainPtr dom, const char *victim, unsigned int flags, int show_docs)
{
    printf("== delete %s with flags 0x%x\n", victim, flags);
    build_delete_tree(dom);
    list_domain(dom, TOPO);
    delete_named(dom, victim, flags);
    list_domain(dom, TOPO);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    list_domain(dom, 0);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_LEAVES | TOPO);
    parents(dom);
    children_of(dom, victim, 0);
    children_of(dom, "a", 0);
    children_of(dom, "b", VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS);
    if (show_docs) {
        show_doc(dom, "c");
        show_doc(dom, "d");
        show_doc(dom, "b");
    }
    /* The next plain create attaches to the current checkpoint. */
    create_named(dom, "next");
    show_parent(dom, "next");
    list_domain(dom, TOPO);
    delete_all(dom);
}

static void delete_table(virDomainPtr dom)
{
    delete_case(dom, "b", 0, 1);
    delete_case(dom, "a", 0, 1);
    delete_case(dom, "b", CHILDREN, 0);
    delete_case(dom, "b", CHILDREN_ONLY, 1);
    delete_case(dom, "b", METADATA_ONLY, 1);
    delete_case(dom, "f", 0, 0);
    delete_case(dom, "e", 0, 0);
    /* More rows: the other flag combinations, and victims on and off the current path. */
    delete_case(dom, "b", CHILDREN | METADATA_ONLY, 0);
    delete_case(dom, "b", CHILDREN_ONLY | METADATA_ONLY, 0);
    delete_case(dom, "b", CHILDREN | CHILDREN_ONLY, 0);
    delete_case(dom, "a", CHILDREN, 0);
    delete_case(dom, "a", CHILDREN_ONLY, 0);
    delete_case(dom, "c", 0, 0);
    delete_case(dom, "c", CHILDREN, 0);
    delete_case(dom, "c", CHILDREN_ONLY, 0);
    delete_case(dom, "d", 0, 1);
    delete_case(dom, "d", CHILDREN, 0);
    delete_case(dom, "d", CHILDREN_ONLY, 0);
    delete_case(dom, "e", CHILDREN, 0);
    delete_case(dom, "e", CHILDREN_ONLY, 0);
    delete_case(dom, "z", 0, 0);
    delete_case(dom, "z", CHILDREN, 0);
    delete_case(dom, "z", CHILDREN_ONLY, 0);
}

/* Deleting several times in a row, and current moving up the chain. */
static void delete_sequences(virDomainPtr dom)
{
    printf("== current moves up as the chain is deleted from the end\n");
    create_named(dom, "s1");
    create_named(dom, "s2");
    create_named(dom, "s3");
    delete_named(dom, "s3", 0);
    delete_named(dom, "s2", 0);
    create_named(dom, "s4");
    show_parent(dom, "s4");
    delete_named(dom, "s4", 0);
    delete_named(dom, "s1", 0);
    create_named(dom, "s5");
    show_parent(dom, "s5");
    delete_all(dom);

    printf("== deleting a middle checkpoint moves its children in front of its siblings\n");
    redefine(dom, "m", NULL, 1);
    redefine(dom, "m1", "m", 2);
    redefine(dom, "m2", "m", 3);
    redefine(dom, "m1a", "m1", 4);
    redefine(dom, "m1b", "m1", 5);
    children_of(dom, "m", 0);
    delete_named(dom, "m1", 0);
    children_of(dom, "m", 0);
    children_of(dom, "m", VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS);
    list_domain(dom, TOPO);
    show_doc(dom, "m1a");
    /* Deleting the root: its children become roots, in front of the other roots. */
    redefine(dom, "other", NULL, 9);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    delete_named(dom, "m", 0);
    list_domain(dom, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    list_domain(dom, TOPO);
    show_doc(dom, "m1b");
    show_doc(dom, "m2");
    delete_all(dom);
}

int main(void)
{
    virConnectPtr conn;
    virDomainPtr dom;

    virInitialize();
    virSetErrorFunc(NULL, quiet_handler);

    conn = virConnectOpen("test:///default");
    dom = virDomainLookupByName(conn, "test");
    PTR(conn);
    PTR(dom);

    worked_example(dom);
    delete_all(dom);
    delete_table(dom);
    delete_sequences(dom);

    virDomainFree(dom);
    INT(virConnectClose(conn));
    return 0;
}
