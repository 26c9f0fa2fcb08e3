/* SPDX-License-Identifier: BSD-3-Clause
 * storage/store.h - the node's durable state: one LMDB environment holding
 * the Raft log, the Raft hard state, node metadata and the Gearman queue
 * tables that committed commands are applied to.
 *
 * Why it is shaped this way: there is one write path (docs/DESIGN.md). node/
 * turns every Gearman request that changes queue state into a command
 * (struct store_cmd), appends it to the log, and - once committed - applies
 * it with store_apply(), which is deterministic: it reads no clock, no
 * random number and nothing local that the command does not carry. Apply
 * does no I/O towards clients either; it returns effects (struct
 * store_effect) that node/ turns into packets after the transaction that
 * wrote them has committed. A single node is a one-voter cluster: it
 * appends and applies in the same write transaction, one per event-loop
 * turn (group commit).
 *
 * No MDB_* type leaks out of this header; LMDB error codes are mapped here
 * (MDB_MAP_FULL -> STORE_ENOSPC, MDB_CORRUPTED/MDB_PANIC -> STORE_ECORRUPT).
 *
 * Not here: the consensus algorithm (raft/), sockets and sessions (node/).
 */
#ifndef GEARRAFT_STORE_H
#define GEARRAFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------
 * Errors. One table generates the enum and store_strerror().
 */
#define STORE_ERRORS(X)                                                        \
    X(STORE_ENOMEM, -1, "out of memory")                                       \
    X(STORE_ENOSPC, -2, "no space left in the LMDB map or on the disk")        \
    X(STORE_ECORRUPT, -3, "stored record is corrupt")                          \
    X(STORE_EIO, -4, "input/output error")                                     \
    X(STORE_ENOTFOUND, -5, "no such record")                                   \
    X(STORE_EINVAL, -6, "invalid argument")                                    \
    X(STORE_EVERSION, -7, "data directory has an unsupported format version")  \
    X(STORE_ELOCKED, -8, "data directory is in use by another process")        \
    X(STORE_EMALFORMED, -9, "encoded command is malformed")                    \
    X(STORE_EIDENTITY, -10,                                                    \
      "data directory belongs to another node, cluster or kind of server")

enum store_error {
#define STORE__ERR_ENUM(name, value, text) name = (value),
    STORE_ERRORS(STORE__ERR_ENUM)
#undef STORE__ERR_ENUM
};

/* Returns a static, non-empty message for a STORE_E* code (or for 0). */
const char *store_strerror(int rv);

/* The one growable array of storage/ and node/. `base` is the address of
 * the array's pointer (of any object type), holding room for *cap
 * elements of `size` bytes; store_array_grow gives it room for at least
 * n, doubling from 16 and keeping the contents, through `realloc_fn` -
 * each module passes its own allocator, so that its tests can still fail
 * any allocation. Returns 0, or STORE_ENOMEM with *base and *cap
 * unchanged. Call it through a module's RESERVE macro, which tests the
 * room inline (STORE__ARRAY_RESERVE, node/'s GR_ARRAY_RESERVE). */
typedef void *(*store_realloc_fn)(void *p, size_t n);
int store_array_grow(void *base, size_t *cap, size_t n, size_t size,
                     store_realloc_fn realloc_fn);

/* ---------------------------------------------------------------------
 * Plain values used by commands and effects.
 */

/* Bytes that are borrowed: never NUL-terminated, may contain NULs. */
struct store_buf {
    const uint8_t *base;
    size_t len;
};

/* Gearman priorities, in the order a worker is served. */
enum store_prio {
    STORE_PRIO_HIGH = 0,
    STORE_PRIO_NORMAL = 1,
    STORE_PRIO_LOW = 2,
    STORE_PRIO_COUNT = 3, /* number of priorities, not a priority */
};

/* A connection anywhere in the cluster: (node, incarnation of that node's
 * process, connection id within it). The incarnation changes at every
 * process start, so references held by a previous run are recognisably
 * stale. */
struct store_conn_ref {
    uint64_t node_id;
    uint64_t incarnation;
    uint64_t conn_id;
};

/* Who proposed a command, for dropping replays: a proposer numbers its
 * commands and may propose one again after a leader change; apply drops
 * every copy of a (node_id, incarnation, seq) after the first, whatever
 * order the copies and their neighbours commit in, and every command of
 * an incarnation older than one already seen from that node. */
struct store_origin {
    uint64_t node_id;
    uint64_t incarnation;
    uint64_t seq; /* 0: no replay check for this command */
    /* The proposer's promise: it will never propose a seq below this
     * one again (every lower one was applied or given up). Apply then
     * forgets them, so what it remembers stays as small as what the
     * proposer has in flight. 0: no promise. */
    uint64_t low;
};

/* Limits apply() enforces deterministically (a LMDB key holds at most 511
 * bytes). A SUBMIT over them is REFUSED with ARGUMENT_TOO_LARGE; node/
 * should check first, as gearmand does for the unique. */
