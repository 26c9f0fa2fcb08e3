/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_admin.c - admin command parsing and the exact reply
 * bytes of gearmand 1.1.20 (docs/protocol.md, "Admin lines"), mixed LF /
 * CRLF endings included, and of our own `cluster` from a made-up view of
 * raft/ as a leader, a follower, a candidate and the one-node default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "node/cluster/host.h"
#include "node/config.h"
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
    {"cluster", ADMIN_CLUSTER, NULL, NULL},
    {"CLUSTER members", ADMIN_CLUSTER, NULL, NULL},
    {"clusters", ADMIN_UNKNOWN, "clusters", NULL},
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
    /* the membership changes */
    {"add n4 10.0.0.4:4731", ADMIN_MEMBER_ADD, NULL, "n4"},
    {"ADD n4", ADMIN_INCOMPLETE, "ADD", NULL},
    {"add", ADMIN_INCOMPLETE, "add", NULL},
    {"promote n4", ADMIN_MEMBER_PROMOTE, NULL, "n4"},
    {"promote", ADMIN_INCOMPLETE, "promote", NULL},
    {"remove n3", ADMIN_MEMBER_REMOVE, NULL, "n3"},
    {"remove", ADMIN_INCOMPLETE, "remove", NULL},
    {"transfer n2", ADMIN_MEMBER_TRANSFER, NULL, "n2"},
    {"transfer", ADMIN_MEMBER_TRANSFER, "transfer", NULL},
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

