/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearraft.c - gearraft, the operator's command line tool: it asks
 * one node, over its Gearman port, what the text admin protocol
 * (docs/protocol.md, "Admin lines") tells, and prints it for people.
 *
 *   gearraft [-h HOST] [-p PORT] [-t MS] [--raw] cluster
 *   gearraft [-h HOST] [-p PORT] [-t MS] [--raw] status
 *   gearraft [-h HOST] [-p PORT] [-t MS] add NAME HOST:PEERPORT
 *   gearraft [-h HOST] [-p PORT] [-t MS] promote NAME
 *   gearraft [-h HOST] [-p PORT] [-t MS] remove NAME
 *   gearraft [-h HOST] [-p PORT] [-t MS] transfer [NAME]
 *
 * Exit codes: 0 the node answered (a change: it was made); 1 it could
 * not be reached, did not answer in time, answered something other than
 * the command's reply (a server without `cluster`), or refused (an ERR
 * line, printed on stderr); 2 a bad command line.
 *
 * Why it is shaped this way: it is a client of the same protocol as
 * gearadmin, so any node answers it and nothing of the server is linked
 * in: a plain non-blocking socket, poll() and one deadline for the whole
 * exchange, libc only. Each subcommand is a row of `commands`
 * below: the admin line it sends and how it prints the reply; the
 * membership changes are rows too, whose line carries their arguments
 * and whose reply is one OK or ERR line.
 *
 * Not here: the server's side of the lines (node/gearman/admin.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef GR_VERSION
#define GR_VERSION "0.0.0"
#endif

#define DEFAULT_HOST       "localhost"
#define DEFAULT_PORT       "4730"
#define DEFAULT_TIMEOUT_MS 5000
#define REPLY_MAX          (64u * 1024 * 1024) /* a reply larger is refused */
#define MAX_COLS           8                   /* columns of a table */
#define MAX_ROWS           1024 /* rows aligned together; more start anew */
#define MAX_MEMBERS        64   /* member lines shown (a cluster has <= 16) */

struct opts {
    const char *host;
    const char *port;
    long timeout_ms;
    bool raw;
};

/* A reply read whole: the bytes and a NUL after them. */
struct reply {
    char *buf;
    size_t len;
    size_t cap;
};

/* ---------------------------------------------------------------------
 * Talking to the node: connect, send one line, read one reply, each
 * bounded by the same deadline.
 */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes. Returns
 * 0, or -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = {fd, events, 0};
    long long left;
    int n;

    for (;;) {
        left = deadline - now_ms();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            return -errno;
        }
        if (n > 0) {
            return 0;
        }
    }
}

/* Connects to one address without blocking past the deadline. Returns
 * the socket (non-blocking) or -errno. */
static int connect_one(const struct addrinfo *ai, long long deadline)
{
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int err = 0;
    socklen_t len = sizeof(err);
    int rv;

    if (fd == -1) {
        return -errno;
    }
    if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
        rv = -errno;
        goto err_close;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        return fd;
    }
    if (errno != EINPROGRESS) {
        rv = -errno;
        goto err_close;
    }
    rv = wait_fd(fd, POLLOUT, deadline);
    if (rv != 0) {
        goto err_close;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        rv = -errno;
        goto err_close;
    }
    if (err != 0) {
        rv = -err;
        goto err_close;
    }
    return fd;

err_close:
    close(fd);
    return rv;
}

/* Connects to host:port, trying each address it resolves to. Returns the
 * socket or -1 with a message on stderr. */
static int dial(const struct opts *o, long long deadline)
{
    struct addrinfo hints;
    struct addrinfo *res;
    struct addrinfo *ai;
    int fd = -ECONNREFUSED;
    int rv;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rv = getaddrinfo(o->host, o->port, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "gearraft: cannot resolve %s: %s\n", o->host,
                gai_strerror(rv));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = connect_one(ai, deadline);
        if (fd >= 0 || fd == -ETIMEDOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "gearraft: cannot connect to %s port %s: %s\n", o->host,
                o->port, fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
        return -1;
    }
    return fd;
}

/* After a send or recv on fd failed (errno set): 0 to try again - it was
 * interrupted, or fd is now ready for `events` - or a negative errno,
 * -ETIMEDOUT included. */
static int io_retry(int fd, short events, long long deadline)
{
    if (errno == EINTR) {
        return 0;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return -errno;
    }
    return wait_fd(fd, events, deadline);
}

static int send_line(int fd, const char *line, long long deadline)
{
    size_t len = strlen(line);
    size_t off = 0;
    ssize_t n;
    int rv = 0;

    while (off < len && rv == 0) {
        n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t)n;
        } else {
            rv = io_retry(fd, POLLOUT, deadline);
        }
    }
    return rv;
}