#define STORE_FUNCTION_MAX 400 /* bytes of a function name */
#define STORE_UNIQUE_MAX   64  /* bytes of a unique key */
#define STORE_CLUSTER_MAX  32  /* bytes of the handle's cluster part */
#define STORE_HANDLE_MAX   64  /* "H:<cluster>:<u64>" fits, NUL included */

/* ---------------------------------------------------------------------
 * The members of a cluster: who they are and where their peers dial them.
 */
#define STORE_NODE_NAME_MAX 32  /* bytes of a member's name */
#define STORE_HOST_MAX      255 /* bytes of a member's peer host */
#define STORE_MEMBERS_MAX   16  /* members of one cluster (raft/'s limit) */
/* The cluster part of handles when a cluster is bootstrapped without a
 * name: every founding node must choose the same one, so it cannot be a
 * host name. */
#define STORE_CLUSTER_DEFAULT "gearraft"

struct store_member {
    uint64_t id;                        /* its Raft id, never 0 */
    char name[STORE_NODE_NAME_MAX + 1]; /* NUL-terminated, 1 byte or more */
    char host[STORE_HOST_MAX + 1];      /* NUL-terminated, no brackets */
    uint16_t port;                      /* its peer port, never 0 */
};

/* ---------------------------------------------------------------------
 * Commands: every change of queue state. Encoded with protobuf-c
 * (proto/commands.proto) by storage/codec.c only.
 */
enum store_cmd_type {
    STORE_CMD_NOOP = 1,        /* leader's no-op; changes nothing */
    STORE_CMD_SUBMIT = 2,      /* any SUBMIT_JOB* variant */
    STORE_CMD_GRAB = 3,        /* GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL */
    STORE_CMD_WORK = 4,        /* WORK_STATUS/DATA/WARNING/COMPLETE/FAIL/EXC. */
    STORE_CMD_RELEASE = 5,     /* worker gone, CANT_DO, RESET_ABILITIES */
    STORE_CMD_JOB_TIMEOUT = 6, /* CAN_DO_TIMEOUT expired for one job */
    STORE_CMD_CLIENT_GONE = 7, /* a client connection closed */
    STORE_CMD_NODE_GONE = 8,   /* every connection of a node incarnation */
    STORE_CMD_CANCEL = 9,      /* admin "cancel job H" */
    STORE_CMD_MAXQUEUE = 10,   /* admin "maxqueue F ..." */
    STORE_CMD_FUNC_CREATE = 11, /* admin "create function F" */
    STORE_CMD_FUNC_DROP = 12,   /* admin "drop function F" */
    STORE_CMD_MEMBER = 13,      /* admin add, promote, remove, transfer */
};

/* The WORK_* packet a STORE_CMD_WORK carries (and a forward effect). */
enum store_work_kind {
    STORE_WORK_STATUS = 1,
    STORE_WORK_DATA = 2,
    STORE_WORK_WARNING = 3,
    STORE_WORK_COMPLETE = 4,
    STORE_WORK_FAIL = 5,
    STORE_WORK_EXCEPTION = 6,
};

struct store_submit {
    struct store_buf function;
    struct store_buf unique;  /* empty: never coalesced; "-": the payload */
    struct store_buf reducer; /* SUBMIT_REDUCE_JOB*, else empty */
    struct store_buf data;
    enum store_prio prio;
    bool background;
    uint64_t when;                /* SUBMIT_JOB_EPOCH seconds, else 0 */
    struct store_conn_ref client; /* gets JOB_CREATED; waits if foreground */
};

struct store_grab {
    struct store_conn_ref worker;
    /* The worker's functions in the order gearmand 1.1 walks them: the
     * most recently registered first. */
    const struct store_buf *functions;
    size_t n_functions;
    /* 0: the best runnable job, as above. Else the job the worker's node
     * picked from committed state (store_pick_job) and already handed to
     * the worker: it is assigned if it is still queued (ASSIGN, which that
     * node does not send again), else NO_JOB. */
    uint64_t job;
    /* With job 0: the best runnable job numbered min_job or more - the
     * ones that node could not see when it found nothing to hand out (the
     * older ones it saw were all being taken). 0: any. */
    uint64_t min_job;
};

struct store_work {
    struct store_conn_ref worker; /* must hold the job, else JOB_NOT_FOUND */
    enum store_work_kind kind;
    struct store_buf handle;
    struct store_buf data;        /* DATA, WARNING, COMPLETE, EXCEPTION */
    struct store_buf numerator;   /* STATUS: decimal text as sent */
    struct store_buf denominator; /* STATUS: decimal text as sent */
};

/* max_retries below is the proposer's --job-retries (gearmand 1.1.x
 * numbering: 0 = unlimited, N = fail the job with WORK_FAIL once it has
 * been lost N times). It travels in the command so that every node applies
 * the same limit. */
struct store_release {
    struct store_conn_ref worker;
    struct store_buf function; /* empty: every job the worker holds */
    uint32_t max_retries;
};

struct store_job_timeout {
    struct store_conn_ref worker;
    struct store_buf handle;
    uint32_t max_retries;
};

