/* SPDX-License-Identifier: BSD-3-Clause
 * node/config.h - gearraftd's command line.
 *
 * gearmand's flags are accepted where they mean the same (docs/protocol.md,
 * "Flags"),
 * so init scripts carry over; the rest are ours. Parsing is a pure
 * function of argv so that tests can check every flag, valid and bad.
 *
 * Not here: acting on the flags (main.c).
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
    bool show_help;
    bool show_version;
};

/* Fills c with the defaults. */
void gr_config_defaults(struct gr_config *c);

/* Parses argv (argv[0] is the program name) over the defaults already in
 * c. Returns 0, or GR_EUSAGE with errmsg saying which flag and why (the
 * caller prints it with the usage line and exits 2). Reentrant across
 * calls (resets getopt). */
int gr_config_parse(struct gr_config *c, int argc, char **argv, char *errmsg,
                    size_t errmsg_len);

/* Prints --help: every flag, its default and meaning. */
void gr_config_help(FILE *fp, const char *prog);

/* Parses a byte count with an optional K, M, G or T suffix (powers of
 * 1024). Errors: GR_EINVAL. */
int gr_config_parse_size(const char *s, uint64_t *out);

#endif /* GEARRAFT_CONFIG_H */
