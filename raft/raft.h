/* SPDX-License-Identifier: BSD-3-Clause
 * raft/raft.h - the public interface of the pure Raft core.
 *
 * The core is a deterministic state machine: it does no I/O, reads no clock
 * and draws no randomness of its own.  Time comes in as milliseconds from the
 * host, randomness from the seed in struct raft_config, and every effect goes
 * out through one ready batch.  That is what lets tests/sim run many
 * clusters on a virtual clock from a seed.
 *
 * Not here: sockets, disks, encoding of messages on the wire (node/
 * peer_codec.c), the state machine the entries are applied to (storage/).
 *
 * THE HOST LOOP
 * =============
 * Start:  raft_new(&config, &restore, now, &r) with what the host persisted
 *         (hard state, the latest snapshot's meta and length, the log
 *         entries after it, and the index its state machine has applied).
 *
 * Then, in every turn of the event loop:
 *   1. Feed inputs, each with the current time `now` (milliseconds from any
 *      monotonic origin; it must never go backwards):
 *        raft_step(r, now, msg)       for each message received from a peer,
 *        raft_tick(r, now)            when now >= ready.next_wakeup (calling
 *                                     it more often is harmless),
 *        raft_propose / raft_read_index / raft_transfer_leadership /
 *        raft_add_learner / raft_promote / raft_remove  for local requests,
 *        raft_campaign                to start an election at once (a lone
 *                                     voter at start-up),
 *        raft_snapshot_done           after the host took a snapshot,
 *        raft_applied                 after applying committed entries.
 *      Any of them, and raft_ready and raft_advance below, may call
 *      config.fetch ("Memory") to read persisted entries back; nothing
 *      else calls into the host.
 *   2. If raft_has_ready(r), call raft_ready(r, &ready) and, IN THIS ORDER:
 *        a. send ready.msgs_now (leader AppendEntries, heartbeats, snapshot
 *           chunks, TimeoutNow, pre-votes): they may leave before anything
 *           is persisted (thesis 10.2.1).  A SNAPSHOT message carries no
 *           bytes (data.base is NULL): the host fills data.len bytes from
 *           offset u.snapshot.offset of its snapshot file for
 *           u.snapshot.meta (index and term name it) as it encodes the
 *           message, and drops the message if it has no such file;
 *        b. persist, atomically or in this order and durably (fsync):
 *           - if ready.has_hard_state: store its term and vote FIRST (a
 *             crash that kept entries or a snapshot of term T but lost the
 *             hard state that raised the term to T leaves a state raft_new
 *             refuses with RAFT_ECORRUPT; tests/sim --tear-hs-last and
 *             seed 7873 show it);
 *           - if ready.snapshot_chunk != NULL: write its data at its offset
 *             into the file of the snapshot being received (offset 0
 *             starts a new file: discard any partial one);
 *           - if ready.snapshot != NULL: replace the state machine with the
 *             snapshot received in those chunks (ready.snapshot->meta
 *             names it, ->len is its size), record its meta as the latest
 *             snapshot and delete EVERY persisted log entry;
 *           - if ready.truncate_from != 0: delete the persisted entries with
 *             index >= ready.truncate_from;
 *           - append ready.entries (they are contiguous and follow the
 *             persisted log, or the snapshot);
 *           - if ready.has_hard_state: store its commit index LAST (with
 *             the term and vote again, say): raft_new trusts it for the
 *             log it finds, so it must never be on disk before the
 *             snapshot, truncation and entries it vouches for (a crash
 *             that kept a new commit index without the snapshot that
 *             replaces stale entries makes a restarted follower commit
 *             them; tests/sim seed 579 shows it).  Writing the whole batch
 *             in one transaction, as node/ does, meets all of this;
 *        c. only then send ready.msgs_after_persist (votes, acknowledgments:
 *           they vouch for the state just persisted);
 *        d. apply ready.committed in order (they are already persisted: the
 *           batch persisted them in step b at the latest), and serve
 *           ready.reads whose index <= the applied index;
 *        e. raft_advance(r, &ready);
 *        f. if ready.want_snapshot: a follower needs entries the host's log
 *           no longer holds and the latest snapshot is older than them;
 *           take a snapshot at the applied index soon (raft_snapshot_done).
 *      Between raft_ready and raft_advance the host must not call any other
 *      function that takes a non-const struct raft * (the batch points into
 *      the core's memory and stays valid only until raft_advance).
 *      raft_advance tells the core that everything in the batch was
 *      persisted; the leader counts itself towards the commit quorum only
 *      for entries acknowledged this way.  After raft_advance more work may
 *      be ready (for example a single-voter leader commits what was just
 *      persisted): loop on step 2 while raft_has_ready(r).
 *   3. Sleep until a message arrives or ready.next_wakeup
 *      (raft_next_wakeup(r)).
 *
 * Memory.  The host's disk is the authority for the log and the only
 * holder of snapshots; the core keeps a bounded window:
 *   - log entries: those not yet persisted, those not yet handed out in
 *     ready.committed, and behind them a tail of at most
 *     config.window_entries entries and config.window_bytes bytes, for
 *     followers slightly behind.  Older entries a follower needs are read
 *     back with config.fetch, a synchronous callback: the core calls a
 *     function pointer and copies what it returns, so it stays pure and
 *     deterministic, and a fetched entry is in the very message that
 *     needs it, without a round trip through the ready batch and the
 *     bookkeeping of requests answered later.  The copies live in
 *     the messages of one batch and are freed at raft_advance: the leader
 *     holds at most the window plus what it has in flight to followers
 *     (max_inflight_bytes each).  A leader backtracking a follower's log
 *     below its window looks terms up the same way (a binary search, a
 *     few entries per rejection).  A fetch that fails (the host compacted
 *     the entries) makes the leader send a snapshot instead.  The host
 *     keeps its entries from raft_first_index(r) on; deleting more only
 *     costs followers a snapshot.  (raft_new still takes the restored
 *     log in one array from the host, and keeps only the window of it.)
 *   - snapshots: none of their bytes.  The host writes its snapshot file
 *     (for gearraft the queue tables, dumped from one read transaction)
 *     and tells raft_snapshot_done its meta and length; chunks to send
 *     are filled by the host (step a), chunks received are handed to the
 *     host one by one (step b) and acknowledged only once persisted.
 *     The host keeps the file of the latest snapshot the core knows of
 *     (raft_snapshot_meta) until a newer one replaces it.
 *
 * Sending is best effort: a message may be dropped, duplicated or reordered
 * by the network and the core recovers.  A host that fails to persist must
 * stop (or restart from what is on disk); it must not call raft_advance.
 *
 * Threads: a struct raft is used by one thread at a time.  The only global
 * state is the allocator and assert hooks, meant to be set once at start
 * (or by tests).
 */
