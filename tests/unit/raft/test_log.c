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

/* raft.h, "Memory": entries persisted and handed out leave memory beyond
 * a tail of window_entries, and of window_bytes; a restart from a long
 * log keeps no more. */
static void test_log_window_keeps_a_bounded_tail(void **state)
{
    struct cl *c = cl_new(1, 1);
    struct raft_memory mem;
    raft_id l;

    (void)state;
    c->nodes[1].cfg.window_entries = 4;
    c->nodes[1].cfg.window_bytes = 1000;
    l = cl_start_leader(c);
    for (uint64_t v = 1; v <= 50; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        raft_memory(c->nodes[l].r, &mem);
        assert_true(mem.n_entries <= 4 + 1); /* the tail, the new one */
        cl_run(c, 1);
    }
    raft_memory(c->nodes[l].r, &mem);
    assert_int_equal(mem.n_entries, 4);
    assert_int_equal(mem.entry_bytes, 4 * sizeof(uint64_t));
    assert_int_equal(raft_first_index(c->nodes[l].r), 1); /* host keeps all */
    /* By bytes: 8-byte entries, 20 bytes of tail hold two. */
    cl_crash(c, l);
    c->nodes[l].cfg.window_entries = 100;
    c->nodes[l].cfg.window_bytes = 20;
    cl_restart(c, l);
    raft_memory(c->nodes[l].r, &mem);
    assert_int_equal(mem.n_entries, 2);
    assert_int_equal(raft_last_index(c->nodes[l].r), 51);
    assert_int_equal(raft_term_at(c->nodes[l].r, 48), 0); /* left memory */
    l = cl_run_until_leader(c, 1000);
    assert_int_equal(cl_propose(c, l, 51, NULL), 0);
    cl_run(c, 5);
    assert_int_equal(c->nodes[l].st.n_sm, 51);
    cl_free(c);
}

/* A CONF entry that leaves the window still decides the configuration
 * in effect (thesis 4.1: the latest in the log), also after a restart. */
static void test_log_window_remembers_the_configuration_it_drops(void **state)
{
    struct cl *c = cl_new(2, 1);
    raft_index conf_index = 0;
    raft_id l;

    (void)state;
    c->nodes[1].cfg.window_entries = 0;
    l = cl_start_leader(c);
    assert_int_equal(l, 1);
    assert_int_equal(raft_add_learner(c->nodes[1].r, 2, &conf_index), 0);
    cl_flush(c, 1);
    for (uint64_t v = 1; v <= 10; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        cl_run(c, 1);
    }
    assert_int_equal(raft_term_at(c->nodes[1].r, conf_index), 0);
    assert_int_equal(raft_conf_current(c->nodes[1].r)->n_members, 2);
    assert_int_equal(raft_conf_index(c->nodes[1].r), conf_index);
    cl_crash(c, 1);
    cl_restart(c, 1);
    assert_int_equal(raft_conf_current(c->nodes[1].r)->n_members, 2);
    assert_int_equal(raft_conf_index(c->nodes[1].r), conf_index);
    cl_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_append_assigns_indexes_and_copies),
        cmocka_unit_test(test_log_truncate_then_append_reuses_index),
        cmocka_unit_test(test_log_compact_keeps_term_at_edge),
        cmocka_unit_test(test_log_conflict_by_term_skips_terms),
        cmocka_unit_test(test_log_up_to_date_compares_term_then_index),
        cmocka_unit_test(test_log_window_keeps_a_bounded_tail),
        cmocka_unit_test(test_log_window_remembers_the_configuration_it_drops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