/* True when r starts a one-line reply: "OK..." or "ERR ..." (a list
 * reply starts with its first item or ".", and `status` items start with
 * a function name: one called "ERR x" would be taken for an error). */
static bool reply_is_one_line(const struct reply *r)
{
    return (r->len >= 3 && strncmp(r->buf, "OK", 2) == 0 &&
            strchr(" \r\n", r->buf[2]) != NULL) ||
           (r->len >= 4 && strncmp(r->buf, "ERR ", 4) == 0);
}

/* True once r holds a whole reply: a one-line reply with its LF, or a
 * list ended by a line holding only ".". */
static bool reply_is_whole(const struct reply *r)
{
    if (reply_is_one_line(r)) {
        return memchr(r->buf, '\n', r->len) != NULL;
    }
    return strncmp(r->buf, ".\n", 2) == 0 || strstr(r->buf, "\n.\n") != NULL;
}

/* Reads one whole reply into r. Returns 0, -ETIMEDOUT, -EPIPE (the node
 * closed first), -EMSGSIZE (over REPLY_MAX), -ENOMEM or -errno. */
static int read_reply(int fd, struct reply *r, long long deadline)
{
    ssize_t n;
    int rv;

    for (;;) {
        if (r->len > 0 && reply_is_whole(r)) {
            return 0;
        }
        if (r->cap - r->len < 4096 + 1) {
            size_t cap = r->cap == 0 ? 8192 : r->cap * 2;
            char *p;

            if (cap > REPLY_MAX) {
                return -EMSGSIZE;
            }
            p = realloc(r->buf, cap);
            if (p == NULL) {
                return -ENOMEM;
            }
            r->buf = p;
            r->cap = cap;
        }
        n = recv(fd, r->buf + r->len, r->cap - r->len - 1, 0);
        if (n > 0) {
            r->len += (size_t)n;
            r->buf[r->len] = '\0';
            continue;
        }
        if (n == 0) {
            return -EPIPE;
        }
        rv = io_retry(fd, POLLIN, deadline);
        if (rv != 0) {
            return rv;
        }
    }
}

/* Sends `line` to the node and reads its reply into r (the caller frees
 * r->buf). Returns 0, or 1 with a message on stderr. */
static int ask(const struct opts *o, const char *line, struct reply *r)
{
    long long deadline = now_ms() + o->timeout_ms;
    int fd = dial(o, deadline);
    int rv;

    if (fd < 0) {
        return 1;
    }
    rv = send_line(fd, line, deadline);
    if (rv == 0) {
        rv = read_reply(fd, r, deadline);
    }
    close(fd);
    if (rv == 0) {
        return 0;
    }
    fprintf(stderr, "gearraft: %s port %s: %s\n", o->host, o->port,
            rv == -ETIMEDOUT  ? "no whole reply in time (see -t)"
            : rv == -EPIPE    ? "the connection closed before the reply ended"
            : rv == -EMSGSIZE ? "the reply is too large"
                              : strerror(-rv));
    return 1;
}

/* ---------------------------------------------------------------------
 * Printing.
 */

/* The next line of a reply, NUL-terminated in place (a CR before the LF
 * dropped); NULL at the end. */
