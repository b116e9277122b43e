/* args.c: see args.h. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pending_value; /* value given as --flag=value */

void dc_args_init(dc_args *a, const char *cmd, int argc, char **argv)
{
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->failed = false;
    pending_value = NULL;
}

bool dc_args_more(const dc_args *a) { return !a->failed && a->i < a->argc; }

void dc_args_error(dc_args *a, const char *fmt, ...)
{
    if (a->failed) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", a->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    a->failed = true;
}

bool dc_args_flag(dc_args *a, const char *name)
{
    if (a->i >= a->argc) return false;
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n)) return false;
    if (arg[n] == '\0') {
        pending_value = NULL;
    } else if (arg[n] == '=') {
        pending_value = arg + n + 1;
    } else {
        return false;
    }
    a->i++;
    return true;
}

const char *dc_args_str(dc_args *a, const char *name)
{
    if (pending_value) {
        const char *v = pending_value;
        pending_value = NULL;
        return v;
    }
    if (a->i >= a->argc) {
        dc_args_error(a, "%s expects a value", name);
        return NULL;
    }
    return a->argv[a->i++];
}

int64_t dc_args_int(dc_args *a, const char *name, int64_t lo, int64_t hi)
{
    const char *v = dc_args_str(a, name);
    if (!v) return lo;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        dc_args_error(a, "%s expects an integer in [%lld, %lld], got '%s'", name, (long long)lo, (long long)hi, v);
        return lo;
    }
    return x;
}

double dc_args_double(dc_args *a, const char *name, double lo, double hi)
{
    const char *v = dc_args_str(a, name);
    if (!v) return lo;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        dc_args_error(a, "%s expects a number in [%g, %g], got '%s'", name, lo, hi, v);
        return lo;
    }
    return x;
}

int dc_args_choice(dc_args *a, const char *name, const char *choices)
{
    const char *v = dc_args_str(a, name);
    if (!v) return 0;
    int idx = 0;
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (strlen(v) == len && !strncmp(v, p, len)) return idx;
        idx++;
        if (!bar) break;
        p = bar + 1;
    }
    dc_args_error(a, "%s expects one of %s, got '%s'", name, choices, v);
    return 0;
}

const char *dc_args_positional(dc_args *a)
{
    if (a->i >= a->argc) return NULL;
    const char *arg = a->argv[a->i];
    if (!strcmp(arg, "--")) {
        a->i++;
        return a->i < a->argc ? a->argv[a->i++] : NULL;
    }
    if (!strncmp(arg, "--", 2)) return NULL;
    a->i++;
    return arg;
}

void dc_args_unknown(dc_args *a)
{
    if (a->i < a->argc) dc_args_error(a, "unknown argument '%s' (see --help)", a->argv[a->i]);
}
