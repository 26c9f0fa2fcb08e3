/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/census.c - see census.h.
 */
#include "node/gearman/census.h"

#include <stdlib.h>
#include <string.h>

#include "node/gearman/conn.h"
#include "node/gearman/hub.h"
#include "node/gr.h"

/* Members whose counts are kept: more than a cluster has. */
#define CENSUS_MEMBERS 64

struct census_fn {
    const uint8_t *name; /* into the member's payload copy, or a session */
    size_t len;
    uint64_t workers;
};

struct census_member {
    uint64_t id;
    uint64_t at_ms;
    bool short_of_space;
    uint8_t *bytes; /* the payload the names point into */
    struct census_fn *fns; /* in name order */
    size_t n;
};

struct gm_census {
    struct census_member m[CENSUS_MEMBERS];
    size_t n;
};

static int name_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

static int fn_cmp(const void *x, const void *y)
{
    const struct census_fn *a = x;
    const struct census_fn *b = y;

    return name_cmp(a->name, a->len, b->name, b->len);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* ---- this node's counts ---- */

int gm_census_encode(struct gm_hub *hub, uint8_t kind, uint8_t **out,
                     size_t *len)
{
    struct census_fn *all = NULL;
    size_t cap = 0;
    size_t n = 0;
    size_t i;
    size_t k;
    size_t used;
    uint32_t count = 0;
    struct gm_session *s;
    uint8_t *p;

    /* Every (session, function) pair, sorted, then counted by name. */
    for (s = hub->sessions; s != NULL; s = s->next) {
        const struct gm_func *f;

        for (f = s->funcs; f != NULL; f = f->next) {
            if (f->len > UINT16_MAX) {
                continue;
            }
            if (GR_ARRAY_RESERVE(all, cap, n + 1) != 0) {
                gr_free(all);
                return GR_ENOMEM;
            }
            all[n].name = f->name;
            all[n].len = f->len;
            all[n].workers = 1;
            n++;
        }
    }
    if (n > 0) {
        qsort(all, n, sizeof(*all), fn_cmp);
    }
    for (i = 0, k = 0; i < n; i++) {
        if (k > 0 && fn_cmp(&all[k - 1], &all[i]) == 0) {
            all[k - 1].workers++;
        } else {
            all[k++] = all[i];
        }
    }
    n = k;
    used = 1 + 1 + 4;
    for (i = 0; i < n && used + 2 + all[i].len + 4 <= GM_CENSUS_MAX_BYTES;
         i++) {
        used += 2 + all[i].len + 4;
    }
    n = i;
    p = gr_malloc(used);
    if (p == NULL) {
        gr_free(all);
        return GR_ENOMEM;
    }
    *out = p;
    *len = used;
    *p++ = kind;
    *p++ = hub->space.ok ? 0 : 1;
    put32(p, (uint32_t)n);
    p += 4;
    for (i = 0; i < n; i++) {
        put16(p, (uint16_t)all[i].len);
        memcpy(p + 2, all[i].name, all[i].len);
        count = all[i].workers > UINT32_MAX ? UINT32_MAX
                                            : (uint32_t)all[i].workers;
        put32(p + 2 + all[i].len, count);
        p += 2 + all[i].len + 4;
    }
    gr_free(all);
    return 0;
}

/* ---- the other members' ---- */

static struct census_member *member_of(struct gm_census *c, uint64_t id)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (c->m[i].id == id) {
            return &c->m[i];
        }
    }
    return NULL;
}

static void member_clear(struct census_member *m)
{
    m->short_of_space = false;
    m->at_ms = 0;
    gr_free(m->bytes);
    gr_free(m->fns);
    m->bytes = NULL;
    m->fns = NULL;
    m->n = 0;
}