static char *next_line(char **cursor)
{
    char *line = *cursor;
    char *nl;

    if (line == NULL || *line == '\0') {
        return NULL;
    }
    nl = strchr(line, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cursor = nl + 1;
        if (nl > line && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
    } else {
        *cursor = line + strlen(line);
    }
    return line;
}

/* The value of KEY in a line of space-separated KEY=VALUE tokens, copied
 * to out; "?" when the key is not there. */
static const char *value_of(const char *line, const char *key, char *out,
                            size_t len)
{
    size_t klen = strlen(key);
    const char *p = line;

    while (*p != '\0') {
        size_t tlen = strcspn(p, " ");

        if (tlen > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            snprintf(out, len, "%.*s", (int)(tlen - klen - 1), p + klen + 1);
            return out;
        }
        p += tlen;
        p += strspn(p, " ");
    }
    snprintf(out, len, "?");
    return out;
}

/* A table whose cells point into a reply: printed with each column as
 * wide as its widest cell. */
struct table {
    size_t n_cols;
    size_t n_rows;
    const char *cell[MAX_ROWS][MAX_COLS];
};

/* Empties t and gives it n_cols columns under the header head. */
static void table_start(struct table *t, const char *const *head, size_t n_cols)
{
    size_t c;

    memset(t, 0, sizeof(*t));
    t->n_cols = n_cols;
    for (c = 0; c < n_cols; c++) {
        t->cell[0][c] = head[c];
    }
    t->n_rows = 1;
}

static void table_print(const struct table *t)
{
    size_t width[MAX_COLS] = {0};
    size_t r;
    size_t c;

    for (r = 0; r < t->n_rows; r++) {
        for (c = 0; c < t->n_cols; c++) {
            size_t w = strlen(t->cell[r][c]);

            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (r = 0; r < t->n_rows; r++) {
        for (c = 0; c < t->n_cols; c++) {
            if (c + 1 == t->n_cols) {
                printf("%s\n", t->cell[r][c]);
            } else {
                printf("%-*s  ", (int)width[c], t->cell[r][c]);
            }
        }
    }
}

/* `cluster`: the node's state, then a table of the members. */
static int print_cluster(char *reply)
{
    static const char *keys[5] = {"name", "addr", "role", "match", "reachable"};
    static const char *head[5] = {"NAME", "ADDRESS", "ROLE", "MATCH",
                                  "REACHABLE"};
    static char cells[MAX_MEMBERS][5][256];
    static struct table t;
    char *cursor = reply;
    char *first = next_line(&cursor);
    char *line;
    char v[8][256];
    size_t i;

    printf("cluster  %s\n", value_of(first, "cluster", v[0], sizeof(v[0])));
    printf("node     %s (%s)\n", value_of(first, "self", v[1], sizeof(v[1])),
           value_of(first, "role", v[2], sizeof(v[2])));
    value_of(first, "leader", v[3], sizeof(v[3]));
    printf("leader   %s\n", strcmp(v[3], "-") == 0 ? "none known" : v[3]);
    printf("term     %s\n", value_of(first, "term", v[4], sizeof(v[4])));
    printf("log      commit %s, applied %s, last %s\n\n",
           value_of(first, "commit", v[5], sizeof(v[5])),
           value_of(first, "applied", v[6], sizeof(v[6])),
           value_of(first, "last", v[7], sizeof(v[7])));
    table_start(&t, head, 5);
    while ((line = next_line(&cursor)) != NULL && strcmp(line, ".") != 0 &&
           t.n_rows <= MAX_MEMBERS) {
        for (i = 0; i < 5; i++) {
            t.cell[t.n_rows][i] = value_of(
                line, keys[i], cells[t.n_rows - 1][i], sizeof(cells[0][i]));
        }
        t.n_rows++;
    }
    table_print(&t);
    return 0;
}

/* `status`: FUNCTION TAB TOTAL TAB RUNNING TAB WORKERS lines. */
static int print_status(char *reply)
{
    static const char *head[4] = {"FUNCTION", "TOTAL", "RUNNING", "WORKERS"};
    static struct table t;
    char *cursor = reply;
    char *line;
    size_t c;

    table_start(&t, head, 4);
    while ((line = next_line(&cursor)) != NULL && strcmp(line, ".") != 0) {
        if (t.n_rows == MAX_ROWS) {
            table_print(&t);
            t.n_rows = 0;
        }
        for (c = 0; c < t.n_cols; c++) {
            size_t n = strcspn(line, "\t");

            t.cell[t.n_rows][c] = line;
            line += n;
            if (*line == '\t') {
                *line++ = '\0';
            }
        }
        t.n_rows++;
    }
    table_print(&t);
    return 0;
}

/* ---------------------------------------------------------------------
 * The subcommands and the command line.
 */

struct command {
    const char *name;
    const char *line;   /* the admin line sent; NULL: the name and args */
    const char *starts; /* what a good reply starts with ("" any list) */
    int (*print)(char *reply);
    const char *help;
    int min_args; /* a change's arguments */
    int max_args;
};

static const struct command commands[] = {
    {"cluster", "cluster\n", "self=", print_cluster,
     "the node's Raft state and every member as it sees them", 0, 0},
    {"status", "status\n", "", print_status,
     "the functions: jobs queued and running, running, workers", 0, 0},
    {"add", NULL, NULL, NULL,
     "NAME HOST:PEERPORT: a new member, as a learner (start it with --join)",
     2, 2},
    {"promote", NULL, NULL, NULL,
     "NAME: a learner that caught up becomes a voter", 1, 1},
    {"remove", NULL, NULL, NULL, "NAME: a member leaves the cluster", 1, 1},
    {"transfer", NULL, NULL, NULL,
     "[NAME]: the leader hands leadership over (to NAME, or the voter\n"
     "            most up to date)",
     0, 1},
};

/* A membership change: the line is the command and its arguments; the
 * node answers once the leader's verdict applied. OK prints what was
 * done; ERR goes to stderr with its text's '+' as spaces, exit 1. */
static int run_change(const struct opts *o, const struct command *c,
                      char **args, int n_args)
{
    struct reply r = {NULL, 0, 0};
    char line[1024];
    size_t len;
    char *text;
    int rv;
    int i;

    len = (size_t)snprintf(line, sizeof(line), "%s", c->name);
    for (i = 0; i < n_args; i++) {
        if (args[i][0] == '\0' || strpbrk(args[i], " \t\r\n") != NULL ||
            len + strlen(args[i]) + 2 >= sizeof(line)) {
            fprintf(stderr, "gearraft: %s: a bad argument\n", c->name);
            return 2;
        }
        len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", args[i]);
    }
    snprintf(line + len, sizeof(line) - len, "\n");
    rv = ask(o, line, &r);
    if (rv != 0) {
        free(r.buf);
        return rv;
    }
    text = r.buf;
    text[strcspn(text, "\r\n")] = '\0';
    if (strcmp(text, "OK") == 0) {
        line[len] = '\0'; /* the line without its LF */
        printf("%s: done\n", line);
        free(r.buf);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    for (i = 0; text[i] != '\0'; i++) {
        text[i] = text[i] == '+' ? ' ' : text[i];
    }
    fprintf(stderr, "gearraft: %s refused: %s\n", c->name,
            strncmp(text, "ERR ", 4) == 0 ? text + 4 : text);
    free(r.buf);
    return 1;
}

static void usage(FILE *fp)
{
    size_t i;

    fprintf(fp,
            "usage: gearraft [-h HOST] [-p PORT] [-t MS] [--raw] COMMAND "
            "[ARGS]\n"
            "\n"
            "Asks one gearraftd node over its Gearman port (the text admin\n"
            "protocol) and prints the answer.\n"
            "\n"
            "commands:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(fp, "  %-9s %s\n", commands[i].name, commands[i].help);
    }
    fprintf(fp,
            "\n"
            "options:\n"
            "  -h, --host HOST     the node (default %s)\n"
            "  -p, --port PORT     its Gearman port (default %s)\n"
            "  -t, --timeout MS    give up after MS milliseconds (default "
            "%d)\n"
            "      --raw           print the protocol lines as received\n"
            "      --help          this text\n"
            "      --version       gearraft's version\n"
            "\n"
            "Exit status: 0 answered, 1 unreachable or an unexpected "
            "answer,\n"
            "2 a bad command line.\n",
            DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_MS);
}

static int usage_error(const char *what)
{
    fprintf(stderr,
            "gearraft: %s\nTry 'gearraft --help' for more "
            "information.\n",
            what);
    return 2;
}

/* Runs subcommand c against the node: 0, or 1 with a message on
 * stderr. */
static int run(const struct opts *o, const struct command *c)
{
    struct reply r = {NULL, 0, 0};
    char *first;
    int rv;

    rv = ask(o, c->line, &r);
    if (rv != 0) {
        free(r.buf);
        return rv;
    }
    if (reply_is_one_line(&r) ||
        strncmp(r.buf, c->starts, strlen(c->starts)) != 0) {
        first = r.buf;
        fprintf(stderr,
                "gearraft: %s port %s does not answer `%s` as gearraftd "
                "does: %s\n",
                o->host, o->port, c->name, next_line(&first));
        free(r.buf);
        return 1;
    }
    if (o->raw) {
        fwrite(r.buf, 1, r.len, stdout);
        rv = 0;
    } else {
        rv = c->print(r.buf);
    }
    free(r.buf);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "gearraft: writing the output: %s\n", strerror(errno));
        return 1;
    }
    return rv;
}

/* True when s is a whole decimal number from 1 to max, stored in *n. */
static bool number_in(const char *s, unsigned long max, unsigned long *n)
{
    char *end;

    errno = 0;
    *n = strtoul(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && s[0] != '-' && *n >= 1 &&
           *n <= max;
}

enum { OPT_RAW = 256, OPT_HELP, OPT_VERSION };

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'},
        {"raw", no_argument, NULL, OPT_RAW},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TIMEOUT_MS, false};
    unsigned long n;
    size_t i;
    int ch;

    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+h:p:t:", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o.host = optarg;
            break;
        case 'p':
            if (!number_in(optarg, 65535, &n)) {
                return usage_error("-p: expected a port, 1 to 65535");
            }
            o.port = optarg;
            break;
        case 't':
            if (!number_in(optarg, 86400000, &n)) {
                return usage_error("-t: expected milliseconds, 1 to a day");
            }
            o.timeout_ms = (long)n;
            break;
        case OPT_RAW:
            o.raw = true;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("gearraft %s\n", GR_VERSION);
            return 0;
        default:
            return usage_error("unknown option or missing value");
        }
    }
    if (optind == argc) {
        return usage_error("which command?");
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const struct command *c = &commands[i];
        int n_args = argc - optind - 1;

        if (strcmp(argv[optind], c->name) != 0) {
            continue;
        }
        if (n_args < c->min_args || n_args > c->max_args) {
            return usage_error(c->line != NULL ? "one command at a time"
                                               : "wrong number of arguments");
        }
        return c->line != NULL ? run(&o, c)
                               : run_change(&o, c, argv + optind + 1, n_args);
    }
    return usage_error("unknown command");
}
