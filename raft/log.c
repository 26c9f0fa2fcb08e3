/* SPDX-License-Identifier: BSD-3-Clause
 * raft/log.c - the in-memory window of the Raft log.
 *
 * The core keeps the entries after `offset` in one array, in index order,
 * each with its own copy of the data.  Entries before the window are in
 * the host's log (from `first` on, read back with config.fetch by
 * replication.c) or in a snapshot; offset_term remembers the term at
 * `offset` so that the AppendEntries consistency check (paper 5.3) still
 * works at the edge.  Contiguity makes the ready batch cheap: entries to
 * persist, to apply and to send are slices of this array.
 *
 * The window is bounded (raft__log_trim, after every batch): it keeps
 * what the host has not persisted or not been handed as committed, and a
 * tail of window_entries and window_bytes behind that.  An entry leaves
 * memory only once both are done, so the array is never the only copy of
 * anything the host still needs from the core.
 *
 * Besides the entries, the window tracks what the host has made durable
 * (persisted) and the deletions it still owes (truncate_from).
 *
 * Not here: what the entries mean (membership.c decodes CONF entries).
 */
#include <string.h>

#include "raft/internal.h"

void raft__log_init(struct raft__log *log, raft_index offset,
                    raft_term offset_term)
{
    memset(log, 0, sizeof(*log));
    log->offset = offset;
    log->offset_term = offset_term;
    log->persisted = offset;
    log->first = offset + 1;
}

static size_t entries_free(struct raft_entry *e, size_t n)
{
    size_t bytes = 0;

    for (size_t i = 0; i < n; i++) {
        bytes += e[i].data.len;
        raft__free(e[i].data.base);
        e[i].data.base = NULL;
    }
    return bytes;
}

void raft__log_close(struct raft__log *log)
{
    (void)entries_free(log->entries, log->n);
    raft__free(log->entries);
    log->entries = NULL;
    log->n = 0;
    log->cap = 0;
    log->bytes = 0;
}

raft_index raft__log_last(const struct raft__log *log)
{
    return log->offset + (raft_index)log->n;
}

raft_term raft__log_last_term(const struct raft__log *log)
{
    if (log->n == 0) {
        return log->offset_term;
    }
    return log->entries[log->n - 1].term;
}

/* The term at index if it is known: the offset or an entry in the window. */
bool raft__log_term(const struct raft__log *log, raft_index index,
                    raft_term *term)
{
    if (index == log->offset) {
        *term = log->offset_term;
        return true;
    }
    if (index < log->offset || index > raft__log_last(log)) {
        return false;
    }
    *term = log->entries[index - log->offset - 1].term;
    return true;
}

const struct raft_entry *raft__log_get(const struct raft__log *log,
                                       raft_index index)
{
    if (index <= log->offset || index > raft__log_last(log)) {
        return NULL;
    }
    return &log->entries[index - log->offset - 1];
}

int raft__log_reserve(struct raft__log *log, size_t n_more)
{
    size_t want;
    size_t cap;
    struct raft_entry *e;

    if (n_more > SIZE_MAX / sizeof(*e) - log->n) {
        return RAFT_ENOMEM;
    }
    want = log->n + n_more;
    if (want <= log->cap) {
        return 0;
    }
    cap = log->cap == 0 ? 64 : log->cap;
    while (cap < want) {
        cap = cap > SIZE_MAX / sizeof(*e) / 2 ? want : cap * 2;
    }
    e = raft__realloc(log->entries, cap * sizeof(*e));
    if (e == NULL) {
        return RAFT_ENOMEM;
    }
    log->entries = e;
    log->cap = cap;
    return 0;
}

/* Appends at last + 1, copying data.  Nothing changes on failure. */
int raft__log_append(struct raft__log *log, raft_term term,
                     enum raft_entry_type type, const struct raft_buf *data)
{
    struct raft_entry *e;
    void *copy = NULL;
    int rv;

    RAFT_ASSERT(term >= raft__log_last_term(log));
    rv = raft__log_reserve(log, 1);
    if (rv != 0) {
        return rv;
    }
    if (data != NULL && data->len > 0) {
        copy = raft__malloc(data->len);
        if (copy == NULL) {
            return RAFT_ENOMEM;
        }
        memcpy(copy, data->base, data->len);
    }
    e = &log->entries[log->n];
    e->term = term;
    e->index = raft__log_last(log) + 1;
    e->type = type;
    e->data.base = copy;
    e->data.len = copy == NULL ? 0 : data->len;
    log->n++;
    log->bytes += e->data.len;
    return 0;
}

/* Deletes the entries with index >= from (paper 5.3: "delete the existing
 * entry and all that follow it").  The host is told to delete them too if
 * it had persisted them. */