#ifndef GR_RAFT_RAFT_H
#define GR_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * Scalars, buffers, errors
 * ------------------------------------------------------------------------ */

typedef uint64_t raft_id;    /* a server; 0 means "none" */
typedef uint64_t raft_term;  /* 0 before any election */
typedef uint64_t raft_index; /* log positions start at 1; 0 means "none" */

/* Bytes.  Who owns base is said wherever a raft_buf appears. */
struct raft_buf {
    void *base;
    size_t len;
};

/* Every error code, once: name, value, message.  Codes are negative. */
#define RAFT_ERRORS(X)                                                         \
    X(RAFT_ENOMEM, -1, "out of memory")                                        \
    X(RAFT_EINVAL, -2, "invalid argument")                                     \
    X(RAFT_ENOTLEADER, -3, "this server is not the leader")                    \
    X(RAFT_EBUSY, -4, "busy: too much uncommitted data or a change pending")   \
    X(RAFT_EMALFORMED, -5, "malformed message")                                \
    X(RAFT_ECATCHUP, -6, "the learner has not caught up with the log yet")     \
    X(RAFT_ETOOMANY, -7, "too many members in the configuration")              \
    X(RAFT_ECORRUPT, -8, "restored state is inconsistent")                     \
    X(RAFT_ETRANSFER, -9, "a leadership transfer is in progress")              \
    X(RAFT_ENOTFOUND, -10, "no such member")

enum raft_error {
#define RAFT__ERR_ENUM(name, value, msg) name = (value),
    RAFT_ERRORS(RAFT__ERR_ENUM)
#undef RAFT__ERR_ENUM
};

/* The message for an error code; "unknown raft error" for anything that is
 * not a code (0 gives "success").  The string is static. */
const char *raft_strerror(int rv);

/* ------------------------------------------------------------------------
 * Log entries and configurations
 * ------------------------------------------------------------------------ */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* host data: a state machine command */
    RAFT_ENTRY_NOOP = 2,   /* appended by each new leader (thesis 6.4) */
    RAFT_ENTRY_CONF = 3,   /* data is an encoded struct raft_conf */
    RAFT_ENTRY_TYPE_COUNT  /* number of types plus one; not a type */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    enum raft_entry_type type;
    struct raft_buf data; /* owner said where the entry appears */
};

/* Most servers a configuration holds (voters and learners together). */
#define RAFT_MAX_MEMBERS 16

struct raft_member {
    raft_id id;
    bool voter; /* false: a learner, which replicates but does not vote */
};

