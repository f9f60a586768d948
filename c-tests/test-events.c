/*
 * test-events.c: descriptor watches, timers and domain events, on the default event loop
 * and on an application's loop.
 *
 * A process registers one event loop implementation for good, so the program runs in one
 * of two modes:
 *   test-events default   virEventRegisterDefaultImpl() and virEventRunDefaultImpl()
 *   test-events custom    a small poll() loop of its own, given to virEventRegisterImpl()
 *   test-events custom-timers   the same loop without its descriptor functions
 * Both start with the calls made before any registration. Domain events come from the
 * test driver: a pull backup of domain "test" ended by virDomainAbortJob() raises
 * JOB_COMPLETED (and BLOCK_JOB_2), on the calling thread or on another one.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "tap.h"

#define PULL_XML "<domainbackup mode='pull'><server transport='unix' socket='/tmp/vb-test-events.sock'/></domainbackup>"

static void quiet(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- what callbacks saw ------------------------------------------------------------ */

struct watch_data {
    const char *name;
    int calls;
    int last_watch;
    int last_events;
    int freed;
    /* Actions the next call takes. */
    int remove_watch;      /* removes this watch (0: none) */
    int remove_result;
    int add_fd;            /* adds a watch on this descriptor (-1: none) */
    int added_watch;
    int drain;             /* reads what is readable */
};

static void watch_data_init(struct watch_data *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    d->add_fd = -1;
}

static void on_handle(int watch, int fd, int events, void *opaque)
{
    struct watch_data *d = opaque;
    char buf[64];
    d->calls++;
    d->last_watch = watch;
    d->last_events = events;
    if (d->drain && (events & VIR_EVENT_HANDLE_READABLE))
        (void)!read(fd, buf, sizeof(buf));
    if (d->remove_watch) {
        d->remove_result = virEventRemoveHandle(d->remove_watch);
        d->remove_watch = 0;
    }
    if (d->add_fd >= 0) {
        d->added_watch = virEventAddHandle(d->add_fd, VIR_EVENT_HANDLE_WRITABLE, on_handle, d, NULL);
        d->add_fd = -1;
    }
}

static void on_free(void *opaque)
{
    struct watch_data *d = opaque;
    d->freed++;
}

static void on_timer(int timer, void *opaque)
{
    struct watch_data *d = opaque;
    d->calls++;
    d->last_watch = timer;
    if (d->remove_watch) {
        d->remove_result = virEventRemoveTimeout(d->remove_watch);
        d->remove_watch = 0;
    }
}

/* Domain events. */
static int completed_calls, completed_operation, completed_success = -1, block_calls, block_status = -1;
static int self_id = -1, deregister_self_result = 1, event_freed;

/* With opaque data (pointing to its own id), the callback deregisters itself. */
static void on_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams, void *opaque)
{
    completed_calls++;
    if (virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &completed_operation) != 1)
        completed_operation = -1;
    if (virTypedParamsGetBoolean(params, nparams, VIR_DOMAIN_JOB_SUCCESS, &completed_success) != 1)
        completed_success = -1;
    (void)dom;
    if (opaque)
        deregister_self_result = virConnectDomainEventDeregisterAny(conn, *(int *)opaque);
}

static void on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type, int status, void *opaque)
{
    (void)conn;
    (void)dom;
    (void)disk;
    (void)type;
    (void)opaque;
    block_calls++;
    block_status = status;
}

static void on_event_free(void *opaque)
{
    (void)opaque;
    event_freed++;
}

/* A pull backup of "test" ended by an abort, after delay_ms (on another thread). */
static void *backup_and_abort(void *arg)
{
    virDomainPtr dom = arg;
    int *ok = malloc(sizeof(*ok));
    sleep_ms(100);
    *ok = virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0 && virDomainAbortJob(dom) == 0;
    return ok;
}

/* ---- before any registration --------------------------------------------------------- */

