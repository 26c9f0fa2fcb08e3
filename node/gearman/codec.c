/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/codec.c - parsing and writing Gearman frames
 * (docs/protocol.md, "Framing", and "Bad input" for the reactions to
 * malformed ones), and building the packets that carry a job or a result.
 *
 * The parser never consumes a partial frame: it peeks the header with
 * evbuffer_copyout(), and only when the whole body is buffered does it
 * drain the header and remove the body in one call. So a caller may feed
 * the stream in any split and get the same frames.
 *
 * Not here: the meaning of packets (request.c).
 */
#include "node/gearman/codec.h"

#include <string.h>

#include <event2/buffer.h>

#define R GM_ROLE_REQUEST
#define U GM_ROLE_UNIMPLEMENTED
#define S GM_ROLE_RESPONSE

/* Indexed by packet number; row 0 is unused (TEXT never travels). */
static const struct gm_cmd_info cmd_table[GM_CMD_COUNT] = {
    [GM_TEXT] = {"TEXT", 0, U},
    [GM_CAN_DO] = {"CAN_DO", 1, R},
    [GM_CANT_DO] = {"CANT_DO", 1, R},
    [GM_RESET_ABILITIES] = {"RESET_ABILITIES", 0, R},
    [GM_PRE_SLEEP] = {"PRE_SLEEP", 0, R},
    [GM_UNUSED_5] = {"UNUSED", 0, U},
    [GM_NOOP] = {"NOOP", 0, S},
    [GM_SUBMIT_JOB] = {"SUBMIT_JOB", 3, R},
    [GM_JOB_CREATED] = {"JOB_CREATED", 1, S},
    [GM_GRAB_JOB] = {"GRAB_JOB", 0, R},
    [GM_NO_JOB] = {"NO_JOB", 0, S},
    [GM_JOB_ASSIGN] = {"JOB_ASSIGN", 3, S},
    [GM_WORK_STATUS] = {"WORK_STATUS", 3, R},
    [GM_WORK_COMPLETE] = {"WORK_COMPLETE", 2, R},
    [GM_WORK_FAIL] = {"WORK_FAIL", 1, R},
    [GM_GET_STATUS] = {"GET_STATUS", 1, R},
    [GM_ECHO_REQ] = {"ECHO_REQ", 1, R},
    [GM_ECHO_RES] = {"ECHO_RES", 1, S},
    [GM_SUBMIT_JOB_BG] = {"SUBMIT_JOB_BG", 3, R},
    [GM_ERROR] = {"ERROR", 2, S},
    [GM_STATUS_RES] = {"STATUS_RES", 5, S},
    [GM_SUBMIT_JOB_HIGH] = {"SUBMIT_JOB_HIGH", 3, R},
    [GM_SET_CLIENT_ID] = {"SET_CLIENT_ID", 1, R},
    [GM_CAN_DO_TIMEOUT] = {"CAN_DO_TIMEOUT", 2, R},
    [GM_ALL_YOURS] = {"ALL_YOURS", 0, U},
    [GM_WORK_EXCEPTION] = {"WORK_EXCEPTION", 2, R},
    [GM_OPTION_REQ] = {"OPTION_REQ", 1, R},
    [GM_OPTION_RES] = {"OPTION_RES", 1, S},
    [GM_WORK_DATA] = {"WORK_DATA", 2, R},
    [GM_WORK_WARNING] = {"WORK_WARNING", 2, R},
    [GM_GRAB_JOB_UNIQ] = {"GRAB_JOB_UNIQ", 0, R},
    [GM_JOB_ASSIGN_UNIQ] = {"JOB_ASSIGN_UNIQ", 4, S},
    [GM_SUBMIT_JOB_HIGH_BG] = {"SUBMIT_JOB_HIGH_BG", 3, R},
    [GM_SUBMIT_JOB_LOW] = {"SUBMIT_JOB_LOW", 3, R},
    [GM_SUBMIT_JOB_LOW_BG] = {"SUBMIT_JOB_LOW_BG", 3, R},
    [GM_SUBMIT_JOB_SCHED] = {"SUBMIT_JOB_SCHED", 8, U},
    [GM_SUBMIT_JOB_EPOCH] = {"SUBMIT_JOB_EPOCH", 4, R},
    [GM_SUBMIT_REDUCE_JOB] = {"SUBMIT_REDUCE_JOB", 5, R},
    [GM_SUBMIT_REDUCE_JOB_BACKGROUND] = {"SUBMIT_REDUCE_JOB_BACKGROUND", 5, R},
    [GM_GRAB_JOB_ALL] = {"GRAB_JOB_ALL", 0, R},
    [GM_JOB_ASSIGN_ALL] = {"JOB_ASSIGN_ALL", 5, S},
    [GM_GET_STATUS_UNIQUE] = {"GET_STATUS_UNIQUE", 1, R},
    [GM_STATUS_RES_UNIQUE] = {"STATUS_RES_UNIQUE", 6, S},
};