struct store_node_gone {
    uint64_t node_id;
    uint64_t incarnation; /* every incarnation <= this one is gone */
    uint32_t max_retries;
};

struct store_maxqueue {
    struct store_buf function;
    int32_t limit[STORE_PRIO_COUNT]; /* 0 = unlimited, negative means 0 */
};

/* The admin commands below answer the admin connection `admin`. */
struct store_admin {
    struct store_conn_ref admin;
    struct store_buf function; /* FUNC_CREATE, FUNC_DROP */
    struct store_buf handle;   /* CANCEL */
    struct store_maxqueue maxqueue;
};

/* A membership change (STORE_CMD_MEMBER). */
enum store_member_op {
    STORE_MEMBER_ADD = 1,      /* a new learner: member row put */
    STORE_MEMBER_PROMOTE = 2,  /* a learner becomes a voter */
    STORE_MEMBER_REMOVE = 3,   /* member row deleted */
    STORE_MEMBER_TRANSFER = 4, /* leadership handed to member.id (0: any) */
};

/* What the leader made of a change when it proposed it: only OK changes
 * the member table; the others answer the admin connection with
 * store_member_verdict_text. NONE: no leader judged it (refused). */
enum store_member_verdict {
    STORE_VERDICT_NONE = 0,
    STORE_VERDICT_OK = 1,
    STORE_VERDICT_BUSY = 2,       /* another change is not committed yet */
    STORE_VERDICT_CATCHUP = 3,    /* the learner is behind the log */
    STORE_VERDICT_LAST_VOTER = 4, /* removing the only voter */
    STORE_VERDICT_UNKNOWN = 5,    /* not a member */
    STORE_VERDICT_EXISTS = 6,     /* already a member (or a voter) */
    STORE_VERDICT_TOO_MANY = 7,   /* the configuration is full */
    STORE_VERDICT_NOT_VOTER = 8,  /* transfer to a learner */
    STORE_VERDICT_SELF = 9,       /* transfer to the leader itself */
    STORE_VERDICT_NO_VOTER = 10,  /* transfer: no other voter */
    STORE_VERDICT_FAILED = 11,    /* raft/ refused for another reason */
    STORE_VERDICT_VOTER = 12,     /* promote: a voter already */
    STORE_VERDICT_USED = 13,      /* add: the name ran commands before */
    STORE_VERDICT_COUNT           /* number of verdicts; not a verdict */
};

/* The admin reply text of a refusal (words joined with '+', as
 * docs/protocol.md's admin errors are); static. */
const char *store_member_verdict_text(uint32_t verdict);

struct store_member_change {
    struct store_conn_ref admin; /* gets OK or ERR once applied */
    enum store_member_op op;
    struct store_member member; /* ADD: all of it; else id and name */
    uint32_t verdict;           /* enum store_member_verdict */
};

struct store_cmd {
    enum store_cmd_type type;
    struct store_origin origin;
    /* The leader's wall clock (ms since the epoch) when it proposed the
     * command, which apply takes as "now"; 0 in entries of older builds
     * (the log record's own stamp then). */
    uint64_t time_ms;
    union {
        struct store_submit submit;
        struct store_grab grab;
        struct store_work work;
        struct store_release release;
        struct store_job_timeout timeout;
        struct store_conn_ref client_gone;
        struct store_node_gone node_gone;
        struct store_admin admin; /* CANCEL, MAXQUEUE, FUNC_CREATE/DROP */
        struct store_member_change member; /* MEMBER */
    } u;
};

/* Encodes cmd into a new buffer. On success *out is owned by the caller,
 * who frees it with store_free(). Errors: STORE_ENOMEM, STORE_EINVAL. */
int store_cmd_encode(const struct store_cmd *cmd, uint8_t **out,
                     size_t *out_len);

/* Appends time_ms to an encoded command (the leader's stamp on a
 * command another node encoded): writes the field into out, which has
 * room for STORE_CMD_STAMP_MAX bytes, and returns its length. Decoding
 * the bytes followed by these gives the command with this time_ms. */
#define STORE_CMD_STAMP_MAX 11
size_t store_cmd_stamp(uint64_t time_ms, uint8_t *out);

/* Appends the leader's verdict (enum store_member_verdict) to an encoded
 * MEMBER command, as store_cmd_stamp does the time: writes the field into
 * out (room for STORE_CMD_STAMP_MAX bytes) and returns its length. */
size_t store_cmd_verdict(uint32_t verdict, uint8_t *out);

/* True if the encoded command is a MEMBER one: a walk over its top-level
 * fields, without decoding or allocating (the leader checks every command
 * it proposes). Malformed bytes: false. */
bool store_cmd_is_member(const uint8_t *bytes, size_t len);

/* Reads the origin of an encoded command the same way, without decoding
 * the rest (a leader drops a forwarded command it already appended this
 * term). True when the bytes hold exactly one well-formed origin; false
 * for none or malformed bytes (*out is then zero or partial). */
bool store_cmd_origin(const uint8_t *bytes, size_t len,
                      struct store_origin *out);

