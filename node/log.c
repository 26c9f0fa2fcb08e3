/* SPDX-License-Identifier: BSD-3-Clause
 * node/log.c - GR_LOG's back end: one line per event, to stderr, a file or
 * nowhere: an ISO-8601 UTC time stamp, a one-letter level, the node's
 * name (its --node-id, "-" for the one-node default), the module, the
 * message.
 *
 * The level names are gearmand's (--verbose FATAL ... DEBUG), because the
 * admin command `verbose` prints them and init scripts pass them.
 *
 * Not here: rate limiting is the caller's business (it knows what repeats).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "node/gr.h"

enum gr_log_level gr_log_threshold = GR_LOG_ERROR;

static FILE *log_fp; /* NULL: stderr */
static char log_node[40] = "-"; /* this node's name, on every line */
static bool log_none;

static const char *const level_names[GR_LOG_LEVEL_COUNT] = {
    "FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG",
};
static const char level_letters[GR_LOG_LEVEL_COUNT] = {'F', 'A', 'C', 'E',
                                                       'W', 'N', 'I', 'D'};

const char *gr_log_level_name(enum gr_log_level level)
{
    if ((int)level < 0 || level >= GR_LOG_LEVEL_COUNT) {
        return "UNKNOWN";
    }
    return level_names[level];
}

int gr_log_level_parse(const char *s, enum gr_log_level *out)
{
    int i;

    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0') {
        *out = (enum gr_log_level)(s[0] - '0');
        return 0;
    }
    for (i = 0; i < GR_LOG_LEVEL_COUNT; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum gr_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "WARN") == 0) {
        *out = GR_LOG_WARN;
        return 0;
    }
    if (strcasecmp(s, "CRIT") == 0) {
        *out = GR_LOG_CRIT;
        return 0;
    }
    return GR_EINVAL;
}

int gr_log_open(const char *where, char *errmsg, size_t errmsg_len)
{
    FILE *fp;

    gr_log_close();
    if (where == NULL || strcmp(where, "stderr") == 0) {
        return 0;
    }
    if (strcmp(where, "none") == 0) {
        log_none = true;
        return 0;
    }
    fp = fopen(where, "a");
    if (fp == NULL) {
        snprintf(errmsg, errmsg_len, "opening log file %s: %s", where,
                 strerror(errno));
        return GR_EIO;
    }
    setvbuf(fp, NULL, _IOLBF, 0);
    log_fp = fp;
    return 0;
}

void gr_log_close(void)
{
    if (log_fp != NULL) {
        fclose(log_fp);
        log_fp = NULL;
    }
    log_none = false;
}

void gr_log_set_node(const char *name)
{
    snprintf(log_node, sizeof(log_node), "%s",
             name != NULL && name[0] != '\0' ? name : "-");
}

void gr_log_write(enum gr_log_level level, const char *module, const char *fmt,
                  ...)
{
    char line[2048];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    FILE *fp;
    va_list ap;
    size_t n;
    size_t i;
    int k;

    if (log_none) {
        return;
    }
    fp = log_fp != NULL ? log_fp : stderr;
    if (clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
        gmtime_r(&ts.tv_sec, &tm) == NULL) {
        memset(&tm, 0, sizeof(tm));
        ts.tv_nsec = 0;
    }
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line, sizeof(line), "%s.%03ldZ %c %s %s ", stamp,
                 ts.tv_nsec / 1000000L,
                 (int)level >= 0 && level < GR_LOG_LEVEL_COUNT
                     ? level_letters[level]
                     : '?',
                 log_node, module);
    n = k < 0 ? 0 : (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k > 0) {
        n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
    }
    /* One event, one line: a newline inside a message (an error text
     * from elsewhere) becomes a blank. */
    for (i = 0; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r') {
            line[i] = ' ';
        }
    }
    if (n < sizeof(line) - 1) {
        line[n++] = '\n';
    } else {
        line[sizeof(line) - 2] = '\n';
    }
    /* One write per line: the loop and the committer's threads log too,
     * and their lines never interleave. */
    (void)fwrite(line, 1, n, fp);
}
