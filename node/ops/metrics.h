/* SPDX-License-Identifier: BSD-3-Clause
 * node/ops/metrics.h - the node's figures in the Prometheus text format,
 * and its health, for the HTTP endpoint (http.h).
 *
 * Why a struct of sources: the figures live in the parts of the server
 * (the Gearman hub, the pipeline, raft/'s view, the peers, the store) and
 * in a few counters the loop keeps; the loop hands pointers to them once,
 * and every scrape reads them on the loop thread, where they change, so
 * no figure is copied or locked twice.
 *
 * Not here: the HTTP server (http.c), the counting (node/loop.c).
 */
#ifndef GEARRAFT_OPS_METRICS_H
#define GEARRAFT_OPS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

struct evbuffer;
struct gm_hub;
struct gr_cluster_config;
struct gr_pipeline;
struct peer_net;
struct store;

/* What the loop counts as batches come back. */
struct ops_counters {
    uint64_t submits;       /* SUBMIT commands applied */
    uint64_t completions;   /* WORK_COMPLETE, _FAIL and _EXCEPTION applied */
    uint64_t node_gone;     /* NODE_GONE commands applied */
    uint64_t leader_changes; /* a leader known in a new term, or a new one */
    uint64_t keepalives;     /* rounds of GR_PEER_ALIVE sent (liveness.c) */
};

struct ops_sources {
    struct store *store;
    struct gm_hub *gm;
    struct gr_pipeline *pipe;
    const struct gr_cluster_config *cluster; /* NULL: the one-node default */
    struct peer_net *peers;                  /* NULL: no peers */
    const struct ops_counters *counters;
    const bool *stopping;
};

/* Appends every metric to out. Returns 0, GR_ENOMEM, or GR_ESTORE (the
 * store could not be read; out then holds part of the text). */
int ops_metrics_format(const struct ops_sources *src, struct evbuffer *out);

/* Whether a load balancer should send clients here: true for a node that
 * serves and, in a cluster, knows a leader; *why says why not (static). */
bool ops_healthy(const struct ops_sources *src, const char **why);

#endif /* GEARRAFT_OPS_METRICS_H */
