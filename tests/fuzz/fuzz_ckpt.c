/* fuzz_ckpt.c — checkpoints through the real loaders (models/checkpoint.h): a resumable BPE
 * checkpoint of the tiny backbone, written once per process by the real pretraining loop
 * (3 steps, interrupted with a save), is mutated by the input (h5mutate.h: attributes,
 * datasets' shapes, types and bytes, deletions, truncation), re-sealed (its whole-file checksum
 * recomputed, so the content checks are reached), and opened: read_info, load, load_tokenizer,
 * load_train. Input byte 0 bit 0 set: the file is instead truncated or has bytes flipped and is
 * not re-sealed (the integrity header must refuse it).
 *
 * Checks: every refusal has a message; a load that succeeds gives a model whose tensors match
 * its descriptor (pb_model_init did it) and a tokenizer whose vocabulary matches the model's.
 *
 *   scripts/fuzz.sh ckpt
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "h5mutate.h"
#include "models/checkpoint.h"
#include "models/model.h"
#include "models/pretrain.h"
#include "models/tokenizer.h"

int pb_fuzz_ckpt(const uint8_t *data, size_t size);

static int stop_at_3(const pb_pretrain_progress *p, void *ud) {
    (void)ud;
    return p->event == PB_PT_STEP && p->step == 3 ? PB_PT_STOP_SAVE : 0;
}

static const char *template_path(void) {
    static char path[1100];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s", pbf_path("ckpt-template.h5"));
    pb_pretrain_config c;
    pb_pretrain_defaults(&c);
    snprintf(c.backbone, sizeof c.backbone, "tiny");
    snprintf(c.corpus, sizeof c.corpus, "builtin");
    snprintf(c.tokenizer, sizeof c.tokenizer, "bpe:8");
    c.builtin_bytes = 20000;
    c.steps = 10;
    c.batch = 2;
    c.seq = 16;
    c.save_every = 0;
    c.eval_tokens = 256;
    c.threads = 1;
    pb_pretrain_result r;
    if (pb_pretrain_run(&c, NULL, path, PB_PT_OVERWRITE, stop_at_3, NULL, &r))
        pbf_fail("cannot write the template checkpoint: %s", pb_errmsg());
    pb_pretrain_result_free(&r);
    return path;
}

int pb_fuzz_ckpt(const uint8_t *data, size_t size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *tpl = template_path(), *path = pbf_path("ckpt.h5");
    pbf_copy_file(tpl, path);
    pbf_in in = {data, size};
    uint8_t mode = pbf_u8(&in);
    if (mode & 1) {
        if (mode & 2) pbf_truncate(path, pbf_u32(&in) % 40000);
        else {
            FILE *f = fopen(path, "r+b");
            for (int i = 0; f && i < 1 + (mode >> 2) % 8; i++) {
                fseek(f, (long)(pbf_u32(&in) % 40000), SEEK_SET);
                fputc(pbf_u8(&in), f);
            }
            if (f) fclose(f);
        }
    } else {
        if (pbf_h5_mutate(path, &in)) pbf_fail("cannot open the template copy for writing");
        if (pb_ckpt_reseal(path)) pbf_fail("cannot reseal: %s", pb_errmsg());
    }
    pb_ckpt_info info;
    if (pbf_check_status(pb_ckpt_read_info(path, &info))) return 0;
    pb_model m;
    if (pbf_check_status(pb_ckpt_load(path, &m, &info))) return 0;
    size_t n = 0;
    for (int i = 0; i < m.n_tensors; i++) n += m.tensors[i].numel;
    if (n != m.n_params) pbf_fail("tensors hold %zu parameters, the model %zu", n, m.n_params);
    pb_tokenizer t;
    if (!pbf_check_status(pb_ckpt_load_tokenizer(path, &t))) {
        if (t.vocab != m.d.vocab) pbf_fail("tokenizer vocabulary %d, model %d", t.vocab, m.d.vocab);
        pb_tokenizer_free(&t);
    }
    if (info.has_train) {
        pb_adamw opt;
        pb_adamw_config oc = pb_adamw_defaults();
        pb_ckpt_train tr;
        float *losses = NULL;
        if (pb_model_optimizer(&m, &oc, &opt)) pbf_fail("optimizer: %s", pb_errmsg());
        if (!pbf_check_status(pb_ckpt_load_train(path, &m, info.resumable ? &opt : NULL, &tr, &losses))) free(losses);
        pb_adamw_free(&opt);
    }
    pb_model_free(&m);
    return 0;
}
