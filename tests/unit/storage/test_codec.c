/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/test_codec.c - store_cmd_encode/decode: every
 * command round-trips field by field, and hostile bytes (garbage, every
 * truncation, every single-byte change, out-of-range values, missing
 * parts) decode to STORE_EMALFORMED or a valid command, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/internal.h"
#include "storage/store.h"

static struct store_buf B(const char *s) {
    struct store_buf b;

    b.base = (const uint8_t *)s;
    b.len = strlen(s);
    return b;
}

static bool
buf_eq(struct store_buf a, struct store_buf b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static bool ref_eq(struct store_conn_ref a, struct store_conn_ref b)
{
    return a.node_id == b.node_id && a.incarnation == b.incarnation &&
           a.conn_id == b.conn_id;
}

static struct store_cmd *round_trip(const struct store_cmd *in)
{
    struct store_cmd *out = NULL;
    uint8_t *bytes;
    size_t len;

    assert_int_equal(store_cmd_encode(in, &bytes, &len), 0);
    assert_int_equal(store_cmd_decode(bytes, len, &out), 0);
    store_free(bytes);
    assert_int_equal(out->type, in->type);
    assert_int_equal(out->origin.node_id, in->origin.node_id);
    assert_int_equal(out->origin.incarnation, in->origin.incarnation);
    assert_int_equal(out->origin.seq, in->origin.seq);
    return out;
}

static const struct store_conn_ref R = {3, 0xfffffffffffffff0ull, 12345};

static void test_submit_round_trips(void **state)
{
    struct store_cmd c;
    struct store_cmd *d;
    static const uint8_t bin[] = {0, 1, 0, 255, 0};

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.origin.node_id = 1;
    c.origin.incarnation = 2;
    c.origin.seq = 99;
    c.u.submit.function = B("reverse");
    c.u.submit.unique = B("u");
    c.u.submit.reducer = B("red");
    c.u.submit.data.base = bin;
    c.u.submit.data.len = sizeof(bin);
    c.u.submit.prio = STORE_PRIO_LOW;
    c.u.submit.background = true;
    c.u.submit.when = 1700000000;
    c.u.submit.client = R;
    d = round_trip(&c);
    assert_true(buf_eq(d->u.submit.function, c.u.submit.function));
    assert_true(buf_eq(d->u.submit.unique, c.u.submit.unique));
    assert_true(buf_eq(d->u.submit.reducer, c.u.submit.reducer));
    assert_true(buf_eq(d->u.submit.data, c.u.submit.data));
    assert_int_equal(d->u.submit.prio, STORE_PRIO_LOW);
    assert_true(d->u.submit.background);
    assert_int_equal(d->u.submit.when, 1700000000);
    assert_true(ref_eq(d->u.submit.client, R));
    store_cmd_free(d);
}

/* The leader's stamp: encoded with the command, or appended to the bytes
 * another node encoded (the last one wins), it decodes as time_ms. */
static void test_time_stamp_round_trips_and_appends(void **state)
{
    static const uint64_t times[] = {0, 1, 127, 128, 1764950400123ull,
                                     UINT64_MAX};
    struct store_cmd c;
    struct store_cmd *d;
    uint8_t *buf;
    uint8_t *both;
    size_t len;
    size_t i;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_NOOP;
    c.origin.seq = 5;
    c.time_ms = 42;
    d = round_trip(&c);
    assert_int_equal(d->time_ms, 42);
    store_cmd_free(d);
    assert_int_equal(store_cmd_encode(&c, &buf, &len), 0);
    both = malloc(len + STORE_CMD_STAMP_MAX);
    assert_non_null(both);
    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        size_t n;

        memcpy(both, buf, len);
        n = store_cmd_stamp(times[i], both + len);
        assert_true(n >= 2 && n <= STORE_CMD_STAMP_MAX);
        assert_int_equal(store_cmd_decode(both, len + n, &d), 0);
        assert_int_equal(d->time_ms, times[i]);
        assert_int_equal(d->origin.seq, 5);
        store_cmd_free(d);
    }
    free(both);
    store_free(buf);
}

