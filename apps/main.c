/* main.c: the deepc command: dispatches to the subcommands listed in commands.def. */
#include <stdio.h>
#include <string.h>

#include "deepc/deepc.h"

#define DC_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef DC_COMMAND

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
#define DC_COMMAND(name, fn, summary) {#name, fn, summary},
#include "commands.def"
#undef DC_COMMAND
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: deepc COMMAND [ARGS...]\n\ncommands:\n");
    for (const command *c = commands; c->name; c++) fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\n'deepc COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("deepc %s\n", DEEPC_VERSION);
        return 0;
    }
    for (const command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "deepc: unknown command '%s' (valid:", argv[1]);
    for (const command *c = commands; c->name; c++) fprintf(stderr, " %s", c->name);
    fprintf(stderr, ")\n");
    return 2;
}