/* A cluster configuration.  Members are unique and have id != 0. */
struct raft_conf {
    size_t n_members;
    struct raft_member members[RAFT_MAX_MEMBERS];
};

/* Size in bytes of the encoding of `conf` (the data of a CONF entry). */
size_t raft_conf_encoded_len(const struct raft_conf *conf);

/* Encodes `conf` into buf, which has raft_conf_encoded_len(conf) bytes.
 * Format (version 1; bump the version byte and keep decoding 1 if it ever
 * changes): u8 version=1, u8 n_members, then per member u64 id big-endian
 * and u8 voter (0 or 1). */
void raft_conf_encode(const struct raft_conf *conf, void *buf);

/* Decodes a CONF entry's data.  Returns 0 and fills *out, or
 * RAFT_EMALFORMED when the bytes are not a valid configuration (bad
 * version, length, too many members, id 0, duplicate id, voter flag not
 * 0/1).  *out is written only on success. */
int raft_conf_decode(const void *buf, size_t len, struct raft_conf *out);

/* The member with this id in conf, or NULL. */
const struct raft_member *raft_conf_find(const struct raft_conf *conf,
                                         raft_id id);

/* ------------------------------------------------------------------------
 * Snapshots and hard state
 * ------------------------------------------------------------------------ */

struct raft_snapshot_meta {
    raft_index index;      /* last log index the snapshot covers */
    raft_term term;        /* term of that entry */
    struct raft_conf conf; /* the configuration as of `index` */
};

/* A snapshot the host holds: its meta and the size of its data.  The data
 * (the host's serialized state machine) never enters the core. */
struct raft_snapshot {
    struct raft_snapshot_meta meta;
    uint64_t len; /* bytes of the host's snapshot file */
};

/* What must survive a crash besides the log (paper figure 2). */
struct raft_hard_state {
    raft_term term;
    raft_id vote;      /* voted for in `term`, 0 if none */
    raft_index commit; /* optional to persist, but never before the log
                          it covers (THE HOST LOOP, step b): raft_new
                          trusts it */
};

/* ------------------------------------------------------------------------
 * Messages between servers
 * ------------------------------------------------------------------------ */

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,    /* pre-vote request (thesis 9.6) */
    RAFT_MSG_PREVOTE_RESP,   /* answer to a pre-vote */
    RAFT_MSG_VOTE,           /* RequestVote (paper 5.2) */
    RAFT_MSG_VOTE_RESP,      /* answer to RequestVote */
    RAFT_MSG_APPEND,         /* AppendEntries (paper 5.3) */
    RAFT_MSG_APPEND_RESP,    /* answer to AppendEntries */
    RAFT_MSG_HEARTBEAT,      /* empty AppendEntries without log check */
    RAFT_MSG_HEARTBEAT_RESP, /* answer to a heartbeat */
    RAFT_MSG_SNAPSHOT,       /* InstallSnapshot chunk (paper 7) */
    RAFT_MSG_SNAPSHOT_RESP,  /* answer to a chunk */
    RAFT_MSG_TIMEOUT_NOW,    /* leadership transfer (thesis 3.10) */
    RAFT_MSG_TYPE_COUNT      /* number of types plus one; not a type */
};

/* PREVOTE and VOTE.  For PREVOTE, raft_msg.term is the term the sender
 * would campaign in (its term + 1); its own term is unchanged. */
struct raft_vote {
    raft_index last_index; /* candidate's last log entry (paper 5.4.1) */
    raft_term last_term;
    bool transfer; /* sent on TimeoutNow: ignore leader leases (4.2.3) */
};

/* PREVOTE_RESP and VOTE_RESP.  A granted pre-vote carries the requested
 * term in raft_msg.term; a rejection carries the voter's own term. */
struct raft_vote_resp {
    bool granted;
};

/* APPEND.  Entries are contiguous from prev_index + 1.  In a ready batch
 * they point into the core's log (valid until raft_advance); in raft_step
 * they are borrowed for the call. */
struct raft_append {
    raft_index prev_index;
    raft_term prev_term;
    raft_index commit; /* leader's commit index */
    uint64_t ctx;      /* read-index round, echoed in the response */
    size_t n_entries;
    const struct raft_entry *entries;
};

/* APPEND_RESP.  On success `index` is the last index known to match the
 * leader's log.  On reject `index` is the rejected prev_index and
 * (hint_index, hint_term) is the follower's last entry at or below
 * min(prev_index, its last index) whose term is <= the rejected prev_term,
 * so the leader can skip a whole term per round trip (paper 5.3, the
 * optimization at the end; etcd's findConflictByTerm). */
