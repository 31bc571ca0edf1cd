/* cmd_list.c — `peftbench list backbones`: what can be run. */
#include "commands.h"
#include "models/desc.h"
#include "models/model.h"
#include "report.h"

#include <stdio.h>
#include <string.h>

int pb_cmd_list(pb_args *a) {
    const char *what = a->i < a->argc ? a->argv[a->i] : "backbones";
    if (!strcmp(what, "--help")) {
        printf("usage: peftbench list backbones\n");
        return 0;
    }
    if (strcmp(what, "backbones") != 0) {
        fprintf(stderr, "peftbench list: unknown list '%s' (accepted: backbones)\n", what);
        return 2;
    }
    printf("%-10s %-8s %6s %6s %6s %6s %8s %14s\n", "name", "arch", "layers", "d", "heads", "d_ff", "max_seq",
           "params (LM)");
    for (int i = 0; pb_backbone_at(i); i++) {
        const pb_model_desc *d = pb_backbone_at(i);
        size_t n;
        char buf[32];
        pb_model_layout(d, PB_HEAD_LM, 0, NULL, &n);
        printf("%-10s %-8s %6d %6d %6d %6d %8d %14s\n", d->name, d->causal ? "decoder" : "encoder", d->n_layer,
               d->d_model, d->n_head, d->d_ff, d->max_seq, pb_fmt_count(buf, sizeof buf, n));
    }
    return 0;
}