/* Decodes bytes (from the log or a peer). On success *out is owned by the
 * caller, who frees it with store_cmd_free(); its bufs point into *out.
 * Errors: STORE_EMALFORMED for anything hostile or truncated (never an
 * assert), STORE_ENOMEM. */
int store_cmd_decode(const uint8_t *bytes, size_t len, struct store_cmd **out);
void store_cmd_free(struct store_cmd *cmd);
void store_free(void *p);

/* ---------------------------------------------------------------------
 * Effects: what apply tells node/ to do once the transaction committed.
 */
enum store_effect_type {
    /* JOB_CREATED to `to` (handle). */
    STORE_FX_CREATED = 1,
    /* ERROR to `to`: code and text (e.g. QUEUE_ERROR "Job queue is
     * full"). */
    STORE_FX_REFUSED = 2,
    /* JOB_ASSIGN / _UNIQ / _ALL to the worker `to`: handle, function,
     * unique, reducer, data. */
    STORE_FX_ASSIGN = 3,
    /* NO_JOB to the worker `to`. */
    STORE_FX_NO_JOB = 4,
    /* Forward a WORK_* packet (work_kind) for `handle` to the foreground
     * client `to`. One effect per waiting client (none when nobody
     * waits); `to` may belong to another node, whose own apply emits the
     * same effect: send only when to.node_id and to.incarnation are
     * yours. For WORK_EXCEPTION, node/ sends WORK_FAIL to clients without
     * the exceptions option. */
    STORE_FX_FORWARD = 5,
    /* A runnable job for `function` was queued or requeued: wake the
     * node's sleeping workers that can do it (NOOP). */
    STORE_FX_WAKE = 6,
    /* The job `handle` ended (completed, failed, cancelled, dropped):
     * forget local waiters and timers for it. */
    STORE_FX_JOB_DONE = 7,
    /* Reply to an admin command: code 0 = "OK", else `text` after
     * "ERR ". */
    STORE_FX_ADMIN_REPLY = 8,
    /* The command overtook one its proposer made before it and has not
     * had applied (storage/replays.c): it changed nothing. To
     * the proposer `to` (conn_id 0), which proposes it again after the
     * earlier one. */
    STORE_FX_OVERTAKEN = 9,
};

struct store_effect {
    enum store_effect_type type;
    struct store_conn_ref to;
    enum store_work_kind work_kind; /* FORWARD */
    bool coalesced;                 /* CREATED: joined an existing job */
    bool background;                /* CREATED */
    int code;                       /* REFUSED, ADMIN_REPLY */
    struct store_buf error_code;    /* REFUSED: e.g. "QUEUE_ERROR" */
    struct store_buf text;          /* REFUSED, ADMIN_REPLY */
    struct store_buf handle;
    uint64_t job; /* ASSIGN, JOB_DONE: the number in `handle` */
    struct store_buf function;
    struct store_buf unique;
    struct store_buf reducer;
    struct store_buf data;        /* ASSIGN payload, FORWARD payload */
    struct store_buf numerator;   /* FORWARD of STATUS */
    struct store_buf denominator; /* FORWARD of STATUS */
};

/* A growing list of effects whose bufs live in memory owned by the list:
 * valid until store_effects_reset() or store_effects_close(). Several
 * effects may share the same bytes (one payload forwarded to many
 * clients). Fields an effect type does not mention are zero; `to` is
 * zero for WAKE and JOB_DONE. REFUSED's error_code and text point to
 * static strings. */
struct store_effects {
    struct store_effect *v;
    size_t n;
    size_t cap;
    void *arena; /* private */
};

void store_effects_init(struct store_effects *fx);
void store_effects_reset(struct store_effects *fx);
void store_effects_close(struct store_effects *fx);

/* Copies of this many bytes or more get a block of their own in the
 * effect list, which store_effects_hold can keep alive. */
#define STORE_EFFECT_OWN_BLOCK ((size_t)64 * 1024 + 1)
/* Keeps the bytes at base alive past store_effects_reset and _close when
 * they are a large copy of their own (STORE_EFFECT_OWN_BLOCK bytes or
 * more: a payload), so they can be sent without another copy; returns a
 * token for
 * store_effects_unhold, or NULL when base is anything else (copy it
 * then). Unhold may run on any thread. */
void *store_effects_hold(struct store_effects *fx, const void *base);
void store_effects_unhold(void *token);

/* ---------------------------------------------------------------------
 * The environment and transactions.
 */
struct store;
struct store_txn;

struct store_config {
    const char *dir;     /* created if missing */
    size_t map_size;     /* bytes; 0 = default (large) */
    bool nometasync;     /* MDB_NOMETASYNC: a commit syncs the data but not
                          * the meta page; see store_sync() */
    uint64_t node_id;    /* recorded at creation, checked afterwards */
    const char *cluster; /* handle prefix part; NULL = keep/choose default */
    /* A cluster member (node_id is its Raft id) rather than a one-node
     * server. A fresh directory of a member is bootstrapped with
     * `members` (borrowed for the call), which must include node_id; once
     * the directory holds a cluster they are not looked at. */
    bool member;
    const struct store_member *members;
    size_t n_members;
    /* A fresh member's directory bootstrapped to join a running cluster
     * (--join): `members` is where its peers are, not a founding
     * configuration; recorded, see store_is_joiner. */
    bool joiner;
};

