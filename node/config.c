/* SPDX-License-Identifier: BSD-3-Clause
 * node/config.c - parsing gearraftd's flags with getopt_long.
 *
 * Numbers are parsed with strtoul/strtoull and an end check (no atoi),
 * and every value is range-checked here so that main.c trusts the struct.
 * gearmand flags that make no sense for gearraftd (--threads, whose work
 * is done by one event loop here) are accepted and ignored, so existing
 * init scripts keep working; --help says so. One hidden flag exists for
 * tests only: --test-map-size (a tiny LMDB map, to reach "map full").
 *
 * A --config file takes the same long names as the command line and goes
 * through the same setters, so a value means the same wherever it is
 * written; it is read before argv, whatever the place of --config in it,
 * so the command line always wins. The cluster flags are checked
 * together last, once every source has been read: which ones go together
 * does not depend on their order.
 *
 * Not here: acting on the flags (main.c), the rules of names and
 * addresses (cluster/members.c).
 */
#include "node/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "node/cluster/members.h"

enum {
    OPT_VERBOSE = 256,
    OPT_EXCEPTIONS,
    OPT_DATA_DIR,
    OPT_MAX_PACKET,
    OPT_MAX_CONN,
    OPT_MIN_FREE,
    OPT_TEST_MAP,
    OPT_CONFIG,
    OPT_NODE_ID,
    OPT_PEER_LISTEN,
    OPT_INITIAL_CLUSTER,
    OPT_JOIN,
    OPT_CLUSTER_NAME,
    OPT_ELECTION,
    OPT_HEARTBEAT,
    OPT_NODE_GONE,
    OPT_SNAP_EVERY,
    OPT_HTTP_LISTEN,
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, 'p'},
    {"listen", required_argument, NULL, 'L'},
    {"backlog", required_argument, NULL, 'b'},
    {"job-retries", required_argument, NULL, 'j'},
    {"worker-wakeup", required_argument, NULL, 'w'},
    {"round-robin", no_argument, NULL, 'R'},
    {"log-file", required_argument, NULL, 'l'},
    {"pid-file", required_argument, NULL, 'P'},
    {"verbose", required_argument, NULL, OPT_VERBOSE},
    {"daemon", no_argument, NULL, 'd'},
    {"exceptions", no_argument, NULL, OPT_EXCEPTIONS},
    {"threads", required_argument, NULL, 't'},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"max-packet-size", required_argument, NULL, OPT_MAX_PACKET},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"min-free-space", required_argument, NULL, OPT_MIN_FREE},
    {"test-map-size", required_argument, NULL, OPT_TEST_MAP},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"peer-listen", required_argument, NULL, OPT_PEER_LISTEN},
    {"initial-cluster", required_argument, NULL, OPT_INITIAL_CLUSTER},
    {"join", required_argument, NULL, OPT_JOIN},
    {"cluster-name", required_argument, NULL, OPT_CLUSTER_NAME},
    {"election-timeout", required_argument, NULL, OPT_ELECTION},
    {"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
    {"node-gone-timeout", required_argument, NULL, OPT_NODE_GONE},
    {"snapshot-every", required_argument, NULL, OPT_SNAP_EVERY},
    {"http-listen", required_argument, NULL, OPT_HTTP_LISTEN},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void gr_config_defaults(struct gr_config *c)
{
    memset(c, 0, sizeof(*c));
    c->port = GR_DEFAULT_PORT;
    snprintf(c->listen, sizeof(c->listen), "%s", GR_DEFAULT_LISTEN);
    c->backlog = GR_DEFAULT_BACKLOG;
    c->verbose = GR_LOG_ERROR;
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", GR_DEFAULT_DATA_DIR);
    c->max_packet_size = GR_DEFAULT_MAX_PACKET;
    c->max_connections = GR_DEFAULT_MAX_CONNECTIONS;
    c->min_free_space = GR_DEFAULT_MIN_FREE;
    c->cluster.self_id = GR_ONE_NODE_ID;
    c->cluster.election_ms = GR_DEFAULT_ELECTION_MS;
    c->cluster.heartbeat_ms = GR_DEFAULT_HEARTBEAT_MS;
    c->cluster.node_gone_ms = GR_DEFAULT_NODE_GONE_MS;
    c->cluster.snapshot_every = GR_DEFAULT_SNAPSHOT_EVERY;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s[0] == '\0' || s[0] == '-' || isspace((unsigned char)s[0])) {
        return GR_EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return GR_EINVAL;
    }
    *out = v;
    return 0;
}

