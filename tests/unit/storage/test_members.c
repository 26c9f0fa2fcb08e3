/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/test_members.c - the member table, and the identity
 * of a data directory: a member's fresh directory is bootstrapped with
 * its node id, cluster name and members in its first transaction; later
 * opens keep them and refuse another node, cluster or kind of server.
 */
#include "storage/internal.h"
#include "unit/storage/fixture.h"

static struct store_member M(uint64_t id, const char *name, const char *host,
                             uint16_t port) {
    struct store_member m;

    memset(&m, 0, sizeof(m));
    m.id = id;
    snprintf(m.name, sizeof(m.name), "%s", name);
    snprintf(m.host, sizeof(m.host), "%s", host);
    m.port = port;
    return m;
}

/* The three members of the tests' cluster, ids out of name order. */
static void
three(struct store_member v[3])
{
    v[0] = M(300, "a", "10.0.0.1", 7001);
    v[1] = M(100, "b", "host-b", 7002);
    v[2] = M(200, "c", "fd00::3", 7003);
}

static int open_as(const char *dir, uint64_t node_id, bool member,
                   const struct store_member *v, size_t n, const char *cluster,
                   struct store **out)
{
    struct store_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    cfg.node_id = node_id;
    cfg.cluster = cluster;
    cfg.member = member;
    cfg.members = v;
    cfg.n_members = n;
    return fix_try_open(&cfg, out);
}

/* Opens and closes at once; returns store_open's result. */
static int try_open(const char *dir, uint64_t node_id, bool member,
                    const struct store_member *v, size_t n, const char *cluster)
{
    struct store *s = NULL;
    int rv = open_as(dir, node_id, member, v, n, cluster, &s);

    store_close(s);
    return rv;
}

static void members_of(struct store *s, struct store_member *v, size_t *n)
{
    struct store_txn *txn;

    assert_int_equal(store_txn_begin(s, false, &txn), 0);
    assert_int_equal(store_members_get(txn, v, n), 0);
    store_txn_abort(txn);
}

static void fresh_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/gr-storage-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void test_members_round_trip_in_id_order(void **state)
{
    struct fixture *f = *state;
    struct store_member v[3];
    struct store_member got[STORE_MEMBERS_MAX];
    struct store_txn *txn;
    size_t n = 99;

    three(v);
    members_of(f->s, got, &n);
    assert_int_equal(n, 0); /* a one-node server's table is empty */
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_members_set(txn, v, 3), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    members_of(f->s, got, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(&got[0], &v[1], sizeof(v[1])); /* id 100 */
    assert_memory_equal(&got[1], &v[2], sizeof(v[2]));
    assert_memory_equal(&got[2], &v[0], sizeof(v[0]));
    /* Set replaces the whole table. */
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_members_set(txn, &v[2], 1), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    members_of(f->s, got, &n);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].name, "c");
    assert_string_equal(got[0].host, "fd00::3");
    assert_int_equal(got[0].port, 7003);
}

static void test_bad_members_are_refused_and_nothing_written(void **state)
{
    struct fixture *f = *state;
    struct store_member v[STORE_MEMBERS_MAX + 1];
    struct store_member got[STORE_MEMBERS_MAX];
    struct store_txn *txn;
    size_t n;
    size_t i;

    three(v);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_members_set(txn, v, 3), 0);
    assert_int_equal(store_txn_commit(txn), 0);

    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    v[3] = M(0, "d", "h", 1);
    assert_int_equal(store_members_set(txn, v, 4), STORE_EINVAL);
    v[3] = M(100, "d", "h", 1); /* b's id again */
    assert_int_equal(store_members_set(txn, v, 4), STORE_EINVAL);
    v[3] = M(400, "", "h", 1);
    assert_int_equal(store_members_set(txn, v, 4), STORE_EINVAL);
    v[3] = M(400, "d", "", 1);
    assert_int_equal(store_members_set(txn, v, 4), STORE_EINVAL);
    v[3] = M(400, "d", "h", 0);
    assert_int_equal(store_members_set(txn, v, 4), STORE_EINVAL);
    v[3] = M(400, "d", "h", 1);
    memset(v[3].name, 'n', sizeof(v[3].name)); /* no NUL: 33 bytes */
    assert_int_equal(store_members_set(txn, v, 4), STORE_EINVAL);
    for (i = 0; i <= STORE_MEMBERS_MAX; i++) {
        v[i] = M(1000 + i, "m", "h", 1);
    }
    assert_int_equal(store_members_set(txn, v, STORE_MEMBERS_MAX + 1),
                     STORE_EINVAL);
    assert_int_equal(store_members_set(txn, v, STORE_MEMBERS_MAX), 0);
    store_txn_abort(txn);
    members_of(f->s, got, &n);
    assert_int_equal(n, 3);

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_members_set(txn, v, 1), STORE_EINVAL);
    store_txn_abort(txn);
}