static void test_without_loop(virConnectPtr conn, virDomainPtr dom)
{
    struct watch_data d;
    int p[2];
    watch_data_init(&d, "none");
    if (pipe(p) < 0)
        abort();
    CHECK(virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, &d, on_free) == -1,
          "no loop: virEventAddHandle fails");
    virEventUpdateHandle(1, VIR_EVENT_HANDLE_WRITABLE);
    CHECK(virEventRemoveHandle(1) == -1, "no loop: virEventRemoveHandle fails");
    CHECK(virEventAddTimeout(0, on_timer, &d, on_free) == -1, "no loop: virEventAddTimeout fails");
    virEventUpdateTimeout(1, 0);
    CHECK(virEventRemoveTimeout(1) == -1, "no loop: virEventRemoveTimeout fails");
    CHECK(d.freed == 0 && virGetLastError() == NULL, "nothing freed, no error recorded");
    CHECK(virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_completed), NULL, NULL) == -1,
          "no loop: a domain event callback cannot be registered");
    CHECK_ERROR(VIR_ERR_INTERNAL_ERROR, VIR_FROM_NONE, "internal error: could not initialize domain event timer",
                "no loop");
    close(p[0]);
    close(p[1]);
}

/* ---- the default loop ---------------------------------------------------------------- */

static int run_until(int *counter, int target, int max_iterations)
{
    int i;
    for (i = 0; i < max_iterations && *counter < target; i++)
        if (virEventRunDefaultImpl() != 0)
            return 0;
    return *counter >= target;
}

static void test_default_watches(void)
{
    struct watch_data r, w, x;
    int p[2], q[2], wr, ww, wx, n, rc;

    watch_data_init(&r, "read end");
    watch_data_init(&w, "write end");
    watch_data_init(&x, "extra");
    r.drain = 1;
    if (pipe(p) < 0 || pipe(q) < 0)
        abort();

    wr = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, &r, on_free);
    ww = virEventAddHandle(p[1], VIR_EVENT_HANDLE_WRITABLE, on_handle, &w, on_free);
    CHECK(wr == 1 && ww == 2, "watch ids count from 1: %d %d", wr, ww);
    CHECK(virEventRunDefaultImpl() == 0 && w.calls == 1 && w.last_watch == ww &&
              w.last_events == VIR_EVENT_HANDLE_WRITABLE && r.calls == 0,
          "the write end is writable, the read end has nothing");

    virEventUpdateHandle(ww, 0);
    CHECK(write(p[1], "hello", 5) == 5, "write into the pipe");
    CHECK(virEventRunDefaultImpl() == 0 && r.calls == 1 && r.last_events == VIR_EVENT_HANDLE_READABLE &&
              w.calls == 1,
          "the read end is readable; the paused write end is quiet");
    virEventUpdateHandle(ww, VIR_EVENT_HANDLE_WRITABLE);
    CHECK(virEventRunDefaultImpl() == 0 && w.calls == 2 && r.calls == 1, "update re-enables the write end");

    /* Removal from inside the callback; the free callback runs at the next iteration. */
    w.remove_watch = ww;
    CHECK(virEventRunDefaultImpl() == 0 && w.calls == 3 && w.remove_result == 0 && w.freed == 0,
          "a callback removes its own watch; not freed yet");
    CHECK(virEventRemoveHandle(ww) == -1, "a removed watch cannot be removed again");
    CHECK(virEventRunDefaultImpl() == 0 && w.freed == 1, "freed at the next iteration");

    /* A callback removes another watch and adds one. */
    wx = virEventAddHandle(q[1], VIR_EVENT_HANDLE_WRITABLE, on_handle, &x, on_free);
    CHECK(write(p[1], "x", 1) == 1, "write again");
    r.remove_watch = wx;
    r.add_fd = q[1];
    n = x.calls;
    rc = virEventRunDefaultImpl();
    CHECK(rc == 0 && r.calls == 2 && r.remove_result == 0 && r.added_watch > wx,
          "a callback removes another watch (%d) and adds one (%d)", wx, r.added_watch);
    CHECK(x.calls == n, "the removed watch is not called in that iteration although ready");
    CHECK(virEventRunDefaultImpl() == 0 && x.freed == 1, "the removed watch is freed");
    CHECK(virEventRunDefaultImpl() == 0 && r.calls == 3 && r.last_watch == r.added_watch &&
              r.last_events == VIR_EVENT_HANDLE_WRITABLE,
          "the added watch reports its events");
    CHECK(virEventRemoveHandle(r.added_watch) == 0, "remove the added watch");
    CHECK(virEventRunDefaultImpl() == 0, "its removal takes an iteration");

    /* Hang-up, reported although only READABLE was asked for. */
    close(p[1]);
    r.remove_watch = wr;
    rc = virEventRunDefaultImpl();
    CHECK(rc == 0 && r.calls == 4 && (r.last_events & VIR_EVENT_HANDLE_HANGUP),
          "the read end hangs up (events %d)", r.last_events);
    CHECK(virEventRunDefaultImpl() == 0 && r.freed == 1, "and is removed and freed");
    CHECK(virEventRemoveHandle(12345) == -1, "unknown watch");
    close(p[0]);
    close(q[0]);
    close(q[1]);
}

