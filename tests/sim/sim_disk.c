/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_disk.c - cache image, durable image, and the one write
 * between them.
 */
#include "sim_disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
    fprintf(stderr, "sim: out of memory in the disk model\n");
    abort();
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len == 0 ? 1 : len);

    if (q == NULL) {
        oom();
    }
    if (len > 0) {
        memcpy(q, p, len);
    }
    return q;
}

static void image_truncate(struct sim_image *im, size_t keep)
{
    size_t k;

    for (k = keep; k < im->n_ents; k++) {
        free(im->ents[k].data);
    }
    if (keep < im->n_ents) {
        im->n_ents = keep;
    }
}

static void image_free(struct sim_image *im)
{
    image_truncate(im, 0);
    free(im->ents);
    memset(im, 0, sizeof(*im));
}

static void image_push(struct sim_image *im, const struct sim_dentry *e)
{
    if (im->n_ents == 0) {
        im->first = e->index;
    }
    if (im->n_ents == im->cap_ents) {
        size_t cap = im->cap_ents == 0 ? 64 : im->cap_ents * 2;
        struct sim_dentry *p = realloc(im->ents, cap * sizeof(*p));

        if (p == NULL) {
            oom();
        }
        im->ents = p;
        im->cap_ents = cap;
    }
    im->ents[im->n_ents] = *e;
    im->ents[im->n_ents].data = dup_bytes(e->data, e->len);
    im->n_ents++;
}

/* Drops entries below first_keep. */
static void image_compact(struct sim_image *im, uint64_t first_keep)
{
    size_t drop = 0;
    size_t k;

    while (drop < im->n_ents && im->ents[drop].index < first_keep) {
        drop++;
    }
    for (k = 0; k < drop; k++) {
        free(im->ents[k].data);
    }
    memmove(im->ents, im->ents + drop, (im->n_ents - drop) * sizeof(*im->ents));
    im->n_ents -= drop;
    if (drop > 0) {
        im->first = first_keep;
    }
}

/* Applies the first n_ops steps of w (all of them when n_ops is large),
 * in raft.h's order (THE HOST LOOP, step b): the hard state's term and
 * vote, the snapshot, the truncation, the entries one by one, and last
 * the hard state's commit index, which vouches for the entries below it.
 * With hs_last the whole hard state goes after the entries instead, the
 * order raft.h used to allow.  (Before aimed crashes tore writes often
 * enough, this model stored the snapshot before the hard state, and then
 * the whole hard state before the snapshot: seed 7873 tore a snapshot of
 * term 8 onto a disk whose term was 7, which raft_new refuses, and seed
 * 579 kept a commit index that covered stale entries the lost snapshot
 * would have replaced, which a restarted follower then committed.) */
static void image_apply(struct sim_image *im, const struct sim_write *w,
                        size_t n_ops, bool hs_last)
{
    size_t k;

    if (w->has_hs && !hs_last) {
        if (n_ops == 0) {
            return;
        }
        n_ops--;
        im->term = w->term;
        im->vote = w->vote;
    }
    if (w->has_snap) {
        if (n_ops == 0) {
            return;
        }
        n_ops--;
        image_truncate(im, 0);
        im->snap = w->snap;
        im->applied = w->snap.meta.index;
        im->applied_state = w->snap.state;
        im->applied_chain = w->snap.chain;
        im->applied_conf = w->snap.meta.conf;
    }
    if (w->truncate_from != 0) {
        if (n_ops == 0) {
            return;
        }
        n_ops--;
        if (im->n_ents > 0 && w->truncate_from >= im->first) {
            image_truncate(im, (size_t)(w->truncate_from - im->first));
        } else if (im->n_ents > 0) {
            image_truncate(im, 0);
        }
    }
    for (k = 0; k < w->n_ents; k++) {
        if (n_ops == 0) {
            return;
        }
        n_ops--;
        image_push(im, &w->ents[k]);
    }
    if (w->has_hs) {
        if (n_ops == 0) {
            return;
        }
        im->term = w->term;
        im->vote = w->vote;
        im->commit = w->commit;
    }
}

/* How many steps image_apply takes for w (a crash keeps 0 to all). */
static size_t write_ops(const struct sim_write *w, bool hs_last)
{
    size_t hs = w->has_hs ? (hs_last ? 1 : 2) : 0;

    return (w->has_snap ? 1 : 0) + (w->truncate_from != 0 ? 1 : 0) + w->n_ents +
           hs;
}

static void image_copy(struct sim_image *dst, const struct sim_image *src)
{
    size_t k;

    image_free(dst);
    *dst = *src;
    dst->ents = NULL;
    dst->n_ents = 0;
    dst->cap_ents = 0;
    for (k = 0; k < src->n_ents; k++) {
        image_push(dst, &src->ents[k]);
    }
}

