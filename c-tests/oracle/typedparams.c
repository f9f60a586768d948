/*
 * typedparams.c: the virTypedParamsAdd* builders (array growth, too-long names, repeated
 * names, every type of AddFromString with good and bad text, AddStringList, NULL
 * arguments), the getters and virTypedParamsFree on the arrays they build, and the free
 * functions of the public structures (virDomainFSInfoFree and friends) on NULL and on
 * structures built here with malloc, so that valgrind sees every block released.
 *
 * Errors go to libvirt's default printer (stderr, compared too) and, in full, to stdout.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>

#include "oracle.h"

/* The array most calls add to, its count and its allocated size. */
static virTypedParameterPtr P;
static int N;
static int MAX;

#define TEN "0123456789"
/* 79 bytes: the longest name that fits in a field with its NUL. */
#define NAME79 TEN TEN TEN TEN TEN TEN TEN "012345678"
/* 80 bytes: one too many. */
#define NAME80 TEN TEN TEN TEN TEN TEN TEN TEN
#define NAME100 NAME80 TEN TEN

/* An Add* call: its result, the count and size afterwards, and the error record. */
#define ADD(expr)                                                   \
    do {                                                            \
        int r_ = (expr);                                            \
        printf("%s = %d (n=%d max=%d)\n", #expr, r_, N, MAX);       \
        show_error();                                               \
    } while (0)

static void print_param(const virTypedParameter *p)
{
    printf("[%s] type=%d ", p->field, p->type);
    switch (p->type) {
    case VIR_TYPED_PARAM_INT:
        printf("int %d", p->value.i);
        break;
    case VIR_TYPED_PARAM_UINT:
        printf("uint %u", p->value.ui);
        break;
    case VIR_TYPED_PARAM_LLONG:
        printf("llong %lld", p->value.l);
        break;
    case VIR_TYPED_PARAM_ULLONG:
        printf("ullong %llu", p->value.ul);
        break;
    case VIR_TYPED_PARAM_DOUBLE:
        printf("double %.17g", p->value.d);
        break;
    case VIR_TYPED_PARAM_BOOLEAN:
        printf("boolean %d", (int)p->value.b);
        break;
    case VIR_TYPED_PARAM_STRING:
        printf("string [%s]", s(p->value.s));
        break;
    default:
        printf("(no value)");
    }
    printf("\n");
}

/* Prints every parameter of an array. */
static void dump(const char *what, virTypedParameterPtr params, int n)
{
    int i;
    printf("  %s: %d parameters\n", what, n);
    for (i = 0; i < n; i++) {
        printf("    %d ", i);
        print_param(&params[i]);
    }
}

/* After a failed call: what libvirt left in the first unused slot (name and type). */
static void peek(void)
{
    if (P && MAX > N)
        printf("    unused slot %d: [%s] type=%d\n", N, P[N].field, P[N].type);
}

/* Frees the current array and starts a new, empty one. */
static void reset(void)
{
    virTypedParamsFree(P, N);
    P = NULL;
    N = 0;
    MAX = 0;
}

/* Runs one call with stderr sent to /dev/null: GLib prints a timestamped warning when
 * libvirt hands it a NULL name, and that line cannot be compared. */
static int saved_stderr = -1;
static void hush(void)
{
    int fd = open("/dev/null", O_WRONLY);
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}
static void unhush(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
}

static void growth(void)
{
    char name[32];
    int i, r;

    printf("== growth from NULL\n");
    for (i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        r = virTypedParamsAddInt(&P, &N, &MAX, name, i * 3 - 7);
        printf("add %s = %d (n=%d max=%d)\n", name, r, N, MAX);
        show_error();
    }
    dump("grown", P, N);
    reset();

    printf("== the caller's own array\n");
    P = calloc(2, sizeof(*P));
    MAX = 2;
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "a", 1));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "b", 2));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "c", 3));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "d", 4));
    dump("caller's", P, N);
    reset();

    printf("== more room than needed\n");
    P = calloc(10, sizeof(*P));
    MAX = 10;
    ADD(virTypedParamsAddString(&P, &N, &MAX, "only", "one"));
    dump("roomy", P, N);
    reset();
}

