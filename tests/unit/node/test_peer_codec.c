/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_peer_codec.c - node/peer_codec.c: raft messages on
 * the wire.  Round trips for every type; truncated, bit-flipped and random
 * input must give an error (or a message raft_step then judges), never a
 * crash or a leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/cluster/peer_codec.h"

static struct raft_msg base_msg(enum raft_msg_type type)
{
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = 3;
    m.to = 0xfffffffffffffff1ULL;
    m.term = 77;
    return m;
}

static struct raft_msg roundtrip(const struct raft_msg *in)
{
    struct raft_buf b;
    struct raft_msg out;

    assert_int_equal(peer_msg_encode(in, &b), 0);
    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(peer_msg_decode(b.base, b.len, &out), 0);
    gr_free(b.base);
    assert_int_equal(out.type, in->type);
    assert_int_equal(out.from, in->from);
    assert_int_equal(out.to, in->to);
    assert_int_equal(out.term, in->term);
    return out;
}

static void test_peer_codec_roundtrips_small_messages(void **state)
{
    struct raft_msg m;
    struct raft_msg o;

    (void)state;
    m = base_msg(RAFT_MSG_PREVOTE);
    m.u.vote.last_index = 1234567890123ULL;
    m.u.vote.last_term = 76;
    m.u.vote.transfer = true;
    o = roundtrip(&m);
    assert_int_equal(o.u.vote.last_index, 1234567890123ULL);
    assert_int_equal(o.u.vote.last_term, 76);
    assert_true(o.u.vote.transfer);
    m.type = RAFT_MSG_VOTE;
    assert_int_equal(roundtrip(&m).type, RAFT_MSG_VOTE);

    m = base_msg(RAFT_MSG_VOTE_RESP);
    m.u.vote_resp.granted = true;
    assert_true(roundtrip(&m).u.vote_resp.granted);
    m.type = RAFT_MSG_PREVOTE_RESP;
    m.u.vote_resp.granted = false;
    assert_false(roundtrip(&m).u.vote_resp.granted);

    m = base_msg(RAFT_MSG_APPEND_RESP);
    m.u.append_resp.reject = true;
    m.u.append_resp.index = 10;
    m.u.append_resp.hint_index = 7;
    m.u.append_resp.hint_term = 2;
    m.u.append_resp.ctx = UINT64_MAX;
    o = roundtrip(&m);
    assert_true(o.u.append_resp.reject);
    assert_int_equal(o.u.append_resp.index, 10);
    assert_int_equal(o.u.append_resp.hint_index, 7);
    assert_int_equal(o.u.append_resp.hint_term, 2);
    assert_int_equal(o.u.append_resp.ctx, UINT64_MAX);

    m = base_msg(RAFT_MSG_HEARTBEAT);
    m.u.heartbeat.commit = 99;
    m.u.heartbeat.ctx = 5;
    o = roundtrip(&m);
    assert_int_equal(o.u.heartbeat.commit, 99);
    assert_int_equal(o.u.heartbeat.ctx, 5);

    m = base_msg(RAFT_MSG_HEARTBEAT_RESP);
    m.u.hb_resp.ctx = 6;
    assert_int_equal(roundtrip(&m).u.hb_resp.ctx, 6);

    m = base_msg(RAFT_MSG_SNAPSHOT_RESP);
    m.u.snap_resp.index = 40;
    m.u.snap_resp.offset = 4096;
    m.u.snap_resp.done = true;
    m.u.snap_resp.reject = true;
    o = roundtrip(&m);
    assert_int_equal(o.u.snap_resp.index, 40);
    assert_int_equal(o.u.snap_resp.offset, 4096);
    assert_true(o.u.snap_resp.done);
    assert_true(o.u.snap_resp.reject);

    m = base_msg(RAFT_MSG_TIMEOUT_NOW);
    assert_int_equal(roundtrip(&m).type, RAFT_MSG_TIMEOUT_NOW);
}

