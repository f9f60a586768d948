/*
 * events.c: the public event loop functions, before and after virEventRegisterDefaultImpl():
 * return values, ids, errors (and errors left alone), which callbacks run in which
 * iteration with which events, and when free callbacks run. Every iteration of the loop
 * here has something ready, so that neither library waits.
 *
 * Not compared: virEventRegisterImpl() after a registration (both libraries warn on
 * stderr, libvirt with a time stamp) and domain event delivery (libvirt's test driver has
 * no backup jobs).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <time.h>

#include "oracle.h"

/* What the callbacks saw since the last report. */
static char seen[4096];
static int freed;
/* A watch or timer that the next callback removes (0: none), and what that returned. */
static int remove_watch, remove_timer;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
    size_t len = strlen(seen);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(seen + len, sizeof(seen) - len, fmt, ap);
    va_end(ap);
}

static void report(const char *what)
{
    printf("%s: callbacks [%s] freed=%d\n", what, seen, freed);
    seen[0] = '\0';
}

static void on_handle(int watch, int fd, int events, void *opaque)
{
    char c;
    note(" %s:watch=%d,events=%d", (const char *)opaque, watch, events);
    if (events & VIR_EVENT_HANDLE_READABLE)
        (void)!read(fd, &c, 1);
    if (remove_watch) {
        int w = remove_watch;
        remove_watch = 0;
        note(" remove(%d)=%d", w, virEventRemoveHandle(w));
    }
}

static void on_timer(int timer, void *opaque)
{
    (void)opaque;
    note(" timer=%d", timer);
    if (remove_timer) {
        int t = remove_timer;
        remove_timer = 0;
        note(" remove_timeout(%d)=%d", t, virEventRemoveTimeout(t));
    }
}

static void on_free(void *opaque)
{
    (void)opaque;
    freed++;
}

static void on_job(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams, void *opaque)
{
    (void)conn;
    (void)dom;
    (void)params;
    (void)nparams;
    (void)opaque;
}

/* Makes the thread's last error a known one. */
static void set_error(void)
{
    virConnectDomainEventDeregisterAny(NULL, 0);
}

static void run(const char *what)
{
    int r = virEventRunDefaultImpl();
    printf("virEventRunDefaultImpl() = %d (%s)\n", r, what);
    show_error();
    report("  after");
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void without_loop(virConnectPtr conn, virDomainPtr dom, int fd)
{
    printf("== no event loop registered\n");
    set_error();
    INT(virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE, on_handle, "a", on_free));
    virEventUpdateHandle(1, VIR_EVENT_HANDLE_WRITABLE);
    printf("virEventUpdateHandle(1, WRITABLE) done\n");
    show_error();
    INT(virEventRemoveHandle(1));
    INT(virEventRemoveHandle(-1));
    INT(virEventAddTimeout(0, on_timer, NULL, on_free));
    virEventUpdateTimeout(1, 0);
    printf("virEventUpdateTimeout(1, 0) done\n");
    show_error();
    INT(virEventRemoveTimeout(1));
    report("no loop");
    INT(virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_job), NULL, NULL));
    /* The argument checks come first. */
    INT(virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, NULL, NULL, NULL));
}

