/* SPDX-License-Identifier: BSD-3-Clause
 * node/ops/http.h - the operators' HTTP endpoint (--http-listen), on the
 * loop's event base:
 *
 *   GET /metrics   every figure of metrics.h, Prometheus text format
 *   GET /health    200 "ok" while the node serves and, in a cluster,
 *                  knows a leader; 503 with the reason otherwise (what a
 *                  load balancer and a container health check ask)
 *
 * Anything else gets 404, a method other than GET or HEAD 405. The
 * endpoint only reads; nothing it answers changes the node.
 */
#ifndef GEARRAFT_OPS_HTTP_H
#define GEARRAFT_OPS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "node/ops/metrics.h"

struct event_base;
struct ops_http;

/* Listens on host:port and answers from src (which must outlive it).
 * Returns NULL with errmsg set when it cannot listen or is out of
 * memory. */
struct ops_http *ops_http_start(struct event_base *base, const char *host,
                                uint16_t port, const struct ops_sources *src,
                                char *errmsg, size_t errmsg_len);
/* Stops listening and frees h (NULL is fine). */
void ops_http_stop(struct ops_http *h);

#endif /* GEARRAFT_OPS_HTTP_H */
