/* SPDX-License-Identifier: BSD-3-Clause
 * node/ops/metrics.c - see metrics.h.
 *
 * Names: every metric starts with gearraft_; counters end in _total,
 * durations are in seconds (the text format's convention), and a label
 * value escapes backslash, double quote and newline. Queue figures are
 * the replicated state as this node has applied it; workers and
 * connections are this node's own.
 */
#include "node/ops/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "node/cluster/host.h"
#include "node/cluster/members.h"
#include "node/cluster/peer.h"
#include "node/config.h"
#include "node/gearman/admin.h"
#include "node/gearman/hub.h"
#include "node/histo.h"
#include "node/pipeline/pipeline.h"
#include "raft/raft.h"
#include "storage/store.h"

struct fmt {
    struct evbuffer *out;
    int rv;
};

static void addf(struct fmt *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void addf(struct fmt *f, const char *fmt, ...)
{
    va_list ap;

    if (f->rv != 0) {
        return;
    }
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(f->out, fmt, ap) < 0) {
        f->rv = GR_ENOMEM;
    }
    va_end(ap);
}

/* A label value: the bytes as they are, but \ " and newline escaped. */
static void add_label(struct fmt *f, const uint8_t *v, size_t len)
{
    size_t i;
    size_t from = 0;

    for (i = 0; i < len && f->rv == 0; i++) {
        const char *esc = v[i] == '\\'   ? "\\\\"
                          : v[i] == '"'  ? "\\\""
                          : v[i] == '\n' ? "\\n"
                                         : NULL;

        if (esc == NULL) {
            continue;
        }
        if (evbuffer_add(f->out, v + from, i - from) != 0 ||
            evbuffer_add(f->out, esc, strlen(esc)) != 0) {
            f->rv = GR_ENOMEM;
        }
        from = i + 1;
    }
    if (f->rv == 0 && evbuffer_add(f->out, v + from, len - from) != 0) {
        f->rv = GR_ENOMEM;
    }
}

static void head(struct fmt *f, const char *name, const char *type,
                 const char *help)
{
    addf(f, "# HELP gearraft_%s %s\n# TYPE gearraft_%s %s\n", name, help, name,
         type);
}

static void one(struct fmt *f, const char *name, const char *type,
                const char *help, uint64_t v)
{
    head(f, name, type, help);
    addf(f, "gearraft_%s %llu\n", name, (unsigned long long)v);
}

static void histogram(struct fmt *f, const char *name, const char *help,
                      const struct gr_histo *h)
{
    uint64_t cum = 0;
    size_t i;

    head(f, name, "histogram", help);
    for (i = 0; i < GR_HISTO_BOUNDS; i++) {
        char le[32];
        size_t n;

        /* Seconds in plain decimals: 0.00005, 0.1, 2. */
        n = (size_t)snprintf(le, sizeof(le), "%llu.%06llu",
                             (unsigned long long)(gr_histo_bound_us[i] / 1000000),
                             (unsigned long long)(gr_histo_bound_us[i] % 1000000));
        while (n > 0 && le[n - 1] == '0') {
            le[--n] = '\0';
        }
        if (n > 0 && le[n - 1] == '.') {
            le[--n] = '\0';
        }
        cum += h->bucket[i];
        addf(f, "gearraft_%s_bucket{le=\"%s\"} %llu\n", name, le,
             (unsigned long long)cum);
    }
    addf(f, "gearraft_%s_bucket{le=\"+Inf\"} %llu\n", name,
         (unsigned long long)h->n);
    addf(f, "gearraft_%s_sum %.6f\n", name, (double)h->sum_us / 1e6);
    addf(f, "gearraft_%s_count %llu\n", name, (unsigned long long)h->n);
}

/* ---- the queue, per function ---- */

struct funcs_ctx {
    struct fmt *f;
    struct gm_hub *gm;
    int pass; /* 0 queued, 1 running, 2 workers */
};

static const char *const prio_word[STORE_PRIO_COUNT] = {"high", "normal",
                                                        "low"};

static int func_cb(void *arg, const struct store_func_info *fi)
{
    struct funcs_ctx *c = arg;
    struct fmt *f = c->f;
    int p;

    switch (c->pass) {
    case 0:
        for (p = 0; p < STORE_PRIO_COUNT; p++) {
            addf(f, "gearraft_jobs_queued{function=\"");
            add_label(f, fi->name.base, fi->name.len);
            addf(f, "\",priority=\"%s\"} %llu\n", prio_word[p],
                 (unsigned long long)fi->queued[p]);
        }
        break;
    case 1:
        addf(f, "gearraft_jobs_running{function=\"");
        add_label(f, fi->name.base, fi->name.len);
        addf(f, "\"} %llu\n", (unsigned long long)fi->running);
        break;
    default:
        addf(f, "gearraft_workers{function=\"");
        add_label(f, fi->name.base, fi->name.len);
        addf(f, "\"} %llu\n",
             (unsigned long long)admin_workers_for(c->gm, fi->name.base,
                                                   fi->name.len));
        break;
    }
    return f->rv;
}

