/* fuzz_method.c — method specs `NAME[:key=value,...]` (methods/peft.h pb_peft_parse), their
 * canonical form (harness/sweep.h pb_sweep_canon_method) and a shape-only attach to the tiny
 * backbone (nothing allocated: counts only).
 *
 * Input: byte 0 picks the backbone and head; the rest (up to a NUL) is the spec. Checks: a
 * refusal has a message; an accepted spec has a canonical form that parses to itself
 * (canon(canon(s)) == canon(s)); an attach that succeeds counts trainable <= all parameters and
 * agrees with the method's closed form when it has one.
 *
 *   scripts/fuzz.sh method
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "harness/sweep.h"
#include "methods/peft.h"
#include "models/desc.h"

int pb_fuzz_method(const uint8_t *data, size_t size);

int pb_fuzz_method(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char spec[512];
    size_t n = size - 1 < sizeof spec - 1 ? size - 1 : sizeof spec - 1;
    memcpy(spec, data + 1, n);
    spec[n] = '\0';
    const pb_method *m;
    pb_hp_values v;
    if (pbf_check_status(pb_peft_parse(spec, &m, &v))) return 0;

    char canon[1024], again[1024];
    if (pbf_check_status(pb_sweep_canon_method(spec, canon, sizeof canon))) return 0;
    if (pb_peft_parse(canon, &m, &v)) pbf_fail("canonical form '%s' of '%s' is refused: %s", canon, spec, pb_errmsg());
    if (pb_sweep_canon_method(canon, again, sizeof again) || strcmp(canon, again))
        pbf_fail("canonical form is not stable: '%s' -> '%s' -> '%s'", spec, canon, again);

    const pb_model_desc *d = pb_backbone_find(data[0] & 1 ? "tiny-enc" : "tiny");
    if (!d) pbf_fail("no tiny backbone");
    pb_head_kind head = data[0] & 2 ? PB_HEAD_CLS : PB_HEAD_LM;
    int n_labels = head == PB_HEAD_CLS ? 1 + (data[0] >> 2) % 4 : 0;
    pb_peft p;
    if (pbf_check_status(pb_peft_create(&p, canon, d, head, n_labels, NULL, 1))) return 0;
    size_t trainable, all;
    pb_peft_counts(&p, &trainable, &all);
    if (trainable > all) pbf_fail("%s: %zu trainable of %zu parameters", canon, trainable, all);
    size_t closed = pb_peft_closed_form(&p);
    if (p.ctx[0]->method->closed_form && closed != trainable)
        pbf_fail("%s on %s: attach counts %zu trainable, the closed form %zu", canon, d->name, trainable, closed);
    pb_peft_free(&p);
    return 0;
}