/* Opens (creating if needed) the environment in cfg->dir and bumps the
 * node's incarnation number durably. On success *out is owned by the
 * caller (store_close()).
 *
 * A fresh directory is set up in its first transaction: format, node id,
 * cluster name and, for a member, the member table (the bootstrap). The
 * cluster name (handle prefix "H:<cluster>:") is fixed then:
 * cfg->cluster, else STORE_CLUSTER_DEFAULT for a member and the host's
 * nodename cut to STORE_CLUSTER_MAX bytes for a one-node server. Later
 * opens keep the stored name (cfg->cluster NULL) or must name the same,
 * keep the stored members, and must be of the same kind and node id
 * (cfg->node_id 0 accepts the stored one).
 *
 * Errors: STORE_ENOMEM, STORE_EIO, STORE_ELOCKED (another process has the
 * directory), STORE_EVERSION, STORE_ECORRUPT, STORE_EINVAL (no dir, a bad
 * cluster name, bad members, or node_id not among them), STORE_EIDENTITY
 * (the directory and cfg disagree: another node id or cluster name, a
 * one-node server's directory opened by a member or the reverse, or a
 * fresh directory opened by a member without members: tell the operator,
 * nothing was written), STORE_ENOSPC (no room for the incarnation bump);
 * errmsg says what and where. */
int store_open(const struct store_config *cfg, struct store **out, char *errmsg,
               size_t errmsg_len);
void store_close(struct store *s);

/* True if the store_open that returned s created the directory's state
 * (and bootstrapped its members, for a member). */
bool store_is_new(const struct store *s);

/* True if the directory was bootstrapped to join a running cluster
 * (store_config.joiner): its member table is not a founding
 * configuration, and the node waits for a leader to add it. */
bool store_is_joiner(const struct store *s);

/* Copies the cluster name (the handle prefix part) and a NUL into out,
 * which has room for STORE_CLUSTER_MAX + 1 bytes; returns its length.
 * Call it on the thread that runs write transactions or between them: a
 * snapshot load changes the name when it commits. */
size_t store_cluster_name(const struct store *s, char *out);

/* The message of the last failure on s ("what we did: cause"). */
const char *store_errmsg(const struct store *s);

/* This process's incarnation (bumped by store_open) and node id. */
uint64_t store_incarnation(const struct store *s);
/* A running node that was declared gone continues as a new incarnation:
 * bumps it durably (its own write transaction, synced; call it only
 * between write batches). Errors: STORE_ENOSPC, STORE_EIO, STORE_ENOMEM;
 * the incarnation is unchanged then. */
int store_incarnation_bump(struct store *s);
uint64_t store_node_id(const struct store *s);

/* Begins a transaction; only one write transaction at a time. Read
 * transactions must be short (they pin pages). Errors: STORE_ENOMEM,
 * STORE_EIO. */
int store_txn_begin(struct store *s, bool write, struct store_txn **out);
/* Commits (and, for a write transaction, syncs) and frees txn whatever the
 * result. Errors: STORE_ENOSPC (nothing of the txn is kept), STORE_EIO.
 * Opened with cfg->nometasync, a write commit returns with its data synced
 * but its meta page (which makes it the current state after a crash) only
 * written: it is durable once the next write commit has synced, or
 * store_sync() has returned, whichever comes first. */
int store_txn_commit(struct store_txn *txn);
/* Syncs the environment's file: every commit that returned before this
 * call is durable when it returns 0. Safe to call from one thread while
 * another runs a write transaction. Errors: STORE_EIO. */
int store_sync(struct store *s);
/* Keeps a few MiB of zeroed, allocated file past the last page in use, so
 * that commits overwrite blocks rather than grow the file (which costs
 * every commit's sync extra metadata writes while the queue grows).
 * Writes at most 1 MiB per call. Call it only from the thread that runs
 * write transactions, between them: it writes where LMDB's next pages go.
 * An error only means the file was not grown (the commits grow it then):
 * STORE_ENOSPC, STORE_EIO. */
int store_grow_ahead(struct store *s);
void store_txn_abort(struct store_txn *txn);

struct store_stat {
    uint64_t map_size;    /* bytes the map may grow to */
    uint64_t map_used;    /* bytes in use */
    uint64_t disk_free;   /* bytes free on the file system */
    uint64_t first_index; /* first log index kept (0 if empty) */
    uint64_t last_index;
    uint64_t applied_index;
    uint64_t n_jobs;
};
/* Space and log figures for free-space watching. map_used is the bytes
 * of the map's pages in use: LMDB's high-water mark minus the pages on its
 * free list (which are reused before the map grows), so it goes down as
 * jobs are completed and the log is compacted. Opens its own short read
 * transaction. Errors: STORE_EIO, STORE_ENOMEM, STORE_ECORRUPT. */