static void test_peer_codec_roundtrips_append_with_binary_data(void **state)
{
    struct raft_entry e[3] = {
        {5, 11, RAFT_ENTRY_NORMAL, {"\0bin\0ary", 8}},
        {5, 12, RAFT_ENTRY_NOOP, {NULL, 0}},
        {6, 13, RAFT_ENTRY_CONF, {"\x01\x00", 2}},
    };
    struct raft_msg m = base_msg(RAFT_MSG_APPEND);
    struct raft_msg o;

    (void)state;
    m.u.append.prev_index = 10;
    m.u.append.prev_term = 4;
    m.u.append.commit = 9;
    m.u.append.ctx = 3;
    m.u.append.n_entries = 3;
    m.u.append.entries = e;
    o = roundtrip(&m);
    assert_int_equal(o.u.append.prev_index, 10);
    assert_int_equal(o.u.append.prev_term, 4);
    assert_int_equal(o.u.append.commit, 9);
    assert_int_equal(o.u.append.ctx, 3);
    assert_int_equal(o.u.append.n_entries, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(o.u.append.entries[i].term, e[i].term);
        assert_int_equal(o.u.append.entries[i].index, e[i].index);
        assert_int_equal(o.u.append.entries[i].type, e[i].type);
        assert_int_equal(o.u.append.entries[i].data.len, e[i].data.len);
        if (e[i].data.len > 0) {
            assert_memory_equal(o.u.append.entries[i].data.base, e[i].data.base,
                                e[i].data.len);
        }
    }
    peer_msg_free(&o);
    assert_null(o.u.append.entries);
    peer_msg_free(&o); /* twice is fine */

    m.u.append.n_entries = 0;
    m.u.append.entries = NULL;
    o = roundtrip(&m);
    assert_int_equal(o.u.append.n_entries, 0);
    peer_msg_free(&o);
}

static void test_peer_codec_roundtrips_snapshot_chunk(void **state)
{
    struct raft_msg m = base_msg(RAFT_MSG_SNAPSHOT);
    struct raft_msg o;
    uint8_t data[300];

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7);
    }
    m.u.snapshot.meta.index = 500;
    m.u.snapshot.meta.term = 9;
    m.u.snapshot.meta.conf.n_members = RAFT_MAX_MEMBERS;
    for (size_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        m.u.snapshot.meta.conf.members[i].id = 100 + i;
        m.u.snapshot.meta.conf.members[i].voter = i % 2 == 0;
    }
    m.u.snapshot.total_len = 1000;
    m.u.snapshot.offset = 700;
    m.u.snapshot.last = true;
    m.u.snapshot.data.base = data;
    m.u.snapshot.data.len = sizeof(data);
    o = roundtrip(&m);
    assert_int_equal(o.u.snapshot.meta.index, 500);
    assert_int_equal(o.u.snapshot.meta.term, 9);
    assert_int_equal(o.u.snapshot.meta.conf.n_members, RAFT_MAX_MEMBERS);
    for (size_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
        assert_int_equal(o.u.snapshot.meta.conf.members[i].id, 100 + i);
        assert_int_equal(o.u.snapshot.meta.conf.members[i].voter, i % 2 == 0);
    }
    assert_int_equal(o.u.snapshot.total_len, 1000);
    assert_int_equal(o.u.snapshot.offset, 700);
    assert_true(o.u.snapshot.last);
    assert_int_equal(o.u.snapshot.data.len, sizeof(data));
    assert_memory_equal(o.u.snapshot.data.base, data, sizeof(data));
    peer_msg_free(&o);
    assert_null(o.u.snapshot.data.base);
}

static void test_peer_codec_encode_refuses_bad_messages(void **state)
{
    struct raft_msg m = base_msg(RAFT_MSG_APPEND);
    struct raft_entry e = {1, 1, 9, {NULL, 0}};
    struct raft_buf b = {(void *)0x1, 7};

    (void)state;
    m.u.append.n_entries = 1;
    m.u.append.entries = &e;
    assert_int_equal(peer_msg_encode(&m, &b), GR_EINVAL);
    assert_int_equal(b.len, 7); /* untouched */
    m.u.append.entries = NULL;
    assert_int_equal(peer_msg_encode(&m, &b), GR_EINVAL);
    m = base_msg(0);
    assert_int_equal(peer_msg_encode(&m, &b), GR_EINVAL);
    m = base_msg(RAFT_MSG_TYPE_COUNT);
    assert_int_equal(peer_msg_encode(&m, &b), GR_EINVAL);
    m = base_msg(RAFT_MSG_SNAPSHOT);
    m.u.snapshot.meta.conf.n_members = RAFT_MAX_MEMBERS + 1;
    assert_int_equal(peer_msg_encode(&m, &b), GR_EINVAL);
}

static int decode_bytes(const uint8_t *p, size_t len)
{
    struct raft_msg m;
    int rv = peer_msg_decode(p, len, &m);

    if (rv == 0) {
        peer_msg_free(&m);
    }
    return rv;
}