struct raft_append_resp {
    bool reject;
    raft_index index;
    raft_index hint_index;
    raft_term hint_term;
    uint64_t ctx;
};

/* HEARTBEAT: commit is min(leader commit, follower's match), so the
 * follower can apply it without a log check. */
struct raft_heartbeat {
    raft_index commit;
    uint64_t ctx;
};

struct raft_heartbeat_resp {
    uint64_t ctx;
};

/* SNAPSHOT: one chunk of the leader's latest snapshot, named by meta.
 * In raft_step data is borrowed for the call.  In ready.msgs_now data.base
 * is NULL and data.len says how many bytes the host fills in from its
 * snapshot file (THE HOST LOOP, step a).  As ready.snapshot_chunk, data is
 * core-owned until raft_advance. */
struct raft_snapshot_chunk {
    struct raft_snapshot_meta meta;
    uint64_t total_len; /* size of the whole snapshot data */
    uint64_t offset;    /* where data starts within it */
    bool last;          /* offset + data.len == total_len */
    struct raft_buf data;
};

/* SNAPSHOT_RESP.  `offset` is the number of bytes received so far (the
 * next one the follower wants).  done: the follower installed the snapshot
 * `index` (or already had it committed); reject: it wants a restart from
 * `offset` (0 when it holds a different partial snapshot). */
struct raft_snapshot_resp {
    raft_index index;
    uint64_t offset;
    bool done;
    bool reject;
};

struct raft_msg {
    enum raft_msg_type type;
    raft_id from;
    raft_id to;
    raft_term term;
    union {
        struct raft_vote vote;               /* PREVOTE, VOTE */
        struct raft_vote_resp vote_resp;     /* PREVOTE_RESP, VOTE_RESP */
        struct raft_append append;           /* APPEND */
        struct raft_append_resp append_resp; /* APPEND_RESP */
        struct raft_heartbeat heartbeat;     /* HEARTBEAT */
        struct raft_heartbeat_resp hb_resp;  /* HEARTBEAT_RESP */
        struct raft_snapshot_chunk snapshot; /* SNAPSHOT */
        struct raft_snapshot_resp snap_resp; /* SNAPSHOT_RESP */
    } u;                                     /* TIMEOUT_NOW has no body */
};

/* The name of a message type ("APPEND", ...) or "UNKNOWN"; static. */
const char *raft_msg_type_name(int type);

/* ------------------------------------------------------------------------
 * Trace events (structured; the host formats them, sims assert on them)
 * ------------------------------------------------------------------------ */

enum raft_trace_type {
    RAFT_TRACE_BECOME_FOLLOWER = 1,  /* term; peer = leader if known */
    RAFT_TRACE_BECOME_PRE_CANDIDATE, /* term = the term it would run in */
    RAFT_TRACE_BECOME_CANDIDATE,     /* term */
    RAFT_TRACE_BECOME_LEADER,        /* term, index = its no-op entry */
    RAFT_TRACE_VOTE_GRANTED,         /* I voted: term, peer = candidate */
    RAFT_TRACE_VOTE_REJECTED,        /* I refused: term, peer = candidate */
    RAFT_TRACE_PREVOTE_GRANTED,      /* I granted a pre-vote: peer */
    RAFT_TRACE_PREVOTE_REJECTED,     /* I refused a pre-vote: peer */
    RAFT_TRACE_ELECTION_TIMEOUT,     /* term, election timer fired */
    RAFT_TRACE_TERM_BUMP,            /* term = new term, peer = who told */
    RAFT_TRACE_COMMIT,               /* index = new commit index */
    RAFT_TRACE_TRUNCATE,             /* index = first removed entry */
    RAFT_TRACE_APPEND_REJECT,        /* I rejected an append: index = prev */
    RAFT_TRACE_CHECK_QUORUM_LOST,    /* leader steps down (thesis 6.2) */
    RAFT_TRACE_CONF_CHANGE,          /* index = conf entry, peer = member */
    RAFT_TRACE_SNAPSHOT_SEND,        /* leader starts a snapshot to peer */
    RAFT_TRACE_SNAPSHOT_INSTALL,     /* index = installed snapshot */
    RAFT_TRACE_SNAPSHOT_TAKEN,       /* index = host snapshot, log compacted */
    RAFT_TRACE_TRANSFER_START,       /* peer = target */
    RAFT_TRACE_TRANSFER_TIMEOUT_NOW, /* TimeoutNow sent to peer */
    RAFT_TRACE_TRANSFER_ABORT,       /* transfer to peer gave up */
    RAFT_TRACE_PROBE,                /* leader probes peer from index */
    RAFT_TRACE_READ_CONFIRMED,       /* index = read index released */
    RAFT_TRACE_STEP_DOWN_REMOVED,    /* leader removed from conf stepped down */
    RAFT_TRACE_IGNORED_DISRUPTIVE,   /* vote ignored in lease (thesis 4.2.3) */
    RAFT_TRACE_RESEND,               /* leader goes back to resend peer
                                        its log from index */
    RAFT_TRACE_TYPE_COUNT            /* number of types plus one; not one */
};

