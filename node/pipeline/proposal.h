/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/proposal.h - one command on its way from the request that
 * made it, through the log, back to the session as an answer.
 *
 * Why one struct with a part for each reader: a proposal is allocated
 * once, when its request is read, and freed once, when it is answered;
 * every stage in between keeps its few fields here instead of in a table
 * of its own, so no stage looks anything up or allocates per request.
 * The pipeline reads `next` and `cmd` and writes the effect range, and
 * nothing else; the rest belongs to the Gearman side (node/gearman/),
 * the loop (node/loop.c) and the single-voter fast path (node/alone/),
 * as marked.
 *
 * Not here: the queue and the batches (pipeline.h).
 */
#ifndef GEARRAFT_PIPELINE_PROPOSAL_H
#define GEARRAFT_PIPELINE_PROPOSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

struct evbuffer;

struct gr_proposal {
    /* The pipeline's: the command, and where its effects landed. */
    struct gr_proposal *next;
    struct store_cmd cmd; /* type 0: a local reply only, nothing stored */
    size_t fx_begin;      /* this command's effects in its batch's set */
    size_t fx_end;
    uint64_t index;       /* a member's: the log index it applied at */

    /* The Gearman side's: who gets the answer, and the memory cmd's bufs
     * point into. */
    uint64_t conn_id;       /* the session to answer; 0 = internal */
    uint32_t reply_type;    /* GRAB: GM_GRAB_JOB, _UNIQ or _ALL */
    uint8_t *body;          /* the request's packet body (gr_free) */
    size_t body_len;        /* ... its length, counted against back-pressure */
    void *owned;            /* other memory cmd points into (gr_free) */
    struct evbuffer *local; /* type 0: bytes to send in order */
    bool admin;             /* answer failures as admin text, not ERROR */
    bool answered;          /* its reply left before the commit */
    bool may_reply;         /* counted in its session's n_may_reply */

    /* The loop's. */
    bool retry; /* internal: repropose if the batch fails */
    /* A NODE_GONE for another node is the judgment of a leader in one
     * term: the term it was made in. The member offers it only while it
     * leads in that term (member.c, void_stale_judgment). */
    uint64_t judged_term;

    /* The single-voter fast path's (node/alone/). */
    bool blind;      /* counted in the ledger's n_blind */
    bool restricted; /* a GRAB with min_job: in the ledger's n_restricted */
    bool ahead;      /* SUBMIT: its job is certain (ahead.h) */
    bool unsure;     /* SUBMIT: it is not; in the ledger's n_unsure */
    /* SUBMIT handed out ahead: the worker holding its job, and that
     * worker's WORK_* to send right after its JOB_CREATED. */
    uint64_t handed_to;
    struct evbuffer *after;
    uint64_t relayed_to; /* WORK_*: the client it went to when read */
    bool relay_matched;  /* ... and apply's FORWARD there was skipped */

    /* A cluster member's (node/pipeline/member.c): from its batch until
     * its entry applies, a proposal waits in the pending list. */
    struct gr_proposal *pend_prev;
    struct gr_proposal *pend_next;
    uint8_t *wire;          /* its command, encoded (store_free) */
    size_t wire_len;
    uint64_t proposed_term; /* leading: proposed in this term */
    uint64_t sent_to;       /* following: forwarded to this leader ... */
    uint64_t sent_ms;       /* ... at this time */
    uint64_t resend_wait;   /* ... to send it again after this long */
    /* A stand-in for another node's entry, in the list of a batch's
     * applied entries: its decoded command (store_cmd_free). */
    struct store_cmd *decoded;
    /* Its entry came inside a snapshot this member installed: applied,
     * with effects this node never saw (no effects in its range). */
    bool lost;
};

/* A zeroed proposal, or NULL when out of memory. Caller frees with
 * gr_proposal_free(). */
struct gr_proposal *gr_proposal_new(void);
/* Frees p and what it owns (body, owned, local, after, wire, decoded).
 * NULL is fine. */
void gr_proposal_free(struct gr_proposal *p);

#endif /* GEARRAFT_PIPELINE_PROPOSAL_H */
