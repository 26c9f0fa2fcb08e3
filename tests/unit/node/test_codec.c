/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_codec.c - the Gearman codec: every packet type
 * parsed from every split of the byte stream, admin lines, encode round
 * trips, and every malformed-input case of docs/protocol.md, "Bad input".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "node/gearman/codec.h"

/* The wire bytes of a \0REQ packet with the type's argument count: args
 * "a0", "a1", ... and a last argument that contains a NUL. */
static size_t build(uint32_t type, bool request, uint8_t *out, size_t cap,
                    struct store_buf *args, size_t *n_args)
{
    static char names[GM_MAX_ARGS][24];
    static const uint8_t last[] = {'x', '\0', 'y'};
    const struct gm_cmd_info *info = gm_cmd_info(type);
    struct evbuffer *b = evbuffer_new();
    size_t n = info->n_args;
    size_t i;
    size_t len;

    for (i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "a%zu", i);
        args[i] = gm_str(names[i]);
    }
    if (n > 0) {
        args[n - 1].base = last;
        args[n - 1].len = sizeof(last);
    }
    assert_int_equal(gm_packet_write_magic(b, request, type, args, n), 0);
    len = evbuffer_get_length(b);
    assert_true(len <= cap);
    evbuffer_remove(b, out, len);
    evbuffer_free(b);
    *n_args = n;
    return len;
}

static void check_packet(const struct gm_frame *f, uint32_t type, bool request,
                         const struct store_buf *args, size_t n)
{
    size_t i;

    assert_int_equal(f->kind, GM_FRAME_PACKET);
    assert_int_equal(f->packet.type, type);
    assert_int_equal(f->packet.is_request, request);
    assert_true(f->packet.args_ok);
    assert_int_equal(f->packet.n_args, n);
    for (i = 0; i < n; i++) {
        assert_int_equal(f->packet.args[i].len, args[i].len);
        assert_memory_equal(f->packet.args[i].base, args[i].base, args[i].len);
    }
}

static void test_every_type_parses_from_every_split(void **state)
{
    uint8_t wire[256];
    struct store_buf args[GM_MAX_ARGS];
    uint32_t type;

    (void)state;
    for (type = 1; type < GM_CMD_COUNT; type++) {
        size_t n;
        size_t len = build(type, true, wire, sizeof(wire), args, &n);
        size_t k;

        for (k = 0; k <= len; k++) {
            struct evbuffer *in = evbuffer_new();
            struct gm_frame f;
            uint32_t t = 0;

            memset(&f, 0, sizeof(f));
            evbuffer_add(in, wire, k);
            if (k < len) {
                assert_int_equal(gm_frame_parse(in, 1024, &f, &t), GR_EAGAIN);
                assert_int_equal(evbuffer_get_length(in), k);
            }
            evbuffer_add(in, wire + k, len - k);
            assert_int_equal(gm_frame_parse(in, 1024, &f, &t), 0);
            assert_int_equal(t, type);
            check_packet(&f, type, true, args, n);
            assert_int_equal(evbuffer_get_length(in), 0);
            gm_frame_close(&f);
            evbuffer_free(in);
        }
    }
}

/* The large-body path (gm_frame_take_big, here with a threshold of one
 * byte so that every packet takes it): from every split point, after
 * GR_EAGAIN, either nothing is taken (header incomplete, or an empty
 * body) or the header and the buffered part of the body are; the rest
 * read into big->body gives the frame gm_frame_parse gives, and a
 * following packet stays in the buffer. */
