/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_admin.c - admin command parsing and the exact reply
 * bytes of gearmand 1.1.20 (GEARMAND.md section 2), mixed LF / CRLF
 * endings included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "node/admin.h"

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);

    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static struct gr_buf gr_buf_of(const char *s)
{
    struct gr_buf b = {(uint8_t *)(uintptr_t)s, strlen(s)};

    return b;
}

static void parse(const char *line, struct admin_req *out, char *buf,
                  size_t cap)
{
    snprintf(buf, cap, "%s", line);
    admin_parse(buf, out);
}

static void test_commands_ignore_case_and_extra_words(void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
    parse("STATUS", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_STATUS);
    parse("status extra", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_STATUS);
    parse("workers   ", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_WORKERS);
    parse("prioritystatus", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_PRIORITYSTATUS);
    parse("Version", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_VERSION);
    parse("getpid", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_GETPID);
    parse("verbose", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_VERBOSE);
    parse("shutdown", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_SHUTDOWN);
    parse("shutdown graceful", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_SHUTDOWN_GRACEFUL);
}

static void test_leading_space_gives_an_empty_command_word(void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
    parse("  status", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_UNKNOWN);
    assert_string_equal(r.word, "");
    parse("", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_UNKNOWN);
    assert_string_equal(r.word, "");
    parse("foo bar", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_UNKNOWN);
    assert_string_equal(r.word, "foo");
}

static void test_show_variants(void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
    parse("show", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_UNKNOWN);
    assert_string_equal(r.word, "show");
    parse("show  jobs", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_SHOW_JOBS);
    parse("show unique jobs", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_SHOW_UNIQUE_JOBS);
    parse("show jobs extra", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_SHOW_BAD);
    parse("show unique", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_SHOW_BAD);
}

static void test_cancel_create_drop_arguments(void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
    parse("cancel job H:vm:1", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_CANCEL_JOB);
    assert_string_equal(r.arg, "H:vm:1");
    parse("cancel job", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_UNKNOWN);
    assert_string_equal(r.word, "cancel");
    parse("cancel foo", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_UNKNOWN);
    parse("create function f1", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_CREATE_FUNCTION);
    assert_string_equal(r.arg, "f1");
    parse("create foo", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_INCOMPLETE);
    assert_string_equal(r.word, "create");
    parse("drop function f1", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_DROP_FUNCTION);
    parse("drop function", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_INCOMPLETE);
    assert_string_equal(r.word, "drop");
}

static void test_maxqueue_forms(void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
    parse("maxqueue", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_INCOMPLETE);
    assert_string_equal(r.word, "maxqueue");
    parse("maxqueue f", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_MAXQUEUE);
    assert_int_equal(r.n_limits, 0);
    assert_int_equal(r.limits[0], 0);
    parse("maxqueue f 7", &r, buf, sizeof(buf));
    assert_int_equal(r.n_limits, 1);
    assert_int_equal(r.limits[0], 7);
    assert_int_equal(r.limits[1], 7);
    assert_int_equal(r.limits[2], 7);
    parse("maxqueue f -5", &r, buf, sizeof(buf));
    assert_int_equal(r.limits[1], 0);
    parse("maxqueue f 1 2 3", &r, buf, sizeof(buf));
    assert_int_equal(r.n_limits, 3);
    assert_int_equal(r.limits[0], 1);
    assert_int_equal(r.limits[1], 2);
    assert_int_equal(r.limits[2], 3);
}

static void test_reply_bytes_and_line_endings(void **state)
{
    struct evbuffer *b = evbuffer_new();
    struct gr_buf funcs[2] = {gr_buf_of("fm"), gr_buf_of("fa")};
    uint64_t q[3] = {1, 2, 3};
    char *s;

    (void)state;
    admin_format_ok(b);
    admin_format_ok_value(b, "1.1.20");
    admin_format_err(b, "UNKNOWN_JOB");
    admin_format_unknown(b, "foo");
    admin_format_incomplete(b, "maxqueue");
    admin_format_status_line(b, (const uint8_t *)"f1", 2, 3, 1, 2);
    admin_format_prio_line(b, (const uint8_t *)"f1", 2, q, 4);
    admin_format_worker_line(b, 17, "127.0.0.1", "", funcs, 2);
    admin_format_worker_line(b, 18, "127.0.0.1", "my id", funcs, 0);
    admin_format_job_line(b, (const uint8_t *)"H:vm:1", 6, 2, false, true);
    admin_format_unique_line(b, (const uint8_t *)"", 0);
    admin_format_end(b);
    s = drain(b);
    assert_string_equal(
        s, "OK\r\n"
           "OK 1.1.20\n"
           "ERR UNKNOWN_JOB\r\n"
           "ERR UNKNOWN_COMMAND Unknown+server+commandfoo\r\n"
           "ERR INVALID_ARGUMENTS "
           "An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue"
           "\r\n"
           "f1\t3\t1\t2\n"
           "f1\t1\t2\t3\t4\n"
           "17 127.0.0.1 - : fm fa\n"
           "18 127.0.0.1 my id :\n"
           "H:vm:1\t2\t0\t1\n"
           "\n"
           ".\n");
    free(s);
    evbuffer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_ignore_case_and_extra_words),
        cmocka_unit_test(test_leading_space_gives_an_empty_command_word),
        cmocka_unit_test(test_show_variants),
        cmocka_unit_test(test_cancel_create_drop_arguments),
        cmocka_unit_test(test_maxqueue_forms),
        cmocka_unit_test(test_reply_bytes_and_line_endings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
