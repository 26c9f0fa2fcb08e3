/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/codec.h - the Gearman wire format: binary packets and text
 * admin lines (docs/protocol.md, "Framing", "Packets" and "Admin lines").
 *
 * Why it is shaped this way: the parser reads from a libevent input buffer
 * that may hold any prefix of the byte stream. It looks at the 12-byte
 * header in place, waits until the whole packet is buffered, and then
 * moves the body out with one evbuffer_remove(): a payload is copied once,
 * into memory the packet owns, and never again on its way to storage.
 *
 * Wire format checklist: the packet numbers and argument counts below are
 * gearmand 1.1's and never change; adding a type means adding a row to the
 * table in codec.c and a case to the unit test's every-type list.
 *
 * Not here: what a packet means (request.c), admin commands (admin.c).
 */
#ifndef GEARRAFT_GM_CODEC_H
#define GEARRAFT_GM_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/gr.h"
#include "storage/store.h"

struct evbuffer;

/* Packet numbers on the wire (docs/protocol.md, "Packets"). */
enum gm_cmd {
    GM_TEXT = 0, /* gearmand's internal type; never valid on the wire */
    GM_CAN_DO = 1,
    GM_CANT_DO = 2,
    GM_RESET_ABILITIES = 3,
    GM_PRE_SLEEP = 4,
    GM_UNUSED_5 = 5,
    GM_NOOP = 6,
    GM_SUBMIT_JOB = 7,
    GM_JOB_CREATED = 8,
    GM_GRAB_JOB = 9,
    GM_NO_JOB = 10,
    GM_JOB_ASSIGN = 11,
    GM_WORK_STATUS = 12,
    GM_WORK_COMPLETE = 13,
    GM_WORK_FAIL = 14,
    GM_GET_STATUS = 15,
    GM_ECHO_REQ = 16,
    GM_ECHO_RES = 17,
    GM_SUBMIT_JOB_BG = 18,
    GM_ERROR = 19,
    GM_STATUS_RES = 20,
    GM_SUBMIT_JOB_HIGH = 21,
    GM_SET_CLIENT_ID = 22,
    GM_CAN_DO_TIMEOUT = 23,
    GM_ALL_YOURS = 24,
    GM_WORK_EXCEPTION = 25,
    GM_OPTION_REQ = 26,
    GM_OPTION_RES = 27,
    GM_WORK_DATA = 28,
    GM_WORK_WARNING = 29,
    GM_GRAB_JOB_UNIQ = 30,
    GM_JOB_ASSIGN_UNIQ = 31,
    GM_SUBMIT_JOB_HIGH_BG = 32,
    GM_SUBMIT_JOB_LOW = 33,
    GM_SUBMIT_JOB_LOW_BG = 34,
    GM_SUBMIT_JOB_SCHED = 35,
    GM_SUBMIT_JOB_EPOCH = 36,
    GM_SUBMIT_REDUCE_JOB = 37,
    GM_SUBMIT_REDUCE_JOB_BACKGROUND = 38,
    GM_GRAB_JOB_ALL = 39,
    GM_JOB_ASSIGN_ALL = 40,
    GM_GET_STATUS_UNIQUE = 41,
    GM_STATUS_RES_UNIQUE = 42,
    GM_CMD_COUNT = 43, /* number of packet types, not a type */
};

#define GM_HEADER_LEN 12
#define GM_MAX_ARGS   8 /* SUBMIT_JOB_SCHED has the most: 8 */

/* What the server does with a packet type that arrives with \0REQ. */
enum gm_cmd_role {
    GM_ROLE_REQUEST = 1,       /* a request gearmand 1.1 implements */
    GM_ROLE_UNIMPLEMENTED = 2, /* a request gearmand 1.1 rejects */
    GM_ROLE_RESPONSE = 3,      /* server-to-peer only */
};

struct gm_cmd_info {
    const char *name; /* "SUBMIT_JOB" */
    uint8_t n_args;   /* fixed argument count; the last is opaque */
    enum gm_cmd_role role;
};

/* The table row for a type, or NULL for 0 and types >= GM_CMD_COUNT. */
const struct gm_cmd_info *gm_cmd_info(uint32_t type);

/* One parsed binary packet. `body` is owned by the packet (gm_packet_close
 * frees it); args point into body and are never NUL-terminated. */
struct gm_packet {
    bool is_request; /* magic was \0REQ (else \0RES) */
    uint32_t type;
    uint8_t *body; /* owned; NULL when len == 0 */
    size_t len;
    size_t n_args; /* as the type requires, or fewer if malformed */
    bool args_ok;  /* body held the NULs the type requires */
    struct store_buf args[GM_MAX_ARGS];
};

void gm_packet_close(struct gm_packet *p);
/* Moves the body out of p: the caller owns it (frees it with gr_free())
 * and p's arguments, which point into it, stay valid as long as it does;
 * gm_packet_close no longer frees it. */
void gm_packet_take_body(struct gm_packet *p, uint8_t **body, size_t *len);

/* What gm_frame_parse found at the head of the stream. */
enum gm_frame_kind {
    GM_FRAME_PACKET = 1,
    GM_FRAME_ADMIN = 2,
};

