/*
 * oracle.h: shared helpers of the oracle programs.
 *
 * Every oracle program is built against the system's libvirt and run twice, once with the
 * system library and once with virbackup's libvirt.so.0; both runs must print exactly the
 * same bytes. The helpers here print each call (as its source text), its result and the
 * complete thread error record that follows it.
 *
 * Two kinds of errors carry text produced by libxml2, whose exact wording a
 * re-implementation cannot be expected to copy: VIR_ERR_XML_DETAIL (35) and
 * VIR_ERR_XML_INVALID_SCHEMA (92). For those only a stable prefix of the message is printed
 * and the str fields are masked; see show_error().
 *
 * Everything is static inline so that a program may use any subset without warnings.
 */
#ifndef ORACLE_H
#define ORACLE_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static inline const char *s(const char *p) { return p ? p : "(null)"; }

/* Prints the first n bytes of text (all of it when n < 0), or (null). */
static inline void print_part(const char *text, int n)
{
    if (!text)
        printf("(null)");
    else if (n < 0)
        printf("%s", text);
    else
        printf("%.*s", n, text);
}

/* The thread's last error, in full, except for the libxml2-worded codes (see above). */
static inline void show_error(void)
{
    virErrorPtr e = virGetLastError();
    if (!e) {
        printf("    no error\n");
        return;
    }
    if (e->code == VIR_ERR_XML_DETAIL || e->code == VIR_ERR_XML_INVALID_SCHEMA) {
        int n = -1;
        if (e->message) {
            const char *end = e->code == VIR_ERR_XML_DETAIL ? strchr(e->message, ')') : strchr(e->message, '\n');
            if (end)
                n = (int)(end - e->message) + (e->code == VIR_ERR_XML_DETAIL ? 1 : 0);
        }
        printf("    error code=%d domain=%d level=%d\n      message=[", e->code, e->domain, e->level);
        print_part(e->message, n);
        printf("]\n      str1=[<masked>] str2=[<masked>]\n");
        return;
    }
    printf("    error code=%d domain=%d level=%d\n      message=[%s]\n      str1=[%s] str2=[%s] str3=[%s] int1=%d int2=%d\n",
           e->code, e->domain, e->level, s(e->message), s(e->str1), s(e->str2), s(e->str3), e->int1, e->int2);
}