void sim_disk_init(struct sim_disk *d)
{
    memset(d, 0, sizeof(*d));
}

void sim_write_free(struct sim_write *w)
{
    size_t k;

    for (k = 0; k < w->n_ents; k++) {
        free(w->ents[k].data);
    }
    free(w->ents);
    memset(w, 0, sizeof(*w));
}

void sim_disk_close(struct sim_disk *d)
{
    free(d->rx.buf);
    sim_write_free(&d->w);
    image_free(&d->cache);
    image_free(&d->durable);
    memset(d, 0, sizeof(*d));
}

void sim_disk_write(struct sim_disk *d, struct sim_write *w)
{
    if (d->pending) {
        sim_disk_complete(d); /* never happens with a correct caller */
    }
    image_apply(&d->cache, w, SIZE_MAX, false);
    d->w = *w;
    d->pending = true;
    memset(w, 0, sizeof(*w)); /* ownership moved to d->w */
}

void sim_disk_complete(struct sim_disk *d)
{
    if (!d->pending) {
        return;
    }
    image_apply(&d->durable, &d->w, SIZE_MAX, false);
    sim_write_free(&d->w);
    d->pending = false;
}

void sim_disk_crash(struct sim_disk *d, struct sim_rng *rng, bool tear)
{
    if (d->pending && tear) {
        size_t n = write_ops(&d->w, d->tear_hs_last);
        size_t keep = (size_t)sim_rng_range(rng, 0, n);

        image_apply(&d->durable, &d->w, keep, d->tear_hs_last);
        if (keep > 0) {
            d->n_torn++;
        }
    }
    sim_write_free(&d->w);
    d->pending = false;
    image_copy(&d->cache, &d->durable);
}

void sim_disk_save_snapshot(struct sim_disk *d, const struct sim_snap *s)
{
    d->cache.snap = *s;
    d->durable.snap = *s;
}

void sim_disk_compact(struct sim_disk *d, uint64_t first_keep)
{
    image_compact(&d->cache, first_keep);
    image_compact(&d->durable, first_keep);
}

void sim_disk_set_applied(struct sim_disk *d, uint64_t applied, uint64_t state,
                          uint64_t chain, const struct raft_conf *conf)
{
    d->cache.applied_conf = *conf;
    d->durable.applied_conf = *conf;
    d->cache.applied = applied;
    d->cache.applied_state = state;
    d->cache.applied_chain = chain;
    d->durable.applied = applied;
    d->durable.applied_state = state;
    d->durable.applied_chain = chain;
}

struct sim_dentry *sim_image_entry(const struct sim_image *im, uint64_t index)
{
    if (im->n_ents == 0 || index < im->first ||
        index >= im->first + im->n_ents) {
        return NULL;
    }
    return &im->ents[index - im->first];
}

uint64_t sim_image_last_index(const struct sim_image *im)
{
    if (im->n_ents == 0) {
        return im->snap.meta.index;
    }
    return im->first + im->n_ents - 1;
}

bool sim_image_chain(const struct sim_image *im, uint64_t index,
                     uint64_t *chain)
{
    const struct sim_dentry *e;

    if (index == 0) {
        *chain = 0;
        return true;
    }
    e = sim_image_entry(im, index);
    if (e != NULL) {
        *chain = e->chain;
        return true;
    }
    if (index == im->snap.meta.index) {
        *chain = im->snap.chain;
        return true;
    }
    return false;
}

void sim_snap_encode(const struct sim_snap *s, uint64_t off, size_t len,
                     uint8_t *out)
{
    for (size_t k = 0; k < len; k++) {
        uint64_t at = off + k;
        uint64_t v = at < 8 ? s->state : at < 16 ? s->chain : s->state;

        out[k] = (uint8_t)(v >> (8 * (at % 8)));
    }
}

bool sim_disk_rx_write(struct sim_disk *d, const struct raft_snapshot_chunk *ch)
{
    struct sim_rxfile *f = &d->rx;

    if (ch->offset == 0) {
        f->meta = ch->meta;
        f->len = 0;
    }
    if (ch->offset != f->len || ch->meta.index != f->meta.index ||
        ch->meta.term != f->meta.term) {
        return false;
    }
    if (f->len + ch->data.len > f->cap) {
        size_t cap = 2 * (f->len + ch->data.len);
        uint8_t *p = realloc(f->buf, cap);

        if (p == NULL) {
            oom();
        }
        f->buf = p;
        f->cap = cap;
    }
    if (ch->data.len > 0) {
        memcpy(f->buf + f->len, ch->data.base, ch->data.len);
    }
    f->len += ch->data.len;
    return true;
}
