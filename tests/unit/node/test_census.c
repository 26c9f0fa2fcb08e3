/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_census.c - node/gearman/census.c: a member's
 * worker counts go out as one payload and come back as the same counts
 * on the other side; they add up over members, stop counting when stale
 * or forgotten, and a malformed payload is refused whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/gearman/census.h"
#include "node/gearman/conn.h"
#include "node/gearman/hub.h"
#include "node/gr.h"

#define KIND 5

static const uint8_t *U(const char *s)
{
    return (const uint8_t *)s;
}

/* A worker session able to do the functions named in the NULL-ended
 * list, added to hub. */
static void worker(struct gm_hub *hub, const char *const *fns)
{
    struct gm_session *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    for (; *fns != NULL; fns++) {
        size_t len = strlen(*fns);
        struct gm_func *f = calloc(1, sizeof(*f) + len);

        assert_non_null(f);
        memcpy(f->name, *fns, len);
        f->len = len;
        f->next = s->funcs;
        s->funcs = f;
    }
    s->next = hub->sessions;
    hub->sessions = s;
}

static void workers_free(struct gm_hub *hub)
{
    struct gm_session *s;

    while ((s = hub->sessions) != NULL) {
        struct gm_func *f;

        hub->sessions = s->next;
        while ((f = s->funcs) != NULL) {
            s->funcs = f->next;
            free(f);
        }
        free(s);
    }
}

static void test_counts_cross_from_one_member_to_another(void **state)
{
    static const char *const both[] = {"resize", "encode", NULL};
    static const char *const one[] = {"resize", NULL};
    struct gm_hub a;
    struct gm_hub b;
    uint8_t *p;
    size_t len;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.space.ok = true;
    worker(&a, both);
    worker(&a, one);
    worker(&a, one);
    assert_int_equal(gm_census_encode(&a, KIND, &p, &len), 0);
    assert_int_equal(p[0], KIND);
    assert_int_equal(gm_census_receive(&b, 7, p + 1, len - 1, 1000), 0);
    assert_int_equal(gm_census_workers(&b, U("resize"), 6, 1000), 3);
    assert_int_equal(gm_census_workers(&b, U("encode"), 6, 1000), 1);
    assert_int_equal(gm_census_workers(&b, U("other"), 5, 1000), 0);
    /* A second member's counts add up; a new payload replaces the old. */
    assert_int_equal(gm_census_receive(&b, 9, p + 1, len - 1, 1500), 0);
    assert_int_equal(gm_census_workers(&b, U("resize"), 6, 1500), 6);
    gr_free(p);
    workers_free(&a);
    worker(&a, one);
    assert_int_equal(gm_census_encode(&a, KIND, &p, &len), 0);
    assert_int_equal(gm_census_receive(&b, 7, p + 1, len - 1, 2000), 0);
    assert_int_equal(gm_census_workers(&b, U("resize"), 6, 2000), 4);
    assert_int_equal(gm_census_workers(&b, U("encode"), 6, 2000), 1);
    /* Stale counts count for nothing; a forgotten member neither. */
    assert_int_equal(
        gm_census_workers(&b, U("resize"), 6, 1500 + GM_CENSUS_FRESH_MS + 1),
        1);
    gm_census_forget(&b, 7);
    assert_int_equal(gm_census_workers(&b, U("resize"), 6, 2000), 3);
    gr_free(p);
    workers_free(&a);
    gm_census_free(&b);
}

static void test_no_workers_is_an_empty_census(void **state)
{
    struct gm_hub a;
    uint8_t *p;
    size_t len;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.space.ok = true;
    assert_int_equal(gm_census_encode(&a, KIND, &p, &len), 0);
    assert_int_equal(len, 6);
    assert_int_equal(gm_census_receive(&a, 3, p + 1, len - 1, 10), 0);
    assert_int_equal(gm_census_workers(&a, U("x"), 1, 10), 0);
    gr_free(p);
    gm_census_free(&a);
}