struct raft_trace_event {
    enum raft_trace_type type;
    raft_id id; /* the server reporting */
    raft_term term;
    raft_index index;
    raft_id peer;
    uint64_t now;
};

/* Called synchronously from inside raft_* functions; must not call back
 * into the same struct raft.  The event is borrowed for the call. */
typedef void (*raft_trace_fn)(void *arg, const struct raft_trace_event *ev);

/* The name of a trace type ("BECOME_LEADER", ...) or "UNKNOWN"; static. */
const char *raft_trace_type_name(int type);

/* ------------------------------------------------------------------------
 * Configuration and start
 * ------------------------------------------------------------------------ */

/* Reads persisted entries back for a follower that is behind (THE HOST
 * LOOP, "Memory"); called synchronously from inside raft_* functions, and
 * must not call into the same struct raft.  Fills out[0..*n) with the
 * entries lo, lo + 1, ... of the host's log, none past hi and at most
 * max_n (>= 2): out[0] always, then more while the data bytes of those
 * after out[0] stay within max_bytes, but at least out[1] when hi > lo.
 * The entries and their data are borrowed until the function is called
 * again or the raft_* function that called it returns (the core copies
 * them at once).  Returns 0, or nonzero when the host no longer holds
 * entry lo (compacted); *n is then ignored and the core sends a snapshot
 * instead. */
typedef int (*raft_fetch_fn)(void *arg, raft_index lo, raft_index hi,
                             size_t max_bytes, struct raft_entry *out,
                             size_t max_n, size_t *n);

enum raft_role {
    RAFT_FOLLOWER = 1,
    RAFT_PRE_CANDIDATE = 2,
    RAFT_CANDIDATE = 3,
    RAFT_LEADER = 4
};

struct raft_config {
    raft_id id; /* this server, != 0 */
    /* The configuration to use when nothing restored carries one (no
     * snapshot and no CONF entry): every server of a new cluster starts
     * with the same one.  A server that will be added later starts with an
     * empty one and learns its configuration from the leader. */
    struct raft_conf initial_conf;
    uint64_t election_timeout_ms; /* base; the timer is [base, 2*base) */
    uint64_t heartbeat_ms;        /* < election_timeout_ms */
    uint64_t seed;                /* drives the randomized timeouts */
    size_t max_msg_bytes;         /* entry bytes per APPEND, chunk size */
    size_t max_inflight_bytes;    /* unacknowledged bytes per follower */
    size_t max_inflight_msgs;     /* unacknowledged APPENDs per follower,
                                     at most RAFT_MAX_INFLIGHT_MSGS */
    size_t max_uncommitted_bytes; /* leader refuses proposals beyond this */
    size_t snapshot_trailing;     /* entries the host keeps behind a
                                     snapshot (raft_first_index) */
    size_t window_entries;        /* tail of handed-out entries kept in */
    size_t window_bytes;          /* memory (THE HOST LOOP, "Memory") */
    raft_fetch_fn fetch;          /* reads persisted entries back; NULL:
                                     every fetch fails */
    void *fetch_arg;
    bool pre_vote;       /* thesis 9.6 */
    bool check_quorum;   /* thesis 6.2, and leases of 4.2.3 */
    raft_trace_fn trace; /* may be NULL */
    void *trace_arg;
};

#define RAFT_MAX_INFLIGHT_MSGS 64

/* Fills *c with defaults for server `id`: election 1000 ms, heartbeat
 * 100 ms, seed = id, 1 MiB messages, 8 MiB and 64 messages in flight,
 * 64 MiB uncommitted, 1024 trailing entries, a window of 1024 entries and
 * 4 MiB, pre_vote and check_quorum on, an empty initial_conf, no fetch
 * and no trace. */
void raft_config_default(struct raft_config *c, raft_id id);

/* What the host persisted, handed back at start.  All of it is borrowed
 * for the call to raft_new (the core copies what it keeps). */
struct raft_restore {
    struct raft_hard_state hard_state;
    /* The latest snapshot's meta and length, or NULL.  The host keeps its
     * file to send to followers that fell behind. */
    const struct raft_snapshot *snapshot;
    /* The persisted log entries, contiguous and in order.  Without a
     * snapshot they start at index 1; with one they start at or below
     * snapshot->meta.index + 1 (entries at or below the snapshot index are
     * allowed: the host still holds them for fetch).  The core copies only
     * what its window keeps. */
    const struct raft_entry *entries;
    size_t n_entries;
    /* The last index the host's state machine has applied: committed
     * entries after it are handed out again in ready.committed.  At least
     * the snapshot index. */
    raft_index applied;
};

