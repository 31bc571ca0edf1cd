/* fuzz_csvtask.c — your own CSV/TSV files as a task (tasks/csvtask.c, `csv:...` specs):
 * the files are written to a scratch directory and opened through pb_task_open.
 *
 * Input: byte 0 picks the extension (.csv/.tsv) and which splits exist; then the options part
 * of the spec up to a NUL (e.g. `kind=generate,dev_frac=0.2`); the rest is split at "\f" bytes
 * into train, dev and test files. Checks: a refusal has a message and returns no task; an
 * opened task has labels if it classifies and a selecting metric among its metrics.
 *
 *   scripts/fuzz.sh csvtask
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "tasks/task.h"

int pb_fuzz_csvtask(const uint8_t *data, size_t size);

int pb_fuzz_csvtask(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    pbf_in in = {data, size};
    uint8_t f = pbf_u8(&in);
    const char *ext = f & 1 ? "tsv" : "csv";
    char opts[256];
    size_t k = 0;
    while (in.n && k < sizeof opts - 1) {
        uint8_t c = pbf_u8(&in);
        if (!c) break;
        opts[k++] = (char)c;
    }
    opts[k] = '\0';
    const char *dir = pbf_path("csvtask");
    pbf_rmtree(dir);
    if (mkdir(dir, 0700)) pbf_fail("cannot make %s", dir);
    static const char *names[3] = {"train", "dev", "test"};
    for (int s = 0; s < 3; s++) {
        const uint8_t *p = in.p;
        const uint8_t *end = memchr(p, '\f', in.n);
        size_t len = end ? (size_t)(end - p) : in.n, got;
        pbf_bytes(&in, len + (end != NULL), &got);
        if (s > 0 && !(f & (2 << s))) continue; /* dev, test may be absent: carved from train */
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.%s", dir, names[s], ext);
        pbf_write(path, p, len);
    }
    char spec[1600];
    snprintf(spec, sizeof spec, "csv:%s%s%s", dir, k ? "," : "", opts);
    pb_task *t = (pb_task *)1;
    pb_status st = pbf_check_status(pb_task_open(spec, NULL, &t));
    if (st) {
        if (t) pbf_fail("a refused task returned a task");
    } else {
        if (t->kind == PB_TASK_CLASSIFY && t->n_labels < 1) pbf_fail("a classification task without labels");
        if (t->n_metrics < 1 || t->select < 0 || t->select >= t->n_metrics) pbf_fail("metrics %d, select %d", t->n_metrics, t->select);
        pb_task_free(t);
    }
    pbf_rmtree(dir);
    return 0;
}