void raft__log_truncate(struct raft__log *log, raft_index from)
{
    size_t keep;

    RAFT_ASSERT(from > log->offset);
    if (from > raft__log_last(log)) {
        return;
    }
    keep = (size_t)(from - log->offset - 1);
    log->bytes -= entries_free(&log->entries[keep], log->n - keep);
    log->n = keep;
    if (from <= log->persisted) {
        log->persisted = from - 1;
        if (log->truncate_from == 0 || from < log->truncate_from) {
            log->truncate_from = from;
        }
    }
}

/* Gives memory back once the array is mostly empty. */
static void shrink(struct raft__log *log)
{
    size_t cap = log->cap / 2;
    struct raft_entry *e;

    if (log->cap <= 64 || log->n > log->cap / 4) {
        return;
    }
    e = raft__realloc(log->entries, cap * sizeof(*e));
    if (e != NULL) { /* else keep the larger array: nothing is lost */
        log->entries = e;
        log->cap = cap;
    }
}

/* Drops the entries with index <= upto from memory; the host holds them
 * persisted, or a snapshot covers them. */
void raft__log_compact(struct raft__log *log, raft_index upto)
{
    size_t drop;
    raft_term t = 0;

    if (upto <= log->offset) {
        return;
    }
    RAFT_ASSERT(upto <= raft__log_last(log));
    RAFT_ASSERT(raft__log_term(log, upto, &t));
    drop = (size_t)(upto - log->offset);
    log->bytes -= entries_free(log->entries, drop);
    memmove(log->entries, &log->entries[drop],
            (log->n - drop) * sizeof(*log->entries));
    log->n -= drop;
    log->offset = upto;
    log->offset_term = t;
    if (log->persisted < upto) {
        log->persisted = upto;
    }
    shrink(log);
}

/* Bounds the window (THE HOST LOOP, "Memory"): entries the host has both
 * persisted and been handed as committed leave memory, except a tail of
 * at most window_entries entries and window_bytes bytes.  A CONF entry
 * that leaves, above the snapshot, is remembered as the configuration at
 * the window's edge (membership.c). */
void raft__log_trim(struct raft *r)
{
    struct raft__log *log = &r->log;
    raft_index done = log->persisted < r->handed ? log->persisted : r->handed;
    raft_index upto = done;
    size_t n = 0;
    size_t bytes = 0;
    raft_index snap = r->has_snap ? r->snap.meta.index : 0;

    if (done > raft__log_last(log)) {
        done = raft__log_last(log);
        upto = done;
    }
    while (upto > log->offset && n < r->cfg.window_entries) {
        size_t len = raft__log_get(log, upto)->data.len;

        if (len > r->cfg.window_bytes - bytes) {
            break;
        }
        bytes += len;
        n++;
        upto--;
    }
    if (upto <= log->offset) {
        return;
    }
    for (raft_index i = upto; i > log->offset && i > snap; i--) {
        const struct raft_entry *e = raft__log_get(log, i);

        if (e->type == RAFT_ENTRY_CONF &&
            raft_conf_decode(e->data.base, e->data.len, &r->conf_below) == 0) {
            r->conf_below_index = i;
            break;
        }
    }
    raft__log_compact(log, upto);
}

/* Empties the window: everything up to index is now in a snapshot. */
void raft__log_reset(struct raft__log *log, raft_index index, raft_term term)
{
    (void)entries_free(log->entries, log->n);
    log->n = 0;
    log->bytes = 0;
    log->first = index + 1;
    log->offset = index;
    log->offset_term = term;
    log->persisted = index;
    log->truncate_from = 0;
}

/* The largest index <= index whose term is <= term (etcd's
 * findConflictByTerm).  Below the window the answer is unknown; then it is
 * offset - 1 at most, which sends the leader to the snapshot. */
raft_index raft__log_conflict_by_term(const struct raft__log *log,
                                      raft_index index, raft_term term)
{
    raft_index i = index;
    raft_term t;

    if (i > raft__log_last(log)) {
        i = raft__log_last(log);
    }
    for (; i >= log->offset; i--) {
        if (!raft__log_term(log, i, &t)) {
            break;
        }
        if (t <= term) {
            return i;
        }
        if (i == 0) {
            break;
        }
    }
    if (log->offset == 0) {
        return 0;
    }
    return index < log->offset ? index : log->offset - 1;
}

/* Paper 5.4.1: a log is at least as up-to-date as ours if its last term is
 * higher, or equal with an index at least as large. */
bool raft__log_up_to_date(const struct raft__log *log, raft_index last_index,
                          raft_term last_term)
{
    raft_term my_term = raft__log_last_term(log);

    if (last_term != my_term) {
        return last_term > my_term;
    }
    return last_index >= raft__log_last(log);
}
