/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_members.c - member names, their Raft ids, peer
 * addresses and the --initial-cluster list, parsed and formatted back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/cluster/members.h"

static void test_ids_are_fnv1a_of_the_name(void **state)
{
    (void)state;
    /* The published FNV-1a 64 vectors. */
    assert_true(store_fnv1a64(NULL, 0) == 0xcbf29ce484222325ull);
    assert_true(store_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(store_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
    assert_true(gr_member_id("a") == 0xaf63dc4c8601ec8cull);
    assert_true(gr_member_id("foobar") == 0x85944171f73967e8ull);
}

static void test_ids_differ_and_are_never_zero(void **state)
{
    static uint64_t ids[4096];
    char name[16];
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < 4096; i++) {
        snprintf(name, sizeof(name), "node-%zu", i);
        ids[i] = gr_member_id(name);
        assert_true(ids[i] != 0);
        for (j = 0; j < i; j++) {
            assert_true(ids[i] != ids[j]);
        }
    }
}

static void test_names(void **state)
{
    const char *good[] = {"a", "node-1", "n_2.east", "A-Z.a_z-09",
                          "abcdefghijklmnopqrstuvwxyz012345"};
    const char *bad[] = {
        "",    "a b", "a:b",         "a=b",
        "a,b", "a/b", "caf\xc3\xa9", "abcdefghijklmnopqrstuvwxyz0123456"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(gr_name_is_valid(good[i]));
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(gr_name_is_valid(bad[i]));
    }
}

static void test_addresses_parse_and_format_back(void **state)
{
    const char *cases[][3] = {
        /* text, host, formatted back */
        {"10.0.0.1:7000", "10.0.0.1", "10.0.0.1:7000"},
        {"[::1]:1", "::1", "[::1]:1"},
        {"[fd00::3]:65535", "fd00::3", "[fd00::3]:65535"},
        {"localhost:7000", "localhost", "localhost:7000"},
        {"gearraft_node-1:7000", "gearraft_node-1", "gearraft_node-1:7000"},
        {"a.b.example:7000", "a.b.example", "a.b.example:7000"},
        {"0.0.0.0:7000", "0.0.0.0", "0.0.0.0:7000"},
        {"host:007", "host", "host:7"},
    };
    char host[STORE_HOST_MAX + 1];
    char out[GR_PEER_ADDR_MAX + 1];
    const char *why = NULL;
    uint16_t port;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(gr_peer_addr_parse(cases[i][0], host, &port, &why), 0);
        assert_string_equal(host, cases[i][1]);
        assert_int_equal(gr_peer_addr_format(host, port, out, sizeof(out)),
                         strlen(cases[i][2]));
        assert_string_equal(out, cases[i][2]);
    }
}

static void test_host_names_and_their_limits(void **state)
{
    char text[STORE_HOST_MAX + 16];
    char host[STORE_HOST_MAX + 1];
    const char *why = NULL;
    uint16_t port;

    (void)state;
    /* 63-byte labels are fine, 64 are not. */
    memset(text, 'a', 63);
    memcpy(text + 63, ":1", 3);
    assert_int_equal(gr_peer_addr_parse(text, host, &port, &why), 0);
    memset(text, 'a', 64);
    memcpy(text + 64, ":1", 3);
    assert_int_equal(gr_peer_addr_parse(text, host, &port, &why), GR_EINVAL);
    /* 255 bytes in all, port included, as the transport takes. */
    memset(text, 'a', 253);
    text[49] = text[99] = text[149] = text[199] = '.';
    memcpy(text + 253, ":1", 3);
    assert_int_equal(gr_peer_addr_parse(text, host, &port, &why), 0);
    assert_int_equal(strlen(host), 253);
    memcpy(text + 253, ":10", 4);
    assert_int_equal(gr_peer_addr_parse(text, host, &port, &why), GR_EINVAL);
    assert_non_null(strstr(why, "255 bytes"));
}

static void test_list_round_trip(void **state)
{
    const char *list = "c=10.0.0.3:7003,a=[fd00::1]:7001,b=host-b:7002";
    struct store_member v[STORE_MEMBERS_MAX];
    struct store_member w[STORE_MEMBERS_MAX];
    char out[512];
    char err[256];
    size_t n;
    size_t m;

    (void)state;
    assert_int_equal(gr_members_parse(list, v, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "c"); /* the order given */
    assert_int_equal(v[0].id, gr_member_id("c"));
    assert_string_equal(v[1].host, "fd00::1");
    assert_int_equal(v[2].port, 7002);
    assert_int_equal(gr_members_format(v, n, out, sizeof(out)), strlen(list));
    assert_string_equal(out, list);
    assert_int_equal(gr_members_parse(out, w, &m, err, sizeof(err)), 0);
    assert_int_equal(m, n);
    assert_memory_equal(v, w, n * sizeof(v[0]));
    assert_ptr_equal(gr_members_find(v, n, gr_member_id("b")), &v[2]);
    assert_null(gr_members_find(v, n, gr_member_id("d")));
}

static void test_format_says_what_it_needs(void **state)
{
    struct store_member v[STORE_MEMBERS_MAX];
    char small[8];
    char err[256];
    size_t n;

    (void)state;
    assert_int_equal(gr_members_parse("a=h:1,b=h:2", v, &n, err, sizeof(err)),
                     0);
    assert_int_equal(gr_members_format(v, n, small, sizeof(small)), 11);
    assert_string_equal(small, "a=h:1,b");
    assert_int_equal(gr_members_format(v, n, NULL, 0), 11);
    assert_int_equal(gr_members_format(v, 0, small, sizeof(small)), 0);
    assert_string_equal(small, "");
}

static void test_two_names_of_one_id_are_refused(void **state)
{
    struct store_member v[2];
    char err[256];

    (void)state;
    memset(v, 0, sizeof(v));
    snprintf(v[0].name, sizeof(v[0].name), "x");
    snprintf(v[1].name, sizeof(v[1].name), "y");
    v[0].id = v[1].id = 42; /* as if the hash of x and y collided */
    assert_int_equal(gr_members_check(v, 2, err, sizeof(err)), GR_EINVAL);
    assert_non_null(strstr(err, "'x' and 'y' have the same id"));
    v[1].id = 43;
    assert_int_equal(gr_members_check(v, 2, err, sizeof(err)), 0);
    snprintf(v[1].name, sizeof(v[1].name), "x");
    assert_int_equal(gr_members_check(v, 2, err, sizeof(err)), GR_EINVAL);
    assert_non_null(strstr(err, "'x' named twice"));
}

static void test_bad_lists_say_which_member(void **state)
{
    struct store_member v[STORE_MEMBERS_MAX];
    char err[256];
    size_t n;

    (void)state;
    assert_int_equal(gr_members_parse("a=h:1,b=h:0", v, &n, err, sizeof(err)),
                     GR_EINVAL);
    assert_non_null(strstr(err, "member b's address 'h:0'"));
    assert_int_equal(gr_members_parse("a=h:1,b c=h:2", v, &n, err, sizeof(err)),
                     GR_EINVAL);
    assert_non_null(strstr(err, "member name 'b c'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_are_fnv1a_of_the_name),
        cmocka_unit_test(test_ids_differ_and_are_never_zero),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_addresses_parse_and_format_back),
        cmocka_unit_test(test_host_names_and_their_limits),
        cmocka_unit_test(test_list_round_trip),
        cmocka_unit_test(test_format_says_what_it_needs),
        cmocka_unit_test(test_two_names_of_one_id_are_refused),
        cmocka_unit_test(test_bad_lists_say_which_member),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
