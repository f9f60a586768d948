/*
 * backup.c: the C-API half of the push-backup benchmark (bench/backup.sh drives it).
 *
 * One process opens one connection and runs a list of actions on one domain, in order.
 * The same binary runs against the system libvirt (the embedded QEMU driver, inside the
 * passwd/group wrapper that backup.sh sets up) and against virbackup's libvirt.so.0
 * (LD_LIBRARY_PATH=<repo>/build), so both are timed by exactly the same code.
 *
 *   backup [OPTIONS] URI DOMAIN ACTION [ACTION ...]
 *
 * Actions (each word is one argv element):
 *   define FILE                 virDomainDefineXML with the contents of FILE
 *   start | destroy             virDomainCreate / virDomainDestroy
 *   undefine                    virDomainUndefineFlags(VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
 *   settle                      wait until the driver is ready to run a job on the domain (see
 *                               settle() below); untimed, done before the first backup
 *   full LABEL TARGET CP        push full backup of the disk into TARGET (new qcow2); CP is the
 *                               checkpoint created atomically with it, or "-" for none
 *   inc LABEL FROM TARGET CP    push incremental backup since checkpoint FROM, same otherwise
 *   cpdelete NAME               virDomainCheckpointDelete(flags 0)
 *   hmp FILE                    each non-empty line of FILE as an HMP command through
 *                               virDomainQemuMonitorCommand (libvirt-qemu.so.0, loaded with
 *                               dlopen; real libvirt only).  Used to write into a running
 *                               libvirt guest's disk with "qemu-io -d <QOM path> ...".
 *   sh CMD                      run CMD with /bin/sh (dirtying through NBD or into the image,
 *                               restore checks); its exit status is reported, not fatal
 * After a backup fails, the remaining actions are skipped except cpdelete, destroy and
 * undefine, so a scenario still cleans up after itself.
 *
 * Options:
 *   --poll-us N        interval of the virDomainGetJobInfo poll, microseconds (default 2000).
 *                      0: do not poll while the job runs; wait for the job-completed event,
 *                      then poll every 1 ms until the job is no longer active (falls back to
 *                      2000 when there is no event)
 *   --no-event         do not register for the job-completed event (the default event loop is
 *                      still registered and run when the library has one: libvirt's embedded
 *                      driver needs it)
 *   --event-wait-ms N  after the poll sees the job end, wait up to N ms for the event (3000)
 *   --timeout S        give up on a job after S seconds and abort it (default 1800)
 *   --disk NAME        the disk to back up (default vda)
 *   --drop-caches      before each backup: sync, then echo 3 > /proc/sys/vm/drop_caches
 *                      (default: sync only, the page cache stays warm)
 *
 * What is timed, for every backup (CLOCK_MONOTONIC, milliseconds):
 *   begin_ms   the virDomainBackupBegin call alone
 *   wall_ms    from just before virDomainBackupBegin until virDomainGetJobInfo no longer
 *              reports an active (bounded or unbounded) job
 *   event_ms   from the same start until the VIR_DOMAIN_EVENT_ID_JOB_COMPLETED callback ran
 *              (NA when the library has no event API or no event came)
 *   sync_ms    a sync(2) right after wall_ms, so "wall_ms + sync_ms" is comparable with
 *              "qemu-img convert + sync"
 * plus what the library itself reports in virDomainGetJobStats(VIR_DOMAIN_JOB_STATS_COMPLETED):
 *   elapsed_ms (time_elapsed), processed (disk_processed, bytes), total (disk_total).
 * Before each backup the program runs sync(2) (and drops caches with --drop-caches); neither
 * is timed.
 *
 * Output on stdout, one line per event of interest, key=value separated by spaces:
 *   library=<file that provides the libvirt entry points>
 *   result label=L action=full|inc ok=1|0 begin_ms= wall_ms= polls= poll_end= event_ms=
 *          event_elapsed_ms= event_processed= event_success= stats_type= elapsed_ms= processed=
 *          total= sync_ms= [error="..."]
 *   step action=... ok=1|0 ms=... [rc=...] [error="..."]
 * Exit status: 0 all actions done, 1 an action failed, 2 usage, 3 the library lacks an entry
 * point an action needs (the message then starts with "unavailable:").
 *
 * Every libvirt function is looked up with dlsym at run time instead of being linked directly:
 * a library that lacks some of them (virbackup while its backup support is being written)
 * still loads, and the program can say exactly what is missing.  The binary is still linked
 * with -lvirt (--no-as-needed), so ldd shows which libvirt.so.0 the loader picks.
 */
