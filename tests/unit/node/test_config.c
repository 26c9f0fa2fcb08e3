/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_config.c - gearraftd's flags: defaults, gearmand's
 * own flags, ours, and the usage errors bad ones give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/config.h"

static int parse(struct gr_config *c, int argc, const char **argv)
{
    char err[256];

    gr_config_defaults(c);
    return gr_config_parse(c, argc, (char **)(uintptr_t)argv, err, sizeof(err));
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
                          NULL};

    (void)state;
    assert_int_equal(parse(&c, 8, argv), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_embedded_single_node),
        cmocka_unit_test(test_gearmand_flags_mean_the_same),
        cmocka_unit_test(test_long_forms_with_equals_and_our_flags),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_bad_flags_are_usage_errors),
        cmocka_unit_test(test_sizes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
