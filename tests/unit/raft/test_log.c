/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_log.c - raft/log.c: the in-memory log window.
 */
#include "raft/internal.h"
#include "unit/raft/cluster.h"

static void append_terms(struct raft__log *log, const raft_term *terms,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct raft_buf b = {"data", 4};

        assert_int_equal(raft__log_append(log, terms[i], RAFT_ENTRY_NORMAL, &b),
                         0);
    }
}

static void test_log_append_assigns_indexes_and_copies(void **state)
{
    struct raft__log log;
    char data[4] = "abcd";
    struct raft_buf b = {data, 4};
    raft_term t = 0;

    (void)state;
    raft__log_init(&log, 0, 0);
    assert_int_equal(raft__log_last(&log), 0);
    assert_int_equal(raft__log_last_term(&log), 0);
    assert_true(raft__log_term(&log, 0, &t));
    assert_int_equal(raft__log_append(&log, 1, RAFT_ENTRY_NORMAL, &b), 0);
    data[0] = 'z';
    assert_int_equal(raft__log_last(&log), 1);
    assert_memory_equal(raft__log_get(&log, 1)->data.base, "abcd", 4);
    assert_int_equal(raft__log_get(&log, 1)->index, 1);
    assert_null(raft__log_get(&log, 2));
    assert_null(raft__log_get(&log, 0));
    assert_false(raft__log_term(&log, 2, &t));
    raft__log_close(&log);
}

static void test_log_truncate_then_append_reuses_index(void **state)
{
    struct raft__log log;
    raft_term terms[] = {1, 1, 2, 2};
    raft_term t = 0;

    (void)state;
    raft__log_init(&log, 0, 0);
    append_terms(&log, terms, 4);
    log.persisted = 4;
    raft__log_truncate(&log, 3);
    assert_int_equal(raft__log_last(&log), 2);
    assert_int_equal(log.persisted, 2);
    assert_int_equal(log.truncate_from, 3);
    raft__log_truncate(&log, 5); /* beyond the end: nothing */
    assert_int_equal(raft__log_last(&log), 2);
    append_terms(&log, (raft_term[]){3}, 1);
    assert_int_equal(raft__log_last(&log), 3);
    assert_true(raft__log_term(&log, 3, &t));
    assert_int_equal(t, 3);
    raft__log_close(&log);
}

static void test_log_compact_keeps_term_at_edge(void **state)
{
    struct raft__log log;
    raft_term terms[] = {1, 1, 2, 2, 3};
    raft_term t = 0;

    (void)state;
    raft__log_init(&log, 0, 0);
    append_terms(&log, terms, 5);
    log.persisted = 5;
    raft__log_compact(&log, 3);
    assert_int_equal(log.offset, 3);
    assert_null(raft__log_get(&log, 3));
    assert_true(raft__log_term(&log, 3, &t));
    assert_int_equal(t, 2);
    assert_false(raft__log_term(&log, 2, &t));
    assert_int_equal(raft__log_get(&log, 4)->term, 2);
    assert_int_equal(raft__log_last(&log), 5);
    raft__log_reset(&log, 10, 4);
    assert_int_equal(raft__log_last(&log), 10);
    assert_int_equal(raft__log_last_term(&log), 4);
    assert_int_equal(log.persisted, 10);
    raft__log_close(&log);
}

static void test_log_conflict_by_term_skips_terms(void **state)
{
    struct raft__log log;
    raft_term terms[] = {1, 1, 1, 4, 4, 5, 5};

    (void)state;
    raft__log_init(&log, 0, 0);
    append_terms(&log, terms, 7);
    assert_int_equal(raft__log_conflict_by_term(&log, 7, 5), 7);
    assert_int_equal(raft__log_conflict_by_term(&log, 7, 4), 5);
    assert_int_equal(raft__log_conflict_by_term(&log, 7, 3), 3);
    assert_int_equal(raft__log_conflict_by_term(&log, 100, 2), 3);
    assert_int_equal(raft__log_conflict_by_term(&log, 7, 0), 0);
    raft__log_compact(&log, 4);
    /* Below the window the answer points under it (snapshot needed). */
    assert_int_equal(raft__log_conflict_by_term(&log, 7, 3), 3);
    raft__log_close(&log);
}

static void test_log_up_to_date_compares_term_then_index(void **state)
{
    struct raft__log log;
    raft_term terms[] = {1, 2, 2};

    (void)state;
    raft__log_init(&log, 0, 0);
    append_terms(&log, terms, 3);
    assert_true(raft__log_up_to_date(&log, 1, 3));
    assert_true(raft__log_up_to_date(&log, 3, 2));
    assert_true(raft__log_up_to_date(&log, 4, 2));
    assert_false(raft__log_up_to_date(&log, 2, 2));
    assert_false(raft__log_up_to_date(&log, 9, 1));
    raft__log_close(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_append_assigns_indexes_and_copies),
        cmocka_unit_test(test_log_truncate_then_append_reuses_index),
        cmocka_unit_test(test_log_compact_keeps_term_at_edge),
        cmocka_unit_test(test_log_conflict_by_term_skips_terms),
        cmocka_unit_test(test_log_up_to_date_compares_term_then_index),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
