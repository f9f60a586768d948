/*
 * tap.h: a tiny Test Anything Protocol writer for the C test programs.
 *
 * CHECK(cond, "what") prints "ok N - what" or "not ok N - what" (with the file and line
 * of a failure); tap_done() prints the plan and returns the exit status.
 */
#ifndef VIRBACKUP_TAP_H
#define VIRBACKUP_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failures;

static void tap_check(int ok, const char *file, int line, const char *fmt, ...)
{
    char text[4096];
    const char *p;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printf("%s %d - ", ok ? "ok" : "not ok", ++tap_count);
    /* A TAP line cannot hold a newline: show it escaped. */
    for (p = text; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else
            putchar(*p);
    }
    printf("\n");
    if (!ok) {
        tap_failures++;
        printf("# failed at %s:%d\n", file, line);
    }
    fflush(stdout);
}

#define CHECK(cond, ...) tap_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Checks the calling thread's last error: code, domain and exact message. */
#define CHECK_ERROR(code_, domain_, message_, what)                                      \
    do {                                                                                 \
        virErrorPtr e_ = virGetLastError();                                              \
        CHECK(e_ && e_->code == (code_) && e_->domain == (domain_) && e_->level == 2 &&  \
                  e_->message && strcmp(e_->message, (message_)) == 0,                   \
              "%s: error %d/%d '%s'", what, e_ ? e_->code : -1, e_ ? e_->domain : -1,    \
              e_ && e_->message ? e_->message : "(none)");                               \
    } while (0)

static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failures ? 1 : 0;
}

#endif /* VIRBACKUP_TAP_H */