static void typed_adds(void)
{
    printf("== one of each type\n");
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "int", -2147483647 - 1));
    ADD(virTypedParamsAddUInt(&P, &N, &MAX, "uint", 4294967295U));
    ADD(virTypedParamsAddLLong(&P, &N, &MAX, "llong", -9223372036854775807LL - 1));
    ADD(virTypedParamsAddULLong(&P, &N, &MAX, "ullong", 18446744073709551615ULL));
    ADD(virTypedParamsAddDouble(&P, &N, &MAX, "double", -0.125));
    ADD(virTypedParamsAddBoolean(&P, &N, &MAX, "false", 0));
    ADD(virTypedParamsAddBoolean(&P, &N, &MAX, "true", 1));
    ADD(virTypedParamsAddBoolean(&P, &N, &MAX, "forty-two", 42));
    ADD(virTypedParamsAddBoolean(&P, &N, &MAX, "minus", -1));
    ADD(virTypedParamsAddString(&P, &N, &MAX, "string", "hello"));
    ADD(virTypedParamsAddString(&P, &N, &MAX, "empty", ""));
    ADD(virTypedParamsAddString(&P, &N, &MAX, "null-string", NULL));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, NAME79, 79));
    dump("typed", P, N);

    printf("== a name already present\n");
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "int", 5));
    ADD(virTypedParamsAddString(&P, &N, &MAX, "int", "again"));
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, "string", VIR_TYPED_PARAM_STRING, "twice"));
    dump("repeated", P, N);

    printf("== names that are too long\n");
    ADD(virTypedParamsAddInt(&P, &N, &MAX, NAME80, 1));
    peek();
    ADD(virTypedParamsAddUInt(&P, &N, &MAX, NAME80, 1));
    ADD(virTypedParamsAddLLong(&P, &N, &MAX, NAME80, 1));
    ADD(virTypedParamsAddULLong(&P, &N, &MAX, NAME80, 1));
    ADD(virTypedParamsAddDouble(&P, &N, &MAX, NAME80, 1));
    ADD(virTypedParamsAddBoolean(&P, &N, &MAX, NAME80, 1));
    ADD(virTypedParamsAddString(&P, &N, &MAX, NAME80, "leak?"));
    ADD(virTypedParamsAddString(&P, &N, &MAX, NAME100, NULL));
    peek();
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NAME80, VIR_TYPED_PARAM_INT, "1"));
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NAME80, VIR_TYPED_PARAM_STRING, "leak?"));
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NAME80, 99, "1"));
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NAME80, VIR_TYPED_PARAM_INT, NULL));
    dump("after refusals", P, N);

    printf("== NULL names\n");
    /* The failed call above left a truncated name in the unused slot. */
    peek();
    hush();
    ADD(virTypedParamsAddInt(&P, &N, &MAX, NULL, 7));
    unhush();
    hush();
    ADD(virTypedParamsAddString(&P, &N, &MAX, NULL, "nameless"));
    unhush();
    hush();
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NULL, VIR_TYPED_PARAM_BOOLEAN, "true"));
    unhush();
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NULL, VIR_TYPED_PARAM_INT, NULL));
    hush();
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NULL, VIR_TYPED_PARAM_INT, "x"));
    unhush();
    peek();
    hush();
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, NULL, 0, "1"));
    unhush();
    peek();
    dump("with NULL names", P, N);
    reset();
}

/* Prints text in C string syntax (tabs and newlines escaped), or NULL. */
static void print_quoted(const char *text)
{
    if (!text) {
        printf("NULL");
        return;
    }
    putchar('"');
    for (; *text; text++) {
        if (*text == '\t')
            printf("\\t");
        else if (*text == '\n')
            printf("\\n");
        else
            putchar(*text);
    }
    putchar('"');
}

/* One AddFromString call of the given type and text. */
static void from(int type, const char *text)
{
    char name[32];
    int r;

    snprintf(name, sizeof(name), "f%d", N);
    r = virTypedParamsAddFromString(&P, &N, &MAX, name, type, text);
    printf("from(type=%d, ", type);
    print_quoted(text);
    printf(") as %s = %d (n=%d max=%d)\n", name, r, N, MAX);
    show_error();
    if (r < 0) {
        peek();
    } else {
        printf("    ");
        print_param(&P[N - 1]);
    }
}