static void watches(void)
{
    int p[2], q[2], w1, w2, w3, w4, w5;

    printf("== watches\n");
    if (pipe(p) < 0 || pipe(q) < 0)
        abort();
    set_error();
    w1 = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, "p0", on_free);
    printf("add p0 readable = %d\n", w1);
    show_error();
    w2 = virEventAddHandle(p[1], VIR_EVENT_HANDLE_WRITABLE, on_handle, "p1", on_free);
    printf("add p1 writable = %d\n", w2);
    show_error();
    set_error();
    run("p1 is writable");

    virEventUpdateHandle(w2, 0);
    virEventUpdateHandle(w1, VIR_EVENT_HANDLE_READABLE);
    if (write(p[1], "x", 1) != 1)
        abort();
    run("p1 paused, p0 readable");
    if (write(p[1], "y", 1) != 1)
        abort();
    virEventUpdateHandle(w1, VIR_EVENT_HANDLE_READABLE | VIR_EVENT_HANDLE_WRITABLE);
    run("p0 asks for both");

    virEventUpdateHandle(w1, 0);
    virEventUpdateHandle(w2, VIR_EVENT_HANDLE_WRITABLE);
    remove_watch = w2;
    run("p1 removes itself");
    set_error();
    INT(virEventRemoveHandle(w2));
    virEventUpdateHandle(w2, VIR_EVENT_HANDLE_WRITABLE);
    run("the next iteration runs the free callback");

    /* Removed outside a callback: freed at the next iteration. */
    INT(virEventRemoveHandle(w1));
    report("  right after");
    run("free");

    /* A hang-up is reported although only READABLE was asked for; the callback removes the
     * watch and adds another one. */
    w3 = virEventAddHandle(q[0], VIR_EVENT_HANDLE_READABLE, on_handle, "q0", on_free);
    printf("add q0 readable = %d\n", w3);
    close(q[1]);
    remove_watch = w3;
    run("q0 hangs up");
    run("free");
    close(q[0]);

    /* Events 0 at first; a watch on a closed descriptor never calls back. */
    if (pipe(q) < 0)
        abort();
    w4 = virEventAddHandle(q[1], 0, on_handle, "q1", NULL);
    printf("add q1 with no events = %d\n", w4);
    virEventUpdateHandle(w4, VIR_EVENT_HANDLE_WRITABLE | VIR_EVENT_HANDLE_READABLE);
    run("q1 enabled");
    INT(virEventRemoveHandle(w4));
    close(q[0]);
    close(q[1]);
    w5 = virEventAddHandle(p[1], VIR_EVENT_HANDLE_WRITABLE, on_handle, "p1 again", on_free);
    printf("add p1 writable = %d\n", w5);
    remove_watch = w5;
    run("p1 removes itself");
    run("free");
    INT(virEventRemoveHandle(12345));
    close(p[0]);
    close(p[1]);
}

static void timers(void)
{
    int t1, t2, t3;

    printf("== timers\n");
    set_error();
    t1 = virEventAddTimeout(0, on_timer, NULL, on_free);
    printf("add timeout 0 = %d\n", t1);
    show_error();
    t2 = virEventAddTimeout(-1, on_timer, NULL, on_free);
    printf("add timeout -1 = %d\n", t2);
    run("timer 0 fires");
    run("and again");
    virEventUpdateTimeout(t1, -1);
    virEventUpdateTimeout(t2, 30);
    run("t1 disabled, t2 after 30 ms");
    virEventUpdateTimeout(t2, 0);
    remove_timer = t2;
    run("t2 removes itself");
    INT(virEventRemoveTimeout(t2));
    virEventUpdateTimeout(t2, 0);
    run("nothing else ready: t2 freed");
    INT(virEventRemoveTimeout(t1));
    report("  right after");
    run("t1 freed");
    t3 = virEventAddTimeout(20, on_timer, NULL, NULL);
    printf("add timeout 20 = %d\n", t3);
    sleep_ms(30);
    run("t3 was due");
    INT(virEventRemoveTimeout(t3));
    INT(virEventRemoveTimeout(t3));
    INT(virEventRemoveTimeout(0));
}

static void domain_events(virConnectPtr conn, virDomainPtr dom)
{
    int id, id2, t;

    printf("== domain event callbacks take a timer id per driver\n");
    id = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                          VIR_DOMAIN_EVENT_CALLBACK(on_job), NULL, NULL);
    printf("register = %d\n", id);
    show_error();
    id2 = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_job), NULL, on_free);
    printf("register = %d\n", id2);
    t = virEventAddTimeout(-1, on_timer, NULL, NULL);
    printf("add timeout = %d\n", t);
    virEventRemoveTimeout(t);
    INT(virConnectDomainEventDeregisterAny(conn, id));
    INT(virConnectDomainEventDeregisterAny(conn, id2));
    printf("freed=%d\n", freed);
    INT(virConnectDomainEventDeregisterAny(conn, id2));
    id = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                          VIR_DOMAIN_EVENT_CALLBACK(on_job), NULL, NULL);
    printf("register again = %d\n", id);
    t = virEventAddTimeout(-1, on_timer, NULL, NULL);
    printf("add timeout = %d\n", t);
    virEventRemoveTimeout(t);
    INT(virConnectDomainEventDeregisterAny(conn, id));
}

int main(void)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    virDomainPtr dom = virDomainLookupByName(conn, "test");
    int p[2];

    virSetErrorFunc(NULL, quiet_handler);
    if (pipe(p) < 0)
        abort();
    without_loop(conn, dom, p[0]);
    close(p[0]);
    close(p[1]);

    printf("== register the default loop\n");
    set_error();
    INT(virEventRegisterDefaultImpl());
    INT(virEventRegisterDefaultImpl());
    watches();
    timers();
    domain_events(conn, dom);

    virDomainFree(dom);
    virConnectClose(conn);
    return 0;
}
