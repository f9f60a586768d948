/*
 * test-errors.c: libvirt's error model: the thread-local last error and its fields, the
 * per-connection copy, callbacks, the default printer on stderr, copies that the caller
 * frees, and errors kept apart between threads.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "tap.h"

static int calls;
static int last_code;
static void *last_data;

static void counting(void *data, virErrorPtr err)
{
    calls++;
    last_code = err ? err->code : -1;
    last_data = data;
}

static void quiet(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

static int null_or_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void test_records(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    virErrorPtr e;
    virError copy;
    virErrorPtr saved;

    virSetErrorFunc(NULL, quiet);
    CHECK(virGetLastError() == NULL && virGetLastErrorCode() == 0 && virGetLastErrorDomain() == 0,
          "no error after a successful open");
    CHECK(strcmp(virGetLastErrorMessage(), "no error") == 0, "message 'no error'");

    /* A reported error: fixed text plus detail. */
    CHECK(virDomainLookupByName(c, "nope") == NULL, "lookup fails");
    e = virGetLastError();
    CHECK(e && e->code == VIR_ERR_NO_DOMAIN && e->domain == VIR_FROM_TEST && e->level == VIR_ERR_ERROR,
          "code, domain and level of a reported error");
    CHECK(e && null_or_equal(e->message, "Domain not found") && null_or_equal(e->str1, "Domain not found") &&
              e->str2 == NULL && e->int1 == -1 && e->int2 == -1,
          "message and extra fields of a reported error");
    CHECK(e && e->conn == NULL && e->dom == NULL && e->net == NULL, "deprecated pointers are NULL");

    /* An argument check: function and argument names in str1/str2. */
    CHECK(virDomainLookupByName(c, NULL) == NULL, "NULL name fails");
    e = virGetLastError();
    CHECK(e && e->code == VIR_ERR_INVALID_ARG && e->domain == VIR_FROM_DOMAIN &&
              null_or_equal(e->message, "name in virDomainLookupByName must not be NULL") &&
              null_or_equal(e->str1, "virDomainLookupByName") && null_or_equal(e->str2, "name") && e->int1 == 0,
          "fields of an argument error");

    /* Copies are deep and belong to the caller. */
    memset(&copy, 0x7f, sizeof(copy));
    CHECK(virCopyLastError(&copy) == VIR_ERR_INVALID_ARG, "virCopyLastError returns the code");
    CHECK(copy.message && e && copy.message != e->message && strcmp(copy.message, e->message) == 0,
          "copied message is a separate string");
    virResetError(&copy);
    CHECK(copy.code == 0 && copy.message == NULL && copy.str1 == NULL, "virResetError clears the copy");
    saved = virSaveLastError();
    CHECK(saved && saved->code == VIR_ERR_INVALID_ARG && saved->message != NULL, "virSaveLastError");
    virResetLastError();
    CHECK(saved && saved->code == VIR_ERR_INVALID_ARG && virGetLastError() == NULL,
          "a saved error survives virResetLastError");
    virFreeError(saved);
    saved = virSaveLastError();
    CHECK(saved && saved->code == 0, "virSaveLastError with no error gives code 0");
    virFreeError(saved);
    virFreeError(NULL);
    virResetError(NULL);
    CHECK(virCopyLastError(NULL) == -1, "virCopyLastError(NULL)");

    /* The caller may clear the library's own record. */
    virDomainLookupByName(c, "nope");
    virResetError(virGetLastError());
    CHECK(virGetLastError() == NULL, "virResetError on the last error clears it");

    /* Every entry point clears the error first, even getters. */
    virDomainLookupByName(c, "nope");
    CHECK(virConnectGetType(c) != NULL && virGetLastError() == NULL, "a getter clears the last error");

    /* The connection's copy. */
    virDomainLookupByName(c, "nope");
    virResetLastError();
    e = virConnGetLastError(c);
    CHECK(e && e->code == VIR_ERR_NO_DOMAIN, "connection keeps its copy after virResetLastError");
    CHECK(virConnCopyLastError(c, &copy) == VIR_ERR_NO_DOMAIN && copy.message != NULL, "virConnCopyLastError");
    virResetError(&copy);
    virConnResetLastError(c);
    e = virConnGetLastError(c);
    CHECK(e && e->code == 0, "virConnResetLastError");
    CHECK(virConnGetLastError(NULL) == NULL && virConnCopyLastError(NULL, &copy) == -1, "NULL connection");

    virConnectClose(c);
}