#define _GNU_SOURCE /* dladdr */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

/* ---- entry points, resolved at run time ------------------------------------------------- */

#define API_LIST(X)                                                                                \
    X(virConnectOpen)                                                                              \
    X(virConnectClose)                                                                             \
    X(virGetLastError)                                                                             \
    X(virSetErrorFunc)                                                                             \
    X(virDomainLookupByName)                                                                       \
    X(virDomainDefineXML)                                                                          \
    X(virDomainUndefineFlags)                                                                      \
    X(virDomainCreate)                                                                             \
    X(virDomainDestroy)                                                                            \
    X(virDomainIsActive)                                                                           \
    X(virDomainFree)                                                                               \
    X(virDomainCheckpointLookupByName)                                                             \
    X(virDomainCheckpointDelete)                                                                   \
    X(virDomainCheckpointFree)                                                                     \
    X(virDomainBackupBegin)                                                                        \
    X(virDomainGetJobInfo)                                                                         \
    X(virDomainGetJobStats)                                                                        \
    X(virDomainAbortJob)                                                                           \
    X(virDomainGetControlInfo)                                                                     \
    X(virDomainGetBlockInfo)                                                                       \
    X(virTypedParamsFree)                                                                          \
    X(virEventRegisterDefaultImpl)                                                                 \
    X(virEventRunDefaultImpl)                                                                      \
    X(virEventAddTimeout)                                                                          \
    X(virConnectDomainEventRegisterAny)                                                            \
    X(virConnectDomainEventDeregisterAny)

/* __typeof__ only reads the prototype from the header; it does not reference the symbol. */
#define DECLARE(name) static __typeof__(&name) p_##name;
API_LIST(DECLARE)
#undef DECLARE

static void resolve_all(void)
{
#define RESOLVE(name) p_##name = (__typeof__(&name))dlsym(RTLD_DEFAULT, #name);
    API_LIST(RESOLVE)
#undef RESOLVE
}

