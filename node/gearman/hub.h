/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/hub.h - what the Gearman side shares across its sessions:
 * the registry of connections, the lists the loop walks (sleepers,
 * flushes, the dead), the function names seen, the answerer's marks, the
 * parts below it that sessions talk to, and the loop's hooks for the
 * admin lines that reach above it (`shutdown`, `cluster`).
 *
 * Why a struct of its own: the loop owns one (embedded in struct
 * gr_server) but the Gearman side needs only this, so it never sees the
 * loop, and the parts below it (the pipeline, the fast path's ledger)
 * never see a session. Only this struct's definition is here; the
 * functions over it are conn.h's, funcs.h's and answer.h's.
 *
 * Not here: one connection (conn.h).
 */
#ifndef GEARRAFT_GEARMAN_HUB_H
#define GEARRAFT_GEARMAN_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/config.h"
#include "node/pipeline/batch.h"
#include "node/space.h"
#include "storage/store.h"

struct event;
struct event_base;
struct gm_known;
struct gm_census;
struct gm_session;
struct gr_alone;
struct gr_pipeline;

/* What the answerer (answer.c) keeps per batch slot, so that nothing is
 * allocated per batch: which effects left before the commit, and the
 * batch's wake-ups, built once for the wake before the commit and the
 * wake after it - the distinct functions of its WAKE effects and, with
 * --worker-wakeup, the NOOPs left per function. */
struct gm_marks {
    bool *sent; /* the batch's fx.v[i] already left before the commit */
    size_t sent_cap;
    bool sent_valid;
    struct store_buf *wake_funcs; /* into the batch's effects */
    size_t wake_funcs_cap;
    size_t *wake_budget;
    size_t wake_budget_cap;
    size_t wake_n;
    bool wake_set;
};

/* The admin `shutdown` command: the loop's, called with shutdown_arg. */
typedef void (*gm_shutdown_fn)(void *arg, bool graceful);

/* The admin `cluster` command: the loop's, called with reachable_arg.
 * True when this node's links to and from member id are both up. Must
 * not block. */
typedef bool (*gm_reachable_fn)(void *arg, uint64_t id);

struct gm_hub {
    struct event_base *base;
    const struct gr_config *cfg;
    struct store *store; /* reads of queue state */
    uint64_t node_id;    /* this process in connection refs */
    uint64_t incarnation;
    struct gr_pipeline *pipe; /* where proposals go */
    struct gr_alone *alone;   /* the fast path's ledger */
    struct gr_space space;    /* may a submission be accepted */

    struct gm_session *sessions; /* newest first */
    struct gm_session *sleepers; /* workers asleep and not woken yet */
    size_t n_wait_readers;       /* sessions holding a read of queue state */
    struct gm_session **buckets; /* by connection id */
    size_t n_buckets;
    size_t n_sessions;
    uint64_t next_conn_id;
    struct gm_session *flush_list; /* asked to be written out */
    struct gm_session *dead;       /* closed, freed by reap_ev */
    struct event *reap_ev;
    bool closing_all; /* at close: sessions go without goodbyes */

    struct gm_known *known; /* names from CAN_DO (funcs.h) */
    struct gm_marks marks[GR_BATCH_SLOTS];
    gm_shutdown_fn shutdown;
    void *shutdown_arg;
    /* What `cluster` shows besides the pipeline's view of raft/: the
     * loop's identity of this node (borrowed for the hub's life) and
     * its peer links; NULL until the loop sets them. */
    const struct gr_cluster_config *cluster;
    gm_reachable_fn reachable;
    void *reachable_arg;
    /* The other members' worker counts (census.h); NULL until one told. */
    struct gm_census *census;
};

#endif /* GEARRAFT_GEARMAN_HUB_H */