static void test_default_timers(void)
{
    struct watch_data t;
    int t1, t2, t3, rc;
    long long start, elapsed;

    watch_data_init(&t, "timer");
    t1 = virEventAddTimeout(0, on_timer, &t, on_free);
    t2 = virEventAddTimeout(-1, on_timer, &t, on_free);
    CHECK(t1 == 1 && t2 == 2, "timer ids count from 1: %d %d", t1, t2);
    CHECK(virEventRunDefaultImpl() == 0 && virEventRunDefaultImpl() == 0 && t.calls == 2 && t.last_watch == t1,
          "a 0 ms timer fires on every iteration, a disabled one never");
    virEventUpdateTimeout(t1, -1);
    virEventUpdateTimeout(t2, 50);
    start = now_ms();
    rc = virEventRunDefaultImpl();
    elapsed = now_ms() - start;
    CHECK(rc == 0 && t.calls == 3 && t.last_watch == t2 && elapsed >= 45, "a 50 ms timer after %lld ms", elapsed);
    t.remove_watch = t2;
    virEventUpdateTimeout(t2, 0);
    CHECK(virEventRunDefaultImpl() == 0 && t.calls == 4 && t.remove_result == 0 && t.freed == 0,
          "a timer callback removes its timer; not freed yet");
    CHECK(virEventRemoveTimeout(t2) == -1, "removed once");
    CHECK(virEventRunDefaultImpl() == 0 && t.freed == 1, "freed in the next idle iteration");
    CHECK(virEventRemoveTimeout(t1) == 0, "remove the other timer");
    CHECK(virEventRunDefaultImpl() == 0 && t.freed == 2, "freed too");
    t3 = virEventAddTimeout(-1, on_timer, &t, NULL);
    CHECK(t3 == 3 && virEventRemoveTimeout(t3) == 0, "a timer without free callback");
    CHECK(virEventRunDefaultImpl() == 0, "its removal takes an idle iteration");
}

static void *add_timer_later(void *arg)
{
    int *id = malloc(sizeof(*id));
    sleep_ms(100);
    *id = virEventAddTimeout(0, on_timer, arg, NULL);
    return id;
}

static void *write_later(void *arg)
{
    int fd = *(int *)arg;
    sleep_ms(100);
    (void)!write(fd, "!", 1);
    return NULL;
}

static void test_default_threads(void)
{
    struct watch_data t, r;
    pthread_t th;
    void *ret;
    int p[2], w, id;

    /* The loop waits with nothing to wait for until another thread adds a timer. */
    watch_data_init(&t, "late timer");
    pthread_create(&th, NULL, add_timer_later, &t);
    CHECK(virEventRunDefaultImpl() == 0, "an iteration that had nothing to wait for returns");
    pthread_join(th, &ret);
    id = *(int *)ret;
    free(ret);
    if (t.calls == 0)
        virEventRunDefaultImpl();
    CHECK(t.calls >= 1 && t.last_watch == id, "the timer another thread added fired");
    virEventRemoveTimeout(id);
    virEventRunDefaultImpl();

    /* A watch wakes the loop when another thread writes. */
    watch_data_init(&r, "late write");
    r.drain = 1;
    if (pipe(p) < 0)
        abort();
    w = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, &r, NULL);
    pthread_create(&th, NULL, write_later, &p[1]);
    CHECK(virEventRunDefaultImpl() == 0 && r.calls == 1, "the loop wakes when another thread writes");
    pthread_join(th, NULL);
    virEventRemoveHandle(w);
    virEventRunDefaultImpl();
    close(p[0]);
    close(p[1]);
}