static void test_grab_work_and_release_round_trip(void **state)
{
    struct store_cmd c;
    struct store_cmd *d;
    struct store_buf fns[3] = {B("a"), B(""), B("ccc")};
    size_t i;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.u.grab.worker = R;
    c.u.grab.functions = fns;
    c.u.grab.n_functions = 3;
    d = round_trip(&c);
    assert_int_equal(d->u.grab.n_functions, 3);
    for (i = 0; i < 3; i++) {
        assert_true(buf_eq(d->u.grab.functions[i], fns[i]));
    }
    assert_true(ref_eq(d->u.grab.worker, R));
    store_cmd_free(d);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_WORK;
    c.u.work.worker = R;
    c.u.work.kind = STORE_WORK_STATUS;
    c.u.work.handle = B("H:x:1");
    c.u.work.data = B("payload");
    c.u.work.numerator = B("1");
    c.u.work.denominator = B("2");
    d = round_trip(&c);
    assert_int_equal(d->u.work.kind, STORE_WORK_STATUS);
    assert_true(buf_eq(d->u.work.handle, c.u.work.handle));
    assert_true(buf_eq(d->u.work.data, c.u.work.data));
    assert_true(buf_eq(d->u.work.numerator, c.u.work.numerator));
    assert_true(buf_eq(d->u.work.denominator, c.u.work.denominator));
    store_cmd_free(d);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_RELEASE;
    c.u.release.worker = R;
    c.u.release.function = B("fn");
    c.u.release.max_retries = 7;
    d = round_trip(&c);
    assert_true(buf_eq(d->u.release.function, c.u.release.function));
    assert_int_equal(d->u.release.max_retries, 7);
    assert_true(ref_eq(d->u.release.worker, R));
    store_cmd_free(d);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_JOB_TIMEOUT;
    c.u.timeout.worker = R;
    c.u.timeout.handle = B("H:x:2");
    c.u.timeout.max_retries = 3;
    d = round_trip(&c);
    assert_true(buf_eq(d->u.timeout.handle, c.u.timeout.handle));
    assert_int_equal(d->u.timeout.max_retries, 3);
    store_cmd_free(d);
}

static void test_gone_and_admin_commands_round_trip(void **state)
{
    struct store_cmd c;
    struct store_cmd *d;
    enum store_cmd_type admin[] = {STORE_CMD_CANCEL, STORE_CMD_MAXQUEUE,
                                   STORE_CMD_FUNC_CREATE, STORE_CMD_FUNC_DROP};
    size_t i;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_CLIENT_GONE;
    c.u.client_gone = R;
    d = round_trip(&c);
    assert_true(ref_eq(d->u.client_gone, R));
    store_cmd_free(d);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_NODE_GONE;
    c.u.node_gone.node_id = 4;
    c.u.node_gone.incarnation = 9;
    c.u.node_gone.max_retries = 2;
    d = round_trip(&c);
    assert_int_equal(d->u.node_gone.node_id, 4);
    assert_int_equal(d->u.node_gone.incarnation, 9);
    assert_int_equal(d->u.node_gone.max_retries, 2);
    store_cmd_free(d);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_NOOP;
    store_cmd_free(round_trip(&c));

    for (i = 0; i < sizeof(admin) / sizeof(admin[0]); i++) {
        memset(&c, 0, sizeof(c));
        c.type = admin[i];
        c.u.admin.admin = R;
        c.u.admin.function = B("fn");
        c.u.admin.handle = B("H:x:3");
        c.u.admin.maxqueue.function = B("mq");
        c.u.admin.maxqueue.limit[0] = -1;
        c.u.admin.maxqueue.limit[1] = 0;
        c.u.admin.maxqueue.limit[2] = 2147483647;
        d = round_trip(&c);
        assert_true(ref_eq(d->u.admin.admin, R));
        if (admin[i] == STORE_CMD_CANCEL) {
            assert_true(buf_eq(d->u.admin.handle, c.u.admin.handle));
        } else if (admin[i] == STORE_CMD_MAXQUEUE) {
            assert_true(buf_eq(d->u.admin.maxqueue.function, B("mq")));
            assert_int_equal(d->u.admin.maxqueue.limit[0], -1);
            assert_int_equal(d->u.admin.maxqueue.limit[1], 0);
            assert_int_equal(d->u.admin.maxqueue.limit[2], 2147483647);
        } else {
            assert_true(buf_eq(d->u.admin.function, B("fn")));
        }
        store_cmd_free(d);
    }
}