static void test_peer_codec_rejects_hand_made_invalid_input(void **state)
{
    /* version 1, type HEARTBEAT, heartbeat body (field 14, empty). */
    static const uint8_t ok[] = {0x08, 0x01, 0x10, 0x07, 0x72, 0x00};
    static const uint8_t v2[] = {0x08, 0x02, 0x10, 0x07, 0x72, 0x00};
    static const uint8_t no_version[] = {0x10, 0x07, 0x72, 0x00};
    static const uint8_t mismatch[] = {0x08, 0x01, 0x10, 0x03, 0x72, 0x00};
    static const uint8_t no_body[] = {0x08, 0x01, 0x10, 0x07};
    static const uint8_t bad_type[] = {0x08, 0x01, 0x10, 0x63, 0x72, 0x00};
    /* APPEND with one entry of type 9, then of type 1. */
    static const uint8_t bad_entry[] = {0x08, 0x01, 0x10, 0x05, 0x62,
                                        0x04, 0x2a, 0x02, 0x18, 0x09};
    static const uint8_t good_entry[] = {0x08, 0x01, 0x10, 0x05, 0x62,
                                         0x04, 0x2a, 0x02, 0x18, 0x01};
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01};
    uint8_t big[2 + 3 + 4 + 3 * (RAFT_MAX_MEMBERS + 1)];
    size_t n = 0;

    (void)state;
    assert_int_equal(decode_bytes(ok, sizeof(ok)), 0);
    assert_int_equal(decode_bytes(v2, sizeof(v2)), GR_EPROTO);
    assert_int_equal(decode_bytes(no_version, sizeof(no_version)), GR_EPROTO);
    assert_int_equal(decode_bytes(mismatch, sizeof(mismatch)), GR_EPROTO);
    assert_int_equal(decode_bytes(no_body, sizeof(no_body)), GR_EPROTO);
    assert_int_equal(decode_bytes(bad_type, sizeof(bad_type)), GR_EPROTO);
    assert_int_equal(decode_bytes(bad_entry, sizeof(bad_entry)), GR_EPROTO);
    assert_int_equal(decode_bytes(good_entry, sizeof(good_entry)), 0);
    assert_int_equal(decode_bytes(junk, sizeof(junk)), GR_EPROTO);
    assert_int_equal(decode_bytes(NULL, 0), GR_EPROTO);
    assert_int_equal(decode_bytes(NULL, 5), GR_EPROTO);

    /* SNAPSHOT whose conf has RAFT_MAX_MEMBERS + 1 members. */
    big[n++] = 0x08;
    big[n++] = 0x01;
    big[n++] = 0x10;
    big[n++] = 0x09;
    big[n++] = 0x82; /* field 16, length-delimited */
    big[n++] = 0x01;
    big[n++] = (uint8_t)(4 + 2 * (RAFT_MAX_MEMBERS + 1)); /* chunk */
    big[n++] = 0x0a;                                      /* meta */
    big[n++] = (uint8_t)(2 + 2 * (RAFT_MAX_MEMBERS + 1));
    big[n++] = 0x1a; /* conf */
    big[n++] = (uint8_t)(2 * (RAFT_MAX_MEMBERS + 1));
    for (size_t i = 0; i < RAFT_MAX_MEMBERS + 1; i++) {
        big[n++] = 0x0a; /* member, empty */
        big[n++] = 0x00;
    }
    assert_int_equal(decode_bytes(big, n), GR_EPROTO);
}

/* A core that judges whatever the decoder lets through. */
static struct raft *judge(void)
{
    struct raft_config c;
    struct raft *r;

    raft_config_default(&c, 0xfffffffffffffff1ULL);
    c.initial_conf.n_members = 1;
    c.initial_conf.members[0].id = c.id;
    c.initial_conf.members[0].voter = true;
    assert_int_equal(raft_new(&c, NULL, 0, &r), 0);
    return r;
}

/* Feeds a decoded message to a core: 0 or RAFT_EMALFORMED only. */
static void step_and_drain(struct raft *r, const struct raft_msg *m)
{
    struct raft_ready rd;
    int rv = raft_step(r, 0, m);

    assert_true(rv == 0 || rv == RAFT_EMALFORMED);
    while (raft_has_ready(r)) {
        assert_int_equal(raft_ready(r, &rd), 0);
        raft_advance(r, &rd);
    }
}