/* An action needs an entry point the loaded library does not export. */
#define NEED(name)                                                                                 \
    do {                                                                                           \
        if (!p_##name) {                                                                           \
            printf("unavailable: the loaded libvirt.so.0 does not export " #name "\n");           \
            fflush(stdout);                                                                        \
            exit(3);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- small helpers ---------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void quiet_error_handler(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

/* libvirt's last error as one line, with double quotes replaced so it fits in error="...". */
static const char *last_error(void)
{
    static char buf[1024];
    virErrorPtr err = p_virGetLastError ? p_virGetLastError() : NULL;
    char *c;

    snprintf(buf, sizeof(buf), "%s", err && err->message ? err->message : "(no libvirt error set)");
    for (c = buf; *c; c++)
        if (*c == '"' || *c == '\n')
            *c = '\'';
    return buf;
}

/* ' error="<last error>"' for a step line */
static const char *err_extra(void)
{
    static char buf[1200];
    snprintf(buf, sizeof(buf), "error=\"%s\"", last_error());
    return buf;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (!f) {
        fprintf(stderr, "backup: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc(n + 1);
    if (!buf || fread(buf, 1, n, f) != (size_t)n) {
        fprintf(stderr, "backup: cannot read %s\n", path);
        exit(1);
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void fmt_ms(char *buf, size_t len, double v)
{
    if (v < 0)
        snprintf(buf, len, "NA");
    else
        snprintf(buf, len, "%.1f", v);
}

static void fmt_u64(char *buf, size_t len, int have, unsigned long long v)
{
    if (have)
        snprintf(buf, len, "%llu", v);
    else
        snprintf(buf, len, "NA");
}

/* ---- typed parameters ------------------------------------------------------------------- */

struct job_numbers {
    int have_elapsed, have_processed, have_total, have_success;
    unsigned long long elapsed, processed, total;
    int success;
    char errmsg[512];
};

static int param_ull(virTypedParameterPtr p, unsigned long long *out)
{
    switch (p->type) {
    case VIR_TYPED_PARAM_ULLONG: *out = p->value.ul; return 1;
    case VIR_TYPED_PARAM_LLONG: *out = (unsigned long long)p->value.l; return 1;
    case VIR_TYPED_PARAM_UINT: *out = p->value.ui; return 1;
    case VIR_TYPED_PARAM_INT: *out = (unsigned long long)p->value.i; return 1;
    case VIR_TYPED_PARAM_BOOLEAN: *out = p->value.b; return 1;
    default: return 0;
    }
}

static void parse_params(virTypedParameterPtr params, int n, struct job_numbers *j)
{
    int i;
    unsigned long long v;

    for (i = 0; i < n; i++) {
        virTypedParameterPtr p = &params[i];
        if (!strcmp(p->field, VIR_DOMAIN_JOB_TIME_ELAPSED) && param_ull(p, &v))
            j->have_elapsed = 1, j->elapsed = v;
        else if (!strcmp(p->field, VIR_DOMAIN_JOB_DISK_PROCESSED) && param_ull(p, &v))
            j->have_processed = 1, j->processed = v;
        else if (!strcmp(p->field, VIR_DOMAIN_JOB_DISK_TOTAL) && param_ull(p, &v))
            j->have_total = 1, j->total = v;
        else if (!strcmp(p->field, VIR_DOMAIN_JOB_SUCCESS) && param_ull(p, &v))
            j->have_success = 1, j->success = (int)v;
        else if (!strcmp(p->field, VIR_DOMAIN_JOB_ERRMSG) && p->type == VIR_TYPED_PARAM_STRING &&
                 p->value.s)
            snprintf(j->errmsg, sizeof(j->errmsg), "%s", p->value.s);
    }
}

static void free_params(virTypedParameterPtr params, int n)
{
    int i;

    if (!params)
        return;
    if (p_virTypedParamsFree) {
        p_virTypedParamsFree(params, n);
        return;
    }
    for (i = 0; i < n; i++)
        if (params[i].type == VIR_TYPED_PARAM_STRING)
            free(params[i].value.s);
    free(params);
}

/* ---- job-completed event ---------------------------------------------------------------- */

static int want_event = 1; /* --no-event clears it */
static int loop_ok;        /* default event loop registered and running */
static int events_ok;      /* event loop running and callback registered */
static atomic_int ev_quit;
static pthread_t ev_thread;
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static double ev_time = -1;     /* when the last event arrived */
static struct job_numbers ev_job;

static void ev_tick(int timer, void *opaque)
{
    (void)timer;
    (void)opaque; /* only there so the loop wakes up and sees ev_quit */
}

static void *ev_loop(void *arg)
{
    struct timespec ms1 = {0, 1000000L};
    (void)arg;
    while (!atomic_load(&ev_quit)) {
        double t = now_ms();
        if (p_virEventRunDefaultImpl() < 0)
            break;
        /* A loop iteration should block until something happens (at the latest the 100 ms
         * tick).  An implementation that returns at once would make this thread spin and
         * steal CPU from the backup being measured, so nap after such a return. */
        if (now_ms() - t < 0.5)
            nanosleep(&ms1, NULL);
    }
    return NULL;
}

static void job_completed_cb(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params,
                             int nparams, void *opaque)
{
    double t = now_ms();
    (void)conn;
    (void)dom;
    (void)opaque;
    pthread_mutex_lock(&ev_lock);
    memset(&ev_job, 0, sizeof(ev_job));
    parse_params(params, nparams, &ev_job);
    ev_time = t;
    pthread_cond_broadcast(&ev_cond);
    pthread_mutex_unlock(&ev_lock);
}

/* Must run before virConnectOpen.  libvirt's embedded QEMU driver refuses to open without a
 * registered event loop ("An event loop implementation must be registered"), so the loop is
 * always started when the library has one; --no-event only leaves out the callback. */
static void events_init(void)
{
    if (!p_virEventRegisterDefaultImpl || !p_virEventRunDefaultImpl || !p_virEventAddTimeout)
        return; /* no event API: event_ms=NA */
    if (p_virEventRegisterDefaultImpl() < 0) {
        fprintf(stderr, "backup: virEventRegisterDefaultImpl failed: %s\n", last_error());
        return;
    }
    p_virEventAddTimeout(100, ev_tick, NULL, NULL);
    if (pthread_create(&ev_thread, NULL, ev_loop, NULL) == 0)
        loop_ok = 1;
}

static void events_register(virConnectPtr conn, virDomainPtr dom)
{
    if (!want_event || !loop_ok || events_ok || !p_virConnectDomainEventRegisterAny)
        return;
    if (p_virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                           VIR_DOMAIN_EVENT_CALLBACK(job_completed_cb), NULL,
                                           NULL) < 0)
        fprintf(stderr, "backup: job-completed event not available: %s\n", last_error());
    else
        events_ok = 1;
}

static void events_stop(void)
{
    struct timespec dl;

    if (!loop_ok)
        return;
    atomic_store(&ev_quit, 1);
    /* The loop wakes within 100 ms (ev_tick); do not hang on a library whose loop does not. */
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    pthread_timedjoin_np(ev_thread, NULL, &dl);
}

/* ---- actions ---------------------------------------------------------------------------- */

static int poll_us = 2000;
static int event_wait_ms = 3000;
static int timeout_s = 1800;
static const char *disk = "vda";
static int drop_caches;
static int failures;
static int backup_failed; /* after a failed backup only clean-up actions still run */

static void step_line(const char *action, int ok, double ms, const char *extra)
{
    printf("step action=%s ok=%d ms=%.1f%s%s\n", action, ok, ms, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
    if (!ok)
        failures++;
}

static void before_backup(void)
{
    sync();
    if (drop_caches) {
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
        if (!f || fputs("3\n", f) < 0 || fclose(f) != 0)
            fprintf(stderr, "backup: cannot drop caches: %s\n", strerror(errno));
    }
}

static const char *job_type_name(int t)
{
    switch (t) {
    case VIR_DOMAIN_JOB_NONE: return "none";
    case VIR_DOMAIN_JOB_BOUNDED: return "bounded";
    case VIR_DOMAIN_JOB_UNBOUNDED: return "unbounded";
    case VIR_DOMAIN_JOB_COMPLETED: return "completed";
    case VIR_DOMAIN_JOB_FAILED: return "failed";
    case VIR_DOMAIN_JOB_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

/* One timed push backup.  from == NULL: full.  cp == NULL: no checkpoint. */
static void do_backup(virDomainPtr dom, const char *label, const char *from, const char *target,
                      const char *cp)
{
    char bxml[4096], cxml[1024], err[1200] = "", poll_end[64] = "none";
    char s_begin[32], s_wall[32], s_event[32], s_sync[32], s_el[32], s_pr[32], s_tot[32];
    char s_eel[32], s_epr[32], s_esu[32];
    struct job_numbers st = {0}, ev = {0};
    virTypedParameterPtr params = NULL;
    int nparams = 0, stats_type = -1, polls = 0, ok, have_ev = 0;
    double t0, t1, t2, t_ev = -1, sync_ms;
    struct timespec nap = {poll_us / 1000000, (poll_us % 1000000) * 1000L};

    NEED(virDomainBackupBegin);
    NEED(virDomainGetJobInfo);

    snprintf(bxml, sizeof(bxml),
             "<domainbackup>%s%s%s<disks><disk name='%s' backup='yes' type='file'>"
             "<target file='%s'/><driver type='qcow2'/></disk></disks></domainbackup>",
             from ? "<incremental>" : "", from ? from : "", from ? "</incremental>" : "", disk,
             target);
    if (cp)
        snprintf(cxml, sizeof(cxml),
                 "<domaincheckpoint><name>%s</name><disks><disk name='%s' checkpoint='bitmap'/>"
                 "</disks></domaincheckpoint>",
                 cp, disk);

    before_backup();

    t0 = now_ms();
    if (p_virDomainBackupBegin(dom, bxml, cp ? cxml : NULL, 0) < 0) {
        printf("result label=%s action=%s ok=0 error=\"virDomainBackupBegin: %s\"\n", label,
               from ? "inc" : "full", last_error());
        fflush(stdout);
        failures++;
        backup_failed = 1;
        return;
    }
    t1 = now_ms();
    if (poll_us == 0 && events_ok) {
        /* event mode: nothing touches the domain until the job-completed event */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += timeout_s;
        pthread_mutex_lock(&ev_lock);
        while (ev_time < t0)
            if (pthread_cond_timedwait(&ev_cond, &ev_lock, &dl) != 0)
                break;
        pthread_mutex_unlock(&ev_lock);
        nap.tv_sec = 0;
        nap.tv_nsec = 1000000L;
    } else if (poll_us == 0) {
        nap.tv_sec = 0;
        nap.tv_nsec = 2000000L;
    }
    for (;;) {
        virDomainJobInfo info;
        if (p_virDomainGetJobInfo(dom, &info) < 0) {
            snprintf(poll_end, sizeof(poll_end), "error");
            snprintf(err, sizeof(err), "virDomainGetJobInfo: %s", last_error());
            break;
        }
        polls++;
        if (info.type != VIR_DOMAIN_JOB_UNBOUNDED && info.type != VIR_DOMAIN_JOB_BOUNDED) {
            snprintf(poll_end, sizeof(poll_end), "%s", job_type_name(info.type));
            break;
        }
        if (now_ms() - t0 > timeout_s * 1000.0) {
            snprintf(poll_end, sizeof(poll_end), "timeout");
            snprintf(err, sizeof(err), "job still active after %d s; aborted", timeout_s);
            if (p_virDomainAbortJob)
                p_virDomainAbortJob(dom);
            break;
        }
        nanosleep(&nap, NULL);
    }
    t2 = now_ms();

    /* The event may come a little after the poll saw the end (or before it). */
    if (events_ok) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += event_wait_ms / 1000;
        dl.tv_nsec += (event_wait_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L)
            dl.tv_sec++, dl.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&ev_lock);
        while (ev_time < t0)
            if (pthread_cond_timedwait(&ev_cond, &ev_lock, &dl) != 0)
                break;
        if (ev_time >= t0) {
            have_ev = 1;
            t_ev = ev_time - t0;
            ev = ev_job;
        }
        pthread_mutex_unlock(&ev_lock);
    }

    if (p_virDomainGetJobStats) {
        if (p_virDomainGetJobStats(dom, &stats_type, &params, &nparams,
                                   VIR_DOMAIN_JOB_STATS_COMPLETED) < 0) {
            if (!*err)
                snprintf(err, sizeof(err), "virDomainGetJobStats(COMPLETED): %s", last_error());
            stats_type = -1;
        } else {
            parse_params(params, nparams, &st);
            free_params(params, nparams);
        }
    }

    sync_ms = now_ms();
    sync();
    sync_ms = now_ms() - sync_ms;

    /* Success: the job ended by itself and the library says it completed (or, when the library
     * has no job statistics at all, at least did not say otherwise). */
    ok = strcmp(poll_end, "timeout") && strcmp(poll_end, "error") &&
         (stats_type == VIR_DOMAIN_JOB_COMPLETED || (!p_virDomainGetJobStats && !*err));
    if (stats_type == VIR_DOMAIN_JOB_FAILED || stats_type == VIR_DOMAIN_JOB_CANCELLED) {
        ok = 0;
        snprintf(err, sizeof(err), "job %s: %s", job_type_name(stats_type),
                 st.errmsg[0] ? st.errmsg : "(no errmsg)");
    } else if (have_ev && ev.have_success && !ev.success) {
        ok = 0;
        snprintf(err, sizeof(err), "job-completed event says success=0: %s", ev.errmsg);
    } else if (!ok && !*err) {
        snprintf(err, sizeof(err), "no completed-job statistics (type %s)",
                 job_type_name(stats_type));
    }

    fmt_ms(s_begin, sizeof(s_begin), t1 - t0);
    fmt_ms(s_wall, sizeof(s_wall), t2 - t0);
    fmt_ms(s_event, sizeof(s_event), t_ev);
    fmt_ms(s_sync, sizeof(s_sync), sync_ms);
    fmt_u64(s_el, sizeof(s_el), st.have_elapsed, st.elapsed);
    fmt_u64(s_pr, sizeof(s_pr), st.have_processed, st.processed);
    fmt_u64(s_tot, sizeof(s_tot), st.have_total, st.total);
    fmt_u64(s_eel, sizeof(s_eel), have_ev && ev.have_elapsed, ev.elapsed);
    fmt_u64(s_epr, sizeof(s_epr), have_ev && ev.have_processed, ev.processed);
    fmt_u64(s_esu, sizeof(s_esu), have_ev && ev.have_success, (unsigned long long)ev.success);
    printf("result label=%s action=%s ok=%d begin_ms=%s wall_ms=%s polls=%d poll_end=%s "
           "event_ms=%s event_elapsed_ms=%s event_processed=%s event_success=%s stats_type=%s "
           "elapsed_ms=%s processed=%s total=%s sync_ms=%s target=%s checkpoint=%s%s%s%s\n",
           label, from ? "inc" : "full", ok, s_begin, s_wall, polls, poll_end, s_event, s_eel,
           s_epr, s_esu, stats_type < 0 ? "NA" : job_type_name(stats_type), s_el, s_pr, s_tot,
           s_sync, target, cp ? cp : "-", *err ? " error=\"" : "", err, *err ? "\"" : "");
    fflush(stdout);
    if (!ok)
        failures++, backup_failed = 1;
}

/* Wait until a job can start on the domain.  A freshly opened embedded libvirt reconnects to
 * a running QEMU in a background thread that holds the domain's job for a moment; a backup
 * begun then would wait for it and the wait would count as backup time.  GetBlockInfo takes
 * a query job in libvirt (so it returns only after the reconnect), and GetControlInfo must
 * say the monitor is idle.  Either entry point may be missing (virbackup): then no wait. */
static void settle(virDomainPtr dom)
{
    double t0 = now_ms();
    int i;

    if (p_virDomainIsActive && p_virDomainIsActive(dom) == 1 && p_virDomainGetBlockInfo) {
        virDomainBlockInfo bi;
        if (p_virDomainGetBlockInfo(dom, disk, &bi, 0) < 0)
            fprintf(stderr, "backup: settle: virDomainGetBlockInfo: %s\n", last_error());
    }
    if (p_virDomainGetControlInfo) {
        for (i = 0; i < 5000; i++) {
            virDomainControlInfo ci;
            if (p_virDomainGetControlInfo(dom, &ci, 0) < 0 || ci.state == VIR_DOMAIN_CONTROL_OK)
                break;
            usleep(1000);
        }
    }
    step_line("settle", 1, now_ms() - t0, NULL);
}

static void do_hmp(virDomainPtr dom, const char *file)
{
    static int (*qmc)(virDomainPtr, const char *, char **, unsigned int);
    char *text = read_file(file), *line, *save = NULL, extra[256];
    double t0 = now_ms();
    int n = 0, bad = 0;

    if (!qmc) {
        void *h = dlopen("libvirt-qemu.so.0", RTLD_NOW | RTLD_GLOBAL);
        if (h)
            qmc = (int (*)(virDomainPtr, const char *, char **, unsigned int))dlsym(
                h, "virDomainQemuMonitorCommand");
        if (!qmc) {
            printf("unavailable: virDomainQemuMonitorCommand (libvirt-qemu.so.0): %s\n", dlerror());
            fflush(stdout);
            exit(3);
        }
    }
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *reply = NULL;
        if (!*line)
            continue;
        n++;
        if (qmc(dom, line, &reply, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) < 0) {
            fprintf(stderr, "backup: hmp '%s': %s\n", line, last_error());
            bad++;
        } else if (reply && *reply) {
            /* qemu-io prints its results into QEMU's log, so any reply is an error text. */
            fprintf(stderr, "backup: hmp '%s' replied: %s\n", line, reply);
            bad++;
        }
        free(reply);
    }
    free(text);
    snprintf(extra, sizeof(extra), "commands=%d failed=%d", n, bad);
    step_line("hmp", bad == 0, now_ms() - t0, extra);
}

static virDomainPtr lookup(virConnectPtr conn, const char *name, int must)
{
    virDomainPtr dom = p_virDomainLookupByName(conn, name);
    if (!dom && must) {
        printf("step action=lookup ok=0 error=\"%s\"\n", last_error());
        fflush(stdout);
        exit(1);
    }
    return dom;
}

static void usage(void)
{
    fputs("usage: backup [--poll-us N] [--no-event] [--event-wait-ms N] [--timeout S] [--disk NAME]\n"
          "              [--drop-caches] URI DOMAIN ACTION...\n"
          "actions: define FILE | start | destroy | undefine | settle | full LABEL TARGET CP|-\n"
          "         | inc LABEL FROM TARGET CP|- | cpdelete NAME | hmp FILE | sh CMD\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *uri, *name;
    virConnectPtr conn;
    virDomainPtr dom = NULL;
    Dl_info info;
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--poll-us") && i + 1 < argc)
            poll_us = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-event"))
            want_event = 0;
        else if (!strcmp(argv[i], "--event-wait-ms") && i + 1 < argc)
            event_wait_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--disk") && i + 1 < argc)
            disk = argv[++i];
        else if (!strcmp(argv[i], "--drop-caches"))
            drop_caches = 1;
        else
            usage();
    }
    if (argc - i < 3 || poll_us < 0)
        usage();
    uri = argv[i++];
    name = argv[i++];

    resolve_all();
    NEED(virConnectOpen);
    NEED(virGetLastError);
    NEED(virDomainLookupByName);
    if (dladdr((void *)p_virConnectOpen, &info) && info.dli_fname)
        printf("library=%s\n", info.dli_fname);
    if (p_virSetErrorFunc)
        p_virSetErrorFunc(NULL, quiet_error_handler);

    events_init();
    conn = p_virConnectOpen(uri);
    if (!conn) {
        printf("step action=connect ok=0 error=\"%s\"\n", last_error());
        return 1;
    }

    for (; i < argc; i++) {
        const char *a = argv[i];
        double t0 = now_ms();
#define ARGS(n)                                                                                    \
    do {                                                                                           \
        if (i + (n) >= argc)                                                                       \
            usage();                                                                               \
    } while (0)
        if (!strcmp(a, "define")) {
            ARGS(1);
            char *xml = read_file(argv[++i]);
            NEED(virDomainDefineXML);
            if (dom)
                p_virDomainFree(dom);
            dom = p_virDomainDefineXML(conn, xml);
            free(xml);
            step_line("define", dom != NULL, now_ms() - t0, dom ? NULL : err_extra());
            if (!dom)
                break;
            events_register(conn, dom);
            continue;
        }
        if (!dom) {
            dom = lookup(conn, name, 1);
            events_register(conn, dom);
        }
        if (backup_failed && strcmp(a, "cpdelete") && strcmp(a, "destroy") && strcmp(a, "undefine")) {
            /* the rest of the scenario depends on the failed backup: skip it, keep clean-up */
            int skip = !strcmp(a, "full") ? 3 : !strcmp(a, "inc") ? 4 : 0;
            if (!strcmp(a, "hmp") || !strcmp(a, "sh"))
                skip = 1;
            printf("step action=%s skipped=1\n", a);
            i += skip;
            continue;
        }
        if (!strcmp(a, "start")) {
            NEED(virDomainCreate);
            int ok = p_virDomainCreate(dom) == 0;
            step_line("start", ok, now_ms() - t0, ok ? NULL : err_extra());
        } else if (!strcmp(a, "destroy")) {
            NEED(virDomainDestroy);
            int ok = p_virDomainDestroy(dom) == 0;
            step_line("destroy", ok, now_ms() - t0, ok ? NULL : err_extra());
        } else if (!strcmp(a, "undefine")) {
            NEED(virDomainUndefineFlags);
            int ok = p_virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) == 0;
            step_line("undefine", ok, now_ms() - t0, ok ? NULL : err_extra());
        } else if (!strcmp(a, "settle")) {
            settle(dom);
        } else if (!strcmp(a, "full")) {
            ARGS(3);
            do_backup(dom, argv[i + 1], NULL, argv[i + 2], strcmp(argv[i + 3], "-") ? argv[i + 3] : NULL);
            i += 3;
        } else if (!strcmp(a, "inc")) {
            ARGS(4);
            do_backup(dom, argv[i + 1], argv[i + 2], argv[i + 3],
                      strcmp(argv[i + 4], "-") ? argv[i + 4] : NULL);
            i += 4;
        } else if (!strcmp(a, "cpdelete")) {
            ARGS(1);
            NEED(virDomainCheckpointLookupByName);
            NEED(virDomainCheckpointDelete);
            virDomainCheckpointPtr cp = p_virDomainCheckpointLookupByName(dom, argv[++i], 0);
            int ok = cp && p_virDomainCheckpointDelete(cp, 0) == 0;
            char extra[1200];
            snprintf(extra, sizeof(extra), "name=%s%s%s%s", argv[i], ok ? "" : " error=\"",
                     ok ? "" : last_error(), ok ? "" : "\"");
            if (cp && p_virDomainCheckpointFree)
                p_virDomainCheckpointFree(cp);
            step_line("cpdelete", ok, now_ms() - t0, extra);
        } else if (!strcmp(a, "hmp")) {
            ARGS(1);
            do_hmp(dom, argv[++i]);
        } else if (!strcmp(a, "sh")) {
            ARGS(1);
            char extra[32];
            fflush(stdout);
            int rc = system(argv[++i]);
            rc = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
            snprintf(extra, sizeof(extra), "rc=%d", rc);
            printf("step action=sh ok=1 ms=%.1f %s\n", now_ms() - t0, extra); /* rc is data */
            fflush(stdout);
        } else {
            fprintf(stderr, "backup: unknown action '%s'\n", a);
            usage();
        }
#undef ARGS
    }

    if (dom && p_virDomainFree)
        p_virDomainFree(dom);
    if (p_virConnectClose)
        p_virConnectClose(conn);
    events_stop();
    return failures ? 1 : 0;
}