static void from_string(void)
{
    static const char *ints[] = {
        "0", "42", "-42", "+42", " 7", "\t\n 8", "7 ", "", " ", "abc", "12abc", "0x10", "010", "1e3", "1.0",
        "2147483647", "2147483648", "-2147483648", "-2147483649", "99999999999999999999", "--1", "- 1",
    };
    static const char *uints[] = {
        "0", "4294967295", "4294967296", "-1", " -1", "-4294967295", "-4294967296", "-0", "+7", "abc", "",
        "18446744073709551615", "18446744073709551616", "1 ",
    };
    static const char *llongs[] = {
        "0", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        " -5", "x", "", "5x",
    };
    static const char *ullongs[] = {
        "0", "18446744073709551615", "18446744073709551616", "-1", "-18446744073709551615",
        "-18446744073709551616", " 3", "y", "", "3 ",
    };
    static const char *doubles[] = {
        "0", "1.5", "-2.5e-3", " 3", "3 ", "inf", "-INF", "infinity", "nan", "NAN", "0x1p3", "0x", "1,5",
        "1e308", "1e400", "-1e400", "1e-300", "1e-320", "1e-400", ".5", "5.", "e5", "", "abc", "1.7976931348623157e308",
    };
    static const char *booleans[] = {
        "true", "TRUE", "TrUe", "1", "false", "FALSE", "fAlSe", "0", "yes", "no", "", " 1", "1 ", "01", "2", "t",
    };
    static const char *strings[] = {"text", "", "with spaces and 'quotes'"};
    size_t i;

    printf("== AddFromString: int\n");
    for (i = 0; i < sizeof(ints) / sizeof(*ints); i++)
        from(VIR_TYPED_PARAM_INT, ints[i]);
    printf("== AddFromString: uint\n");
    for (i = 0; i < sizeof(uints) / sizeof(*uints); i++)
        from(VIR_TYPED_PARAM_UINT, uints[i]);
    printf("== AddFromString: llong\n");
    for (i = 0; i < sizeof(llongs) / sizeof(*llongs); i++)
        from(VIR_TYPED_PARAM_LLONG, llongs[i]);
    printf("== AddFromString: ullong\n");
    for (i = 0; i < sizeof(ullongs) / sizeof(*ullongs); i++)
        from(VIR_TYPED_PARAM_ULLONG, ullongs[i]);
    printf("== AddFromString: double\n");
    for (i = 0; i < sizeof(doubles) / sizeof(*doubles); i++)
        from(VIR_TYPED_PARAM_DOUBLE, doubles[i]);
    printf("== AddFromString: boolean\n");
    for (i = 0; i < sizeof(booleans) / sizeof(*booleans); i++)
        from(VIR_TYPED_PARAM_BOOLEAN, booleans[i]);
    printf("== AddFromString: string\n");
    for (i = 0; i < sizeof(strings) / sizeof(*strings); i++)
        from(VIR_TYPED_PARAM_STRING, strings[i]);
    printf("== AddFromString: NULL text\n");
    for (i = 0; i <= 8; i++)
        from((int)i, NULL);
    printf("== AddFromString: unknown types\n");
    from(0, "1");
    from(8, "1");
    from(-1, "1");
    from(1000, "");
    dump("from strings", P, N);
    reset();
}

static void string_lists(void)
{
    const char *three[] = {"one", "two", "three", NULL};
    const char *none[] = {NULL};
    const char *one[] = {"alone", NULL};

    printf("== AddStringList\n");
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", NULL));
    printf("    array %s\n", P ? "allocated" : "still NULL");
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", none));
    printf("    array %s\n", P ? "allocated" : "still NULL");
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", three));
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", one));
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, NAME80, three));
    peek();
    dump("lists", P, N);

    printf("== AddStringList keeps the previous error\n");
    ADD(virTypedParamsAddInt(&P, &N, &MAX, NAME80, 0));
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", NULL));
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", none));
    ADD(virTypedParamsAddStringList(&P, &N, &MAX, "list", one));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, NAME80, 0));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "fine", 0));
    dump("lists", P, N);
    reset();
}

