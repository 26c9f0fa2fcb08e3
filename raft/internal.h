/* SPDX-License-Identifier: BSD-3-Clause
 * raft/internal.h - the struct raft and the raft__ functions the files of
 * raft/ share.
 *
 * One concept per file: log.c (the in-memory log window), progress.c (the
 * leader's view of each follower, quorum arithmetic), election.c (timers,
 * PreVote, votes, roles), replication.c (AppendEntries, heartbeats,
 * commit), membership.c (configurations), snapshot.c (chunks, install,
 * compaction), readindex.c, transfer.c, raft.c (lifecycle, dispatch, the
 * ready batch) and heap.c (allocator and assert hooks).
 *
 * Not here: anything a host needs (raft.h).
 */
#ifndef GR_RAFT_INTERNAL_H
#define GR_RAFT_INTERNAL_H

#include "raft/raft.h"

/* Always compiled in: a broken invariant means corrupt state, and crashing
 * beats corrupting (docs/DESIGN.md, "Conventions").  Never used on input
 * from the network or the host; those get error codes. */
#define RAFT_ASSERT(expr)                                                      \
    ((expr) ? (void)0 : raft__assert_fail(__FILE__, __LINE__, #expr))

_Noreturn void raft__assert_fail(const char *file, int line, const char *expr);

void *raft__malloc(size_t size);
void *raft__calloc(size_t nmemb, size_t size);
void *raft__realloc(void *ptr, size_t size);
void raft__free(void *ptr);

/* ---- log.c ------------------------------------------------------------ */

/* Entries offset+1 .. offset+n in memory, each owning its data
 * (raft__malloc).  The host's log also holds first .. offset (persisted,
 * read back with config.fetch); first may be above offset + 1 when the
 * host may already have deleted entries still in memory. */
struct raft__log {
    struct raft_entry *entries;
    size_t n;
    size_t cap;
    size_t bytes;             /* data bytes of the entries in memory */
    raft_index offset;        /* index just before the first entry kept */
    raft_term offset_term;    /* its term (0 for index 0) */
    raft_index first;         /* first entry the host's log holds */
    raft_index persisted;     /* last index the host acknowledged as durable */
    raft_index truncate_from; /* host must delete from here; 0: nothing */
};

void raft__log_init(struct raft__log *log, raft_index offset,
                    raft_term offset_term);
void raft__log_close(struct raft__log *log);
raft_index raft__log_last(const struct raft__log *log);
raft_term raft__log_last_term(const struct raft__log *log);
bool raft__log_term(const struct raft__log *log, raft_index index,
                    raft_term *term);
const struct raft_entry *raft__log_get(const struct raft__log *log,
                                       raft_index index);
int raft__log_reserve(struct raft__log *log, size_t n_more);
int raft__log_append(struct raft__log *log, raft_term term,
                     enum raft_entry_type type, const struct raft_buf *data);
void raft__log_truncate(struct raft__log *log, raft_index from);
void raft__log_compact(struct raft__log *log, raft_index upto);
void raft__log_trim(struct raft *r);
void raft__log_reset(struct raft__log *log, raft_index index, raft_term term);
raft_index raft__log_conflict_by_term(const struct raft__log *log,
                                      raft_index index, raft_term term);
bool raft__log_up_to_date(const struct raft__log *log, raft_index last_index,
                          raft_term last_term);

/* ---- progress.c ------------------------------------------------------- */

enum raft__pr_state {
    RAFT__PROBE = 1,     /* one append per heartbeat until a match */
    RAFT__REPLICATE = 2, /* pipelined appends within the window */
    RAFT__SNAPSHOT = 3   /* sending a snapshot, appends paused */
};

/* One append sent in REPLICATE and not yet answered. */
struct raft__inflight {
    raft_index prev; /* its prev_index: what a rejection of it names */
    raft_index last; /* last index carried by the append */
    size_t bytes;
    bool superseded; /* sent before the latest rewind (its range goes out
                        again): a rejection may free it */
    bool rejected;   /* a rejection named it, maybe a late one: it keeps
                        its room until covered, but no longer counts as
                        continuing the follower's log */
};

struct raft__progress {
    raft_id id;
    bool voter;
    enum raft__pr_state state;
    raft_index match;
    raft_index next;
    bool probe_sent;    /* PROBE: wait for an answer or a heartbeat */
    bool recent_active; /* heard from since the last CheckQuorum round */
    uint64_t read_ack;  /* highest read-index round acknowledged */
    /* REPLICATE flow control: the unanswered appends, in sending order.
     * Only an answer to an append, or the stall timer, makes room. */
    struct raft__inflight infl[RAFT_MAX_INFLIGHT_MSGS];
    size_t infl_n;
    size_t infl_bytes;
    bool rewound;           /* went back to match + 1 since match last moved */
    raft_index stall_match; /* match at the previous heartbeat */
    unsigned stall_beats;   /* heartbeats without progress */
    /* SNAPSHOT. */
    raft_index snap_index;
    uint64_t snap_offset; /* bytes the follower acknowledged */
    unsigned snap_beats;  /* heartbeats without an answer */
};

struct raft;

struct raft__progress *raft__progress_find(struct raft *r, raft_id id);
void raft__progress_sync(struct raft *r);
void raft__progress_reset(struct raft *r, struct raft__progress *pr);
void raft__progress_become_probe(struct raft *r, struct raft__progress *pr);
void raft__progress_become_replicate(struct raft__progress *pr);
bool raft__progress_infl_full(const struct raft *r,
                              const struct raft__progress *pr);
void raft__progress_infl_add(struct raft__progress *pr, raft_index prev,
                             raft_index last, size_t bytes);
void raft__progress_infl_free_to(struct raft__progress *pr, raft_index last);
void raft__progress_infl_clear(struct raft__progress *pr);
void raft__progress_rejected(struct raft *r, struct raft__progress *pr,
                             raft_index prev);
void raft__progress_acked(struct raft *r, struct raft__progress *pr,
                          bool moved);
size_t raft__quorum(const struct raft *r);
bool raft__is_voter(const struct raft *r, raft_id id);
raft_index raft__self_match(const struct raft *r);
raft_index raft__quorum_match(const struct raft *r);
uint64_t raft__quorum_read_ack(const struct raft *r);

/* ---- struct raft ------------------------------------------------------ */

struct raft__vote_rec {
    raft_id id;
    bool granted;
};

struct raft__pending_read {
    uint64_t ctx;
    raft_index index;
    uint64_t seq;
};

/* A snapshot being received from the leader, chunk by chunk: the bytes go
 * to the host, one chunk per batch. */
struct raft__snap_rx {
    bool active;
    struct raft_snapshot_meta meta;
    uint64_t total_len;
    uint64_t len;   /* bytes accepted so far (handed out or in chunk) */
    bool has_chunk; /* chunk waits for the next batch */
    struct raft_snapshot_chunk chunk; /* data owned */
};

/* What raft_ready handed out, for raft_advance. */
struct raft__batch {
    bool active;
    struct raft_hard_state hs;
    raft_index last_entry; /* last index persisted by the batch, or 0 */
    bool snapshot;
    raft_index committed_to;
    bool has_chunk;
    struct raft_snapshot_chunk chunk; /* handed out; data owned */
    struct raft_msg *msgs;
    bool *owned; /* per message: it owns fetched entries */
    size_t n_msgs;
    struct raft_read *reads;
};

struct raft {
    struct raft_config cfg;
    uint64_t now;
    uint64_t rng;

    /* Persistent state (paper figure 2) and what the host has of it. */
    raft_term term;
    raft_id vote;
    struct raft_hard_state persisted_hs;
    struct raft__log log;

    /* Volatile state. */
    enum raft_role role;
    raft_id leader;
    raft_index commit;
    raft_index handed;  /* last committed index given to the host */
    raft_index applied; /* as reported by raft_applied */

    /* Configuration in effect (thesis 4.1: the latest in the log). */
    struct raft_conf conf;
    raft_index conf_index;
    /* The latest CONF entry dropped from memory above the snapshot index
     * (its index, 0: none): the configuration as of the window's edge. */
    struct raft_conf conf_below;
    raft_index conf_below_index;

    /* Timers (absolute ms). */
    uint64_t election_deadline;
    uint64_t heartbeat_deadline;
    uint64_t quorum_deadline;
    uint64_t last_leader_contact;

    /* Candidate. */
    struct raft__vote_rec votes[RAFT_MAX_MEMBERS];
    size_t n_votes;

    /* Leader. */
    struct raft__progress prs[RAFT_MAX_MEMBERS];
    size_t n_prs;
    raft_index noop_index;
    bool bcast_pending; /* proposals wait to go out together in ready */
    bool hb_pending;    /* read rounds wait to go out together in ready */
    size_t uncommitted_bytes;
    raft_id transfer_target;
    uint64_t transfer_deadline;
    uint64_t read_seq;
    struct raft__pending_read *reads;
    size_t n_reads;
    size_t cap_reads;

    /* Reads confirmed or failed, handed out in the next batch. */
    struct raft_read *done_reads;
    size_t n_done_reads;
    size_t cap_done_reads;

    /* Snapshots (meta and length; the host holds the data). */
    bool has_snap;
    struct raft_snapshot snap; /* latest */
    bool snap_pending;         /* installed, the host must persist it */
    bool want_snapshot;        /* ask the host for a newer one */
    struct raft__snap_rx rx;
    size_t fetched_bytes; /* data of fetched entries held in messages */

    /* Messages queued since the last batch. */
    struct raft_msg *out;
    size_t n_out;
    size_t cap_out;

    struct raft__batch batch;
    const char *errmsg;
};

/* ---- raft.c ----------------------------------------------------------- */

void raft__msg_init(const struct raft *r, struct raft_msg *m,
                    enum raft_msg_type type, raft_id to);
bool raft__send(struct raft *r, const struct raft_msg *m);
void raft__msg_release(struct raft *r, struct raft_msg *m);
bool raft__entry_is_valid(const struct raft_entry *e);
void raft__trace(const struct raft *r, enum raft_trace_type type,
                 raft_term term, raft_index index, raft_id peer);
bool raft__conf_is_valid(const struct raft_conf *conf);

/* ---- election.c ------------------------------------------------------- */

uint64_t raft__rand(struct raft *r);
void raft__election_reset(struct raft *r);
bool raft__in_lease(const struct raft *r);
void raft__become_follower(struct raft *r, raft_term term, raft_id leader);
void raft__become_leader(struct raft *r);
void raft__campaign(struct raft *r, bool pre, bool transfer);
void raft__self_vote_persisted(struct raft *r);
void raft__election_tick(struct raft *r);
void raft__recv_vote(struct raft *r, const struct raft_msg *m);
void raft__recv_vote_resp(struct raft *r, const struct raft_msg *m);
void raft__recv_timeout_now(struct raft *r, const struct raft_msg *m);

/* ---- replication.c ---------------------------------------------------- */

bool raft__send_append(struct raft *r, struct raft__progress *pr);
void raft__bcast_append(struct raft *r);
void raft__bcast_heartbeat(struct raft *r);
bool raft__maybe_commit(struct raft *r);
void raft__leader_tick(struct raft *r);
void raft__check_quorum(struct raft *r);
void raft__peer_alive(struct raft *r, raft_id from);
int raft__recv_append(struct raft *r, const struct raft_msg *m);
void raft__recv_append_resp(struct raft *r, const struct raft_msg *m);
void raft__recv_heartbeat(struct raft *r, const struct raft_msg *m);
void raft__recv_heartbeat_resp(struct raft *r, const struct raft_msg *m);
int raft__leader_append(struct raft *r, enum raft_entry_type type,
                        const struct raft_buf *data, raft_index *index);

/* ---- membership.c ----------------------------------------------------- */

void raft__conf_recompute(struct raft *r);
int raft__conf_at(const struct raft *r, raft_index index,
                  struct raft_conf *out);
bool raft__conf_equal(const struct raft_conf *a, const struct raft_conf *b);
void raft__conf_after_commit(struct raft *r);
bool raft__may_campaign(const struct raft *r);

/* ---- snapshot.c ------------------------------------------------------- */

void raft__snapshot_send(struct raft *r, struct raft__progress *pr);
void raft__snapshot_tick(struct raft *r, struct raft__progress *pr);
void raft__recv_snapshot(struct raft *r, const struct raft_msg *m);
void raft__recv_snapshot_resp(struct raft *r, const struct raft_msg *m);
void raft__snap_rx_clear(struct raft *r);
bool raft__term_known(const struct raft *r, raft_index index, raft_term *term);

/* ---- readindex.c ------------------------------------------------------ */

void raft__reads_check(struct raft *r);
void raft__reads_fail_all(struct raft *r);
void raft__reads_close(struct raft *r);

/* ---- transfer.c ------------------------------------------------------- */

void raft__transfer_check(struct raft *r, struct raft__progress *pr);
void raft__transfer_tick(struct raft *r);
void raft__transfer_clear(struct raft *r);

#endif /* GR_RAFT_INTERNAL_H */