int gr_config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    if (s[0] == '\0' || s[0] == '-' || isspace((unsigned char)s[0])) {
        return GR_EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return GR_EINVAL;
    }
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = 1024ull;
        break;
    case 'm':
    case 'M':
        mult = 1024ull * 1024;
        break;
    case 'g':
    case 'G':
        mult = 1024ull * 1024 * 1024;
        break;
    case 't':
    case 'T':
        mult = 1024ull * 1024 * 1024 * 1024;
        break;
    default:
        return GR_EINVAL;
    }
    if (*end != '\0' && end[1] != '\0' &&
        !((end[1] == 'B' || end[1] == 'b') && end[2] == '\0')) {
        return GR_EINVAL;
    }
    if (v > UINT64_MAX / mult) {
        return GR_EINVAL;
    }
    *out = v * mult;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n == 0 || n >= cap) {
        return GR_EINVAL;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

static int bad(char *errmsg, size_t len, const char *flag, const char *arg,
               const char *why)
{
    snprintf(errmsg, len, "invalid value '%s' for %s: %s", arg, flag, why);
    return GR_EUSAGE;
}

/* A duration flag: min to max milliseconds. 0 or GR_EUSAGE. */
static int set_ms(uint32_t *out, const char *flag, const char *arg,
                  uint32_t min, uint32_t max, char *errmsg, size_t len)
{
    char why[64];
    uint64_t v;

    if (parse_u64(arg, max, &v) != 0 || v < min) {
        snprintf(why, sizeof(why), "expected %u-%u milliseconds", (unsigned)min,
                 (unsigned)max);
        return bad(errmsg, len, flag, arg, why);
    }
    *out = (uint32_t)v;
    return 0;
}

/* The options with a number: 0 set, GR_EUSAGE, or NOT_MINE. */
#define NOT_MINE 1
static int set_number(struct gr_config *c, int ch, const char *arg,
                      char *errmsg, size_t len)
{
    uint64_t v;

    switch (ch) {
    case 'p':
        if (parse_u64(arg, 65535, &v) != 0) {
            return bad(errmsg, len, "--port", arg,
                       "expected a port number 0-65535");
        }
        c->port = (uint16_t)v;
        return 0;
    case 'b':
        if (parse_u64(arg, 65535, &v) != 0 || v == 0) {
            return bad(errmsg, len, "--backlog", arg, "expected 1-65535");
        }
        c->backlog = (int)v;
        return 0;
    case 'j':
        if (parse_u64(arg, 255, &v) != 0) {
            return bad(errmsg, len, "--job-retries", arg,
                       "expected 0 (unlimited) to 255");
        }
        c->job_retries = (uint32_t)v;
        return 0;
    case 'w':
        if (parse_u64(arg, 1000000, &v) != 0) {
            return bad(errmsg, len, "--worker-wakeup", arg,
                       "expected 0 (every worker) to 1000000");
        }
        c->worker_wakeup = (uint32_t)v;
        return 0;
    case 't':
        if (parse_u64(arg, 1024, &v) != 0) {
            return bad(errmsg, len, "--threads", arg,
                       "expected a number (ignored by gearraftd)");
        }
        return 0;
    case OPT_MAX_CONN:
        if (parse_u64(arg, 1000000, &v) != 0 || v == 0) {
            return bad(errmsg, len, "--max-connections", arg,
                       "expected 1-1000000");
        }
        c->max_connections = (uint32_t)v;
        return 0;
    case OPT_ELECTION:
        return set_ms(&c->cluster.election_ms, "--election-timeout", arg, 10,
                      60000, errmsg, len);
    case OPT_HEARTBEAT:
        return set_ms(&c->cluster.heartbeat_ms, "--heartbeat-interval", arg, 1,
                      30000, errmsg, len);
    case OPT_NODE_GONE:
        return set_ms(&c->cluster.node_gone_ms, "--node-gone-timeout", arg, 1,
                      86400000, errmsg, len);
    case OPT_SNAP_EVERY:
        if (parse_u64(arg, 1000000000, &v) != 0 || v < 1) {
            return bad(errmsg, len, "--snapshot-every", arg,
                       "expected 1-1000000000 log entries");
        }
        c->cluster.snapshot_every = (uint32_t)v;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* The options with a size (K/M/G suffixes): 0, GR_EUSAGE, NOT_MINE. */
static int set_size(struct gr_config *c, int ch, const char *arg, char *errmsg,
                    size_t len)
{
    uint64_t v;

    switch (ch) {
    case OPT_MAX_PACKET:
        if (gr_config_parse_size(arg, &v) != 0 || v == 0 || v > UINT32_MAX) {
            return bad(errmsg, len, "--max-packet-size", arg,
                       "expected 1 to 4294967295 bytes (K/M/G suffix ok)");
        }
        c->max_packet_size = v;
        return 0;
    case OPT_MIN_FREE:
        if (gr_config_parse_size(arg, &v) != 0) {
            return bad(errmsg, len, "--min-free-space", arg,
                       "expected bytes (K/M/G suffix ok)");
        }
        c->min_free_space = v;
        return 0;
    case OPT_TEST_MAP:
        if (gr_config_parse_size(arg, &v) != 0 || v < 65536) {
            return bad(errmsg, len, "--test-map-size", arg,
                       "expected at least 64K");
        }
        c->map_size = v;
        return 0;
    case OPT_HTTP_LISTEN: {
        const char *why = NULL;

        if (gr_peer_addr_parse(arg, c->http_host, &c->http_port, &why) != 0) {
            return bad(errmsg, len, "--http-listen", arg, why);
        }
        return 0;
    }
    default:
        return NOT_MINE;
    }
}

/* The options with a string or none: 0, GR_EUSAGE, NOT_MINE. */
static int set_other(struct gr_config *c, int ch, const char *arg, char *errmsg,
                     size_t len)
{
    switch (ch) {
    case 'L':
        if (copy_str(c->listen, sizeof(c->listen), arg) != 0) {
            return bad(errmsg, len, "--listen", arg, "expected an address");
        }
        return 0;
    case 'l':
        if (copy_str(c->log_file, sizeof(c->log_file), arg) != 0) {
            return bad(errmsg, len, "--log-file", arg,
                       "expected a path, stderr or none");
        }
        return 0;
    case 'P':
        if (copy_str(c->pid_file, sizeof(c->pid_file), arg) != 0) {
            return bad(errmsg, len, "--pid-file", arg, "expected a path");
        }
        return 0;
    case OPT_DATA_DIR:
        if (copy_str(c->data_dir, sizeof(c->data_dir), arg) != 0) {
            return bad(errmsg, len, "--data-dir", arg,
                       "expected a directory path");
        }
        return 0;
    case OPT_VERBOSE:
        if (gr_log_level_parse(arg, &c->verbose) != 0) {
            return bad(errmsg, len, "--verbose", arg,
                       "expected FATAL, ALERT, CRITICAL, ERROR, WARNING, "
                       "NOTICE, INFO or DEBUG");
        }
        return 0;
    case 'R':
        c->round_robin = true;
        return 0;
    case 'd':
        c->daemon = true;
        return 0;
    case OPT_EXCEPTIONS:
        c->exceptions = true;
        return 0;
    case 'V':
        c->show_version = true;
        return 0;
    case 'h':
        c->show_help = true;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* The cluster flags with a name or an address: 0, GR_EUSAGE, NOT_MINE. */
static int set_cluster(struct gr_config *c, int ch, const char *arg,
                       char *errmsg, size_t len)
{
    struct gr_cluster_config *k = &c->cluster;
    const char *why = NULL;
    char inner[192];

    switch (ch) {
    case OPT_NODE_ID:
        if (!gr_name_is_valid(arg)) {
            return bad(errmsg, len, "--node-id", arg,
                       "expected 1-32 bytes of A-Z a-z 0-9 . _ -");
        }
        snprintf(k->self_name, sizeof(k->self_name), "%s", arg);
        return 0;
    case OPT_PEER_LISTEN:
        if (gr_peer_addr_parse(arg, k->peer_host, &k->peer_port, &why) != 0) {
            return bad(errmsg, len, "--peer-listen", arg, why);
        }
        return 0;
    case OPT_INITIAL_CLUSTER:
    case OPT_JOIN:
        if (gr_members_parse(arg, k->members, &k->n_members, inner,
                             sizeof(inner)) != 0) {
            k->n_members = 0;
            snprintf(errmsg, len, "invalid --%s: %s",
                     ch == OPT_JOIN ? "join" : "initial-cluster", inner);
            return GR_EUSAGE;
        }
        if (k->joining != (ch == OPT_JOIN) && k->given_list) {
            snprintf(errmsg, len,
                     "--join and --initial-cluster exclude each other (a "
                     "node founds a cluster or joins one)");
            return GR_EUSAGE;
        }
        k->joining = ch == OPT_JOIN;
        k->given_list = true;
        return 0;
    case OPT_CLUSTER_NAME:
        if (!gr_name_is_valid(arg) || strlen(arg) > STORE_CLUSTER_MAX) {
            return bad(errmsg, len, "--cluster-name", arg,
                       "expected 1-32 bytes of A-Z a-z 0-9 . _ -");
        }
        snprintf(k->cluster_name, sizeof(k->cluster_name), "%s", arg);
        return 0;
    default:
        return NOT_MINE;
    }
}

/* Sets the flag ch to arg: 0, GR_EUSAGE, or NOT_MINE for a flag no
 * setter knows. */
static int apply(struct gr_config *c, int ch, const char *arg, char *errmsg,
                 size_t len)
{
    int rv = set_number(c, ch, arg, errmsg, len);

    if (rv == NOT_MINE) {
        rv = set_size(c, ch, arg, errmsg, len);
    }
    if (rv == NOT_MINE) {
        rv = set_other(c, ch, arg, errmsg, len);
    }
    if (rv == NOT_MINE) {
        rv = set_cluster(c, ch, arg, errmsg, len);
    }
    return rv;
}

/* ---------------------------------------------------------------------
 * The --config file.
 */

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

static const struct option *find_long(const char *name)
{
    const struct option *o;

    for (o = long_opts; o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return o;
        }
    }
    return NULL;
}

/* One line of the file: a comment, a blank, "flag = value" or "flag".
 * 0, or GR_EUSAGE with errmsg saying what is wrong with it. */
static int apply_line(struct gr_config *c, char *line, char *errmsg, size_t len)
{
    const struct option *o;
    char *name;
    char *value = NULL;
    char *eq;
    size_t i;
    int rv;

    for (i = 0; line[i] != '\0'; i++) {
        if (line[i] == '#' && (i == 0 || isspace((unsigned char)line[i - 1]))) {
            line[i] = '\0';
            break;
        }
    }
    eq = strchr(line, '=');
    if (eq != NULL) {
        *eq = '\0';
        value = trim(eq + 1);
    }
    name = trim(line);
    if (name[0] == '\0' && value == NULL) {
        return 0;
    }
    o = find_long(name);
    if (o == NULL) {
        snprintf(errmsg, len, "unknown flag '%s'", name);
        return GR_EUSAGE;
    }
    if (o->val == OPT_CONFIG || o->val == 'h' || o->val == 'V') {
        snprintf(errmsg, len, "'%s' cannot be set in a config file", name);
        return GR_EUSAGE;
    }
    if (o->has_arg == no_argument) {
        if (value != NULL && strcmp(value, "false") == 0) {
            return 0;
        }
        if (value != NULL && strcmp(value, "true") != 0) {
            snprintf(errmsg, len, "'%s' takes no value (or true or false)",
                     name);
            return GR_EUSAGE;
        }
    } else if (value == NULL || value[0] == '\0') {
        snprintf(errmsg, len, "'%s' needs a value: %s = VALUE", name, name);
        return GR_EUSAGE;
    }
    rv = apply(c, o->val, value, errmsg, len);
    return rv == NOT_MINE ? GR_EUSAGE : rv;
}

/* Reads the --config file into c. */
static int load_file(struct gr_config *c, const char *path, char *errmsg,
                     size_t len)
{
    char line[GR_CONFIG_LINE_MAX];
    char why[384];
    unsigned no = 0;
    FILE *fp = fopen(path, "r");
    int rv = 0;

    if (fp == NULL) {
        snprintf(errmsg, len, "--config %s: %s", path, strerror(errno));
        return GR_EUSAGE;
    }
    while (rv == 0 && fgets(line, sizeof(line), fp) != NULL) {
        size_t n = strlen(line);

        no++;
        if (n == sizeof(line) - 1 && line[n - 1] != '\n' && !feof(fp)) {
            snprintf(why, sizeof(why), "line longer than %d bytes",
                     GR_CONFIG_LINE_MAX - 1);
            rv = GR_EUSAGE;
        } else {
            rv = apply_line(c, line, why, sizeof(why));
        }
    }
    if (rv != 0) {
        snprintf(errmsg, len, "%s:%u: %s", path, no, why);
    } else if (ferror(fp)) {
        snprintf(errmsg, len, "--config %s: read error", path);
        rv = GR_EUSAGE;
    }
    fclose(fp);
    return rv;
}

/* ---------------------------------------------------------------------
 * The command line, and the cluster flags together.
 */

#define SHORT_OPTS ":p:L:b:j:w:Rl:P:dt:Vh"

/* The first pass over argv: only --config, so that the file is read
 * before every other flag. */
static int find_config(struct gr_config *c, int argc, char **argv, char *errmsg,
                       size_t len)
{
    int ch;

    optind = 0; /* glibc: full reinitialisation, so tests may parse twice */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, SHORT_OPTS, long_opts, NULL)) != -1) {
        if (ch != OPT_CONFIG) {
            continue; /* the second pass reports what is wrong */
        }
        if (c->config_file[0] != '\0') {
            snprintf(errmsg, len, "--config given twice");
            return GR_EUSAGE;
        }
        if (copy_str(c->config_file, sizeof(c->config_file), optarg) != 0) {
            return bad(errmsg, len, "--config", optarg, "expected a path");
        }
    }
    return 0;
}

static int parse_argv(struct gr_config *c, int argc, char **argv, char *errmsg,
                      size_t len)
{
    int ch;
    int rv;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, SHORT_OPTS, long_opts, NULL)) != -1) {
        if (ch == ':') {
            snprintf(errmsg, len, "option %s needs a value", argv[optind - 1]);
            return GR_EUSAGE;
        }
        rv = ch == OPT_CONFIG ? 0 : apply(c, ch, optarg, errmsg, len);
        if (rv == NOT_MINE) {
            snprintf(errmsg, len, "unknown option %s", argv[optind - 1]);
            return GR_EUSAGE;
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        snprintf(errmsg, len, "unexpected argument '%s'", argv[optind]);
        return GR_EUSAGE;
    }
    return 0;
}

