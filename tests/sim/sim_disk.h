/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_disk.h - a node's simulated disk, with a volatile cache.
 *
 * Two images: the cache (what the running node reads back: every write
 * applied at once) and the durable image (only what the disk finished).
 * The core's host loop persists one ready batch at a time and reports it
 * with raft_advance only when the write is done, so at most one write is
 * in flight; it completes after a delay chosen by the cluster.  A crash
 * throws the cache away.  With tearing on, a prefix of the in-flight
 * write survives, cut at any point (hard state, snapshot, truncation,
 * entries one by one: raft.h's order), as a write that reached the platter
 * half way would (a real store drops a torn record by its checksum, which
 * is the same as cutting before it).  raft.h used to allow the hard state
 * after the entries; tear_hs_last tears in that order instead (see
 * docs/simulator.md: the core refuses to restart from some of those
 * states).
 *
 * Each entry keeps the chain hash of the log up to it (sim_check.h), so
 * the checker compares logs without walking them.
 *
 * Snapshot files: the node's own snapshot is the image's sim_snap (its
 * bytes are a function of it, sim_snap_encode); a snapshot being received
 * from a leader is a real file of bytes (sim_rxfile), written chunk by
 * chunk as the core hands them out and read back whole when the core says
 * to install it.  It lives beside the two images: a crash keeps what was
 * written, as a half-received file on a real disk would stay, and the
 * host discards it when the next transfer starts at offset 0.
 */
#ifndef GR_SIM_DISK_H
#define GR_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "sim_rng.h"

struct sim_dentry {
    uint64_t index;
    uint64_t term;
    enum raft_entry_type type;
    uint8_t *data; /* owned by the entry */
    size_t len;
    uint64_t chain; /* hash of the log up to and including this entry */
};

/* The simulated state machine is two hashes (sim_check.h); a snapshot
 * carries them, padded to pad bytes so that it travels in several
 * chunks. */
struct sim_snap {
    struct raft_snapshot_meta meta; /* index 0: no snapshot */
    uint64_t chain;                 /* chain hash at meta.index */
    uint64_t state;                 /* state machine hash at meta.index */
    size_t pad;                     /* encoded size in bytes, >= 16 */
};

/* Bytes off .. off + len of snapshot s's file (pad bytes in all): the
 * state and chain hashes (little-endian), then filler derived from the
 * state. */
void sim_snap_encode(const struct sim_snap *s, uint64_t off, size_t len,
                     uint8_t *out);

/* A snapshot file being received. */
struct sim_rxfile {
    struct raft_snapshot_meta meta;
    uint8_t *buf; /* owned */
    size_t len;
    size_t cap;
};

struct sim_image {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    struct sim_snap snap;
    /* The state machine, when the seed makes it durable (it then moves
     * with every apply, as the applied index does in storage/). */
    uint64_t applied;
    uint64_t applied_state;
    uint64_t applied_chain;
    struct raft_conf applied_conf; /* configuration as of applied */
    struct sim_dentry *ents;       /* ents[k].index == first + k */
    uint64_t first;                /* index of ents[0] when n_ents > 0 */
    size_t n_ents;
    size_t cap_ents;
};

/* One ready batch to persist, in raft.h's order. */
struct sim_write {
    bool has_snap;  /* install: replaces the state machine, drops the log */
    bool has_chunk; /* carries a received snapshot chunk (written to the
                       rx file as it is issued) */
    struct sim_snap snap;
    uint64_t truncate_from; /* 0: none */
    struct sim_dentry *ents;
    size_t n_ents;
    bool has_hs;
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};

struct sim_disk {
    struct sim_image cache;
    struct sim_image durable;
    bool pending; /* a write is in flight */
    struct sim_write w;
    uint64_t n_torn;      /* crashes that kept part of a write */
    struct sim_rxfile rx; /* the snapshot being received */
    bool tear_hs_last;    /* tear with the hard state last (the order raft.h
                             used to allow) */
};

void sim_disk_init(struct sim_disk *d);
void sim_disk_close(struct sim_disk *d);

/* Issues w (no other write may be in flight): applies it to the cache now.
 * Takes ownership of w's entries. */
void sim_disk_write(struct sim_disk *d, struct sim_write *w);

/* The write in flight reaches the durable image. */
void sim_disk_complete(struct sim_disk *d);

/* The node crashes: the write in flight is lost, or with tear set, a
 * random prefix of it is kept. */
void sim_disk_crash(struct sim_disk *d, struct sim_rng *rng, bool tear);

/* A local snapshot, written and synced before the core is told
 * (raft_snapshot_done); never while a write is in flight. */
void sim_disk_save_snapshot(struct sim_disk *d, const struct sim_snap *s);

/* Deletes entries below first_keep from both images (after a snapshot). */
void sim_disk_compact(struct sim_disk *d, uint64_t first_keep);

/* Records the applied state in both images (durable state machine). */
void sim_disk_set_applied(struct sim_disk *d, uint64_t applied, uint64_t state,
                          uint64_t chain, const struct raft_conf *conf);

/* Entry at index in image, or NULL if not held. */
struct sim_dentry *sim_image_entry(const struct sim_image *im, uint64_t index);
uint64_t sim_image_last_index(const struct sim_image *im);
/* Chain hash at index (a held entry, or the snapshot's); false if
 * unknown. */
bool sim_image_chain(const struct sim_image *im, uint64_t index,
                     uint64_t *chain);

/* Writes a received chunk into the rx file (offset 0 starts a new one).
 * Returns false if it does not continue the file (a host would refuse). */
bool sim_disk_rx_write(struct sim_disk *d,
                       const struct raft_snapshot_chunk *ch);

/* Frees the entries of a write that will not be issued. */
void sim_write_free(struct sim_write *w);

#endif /* GR_SIM_DISK_H */