#undef R
#undef U
#undef S

const struct gm_cmd_info *gm_cmd_info(uint32_t type)
{
    if (type == GM_TEXT || type >= GM_CMD_COUNT) {
        return NULL;
    }
    return &cmd_table[type];
}

struct store_buf gm_str(const char *s)
{
    struct store_buf b;

    b.base = (const uint8_t *)s;
    b.len = strlen(s);
    return b;
}

void gm_packet_close(struct gm_packet *p)
{
    gr_free(p->body);
    memset(p, 0, sizeof(*p));
}

void gm_packet_take_body(struct gm_packet *p, uint8_t **body, size_t *len)
{
    *body = p->body;
    *len = p->len;
    p->body = NULL;
}

void gm_frame_close(struct gm_frame *f)
{
    gm_packet_close(&f->packet);
    gr_free(f->line);
    memset(f, 0, sizeof(*f));
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void gm_packet_split(struct gm_packet *p)
{
    /* Arguments of an empty body point here: never NULL, so that every
     * consumer may hand them to mem* functions. */
    static uint8_t empty[1];
    const struct gm_cmd_info *info = gm_cmd_info(p->type);
    size_t want = info != NULL ? info->n_args : 0;
    uint8_t *body = p->body != NULL ? p->body : empty;
    size_t i;
    size_t pos = 0;

    p->n_args = 0;
    p->args_ok = true;
    if (want == 0) {
        return;
    }
    for (i = 0; i + 1 < want; i++) {
        const uint8_t *nul = NULL;

        if (pos < p->len) {
            nul = memchr(body + pos, '\0', p->len - pos);
        }
        if (nul == NULL) {
            p->args_ok = false;
            return;
        }
        p->args[i].base = body + pos;
        p->args[i].len = (size_t)(nul - (body + pos));
        pos += p->args[i].len + 1;
        p->n_args++;
    }
    p->args[i].base = body + pos;
    p->args[i].len = p->len - pos;
    p->n_args++;
}

static int parse_admin(struct evbuffer *in, struct gm_frame *out)
{
    struct evbuffer_ptr eol;
    size_t eol_len = 0;
    size_t line_len;
    char *line;

    eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (eol.pos < 0) {
        if (evbuffer_get_length(in) > GM_ADMIN_LINE_MAX) {
            return GR_EPROTO;
        }
        return GR_EAGAIN;
    }
    line_len = (size_t)eol.pos;
    if (line_len > GM_ADMIN_LINE_MAX) {
        return GR_EPROTO;
    }
    line = gr_malloc(line_len + 1);
    if (line == NULL) {
        return GR_ENOMEM;
    }
    if (line_len > 0 && evbuffer_remove(in, line, line_len) != (int)line_len) {
        gr_free(line);
        return GR_EIO;
    }
    evbuffer_drain(in, eol_len);
    /* gearmand removes one CR before the LF. */
    if (line_len > 0 && line[line_len - 1] == '\r') {
        line_len--;
    }
    line[line_len] = '\0';
    memset(out, 0, sizeof(*out));
    out->kind = GM_FRAME_ADMIN;
    out->line = line;
    out->line_len = line_len;
    return 0;
}

static void frame_packet(struct gm_frame *out, bool request, uint32_t type,
                         uint8_t *body, size_t body_len)
{
    memset(out, 0, sizeof(*out));
    out->kind = GM_FRAME_PACKET;
    out->packet.is_request = request;
    out->packet.type = type;
    out->packet.body = body;
    out->packet.len = body_len;
    gm_packet_split(&out->packet);
}

int gm_frame_parse(struct evbuffer *in, size_t max_body, struct gm_frame *out,
                   uint32_t *type_out)
{
    uint8_t hdr[GM_HEADER_LEN];
    size_t have = evbuffer_get_length(in);
    uint32_t type;
    size_t body_len;
    bool request;
    uint8_t *body = NULL;

    if (have == 0) {
        return GR_EAGAIN;
    }
    if (evbuffer_copyout(in, hdr, 1) != 1) {
        return GR_EIO;
    }
    if (hdr[0] != '\0') {
        return parse_admin(in, out);
    }
    /* Reject bad magic as soon as its bytes are here, as gearmand does. */
    if (evbuffer_copyout(in, hdr, have < GM_HEADER_LEN ? have : GM_HEADER_LEN) <
        0) {
        return GR_EIO;
    }
    {
        static const char req[4] = {'\0', 'R', 'E', 'Q'};
        static const char res[4] = {'\0', 'R', 'E', 'S'};
        size_t n = have < 4 ? have : 4;

        if (memcmp(hdr, req, n) != 0 && memcmp(hdr, res, n) != 0) {
            return GR_EPROTO;
        }
    }
    if (have < GM_HEADER_LEN) {
        return GR_EAGAIN;
    }
    request = hdr[3] == 'Q';
    type = be32(hdr + 4);
    body_len = be32(hdr + 8);
    if (type == GM_TEXT || type >= GM_CMD_COUNT) {
        return GR_EPROTO;
    }
    if (body_len > max_body) {
        evbuffer_drain(in, GM_HEADER_LEN);
        *type_out = type;
        return GR_ETOOBIG;
    }
    if (have - GM_HEADER_LEN < body_len) {
        return GR_EAGAIN;
    }
    if (body_len > 0) {
        body = gr_malloc(body_len);
        if (body == NULL) {
            return GR_ENOMEM;
        }
    }
    evbuffer_drain(in, GM_HEADER_LEN);
    if (body_len > 0 && evbuffer_remove(in, body, body_len) != (int)body_len) {
        gr_free(body);
        return GR_EIO;
    }
    frame_packet(out, request, type, body, body_len);
    *type_out = type;
    return 0;
}

int gm_frame_take_big(struct evbuffer *in, size_t min_body,
                      struct gm_big_body *big)
{
    uint8_t hdr[GM_HEADER_LEN];
    size_t have = evbuffer_get_length(in);
    size_t body_len;
    size_t part;

    if (have < GM_HEADER_LEN ||
        evbuffer_copyout(in, hdr, GM_HEADER_LEN) != GM_HEADER_LEN ||
        hdr[0] != '\0') {
        return GR_EAGAIN;
    }
    body_len = be32(hdr + 8);
    if (body_len < min_body || have - GM_HEADER_LEN >= body_len) {
        return GR_EAGAIN;
    }
    memset(big, 0, sizeof(*big));
    big->body = gr_malloc(body_len);
    if (big->body == NULL) {
        return GR_ENOMEM;
    }
    big->request = hdr[3] == 'Q';
    big->type = be32(hdr + 4);
    big->len = body_len;
    evbuffer_drain(in, GM_HEADER_LEN);
    part = have - GM_HEADER_LEN;
    if (part > 0 && evbuffer_remove(in, big->body, part) != (int)part) {
        gr_free(big->body);
        big->body = NULL;
        return GR_EIO;
    }
    big->have = part;
    return 0;
}

void gm_frame_of_big(struct gm_big_body *big, struct gm_frame *out)
{
    frame_packet(out, big->request, big->type, big->body, big->len);
    memset(big, 0, sizeof(*big));
}

/* Appends the packet; with release set, the last argument is added by
 * reference (libevent calls release(base, len, extra) once it is sent or
 * dropped) instead of copied. */
static int write_packet(struct evbuffer *out, bool request, uint32_t type,
                        const struct store_buf *args, size_t n,
                        gm_ref_release_fn release, void *extra)
{
    uint8_t hdr[GM_HEADER_LEN];
    uint64_t total = 0;
    size_t copied;
    size_t i;
    static const uint8_t nul = 0;

    for (i = 0; i < n; i++) {
        total += args[i].len;
    }
    if (n > 1) {
        total += n - 1;
    }
    if (total > UINT32_MAX) {
        return GR_ETOOBIG;
    }
    copied = (size_t)total;
    if (release != NULL) {
        copied -= args[n - 1].len;
    }
    memcpy(hdr, request ? "\0REQ" : "\0RES", 4);
    put_be32(hdr + 4, type);
    put_be32(hdr + 8, (uint32_t)total);
    if (evbuffer_expand(out, GM_HEADER_LEN + copied) != 0 ||
        evbuffer_add(out, hdr, sizeof(hdr)) != 0) {
        return GR_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        bool by_ref = release != NULL && i + 1 == n;
        int rc = 0;

        if (args[i].len > 0) {
            rc = by_ref ? evbuffer_add_reference(out, args[i].base, args[i].len,
                                                 release, extra)
                        : evbuffer_add(out, args[i].base, args[i].len);
        }
        if (rc != 0) {
            return GR_ENOMEM;
        }
        if (i + 1 < n && evbuffer_add(out, &nul, 1) != 0) {
            return GR_ENOMEM;
        }
    }
    return 0;
}

int gm_packet_write_magic(struct evbuffer *out, bool request, uint32_t type,
                          const struct store_buf *args, size_t n)
{
    return write_packet(out, request, type, args, n, NULL, NULL);
}

int gm_packet_write_ref(struct evbuffer *out, uint32_t type,
                        const struct store_buf *args, size_t n,
                        gm_ref_release_fn release, void *extra)
{
    int rv;

    if (n == 0 || args[n - 1].len == 0) {
        rv = write_packet(out, false, type, args, n, NULL, NULL);
        release(NULL, 0, extra); /* nothing referenced */
        return rv;
    }
    rv = write_packet(out, false, type, args, n, release, extra);
    if (rv != 0) {
        /* The reference is the last thing added, so on any failure
         * libevent never took it (and calls nothing): release here. */
        release(args[n - 1].base, args[n - 1].len, extra);
    }
    return rv;
}

int gm_packet_write(struct evbuffer *out, uint32_t type,
                    const struct store_buf *args, size_t n)
{
    return gm_packet_write_magic(out, false, type, args, n);
}

int gm_error_write(struct evbuffer *out, const char *code, const char *text)
{
    struct store_buf a[2];

    a[0] = gm_str(code);
    a[1] = gm_str(text);
    return gm_packet_write(out, GM_ERROR, a, 2);
}

/* ---------------------------------------------------------------------
 * Packets built from what storage hands out: a job to a worker, a
 * worker's WORK_* to a client.
 */

/* The answer to a GRAB_JOB (grab_type) that found a job: JOB_ASSIGN,
 * _UNIQ, or _ALL - which gearmand sends only for a job with a reducer. */
uint32_t gm_assign_type(uint32_t grab_type, size_t reducer_len)
{
    if (grab_type == GM_GRAB_JOB_ALL && reducer_len > 0) {
        return GM_JOB_ASSIGN_ALL;
    }
    if (grab_type == GM_GRAB_JOB_UNIQ || grab_type == GM_GRAB_JOB_ALL) {
        return GM_JOB_ASSIGN_UNIQ;
    }
    return GM_JOB_ASSIGN;
}

/* The arguments of a JOB_ASSIGN* of this type; returns their count. */
size_t gm_assign_args(uint32_t type, const struct store_job_view *v,
                      struct store_buf a[5])
{
    a[0] = v->handle;
    a[1] = v->function;
    if (type == GM_JOB_ASSIGN) {
        a[2] = v->data;
        return 3;
    }
    a[2] = v->unique;
    if (type == GM_JOB_ASSIGN_UNIQ) {
        a[3] = v->data;
        return 4;
    }
    a[3] = v->reducer;
    a[4] = v->data;
    return 5;
}

uint32_t gm_forward_args(enum store_work_kind kind, bool exceptions,
                         struct store_buf handle, struct store_buf data,
                         struct store_buf numerator,
                         struct store_buf denominator, struct store_buf a[3],
                         size_t *n)
{
    a[0] = handle;
    a[1] = data;
    *n = 2;
    switch (kind) {
    case STORE_WORK_STATUS:
        a[1] = numerator;
        a[2] = denominator;
        *n = 3;
        return GM_WORK_STATUS;
    case STORE_WORK_DATA:
        return GM_WORK_DATA;
    case STORE_WORK_WARNING:
        return GM_WORK_WARNING;
    case STORE_WORK_COMPLETE:
        return GM_WORK_COMPLETE;
    case STORE_WORK_FAIL:
        *n = 1;
        return GM_WORK_FAIL;
    default:
        if (exceptions) {
            return GM_WORK_EXCEPTION;
        }
        /* A client without the exceptions option gets a WORK_FAIL
         * whose only argument is the handle. gearmand 1.1.20 keeps a
         * NUL after the handle, which no client matches to its job
         * (docs/compat.md, "Decisions"), so we do not copy it. */
        *n = 1;
        return GM_WORK_FAIL;
    }
}

int gm_forward_write(struct evbuffer *out, bool exceptions,
                     const struct store_work *wk)
{
    struct store_buf a[3];
    size_t n;
    uint32_t type = gm_forward_args(wk->kind, exceptions, wk->handle, wk->data,
                                    wk->numerator, wk->denominator, a, &n);

    return gm_packet_write(out, type, a, n) != 0 ? GR_ENOMEM : 0;
}