static void test_member_change_round_trips_with_the_leaders_verdict(
    void **state)
{
    struct store_cmd c;
    struct store_cmd *d = NULL;
    uint8_t *bytes;
    uint8_t *more;
    size_t len;
    size_t n;
    uint32_t v;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_MEMBER;
    c.origin.node_id = 7;
    c.origin.seq = 3;
    c.u.member.admin = R;
    c.u.member.op = STORE_MEMBER_ADD;
    c.u.member.member.id = 0x1234567890abcdefull;
    snprintf(c.u.member.member.name, sizeof(c.u.member.member.name), "n4");
    snprintf(c.u.member.member.host, sizeof(c.u.member.member.host), "::1");
    c.u.member.member.port = 4734;
    d = round_trip(&c);
    assert_int_equal(d->u.member.op, STORE_MEMBER_ADD);
    assert_true(d->u.member.member.id == c.u.member.member.id);
    assert_string_equal(d->u.member.member.name, "n4");
    assert_string_equal(d->u.member.member.host, "::1");
    assert_int_equal(d->u.member.member.port, 4734);
    assert_int_equal(d->u.member.verdict, STORE_VERDICT_NONE);
    assert_int_equal(d->u.member.admin.conn_id, R.conn_id);
    store_cmd_free(d);

    /* The leader appends its verdict (and the stamp) to the bytes. */
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), 0);
    assert_true(store_cmd_is_member(bytes, len));
    for (v = 0; v < STORE_VERDICT_COUNT; v++) {
        more = malloc(len + 2 * STORE_CMD_STAMP_MAX);
        assert_non_null(more);
        memcpy(more, bytes, len);
        n = len + store_cmd_verdict(v, more + len);
        n += store_cmd_stamp(99, more + n);
        assert_true(store_cmd_is_member(more, n));
        assert_int_equal(store_cmd_decode(more, n, &d), 0);
        assert_int_equal(d->u.member.verdict, v);
        assert_true(d->time_ms == 99);
        assert_non_null(store_member_verdict_text(v));
        store_cmd_free(d);
        free(more);
    }
    store_free(bytes);

    /* Other commands are not membership changes, nor is garbage. */
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.u.submit.function = B("f");
    c.u.submit.client = R;
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), 0);
    assert_false(store_cmd_is_member(bytes, len));
    store_free(bytes);
    assert_false(store_cmd_is_member((const uint8_t *)"\xff\xff", 2));
    assert_false(store_cmd_is_member(NULL, 0));
}

