/* SPDX-License-Identifier: BSD-3-Clause
 * node/loop.h - the server: the event loop and the parts it owns.
 *
 * struct gr_server is a few parts, each with its own header and its own
 * functions, and the loop's own events:
 *
 *   gm     the Gearman side (node/gearman/hub.h): the sessions, their
 *          registry and what they share
 *   pipe   the commit pipeline (node/pipeline/pipeline.h): the queue of
 *          proposals, the batches and the committer thread
 *   alone  the single-voter fast path's ledger (node/alone/alone.h)
 *
 * and, when --http-listen asks for it, the operators' HTTP endpoint
 * (node/ops/http.h), which reads them all.
 *
 * The loop drives the pipeline and routes what it hands back to the
 * other two; none of them calls up into the loop (docs/DESIGN.md). In
 * the cluster this is where the Raft host loop runs (node/cluster/).
 *
 * Not here: the write itself (node/pipeline/), request handling
 * (node/gearman/), the flags (config.h).
 */
#ifndef GEARRAFT_LOOP_H
#define GEARRAFT_LOOP_H

#include <stdbool.h>

#include "node/alone/alone.h"
#include "node/config.h"
#include "node/gearman/hub.h"
#include "node/gr.h"
#include "node/ops/http.h"
#include "node/pipeline/pipeline.h"
#include "storage/store.h"

struct event;
struct event_base;
struct evconnlistener;
struct peer_net;


struct gr_server {
    struct event_base *base;
    const struct gr_config *cfg;
    /* What this node runs as: cfg's cluster flags, with the cluster name
     * and the members its data directory holds. */
    struct gr_cluster_config cluster;
    struct store *store;
    struct evconnlistener *listener;
    struct event *commit_ev;  /* priority 1: starts the next batch */
    struct event *applied_ev; /* priority 0: the batch in flight applied */
    struct event *done_ev;    /* priority 0: ... its commit returned */
    struct event *durable_ev; /* priority 0: the syncer synced */
    struct event *due_ev;     /* an epoch job falls due */
    struct event *retry_ev;   /* reproposes internal commands after failure */
    struct event *sig_ev[2];  /* SIGTERM, SIGINT */

    struct gm_hub gm;        /* the Gearman side */
    struct gr_pipeline pipe; /* the commit pipeline */
    struct gr_alone alone;   /* the single-voter fast path's ledger */

    /* A cluster member's: the peers, and the events that send what the
     * committer hands over and run raft/'s timer. */
    struct peer_net *peers;
    struct event *send_ev;
    struct event *tick_ev;
    bool handing_over;  /* stopping: leadership goes to another voter */
    bool was_leader;    /* after the last turn */
    uint64_t lead_since_ms;
    uint64_t last_turn_ms; /* when the last turn was collected */
    uint64_t gone_sent[STORE_MEMBERS_MAX]; /* silence declared, per member */
    struct event *handover_ev;
    struct event *census_ev; /* tells the others this node's workers */
    struct event *alive_ev;  /* keep-alives while a turn runs long */
    bool told_short;         /* ... and that it was short of space */
    uint64_t seen_term; /* last logged term and leader */
    uint64_t seen_leader;

    /* The operators' endpoint (--http-listen) and what it reads. */
    struct ops_counters counters;
    struct ops_sources ops_src;
    struct ops_http *http;

    struct gr_proposal *retry_head; /* internal commands of failed batches */
    bool stopping;                  /* no longer accepting */
    bool graceful;                  /* waiting for running jobs to finish */
    char snap_dir[1100]; /* a member's snapshot files */
    char errmsg[256];
};

/* Opens the store (bootstrapping a fresh data directory as the flags
 * say), proposes NODE_GONE for the previous incarnation and commits it,
 * and starts listening; a cluster member also starts its peer transport
 * (its NODE_GONE commits once the cluster has a leader). Errors:
 * GR_EUSAGE (the data directory belongs to another node, cluster or kind
 * of server than the flags name: exit 2), GR_ESTORE, GR_EIO, GR_ENOMEM;
 * errmsg says what failed. On failure everything is released. */
int gr_server_init(struct gr_server *srv, const struct gr_config *cfg,
                   struct event_base *base);
/* Runs the loop until shutdown. */
int gr_server_run(struct gr_server *srv);
/* Flushes the current batch, closes sessions and the store. */
void gr_server_close(struct gr_server *srv);

/* Begins a shutdown: stop accepting; when graceful, wait until no job is
 * running before the loop ends. */
void gr_server_shutdown(struct gr_server *srv, bool graceful);

#endif /* GEARRAFT_LOOP_H */
