/* cli.c — subcommand table and shared option parsing (see cli.h). */
#include "cli.h"
#include "commands.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_gitinfo.h"


typedef struct {
    const char *name;
    const char *summary;
    int (*run)(pb_args *a);
} command;

/* The subcommands, in the order `peftbench --help` lists them. */
static const command g_commands[] = {
#define PB_COMMAND_ROW(name, summary, fn) {name, summary, fn},
    PB_COMMAND_LIST(PB_COMMAND_ROW)
#undef PB_COMMAND_ROW
};

static void usage(FILE *f) {
    fprintf(f, "usage: peftbench COMMAND [options]   (peftbench COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", g_commands[i].name, g_commands[i].summary);
}

int pb_cli_main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("peftbench %s (commit %s, %s)\n", PB_VERSION, PB_GIT_COMMIT, PB_COMPILER);
        return 0;
    }
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        if (!strcmp(name, g_commands[i].name)) {
            pb_args a = {argc, argv, 2, name};
            return g_commands[i].run(&a);
        }
    fprintf(stderr, "peftbench: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}

int pb_args_opt(pb_args *a, const char *name, int takes_value, const char **value) {
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return 0;
    if (arg[n] == '=' && takes_value) {
        *value = arg + n + 1;
        a->i++;
        return 1;
    }
    if (arg[n] != '\0') return 0;
    a->i++;
    if (!takes_value) {
        if (value) *value = NULL;
        return 1;
    }
    if (a->i >= a->argc) {
        fprintf(stderr, "peftbench %s: option %s needs a value\n", a->cmd, name);
        return -1;
    }
    *value = a->argv[a->i++];
    return 1;
}

int pb_args_int(const pb_args *a, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "peftbench %s: %s '%s' is not an integer in [%ld, %ld]\n", a->cmd, opt, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int pb_args_float(const pb_args *a, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "peftbench %s: %s '%s' is not a number in [%g, %g]\n", a->cmd, opt, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

void pb_set_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
