/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_admin.c - admin command parsing and the exact reply
 * bytes of gearmand 1.1.20 (docs/protocol.md, "Admin lines"), mixed LF /
 * CRLF endings included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "node/gearman/admin.h"

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);

    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static struct store_buf buf_of(const char *s)
{
    struct store_buf b = {(const uint8_t *)s, strlen(s)};

    return b;
}

static void parse(const char *line, struct admin_req *out, char *buf,
                  size_t cap)
{
    snprintf(buf, cap, "%s", line);
    admin_parse(buf, out);
}

/* A line, the command it parses to, and (when not NULL) the command word
 * and argument the parser must report. */
struct parse_case {
    const char *line;
    enum admin_cmd cmd;
    const char *word;
    const char *arg;
};

static const struct parse_case cases[] = {
    /* case is ignored, and so are extra words */
    {"STATUS", ADMIN_STATUS, NULL, NULL},
    {"status extra", ADMIN_STATUS, NULL, NULL},
    {"workers   ", ADMIN_WORKERS, NULL, NULL},
    {"prioritystatus", ADMIN_PRIORITYSTATUS, NULL, NULL},
    {"Version", ADMIN_VERSION, NULL, NULL},
    {"getpid", ADMIN_GETPID, NULL, NULL},
    {"verbose", ADMIN_VERBOSE, NULL, NULL},
    {"shutdown", ADMIN_SHUTDOWN, NULL, NULL},
    {"shutdown graceful", ADMIN_SHUTDOWN_GRACEFUL, NULL, NULL},
    /* a leading space gives an empty command word */
    {"  status", ADMIN_UNKNOWN, "", NULL},
    {"", ADMIN_UNKNOWN, "", NULL},
    {"foo bar", ADMIN_UNKNOWN, "foo", NULL},
    /* show */
    {"show", ADMIN_UNKNOWN, "show", NULL},
    {"show  jobs", ADMIN_SHOW_JOBS, NULL, NULL},
    {"show unique jobs", ADMIN_SHOW_UNIQUE_JOBS, NULL, NULL},
    {"show jobs extra", ADMIN_SHOW_BAD, NULL, NULL},
    {"show unique", ADMIN_SHOW_BAD, NULL, NULL},
    /* cancel, create, drop and their arguments */
    {"cancel job H:vm:1", ADMIN_CANCEL_JOB, NULL, "H:vm:1"},
    {"cancel job", ADMIN_UNKNOWN, "cancel", NULL},
    {"cancel foo", ADMIN_UNKNOWN, NULL, NULL},
    {"create function f1", ADMIN_CREATE_FUNCTION, NULL, "f1"},
    {"create foo", ADMIN_INCOMPLETE, "create", NULL},
    {"drop function f1", ADMIN_DROP_FUNCTION, NULL, "f1"},
    {"drop function", ADMIN_INCOMPLETE, "drop", NULL},
    {"maxqueue", ADMIN_INCOMPLETE, "maxqueue", NULL},
};

static void test_command_lines(void **state)
{
    struct admin_req r;
    char buf[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *c = &cases[i];

        parse(c->line, &r, buf, sizeof(buf));
        if (r.cmd != c->cmd) {
            fail_msg("\"%s\": command %d, expected %d", c->line, (int)r.cmd,
                     (int)c->cmd);
        }
        if (c->word != NULL) {
            assert_string_equal(r.word, c->word);
        }
        if (c->arg != NULL) {
            assert_string_equal(r.arg, c->arg);
        }
    }
}

static void test_maxqueue_forms(void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
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
    struct store_buf funcs[2] = {buf_of("fm"), buf_of("fa")};
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
        cmocka_unit_test(test_command_lines),
        cmocka_unit_test(test_maxqueue_forms),
        cmocka_unit_test(test_reply_bytes_and_line_endings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