/* A leader reads a forwarded command's origin without decoding it. */
static void test_origin_is_read_without_decoding(void **state)
{
    struct store_cmd c;
    struct store_origin o;
    uint8_t *bytes;
    uint8_t *more;
    size_t len;
    size_t n;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.origin.node_id = 0x1234567890abcdefull;
    c.origin.incarnation = 3;
    c.origin.seq = 300;
    c.origin.low = 17;
    c.u.submit.function = B("f");
    c.u.submit.data = B("payload");
    c.u.submit.client = R;
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), 0);
    assert_true(store_cmd_origin(bytes, len, &o));
    assert_true(o.node_id == c.origin.node_id);
    assert_true(o.incarnation == 3);
    assert_true(o.seq == 300);
    assert_true(o.low == 17);
    /* The leader's stamp appended to the bytes changes nothing. */
    more = malloc(len + STORE_CMD_STAMP_MAX);
    assert_non_null(more);
    memcpy(more, bytes, len);
    n = len + store_cmd_stamp(99, more + len);
    memset(&o, 0, sizeof(o));
    assert_true(store_cmd_origin(more, n, &o));
    assert_true(o.seq == 300);
    /* Cut short anywhere: either the whole origin or none. */
    for (n = 0; n < len; n++) {
        if (store_cmd_origin(bytes, n, &o)) {
            assert_true(o.seq == 300 && o.incarnation == 3);
        }
    }
    free(more);
    store_free(bytes);
    assert_false(store_cmd_origin((const uint8_t *)"\xff\xff", 2, &o));
    assert_false(store_cmd_origin(NULL, 0, &o));
    /* Two origins: not read (protobuf would merge them). */
    assert_false(store_cmd_origin((const uint8_t *)"\x12\x02\x18\x01"
                                                   "\x12\x02\x18\x02",
                                  8, &o));
}

static void test_encode_refuses_invalid_commands(void **state)
{
    struct store_cmd c;
    uint8_t *bytes;
    size_t len;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = (enum store_cmd_type)99;
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), STORE_EINVAL);
    c.type = STORE_CMD_SUBMIT;
    c.u.submit.prio = STORE_PRIO_COUNT;
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), STORE_EINVAL);
}

static int decode_rv(const uint8_t *bytes, size_t len)
{
    struct store_cmd *d = NULL;
    int rv = store_cmd_decode(bytes, len, &d);

    if (rv == 0) {
        store_cmd_free(d);
    }
    return rv;
}

/* Hand-made protobuf: field 1 = version, field 10 = noop (empty),
 * field 11 = submit { 5: prio, 8: client {} }, field 13 = work { 2: kind,
 * 1: worker {} }. */
