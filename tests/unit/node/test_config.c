/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_config.c - gearraftd's flags: defaults, gearmand's
 * own flags, ours, the cluster flags alone and together, the --config
 * file, and the usage errors bad ones give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/cluster/members.h"
#include "node/config.h"

static char last_err[512];

static int parse(struct gr_config *c, int argc, const char **argv)
{
    gr_config_defaults(c);
    last_err[0] = '\0';
    return gr_config_parse(c, argc, (char **)(uintptr_t)argv, last_err,
                           sizeof(last_err));
}

/* Parses the NULL-terminated flags after the program name. */
static int parse_v(struct gr_config *c, ...)
{
    const char *argv[64] = {"gearraftd"};
    const char *a;
    int argc = 1;
    va_list ap;

    va_start(ap, c);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return parse(c, argc, argv);
}

#define PARSE(c, ...) parse_v((c), __VA_ARGS__, (const char *)NULL)

/* A usage error whose message holds `part`. */
static void assert_usage(int rv, const char *part)
{
    assert_int_equal(rv, GR_EUSAGE);
    if (strstr(last_err, part) == NULL) {
        fail_msg("message '%s' lacks '%s'", last_err, part);
    }
}

static void test_defaults_are_the_embedded_single_node(void **state)
{
    struct gr_config c;
    const char *argv[] = {"gearraftd", NULL};

    (void)state;
    assert_int_equal(parse(&c, 1, argv), 0);
    assert_int_equal(c.port, 4730);
    assert_string_equal(c.listen, "0.0.0.0");
    assert_string_equal(c.data_dir, "./gearraft-data");
    assert_int_equal(c.job_retries, 0);
    assert_int_equal(c.worker_wakeup, 0);
    assert_int_equal(c.backlog, 32);
    assert_true(c.max_packet_size >= 128ull * 1024 * 1024);
    assert_int_equal(c.verbose, GR_LOG_ERROR);
    assert_false(c.daemon);
    assert_false(c.exceptions);
    assert_false(c.round_robin);
    assert_int_equal(c.http_port, 0); /* no HTTP endpoint unless asked */
}

static void test_gearmand_flags_mean_the_same(void **state)
{
    struct gr_config c;
    const char *argv[] = {
        "gearraftd",    "-p",   "4731", "-L",         "127.0.0.1", "-j",   "3",
        "-l",           "none", "-P",   "/tmp/x.pid", "--verbose", "INFO", "-d",
        "--exceptions", "-b",   "64",   "-t",         "4",         "-w",   "2",
        "-R",           NULL};

    (void)state;
    assert_int_equal(parse(&c, 22, argv), 0);
    assert_true(c.round_robin);
    assert_int_equal(c.worker_wakeup, 2);
    assert_int_equal(c.port, 4731);
    assert_string_equal(c.listen, "127.0.0.1");
    assert_int_equal(c.job_retries, 3);
    assert_string_equal(c.log_file, "none");
    assert_string_equal(c.pid_file, "/tmp/x.pid");
    assert_int_equal(c.verbose, GR_LOG_INFO);
    assert_true(c.daemon);
    assert_true(c.exceptions);
    assert_int_equal(c.backlog, 64);
}

static void test_long_forms_with_equals_and_our_flags(void **state)
{
    struct gr_config c;
    const char *argv[] = {"gearraftd",
                          "--port=5000",
                          "--job-retries=2",
                          "--data-dir=/var/lib/gr",
                          "--max-packet-size=64M",
                          "--max-connections=10",
                          "--min-free-space=1G",
                          "--test-map-size=1M",
                          "--http-listen=127.0.0.1:9100",
                          NULL};

    (void)state;
    assert_int_equal(parse(&c, 9, argv), 0);
    assert_string_equal(c.http_host, "127.0.0.1");
    assert_int_equal(c.http_port, 9100);
    assert_int_equal(c.port, 5000);
    assert_int_equal(c.job_retries, 2);
    assert_string_equal(c.data_dir, "/var/lib/gr");
    assert_int_equal(c.max_packet_size, 64ull * 1024 * 1024);
    assert_int_equal(c.max_connections, 10);
    assert_int_equal(c.min_free_space, 1024ull * 1024 * 1024);
    assert_int_equal(c.map_size, 1024ull * 1024);
}

