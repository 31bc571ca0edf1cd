/* test_optim.c — AdamW, clipping and schedules on numbers worked out by hand. */
#include "testutil.h"

#include <math.h>

#include "optim.h"
#include "pb_mem.h"

/* One scalar, two steps; every intermediate in the comments. */
static void test_adamw_by_hand(void **state) {
    (void)state;
    float p = 1.0f, g = 0.5f;
    pb_segment seg = {.param = &p, .grad = &g, .n = 1, .decay = 1};
    pb_adamw_config c = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f,
                         .clip_norm = 0.0f};
    pb_adamw opt;
    assert_int_equal(pb_adamw_init(&opt, &c, &seg, 1), PB_OK);
    /* step 1: m = 0.1*0.5 = 0.05; v = 0.001*0.25 = 0.00025; mhat = 0.05/0.1 = 0.5;
     * vhat = 0.00025/0.001 = 0.25; update = 0.5/(0.5+1e-8) + 0.1*1 = 1.1 (to 1e-8);
     * p = 1 - 0.1*1.1 = 0.89 */
    float norm = pb_adamw_step(&opt, 0.1f);
    assert_float_equal(norm, 0.5f, 1e-7);
    assert_float_equal(p, 0.89f, 1e-6);
    /* step 2 with g = -0.25: m = 0.9*0.05 - 0.1*0.25 = 0.02; v = 0.999*0.00025 + 0.001*0.0625
     * = 0.00031225; mhat = 0.02/0.19 = 0.105263158; vhat = 0.00031225/0.001999 = 0.156203102;
     * sqrt = 0.395225382; update = 0.266337... + 0.1*0.89 = 0.355337; p = 0.89 - 0.0355337 */
    g = -0.25f;
    pb_adamw_step(&opt, 0.1f);
    double mhat = 0.02 / 0.19, vhat = 0.00031225 / (1 - 0.999 * 0.999);
    double expect = 0.89 - 0.1 * (mhat / (sqrt(vhat) + 1e-8) + 0.1 * 0.89);
    assert_float_equal(p, (float)expect, 2e-6);
    assert_float_equal(p, 0.8544663f, 2e-6);
    /* no decay segment: only the Adam term moves it */
    pb_adamw_free(&opt);
    float q = 2.0f, h = 1.0f;
    pb_segment s2 = {.param = &q, .grad = &h, .n = 1, .decay = 0};
    assert_int_equal(pb_adamw_init(&opt, &c, &s2, 1), PB_OK);
    pb_adamw_step(&opt, 0.1f); /* mhat = 1, vhat = 1: q = 2 - 0.1 * 1/(1+1e-8) */
    assert_float_equal(q, 1.9f, 1e-6);
    pb_adamw_free(&opt);
}

static void test_clipping(void **state) {
    (void)state;
    float p[2] = {0, 0}, g1 = 3.0f, g2 = 4.0f;
    pb_segment seg[2] = {{&p[0], &g1, 1, 0}, {&p[1], &g2, 1, 0}};
    assert_float_equal(pb_grad_norm(seg, 2), 5.0, 1e-12);
    pb_adamw_config c = pb_adamw_defaults();
    c.clip_norm = 1.0f;
    c.beta1 = 0.0f; /* m = clipped g, so the update sign and mhat are easy to read */
    pb_adamw opt;
    assert_int_equal(pb_adamw_init(&opt, &c, seg, 2), PB_OK);
    float norm = pb_adamw_step(&opt, 1.0f);
    assert_float_equal(norm, 5.0f, 1e-6); /* norm before clipping */
    /* clipped grads 0.6, 0.8; v = 0.001 g^2, vhat = g^2; update = g/|g| = 1 for each */
    assert_float_equal(opt.m[0], 0.6f, 1e-6);
    assert_float_equal(opt.m[1], 0.8f, 1e-6);
    assert_float_equal(p[0], -1.0f, 1e-6);
    assert_float_equal(p[1], -1.0f, 1e-6);
    /* optimizer state is booked: 2 moments x 2 params x 4 bytes */
    pb_mem_stats ms;
    pb_mem_get(&ms);
    assert_int_equal(ms.cur[PB_MEM_OPTIM], 16);
    pb_adamw_free(&opt);
    pb_mem_get(&ms);
    assert_int_equal(ms.cur[PB_MEM_OPTIM], 0);
}

static void test_schedule(void **state) {
    (void)state;
    pb_schedule s = {.lr = 1.0f, .min_lr_frac = 0.0f, .warmup = 10, .total = 111, .decay = PB_DECAY_LINEAR};
    assert_float_equal(pb_schedule_lr(&s, 0), 0.1f, 1e-7);  /* (0+1)/10 */
    assert_float_equal(pb_schedule_lr(&s, 9), 1.0f, 1e-7);  /* end of warm-up */
    assert_float_equal(pb_schedule_lr(&s, 10), 1.0f, 1e-7); /* decay starts at the peak */
    assert_float_equal(pb_schedule_lr(&s, 60), 0.5f, 1e-6); /* (60-10)/(110-10) = 0.5 */
    assert_float_equal(pb_schedule_lr(&s, 110), 0.0f, 1e-7);
    s.decay = PB_DECAY_COSINE;
    s.min_lr_frac = 0.1f;
    assert_float_equal(pb_schedule_lr(&s, 60), 0.55f, 1e-6);  /* 0.1 + 0.9 * 0.5*(1+cos(pi/2)) */
    assert_float_equal(pb_schedule_lr(&s, 35), 0.1f + 0.9f * 0.5f * (1.0f + cosf(3.14159265f * 0.25f)), 1e-6);
    assert_float_equal(pb_schedule_lr(&s, 110), 0.1f, 1e-7);
    s.decay = PB_DECAY_CONSTANT;
    assert_float_equal(pb_schedule_lr(&s, 100), 1.0f, 1e-7);
    pb_decay dk;
    assert_int_equal(pb_decay_parse("cosine", &dk), PB_OK);
    assert_int_equal(dk, PB_DECAY_COSINE);
    assert_int_equal(pb_decay_parse("exp", &dk), PB_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_by_hand),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
