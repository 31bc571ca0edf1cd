/* fuzz_adapter.c — adapter files through the real loader (methods/adapter.h): a LoRA adapter
 * (r=2 on q and v, with the classification head) of the tiny backbone, written once per process
 * by pb_adapter_save, is mutated by the input (h5mutate.h) and opened with
 * pb_adapter_read_spec and pb_adapter_load onto a fresh tiny model. Input byte 0 bit 0 set: the
 * file is truncated instead. Byte 0 bit 1 picks the method (lora or a bottleneck adapter).
 *
 * Checks: every refusal has a message; a load that succeeds attaches a method whose tensors
 * are all finite-sized and counted (trainable <= all).
 *
 *   scripts/fuzz.sh adapter
 */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "h5mutate.h"
#include "methods/adapter.h"
#include "methods/peft.h"
#include "models/model.h"

int pb_fuzz_adapter(const uint8_t *data, size_t size);

static const char *k_specs[2] = {"lora:r=2", "seq_bn:reduction_factor=4"};

static const char *template_path(int which) {
    static char path[2][1100];
    if (path[which][0]) return path[which];
    snprintf(path[which], sizeof path[which], "%s", pbf_path(which ? "adapter-template-1.h5" : "adapter-template-0.h5"));
    const pb_model_desc *d = pb_backbone_find("tiny");
    pb_model m;
    pb_peft p;
    if (pb_model_init(&m, d, PB_HEAD_CLS, 3, 1)) pbf_fail("model: %s", pb_errmsg());
    if (pb_peft_create(&p, k_specs[which], NULL, PB_HEAD_CLS, 3, &m, 1)) pbf_fail("%s: %s", k_specs[which], pb_errmsg());
    if (pb_adapter_save(path[which], &p, k_specs[which])) pbf_fail("save: %s", pb_errmsg());
    pb_peft_free(&p);
    pb_model_free(&m);
    return path[which];
}

int pb_fuzz_adapter(const uint8_t *data, size_t size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    pbf_in in = {data, size};
    uint8_t mode = pbf_u8(&in);
    const char *tpl = template_path((mode >> 1) & 1), *path = pbf_path("adapter.h5");
    pbf_copy_file(tpl, path);
    if (mode & 1) pbf_truncate(path, pbf_u32(&in) % 20000);
    else if (pbf_h5_mutate(path, &in)) pbf_fail("cannot open the template copy for writing");

    char spec[512];
    int is_cls, n_labels;
    if (pbf_check_status(pb_adapter_read_spec(path, spec, sizeof spec, &is_cls, &n_labels))) return 0;
    const pb_model_desc *d = pb_backbone_find("tiny");
    pb_model m;
    if (pb_model_init(&m, d, PB_HEAD_CLS, 3, 1)) pbf_fail("model: %s", pb_errmsg());
    pb_peft p;
    if (!pbf_check_status(pb_adapter_load(path, &m, &p))) {
        size_t trainable, all;
        pb_peft_counts(&p, &trainable, &all);
        if (trainable > all) pbf_fail("%zu trainable of %zu", trainable, all);
        pb_peft_free(&p);
    }
    pb_model_free(&m);
    return 0;
}