static void getters(void)
{
    int i = -1, b = -1;
    unsigned int ui = 0;
    long long ll = 0;
    unsigned long long ull = 0;
    double d = 0;
    const char *str = NULL;

    printf("== getters on a built array\n");
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "i", -5));
    ADD(virTypedParamsAddUInt(&P, &N, &MAX, "ui", 5));
    ADD(virTypedParamsAddLLong(&P, &N, &MAX, "ll", -5000000000LL));
    ADD(virTypedParamsAddULLong(&P, &N, &MAX, "ull", 5000000000ULL));
    ADD(virTypedParamsAddDouble(&P, &N, &MAX, "d", 2.75));
    ADD(virTypedParamsAddBoolean(&P, &N, &MAX, "b", 9));
    ADD(virTypedParamsAddString(&P, &N, &MAX, "s", "str"));
    ADD(virTypedParamsAddFromString(&P, &N, &MAX, "fs", VIR_TYPED_PARAM_STRING, "from"));
    ADD(virTypedParamsAddInt(&P, &N, &MAX, "i", 6));

    INT(virTypedParamsGetInt(P, N, "i", &i));
    printf("    i=%d\n", i);
    INT(virTypedParamsGetUInt(P, N, "ui", &ui));
    printf("    ui=%u\n", ui);
    INT(virTypedParamsGetLLong(P, N, "ll", &ll));
    printf("    ll=%lld\n", ll);
    INT(virTypedParamsGetULLong(P, N, "ull", &ull));
    printf("    ull=%llu\n", ull);
    INT(virTypedParamsGetDouble(P, N, "d", &d));
    printf("    d=%g\n", d);
    INT(virTypedParamsGetBoolean(P, N, "b", &b));
    printf("    b=%d\n", b);
    INT(virTypedParamsGetString(P, N, "s", &str));
    printf("    s=%s\n", s(str));
    INT(virTypedParamsGetString(P, N, "fs", &str));
    printf("    fs=%s\n", s(str));
    INT(virTypedParamsGetString(P, N, "i", &str));
    INT(virTypedParamsGetBoolean(P, N, "s", &b));
    INT(virTypedParamsGetDouble(P, N, "missing", &d));
    INT(virTypedParamsGetInt(P, N - 1, "i", &i));
    printf("    i=%d\n", i);
    PTR(virTypedParamsGet(P, N, "fs"));
    PTR(virTypedParamsGet(P, N, "nothing"));
    virTypedParamsClear(P, N);
    printf("virTypedParamsClear(P, N) done\n");
    free(P);
    P = NULL;
    N = MAX = 0;
    virTypedParamsFree(NULL, 0);
    printf("virTypedParamsFree(NULL, 0) done\n");
}

static char *dup_or_die(const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        abort();
    return copy;
}

static void *zalloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p)
        abort();
    return p;
}

/* Leaves an error in the thread's record, to show which free functions reset it. */
static void plant_error(void)
{
    virTypedParameterPtr tmp = NULL;
    int n = 0, max = 0;
    virSetErrorFunc(NULL, quiet_handler);
    virTypedParamsAddInt(&tmp, &n, &max, NAME80, 0);
    virSetErrorFunc(NULL, NULL);
    virTypedParamsFree(tmp, n);
}