static void test_a_damaged_member_record_is_corrupt(void **state)
{
    struct fixture *f = *state;
    struct store_member v[3];
    struct store_member got[STORE_MEMBERS_MAX];
    struct store_txn *txn;
    uint8_t key[8];
    uint8_t rec[64];
    MDB_val val;
    size_t n;
    size_t i;

    three(v);
    store__put64(key, 200);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_members_set(txn, v, 3), 0);
    assert_int_equal(store__get(txn, STORE__DB_MEMBERS, key, 8, &val), 0);
    assert_true(val.mv_size <= sizeof(rec));
    memcpy(rec, val.mv_data, val.mv_size);
    for (i = 0; i < val.mv_size; i++) {
        rec[i] ^= 0x20;
        assert_int_equal(
            store__put(txn, STORE__DB_MEMBERS, key, 8, rec, val.mv_size, 0), 0);
        assert_int_equal(store_members_get(txn, got, &n), STORE_ECORRUPT);
        rec[i] ^= 0x20;
    }
    /* A record one byte short, even under a good CRC. */
    store__put32(rec, store__crc32c(0, rec + 4, val.mv_size - 5));
    assert_int_equal(
        store__put(txn, STORE__DB_MEMBERS, key, 8, rec, val.mv_size - 1, 0), 0);
    assert_int_equal(store_members_get(txn, got, &n), STORE_ECORRUPT);
    store_txn_abort(txn);
}

static void test_bootstrap_writes_identity_in_the_first_txn(void **state)
{
    struct store_member v[3];
    struct store_member got[STORE_MEMBERS_MAX];
    char dir[64];
    char name[STORE_CLUSTER_MAX + 1];
    struct store *s = NULL;
    size_t n;

    (void)state;
    three(v);
    fresh_dir(dir, sizeof(dir));
    assert_int_equal(open_as(dir, 100, true, v, 3, NULL, &s), 0);
    assert_true(store_is_new(s));
    assert_int_equal(store_node_id(s), 100);
    assert_int_equal(store_incarnation(s), 1);
    assert_int_equal(store_cluster_name(s, name), strlen("gearraft"));
    assert_string_equal(name, STORE_CLUSTER_DEFAULT);
    members_of(s, got, &n);
    assert_int_equal(n, 3);
    assert_string_equal(got[0].name, "b");
    store_close(s);

    /* A later open keeps all of it, whatever members it brings. */
    assert_int_equal(open_as(dir, 100, true, &v[1], 1, NULL, &s), 0);
    assert_false(store_is_new(s));
    assert_int_equal(store_incarnation(s), 2);
    members_of(s, got, &n);
    assert_int_equal(n, 3);
    store_close(s);
    assert_int_equal(try_open(dir, 100, true, NULL, 0, "gearraft"), 0);
    fx_rmdir(dir);

    /* A name given at the bootstrap is the one kept. */
    fresh_dir(dir, sizeof(dir));
    assert_int_equal(open_as(dir, 300, true, v, 3, "jobs", &s), 0);
    store_cluster_name(s, name);
    assert_string_equal(name, "jobs");
    store_close(s);
    fx_rmdir(dir);
}

static void test_a_cluster_directory_refuses_another_node(void **state)
{
    struct store_member v[3];
    char dir[64];

    (void)state;
    three(v);
    fresh_dir(dir, sizeof(dir));
    assert_int_equal(try_open(dir, 100, true, v, 3, NULL), 0);
    assert_int_equal(try_open(dir, 200, true, v, 3, NULL), STORE_EIDENTITY);
    assert_int_equal(try_open(dir, 200, true, NULL, 0, NULL), STORE_EIDENTITY);
    assert_int_equal(try_open(dir, 100, true, NULL, 0, "other"),
                     STORE_EIDENTITY);
    /* Not a one-node server's, whatever its node id. */
    assert_int_equal(try_open(dir, 1, false, NULL, 0, NULL), STORE_EIDENTITY);
    assert_int_equal(try_open(dir, 0, false, NULL, 0, NULL), STORE_EIDENTITY);
    /* Node id 0 takes the stored one. */
    assert_int_equal(try_open(dir, 0, true, NULL, 0, NULL), 0);
    assert_int_equal(try_open(dir, 100, true, NULL, 0, NULL), 0);
    fx_rmdir(dir);
}

static void test_a_one_node_directory_refuses_a_member(void **state)
{
    struct fixture *f = *state;
    struct store_member v[3];

    three(v);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(try_open(f->dir, 100, true, v, 3, NULL), STORE_EIDENTITY);
    assert_int_equal(try_open(f->dir, 1, true, NULL, 0, NULL), STORE_EIDENTITY);
    fix_open(f);
}

static void test_a_fresh_member_needs_its_members(void **state)
{
    struct store_member v[3];
    char dir[64];
    struct store *s = NULL;

    (void)state;
    three(v);
    fresh_dir(dir, sizeof(dir));
    assert_int_equal(try_open(dir, 100, true, NULL, 0, NULL), STORE_EIDENTITY);
    /* This node is not among the members, or a one-node server is given
     * some: a caller's mistake. */
    assert_int_equal(try_open(dir, 400, true, v, 3, NULL), STORE_EINVAL);
    assert_int_equal(try_open(dir, 1, false, v, 3, NULL), STORE_EINVAL);
    v[2].port = 0;
    assert_int_equal(try_open(dir, 100, true, v, 3, NULL), STORE_EINVAL);
    /* Nothing was written: the directory is still fresh. */
    assert_int_equal(open_as(dir, 1, false, NULL, 0, "solo", &s), 0);
    assert_true(store_is_new(s));
    store_close(s);
    fx_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_members_round_trip_in_id_order,
                                        fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_members_are_refused_and_nothing_written, fix_setup,
            fix_teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_member_record_is_corrupt,
                                        fix_setup, fix_teardown),
        cmocka_unit_test(test_bootstrap_writes_identity_in_the_first_txn),
        cmocka_unit_test(test_a_cluster_directory_refuses_another_node),
        cmocka_unit_test_setup_teardown(
            test_a_one_node_directory_refuses_a_member, fix_setup,
            fix_teardown),
        cmocka_unit_test(test_a_fresh_member_needs_its_members),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