/* --join lists the members of the running cluster; this node goes into
 * its bootstrap member table too, at its --peer-listen address (so a
 * list that names it already must give that address). */
static int join_self(struct gr_cluster_config *k, const struct store_member *m,
                     char *errmsg, size_t len)
{
    struct store_member *me;

    if (m != NULL) {
        if (strcmp(m->name, k->self_name) != 0 ||
            strcmp(m->host, k->peer_host) != 0 || m->port != k->peer_port) {
            snprintf(errmsg, len,
                     "--join names %s with another name or address than "
                     "--node-id and --peer-listen",
                     m->name);
            return GR_EUSAGE;
        }
        return 0;
    }
    if (k->n_members == STORE_MEMBERS_MAX) {
        snprintf(errmsg, len, "--join: a cluster has at most %d members",
                 STORE_MEMBERS_MAX);
        return GR_EUSAGE;
    }
    me = &k->members[k->n_members];
    memset(me, 0, sizeof(*me));
    me->id = k->self_id;
    snprintf(me->name, sizeof(me->name), "%s", k->self_name);
    snprintf(me->host, sizeof(me->host), "%s", k->peer_host);
    me->port = k->peer_port;
    k->n_members++;
    return gr_members_check(k->members, k->n_members, errmsg, len);
}

/* The rules that tie the cluster flags together (README.md, "Flags"). */
static int check_cluster(struct gr_cluster_config *k, char *errmsg, size_t len)
{
    bool named = k->self_name[0] != '\0';
    bool listens = k->peer_port != 0;
    const struct store_member *m;

    if (k->n_members > 0 && (!named || !listens)) {
        snprintf(errmsg, len,
                 "--%s needs --node-id and --peer-listen "
                 "(this member's name and the address it listens on for "
                 "peers)",
                 k->joining ? "join" : "initial-cluster");
        return GR_EUSAGE;
    }
    if (named != listens) {
        snprintf(errmsg, len, "%s",
                 named ? "--node-id needs --peer-listen (the address this "
                         "member listens on for peers)"
                       : "--peer-listen needs --node-id (this member's name)");
        return GR_EUSAGE;
    }
    if ((uint64_t)k->heartbeat_ms * 2 >= k->election_ms) {
        snprintf(errmsg, len,
                 "--heartbeat-interval %u must be below half the "
                 "--election-timeout %u",
                 (unsigned)k->heartbeat_ms, (unsigned)k->election_ms);
        return GR_EUSAGE;
    }
    if (k->node_gone_ms < (uint64_t)k->election_ms * 3) {
        snprintf(errmsg, len,
                 "--node-gone-timeout %u must be at least 3 times the "
                 "--election-timeout %u",
                 (unsigned)k->node_gone_ms, (unsigned)k->election_ms);
        return GR_EUSAGE;
    }
    if (!named) {
        k->member = false;
        k->self_id = GR_ONE_NODE_ID;
        return 0;
    }
    k->member = true;
    k->self_id = gr_member_id(k->self_name);
    m = gr_members_find(k->members, k->n_members, k->self_id);
    if (k->joining) {
        return join_self(k, m, errmsg, len);
    }
    if (k->n_members > 0 && (m == NULL || strcmp(m->name, k->self_name) != 0)) {
        snprintf(errmsg, len, "--node-id %s is not in --initial-cluster",
                 k->self_name);
        return GR_EUSAGE;
    }
    return 0;
}