/* Parses p into fns (names pointing into p). GR_EINVAL if malformed. */
static int parse(const uint8_t *p, size_t len, struct census_fn **out,
                 size_t *n_out)
{
    struct census_fn *fns;
    uint32_t n;
    size_t off = 4;
    size_t i;

    if (len < 4) {
        return GR_EINVAL;
    }
    n = get32(p);
    if (n > len / 6) { /* each takes at least 6 bytes */
        return GR_EINVAL;
    }
    fns = gr_calloc(n > 0 ? n : 1, sizeof(*fns));
    if (fns == NULL) {
        return GR_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        size_t nl;

        if (len - off < 2) {
            break;
        }
        nl = (size_t)p[off] << 8 | p[off + 1];
        if (len - off - 2 < nl + 4) {
            break;
        }
        fns[i].name = p + off + 2;
        fns[i].len = nl;
        fns[i].workers = get32(p + off + 2 + nl);
        off += 2 + nl + 4;
        if (i > 0 && fn_cmp(&fns[i - 1], &fns[i]) >= 0) {
            break; /* not in name order: not ours */
        }
    }
    if (i < n || off != len) {
        gr_free(fns);
        return GR_EINVAL;
    }
    *out = fns;
    *n_out = n;
    return 0;
}

int gm_census_receive(struct gm_hub *hub, uint64_t from, const uint8_t *p,
                      size_t len, uint64_t now_ms)
{
    struct gm_census *c = hub->census;
    struct census_member *m;
    struct census_fn *fns = NULL;
    uint8_t *copy;
    size_t n = 0;
    int rv;

    if (c == NULL) {
        c = gr_calloc(1, sizeof(*c));
        if (c == NULL) {
            return GR_ENOMEM;
        }
        hub->census = c;
    }
    m = member_of(c, from);
    if (m == NULL) {
        if (c->n == CENSUS_MEMBERS) {
            return GR_EINVAL; /* more peers than a cluster has */
        }
        m = &c->m[c->n++];
        memset(m, 0, sizeof(*m));
        m->id = from;
    }
    member_clear(m);
    if (len < 1 || (p[0] & ~1u) != 0) {
        return GR_EINVAL; /* no flags byte, or flags this node cannot read */
    }
    copy = gr_malloc(len);
    if (copy == NULL) {
        return GR_ENOMEM;
    }
    memcpy(copy, p + 1, len - 1);
    rv = parse(copy, len - 1, &fns, &n);
    if (rv != 0) {
        gr_free(copy);
        return rv;
    }
    m->bytes = copy;
    m->fns = fns;
    m->n = n;
    m->at_ms = now_ms;
    m->short_of_space = (p[0] & 1) != 0;
    return 0;
}

void gm_census_forget(struct gm_hub *hub, uint64_t from)
{
    struct census_member *m =
        hub->census != NULL ? member_of(hub->census, from) : NULL;

    if (m != NULL) {
        member_clear(m);
    }
}

uint64_t gm_census_workers(const struct gm_hub *hub, const uint8_t *name,
                           size_t len, uint64_t now_ms)
{
    const struct gm_census *c = hub->census;
    struct census_fn key = {name, len, 0};
    uint64_t sum = 0;
    size_t i;

    for (i = 0; c != NULL && i < c->n; i++) {
        const struct census_member *m = &c->m[i];
        const struct census_fn *f;

        if (m->n == 0 || m->at_ms == 0 ||
            now_ms - m->at_ms > GM_CENSUS_FRESH_MS) {
            continue;
        }
        f = bsearch(&key, m->fns, m->n, sizeof(*m->fns), fn_cmp);
        if (f != NULL) {
            sum += f->workers;
        }
    }
    return sum;
}

bool gm_census_any_short(const struct gm_hub *hub, uint64_t now_ms)
{
    const struct gm_census *c = hub->census;
    size_t i;

    for (i = 0; c != NULL && i < c->n; i++) {
        const struct census_member *m = &c->m[i];

        if (m->short_of_space && m->at_ms != 0 &&
            now_ms - m->at_ms <= GM_CENSUS_FRESH_MS) {
            return true;
        }
    }
    return false;
}

void gm_census_free(struct gm_hub *hub)
{
    struct gm_census *c = hub->census;
    size_t i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < c->n; i++) {
        member_clear(&c->m[i]);
    }
    gr_free(c);
    hub->census = NULL;
}