int store_stat(struct store *s, struct store_stat *st);

/* ---------------------------------------------------------------------
 * The Raft log and hard state.
 */
enum store_entry_type {
    STORE_ENTRY_COMMAND = 1, /* data is an encoded store_cmd */
    STORE_ENTRY_NOOP = 2,
    STORE_ENTRY_CONFIG = 3, /* membership; data opaque to storage */
};

struct store_entry {
    uint64_t index;
    uint64_t term;
    uint64_t leader_time_ms; /* stamp apply uses as "now" */
    enum store_entry_type type;
    struct store_buf data; /* borrowed until the txn ends */
};

/* Appends one entry; index must be last_index + 1 (or the first index of
 * an empty log). Record carries a CRC32C. Errors: STORE_EINVAL (index out
 * of order), STORE_ENOSPC, STORE_ENOMEM. */
int store_log_append(struct store_txn *txn, const struct store_entry *e);
/* The same for a command entry, encoded straight into its log record
 * (one copy of the payload fewer than store_cmd_encode + append): e gives
 * index, term and leader time; its type and data are ignored. On an error
 * the transaction must be aborted. Errors: those of both. */
int store_log_append_cmd(struct store_txn *txn, const struct store_entry *e,
                         const struct store_cmd *cmd);
/* Reads one entry; data borrowed until the txn ends. Errors:
 * STORE_ENOTFOUND, STORE_ECORRUPT (CRC mismatch). */
int store_log_get(struct store_txn *txn, uint64_t index,
                  struct store_entry *out);
/* Deletes every entry with index >= from (a follower's conflict). */
int store_log_truncate(struct store_txn *txn, uint64_t from);
/* Deletes every entry with index <= upto (compaction behind a snapshot or
 * the applied index). */
int store_log_compact(struct store_txn *txn, uint64_t upto);
/* first = 0 and last = the compaction point when the log is empty. */
int store_log_bounds(struct store_txn *txn, uint64_t *first, uint64_t *last);

struct store_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};
int store_hs_get(struct store_txn *txn, struct store_hard_state *out);
int store_hs_set(struct store_txn *txn, const struct store_hard_state *hs);

/* What the Raft log was compacted behind: the last entry the queue tables
 * cover (index, term) and the membership in force there, as the bytes
 * raft/ encodes it (opaque here). */
struct store_snap_meta {
    uint64_t index;
    uint64_t term;
    struct store_buf conf; /* get: borrowed until the txn ends */
};
/* Errors: STORE_ENOTFOUND (never written), STORE_ECORRUPT (checksum or
 * version), STORE_EIO. */
int store_snap_meta_get(struct store_txn *txn, struct store_snap_meta *out);
/* Errors: STORE_EINVAL (read txn, or conf over 4 KiB), STORE_ENOSPC,
 * STORE_ENOMEM, STORE_EIO. */
int store_snap_meta_set(struct store_txn *txn, const struct store_snap_meta *m);

/* ---------------------------------------------------------------------
 * The member table: every member's Raft id, name and peer address, which
 * the bootstrap writes (store_open) and snapshots carry. Records carry a
 * CRC32C. A one-node server's table is empty.
 */

/* The member table, in id order, into out (room for STORE_MEMBERS_MAX);
 * *n is 0 for a one-node server's directory. Errors: STORE_ECORRUPT (a
 * record's checksum, version or lengths, or more than STORE_MEMBERS_MAX
 * records), STORE_EIO. */
int store_members_get(struct store_txn *txn, struct store_member *out,
                      size_t *n);
/* Replaces the member table with the n members of v (borrowed for the
 * call). Errors: STORE_EINVAL (a read txn; more than STORE_MEMBERS_MAX;
 * an id 0 or seen twice, an empty or over-long name or host, port 0:
 * nothing written), STORE_ENOSPC, STORE_EIO (abort the txn then). */
int store_members_set(struct store_txn *txn, const struct store_member *v,
                      size_t n);
/* Puts one member (replacing the row of its id), or deletes the row of
 * id (none: nothing). Errors: STORE_EINVAL (a read txn, an invalid
 * member), STORE_ENOSPC, STORE_EIO. */
int store_member_put(struct store_txn *txn, const struct store_member *m);
int store_member_del(struct store_txn *txn, uint64_t id);

/* ---------------------------------------------------------------------
 * Snapshots of the queue tables (jobs, indexes, functions, replay table,
 * member table, applied index and cluster name; not the log, hard state
 * or node id).
 */

/* Writes len bytes; 0 or a negative STORE_E* code, which stops the dump
 * and is returned. */
typedef int (*store_snap_write_fn)(void *arg, const void *buf, size_t len);
/* Reads exactly len bytes into buf; 0, or a negative STORE_E* code (use
 * STORE_EMALFORMED for a stream that ends early). */
typedef int (*store_snap_read_fn)(void *arg, void *buf, size_t len);

