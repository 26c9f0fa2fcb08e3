/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_numset.c - the job-number set of node/numset.h,
 * checked against a plain array through many adds and deletes, so the
 * backward-shift deletion is exercised across wrapped runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "node/numset.h"

static void test_add_has_del(void **state)
{
    struct gr_numset set = {0};

    (void)state;
    assert_false(gr_numset_has(&set, 5));
    gr_numset_del(&set, 5); /* absent, empty: nothing happens */
    assert_int_equal(gr_numset_add(&set, 5), 0);
    assert_int_equal(gr_numset_add(&set, 5), 0); /* a set: once */
    assert_true(gr_numset_has(&set, 5));
    assert_int_equal(set.n, 1);
    assert_false(gr_numset_has(&set, 0));
    gr_numset_del(&set, 5);
    assert_false(gr_numset_has(&set, 5));
    assert_int_equal(set.n, 0);
    gr_numset_free(&set);
}

/* Random adds and deletes over a small range (many collisions, runs that
 * wrap the table's end) against a shadow array. */
static void test_matches_shadow_through_churn(void **state)
{
    enum { RANGE = 3000, STEPS = 200000 };
    struct gr_numset set = {0};
    static bool shadow[RANGE + 1];
    uint64_t x = 88172645463325252u;
    size_t n = 0;

    (void)state;
    for (int i = 0; i < STEPS; i++) {
        uint64_t num;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        num = 1 + x % RANGE;
        if ((x >> 40) % 3 != 0) {
            assert_int_equal(gr_numset_add(&set, num), 0);
            n += !shadow[num];
            shadow[num] = true;
        } else {
            gr_numset_del(&set, num);
            n -= shadow[num];
            shadow[num] = false;
        }
        if (i % 997 == 0) {
            for (uint64_t k = 1; k <= RANGE; k++) {
                assert_int_equal(gr_numset_has(&set, k), shadow[k]);
            }
        }
        assert_int_equal(set.n, n);
    }
    for (uint64_t k = 1; k <= RANGE; k++) {
        assert_int_equal(gr_numset_has(&set, k), shadow[k]);
        gr_numset_del(&set, k);
    }
    assert_int_equal(set.n, 0);
    gr_numset_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_has_del),
        cmocka_unit_test(test_matches_shadow_through_churn),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
