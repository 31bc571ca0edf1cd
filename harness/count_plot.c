/* count_plot.c — `peftbench count --plot DIR`: trainable parameters against model size for each
 * method (plots/count_params.gp), with the TSV beside the figures. */
#include "count.h"
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pb_count_plot(const char *dir, char *const *models, int nm, char *const *specs, int np, const char *task,
                  const char *scripts_flag) {
    char sbuf[2048];
    const char *scripts = pb_plot_scripts(scripts_flag, sbuf, sizeof sbuf);
    if (!scripts) return 1;
    if (!pb_mkdir_p(dir)) {
        fprintf(stderr, "peftbench count: cannot create %s\n", dir);
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
    char path[2300];
    snprintf(path, sizeof path, "%s/count_params.tsv", dir);
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
            pb_peft_free(&p);
            fprintf(f, "\t%zu", tr);
        }
        fprintf(f, "\n");
    }
    if (fclose(f)) {
        fprintf(stderr, "peftbench count: cannot write %s\n", path);
        return 1;
    }
    printf("%s\n", path);
    char n[16], title[128];
    snprintf(n, sizeof n, "%d", np);
    snprintf(title, sizeof title, "Trainable parameters by model size%s%s", task ? " — " : "", task ? task : "");
    const char *extra[] = {n, title, NULL};
    return pb_plot_draw(scripts, "count_params.gp", dir, "count_params", "png,svg", extra);
}