#define INT(expr)                                   \
    do {                                            \
        int r_ = (expr);                            \
        printf("%s = %d\n", #expr, r_);             \
        show_error();                               \
    } while (0)

#define PTR(expr)                                                   \
    do {                                                            \
        const void *r_ = (const void *)(expr);                      \
        printf("%s = %s\n", #expr, r_ ? "non-NULL" : "NULL");       \
        show_error();                                               \
    } while (0)

#define STR(expr)                                   \
    do {                                            \
        const char *r_ = (expr);                    \
        printf("%s = [%s]\n", #expr, s(r_));        \
        show_error();                               \
    } while (0)

#define FREESTR(expr)                               \
    do {                                            \
        char *r_ = (expr);                          \
        printf("%s = [%s]\n", #expr, s(r_));        \
        show_error();                               \
        free(r_);                                   \
    } while (0)

static inline void quiet_handler(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

/* ---- checkpoint helpers ------------------------------------------------------------ */

/*
 * Returns a malloc'd copy of text with every occurrence of needle replaced by repl
 * (NULL stays NULL).
 */
static inline char *replace_all(const char *text, const char *needle, const char *repl)
{
    size_t nl, rl, count = 0, len;
    const char *p;
    char *out, *o;

    if (!text)
        return NULL;
    nl = strlen(needle);
    rl = strlen(repl);
    if (nl == 0)
        return strdup(text);
    for (p = text; (p = strstr(p, needle)); p += nl)
        count++;
    len = strlen(text) + count * rl + 1;
    out = malloc(len);
    if (!out)
        abort();
    for (o = out, p = text;;) {
        const char *hit = strstr(p, needle);
        if (!hit) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, repl, rl);
        o += rl;
        p = hit + nl;
    }
    return out;
}

/* Returns a malloc'd copy of xml with each <creationTime>DIGITS</creationTime> masked. */
static inline char *mask_times(const char *xml)
{
    static const char open[] = "<creationTime>";
    static const char close[] = "</creationTime>";
    char *out, *o;
    const char *p;

    if (!xml)
        return NULL;
    out = malloc(strlen(xml) + 1);
    if (!out)
        abort();
    for (o = out, p = xml; *p;) {
        if (strncmp(p, open, sizeof(open) - 1) == 0) {
            const char *q = p + sizeof(open) - 1;
            const char *d = q;
            while (*d >= '0' && *d <= '9')
                d++;
            if (d > q && strncmp(d, close, sizeof(close) - 1) == 0) {
                o += sprintf(o, "%sT%s", open, close);
                p = d + sizeof(close) - 1;
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* Prints an XML result (creation times masked) and the error, then frees it. */
#define XML(expr)                                           \
    do {                                                    \
        char *r_ = (expr);                                  \
        char *m_ = mask_times(r_);                          \
        printf("%s =%s", #expr, m_ ? "\n" : " NULL\n");     \
        if (m_)                                             \
            printf("%s", m_);                               \
        show_error();                                       \
        free(m_);                                           \
        free(r_);                                           \
    } while (0)

/* A recognisable non-NULL value stored into list out-parameters before each call. */
#define SENTINEL_LIST ((virDomainCheckpointPtr *)(void *)&oracle_sentinel_target)
static int oracle_sentinel_target;

static inline int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Defines fn(n, arr, sorted): prints the names of a returned list of handles of `type`
 * (sorted when the order is unspecified), checks the trailing NULL slot, and frees the
 * handles (`release`) and the array; `sentinel` is the value stored before the call. It
 * must be called after the error of the list call has been printed, because the name
 * getter and the release reset the error. One definition serves every kind of handle.
 */
#define DEFINE_PRINT_LIST(fn, type, sentinel, getname, release)                 \
    static inline void fn(int n, type *arr, int sorted)                         \
    {                                                                           \
        const char **names;                                                     \
        int i;                                                                  \
        if (arr == (sentinel)) {                                                \
            printf("    array untouched\n");                                    \
            return;                                                             \
        }                                                                       \
        if (!arr) {                                                             \
            printf("    array NULL\n");                                         \
            return;                                                             \
        }                                                                       \
        if (n < 0) {                                                            \
            printf("    array non-NULL after failure\n");                       \
            return;                                                             \
        }                                                                       \
        names = calloc((size_t)n + 1, sizeof(*names));                          \
        if (!names)                                                             \
            abort();                                                            \
        for (i = 0; i < n; i++)                                                 \
            names[i] = s(getname(arr[i]));                                      \
        if (sorted)                                                             \
            qsort(names, (size_t)n, sizeof(*names), cmp_names);                 \
        printf("    names%s:", sorted ? " (sorted)" : "");                      \
        for (i = 0; i < n; i++)                                                 \
            printf(" %s", names[i]);                                            \
        printf("\n    last slot NULL: %s\n", arr[n] == NULL ? "yes" : "NO");    \
        free(names);                                                            \
        for (i = 0; i < n; i++)                                                 \
            release(arr[i]);                                                    \
        free(arr);                                                              \
    }

DEFINE_PRINT_LIST(print_names, virDomainCheckpointPtr, SENTINEL_LIST, virDomainCheckpointGetName,
                  virDomainCheckpointFree)

/*
 * A list call whose array out-parameter is arr: arr is set to a sentinel first, so the
 * output shows whether the call stored NULL, a list, or left it alone.
 */
#define LIST(expr, arr, sorted)                         \
    do {                                                \
        int r_;                                         \
        (arr) = SENTINEL_LIST;                          \
        r_ = (expr);                                    \
        printf("%s = %d\n", #expr, r_);                 \
        show_error();                                   \
        print_names(r_, (arr), (sorted));               \
    } while (0)

/*
 * Lists a domain's checkpoints with flags and prints the result; the same call without an
 * array follows, to show the count-only path. The order is unspecified (hash order) for a
 * listing with neither ROOTS nor TOPOLOGICAL, so those names are printed sorted.
 */
static inline void list_domain(virDomainPtr dom, unsigned int flags)
{
    virDomainCheckpointPtr *arr = SENTINEL_LIST;
    const char *name = virDomainGetName(dom);
    int n = virDomainListAllCheckpoints(dom, &arr, flags);
    int sorted = !(flags & (VIR_DOMAIN_CHECKPOINT_LIST_ROOTS | VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL));

    printf("virDomainListAllCheckpoints(%s, &arr, 0x%x) = %d\n", s(name), flags, n);
    show_error();
    print_names(n, arr, sorted);
    n = virDomainListAllCheckpoints(dom, NULL, flags);
    printf("virDomainListAllCheckpoints(%s, NULL, 0x%x) = %d\n", s(name), flags, n);
    show_error();
}

/* The same for the children of a checkpoint; these orders are always deterministic. */
static inline void list_children(virDomainCheckpointPtr chk, unsigned int flags)
{
    virDomainCheckpointPtr *arr = SENTINEL_LIST;
    const char *name = virDomainCheckpointGetName(chk);
    int n = virDomainCheckpointListAllChildren(chk, &arr, flags);

    printf("virDomainCheckpointListAllChildren(%s, &arr, 0x%x) = %d\n", s(name), flags, n);
    show_error();
    print_names(n, arr, 0);
    n = virDomainCheckpointListAllChildren(chk, NULL, flags);
    printf("virDomainCheckpointListAllChildren(%s, NULL, 0x%x) = %d\n", s(name), flags, n);
    show_error();
}

/* Creates a checkpoint from XML and reports only success or the error; returns the handle. */
static inline virDomainCheckpointPtr create_chk(virDomainPtr dom, const char *xml, unsigned int flags)
{
    virDomainCheckpointPtr c = virDomainCheckpointCreateXML(dom, xml, flags);
    printf("create(flags=0x%x) %s = %s\n", flags, xml, c ? s(virDomainCheckpointGetName(c)) : "NULL");
    if (!c)
        show_error();
    return c;
}

/* Creates a checkpoint from XML, reporting as create_chk, and drops the handle. */
static inline int create_drop(virDomainPtr dom, const char *xml, unsigned int flags)
{
    virDomainCheckpointPtr c = create_chk(dom, xml, flags);
    if (!c)
        return -1;
    virDomainCheckpointFree(c);
    return 0;
}

/* Creates a plain checkpoint named name, dropping the handle; returns 0 on success. */
static inline int create_named(virDomainPtr dom, const char *name)
{
    char xml[512];
    virDomainCheckpointPtr c;
    snprintf(xml, sizeof(xml), "<domaincheckpoint><name>%s</name></domaincheckpoint>", name);
    c = create_chk(dom, xml, 0);
    if (!c)
        return -1;
    virDomainCheckpointFree(c);
    return 0;
}

/* Prints the parent of the named checkpoint (or the error). */
static inline void show_parent(virDomainPtr dom, const char *name)
{
    virDomainCheckpointPtr c = virDomainCheckpointLookupByName(dom, name, 0);
    virDomainCheckpointPtr p;
    if (!c) {
        printf("parent of %s: lookup failed\n", name);
        show_error();
        return;
    }
    p = virDomainCheckpointGetParent(c, 0);
    if (p) {
        printf("parent of %s: %s\n", name, s(virDomainCheckpointGetName(p)));
        virDomainCheckpointFree(p);
    } else {
        printf("parent of %s: NULL\n", name);
        show_error();
    }
    virDomainCheckpointFree(c);
}

/* Deletes the named checkpoint with flags and prints the outcome. */
static inline void delete_named(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainCheckpointPtr c = virDomainCheckpointLookupByName(dom, name, 0);
    int r;
    if (!c) {
        printf("delete %s: lookup failed\n", name);
        show_error();
        return;
    }
    r = virDomainCheckpointDelete(c, flags);
    printf("delete %s (0x%x) = %d\n", name, flags, r);
    show_error();
    virDomainCheckpointFree(c);
}

/* Removes every checkpoint of a domain (roots with all their children). */
static inline void delete_all(virDomainPtr dom)
{
    virDomainCheckpointPtr *roots = NULL;
    int n = virDomainListAllCheckpoints(dom, &roots, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS);
    int i;
    for (i = 0; roots && i < n; i++) {
        virDomainCheckpointDelete(roots[i], VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN);
        virDomainCheckpointFree(roots[i]);
    }
    free(roots);
    printf("deleted all: %d roots, %d left\n", n, virDomainListAllCheckpoints(dom, NULL, 0));
}

#endif
