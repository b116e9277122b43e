/* args.h: command-line parsing helpers shared by the deepc subcommands: typed flag values
 * with one-line errors that name the command, the flag, what was expected and what was given. */
#ifndef DEEPC_APPS_ARGS_H
#define DEEPC_APPS_ARGS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dc_args {
    const char *cmd; /* "deepc train" */
    int argc;
    char **argv;
    int i;           /* next argument */
    bool failed;
} dc_args;

void dc_args_init(dc_args *a, const char *cmd, int argc, char **argv);
/* True while arguments remain. */
bool dc_args_more(const dc_args *a);
/* The current argument is flag `name` ("--epochs" or "--epochs=5"): consumes the flag. */
bool dc_args_flag(dc_args *a, const char *name);
/* After dc_args_flag: the flag's value (next argument or the part after '='). */
const char *dc_args_str(dc_args *a, const char *name);
int64_t dc_args_int(dc_args *a, const char *name, int64_t lo, int64_t hi);
double dc_args_double(dc_args *a, const char *name, double lo, double hi);
/* One of a '|'-separated list of choices: returns its index. */
int dc_args_choice(dc_args *a, const char *name, const char *choices);
/* A positional argument (anything not starting with "--", or anything after "--"). */
const char *dc_args_positional(dc_args *a);
/* Reports an unknown flag (and marks failure). */
void dc_args_unknown(dc_args *a);
/* printf-style error: "deepc train: ..." on stderr; marks failure. */
void dc_args_error(dc_args *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