static int queue_metrics(const struct ops_sources *src, struct fmt *f)
{
    static const char *const name[3] = {"jobs_queued", "jobs_running",
                                        "workers"};
    static const char *const help[3] = {
        "Jobs waiting in the queue, by function and priority.",
        "Jobs handed to a worker and not yet finished, by function.",
        "Workers connected to this node that can do the function."};
    struct funcs_ctx c = {f, src->gm, 0};
    struct store_txn *txn;
    int rv;

    /* Each metric's samples together, as the format wants: one walk of
     * the functions per metric, all in one read transaction. */
    if (store_txn_begin(src->store, false, &txn) != 0) {
        return GR_ESTORE;
    }
    for (rv = 0, c.pass = 0; c.pass < 3 && rv == 0 && f->rv == 0; c.pass++) {
        head(f, name[c.pass], "gauge", help[c.pass]);
        rv = store_funcs_walk(txn, func_cb, &c);
    }
    store_txn_abort(txn);
    if (f->rv != 0) {
        return f->rv;
    }
    return rv != 0 ? GR_ESTORE : 0;
}

/* ---- Raft and the peers ---- */

static void member_label(const struct gr_cluster_config *k, uint64_t id,
                         struct fmt *f)
{
    const struct store_member *m =
        gr_members_find(k->members, k->n_members, id);

    if (m != NULL) {
        add_label(f, (const uint8_t *)m->name, strlen(m->name));
    } else {
        addf(f, "#%llu", (unsigned long long)id);
    }
}

static void raft_metrics(const struct ops_sources *src, struct fmt *f)
{
    static const int roles[] = {RAFT_FOLLOWER, RAFT_PRE_CANDIDATE,
                                RAFT_CANDIDATE, RAFT_LEADER};
    static const char *const role_label[] = {"follower", "pre_candidate",
                                             "candidate", "leader"};
    const struct gr_raft_view *v = &src->pipe->view;
    size_t i;

    head(f, "raft_role", "gauge",
         "1 for this node's Raft role, 0 for the others.");
    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        addf(f, "gearraft_raft_role{role=\"%s\"} %d\n", role_label[i],
             v->role == roles[i]);
    }
    one(f, "raft_leader_known", "gauge",
        "1 while this node knows a leader.", v->leader_id != 0);
    one(f, "raft_term", "gauge", "The current Raft term.", v->term);
    one(f, "raft_commit_index", "gauge",
        "The highest log index known committed.", v->commit);
    one(f, "raft_applied_index", "gauge",
        "The highest log index applied to the queue here.", v->applied);
    one(f, "raft_last_index", "gauge", "The last index in this node's log.",
        v->last_index);
    one(f, "raft_leader_changes_total", "counter",
        "Times this node learned of a leader in a new term, or of a new "
        "leader.",
        src->counters->leader_changes);
    one(f, "raft_keepalive_rounds_total", "counter",
        "Heartbeat intervals in which this node told its peers it is alive "
        "because its turn in flight ran long (a large write).",
        src->counters->keepalives);
    one(f, "raft_forward_copies_dropped_total", "counter",
        "Commands a follower forwarded again (no commit within its resend "
        "time) that this node, leading, had appended in its term already "
        "and dropped.",
        v->fwd_dropped);
    one(f, "raft_forwards_total", "counter",
        "Commands of this node's clients and workers it forwarded to the "
        "leader (not leading), copies sent again included.",
        v->fwd_sent);
    one(f, "raft_forward_resends_total", "counter",
        "Of those, copies sent again: the leader changed, or did not "
        "commit the command within the resend time.",
        v->fwd_resent);
    one(f, "raft_commands_overtaken_total", "counter",
        "This node's commands that committed ahead of an earlier one of "
        "its own still pending, so that apply left them undone and the "
        "node offered both again, in order.",
        v->overtaken);
    one(f, "raft_log_resends_total", "counter",
        "Times this node, leading, went back to send a follower its log "
        "again from where they last agreed (an append lost, or judged lost "
        "after two heartbeat intervals without progress).",
        v->resends);
    if (src->cluster == NULL || !src->cluster->member) {
        return;
    }
    head(f, "peer_match_index", "gauge",
         "The leader's last index known stored on the peer (0 unless "
         "this node leads).");
    for (i = 0; i < v->n_members && i < RAFT_MAX_MEMBERS; i++) {
        if (v->members[i].id == src->cluster->self_id) {
            continue;
        }
        addf(f, "gearraft_peer_match_index{peer=\"");
        member_label(src->cluster, v->members[i].id, f);
        addf(f, "\"} %llu\n", (unsigned long long)v->members[i].match);
    }
    head(f, "peer_lag_entries", "gauge",
         "Entries of the leader's log the peer has not stored (this node "
         "leading).");
    for (i = 0; v->role == RAFT_LEADER && i < v->n_members &&
                i < RAFT_MAX_MEMBERS;
         i++) {
        if (v->members[i].id == src->cluster->self_id) {
            continue;
        }
        addf(f, "gearraft_peer_lag_entries{peer=\"");
        member_label(src->cluster, v->members[i].id, f);
        addf(f, "\"} %llu\n",
             (unsigned long long)(v->last_index > v->members[i].match
                                      ? v->last_index - v->members[i].match
                                      : 0));
    }
}