static void test_peer_codec_survives_truncation_and_bit_flips(void **state)
{
    struct raft_entry e[2] = {
        {5, 11, RAFT_ENTRY_NORMAL, {"payload!", 8}},
        {5, 12, RAFT_ENTRY_CONF, {"\x01\x01\0\0\0\0\0\0\0\x07\x01", 11}},
    };
    struct raft_msg msgs[3];
    struct raft *r = judge();
    uint64_t rng = 42;

    (void)state;
    msgs[0] = base_msg(RAFT_MSG_APPEND);
    msgs[0].u.append.prev_index = 10;
    msgs[0].u.append.prev_term = 4;
    msgs[0].u.append.n_entries = 2;
    msgs[0].u.append.entries = e;
    msgs[1] = base_msg(RAFT_MSG_SNAPSHOT);
    msgs[1].u.snapshot.meta.index = 5;
    msgs[1].u.snapshot.meta.term = 2;
    msgs[1].u.snapshot.meta.conf.n_members = 2;
    msgs[1].u.snapshot.meta.conf.members[0].id = 1;
    msgs[1].u.snapshot.meta.conf.members[1].id = 2;
    msgs[1].u.snapshot.total_len = 8;
    msgs[1].u.snapshot.data.base = "abcdefgh";
    msgs[1].u.snapshot.data.len = 8;
    msgs[1].u.snapshot.last = true;
    msgs[2] = base_msg(RAFT_MSG_VOTE);
    msgs[2].u.vote.last_index = 3;
    for (size_t k = 0; k < 3; k++) {
        struct raft_buf b;

        assert_int_equal(peer_msg_encode(&msgs[k], &b), 0);
        for (size_t len = 0; len < b.len; len++) {
            uint8_t *copy = malloc(len + 1);
            struct raft_msg m;

            memcpy(copy, b.base, len);
            if (peer_msg_decode(copy, len, &m) == 0) {
                step_and_drain(r, &m);
                peer_msg_free(&m);
            }
            free(copy);
        }
        for (int flip = 0; flip < 2000; flip++) {
            uint8_t *copy = malloc(b.len);
            struct raft_msg m;

            memcpy(copy, b.base, b.len);
            for (int f = 0; f < 1 + flip % 3; f++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                copy[(rng >> 33) % b.len] ^= (uint8_t)(1u << ((rng >> 20) % 8));
            }
            if (peer_msg_decode(copy, b.len, &m) == 0) {
                step_and_drain(r, &m);
                peer_msg_free(&m);
            }
            free(copy);
        }
        gr_free(b.base);
    }
    raft_free(r);
}

static void test_peer_codec_survives_random_bytes(void **state)
{
    uint64_t rng = 7;
    uint8_t buf[96];
    struct raft *r = judge();

    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t len;
        struct raft_msg m;

        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        len = (size_t)(rng >> 58) + (size_t)(i % 32);
        for (size_t j = 0; j < len; j++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[j] = (uint8_t)(rng >> 56);
        }
        /* Half the time, start with a valid envelope. */
        if (i % 2 == 0 && len >= 4) {
            buf[0] = 0x08;
            buf[1] = 0x01;
            buf[2] = 0x10;
            buf[3] = (uint8_t)(1 + (rng >> 40) % 11);
        }
        if (peer_msg_decode(buf, len, &m) == 0) {
            step_and_drain(r, &m);
            peer_msg_free(&m);
        }
    }
    raft_free(r);
}

static void test_peer_codec_decode_fails_cleanly_without_memory(void **st)
{
    struct raft_entry e = {1, 1, RAFT_ENTRY_NORMAL, {"x", 1}};
    struct raft_msg m = base_msg(RAFT_MSG_APPEND);
    struct raft_msg o;
    struct raft_buf b;
    int rv = GR_ENOMEM;

    (void)st;
    m.u.append.n_entries = 1;
    m.u.append.entries = &e;
    assert_int_equal(peer_msg_encode(&m, &b), 0);
    for (long k = 0; k < 20 && rv != 0; k++) {
        gr_alloc_fail_after(k);
        rv = peer_msg_decode(b.base, b.len, &o);
        assert_true(rv == 0 || rv == GR_ENOMEM || rv == GR_EPROTO);
    }
    gr_alloc_fail_after(-1);
    assert_int_equal(rv, 0);
    peer_msg_free(&o);
    gr_free(b.base);
    gr_alloc_fail_after(0);
    assert_int_equal(peer_msg_encode(&m, &b), GR_ENOMEM);
    gr_alloc_fail_after(-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_codec_roundtrips_small_messages),
        cmocka_unit_test(test_peer_codec_roundtrips_append_with_binary_data),
        cmocka_unit_test(test_peer_codec_roundtrips_snapshot_chunk),
        cmocka_unit_test(test_peer_codec_encode_refuses_bad_messages),
        cmocka_unit_test(test_peer_codec_rejects_hand_made_invalid_input),
        cmocka_unit_test(test_peer_codec_survives_truncation_and_bit_flips),
        cmocka_unit_test(test_peer_codec_survives_random_bytes),
        cmocka_unit_test(test_peer_codec_decode_fails_cleanly_without_memory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
