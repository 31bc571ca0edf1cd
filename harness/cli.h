/* cli.h — the peftbench command line: one binary, subcommands from one table (cli.c). */
#ifndef PB_CLI_H
#define PB_CLI_H

/* Runs `peftbench ARGS...`; returns the process exit status (0 ok, 1 runtime failure, 2 usage). */
int pb_cli_main(int argc, char **argv);

/* Option parsing shared by the subcommands. Accepts `--name value` and `--name=value`. */
typedef struct {
    int argc;
    char **argv;
    int i;            /* next argument */
    const char *cmd;  /* subcommand name, for messages */
} pb_args;

/* If argv[i] is option `name`, stores its value (NULL for a flag without value) and advances;
 * returns 1 if matched, 0 if not, -1 on a missing value (message printed). */
int pb_args_opt(pb_args *a, const char *name, int takes_value, const char **value);
/* Parses an integer / float option value with bounds; prints a message naming the option and
 * the accepted range on failure and returns 0. */
int pb_args_int(const pb_args *a, const char *opt, const char *s, long lo, long hi, long *out);
int pb_args_float(const pb_args *a, const char *opt, const char *s, double lo, double hi, double *out);
/* Sets OpenMP and OpenBLAS threads (n <= 0: leave the defaults). */
void pb_set_threads(int n);

#endif