static void test_default_domain_events(virConnectPtr conn, virDomainPtr dom)
{
    struct watch_data guard;
    pthread_t th;
    void *ret;
    int id1, id2, id3, timer;

    watch_data_init(&guard, "guard");
    /* Bounds every wait below. */
    timer = virEventAddTimeout(30000, on_timer, &guard, NULL);

    id1 = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_completed), NULL, NULL);
    id2 = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_block_job), NULL, on_event_free);
    CHECK(id1 == 0 && id2 == 1, "callback ids count from 0: %d %d", id1, id2);

    CHECK(virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0, "pull backup begins: %s", virGetLastErrorMessage());
    CHECK(completed_calls == 0, "no callback runs outside the loop");
    CHECK(virDomainAbortJob(dom) == 0, "abort ends it");
    CHECK(run_until(&completed_calls, 1, 10) && guard.calls == 0, "JOB_COMPLETED through virEventRunDefaultImpl");
    CHECK(completed_operation == VIR_DOMAIN_JOB_OPERATION_BACKUP && completed_success == 1,
          "its parameters: operation %d, success %d", completed_operation, completed_success);
    CHECK(run_until(&block_calls, 1, 10) && block_status == VIR_DOMAIN_BLOCK_JOB_COMPLETED,
          "BLOCK_JOB_2 too (status %d)", block_status);

    /* Emitted on another thread while the loop waits. */
    pthread_create(&th, NULL, backup_and_abort, dom);
    CHECK(run_until(&completed_calls, 2, 10) && guard.calls == 0, "an event from another thread wakes the loop");
    pthread_join(th, &ret);
    CHECK(*(int *)ret, "the other thread's backup and abort succeeded");
    free(ret);

    /* A callback deregisters itself while it runs. */
    id3 = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_completed), &self_id, on_event_free);
    self_id = id3;
    CHECK(virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0 && virDomainAbortJob(dom) == 0, "third backup");
    CHECK(run_until(&completed_calls, 4, 10), "both JOB_COMPLETED callbacks run");
    CHECK(deregister_self_result == 0 && event_freed == 1, "one deregistered itself and was freed");
    CHECK(virConnectDomainEventDeregisterAny(conn, id3) == -1, "it is gone");

    CHECK(virConnectDomainEventDeregisterAny(conn, id1) == 0 && virConnectDomainEventDeregisterAny(conn, id2) == 0 &&
              event_freed == 2,
          "deregister the others");
    virEventRemoveTimeout(timer);
    virEventRunDefaultImpl();
}

/* ---- an application's loop ------------------------------------------------------------ */

#define MAX_ITEMS 64

struct app_watch {
    int id, fd, events, live;
    virEventHandleCallback cb;
    void *opaque;
    virFreeCallback ff;
};

struct app_timer {
    int id, interval, live;
    long long due;
    virEventTimeoutCallback cb;
    void *opaque;
    virFreeCallback ff;
};

static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;
static struct app_watch app_watches[MAX_ITEMS];
static struct app_timer app_timers[MAX_ITEMS];
static int app_nwatches, app_ntimers;
static int app_add_handles, app_update_handles, app_remove_handles, app_add_timeouts, app_update_timeouts,
    app_remove_timeouts;
static int app_last_fd = -1, app_last_events = -1;

static int app_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff)
{
    int id;
    pthread_mutex_lock(&app_lock);
    app_add_handles++;
    app_last_fd = fd;
    app_last_events = events;
    if (app_nwatches == MAX_ITEMS) {
        pthread_mutex_unlock(&app_lock);
        return -1;
    }
    id = 100 + app_nwatches;
    app_watches[app_nwatches++] = (struct app_watch){ id, fd, events, 1, cb, opaque, ff };
    pthread_mutex_unlock(&app_lock);
    return id;
}

static struct app_watch *app_find_watch(int id)
{
    int i;
    for (i = 0; i < app_nwatches; i++)
        if (app_watches[i].id == id && app_watches[i].live)
            return &app_watches[i];
    return NULL;
}

static void app_update_handle(int id, int events)
{
    struct app_watch *w;
    pthread_mutex_lock(&app_lock);
    app_update_handles++;
    if ((w = app_find_watch(id)))
        w->events = events;
    pthread_mutex_unlock(&app_lock);
}

static int app_remove_handle(int id)
{
    struct app_watch *w;
    virFreeCallback ff = NULL;
    void *opaque = NULL;
    pthread_mutex_lock(&app_lock);
    app_remove_handles++;
    if ((w = app_find_watch(id))) {
        w->live = 0;
        ff = w->ff;
        opaque = w->opaque;
    }
    pthread_mutex_unlock(&app_lock);
    if (!w)
        return -1;
    if (ff)
        ff(opaque);
    return 0;
}

