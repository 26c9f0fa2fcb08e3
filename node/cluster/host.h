/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/host.h - the Raft host: drives raft/ and writes into
 * storage/ what it asks, as raft/raft.h's "THE HOST LOOP" describes.
 *
 * Why it is shaped this way: every node, a lone one included, goes
 * through raft/; a lone node is a one-voter cluster. The host does no I/O
 * of its own besides the store it is given and no threading: the
 * pipeline's committer thread calls it for each batch, start-up and close
 * call it on the loop thread, and a test can call it directly. It owns
 * the struct raft, and nothing else may touch that between the calls
 * below.
 *
 * A batch of a lone voter, in one write transaction:
 *
 *   gr_host_propose    each command, stamped with the leader's clock,
 *                      becomes an entry of the leader's log;
 *   gr_host_persist    the hard state and those entries go into the
 *                      transaction (the entries are committed once it
 *                      commits: there is no one else to ask), then the
 *                      caller applies each command at its index;
 *   gr_host_compact    the log is compacted behind what was applied, and
 *                      the snapshot meta records the point;
 *   gr_host_advance    after the commit: raft/ hears that the batch is
 *                      on disk (or, on failure, starts over from what
 *                      is).
 *
 * Not here: peers and messages (peer.c), the threads (node/pipeline/).
 */
#ifndef GEARRAFT_CLUSTER_HOST_H
#define GEARRAFT_CLUSTER_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/fwdseen.h"
#include "node/cluster/snap.h"
#include "node/histo.h"
#include "raft/raft.h"
#include "storage/store.h"

struct gr_host_config {
    uint64_t node_id;
    /* A member of a cluster of several voters: raft/ keeps a window of
     * the log in memory and reads older entries back from the store for
     * a follower that is behind. false: a lone voter, whose applied
     * entries are in the tables and nowhere else. */
    bool member;
    /* A member's snapshot directory (snap.h), and how many entries may be
     * applied past the latest snapshot before the next is taken (the log
     * is compacted behind each). */
    const char *snap_dir;
    uint64_t snapshot_every;
    /* The voters of a new cluster (used when the store holds no
     * configuration); n_members 0: this node alone. */
    struct raft_conf initial_conf;
    /* A node that joins a running cluster (store_is_joiner): no
     * configuration until the leader's log or snapshot brings one, so it
     * never campaigns before it was added (initial_conf unused). */
    bool joiner;
    uint64_t election_ms;
    uint64_t heartbeat_ms;
    /* Seeds raft/'s randomized election timeouts; 0: raft/'s default
     * (the node id). A daemon passes one that differs at every start, so
     * a restarted node does not replay its last run's timeouts. */
    uint64_t seed;
    /* The largest entry a member must accept (a command with the largest
     * packet): raft/'s limit of uncommitted bytes is raised to it, so
     * such an entry is proposed once nothing else is uncommitted. 0:
     * raft/'s default. */
    size_t max_entry_bytes;
};

struct gr_host {
    struct raft *raft;
    struct store *store;
    struct gr_host_config cfg;
    bool has_ready;         /* rd is handed out, not yet advanced */
    struct raft_ready rd;   /* borrowed from raft until advance */
    uint64_t applied;       /* what the store's apply has reached */
    uint64_t committed_out; /* the last index raft/ handed out committed */
    bool needs_settle;      /* a batch failed: settle before the next */
    /* Read indexes in raft/'s hands (node/cluster/turn.c): who asked
     * (this node: from 0) and under which number. */
    struct {
        uint64_t raft_ctx;
        uint64_t from;
        uint64_t ctx;
    } reads[64];
    size_t n_reads;
    uint64_t read_seq;
    /* Reading entries back for raft/ (a member's fetch): the write
     * transaction of the turn when one is open, else a read transaction
     * kept until the next fetch or gr_host_fetch_done. */
    struct store_txn *write_txn;
    struct store_txn *fetch_txn;
    /* A member's snapshots (node/cluster/turn.c): the files, a dump
     * asked for, the compaction and snapshot meta the next transaction
     * records, and a received snapshot to keep once installed. */
    struct gr_snaps snaps;
    bool snaps_open;
    bool want_snapshot;
    bool compact_pending;
    uint64_t compact_upto;
    uint64_t compact_index;
    uint64_t compact_term;
    uint8_t compact_conf[2 + RAFT_MAX_MEMBERS * 9];
    size_t compact_conf_len;
    bool rx_installed;
    struct gr_histo sync_lat; /* the turns' syncs (committer thread) */
    /* Forwarded commands appended while leading (turn.c, take_forward),
     * and the copies sent again that were dropped for it. */
    struct gr_fwdseen fwd_seen;
    uint64_t n_fwd_dropped;
    uint64_t n_resends; /* raft/ went back to resend a follower its log */
    uint64_t rx_index;
    uint64_t rx_term;
    char errmsg[256];
};