static void test_help_and_version(void **state)
{
    struct gr_config c;
    const char *h[] = {"gearraftd", "--help", NULL};
    const char *v[] = {"gearraftd", "-V", NULL};

    (void)state;
    assert_int_equal(parse(&c, 2, h), 0);
    assert_true(c.show_help);
    assert_int_equal(parse(&c, 2, v), 0);
    assert_true(c.show_version);
}

static void test_bad_flags_are_usage_errors(void **state)
{
    struct gr_config c;
    const char *cases[][3] = {
        {"gearraftd", "--port", "70000"},
        {"gearraftd", "--port", "12x"},
        {"gearraftd", "-p", "-1"},
        {"gearraftd", "--job-retries", "256"},
        {"gearraftd", "--worker-wakeup", "x"},
        {"gearraftd", "-w", "-1"},
        {"gearraftd", "--verbose", "LOUD"},
        {"gearraftd", "--max-packet-size", "5G"},
        {"gearraftd", "--max-packet-size", "0"},
        {"gearraftd", "--max-connections", "0"},
        {"gearraftd", "--bogus", "1"},
        {"gearraftd", "extra", "args"},
        {"gearraftd", "--min-free-space", "10Q"},
        {"gearraftd", "--http-listen", "9100"},
        {"gearraftd", "--http-listen", "host:0"},
    };
    const char *missing[] = {"gearraftd", "--port", NULL};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[4] = {cases[i][0], cases[i][1], cases[i][2], NULL};

        assert_int_equal(parse(&c, 3, argv), GR_EUSAGE);
    }
    assert_int_equal(parse(&c, 2, missing), GR_EUSAGE);
}

