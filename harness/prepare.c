/* prepare.c — what a command needs (data, corpus, default backbone), checked on the files
 * themselves, and fetched exactly (prepare.h). */
#include "prepare.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/corpus_load.h"
#include "sweep.h"
#include "tasks/task.h"

#ifndef PB_SOURCE_DIR
#define PB_SOURCE_DIR "."
#endif

pb_status pb_needs_check(const pb_inputs *in, pb_needs *n) {
    memset(n, 0, sizeof *n);
    n->backbone = PB_BACKBONE_READY;
    if ((size_t)snprintf(n->data_dir, sizeof n->data_dir, "%s", in->data_dir ? in->data_dir : "") >= sizeof n->data_dir)
        return pb_errorf(PB_EINVAL, "data directory path too long: %s", in->data_dir);
    for (int i = 0; i < in->n_backbones; i++) {
        if (strcmp(in->backbones[i], "default") != 0 || n->default_backbone) continue;
        n->default_backbone = 1;
        pb_status st = pb_default_backbone_file(n->data_dir, n->backbone_path, sizeof n->backbone_path);
        if (st) return st;
        n->backbone = pb_default_backbone_state(n->backbone_path);
    }
    if (pb_needs_pretraining(n)) {
        n->corpus_needed = 1;
        snprintf(n->corpus_why, sizeof n->corpus_why, "the default backbone (%s, %s) is pretrained on it",
                 PB_DEFAULT_BACKBONE, PB_DEFAULT_TOKENIZER);
    } else if (in->forgetting && !strcmp(in->forgetting, "fetched")) {
        n->corpus_needed = 1;
        snprintf(n->corpus_why, sizeof n->corpus_why, "forgetting = fetched scores its held-out documents");
    }
    if (n->corpus_needed)
        n->corpus_missing = pb_corpus_fetched_missing(n->data_dir, n->corpus_first_missing, sizeof n->corpus_first_missing);
    for (int i = 0; i < in->n_tasks; i++) {
        int fetched, present;
        char source[64];
        /* a spec that does not parse or names no task is left to the loader, whose message
         * names the spec file and line */
        if (pb_task_fetch_need(in->tasks[i], n->data_dir, &fetched, source, sizeof source, &present)) {
            pb_error_clear();
            continue;
        }
        if (!fetched || present) continue;
        int dup = 0;
        for (int k = 0; k < n->n_tasks && !dup; k++) dup = !strcmp(n->task_source[k], source);
        if (dup) continue;
        if (n->n_tasks == PB_NEEDS_MAX_TASKS) return pb_errorf(PB_EINVAL, "more than %d fetched tasks", PB_NEEDS_MAX_TASKS);
        snprintf(n->task_source[n->n_tasks], sizeof n->task_source[0], "%s", source);
        snprintf(n->task_spec[n->n_tasks], sizeof n->task_spec[0], "%s", in->tasks[i]);
        n->n_tasks++;
    }
    return PB_OK;
}

int pb_needs_pretraining(const pb_needs *n) {
    return n->default_backbone && (n->backbone == PB_BACKBONE_ABSENT || n->backbone == PB_BACKBONE_PARTIAL);
}