static void test_every_type_as_a_large_body_from_every_split(void **state)
{
    uint8_t wire[256];
    uint8_t next[64];
    struct store_buf args[GM_MAX_ARGS];
    struct store_buf next_args[GM_MAX_ARGS];
    uint32_t type;
    size_t next_n;
    size_t next_len =
        build(GM_ECHO_REQ, true, next, sizeof(next), next_args, &next_n);

    (void)state;
    for (type = 1; type < GM_CMD_COUNT; type++) {
        size_t n;
        size_t len = build(type, true, wire, sizeof(wire), args, &n);
        size_t body = len - GM_HEADER_LEN;
        size_t k;

        for (k = 0; k < len; k++) {
            struct evbuffer *in = evbuffer_new();
            struct gm_big_body big;
            struct gm_frame f;
            uint32_t t = 0;
            int rv;

            memset(&f, 0, sizeof(f));
            memset(&big, 0, sizeof(big));
            evbuffer_add(in, wire, k);
            assert_int_equal(gm_frame_parse(in, 1024, &f, &t), GR_EAGAIN);
            rv = gm_frame_take_big(in, 1, &big);
            if (k < GM_HEADER_LEN || body == 0) {
                assert_int_equal(rv, GR_EAGAIN);
                assert_int_equal(evbuffer_get_length(in), k);
                evbuffer_free(in);
                continue;
            }
            assert_int_equal(rv, 0);
            assert_int_equal(evbuffer_get_length(in), 0);
            assert_int_equal(big.type, type);
            assert_true(big.request);
            assert_int_equal(big.len, body);
            assert_int_equal(big.have, k - GM_HEADER_LEN);
            memcpy(big.body + big.have, wire + k, len - k);
            big.have = big.len;
            evbuffer_add(in, next, next_len);
            gm_frame_of_big(&big, &f);
            assert_null(big.body);
            check_packet(&f, type, true, args, n);
            gm_frame_close(&f);
            assert_int_equal(gm_frame_parse(in, 1024, &f, &t), 0);
            check_packet(&f, GM_ECHO_REQ, true, next_args, next_n);
            gm_frame_close(&f);
            evbuffer_free(in);
        }
    }
}

static void test_byte_at_a_time_stream_of_mixed_frames(void **state)
{
    uint8_t wire[1024];
    struct store_buf args[GM_MAX_ARGS];
    size_t n1;
    size_t n2;
    size_t len = 0;
    size_t i;
    struct evbuffer *in = evbuffer_new();
    struct gm_frame f;
    uint32_t t;
    int got = 0;
    struct store_buf a1[GM_MAX_ARGS];

    (void)state;
    len += build(GM_SUBMIT_JOB, true, wire, sizeof(wire), a1, &n1);
    memcpy(wire + len, "status\r\n", 8);
    len += 8;
    len += build(GM_ECHO_REQ, true, wire + len, sizeof(wire) - len, args, &n2);
    memcpy(wire + len, "workers\n", 8);
    len += 8;
    for (i = 0; i < len; i++) {
        int rv;

        evbuffer_add(in, wire + i, 1);
        memset(&f, 0, sizeof(f));
        rv = gm_frame_parse(in, 1024, &f, &t);
        if (rv == GR_EAGAIN) {
            continue;
        }
        assert_int_equal(rv, 0);
        switch (got++) {
        case 0:
            check_packet(&f, GM_SUBMIT_JOB, true, a1, n1);
            break;
        case 1:
            assert_int_equal(f.kind, GM_FRAME_ADMIN);
            assert_string_equal(f.line, "status");
            break;
        case 2:
            check_packet(&f, GM_ECHO_REQ, true, args, n2);
            break;
        default:
            assert_int_equal(f.kind, GM_FRAME_ADMIN);
            assert_string_equal(f.line, "workers");
            break;
        }
        gm_frame_close(&f);
    }
    assert_int_equal(got, 4);
    evbuffer_free(in);
}

static void test_response_magic_is_reported_not_rejected(void **state)
{
    uint8_t wire[256];
    struct store_buf args[GM_MAX_ARGS];
    size_t n;
    size_t len = build(GM_GRAB_JOB, false, wire, sizeof(wire), args, &n);
    struct evbuffer *in = evbuffer_new();
    struct gm_frame f;
    uint32_t t;

    (void)state;
    memset(&f, 0, sizeof(f));
    evbuffer_add(in, wire, len);
    assert_int_equal(gm_frame_parse(in, 1024, &f, &t), 0);
    assert_false(f.packet.is_request);
    gm_frame_close(&f);
    evbuffer_free(in);
}