static void test_callbacks(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    static int token;

    calls = 0;
    virSetErrorFunc(&token, counting);
    virDomainLookupByName(c, "nope");
    CHECK(calls == 1 && last_code == VIR_ERR_NO_DOMAIN && last_data == &token, "global callback with user data");
    virConnSetErrorFunc(c, NULL, quiet);
    virDomainLookupByName(c, "nope");
    CHECK(calls == 1, "the connection's callback takes precedence");
    virDomainFree(NULL);
    CHECK(calls == 2 && last_code == VIR_ERR_INVALID_DOMAIN, "errors without a connection go to the global one");
    virConnSetErrorFunc(c, NULL, NULL);
    virDomainLookupByName(c, "nope");
    CHECK(calls == 3, "removing the connection callback restores the global one");
    virDomainGetName(NULL);
    CHECK(calls == 4, "getters report through callbacks too");
    virSetErrorFunc(NULL, quiet);
    virConnectClose(c);
}

static char *capture_stderr(void (*run)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(2);
    static char buf[4096];
    size_t n;

    fflush(stderr);
    dup2(fileno(tmp), 2);
    run();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

static void trigger_errors(void)
{
    virConnectPtr c = virConnectOpen("test:///default");
    virDomainLookupByName(c, "nope");
    virDomainFree(NULL);
    virConnectOpenAuth("test:///default", NULL, 8);
    virConnectClose(c);
}

static void print_crafted(void)
{
    virError e;
    memset(&e, 0, sizeof(e));
    e.code = VIR_ERR_INTERNAL_ERROR;
    e.domain = VIR_FROM_DOMAIN_CHECKPOINT;
    e.level = VIR_ERR_WARNING;
    e.message = (char *)"already ends with a newline\n";
    virDefaultErrorFunc(&e);
    e.code = VIR_ERR_XML_DETAIL;
    e.domain = VIR_FROM_XML;
    e.level = VIR_ERR_ERROR;
    e.int1 = 4;
    e.message = (char *)"bad tag";
    virDefaultErrorFunc(&e);
    e.code = VIR_ERR_OK;
    virDefaultErrorFunc(&e);
    virDefaultErrorFunc(NULL);
}

static void test_default_printer(void)
{
    const char *out;
    virSetErrorFunc(NULL, NULL);
    out = capture_stderr(trigger_errors);
    CHECK(strcmp(out,
                 "libvirt: Test Driver error : Domain not found\n"
                 "libvirt: Domain error : invalid domain pointer in virDomainFree\n"
                 "libvirt: Test Driver error : unsupported flags (0x8) in function testConnectOpen\n") == 0,
          "default printer writes libvirt's lines to stderr:\n%s", out);
    out = capture_stderr(print_crafted);
    CHECK(strcmp(out,
                 "libvirt: Domain Checkpoint warning : already ends with a newline\n"
                 "libvirt: XML Util error : line 4: bad tag") == 0,
          "virDefaultErrorFunc formats levels, domains and XML line errors:\n%s", out);
    virSetErrorFunc(NULL, quiet);
}

/* Two threads fail in different ways, many times, and each sees only its own error. */
static pthread_barrier_t barrier;
static virConnectPtr shared;

static void *worker(void *arg)
{
    int which = *(int *)arg;
    int i, good = 1;
    for (i = 0; i < 2000; i++) {
        if (which == 0)
            virDomainLookupByName(shared, "nope");
        else
            virDomainLookupByID(shared, -1);
        if (i == 0)
            pthread_barrier_wait(&barrier);
        if (virGetLastErrorCode() != (which == 0 ? VIR_ERR_NO_DOMAIN : VIR_ERR_INVALID_ARG))
            good = 0;
    }
    return good ? arg : NULL;
}

static void test_threads(void)
{
    pthread_t t[2];
    int which[2] = {0, 1};
    void *res[2];
    shared = virConnectOpen("test:///default");
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&t[0], NULL, worker, &which[0]);
    pthread_create(&t[1], NULL, worker, &which[1]);
    pthread_join(t[0], &res[0]);
    pthread_join(t[1], &res[1]);
    pthread_barrier_destroy(&barrier);
    CHECK(res[0] != NULL && res[1] != NULL, "last errors stay apart in two threads");
    virResetLastError();
    CHECK(virGetLastError() == NULL, "the main thread saw neither");
    virConnectClose(shared);
}

int main(void)
{
    test_records();
    test_callbacks();
    test_default_printer();
    test_threads();
    return tap_done();
}