void pb_needs_fetch_list(const pb_needs *n, char *out, size_t cap) {
    size_t k = 0;
    if (cap) out[0] = '\0';
    if (n->corpus_needed && n->corpus_missing) k += (size_t)snprintf(out, cap, "corpus");
    for (int i = 0; i < n->n_tasks && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", k ? "," : "", n->task_source[i]);
}

void pb_data_fetch_script(char *out, size_t cap) {
    const char *env = getenv("PEFTBENCH_SCRIPTS");
    if (env && *env) snprintf(out, cap, "%s/fetch_data.sh", env);
    else snprintf(out, cap, "%s/tasks/fetch/fetch_data.sh", PB_SOURCE_DIR);
}

pb_status pb_data_fetch(const char *data_dir, const char *only, int quiet) {
    char script[1200];
    pb_data_fetch_script(script, sizeof script);
    const char *env = getenv("PEFTBENCH_SCRIPTS");
    struct stat sb;
    if (stat(script, &sb) != 0 || !S_ISREG(sb.st_mode))
        return pb_errorf(PB_ENOTFOUND,
                         "the fetch script %s is missing (%s); set PEFTBENCH_SCRIPTS to the directory that holds "
                         "fetch_data.sh (tasks/fetch/ in the peftbench sources)",
                         script, env && *env ? "from $PEFTBENCH_SCRIPTS" : "the source tree this binary was built from");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return pb_errorf(PB_EIO, "data fetch: fork failed: %s", strerror(errno));
    if (pid == 0) {
        char *argv[] = {"bash", script, (char *)data_dir, "--only", (char *)only, quiet ? "--quiet" : NULL, NULL};
        execvp("bash", argv);
        fprintf(stderr, "peftbench data fetch: cannot run bash: %s\n", strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return pb_errorf(PB_EIO, "data fetch: waitpid failed: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return PB_OK;
    if (WIFEXITED(status))
        return pb_errorf(PB_EIO, "%s failed with exit status %d (see its messages above)", script, WEXITSTATUS(status));
    return pb_errorf(PB_EIO, "%s was killed by signal %d", script, WTERMSIG(status));
}

/* One line per missing source: what, where, and why it is needed. */
static void describe(const pb_needs *n, const char *who, const char *verb, FILE *log) {
    if (n->corpus_needed && n->corpus_missing)
        fprintf(log, "%s: %s the corpus: %s (%d of its 5 files missing, e.g. %s)\n", who, verb, n->corpus_why,
                n->corpus_missing, n->corpus_first_missing);
    for (int i = 0; i < n->n_tasks; i++)
        fprintf(log, "%s: %s task data %s: task '%s' reads %s/tasks/%s/, which is missing\n", who, verb,
                n->task_source[i], n->task_spec[i], n->data_dir, n->task_source[i]);
}

pb_status pb_prepare(const pb_inputs *in, int allow_fetch, const char *who, FILE *log, pb_needs *out) {
    pb_needs local, *n = out ? out : &local;
    pb_status st = pb_needs_check(in, n);
    if (st) return st;
    if (n->default_backbone && n->backbone == PB_BACKBONE_UNREADABLE)
        return pb_errorf(PB_EFORMAT, "the cached default backbone %s is not a readable checkpoint; delete it to "
                                     "pretrain it again", n->backbone_path);
    char list[1200];
    pb_needs_fetch_list(n, list, sizeof list);
    if (list[0] && !allow_fetch) {
        describe(n, who, "missing", log);
        return pb_errorf(PB_ENOTFOUND, "missing in %s: %s (--no-fetch was given; run `peftbench data fetch --dir %s "
                                       "--only %s`, or leave out --no-fetch)",
                         n->data_dir, list, n->data_dir, list);
    }
    if (list[0]) {
        describe(n, who, "fetching", log);
        if ((st = pb_data_fetch(n->data_dir, list, 0))) return pb_error_context(st, "fetching %s", list);
        pb_needs after;
        if ((st = pb_needs_check(in, &after))) return st;
        char still[1200];
        pb_needs_fetch_list(&after, still, sizeof still);
        if (still[0])
            return pb_errorf(PB_ENOTFOUND, "after `peftbench data fetch --only %s`, %s is still missing in %s", list,
                             still, n->data_dir);
        *n = after;
    }
    if (pb_needs_pretraining(n))
        fprintf(log, "%s: pretraining the default backbone: %s %s (about 10 minutes on 2 cores; once, then cached)\n",
                who, n->backbone_path,
                n->backbone == PB_BACKBONE_PARTIAL ? "is an interrupted pretraining; resuming it" : "is not there yet");
    return PB_OK;
}

pb_status pb_prepare_spec(const char *spec_path, const char *data_dir_flag, int allow_fetch, const char *who,
                          FILE *log) {
    pb_sweep_inputs si;
    pb_status st = pb_sweep_read_inputs(spec_path, data_dir_flag, &si);
    if (st) return st;
    pb_inputs in = {.backbones = (const char *const *)si.backbones, .n_backbones = si.n_backbones,
                    .tasks = (const char *const *)si.tasks, .n_tasks = si.n_tasks,
                    .forgetting = si.forgetting, .data_dir = si.data_dir};
    st = pb_prepare(&in, allow_fetch, who, log, NULL);
    pb_sweep_inputs_free(&si);
    return st;
}

int pb_pretrain_progress_lines(const pb_pretrain_progress *p, void *ud) {
    long *last = ud;
    if (p->event == PB_PT_STEP && p->steps > 0 && (p->step * 20 / p->steps != *last || p->step == p->steps)) {
        *last = p->step * 20 / p->steps;
        fprintf(stderr, "pretraining the default backbone: step %ld/%ld, loss %.3f, ETA %.0f s\n", p->step, p->steps,
                (double)p->loss, p->eta_s);
    }
    return 0;
}

pb_status pb_prepare_default_backbone(const char *data_dir, int threads, int allow_fetch, const char *who, char *out,
                                      size_t cap) {
    const char *bb[] = {"default"};
    pb_inputs in = {.backbones = bb, .n_backbones = 1, .data_dir = data_dir};
    pb_status st = pb_prepare(&in, allow_fetch, who, stderr, NULL);
    long last = -1;
    if (!st) st = pb_default_backbone_path(data_dir, threads, out, cap, pb_pretrain_progress_lines, &last);
    return st;
}