/* Streams the queue state as of one read transaction to fn and sets
 * *index (may be NULL) to the applied index it covers. Writes go on
 * meanwhile, but keep fn fast: the read txn pins pages while it runs.
 * Errors: whatever fn returns, STORE_ECORRUPT, STORE_EIO, STORE_ENOMEM. */
int store_snap_write(struct store *s, store_snap_write_fn fn, void *arg,
                     uint64_t *index);
/* Replaces the queue state in the write txn with the stream from fn and
 * sets *index (may be NULL) to the applied index it covers; the node also
 * adopts the stream's cluster name when txn commits, and its member
 * table (a stream of an older build, without one, leaves the table as it
 * is). The caller then compacts its log up to *index. On any error abort
 * txn: nothing of the stream is kept. Errors: whatever fn returns,
 * STORE_EMALFORMED (bad magic, record, order or checksum),
 * STORE_EVERSION, STORE_ENOSPC, STORE_EIO, STORE_EINVAL (read txn). */
int store_snap_read(struct store_txn *txn, store_snap_read_fn fn, void *arg,
                    uint64_t *index);

/* The replicated state as one number: a 64-bit FNV-1a hash of the stream
 * store_snap_write gives (every table a snapshot carries, the applied
 * index and the cluster name), taken from one read transaction. Two
 * stores with the same digest hold the same state; tests/simhost compares
 * members by it at equal applied indexes. Sets *index (may be NULL) to
 * the applied index and *digest. It reads every table: not for a hot
 * path. Errors: those of store_snap_write (STORE_ECORRUPT, STORE_EIO,
 * STORE_ENOMEM). */
int store_digest(struct store *s, uint64_t *index, uint64_t *digest);

/* ---------------------------------------------------------------------
 * Apply and queries.
 */

/* Applies the committed command at log `index` with the leader's time
 * stamp as "now", records `index` as the applied index in the same txn,
 * and appends what node/ must do to fx, in the order node/ must do it.
 * Deterministic. A command that is invalid for the current state (unknown
 * handle, queue full...) is not an error: it yields an effect (REFUSED,
 * ADMIN_REPLY with an error text...). An index <= the applied index is
 * ignored (returns 0, no effects), so replaying the log tail after a
 * restart is safe. A replayed command (struct store_origin says which)
 * changes nothing but the applied index (origin.seq 0 is never
 * dropped), and so does a command that overtook an earlier one of its
 * proposer still to come (OVERTAKEN to the proposer: it proposes it
 * again). Errors are only STORE_ENOSPC,
 * STORE_ENOMEM, STORE_ECORRUPT, STORE_EIO, after which the caller must
 * abort the transaction and drop fx's effects (store_effects_reset):
 * they may include part of this command's. The commands in short (see
 * storage/apply.c for the gearmand references):
 *   SUBMIT    CREATED (coalesced onto a queued or running job of the same
 *             function and non-empty unique, "-" = same payload), then WAKE
 *             if runnable now; REFUSED QUEUE_ERROR when maxqueue is hit.
 *   GRAB      ASSIGN of the best job of the first listed function that has
 *             a runnable one, else NO_JOB.
 *   WORK      FORWARD to each waiter; COMPLETE/FAIL/EXCEPTION then
 *             JOB_DONE; REFUSED JOB_NOT_FOUND unless sent by the holder.
 *   RELEASE, JOB_TIMEOUT, NODE_GONE: requeue at the tail (WAKE), or at
 *             the retry limit FORWARD FAIL + JOB_DONE.
 *   CLIENT_GONE: JOB_DONE for queued foreground jobs nobody else wants.
 *   CANCEL    FORWARD FAIL, JOB_DONE (queued job), ADMIN_REPLY.
 *   MAXQUEUE, FUNC_CREATE, FUNC_DROP: ADMIN_REPLY.
 *   MEMBER    ADMIN_REPLY; an OK ADD puts its member row, an OK REMOVE
 *             deletes it (the member table follows the log). */
int store_apply(struct store_txn *txn, uint64_t index, uint64_t leader_time_ms,
                const struct store_cmd *cmd, struct store_effects *fx);

/* True (*out) if applying sub to txn's state would surely queue a new
 * job, runnable at once: sub is valid, not scheduled (SUBMIT_JOB_EPOCH),
 * joins no job by its unique key, and its function has no queue limit at
 * its priority. False when it would not, or might not. For a node that
 * hands a job out before its submission is applied. Errors: STORE_EIO,
 * STORE_ECORRUPT. */
int store_submit_queues_new(struct store_txn *txn,
                            const struct store_submit *sub, bool *out);

/* The newest incarnation of node_id that has had a command applied (0:
 * none), from the replay table: what a leader declares gone when the
 * node stops answering. Errors: STORE_ECORRUPT, STORE_EIO. */
int store_node_incarnation(struct store_txn *txn, uint64_t node_id,
                           uint64_t *out);