struct gm_frame {
    enum gm_frame_kind kind;
    struct gm_packet packet; /* GM_FRAME_PACKET */
    char *line;              /* GM_FRAME_ADMIN: owned, NUL-terminated,
                                without the line ending */
    size_t line_len;
};

/* Frees what a frame owns and zeroes it. */
void gm_frame_close(struct gm_frame *f);

#define GM_ADMIN_LINE_MAX 8192

/* Takes one whole frame off the head of `in`, if one is buffered.
 * Returns 0 and fills *out (caller frees with gm_frame_close()); the
 * frame's bytes are removed from `in`.
 * GR_EAGAIN: no whole frame yet; nothing was consumed.
 * GR_EPROTO: bad magic, or type 0 or >= 43, or an admin line longer than
 *   GM_ADMIN_LINE_MAX: the caller closes the connection without a reply
 *   (gearmand does the same).
 * GR_ETOOBIG: the header announces a body over max_body; the header has
 *   been consumed, *type_out is set; the caller sends ERROR and closes.
 * GR_ENOMEM: nothing consumed.
 * Any split of the byte stream gives the same frames. */
int gm_frame_parse(struct evbuffer *in, size_t max_body, struct gm_frame *out,
                   uint32_t *type_out);

/* A large packet body read straight from the socket into memory of its
 * own, instead of through `in` and one more copy. */
struct gm_big_body {
    bool request;
    uint32_t type;
    uint8_t *body; /* owned; NULL when none is being read */
    size_t len;    /* the whole body */
    size_t have;   /* bytes of it read so far */
};

/* Only after gm_frame_parse returned GR_EAGAIN (so the header, if
 * whole, is valid and within max_body): when `in` holds a binary header
 * whose body of min_body bytes or more is not all buffered, takes the
 * header and the buffered part of the body off `in` into big. The caller
 * reads the rest into big->body + big->have, then calls gm_frame_of_big.
 * GR_EAGAIN: not such a frame, nothing consumed. GR_ENOMEM, GR_EIO. */
int gm_frame_take_big(struct evbuffer *in, size_t min_body,
                      struct gm_big_body *big);
/* The frame of a body read whole (it takes the body; big is zeroed). */
void gm_frame_of_big(struct gm_big_body *big, struct gm_frame *out);

/* Splits body into the type's arguments (used by gm_frame_parse; exported
 * for tests). Sets n_args and args_ok. */
void gm_packet_split(struct gm_packet *p);

/* Appends one \0RES packet of `type` with n arguments joined by NUL bytes
 * (the last one unterminated). Errors: GR_ENOMEM, GR_ETOOBIG (the body
 * would exceed 4 GiB - 1). */
int gm_packet_write(struct evbuffer *out, uint32_t type,
                    const struct store_buf *args, size_t n);

/* The same with the magic chosen: true for \0REQ (tests and clients). */
int gm_packet_write_magic(struct evbuffer *out, bool request, uint32_t type,
                          const struct store_buf *args, size_t n);

/* Called once the bytes of a by-reference argument are no longer needed
 * (libevent's evbuffer_ref_cleanup_cb). */
typedef void (*gm_ref_release_fn)(const void *data, size_t len, void *extra);

/* gm_packet_write with the last argument sent from its own memory, not
 * copied: release(base, len, extra) is called exactly once, when the
 * packet has been sent or dropped (at once when the last argument is
 * empty). For payloads of many megabytes. Errors: as gm_packet_write;
 * after GR_ENOMEM the buffer may hold part of a packet (close the
 * connection). */
int gm_packet_write_ref(struct evbuffer *out, uint32_t type,
                        const struct store_buf *args, size_t n,
                        gm_ref_release_fn release, void *extra);

/* Appends ERROR (code, text) - both NUL-terminated C strings. */
int gm_error_write(struct evbuffer *out, const char *code, const char *text);

/* A buf over a C string (borrowed). */
struct store_buf gm_str(const char *s);

/* The answer to a GRAB_JOB of grab_type that found a job with a reducer
 * of reducer_len bytes: JOB_ASSIGN, _UNIQ, or _ALL - which gearmand
 * sends only for a job with a reducer. */
uint32_t gm_assign_type(uint32_t grab_type, size_t reducer_len);
/* The arguments of a JOB_ASSIGN* of this type for job v, borrowed from
 * v; returns their count. */
size_t gm_assign_args(uint32_t type, const struct store_job_view *v,
                      struct store_buf a[5]);
/* The packet that forwards a worker's WORK_* of `kind` to a client (with
 * or without the exceptions option): its type, and its arguments in a
 * (*n of them, borrowed from the bufs given). */
uint32_t gm_forward_args(enum store_work_kind kind, bool exceptions,
                         struct store_buf handle, struct store_buf data,
                         struct store_buf numerator,
                         struct store_buf denominator, struct store_buf a[3],
                         size_t *n);
/* Writes to out the packet that forwards the WORK_* wk to a client, as
 * apply's FORWARD would. Returns 0 or GR_ENOMEM. */
int gm_forward_write(struct evbuffer *out, bool exceptions,
                     const struct store_work *wk);

#endif /* GEARRAFT_GM_CODEC_H */