static void structures(virConnectPtr conn)
{
    virDomainFSInfoPtr fs;
    virDomainIOThreadInfoPtr io;
    virDomainInterfacePtr iface;
    virDomainStatsRecordPtr *stats;
    virNetworkDHCPLeasePtr lease;
    int n, max;

    printf("== structure free functions\n");
    plant_error();
    virDomainFSInfoFree(NULL);
    printf("virDomainFSInfoFree(NULL) done\n");
    show_error();
    virDomainIOThreadInfoFree(NULL);
    printf("virDomainIOThreadInfoFree(NULL) done\n");
    show_error();
    virDomainInterfaceFree(NULL);
    printf("virDomainInterfaceFree(NULL) done\n");
    show_error();
    virNetworkDHCPLeaseFree(NULL);
    printf("virNetworkDHCPLeaseFree(NULL) done\n");
    show_error();
    virDomainStatsRecordListFree(NULL);
    printf("virDomainStatsRecordListFree(NULL) done\n");
    show_error();

    fs = zalloc(sizeof(*fs));
    fs->mountpoint = dup_or_die("/");
    fs->name = dup_or_die("sda1");
    fs->fstype = dup_or_die("ext4");
    fs->ndevAlias = 2;
    fs->devAlias = zalloc(2 * sizeof(char *));
    fs->devAlias[0] = dup_or_die("vda");
    fs->devAlias[1] = dup_or_die("vdb");
    virDomainFSInfoFree(fs);
    printf("virDomainFSInfoFree(full) done\n");
    show_error();
    virDomainFSInfoFree(zalloc(sizeof(*fs)));
    printf("virDomainFSInfoFree(empty) done\n");
    show_error();

    io = zalloc(sizeof(*io));
    io->iothread_id = 1;
    io->cpumaplen = 2;
    io->cpumap = zalloc(2);
    virDomainIOThreadInfoFree(io);
    printf("virDomainIOThreadInfoFree(full) done\n");
    show_error();
    virDomainIOThreadInfoFree(zalloc(sizeof(*io)));
    printf("virDomainIOThreadInfoFree(empty) done\n");
    show_error();

    iface = zalloc(sizeof(*iface));
    iface->name = dup_or_die("eth0");
    iface->hwaddr = dup_or_die("52:54:00:00:00:01");
    iface->naddrs = 2;
    iface->addrs = zalloc(2 * sizeof(*iface->addrs));
    iface->addrs[0].type = VIR_IP_ADDR_TYPE_IPV4;
    iface->addrs[0].addr = dup_or_die("192.0.2.1");
    iface->addrs[0].prefix = 24;
    iface->addrs[1].type = VIR_IP_ADDR_TYPE_IPV6;
    iface->addrs[1].addr = dup_or_die("2001:db8::1");
    iface->addrs[1].prefix = 64;
    virDomainInterfaceFree(iface);
    printf("virDomainInterfaceFree(full) done\n");
    show_error();
    virDomainInterfaceFree(zalloc(sizeof(*iface)));
    printf("virDomainInterfaceFree(empty) done\n");
    show_error();

    lease = zalloc(sizeof(*lease));
    lease->iface = dup_or_die("virbr0");
    lease->expirytime = 1700000000;
    lease->type = VIR_IP_ADDR_TYPE_IPV4;
    lease->mac = dup_or_die("52:54:00:00:00:01");
    lease->iaid = dup_or_die("1");
    lease->ipaddr = dup_or_die("192.0.2.10");
    lease->prefix = 24;
    lease->hostname = dup_or_die("guest");
    lease->clientid = dup_or_die("01:52:54:00:00:00:01");
    virNetworkDHCPLeaseFree(lease);
    printf("virNetworkDHCPLeaseFree(full) done\n");
    show_error();
    virNetworkDHCPLeaseFree(zalloc(sizeof(*lease)));
    printf("virNetworkDHCPLeaseFree(empty) done\n");
    show_error();

    /* An empty list: just the terminating NULL. */
    virDomainStatsRecordListFree(zalloc(sizeof(*stats)));
    printf("virDomainStatsRecordListFree(empty list) done\n");
    show_error();

    /* Two records holding references on the test domain, with parameters. */
    stats = zalloc(3 * sizeof(*stats));
    stats[0] = zalloc(sizeof(**stats));
    stats[0]->dom = virDomainLookupByName(conn, "test");
    n = max = 0;
    virTypedParamsAddString(&stats[0]->params, &n, &max, "state.reason", "booted");
    virTypedParamsAddULLong(&stats[0]->params, &n, &max, "balloon.current", 1 << 20);
    stats[0]->nparams = n;
    stats[1] = zalloc(sizeof(**stats));
    stats[1]->dom = virDomainLookupByName(conn, "test");
    plant_error();
    virDomainStatsRecordListFree(stats);
    printf("virDomainStatsRecordListFree(two records) done\n");
    show_error();

    /* A record without a domain: virDomainFree(NULL) reports an error. */
    stats = zalloc(2 * sizeof(*stats));
    stats[0] = zalloc(sizeof(**stats));
    n = max = 0;
    virTypedParamsAddInt(&stats[0]->params, &n, &max, "x", 1);
    stats[0]->nparams = n;
    virDomainStatsRecordListFree(stats);
    printf("virDomainStatsRecordListFree(record without domain) done\n");
    show_error();
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");

    growth();
    typed_adds();
    from_string();
    string_lists();
    getters();
    structures(conn);
    virConnectClose(conn);
    return 0;
}