struct peer_ctx {
    const struct ops_sources *src;
    struct fmt *f;
    int pass;
};

static int peer_cb(void *arg, const struct peer_stats *st)
{
    struct peer_ctx *c = arg;
    struct fmt *f = c->f;

    addf(f, "gearraft_peer_%s{peer=\"",
         c->pass == 0   ? "up"
         : c->pass == 1 ? "sent_bytes_total"
         : c->pass == 2 ? "received_bytes_total"
                        : "dropped_frames_total");
    member_label(c->src->cluster, st->id, f);
    addf(f, "\"} %llu\n",
         (unsigned long long)(c->pass == 0   ? (st->out_up && st->in_up)
                              : c->pass == 1 ? st->bytes_sent
                              : c->pass == 2 ? st->bytes_recv
                                             : st->frames_dropped));
    return f->rv;
}

static void peer_metrics(const struct ops_sources *src, struct fmt *f)
{
    static const char *const name[4] = {"peer_up", "peer_sent_bytes_total",
                                        "peer_received_bytes_total",
                                        "peer_dropped_frames_total"};
    static const char *const type[4] = {"gauge", "counter", "counter",
                                        "counter"};
    static const char *const help[4] = {
        "1 while both links with the peer are up.",
        "Payload bytes queued to the peer.",
        "Payload bytes received from the peer.",
        "Frames not sent to the peer: its link down or its queue full."};
    struct peer_ctx c = {src, f, 0};

    if (src->peers == NULL || src->cluster == NULL) {
        return;
    }
    for (c.pass = 0; c.pass < 4 && f->rv == 0; c.pass++) {
        head(f, name[c.pass], type[c.pass], help[c.pass]);
        (void)peer_stats_walk(src->peers, peer_cb, &c);
    }
}

int ops_metrics_format(const struct ops_sources *src, struct evbuffer *out)
{
    struct fmt f = {out, 0};
    struct gr_pipeline_stats ps;
    const struct gr_cluster_config *k = src->cluster;
    const char *self = k != NULL && k->self_name[0] != '\0' ? k->self_name
                                                            : "local";
    int rv;

    head(&f, "info", "gauge", "This node's name and version.");
    addf(&f, "gearraft_info{node=\"");
    add_label(&f, (const uint8_t *)self, strlen(self));
    addf(&f, "\",version=\"%s\"} 1\n", GR_VERSION);
    one(&f, "incarnation", "gauge",
        "This node's incarnation (new at each start, and when declared "
        "gone).",
        store_incarnation(src->store));
    one(&f, "connections", "gauge", "Gearman connections open on this node.",
        src->gm->n_sessions);
    rv = queue_metrics(src, &f);
    one(&f, "submits_applied_total", "counter",
        "SUBMIT_JOB commands applied here (from every node).",
        src->counters->submits);
    one(&f, "completions_applied_total", "counter",
        "WORK_COMPLETE, WORK_FAIL and WORK_EXCEPTION applied here.",
        src->counters->completions);
    one(&f, "node_gone_applied_total", "counter",
        "NODE_GONE commands applied here: a node's workers' jobs requeued.",
        src->counters->node_gone);
    raft_metrics(src, &f);
    peer_metrics(src, &f);
    gr_pipeline_stats(src->pipe, &ps);
    one(&f, "batches_total", "counter",
        "Write batches (Raft turns on a cluster member).", ps.n_batches);
    histogram(&f, "commit_seconds",
              "Time to write and commit one batch (a member: one Raft turn, "
              "its sync included).",
              &ps.commit_lat);
    histogram(&f, "fsync_seconds", "Time of one sync of the data file.",
              &ps.sync_lat);
    if (f.rv != 0) {
        return f.rv;
    }
    return rv;
}

bool ops_healthy(const struct ops_sources *src, const char **why)
{
    if (*src->stopping) {
        *why = "stopping";
        return false;
    }
    if (src->cluster != NULL && src->cluster->member &&
        src->pipe->view.leader_id == 0) {
        *why = "no leader known";
        return false;
    }
    *why = "ok";
    return true;
}