struct raft;

/* Creates a server from its configuration and persisted state, as a
 * follower of the restored term with its election timer started at now.
 * Returns 0 and sets *out (caller frees with raft_free()), or
 *   RAFT_EINVAL   config invalid (id 0, heartbeat >= election timeout, a
 *                 zero size, max_inflight_msgs > RAFT_MAX_INFLIGHT_MSGS,
 *                 initial_conf with duplicates or id 0);
 *   RAFT_ECORRUPT restore inconsistent (gap in the entries, entries whose
 *                 terms go down, a vote without a term, an entry at the
 *                 snapshot index with another term, applied below the
 *                 snapshot or above the last index, a CONF entry that does
 *                 not decode); the host's data is damaged;
 *   RAFT_ENOMEM.
 * *out is written only on success. */
int raft_new(const struct raft_config *config,
             const struct raft_restore *restore, uint64_t now,
             struct raft **out);

/* Frees the server and everything it owns.  raft_free(NULL) is a no-op.
 * An unacknowledged ready batch dies with it. */
void raft_free(struct raft *r);

/* ------------------------------------------------------------------------
 * Inputs
 * ------------------------------------------------------------------------ */

/* Advances the clock to `now` and fires due timers: the randomized
 * election timeout (paper 5.2, pre-vote first when enabled), leader
 * heartbeats, the CheckQuorum round (thesis 6.2) and the leadership
 * transfer deadline.  Returns 0 (timers never fail; messages that cannot
 * be queued for lack of memory count as lost), or RAFT_EINVAL if a ready
 * batch is outstanding (nothing done). */
int raft_tick(struct raft *r, uint64_t now);

/* Handles one message from a peer.  msg and everything it points to are
 * borrowed for the call.  Returns 0, or
 *   RAFT_EMALFORMED  the message is not addressed to this server, comes
 *                    from id 0 or from itself, has an unknown type, or
 *                    its content is inconsistent (entries not contiguous
 *                    after prev_index, terms above the message term,
 *                    unknown entry types, a chunk past total_len, a
 *                    snapshot conf that is invalid, an append that
 *                    contradicts committed entries, an append to the
 *                    leader of the same term).  Nothing changed;
 *                    the host may log it and drop the peer's connection;
 *   RAFT_ENOMEM      the message was dropped (as if lost); state is
 *                    consistent;
 *   RAFT_EINVAL      a ready batch is outstanding (nothing done). */
int raft_step(struct raft *r, uint64_t now, const struct raft_msg *msg);

/* A peer showed, outside the message flow, that it is alive in `term`:
 * its host sends a small keep-alive while a long write holds up its
 * turns (a turn that writes and syncs tens of MiB runs past the election
 * timeout, and raft/ then sends nothing). It is what a message from that
 * peer would say about liveness, and nothing else:
 *   - a follower hearing from its leader of this term: the election
 *     timer restarts and the lease holds (as on a heartbeat);
 *   - a leader hearing from a member of this term: it counts as active
 *     for CheckQuorum, and its progress is not taken for stalled (no
 *     entries sent again to a follower that is still writing them).
 * Any other case (another term, another sender) changes nothing: a
 * higher term must arrive in a real message. Never sends anything.
 * Returns 0, or RAFT_EINVAL if a ready batch is outstanding (nothing
 * done). */
int raft_peer_alive(struct raft *r, uint64_t now, raft_id from,
                    raft_term term);

/* Appends host data as a NORMAL entry to the leader's log.  data is
 * copied.  The appends carrying it leave with the next raft_ready batch,
 * so all proposals of one host turn share messages (group commit).
 * Returns 0 and sets *index to the entry's index (the host later sees it
 * in ready.committed; if a different entry shows up at that index, the
 * proposal was lost), or
 *   RAFT_ENOTLEADER  not the leader; raft_leader(r) is a hint (0 = none);
 *   RAFT_ETRANSFER   leadership transfer in progress (thesis 3.10):
 *                    retry at the next leader;
 *   RAFT_EBUSY       uncommitted bytes would exceed max_uncommitted_bytes
 *                    (a lone entry is always accepted, and the only
 *                    voter is not limited): retry later;
 *   RAFT_EINVAL      data is NULL, or a ready batch is outstanding;
 *   RAFT_ENOMEM. */
int raft_propose(struct raft *r, const struct raft_buf *data,
                 raft_index *index);

