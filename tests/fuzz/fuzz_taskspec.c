/* fuzz_taskspec.c — task specs `NAME[:key=value,...]` (tasks/task.h pb_task_open) over the
 * built-in families and the fixture data directory (tests/fixtures/tasks/data), and their
 * canonical form (harness/sweep.h pb_sweep_canon_task).
 *
 * Input: the spec (up to a NUL). Checks: a refusal has a message and returns no task; an
 * opened task is consistent (labels for classification, a metric, the selecting metric among
 * them); the canonical form is stable and opens the same task.
 *
 *   scripts/fuzz.sh taskspec
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "harness/sweep.h"
#include "tasks/task.h"

int pb_fuzz_taskspec(const uint8_t *data, size_t size);

int pb_fuzz_taskspec(const uint8_t *data, size_t size) {
    char spec[512], dir[1200];
    size_t n = size < sizeof spec - 1 ? size : sizeof spec - 1;
    memcpy(spec, data, n);
    spec[n] = '\0';
    snprintf(dir, sizeof dir, "%s/tests/fixtures/tasks/data", pbf_src());
    pb_task *t = (pb_task *)1;
    if (pbf_check_status(pb_task_open(spec, dir, &t))) {
        if (t) pbf_fail("a refused task spec returned a task");
        return 0;
    }
    if (t->kind == PB_TASK_CLASSIFY && t->n_labels < 1) pbf_fail("'%s': a classification task without labels", spec);
    if (t->n_metrics < 1 || t->n_metrics > PB_TASK_MAX_METRICS || t->select < 0 || t->select >= t->n_metrics)
        pbf_fail("'%s': %d metrics, selecting %d", spec, t->n_metrics, t->select);
    char canon[1024], again[1024];
    pb_sweep_canon_task(spec, canon, sizeof canon);
    pb_sweep_canon_task(canon, again, sizeof again);
    if (strcmp(canon, again)) pbf_fail("canonical form is not stable: '%s' -> '%s' -> '%s'", spec, canon, again);
    pb_task *u = NULL;
    if (pb_task_open(canon, dir, &u)) pbf_fail("'%s' opens but its canonical form '%s' does not: %s", spec, canon, pb_errmsg());
    if (u->kind != t->kind || u->n_labels != t->n_labels) pbf_fail("'%s' and '%s' open different tasks", spec, canon);
    pb_task_free(u);
    pb_task_free(t);
    return 0;
}