/* Opens the host over an open store: restores raft/ from the hard state,
 * the snapshot meta and the log the store holds (a data directory of a
 * build before Raft - a compacted log, no hard state - restores as a lone
 * voter's snapshot at its applied index). now_ms is a monotonic clock.
 * Errors: GR_ESTORE (the store failed or holds an inconsistent Raft
 * state), GR_ENOMEM; errmsg says what. gr_host_close releases h either
 * way. */
int gr_host_open(struct gr_host *h, struct store *store,
                 const struct gr_host_config *cfg, uint64_t now_ms,
                 char *errmsg, size_t errmsg_len);
void gr_host_close(struct gr_host *h);

/* A lone voter only: elects itself and commits and applies its term's
 * no-op, each step in a write transaction of its own, synced. Returns 0
 * once this node leads and has applied everything in its log, or
 * GR_ESTORE (errmsg), GR_EINVAL (not a lone voter). */
int gr_host_settle(struct gr_host *h, uint64_t now_ms, uint64_t wall_ms);

/* True when this node is the only voter of the configuration in force
 * and leads it: it alone decides the log's order, and an entry is
 * committed once it is on its own disk. */
bool gr_host_decides_alone(const struct gr_host *h);

/* The index the next proposal gets while this node decides alone. */
uint64_t gr_host_next_index(const struct gr_host *h);

/* Before a batch's proposals: lets raft/ drop its copies of what the
 * tables already hold. */
void gr_host_batch_begin(struct gr_host *h);

/* Proposes cmd (its time_ms is set to wall_ms first). Sets *index.
 * Errors: GR_ENOMEM; GR_EINVAL when not deciding alone or a batch is
 * being written (gr_host_persist without gr_host_advance), or raft/
 * refused the entry; h->errmsg says which. */
int gr_host_propose(struct gr_host *h, struct store_cmd *cmd, uint64_t wall_ms,
                    uint64_t *index);

/* Writes into txn what raft/ asks to persist: the hard state, then the
 * entries proposed since the last batch. Keep the ready until
 * gr_host_advance. Errors: a STORE_E* code; the caller aborts txn and
 * calls gr_host_advance(h, false). */
int gr_host_persist(struct gr_host *h, struct store_txn *txn);

/* The same without the apply of committed entries: a member applies them
 * itself (gr_host_apply_entry), reporting each. h->rd holds the ready
 * until gr_host_advance. */
int gr_host_persist_ready(struct gr_host *h, struct store_txn *txn);

/* Applies one committed entry e in txn (nothing if the tables have it),
 * its effects appended to fx. *cmd_out gets the decoded command (a
 * NORMAL entry; the caller frees it with store_cmd_free) or NULL. Errors:
 * STORE_EMALFORMED (the entry does not decode: a node that cannot apply a
 * committed entry must stop), and those of store_apply. */
int gr_host_apply_entry(struct gr_host *h, struct store_txn *txn,
                        const struct raft_entry *e, struct store_effects *fx,
                        struct store_cmd **cmd_out);

/* A lone voter, after applying every command persisted in txn up to
 * `applied`: compacts the log behind it and records the snapshot meta.
 * Errors: STORE_E* (abort, as above). */
int gr_host_compact(struct gr_host *h, struct store_txn *txn,
                    uint64_t applied);

/* After the transaction: ok true when it committed. Then raft/ hears the
 * batch is on disk and commits it. On failure nothing of the batch was
 * kept: raft/ is restored from the store as at gr_host_open, and the next
 * batch first settles again (gr_host_settle). Errors (only when !ok and
 * the store cannot be read): GR_ESTORE. */
int gr_host_advance(struct gr_host *h, bool ok, uint64_t now_ms);

/* Ends the read transaction a fetch may have left open (call it when the
 * raft_* call that fetched has returned, before a write transaction). */
void gr_host_fetch_done(struct gr_host *h);

/* True after a failed batch until gr_host_settle has run again. */
bool gr_host_needs_settle(const struct gr_host *h);

/* raft/'s state as the admin protocol and metrics show it, copied out
 * by whoever owns the host (the committer after each batch), for the
 * loop to read. */
struct gr_raft_view {
    int role; /* enum raft_role */
    uint64_t leader_id; /* 0: none known */
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint64_t last_index;
    uint64_t fwd_dropped; /* gr_host.n_fwd_dropped */
    uint64_t resends;     /* gr_host.n_resends */
    /* A member's proposals (node/pipeline/member.h, filled by the
     * committer after a turn; 0 from gr_host_view): forwarded to a
     * leader, forwarded again, and applied ahead of an earlier one. */
    uint64_t fwd_sent;
    uint64_t fwd_resent;
    uint64_t overtaken;
    size_t n_members;
    struct {
        uint64_t id;
        bool voter;
        uint64_t match; /* leader's view; 0 elsewhere or unknown */
    } members[RAFT_MAX_MEMBERS];
};
void gr_host_view(const struct gr_host *h, struct gr_raft_view *out);

/* Facts for the admin protocol and logs. */
uint64_t gr_host_term(const struct gr_host *h);
uint64_t gr_host_commit(const struct gr_host *h);
uint64_t gr_host_applied(const struct gr_host *h);

#endif /* GEARRAFT_CLUSTER_HOST_H */
