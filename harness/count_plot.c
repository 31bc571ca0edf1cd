/* count_plot.c — `peftbench count --plot DIR`: trainable parameters and training memory against
 * model size for each method (plots/count_scaling.gp), with the TSVs beside the figures. */
#include "pb_fs.h"
#include "count.h"
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One TSV: models by size x methods; what = 0 trainable parameters, 1 training memory bytes. */
static int write_tsv(const char *path, char *const *models, const int *order, const size_t *base, int nm,
                     char *const *specs, int np, const char *task, const pb_count_shape *sh, int what) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "peftbench count: cannot write %s\n", path);
        return 1;
    }
    fprintf(f, "model\tbase_params");
    for (int j = 0; j < np; j++) fprintf(f, "\t%s", specs[j]);
    fprintf(f, "\n");
    for (int k = 0; k < nm; k++) {
        const pb_model_desc *d = pb_desc_find_any(models[order[k]]);
        fprintf(f, "%s\t%zu", d->name, base[order[k]]);
        for (int j = 0; j < np; j++) {
            pb_peft p;
            if (pb_count_attach(&p, d, specs[j], task)) {
                fprintf(f, "\t");
                continue;
            }
            size_t tr, all;
            pb_peft_counts(&p, &tr, &all);
            pb_count_cost c;
            if (what == 0) fprintf(f, "\t%zu", tr);
            else if (pb_count_cost_of(&p, sh, &c) == PB_OK) fprintf(f, "\t%zu", c.mem_total);
            else fprintf(f, "\t");
            pb_peft_free(&p);
        }
        fprintf(f, "\n");
    }
    if (fclose(f)) {
        fprintf(stderr, "peftbench count: cannot write %s\n", path);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}

int pb_count_plot(const char *dir, char *const *models, int nm, char *const *specs, int np, const char *task,
                  const pb_count_shape *sh, const char *scripts_flag) {
    char sbuf[2048];
    const char *scripts = pb_plot_scripts(scripts_flag, sbuf, sizeof sbuf);
    if (!scripts) return 1;
    if (pb_mkdir_p(dir)) {
        fprintf(stderr, "peftbench count: %s\n", pb_errmsg());
        return 1;
    }
    /* rows sorted by model size */
    int order[256];
    size_t base[256];
    for (int i = 0; i < nm; i++) {
        const pb_model_desc *d = pb_desc_find_any(models[i]);
        pb_head_kind h;
        int K;
        if (pb_count_task_type(d, task, &h, &K)) h = (pb_head_kind)d->own_head, K = d->own_labels;
        pb_model_layout(d, h, K, NULL, &base[i]);
        order[i] = i;
    }
    for (int i = 1; i < nm; i++)
        for (int j = i; j > 0 && base[order[j]] < base[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    char path[2300], n[16], title[256];
    snprintf(n, sizeof n, "%d", np);
    static const char *const tsv[2] = {"count_params.tsv", "count_memory.tsv"};
    static const char *const base_name[2] = {"count_params", "count_memory"};
    static const char *const ylabel[2] = {"trainable parameters", "training memory (bytes)"};
    int rc = 0;
    for (int w = 0; w < 2; w++) {
        snprintf(path, sizeof path, "%s/%s", dir, tsv[w]);
        if (write_tsv(path, models, order, base, nm, specs, np, task, sh, w)) return 1;
        if (w == 0)
            snprintf(title, sizeof title, "Trainable parameters by model size%s%s", task ? " — " : "", task ? task : "");
        else {
            char seqbuf[32];
            if (sh->seq) snprintf(seqbuf, sizeof seqbuf, "%d", sh->seq);
            else snprintf(seqbuf, sizeof seqbuf, "512");
            snprintf(title, sizeof title, "Training memory by model size (batch %d, sequence %s, %s weights)%s%s",
                     sh->batch, seqbuf, pb_precision_name(sh->prec), task ? " — " : "",
                     task ? task : "");
        }
        const char *extra[] = {n, title, tsv[w], ylabel[w], NULL};
        rc |= pb_plot_draw(scripts, "count_scaling.gp", dir, base_name[w], "png,svg", extra);
    }
    return rc;
}