static void test_decode_checks_values_and_required_parts(void **state)
{
    static const uint8_t ok_noop[] = {0x08, 0x01, 0x52, 0x00};
    static const uint8_t no_cmd[] = {0x08, 0x01};
    static const uint8_t v0[] = {0x52, 0x00};
    static const uint8_t v2[] = {0x08, 0x02, 0x52, 0x00};
    static const uint8_t ok_prio[] = {0x08, 0x01, 0x5a, 0x04,
                                      0x28, 0x02, 0x42, 0x00};
    static const uint8_t bad_prio[] = {0x08, 0x01, 0x5a, 0x04,
                                       0x28, 0x03, 0x42, 0x00};
    static const uint8_t no_client[] = {0x08, 0x01, 0x5a, 0x02, 0x28, 0x02};
    static const uint8_t ok_kind[] = {0x08, 0x01, 0x6a, 0x04,
                                      0x0a, 0x00, 0x10, 0x06};
    static const uint8_t bad_kind[] = {0x08, 0x01, 0x6a, 0x04,
                                       0x0a, 0x00, 0x10, 0x07};
    static const uint8_t zero_kind[] = {0x08, 0x01, 0x6a, 0x02, 0x0a, 0x00};
    /* A length far beyond the buffer. */
    static const uint8_t huge_len[] = {0x08, 0x01, 0x5a, 0xff,
                                       0xff, 0xff, 0xff, 0x0f};

    (void)state;
    assert_int_equal(decode_rv(ok_noop, sizeof(ok_noop)), 0);
    assert_int_equal(decode_rv(no_cmd, sizeof(no_cmd)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(v0, sizeof(v0)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(v2, sizeof(v2)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(ok_prio, sizeof(ok_prio)), 0);
    assert_int_equal(decode_rv(bad_prio, sizeof(bad_prio)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(no_client, sizeof(no_client)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(ok_kind, sizeof(ok_kind)), 0);
    assert_int_equal(decode_rv(bad_kind, sizeof(bad_kind)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(zero_kind, sizeof(zero_kind)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(huge_len, sizeof(huge_len)), STORE_EMALFORMED);
    assert_int_equal(decode_rv(NULL, 0), STORE_EMALFORMED);
}

static void test_decode_survives_truncation_and_bit_flips(void **state)
{
    struct store_cmd c;
    struct store_buf fns[2] = {B("alpha"), B("beta")};
    uint8_t *bytes;
    uint8_t *copy;
    size_t len;
    size_t i;
    int bit;
    int rv;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.origin.seq = 5;
    c.u.grab.worker = R;
    c.u.grab.functions = fns;
    c.u.grab.n_functions = 2;
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), 0);
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        /* Every prefix: decodes or is malformed. */
        memcpy(copy, bytes, i);
        rv = decode_rv(copy, i);
        assert_true(rv == 0 || rv == STORE_EMALFORMED);
        for (bit = 0; bit < 8; bit++) {
            memcpy(copy, bytes, len);
            copy[i] = (uint8_t)(copy[i] ^ (1u << bit));
            rv = decode_rv(copy, len);
            assert_true(rv == 0 || rv == STORE_EMALFORMED);
        }
    }
    free(copy);
    store_free(bytes);
}

static void test_decode_survives_garbage(void **state)
{
    uint8_t buf[64];
    uint32_t x = 12345;
    int round;
    size_t i;
    int rv;

    (void)state;
    for (round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % (int)sizeof(buf));
        for (i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u; /* fixed sequence: repeatable */
            buf[i] = (uint8_t)(x >> 16);
        }
        rv = decode_rv(buf, len);
        assert_true(rv == 0 || rv == STORE_EMALFORMED);
    }
}

static void test_allocation_failures_are_enomem_never_leaks(void **state)
{
    struct store_cmd c;
    struct store_cmd *d;
    struct store_buf fns[2] = {B("alpha"), B("beta")};
    uint8_t *bytes;
    size_t len;
    unsigned n;
    int rv;
    int ok = 0;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.u.grab.worker = R;
    c.u.grab.functions = fns;
    c.u.grab.n_functions = 2;
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), 0);
    for (n = 1; n < 20; n++) {
        store__fail_alloc_nth = n;
        rv = store_cmd_decode(bytes, len, &d);
        store__fail_alloc_nth = 0;
        assert_true(rv == 0 || rv == STORE_ENOMEM);
        if (rv == 0) {
            assert_int_equal(d->u.grab.n_functions, 2);
            store_cmd_free(d);
            ok++;
        }
    }
    assert_true(ok > 0);
    store_free(bytes);
}

static void test_error_table_has_distinct_messages(void **state)
{
    static const int codes[] = {
#define CODE(name, value, text) name,
        STORE_ERRORS(CODE)
#undef CODE
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    size_t i;
    size_t k;

    (void)state;
    assert_true(strlen(store_strerror(0)) > 0);
    assert_true(strlen(store_strerror(-1000)) > 0);
    for (i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        assert_true(strlen(store_strerror(codes[i])) > 0);
        for (k = 0; k < i; k++) {
            assert_int_not_equal(codes[i], codes[k]);
            assert_string_not_equal(store_strerror(codes[i]),
                                    store_strerror(codes[k]));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_round_trips),
        cmocka_unit_test(test_time_stamp_round_trips_and_appends),
        cmocka_unit_test(test_grab_work_and_release_round_trip),
        cmocka_unit_test(test_gone_and_admin_commands_round_trip),
        cmocka_unit_test(
            test_member_change_round_trips_with_the_leaders_verdict),
        cmocka_unit_test(test_encode_refuses_invalid_commands),
        cmocka_unit_test(test_decode_checks_values_and_required_parts),
        cmocka_unit_test(test_decode_survives_truncation_and_bit_flips),
        cmocka_unit_test(test_decode_survives_garbage),
        cmocka_unit_test(test_origin_is_read_without_decoding),
        cmocka_unit_test(test_allocation_failures_are_enomem_never_leaks),
        cmocka_unit_test(test_error_table_has_distinct_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