static int app_add_timeout(int interval, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
    int id;
    pthread_mutex_lock(&app_lock);
    app_add_timeouts++;
    if (app_ntimers == MAX_ITEMS) {
        pthread_mutex_unlock(&app_lock);
        return -1;
    }
    id = 500 + app_ntimers;
    app_timers[app_ntimers++] = (struct app_timer){ id, interval, 1, now_ms() + (interval > 0 ? interval : 0), cb,
                                                    opaque, ff };
    pthread_mutex_unlock(&app_lock);
    return id;
}

static struct app_timer *app_find_timer(int id)
{
    int i;
    for (i = 0; i < app_ntimers; i++)
        if (app_timers[i].id == id && app_timers[i].live)
            return &app_timers[i];
    return NULL;
}

static void app_update_timeout(int id, int interval)
{
    struct app_timer *t;
    pthread_mutex_lock(&app_lock);
    app_update_timeouts++;
    if ((t = app_find_timer(id))) {
        t->interval = interval;
        t->due = now_ms() + (interval > 0 ? interval : 0);
    }
    pthread_mutex_unlock(&app_lock);
}

static int app_remove_timeout(int id)
{
    struct app_timer *t;
    virFreeCallback ff = NULL;
    void *opaque = NULL;
    pthread_mutex_lock(&app_lock);
    app_remove_timeouts++;
    if ((t = app_find_timer(id))) {
        t->live = 0;
        ff = t->ff;
        opaque = t->opaque;
    }
    pthread_mutex_unlock(&app_lock);
    if (!t)
        return -1;
    if (ff)
        ff(opaque);
    return 0;
}

static int app_events(short revents)
{
    int events = 0;
    if (revents & POLLIN)
        events |= VIR_EVENT_HANDLE_READABLE;
    if (revents & POLLOUT)
        events |= VIR_EVENT_HANDLE_WRITABLE;
    if (revents & POLLERR)
        events |= VIR_EVENT_HANDLE_ERROR;
    if (revents & POLLHUP)
        events |= VIR_EVENT_HANDLE_HANGUP;
    return events;
}

/* One iteration of the application's loop, waiting at most max_ms. */
static void app_run_once(int max_ms)
{
    struct pollfd fds[MAX_ITEMS];
    int ids[MAX_ITEMS];
    int n = 0, i, timeout = max_ms;
    long long now;

    pthread_mutex_lock(&app_lock);
    for (i = 0; i < app_nwatches; i++) {
        struct app_watch *w = &app_watches[i];
        if (!w->live || !w->events)
            continue;
        fds[n].fd = w->fd;
        fds[n].events = (short)(((w->events & VIR_EVENT_HANDLE_READABLE) ? POLLIN : 0) |
                                ((w->events & VIR_EVENT_HANDLE_WRITABLE) ? POLLOUT : 0));
        fds[n].revents = 0;
        ids[n++] = w->id;
    }
    now = now_ms();
    for (i = 0; i < app_ntimers; i++) {
        struct app_timer *t = &app_timers[i];
        if (t->live && t->interval >= 0) {
            long long wait = t->due - now;
            if (wait < 0)
                wait = 0;
            if (wait < timeout)
                timeout = (int)wait;
        }
    }
    pthread_mutex_unlock(&app_lock);

    if (poll(fds, (nfds_t)n, timeout) > 0) {
        for (i = 0; i < n; i++) {
            struct app_watch *w;
            virEventHandleCallback cb = NULL;
            void *opaque = NULL;
            int fd = -1;
            if (!fds[i].revents)
                continue;
            pthread_mutex_lock(&app_lock);
            if ((w = app_find_watch(ids[i])) && w->events) {
                cb = w->cb;
                opaque = w->opaque;
                fd = w->fd;
            }
            pthread_mutex_unlock(&app_lock);
            if (cb)
                cb(ids[i], fd, app_events(fds[i].revents), opaque);
        }
    }
    now = now_ms();
    for (i = 0; i < app_ntimers; i++) {
        struct app_timer *t;
        virEventTimeoutCallback cb = NULL;
        void *opaque = NULL;
        int id;
        pthread_mutex_lock(&app_lock);
        t = &app_timers[i];
        id = t->id;
        if (t->live && t->interval >= 0 && t->due <= now) {
            t->due = now + t->interval;
            cb = t->cb;
            opaque = t->opaque;
        }
        pthread_mutex_unlock(&app_lock);
        if (cb)
            cb(id, opaque);
    }
}