static void test_add_keeps_the_address_and_transfer_may_name_none(
    void **state)
{
    struct admin_req r;
    char buf[128];

    (void)state;
    parse("add n4  [fd00::4]:4731", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_MEMBER_ADD);
    assert_string_equal(r.arg2, "[fd00::4]:4731");
    parse("transfer", &r, buf, sizeof(buf));
    assert_int_equal(r.cmd, ADMIN_MEMBER_TRANSFER);
    assert_null(r.arg);
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

/* ---------------------------------------------------------------------
 * `cluster`.
 */

/* Three members named in the table in another order than raft/'s
 * configuration lists them, so the reply's name order shows. */
static void three_members(struct gr_cluster_config *k, uint64_t self)
{
    static const char *names[3] = {"n3", "n1", "n2"};
    size_t i;

    memset(k, 0, sizeof(*k));
    k->member = true;
    k->self_id = self;
    snprintf(k->cluster_name, sizeof(k->cluster_name), "prod");
    for (i = 0; i < 3; i++) {
        k->members[i].id = 30 - 10 * i; /* n3 = 30, n1 = 20, n2 = 10 */
        snprintf(k->members[i].name, sizeof(k->members[i].name), "%s",
                 names[i]);
        snprintf(k->members[i].host, sizeof(k->members[i].host), "10.0.0.%u",
                 (unsigned)(i + 1));
        k->members[i].port = (uint16_t)(7000 + i);
    }
    k->n_members = 3;
    for (i = 0; i < 3; i++) {
        if (k->members[i].id == self) {
            snprintf(k->self_name, sizeof(k->self_name), "%s",
                     k->members[i].name);
        }
    }
}

static void view_of(struct gr_raft_view *v, int role, uint64_t leader)
{
    static const uint64_t ids[3] = {10, 20, 30};
    size_t i;

    memset(v, 0, sizeof(*v));
    v->role = role;
    v->leader_id = leader;
    v->term = 7;
    v->commit = 41;
    v->applied = 40;
    v->last_index = 42;
    v->n_members = 3;
    for (i = 0; i < 3; i++) {
        v->members[i].id = ids[i];
        v->members[i].voter = true;
        v->members[i].match = 40 + i;
    }
}

static char *cluster_reply(const struct gr_raft_view *v,
                           const struct gr_cluster_config *k, const bool *reach)
{
    struct evbuffer *b = evbuffer_new();
    char *s;

    assert_int_equal(admin_format_cluster(b, v, k, reach), 0);
    s = drain(b);
    evbuffer_free(b);
    return s;
}

/* The reply of member `self` of three_members, raft/ showing it as
 * `role` under `leader`. */
static void expect_three(uint64_t self, int role, uint64_t leader,
                         const bool *reach, const char *want)
{
    struct gr_cluster_config k;
    struct gr_raft_view v;
    char *s;

    three_members(&k, self);
    view_of(&v, role, leader);
    s = cluster_reply(&v, &k, reach);
    assert_string_equal(s, want);
    free(s);
}

static void test_cluster_as_leader_shows_match_and_links(void **state)
{
    bool reach[3] = {false, false, true}; /* n2 down, n1 self, n3 up */

    (void)state;
    expect_three(
        20, RAFT_LEADER, 20, reach,
        "self=n1 leader=n1 term=7 commit=41 applied=40 last=42 role=leader "
        "cluster=prod\n"
        "name=n1 addr=10.0.0.2:7001 role=leader match=41 reachable=self\n"
        "name=n2 addr=10.0.0.3:7002 role=follower match=40 reachable=no\n"
        "name=n3 addr=10.0.0.1:7000 role=follower match=42 reachable=yes\n"
        ".\n");
}

static void test_cluster_as_follower_hides_match(void **state)
{
    bool reach[3] = {true, true, true};

    (void)state;
    expect_three(
        10, RAFT_FOLLOWER, 30, reach,
        "self=n2 leader=n3 term=7 commit=41 applied=40 last=42 "
        "role=follower cluster=prod\n"
        "name=n1 addr=10.0.0.2:7001 role=follower match=- reachable=yes\n"
        "name=n2 addr=10.0.0.3:7002 role=follower match=- reachable=self\n"
        "name=n3 addr=10.0.0.1:7000 role=leader match=- reachable=yes\n"
        ".\n");
}

/* No leader known: "leader=-"; this node campaigns; an IPv6 peer address
 * is bracketed; a learner; and a member the table does not name comes
 * last, by its id. */
static void test_cluster_without_leader_and_strangers(void **state)
{
    struct gr_cluster_config k;
    struct gr_raft_view v;
    bool reach[4] = {false, false, false, true};
    char *s;

    (void)state;
    three_members(&k, 30);
    snprintf(k.members[2].host, sizeof(k.members[2].host), "fd00::3");
    view_of(&v, RAFT_PRE_CANDIDATE, 0);
    v.members[0].voter = false; /* n2 */
    v.members[3].id = 99;
    v.members[3].voter = true;
    v.n_members = 4;
    s = cluster_reply(&v, &k, reach);
    assert_string_equal(
        s, "self=n3 leader=- term=7 commit=41 applied=40 last=42 "
           "role=candidate cluster=prod\n"
           "name=n1 addr=10.0.0.2:7001 role=follower match=- reachable=no\n"
           "name=n2 addr=[fd00::3]:7002 role=learner match=- reachable=no\n"
           "name=n3 addr=10.0.0.1:7000 role=candidate match=- "
           "reachable=self\n"
           "name=#99 addr=- role=follower match=- reachable=yes\n"
           ".\n");
    free(s);
}

/* The one-node default: no name, no member table, no peer address. */
static void test_cluster_one_node_default_names_itself_local(void **state)
{
    struct gr_cluster_config k;
    struct gr_raft_view v;
    char *s;

    (void)state;
    memset(&k, 0, sizeof(k));
    k.self_id = GR_ONE_NODE_ID;
    snprintf(k.cluster_name, sizeof(k.cluster_name), "vm");
    memset(&v, 0, sizeof(v));
    v.role = RAFT_LEADER;
    v.leader_id = GR_ONE_NODE_ID;
    v.term = 1;
    v.commit = v.applied = v.last_index = 5;
    v.n_members = 1;
    v.members[0].id = GR_ONE_NODE_ID;
    v.members[0].voter = true;
    v.members[0].match = 5;
    s = cluster_reply(&v, &k, NULL);
    assert_string_equal(
        s, "self=local leader=local term=1 commit=5 applied=5 last=5 "
           "role=leader cluster=vm\n"
           "name=local addr=- role=leader match=5 reachable=self\n"
           ".\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_lines),
        cmocka_unit_test(test_add_keeps_the_address_and_transfer_may_name_none),
        cmocka_unit_test(test_maxqueue_forms),
        cmocka_unit_test(test_reply_bytes_and_line_endings),
        cmocka_unit_test(test_cluster_as_leader_shows_match_and_links),
        cmocka_unit_test(test_cluster_as_follower_hides_match),
        cmocka_unit_test(test_cluster_without_leader_and_strangers),
        cmocka_unit_test(test_cluster_one_node_default_names_itself_local),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