int gr_config_parse(struct gr_config *c, int argc, char **argv, char *errmsg,
                    size_t errmsg_len)
{
    int rv = find_config(c, argc, argv, errmsg, errmsg_len);

    if (rv == 0 && c->config_file[0] != '\0') {
        rv = load_file(c, c->config_file, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = parse_argv(c, argc, argv, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = check_cluster(&c->cluster, errmsg, errmsg_len);
    }
    return rv;
}

void gr_config_help(FILE *fp, const char *prog)
{
    fprintf(
        fp,
        "Usage: %s [OPTIONS]\n"
        "gearraftd: a Gearman job server (gearmand 1.1 compatible) that keeps\n"
        "every acknowledged job durable in LMDB.\n"
        "\n"
        "gearmand-compatible options:\n"
        "  -p, --port PORT          TCP port (default %d)\n"
        "  -L, --listen ADDR        address to listen on (default %s)\n"
        "  -b, --backlog N          listen() backlog (default %d)\n"
        "  -j, --job-retries N      fail a job once its worker was lost N\n"
        "                           times; 0 = retry forever (default 0)\n"
        "  -w, --worker-wakeup N    sleeping workers woken (NOOP) per job\n"
        "                           queued; 0 = all of them (default 0)\n"
        "  -R, --round-robin        a worker of several functions gets them\n"
        "                           in turn; without it, its most recently\n"
        "                           registered function is drained first\n"
        "  -l, --log-file PATH      log to PATH, 'stderr' or 'none'\n"
        "                           (default stderr)\n"
        "  -P, --pid-file PATH      write the process id to PATH\n"
        "      --verbose LEVEL      FATAL, ALERT, CRITICAL, ERROR, WARNING,\n"
        "                           NOTICE, INFO or DEBUG (default ERROR)\n"
        "  -d, --daemon             run in the background\n"
        "      --exceptions         turn on the 'exceptions' option for\n"
        "                           every connection\n"
        "  -t, --threads N          accepted and ignored: one event loop\n"
        "                           serves everything\n"
        "  -V, --version            print the version and exit\n"
        "  -h, --help               print this help and exit\n"
        "\n"
        "gearraftd options:\n"
        "      --data-dir DIR       where the LMDB environment lives\n"
        "                           (default %s)\n"
        "      --max-packet-size N  largest packet body accepted, in bytes,\n"
        "                           K/M/G suffixes allowed (default 1G);\n"
        "                           larger packets get ERROR and the\n"
        "                           connection is closed\n"
        "      --max-connections N  connections served at once (default %d);\n"
        "                           more are accepted and closed at once\n"
        "      --min-free-space N   refuse new submissions (ERROR "
        "QUEUE_ERROR)\n"
        "                           when the LMDB map or the disk has less\n"
        "                           than N bytes left (default 64M)\n"
        "      --http-listen ADDR:PORT\n"
        "                           serve GET /metrics (Prometheus text)\n"
        "                           and GET /health (200 when serving, 503\n"
        "                           and why not) over HTTP there (default:\n"
        "                           off)\n"
        "      --config FILE        read flags from FILE first: lines\n"
        "                           'flag = value' (long names; a flag\n"
        "                           without a value alone), '#' comments;\n"
        "                           the command line overrides them\n",
        prog, GR_DEFAULT_PORT, GR_DEFAULT_LISTEN, GR_DEFAULT_BACKLOG,
        GR_DEFAULT_DATA_DIR, GR_DEFAULT_MAX_CONNECTIONS);
    fprintf(
        fp,
        "\n"
        "cluster options (a node with none of the first three is the\n"
        "one-node default):\n"
        "      --node-id NAME       this member's name: 1-32 bytes of\n"
        "                           A-Z a-z 0-9 . _ -; its Raft id is a\n"
        "                           hash of it. Needs --peer-listen\n"
        "      --peer-listen ADDR:PORT\n"
        "                           where this member listens for its peers\n"
        "                           (IPv4, [IPv6] or a host name; the port\n"
        "                           is required). Needs --node-id\n"
        "      --initial-cluster NAME=HOST:PORT,...\n"
        "                           the founding members (1-%d, names\n"
        "                           unique, this node among them), the same\n"
        "                           list on each; bootstraps a fresh data\n"
        "                           directory, ignored once it holds a\n"
        "                           cluster; a member's fresh directory\n"
        "                           needs it\n"
        "      --join NAME=HOST:PORT,...\n"
        "                           instead of --initial-cluster: this\n"
        "                           fresh node joins a running cluster whose\n"
        "                           members the list names (`gearraft\n"
        "                           cluster` shows them): it accepts their\n"
        "                           links and waits, with no vote, until a\n"
        "                           leader adds it (`gearraft add NAME\n"
        "                           HOST:PORT`); give the cluster's\n"
        "                           --cluster-name too. Ignored once the\n"
        "                           directory holds a cluster\n"
        "      --cluster-name NAME  the handles' prefix (H:NAME:n) of a\n"
        "                           fresh data directory (default %s\n"
        "                           for a cluster, the host name for one\n"
        "                           node); a directory keeps its own and\n"
        "                           refuses another\n"
        "      --election-timeout MS\n"
        "                           Raft election timeout (default %d)\n"
        "      --heartbeat-interval MS\n"
        "                           leader heartbeats, below half the\n"
        "                           election timeout (default %d)\n"
        "      --node-gone-timeout MS\n"
        "                           a member unheard of this long is gone\n"
        "                           and its workers' jobs are requeued; at\n"
        "                           least 3 election timeouts (default %d)\n"
        "      --snapshot-every N   a member snapshots its queue and compacts\n"
        "                           its log behind it every N applied log\n"
        "                           entries (default %d)\n",
        STORE_MEMBERS_MAX, STORE_CLUSTER_DEFAULT, GR_DEFAULT_ELECTION_MS,
        GR_DEFAULT_HEARTBEAT_MS, GR_DEFAULT_NODE_GONE_MS,
        GR_DEFAULT_SNAPSHOT_EVERY);
}