static int app_run_until(int *counter, int target, int max_iterations)
{
    int i;
    for (i = 0; i < max_iterations && *counter < target; i++)
        app_run_once(2000);
    return *counter >= target;
}

static void test_custom(virConnectPtr conn, virDomainPtr dom)
{
    struct watch_data r, t;
    pthread_t th;
    void *ret;
    int p[2], w, timer, id1, id2, adds, removes, wake_watch;

    virEventRegisterImpl(app_add_handle, app_update_handle, app_remove_handle, app_add_timeout, app_update_timeout,
                         app_remove_timeout);
    CHECK(virEventRegisterDefaultImpl() == 0, "virEventRegisterDefaultImpl afterwards returns 0 (and is ignored)");

    /* The handle and timer functions forward to the application's. */
    watch_data_init(&r, "app read end");
    r.drain = 1;
    if (pipe(p) < 0)
        abort();
    w = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, &r, on_free);
    CHECK(w == 100 && app_add_handles == 1 && app_last_fd == p[0] && app_last_events == VIR_EVENT_HANDLE_READABLE,
          "virEventAddHandle calls the application's function (id %d)", w);
    CHECK(write(p[1], "z", 1) == 1, "write into the pipe");
    app_run_once(1000);
    CHECK(r.calls == 1 && r.last_watch == w && r.last_events == VIR_EVENT_HANDLE_READABLE,
          "the application's loop calls the callback");
    virEventUpdateHandle(w, VIR_EVENT_HANDLE_WRITABLE);
    CHECK(app_update_handles == 1 && app_find_watch(w)->events == VIR_EVENT_HANDLE_WRITABLE,
          "virEventUpdateHandle forwards");
    CHECK(virEventRemoveHandle(w) == 0 && app_remove_handles == 1 && r.freed == 1, "virEventRemoveHandle forwards");
    CHECK(virEventRemoveHandle(w) == -1, "and returns the application's result");
    close(p[0]);
    close(p[1]);

    watch_data_init(&t, "app timer");
    timer = virEventAddTimeout(0, on_timer, &t, on_free);
    CHECK(timer == 500 && app_add_timeouts == 1, "virEventAddTimeout forwards (id %d)", timer);
    app_run_once(1000);
    CHECK(t.calls == 1 && t.last_watch == timer, "the application's loop fires the timer");
    virEventUpdateTimeout(timer, -1);
    CHECK(app_update_timeouts == 1 && app_find_timer(timer)->interval == -1, "virEventUpdateTimeout forwards");
    CHECK(virEventRemoveTimeout(timer) == 0 && app_remove_timeouts == 1 && t.freed == 1,
          "virEventRemoveTimeout forwards");
    CHECK(virEventRemoveTimeout(timer) == -1, "and returns the application's result");

    /* Domain events through the application's loop. */
    adds = app_add_handles;
    id1 = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_completed), NULL, NULL);
    CHECK(id1 == 0, "register JOB_COMPLETED: %d", id1);
    CHECK(app_add_handles == adds + 1 && app_last_fd >= 0 && app_last_events == VIR_EVENT_HANDLE_READABLE,
          "the first callback adds a watch to the application's loop");
    wake_watch = 100 + app_nwatches - 1;
    id2 = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_block_job), NULL, on_event_free);
    CHECK(id2 == 1 && app_add_handles == adds + 1, "the second one adds nothing");

    CHECK(virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0 && virDomainAbortJob(dom) == 0,
          "pull backup, aborted: %s", virGetLastErrorMessage());
    CHECK(completed_calls == 0, "no callback runs outside the loop");
    CHECK(app_run_until(&completed_calls, 1, 5), "JOB_COMPLETED through the application's loop");
    CHECK(completed_operation == VIR_DOMAIN_JOB_OPERATION_BACKUP && completed_success == 1,
          "its parameters: operation %d, success %d", completed_operation, completed_success);
    CHECK(app_run_until(&block_calls, 1, 5) && block_status == VIR_DOMAIN_BLOCK_JOB_COMPLETED,
          "BLOCK_JOB_2 too (status %d)", block_status);

    pthread_create(&th, NULL, backup_and_abort, dom);
    CHECK(app_run_until(&completed_calls, 2, 5), "an event from another thread wakes the application's poll()");
    pthread_join(th, &ret);
    CHECK(*(int *)ret, "the other thread's backup and abort succeeded");
    free(ret);

    removes = app_remove_handles;
    CHECK(virConnectDomainEventDeregisterAny(conn, id1) == 0 && app_remove_handles == removes,
          "deregistering one callback keeps the watch");
    CHECK(virConnectDomainEventDeregisterAny(conn, id2) == 0 && app_remove_handles == removes + 1 &&
              app_find_watch(wake_watch) == NULL && event_freed == 1,
          "the last one removes it");
    CHECK(virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0 && virDomainAbortJob(dom) == 0, "another backup");
    app_run_once(100);
    CHECK(completed_calls == 2, "no callback any more");

    /* Registering again adds a new watch. */
    id1 = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                           VIR_DOMAIN_EVENT_CALLBACK(on_completed), NULL, NULL);
    CHECK(id1 == 2 && app_add_handles == adds + 2, "a new registration adds a new watch");
    CHECK(virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0 && virDomainAbortJob(dom) == 0, "a last backup");
    CHECK(app_run_until(&completed_calls, 3, 5), "delivered");
    CHECK(virConnectDomainEventDeregisterAny(conn, id1) == 0, "deregister");
}

