/* SPDX-License-Identifier: BSD-3-Clause
 * node/config.h - gearraftd's command line.
 *
 * gearmand's flags are accepted where they mean the same (docs/protocol.md,
 * "Flags"),
 * so init scripts carry over; the rest are ours. Parsing is a function of
 * argv and of the --config file it names only, so that tests can check
 * every flag, valid and bad.
 *
 * The cluster flags (--node-id, --peer-listen, --initial-cluster,
 * --cluster-name and the timeouts) are checked one by one and then
 * together, and give struct gr_cluster_config: what the cluster host
 * will run with. A node given none of the first three is the one-node
 * default (README.md, "Flags", has the rules).
 *
 * Not here: acting on the flags (main.c, loop.c), names, ids and
 * addresses of members (cluster/members.h).
 */
#ifndef GEARRAFT_CONFIG_H
#define GEARRAFT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "node/gr.h"

#define GR_DEFAULT_PORT            4730
#define GR_DEFAULT_LISTEN          "0.0.0.0"
#define GR_DEFAULT_DATA_DIR        "./gearraft-data"
#define GR_DEFAULT_BACKLOG         32
#define GR_DEFAULT_MAX_PACKET      (1024ull * 1024 * 1024) /* 1 GiB */
#define GR_DEFAULT_MAX_CONNECTIONS 10000
#define GR_DEFAULT_MIN_FREE        (64ull * 1024 * 1024) /* 64 MiB */
/* Timeouts of a LAN: a round trip takes well under a millisecond and a
 * sync a few, so ten heartbeats fit in an election timeout, and a lost
 * node is declared gone only after several elections could have run (a
 * leader change alone never requeues running jobs). */
#define GR_DEFAULT_ELECTION_MS  300
#define GR_DEFAULT_HEARTBEAT_MS 50
#define GR_DEFAULT_NODE_GONE_MS 10000
#define GR_DEFAULT_SNAPSHOT_EVERY 10000
/* The node id of the one-node default (every directory of a build before
 * the cluster flags holds it). */
#define GR_ONE_NODE_ID 1
/* The longest line of a --config file, newline included. */
#define GR_CONFIG_LINE_MAX 8192

/* The identity and the timing a node runs with. */
struct gr_cluster_config {
    bool member;      /* false: the one-node default; the rest but the
                       * timeouts and cluster_name is then empty */
    uint64_t self_id; /* gr_member_id(self_name), or GR_ONE_NODE_ID */
    char self_name[STORE_NODE_NAME_MAX + 1]; /* --node-id */
    char peer_host[STORE_HOST_MAX + 1];      /* --peer-listen, no brackets */
    uint16_t peer_port;
    /* --initial-cluster with ids, in the order given; 0 members: not
     * given (a directory that already holds a cluster needs none). */
    struct store_member members[STORE_MEMBERS_MAX];
    size_t n_members;
    /* --join: members holds the running cluster's members (and this node,
     * added by the parser); a fresh directory waits to be added. */
    bool joining;
    bool given_list; /* --initial-cluster or --join was given */
    /* --cluster-name, the handle prefix of a fresh data directory; "":
     * the default (STORE_CLUSTER_DEFAULT for a member, the host name for
     * the one-node default). */
    char cluster_name[STORE_CLUSTER_MAX + 1];
    uint32_t election_ms;  /* --election-timeout */
    uint32_t heartbeat_ms; /* --heartbeat-interval, < election_ms / 2 */
    uint32_t node_gone_ms; /* --node-gone-timeout, >= 3 * election_ms */
    uint32_t snapshot_every; /* --snapshot-every, log entries */
};

struct gr_config {
    uint16_t port;
    char listen[256];
    int backlog;
    uint32_t job_retries;   /* 0 = unlimited (gearmand 1.1.x) */
    uint32_t worker_wakeup; /* NOOPs per queued job; 0 = every sleeper */
    char log_file[1024];    /* "" = stderr; "stderr"; "none"; path */
    char pid_file[1024];    /* "" = none */
    enum gr_log_level verbose;
    bool daemon;
    bool exceptions;
    bool round_robin; /* -R: a worker's function just assigned goes last */
    char data_dir[1024];
    uint64_t max_packet_size; /* bytes of a packet body */
    uint32_t max_connections;
    uint64_t min_free_space; /* refuse submissions below this headroom */
    uint64_t map_size;       /* hidden --test-map-size; 0 = default */
    char config_file[1024];  /* --config; "" = none */
    char http_host[STORE_HOST_MAX + 1]; /* --http-listen, no brackets */
    uint16_t http_port;                 /* ... 0: no HTTP endpoint */
    struct gr_cluster_config cluster;
    bool show_help;
    bool show_version;
};

/* Fills c with the defaults. */
void gr_config_defaults(struct gr_config *c);

/* Parses argv (argv[0] is the program name) over the defaults already in
 * c: first the file --config names, if any (lines "flag = value" with
 * the long names, or "flag" alone for a flag without a value; '#' starts
 * a comment at the start of a line or after a blank), then argv, so the
 * command line wins; then the cluster flags together. Returns 0, or
 * GR_EUSAGE with errmsg saying which flag and why, with "FILE:LINE: "
 * before it for a line of the file (the caller prints it with the usage
 * line and exits 2). Reentrant across calls (resets getopt). */
int gr_config_parse(struct gr_config *c, int argc, char **argv, char *errmsg,
                    size_t errmsg_len);

/* Prints --help: every flag, its default and meaning. */
void gr_config_help(FILE *fp, const char *prog);

/* Parses a byte count with an optional K, M, G or T suffix (powers of
 * 1024). Errors: GR_EINVAL. */
int gr_config_parse_size(const char *s, uint64_t *out);

#endif /* GEARRAFT_CONFIG_H */
