/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_peer_wire.c - node/cluster/peer_wire.c: the frame
 * header and the hello, byte for byte as docs/peer-transport.md gives
 * them, and every malformed hello refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/cluster/peer_wire.h"
#include "storage/store.h"

static void test_peer_wire_crc32c_is_castagnoli(void **state)
{
    (void)state;
    /* The check value of CRC-32C. */
    assert_int_equal(store_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(store_crc32c(store_crc32c(0, "1234", 4), "56789", 5),
                     0xE3069283u);
    assert_int_equal(store_crc32c(0, NULL, 0), 0);
}

static void test_peer_wire_header_is_length_then_crc_big_endian(void **state)
{
    uint8_t hdr[PEER_FRAME_HEADER_LEN];
    const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0xa1, 0xb2, 0xc3, 0xd4};
    uint32_t len;
    uint32_t crc;

    (void)state;
    peer_frame_header_encode(hdr, 0x01020304u, 0xa1b2c3d4u);
    assert_memory_equal(hdr, want, sizeof(want));
    peer_frame_header_decode(hdr, &len, &crc);
    assert_int_equal(len, 0x01020304u);
    assert_int_equal(crc, 0xa1b2c3d4u);
}

static void test_peer_wire_hello_bytes_are_pinned(void **state)
{
    /* magic, version 1, name length 3, from, to, name */
    const uint8_t want[] = {'G',  'R',  'F',  'T',  0x00, 0x01, 0x00,
                            0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                            0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                            0x00, 0x01, 0x09, 'a',  'b',  'c'};
    uint8_t out[PEER_HELLO_MAX_LEN];
    size_t len = 0;
    struct peer_hello h;
    char why[128];

    (void)state;
    assert_int_equal(PEER_WIRE_LINK_VERSION, 1);
    assert_int_equal(
        peer_hello_encode(0x0102030405060708ULL, 0x109, "abc", out, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(peer_hello_decode(out, len, &h, why, sizeof(why)), 0);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.node_id, 0x0102030405060708ULL);
    assert_int_equal(h.to_id, 0x109);
    assert_string_equal(h.cluster, "abc");
}

static void test_peer_wire_hello_encode_refuses_bad_names_and_id_0(void **state)
{
    uint8_t out[PEER_HELLO_MAX_LEN];
    char name[PEER_CLUSTER_NAME_MAX + 2];
    size_t len = 7;

    (void)state;
    assert_int_equal(peer_hello_encode(0, 2, "abc", out, &len), GR_EINVAL);
    assert_int_equal(peer_hello_encode(1, 0, "abc", out, &len), GR_EINVAL);
    assert_int_equal(peer_hello_encode(1, 2, "", out, &len), GR_EINVAL);
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0'; /* 65 bytes */
    assert_int_equal(peer_hello_encode(1, 2, name, out, &len), GR_EINVAL);
    assert_int_equal(len, 7);           /* untouched on error */
    name[PEER_CLUSTER_NAME_MAX] = '\0'; /* 64 bytes: the longest */
    assert_int_equal(peer_hello_encode(1, 2, name, out, &len), 0);
    assert_int_equal(len, PEER_HELLO_MAX_LEN);
}

/* Decodes a copy of good with byte `at` set to `value` (or cut to `len`)
 * and expects a refusal whose reason contains `reason`. */
static void expect_refused(const uint8_t *good, size_t len, size_t at,
                           int value, const char *reason)
{
    uint8_t b[PEER_HELLO_MAX_LEN + 8];
    struct peer_hello h;
    char why[128] = "";

    memcpy(b, good, len);
    if (value >= 0) {
        b[at] = (uint8_t)value;
    }
    memset(&h, 0x5a, sizeof(h));
    assert_int_equal(peer_hello_decode(b, len, &h, why, sizeof(why)),
                     GR_EPROTO);
    assert_non_null(strstr(why, reason));
    assert_int_equal(h.node_id, 0x5a5a5a5a5a5a5a5aULL); /* untouched */
}

static void test_peer_wire_hello_decode_refuses_with_a_reason(void **state)
{
    uint8_t good[PEER_HELLO_MAX_LEN + 8];
    size_t len;

    (void)state;
    assert_int_equal(peer_hello_encode(9, 2, "abc", good, &len), 0);
    expect_refused(good, 5, 0, -1, "too short");
    expect_refused(good, len, 0, 'X', "not a gearraft peer");
    expect_refused(good, len, 5, 2, "link version 2");
    expect_refused(good, len, 7, 0, "cluster name of 0");
    expect_refused(good, len, 7, PEER_CLUSTER_NAME_MAX + 1, "cluster name");
    expect_refused(good, len, 7, 4, "hello of 27 bytes"); /* length off */
    expect_refused(good, len - 1, 0, -1, "hello of 26 bytes");
    expect_refused(good, len, 25, 0, "NUL");
    expect_refused(good, len, 15, 0, "from node id 0");
    expect_refused(good, len, 23, 0, "to node id 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_wire_crc32c_is_castagnoli),
        cmocka_unit_test(test_peer_wire_header_is_length_then_crc_big_endian),
        cmocka_unit_test(test_peer_wire_hello_bytes_are_pinned),
        cmocka_unit_test(
            test_peer_wire_hello_encode_refuses_bad_names_and_id_0),
        cmocka_unit_test(test_peer_wire_hello_decode_refuses_with_a_reason),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