/* Starts a linearizable read (thesis 6.4).  ctx is the host's tag.  The
 * heartbeat round that confirms it leaves with the next raft_ready batch
 * (one round for all reads of a host turn).  Once a majority confirmed
 * this leader after the call, ready.reads carries
 * {ctx, index, 0}: serve the read once applied >= index.  If leadership is
 * lost first, it carries {ctx, 0, RAFT_ENOTLEADER}.  Returns 0, or
 *   RAFT_ENOTLEADER (nothing queued), RAFT_ENOMEM, RAFT_EINVAL (a ready
 *   batch is outstanding). */
int raft_read_index(struct raft *r, uint64_t ctx);

/* Hands leadership to `target` (0: the most up-to-date voter) (thesis
 * 3.10): proposals stop, the target is caught up, then sent TimeoutNow.
 * The transfer is abandoned after an election timeout.  Returns 0, or
 *   RAFT_ENOTLEADER; RAFT_ETRANSFER (one already running);
 *   RAFT_EINVAL (target is this server or not a voter, or no voter
 *   besides this one, or a ready batch is outstanding). */
int raft_transfer_leadership(struct raft *r, raft_id target);

/* Single-server membership changes (thesis 4.1).  Each appends a CONF
 * entry, in effect as soon as it is appended; *index (may be NULL) gets
 * its index.  A change is refused while the previous one is uncommitted
 * or before this leader committed an entry of its term.
 *   raft_add_learner: adds a non-voting member (thesis 4.2.1);
 *   raft_promote:     makes a learner a voter once its log has caught up
 *                     with the leader's commit index;
 *   raft_remove:      removes a member (a leader removing itself steps
 *                     down once the change commits, thesis 4.2.2).
 * Returns 0, or RAFT_ENOTLEADER; RAFT_EBUSY (change pending, retry once
 * it committed); RAFT_ETRANSFER; RAFT_EINVAL (id 0, already a member,
 * already a voter, removing the last voter); RAFT_ENOTFOUND (not a
 * member); RAFT_ECATCHUP (learner behind, retry later); RAFT_ETOOMANY;
 * RAFT_ENOMEM; RAFT_EINVAL also while a ready batch is outstanding. */
int raft_add_learner(struct raft *r, raft_id id, raft_index *index);
int raft_promote(struct raft *r, raft_id id, raft_index *index);
int raft_remove(struct raft *r, raft_id id, raft_index *index);

/* The host wrote a snapshot of its state machine as of snap->meta.index
 * (<= the last index handed out in ready.committed) to a file of
 * snap->len bytes, durably.  meta.term is the term of that entry and
 * meta.conf the configuration as of it (the host applied both).  The core
 * keeps only the meta and length: it streams the snapshot to followers
 * that are behind by asking the host for chunks (THE HOST LOOP, step a).
 * The host may delete its persisted entries below raft_first_index(r)
 * (snap->meta.index - snapshot_trailing + 1) and its older snapshot files
 * afterwards.  Returns 0, or
 *   RAFT_EINVAL  snap NULL, index not above the current snapshot or not
 *                yet handed out as committed, a term or configuration
 *                that contradicts the log the core holds or is invalid,
 *                or a ready batch is outstanding (nothing changed). */
int raft_snapshot_done(struct raft *r, const struct raft_snapshot *snap);

/* Starts an election now, as if the election timer had fired (with a
 * pre-vote first when config.pre_vote): for a lone voter at start-up, who
 * has nobody to wait for, and for tests.  A lone voter becomes leader once
 * the batch that records its vote is persisted.  Returns 0 (also when
 * this server may not campaign: a learner, or not in the configuration;
 * nothing happens then), or
 *   RAFT_EINVAL  already the leader, or a ready batch is outstanding. */
int raft_campaign(struct raft *r);

/* The host's state machine has applied everything up to `index`.
 * Informational (raft_applied_index); never fails. */
void raft_applied(struct raft *r, raft_index index);

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

struct raft_read {
    uint64_t ctx;     /* as given to raft_read_index */
    raft_index index; /* serve once applied >= index */
    int status;       /* 0 or RAFT_ENOTLEADER */
};

/* One batch of work.  Every pointer in it is owned by the core and valid
 * until raft_advance (or raft_free).  See THE HOST LOOP above for the
 * order in which the host must handle the fields. */