/* True (*out) if apply is done with command origin o: its seq was
 * applied (or given up: below the proposer's promise), or a newer
 * incarnation of its node has had a command applied, so a copy would be
 * dropped. For a member that installed a snapshot: its own proposals
 * whose entries the snapshot holds were applied where it could not see
 * their effects. Errors: STORE_ECORRUPT, STORE_EIO. */
int store_origin_applied(struct store_txn *txn, const struct store_origin *o,
                         bool *out);

/* Applied index recorded with the queue tables. */
int store_applied_index(struct store_txn *txn, uint64_t *out);

struct store_job_status {
    bool known;
    bool running;
    uint32_t numerator;
    uint32_t denominator;
    uint32_t n_waiting; /* foreground clients attached */
};
/* GET_STATUS by handle; unknown or foreign handles give known = false.
 * Errors: STORE_ECORRUPT (CRC mismatch), STORE_ENOMEM, STORE_EIO. */
int store_job_status(struct store_txn *txn, struct store_buf handle,
                     struct store_job_status *out);
/* GET_STATUS_UNIQUE: the job with this unique in any function (the
 * first function in byte order if several have one; jobs of the unique
 * "-" are keyed by payload and not found here). One index lookup per
 * function in the function table. */
int store_job_status_unique(struct store_txn *txn, struct store_buf unique,
                            struct store_job_status *out);

/* True if a job for one of the functions is runnable at `now_ms` (used to
 * answer PRE_SLEEP with an immediate NOOP). */
int store_has_runnable(struct store_txn *txn, const struct store_buf *functions,
                       size_t n_functions, uint64_t now_ms, bool *out);
/* A job about to be handed to a worker; bufs borrowed for the call. */
struct store_job_view {
    uint64_t num;
    struct store_buf handle;
    struct store_buf function;
    struct store_buf unique;
    struct store_buf reducer;
    struct store_buf data;
    enum store_prio prio;
    uint32_t n_waiters;           /* foreground clients waiting on it */
    struct store_conn_ref waiter; /* the first of them */
};
/* True if job num is to be passed over. */
typedef bool (*store_skip_fn)(void *arg, uint64_t num);
typedef int (*store_view_fn)(void *arg, const struct store_job_view *v);
/* The job an ordinary GRAB of these functions would take at now_ms from
 * txn's state, passing over the jobs skip (may be NULL) names: fn gets it
 * and *found is true; else *found is false and fn is not called. For a
 * node that hands a job out before its GRAB is applied (STORE_CMD_GRAB
 * with `job`). Errors: STORE_ECORRUPT, STORE_ENOMEM, STORE_EIO, or what
 * fn returns. */
int store_pick_job(struct store_txn *txn, const struct store_buf *functions,
                   size_t n_functions, uint64_t now_ms, store_skip_fn skip,
                   void *skip_arg, store_view_fn fn, void *arg, bool *found);
/* Writes job num's handle ("H:<cluster>:<num>") to out, which has room
 * for out_len >= STORE_HANDLE_MAX bytes; returns its length. */
size_t store_handle_format(const struct store *s, uint64_t num, char *out,
                           size_t out_len);
/* Earliest due time (ms) of a queued epoch job later than now_ms, or 0.
 * A job due at `when` seconds is runnable once now_ms / 1000 >= when; arm
 * a timer for *out and send WAKE-like NOOPs then (the 1.1.x #101 fix). */
int store_next_due(struct store_txn *txn, uint64_t now_ms, uint64_t *out);

struct store_func_info {
    struct store_buf name;
    uint64_t queued[STORE_PRIO_COUNT];
    uint64_t running;
    int32_t maxqueue[STORE_PRIO_COUNT];
};
struct store_job_info {
    struct store_buf handle;
    struct store_buf function;
    struct store_buf unique;
    uint32_t retries;
    bool running;
    bool background;
    bool ignore; /* running, but cancelled or every client left */
    enum store_prio prio;
};
/* Iterators for the admin protocol, in key order; bufs borrowed for the
 * call. A callback returning non-zero stops the walk (that value is
 * returned). */
typedef int (*store_func_fn)(void *arg, const struct store_func_info *f);
typedef int (*store_job_fn)(void *arg, const struct store_job_info *j);
int store_funcs_walk(struct store_txn *txn, store_func_fn fn, void *arg);
int store_jobs_walk(struct store_txn *txn, store_job_fn fn, void *arg);

/* ---------------------------------------------------------------------
 * Checksums.
 */
/* Continues the CRC32C (Castagnoli) crc over len bytes of buf; start with
 * crc = 0. The same function storage/ checks its records with, exported
 * for the peer transport's frames (node/cluster/peer.c) so that the node
 * has one CRC32C. buf is borrowed for the call and may be NULL when len is
 * 0. Thread-safe; it cannot fail. */
uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len);

/* The 64-bit FNV-1a hash of len bytes of buf (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3): the key of a unique "-" and,
 * in node/, a member's Raft id come from it, so it is fixed for good.
 * buf may be NULL when len is 0. It cannot fail. */
uint64_t store_fnv1a64(const void *buf, size_t len);

#endif /* GEARRAFT_STORE_H */