static int parse_bytes(const void *bytes, size_t len, size_t max,
                       uint32_t *type, size_t *left)
{
    struct evbuffer *in = evbuffer_new();
    struct gm_frame f;
    int rv;

    memset(&f, 0, sizeof(f));
    evbuffer_add(in, bytes, len);
    rv = gm_frame_parse(in, max, &f, type);
    *left = evbuffer_get_length(in);
    gm_frame_close(&f);
    evbuffer_free(in);
    return rv;
}

static void test_bad_magic_type_zero_and_43_close(void **state)
{
    static const uint8_t bad_magic[] = {0, 'X', 'Y', 'Z', 0, 0,
                                        0, 9,   0,   0,   0, 0};
    static const uint8_t type0[] = {0, 'R', 'E', 'Q', 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t type43[] = {0, 'R', 'E', 'Q', 0, 0, 0, 43, 0, 0, 0, 0};
    uint32_t t;
    size_t left;

    (void)state;
    assert_int_equal(parse_bytes(bad_magic, sizeof(bad_magic), 64, &t, &left),
                     GR_EPROTO);
    /* Bad magic is seen as soon as its second byte arrives. */
    assert_int_equal(parse_bytes(bad_magic, 2, 64, &t, &left), GR_EPROTO);
    assert_int_equal(parse_bytes(type0, sizeof(type0), 64, &t, &left),
                     GR_EPROTO);
    assert_int_equal(parse_bytes(type43, sizeof(type43), 64, &t, &left),
                     GR_EPROTO);
}

static void test_oversize_body_is_refused_after_the_header(void **state)
{
    static const uint8_t big[] = {0,  'R', 'E', 'Q', 0, 0,  0,
                                  18, 0,   0,   1,   0, 'f'};
    uint32_t t = 0;
    size_t left;

    (void)state;
    assert_int_equal(parse_bytes(big, sizeof(big), 255, &t, &left), GR_ETOOBIG);
    assert_int_equal(t, GM_SUBMIT_JOB_BG);
    assert_int_equal(left, 1); /* the header was consumed, the body not */
    assert_int_equal(parse_bytes(big, GM_HEADER_LEN, 256, &t, &left),
                     GR_EAGAIN);
}

static void test_missing_arguments_are_flagged(void **state)
{
    /* SUBMIT_JOB needs two NULs; this body has one. */
    static const uint8_t pkt[] = {0, 'R', 'E', 'Q', 0,   0, 0,  7,
                                  0, 0,   0,   3,   'f', 0, 'd'};
    struct evbuffer *in = evbuffer_new();
    struct gm_frame f;
    uint32_t t;

    (void)state;
    memset(&f, 0, sizeof(f));
    evbuffer_add(in, pkt, sizeof(pkt));
    assert_int_equal(gm_frame_parse(in, 64, &f, &t), 0);
    assert_false(f.packet.args_ok);
    gm_frame_close(&f);
    evbuffer_free(in);
}

static void test_admin_line_endings_and_limit(void **state)
{
    struct evbuffer *in = evbuffer_new();
    struct gm_frame f;
    uint32_t t;
    char big[GM_ADMIN_LINE_MAX + 2];

    (void)state;
    memset(&f, 0, sizeof(f));
    evbuffer_add(in, "version\r\nstatus\n\n", 17);
    assert_int_equal(gm_frame_parse(in, 64, &f, &t), 0);
    assert_string_equal(f.line, "version");
    gm_frame_close(&f);
    assert_int_equal(gm_frame_parse(in, 64, &f, &t), 0);
    assert_string_equal(f.line, "status");
    gm_frame_close(&f);
    assert_int_equal(gm_frame_parse(in, 64, &f, &t), 0);
    assert_string_equal(f.line, "");
    gm_frame_close(&f);
    assert_int_equal(gm_frame_parse(in, 64, &f, &t), GR_EAGAIN);
    memset(big, 'a', sizeof(big));
    evbuffer_add(in, big, sizeof(big));
    assert_int_equal(gm_frame_parse(in, 64, &f, &t), GR_EPROTO);
    evbuffer_free(in);
}

static void test_error_packet_encodes_exactly(void **state)
{
    static const char want[] = "\0RES\0\0\0\x13\0\0\0\x24"
                               "INVALID_MAGIC\0Request magic expected";
    struct evbuffer *out = evbuffer_new();
    uint8_t got[64];
    size_t len;

    (void)state;
    assert_int_equal(
        gm_error_write(out, "INVALID_MAGIC", "Request magic expected"), 0);
    len = evbuffer_get_length(out);
    assert_int_equal(len, sizeof(want) - 1);
    evbuffer_remove(out, got, len);
    assert_memory_equal(got, want, len);
    evbuffer_free(out);
}

static void test_empty_last_argument_round_trips(void **state)
{
    /* A converted WORK_FAIL: handle followed by one NUL. */
    struct store_buf a[2] = {gm_str("H:x:1"), {NULL, 0}};
    struct evbuffer *b = evbuffer_new();
    struct gm_frame f;
    uint32_t t;
    uint8_t hdr[GM_HEADER_LEN];

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_int_equal(gm_packet_write_magic(b, true, GM_WORK_COMPLETE, a, 2), 0);
    evbuffer_copyout(b, hdr, sizeof(hdr));
    assert_int_equal(hdr[11], 6);
    assert_int_equal(gm_frame_parse(b, 64, &f, &t), 0);
    assert_int_equal(f.packet.n_args, 2);
    assert_int_equal(f.packet.args[0].len, 5);
    assert_int_equal(f.packet.args[1].len, 0);
    gm_frame_close(&f);
    evbuffer_free(b);
}

static void test_table_matches_protocol(void **state)
{
    (void)state;
    assert_null(gm_cmd_info(0));
    assert_null(gm_cmd_info(43));
    assert_string_equal(gm_cmd_info(GM_SUBMIT_REDUCE_JOB)->name,
                        "SUBMIT_REDUCE_JOB");
    assert_int_equal(gm_cmd_info(GM_SUBMIT_REDUCE_JOB)->n_args, 5);
    assert_int_equal(gm_cmd_info(GM_STATUS_RES_UNIQUE)->n_args, 6);
    assert_int_equal(gm_cmd_info(GM_ALL_YOURS)->role, GM_ROLE_UNIMPLEMENTED);
    assert_int_equal(gm_cmd_info(GM_SUBMIT_JOB_SCHED)->role,
                     GM_ROLE_UNIMPLEMENTED);
    assert_int_equal(gm_cmd_info(GM_NOOP)->role, GM_ROLE_RESPONSE);
    assert_int_equal(gm_cmd_info(GM_WORK_FAIL)->role, GM_ROLE_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_parses_from_every_split),
        cmocka_unit_test(test_every_type_as_a_large_body_from_every_split),
        cmocka_unit_test(test_byte_at_a_time_stream_of_mixed_frames),
        cmocka_unit_test(test_response_magic_is_reported_not_rejected),
        cmocka_unit_test(test_bad_magic_type_zero_and_43_close),
        cmocka_unit_test(test_oversize_body_is_refused_after_the_header),
        cmocka_unit_test(test_missing_arguments_are_flagged),
        cmocka_unit_test(test_admin_line_endings_and_limit),
        cmocka_unit_test(test_error_packet_encodes_exactly),
        cmocka_unit_test(test_empty_last_argument_round_trips),
        cmocka_unit_test(test_table_matches_protocol),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