struct raft_ready {
    bool has_hard_state;
    struct raft_hard_state hard_state;
    /* A chunk of the snapshot being received, to write at its offset, or
     * NULL.  Each continues the previous one; offset 0 starts over. */
    const struct raft_snapshot_chunk *snapshot_chunk;
    /* The snapshot received in those chunks is complete: install it (its
     * meta and length), or NULL. */
    const struct raft_snapshot *snapshot;
    raft_index truncate_from;         /* 0: nothing to delete */
    const struct raft_entry *entries; /* to persist */
    size_t n_entries;
    const struct raft_msg *msgs_now;
    size_t n_msgs_now;
    const struct raft_msg *msgs_after_persist;
    size_t n_msgs_after_persist;
    const struct raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    const struct raft_read *reads;
    size_t n_reads;
    bool want_snapshot;   /* take a snapshot soon (THE HOST LOOP, f) */
    uint64_t next_wakeup; /* call raft_tick at this time at the latest */
};

/* Whether raft_ready would return anything to do. */
bool raft_has_ready(const struct raft *r);

/* Fills *ready with the pending batch (possibly empty).  Returns 0, or
 * RAFT_ENOMEM (nothing handed out; call again later), or RAFT_EINVAL when
 * the previous batch was not acknowledged with raft_advance. */
int raft_ready(struct raft *r, struct raft_ready *ready);

/* Acknowledges the batch from the last raft_ready: it was persisted, its
 * messages were sent (or dropped) and its committed entries taken for
 * applying.  Releases the batch's memory.  A leader may commit more as a
 * result.  Calling it without a batch outstanding does nothing. */
void raft_advance(struct raft *r, const struct raft_ready *ready);

/* The absolute time (ms) by which raft_tick must be called. */
uint64_t raft_next_wakeup(const struct raft *r);

/* ------------------------------------------------------------------------
 * Queries (never fail; cheap)
 * ------------------------------------------------------------------------ */

raft_id raft_self(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
const char *raft_role_name(int role);      /* static string, "UNKNOWN" */
raft_id raft_leader(const struct raft *r); /* 0 if unknown */
raft_term raft_current_term(const struct raft *r);
raft_id raft_voted_for(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
raft_term raft_last_term(const struct raft *r);
/* The first log entry the host must keep (it may delete those below). */
raft_index raft_first_index(const struct raft *r);
raft_index raft_snapshot_index(const struct raft *r);
/* The latest snapshot's meta (index, term, configuration as of index), as
 * the host must record it after raft_snapshot_done; NULL if none.
 * Borrowed until the next non-const call. */
const struct raft_snapshot_meta *raft_snapshot_meta(const struct raft *r);
raft_index raft_applied_index(const struct raft *r);
/* The configuration in effect (the latest in the log, thesis 4.1);
 * borrowed until the next non-const call. */
const struct raft_conf *raft_conf_current(const struct raft *r);
/* Index of the entry that carried it, the snapshot index if it came from
 * the snapshot, 0 for the initial configuration. */
raft_index raft_conf_index(const struct raft *r);
/* The leader's view of a peer: its match index, or 0 if unknown or not
 * the leader. */
raft_index raft_match_index(const struct raft *r, raft_id peer);
/* The term of the entry at index, or 0 if not held in memory. */
raft_term raft_term_at(const struct raft *r, raft_index index);
/* What the core holds in memory (THE HOST LOOP, "Memory"). */
struct raft_memory {
    size_t n_entries;      /* log entries in the window */
    size_t entry_bytes;    /* their data bytes */
    size_t fetched_bytes;  /* data bytes of fetched entries held in messages
                              until raft_advance */
    size_t snapshot_bytes; /* bytes of a received snapshot chunk waiting
                              for the host (at most max_msg_bytes) */
};
void raft_memory(const struct raft *r, struct raft_memory *out);
/* "what failed: why" for the last error returned, or "". */
const char *raft_errmsg(const struct raft *r);

/* ------------------------------------------------------------------------
 * Process-wide hooks (tests, host start-up)
 * ------------------------------------------------------------------------ */

/* The allocator raft/ uses (raft__malloc and friends).  Passing NULL
 * restores malloc/calloc/realloc/free.  Tests use it to fail the Nth
 * allocation.  Not thread-safe; set it before creating servers. */
struct raft_heap {
    void *data;
    void *(*malloc_fn)(void *data, size_t size);
    void *(*calloc_fn)(void *data, size_t nmemb, size_t size);
    void *(*realloc_fn)(void *data, void *ptr, size_t size);
    void (*free_fn)(void *data, void *ptr);
};
void raft_heap_set(const struct raft_heap *heap);

/* Called by RAFT_ASSERT with file, line and expression before abort(), so
 * the host can print them (raft/ itself has no stdio).  NULL: none. */
typedef void (*raft_assert_fn)(const char *file, int line, const char *expr);
void raft_assert_hook_set(raft_assert_fn fn);

#endif /* GR_RAFT_RAFT_H */