static void test_malformed_payloads_are_refused_whole(void **state)
{
    static const char *const fns[] = {"a", "b", NULL};
    /* Flags 0, count 1, name "fn", 2 workers - then broken variants. */
    static const uint8_t good[] = {0, 0, 0, 0, 1, 0, 2, 'f', 'n', 0, 0, 0, 2};
    static const uint8_t longer[] = {0, 0, 0, 0, 2, 0, 2,
                                     'f', 'n', 0, 0, 0, 2};
    static const uint8_t trailing[] = {0, 0, 0, 0, 1, 0, 2, 'f', 'n',
                                       0, 0, 0, 2, 9};
    static const uint8_t name_past_end[] = {0, 0, 0, 0, 1, 0, 9, 'f', 'n',
                                            0, 0, 0, 2};
    static const uint8_t unsorted[] = {0, 0, 0, 0, 2, 0, 1, 'b', 0, 0, 0, 1,
                                       0, 1, 'a', 0, 0, 0, 1};
    static const uint8_t huge_count[] = {0, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t unknown_flag[] = {2, 0, 0, 0, 0};
    const struct {
        const uint8_t *p;
        size_t len;
    } bad[] = {
        {longer, sizeof(longer)},
        {trailing, sizeof(trailing)},
        {name_past_end, sizeof(name_past_end)},
        {unsorted, sizeof(unsorted)},
        {huge_count, sizeof(huge_count)},
        {unknown_flag, sizeof(unknown_flag)},
        {good, 4},
        {good, 0},
    };
    struct gm_hub b;
    struct gm_hub a;
    uint8_t *p;
    size_t len;
    size_t i;

    (void)state;
    memset(&b, 0, sizeof(b));
    memset(&a, 0, sizeof(a));
    assert_int_equal(gm_census_receive(&b, 4, good, sizeof(good), 50), 0);
    assert_int_equal(gm_census_workers(&b, U("fn"), 2, 50), 2);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gm_census_receive(&b, 4, bad[i].p, bad[i].len, 60),
                         GR_EINVAL);
        /* What it told before is forgotten: a broken sender counts 0. */
        assert_int_equal(gm_census_workers(&b, U("fn"), 2, 60), 0);
        assert_int_equal(gm_census_receive(&b, 4, good, sizeof(good), 60), 0);
    }
    /* Our own encoding is in name order, so it is accepted. */
    worker(&a, fns);
    assert_int_equal(gm_census_encode(&a, KIND, &p, &len), 0);
    assert_int_equal(gm_census_receive(&b, 5, p + 1, len - 1, 60), 0);
    assert_int_equal(gm_census_workers(&b, U("a"), 1, 60), 1);
    gr_free(p);
    workers_free(&a);
    gm_census_free(&b);
}

/* A member short of space says so; the others know while it is fresh
 * and forget it with its link, or when it says it has room again. */
static void test_a_member_short_of_space_is_known(void **state)
{
    struct gm_hub a;
    struct gm_hub b;
    uint8_t *p;
    size_t len;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.space.ok = false;
    assert_int_equal(gm_census_encode(&a, KIND, &p, &len), 0);
    assert_false(gm_census_any_short(&b, 100));
    assert_int_equal(gm_census_receive(&b, 2, p + 1, len - 1, 100), 0);
    assert_true(gm_census_any_short(&b, 100));
    assert_false(gm_census_any_short(&b, 100 + GM_CENSUS_FRESH_MS + 1));
    gm_census_forget(&b, 2);
    assert_false(gm_census_any_short(&b, 100));
    assert_int_equal(gm_census_receive(&b, 2, p + 1, len - 1, 200), 0);
    gr_free(p);
    a.space.ok = true;
    assert_int_equal(gm_census_encode(&a, KIND, &p, &len), 0);
    assert_int_equal(gm_census_receive(&b, 2, p + 1, len - 1, 300), 0);
    assert_false(gm_census_any_short(&b, 300));
    gr_free(p);
    gm_census_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_cross_from_one_member_to_another),
        cmocka_unit_test(test_no_workers_is_an_empty_census),
        cmocka_unit_test(test_malformed_payloads_are_refused_whole),
        cmocka_unit_test(test_a_member_short_of_space_is_known),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