static void test_sizes(void **state)
{
    uint64_t v;

    (void)state;
    assert_int_equal(gr_config_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(gr_config_parse_size("4K", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(gr_config_parse_size("2MB", &v), 0);
    assert_int_equal(v, 2u * 1024 * 1024);
    assert_int_equal(gr_config_parse_size("", &v), GR_EINVAL);
    assert_int_equal(gr_config_parse_size("-1", &v), GR_EINVAL);
    assert_int_equal(gr_config_parse_size("1KK", &v), GR_EINVAL);
}

/* ---------------------------------------------------------------------
 * The cluster flags.
 */

static void test_no_cluster_flag_is_the_one_node_default(void **state)
{
    struct gr_config c;

    (void)state;
    assert_int_equal(PARSE(&c, "--port", "4731"), 0);
    assert_false(c.cluster.member);
    assert_int_equal(c.cluster.self_id, GR_ONE_NODE_ID);
    assert_int_equal(c.cluster.n_members, 0);
    assert_string_equal(c.cluster.cluster_name, "");
    assert_int_equal(c.cluster.election_ms, 300);
    assert_int_equal(c.cluster.heartbeat_ms, 50);
    assert_int_equal(c.cluster.node_gone_ms, 10000);
    /* A one-node server may name its handles' prefix, and set timeouts
     * it does not use. */
    assert_int_equal(
        PARSE(&c, "--cluster-name", "jobs.prod", "--election-timeout", "2000"),
        0);
    assert_false(c.cluster.member);
    assert_string_equal(c.cluster.cluster_name, "jobs.prod");
}

static void test_a_founding_member_gets_every_value(void **state)
{
    struct gr_config c;
    const struct gr_cluster_config *k = &c.cluster;

    (void)state;
    assert_int_equal(PARSE(&c, "--node-id", "node-b", "--peer-listen",
                           "0.0.0.0:7001", "--initial-cluster",
                           "node-a=10.0.0.1:7001,node-b=host-b.example:7002,"
                           "node_c=[fd00::3]:7003",
                           "--cluster-name", "jobs", "--election-timeout",
                           "500", "--heartbeat-interval", "50",
                           "--node-gone-timeout", "1500"),
                     0);
    assert_true(k->member);
    assert_string_equal(k->self_name, "node-b");
    assert_int_equal(k->self_id, gr_member_id("node-b"));
    assert_string_equal(k->peer_host, "0.0.0.0");
    assert_int_equal(k->peer_port, 7001);
    assert_int_equal(k->n_members, 3);
    assert_string_equal(k->members[0].name, "node-a");
    assert_string_equal(k->members[0].host, "10.0.0.1");
    assert_string_equal(k->members[1].host, "host-b.example");
    assert_int_equal(k->members[1].port, 7002);
    assert_int_equal(k->members[1].id, k->self_id);
    assert_string_equal(k->members[2].host, "fd00::3");
    assert_int_equal(k->members[2].id, gr_member_id("node_c"));
    assert_string_equal(k->cluster_name, "jobs");
    assert_int_equal(k->election_ms, 500);
    assert_int_equal(k->heartbeat_ms, 50);
    assert_int_equal(k->node_gone_ms, 1500);
}

static void test_a_joining_node_lists_the_members_and_itself(void **state)
{
    struct gr_config c;
    const struct gr_cluster_config *k = &c.cluster;

    (void)state;
    /* The list need not name the node: it is added at --peer-listen. */
    assert_int_equal(PARSE(&c, "--node-id", "n4", "--peer-listen",
                           "10.0.0.4:7004", "--join",
                           "n1=10.0.0.1:7001,n2=10.0.0.2:7002"),
                     0);
    assert_true(k->member);
    assert_true(k->joining);
    assert_int_equal(k->n_members, 3);
    assert_string_equal(k->members[2].name, "n4");
    assert_string_equal(k->members[2].host, "10.0.0.4");
    assert_int_equal(k->members[2].port, 7004);
    assert_int_equal(k->members[2].id, k->self_id);
    /* Naming it is fine when the address agrees, refused when not. */
    assert_int_equal(PARSE(&c, "--node-id", "n4", "--peer-listen",
                           "10.0.0.4:7004", "--join",
                           "n1=10.0.0.1:7001,n4=10.0.0.4:7004"),
                     0);
    assert_int_equal(k->n_members, 2);
    assert_int_equal(PARSE(&c, "--node-id", "n4", "--peer-listen",
                           "10.0.0.4:7004", "--join",
                           "n1=10.0.0.1:7001,n4=10.0.0.4:7005"),
                     GR_EUSAGE);
    /* Founding and joining exclude each other; --join needs a name. */
    assert_int_equal(PARSE(&c, "--node-id", "n4", "--peer-listen",
                           "10.0.0.4:7004", "--join", "n1=10.0.0.1:7001",
                           "--initial-cluster", "n4=10.0.0.4:7004"),
                     GR_EUSAGE);
    assert_int_equal(PARSE(&c, "--join", "n1=10.0.0.1:7001"), GR_EUSAGE);
}

static void test_a_member_restarts_without_initial_cluster(void **state)
{
    struct gr_config c;

    (void)state;
    assert_int_equal(PARSE(&c, "--node-id", "n1", "--peer-listen", "[::]:7000"),
                     0);
    assert_true(c.cluster.member);
    assert_int_equal(c.cluster.n_members, 0);
    assert_string_equal(c.cluster.peer_host, "::");
    assert_int_equal(c.cluster.peer_port, 7000);
}

static void test_timeouts_at_their_bounds(void **state)
{
    struct gr_config c;

    (void)state;
    assert_int_equal(PARSE(&c, "--heartbeat-interval", "149"), 0);
    assert_int_equal(
        PARSE(&c, "--election-timeout", "1001", "--heartbeat-interval", "500"),
        0); /* 500 < 1001 / 2 */
    assert_int_equal(PARSE(&c, "--node-gone-timeout", "900"), 0);
    assert_int_equal(PARSE(&c, "--election-timeout", "10",
                           "--heartbeat-interval", "4", "--node-gone-timeout",
                           "30"),
                     0);
}

static void test_bad_cluster_values_are_usage_errors(void **state)
{
    struct gr_config c;
    const char *cases[][3] = {
        {"--node-id", "", "--node-id"},
        {"--node-id", "a b", "--node-id"},
        {"--node-id", "node/1", "--node-id"},
        {"--node-id", "abcdefghijklmnopqrstuvwxyz0123456", "--node-id"},
        {"--node-id", "caf\xc3\xa9", "--node-id"},
        {"--peer-listen", "host", "port is required"},
        {"--peer-listen", "host:", "port"},
        {"--peer-listen", "host:0", "port"},
        {"--peer-listen", "host:65536", "port"},
        {"--peer-listen", "host:7x", "port"},
        {"--peer-listen", "host:+70", "port"},
        {"--peer-listen", ":7000", "no host"},
        {"--peer-listen", "::1:7000", "brackets"},
        {"--peer-listen", "[::1]7000", "[IPV6]:PORT"},
        {"--peer-listen", "[::1", "[IPV6]:PORT"},
        {"--peer-listen", "[zz::1]:7000", "IPv6"},
        {"--peer-listen", "[]:7000", "no host"},
        {"--peer-listen", "-bad:7000", "host name"},
        {"--peer-listen", "bad-:7000", "host name"},
        {"--peer-listen", "a..b:7000", "host name"},
        {"--peer-listen", "a.b.:7000", "host name"},
        {"--peer-listen", "h st:7000", "host name"},
        {"--peer-listen", "1.2.3:7000", "IPv4"},
        {"--peer-listen", "256.1.1.1:7000", "IPv4"},
        {"--initial-cluster", "", "empty member"},
        {"--initial-cluster", "a", "NAME=HOST:PORT"},
        {"--initial-cluster", "a=", "expected HOST:PORT"},
        {"--initial-cluster", "a=h", "port"},
        {"--initial-cluster", "=h:1", "member name"},
        {"--initial-cluster", "a b=h:1", "member name"},
        {"--initial-cluster", "a=h:1,", "empty member"},
        {"--initial-cluster", ",a=h:1", "empty member"},
        {"--initial-cluster", "a=h:1,,b=h:2", "empty member"},
        {"--initial-cluster", "a=h:1,a=g:2", "named twice"},
        {"--cluster-name", "a:b", "--cluster-name"},
        {"--cluster-name", "", "--cluster-name"},
        {"--cluster-name", "abcdefghijklmnopqrstuvwxyz0123456",
         "--cluster-name"},
        {"--election-timeout", "9", "--election-timeout"},
        {"--election-timeout", "60001", "--election-timeout"},
        {"--election-timeout", "1s", "--election-timeout"},
        {"--heartbeat-interval", "0", "--heartbeat-interval"},
        {"--heartbeat-interval", "-5", "--heartbeat-interval"},
        {"--node-gone-timeout", "0", "--node-gone-timeout"},
        {"--node-gone-timeout", "86400001", "--node-gone-timeout"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[] = {"gearraftd", cases[i][0], cases[i][1], NULL};

        assert_usage(parse(&c, 3, argv), cases[i][2]);
    }
}

static void test_sixteen_members_at_most(void **state)
{
    struct gr_config c;
    char list[512];
    size_t used = 0;
    int i;

    (void)state;
    for (i = 1; i <= 16; i++) {
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%sn%d=h:%d",
                                 i > 1 ? "," : "", i, 7000 + i);
    }
    assert_int_equal(PARSE(&c, "--node-id", "n16", "--peer-listen", "h:7016",
                           "--initial-cluster", list),
                     0);
    assert_int_equal(c.cluster.n_members, 16);
    snprintf(list + used, sizeof(list) - used, ",n17=h:7017");
    assert_usage(PARSE(&c, "--node-id", "n16", "--peer-listen", "h:7016",
                       "--initial-cluster", list),
                 "more than 16 members");
}

static void test_cluster_flags_that_do_not_go_together(void **state)
{
    struct gr_config c;

    (void)state;
    assert_usage(PARSE(&c, "--node-id", "a"), "--node-id needs --peer-listen");
    assert_usage(PARSE(&c, "--peer-listen", "h:7000"),
                 "--peer-listen needs --node-id");
    assert_usage(PARSE(&c, "--initial-cluster", "a=h:7000"),
                 "--initial-cluster needs --node-id and --peer-listen");
    assert_usage(PARSE(&c, "--node-id", "a", "--initial-cluster", "a=h:7000"),
                 "--initial-cluster needs");
    assert_usage(
        PARSE(&c, "--peer-listen", "h:7000", "--initial-cluster", "a=h:7000"),
        "--initial-cluster needs");
    assert_usage(PARSE(&c, "--node-id", "d", "--peer-listen", "h:7000",
                       "--initial-cluster", "a=h:7000,b=h:7001"),
                 "--node-id d is not in --initial-cluster");
    assert_usage(PARSE(&c, "--heartbeat-interval", "150"),
                 "--heartbeat-interval 150 must be below half the "
                 "--election-timeout 300");
    assert_usage(
        PARSE(&c, "--election-timeout", "200", "--heartbeat-interval", "100"),
        "below half");
    assert_usage(PARSE(&c, "--node-gone-timeout", "899"),
                 "--node-gone-timeout 899 must be at least 3 times the "
                 "--election-timeout 300");
    /* A longer election timeout asks for a longer node-gone timeout. */
    assert_usage(PARSE(&c, "--election-timeout", "4000"), "at least 3 times");
    assert_int_equal(
        PARSE(&c, "--election-timeout", "4000", "--node-gone-timeout", "12000"),
        0);
}

/* ---------------------------------------------------------------------
 * The --config file.
 */

struct conf_file {
    char path[64];
};

static void conf_write(struct conf_file *f, const char *text)
{
    FILE *fp;
    int fd;

    snprintf(f->path, sizeof(f->path), "/tmp/gr-config-XXXXXX");
    fd = mkstemp(f->path);
    assert_true(fd != -1);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_config_file_sets_flags_and_argv_wins(void **state)
{
    struct conf_file f;
    struct gr_config c;

    (void)state;
    conf_write(&f, "# gearraftd.conf\n"
                   "\n"
                   "port = 5000\n"
                   "  listen=127.0.0.1  \n"
                   "verbose = INFO # a comment after a blank\n"
                   "round-robin\n"
                   "exceptions = true\n"
                   "daemon = false\n"
                   "log-file = /var/log/gr#1.log\n"
                   "node-id = n1\r\n"
                   "peer-listen = 127.0.0.1:7000\n"
                   "initial-cluster = n1=127.0.0.1:7000,n2=127.0.0.2:7000\n"
                   "election-timeout = 300\n");
    assert_int_equal(PARSE(&c, "--port", "6000", "--config", f.path,
                           "--election-timeout", "400"),
                     0);
    assert_int_equal(c.port, 6000); /* the command line wins, wherever */
    assert_string_equal(c.listen, "127.0.0.1");
    assert_int_equal(c.verbose, GR_LOG_INFO);
    assert_true(c.round_robin);
    assert_true(c.exceptions);
    assert_false(c.daemon);
    assert_string_equal(c.log_file, "/var/log/gr#1.log");
    assert_true(c.cluster.member);
    assert_string_equal(c.cluster.self_name, "n1");
    assert_int_equal(c.cluster.n_members, 2);
    assert_int_equal(c.cluster.election_ms, 400);
    assert_string_equal(c.config_file, f.path);
    /* The command line completes what the file starts. */
    unlink(f.path);
    conf_write(&f, "node-id = n2\n");
    assert_int_equal(PARSE(&c, "--config", f.path, "--peer-listen", "h:7000"),
                     0);
    assert_true(c.cluster.member);
    assert_string_equal(c.cluster.self_name, "n2");
    unlink(f.path);
}

/* A line of the file that is wrong: the message names file and line. */
static void assert_bad_line(const char *text, unsigned line, const char *part)
{
    struct conf_file f;
    struct gr_config c;
    char where[96];

    conf_write(&f, text);
    snprintf(where, sizeof(where), "%s:%u: ", f.path, line);
    assert_usage(PARSE(&c, "--config", f.path), where);
    assert_usage(GR_EUSAGE, part);
    unlink(f.path);
}

static void test_config_file_errors_name_file_and_line(void **state)
{
    char *long_line;
    struct conf_file f;
    struct gr_config c;

    (void)state;
    assert_bad_line("port = 5000\nbogus = 1\n", 2, "unknown flag 'bogus'");
    assert_bad_line("# x\n\nport = 70000\n", 3,
                    "invalid value '70000' for --port");
    assert_bad_line("port\n", 1, "'port' needs a value");
    assert_bad_line("port =   # nothing\n", 1, "'port' needs a value");
    assert_bad_line("daemon = maybe\n", 1, "'daemon' takes no value");
    assert_bad_line("config = /etc/other.conf\n", 1,
                    "'config' cannot be set in a config file");
    assert_bad_line("help\n", 1, "cannot be set");
    assert_bad_line("-p = 5000\n", 1, "unknown flag '-p'");
    assert_bad_line("--port = 5000\n", 1, "unknown flag '--port'");
    assert_bad_line("= 5000\n", 1, "unknown flag ''");
    assert_bad_line("node-id = a\npeer-listen = h\n", 2, "for --peer-listen");
    assert_bad_line("initial-cluster = a=h:1,a=h:2\n", 1, "named twice");

    long_line = malloc(GR_CONFIG_LINE_MAX + 16);
    assert_non_null(long_line);
    memset(long_line, 'x', GR_CONFIG_LINE_MAX + 8);
    memcpy(long_line, "listen = ", 9);
    memcpy(long_line + GR_CONFIG_LINE_MAX + 8, "\n", 2);
    assert_bad_line(long_line, 1, "line longer than");
    free(long_line);

    /* Rules between flags are checked once every source is read. */
    conf_write(&f, "node-id = a\n");
    assert_usage(PARSE(&c, "--config", f.path),
                 "--node-id needs --peer-listen");
    assert_usage(PARSE(&c, "--config", f.path, "--config", f.path),
                 "--config given twice");
    unlink(f.path);
    assert_usage(PARSE(&c, "--config", f.path), f.path);
    assert_usage(PARSE(&c, "--config", "/nonexistent/gr.conf"), "No such file");
    assert_usage(PARSE(&c, "--config"), "needs a value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_embedded_single_node),
        cmocka_unit_test(test_gearmand_flags_mean_the_same),
        cmocka_unit_test(test_long_forms_with_equals_and_our_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_bad_flags_are_usage_errors),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_no_cluster_flag_is_the_one_node_default),
        cmocka_unit_test(test_a_founding_member_gets_every_value),
        cmocka_unit_test(test_a_member_restarts_without_initial_cluster),
        cmocka_unit_test(test_timeouts_at_their_bounds),
        cmocka_unit_test(test_bad_cluster_values_are_usage_errors),
        cmocka_unit_test(test_sixteen_members_at_most),
        cmocka_unit_test(test_a_joining_node_lists_the_members_and_itself),
        cmocka_unit_test(test_cluster_flags_that_do_not_go_together),
        cmocka_unit_test(test_config_file_sets_flags_and_argv_wins),
        cmocka_unit_test(test_config_file_errors_name_file_and_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