/* An application's loop without descriptor functions: events arrive through a timer. */
static void test_custom_timers(virConnectPtr conn, virDomainPtr dom)
{
    struct watch_data r;
    struct app_timer *t;
    pthread_t th;
    void *ret;
    int p[2], id, timer, adds, updates;

    virEventRegisterImpl(NULL, NULL, NULL, app_add_timeout, app_update_timeout, app_remove_timeout);
    watch_data_init(&r, "no handles");
    if (pipe(p) < 0)
        abort();
    CHECK(virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, &r, on_free) == -1 &&
              virEventRemoveHandle(1) == -1 && r.freed == 0,
          "without handle functions, the handle calls fail");
    close(p[0]);
    close(p[1]);

    adds = app_add_timeouts;
    id = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                          VIR_DOMAIN_EVENT_CALLBACK(on_completed), NULL, NULL);
    timer = 500 + app_ntimers - 1;
    t = app_find_timer(timer);
    CHECK(id == 0 && app_add_timeouts == adds + 1 && t && t->interval == -1,
          "the first callback adds a disabled timer to the application's loop");
    updates = app_update_timeouts;
    CHECK(virDomainBackupBegin(dom, PULL_XML, NULL, 0) == 0 && virDomainAbortJob(dom) == 0,
          "pull backup, aborted: %s", virGetLastErrorMessage());
    CHECK(app_update_timeouts == updates + 1 && t->interval == 0, "the event arms the timer");
    CHECK(app_run_until(&completed_calls, 1, 5), "JOB_COMPLETED through the application's timer");
    CHECK(t->interval == -1, "which is disarmed again");

    /* From another thread: this loop only sees the armed timer when its poll() ends. */
    pthread_create(&th, NULL, backup_and_abort, dom);
    pthread_join(th, &ret);
    CHECK(*(int *)ret, "another thread's backup and abort");
    free(ret);
    CHECK(app_run_until(&completed_calls, 2, 5), "delivered");

    CHECK(virConnectDomainEventDeregisterAny(conn, id) == 0 && app_find_timer(timer) == NULL,
          "the last deregistration removes the timer");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "default";
    virConnectPtr conn;
    virDomainPtr dom;

    virSetErrorFunc(NULL, quiet);
    conn = virConnectOpen("test:///default");
    dom = virDomainLookupByName(conn, "test");
    CHECK(conn && dom, "open test:///default and find domain test");
    if (!conn || !dom)
        return tap_done();

    test_without_loop(conn, dom);
    if (strcmp(mode, "custom") == 0) {
        test_custom(conn, dom);
    } else if (strcmp(mode, "custom-timers") == 0) {
        test_custom_timers(conn, dom);
    } else {
        CHECK(virEventRegisterDefaultImpl() == 0, "register the default loop");
        test_default_watches();
        test_default_timers();
        test_default_threads();
        test_default_domain_events(conn, dom);
    }

    virDomainFree(dom);
    virConnectClose(conn);
    return tap_done();
}
