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
 * Not here: acting on the flags (main.c).
 */
#include "node/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_VERBOSE = 256,
    OPT_EXCEPTIONS,
    OPT_DATA_DIR,
    OPT_MAX_PACKET,
    OPT_MAX_CONN,
    OPT_MIN_FREE,
    OPT_TEST_MAP,
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

int gr_config_parse(struct gr_config *c, int argc, char **argv, char *errmsg,
                    size_t errmsg_len)
{
    int ch;
    int rv;

    optind = 0; /* glibc: full reinitialisation, so tests may parse twice */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":p:L:b:j:w:Rl:P:dt:Vh", long_opts,
                             NULL)) != -1) {
        if (ch == ':') {
            snprintf(errmsg, errmsg_len, "option %s needs a value",
                     argv[optind - 1]);
            return GR_EUSAGE;
        }
        rv = set_number(c, ch, optarg, errmsg, errmsg_len);
        if (rv == NOT_MINE) {
            rv = set_size(c, ch, optarg, errmsg, errmsg_len);
        }
        if (rv == NOT_MINE) {
            rv = set_other(c, ch, optarg, errmsg, errmsg_len);
        }
        if (rv == NOT_MINE) {
            snprintf(errmsg, errmsg_len, "unknown option %s", argv[optind - 1]);
            return GR_EUSAGE;
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        snprintf(errmsg, errmsg_len, "unexpected argument '%s'", argv[optind]);
        return GR_EUSAGE;
    }
    return 0;
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
        "                           than N bytes left (default 64M)\n",
        prog, GR_DEFAULT_PORT, GR_DEFAULT_LISTEN, GR_DEFAULT_BACKLOG,
        GR_DEFAULT_DATA_DIR, GR_DEFAULT_MAX_CONNECTIONS);
}
