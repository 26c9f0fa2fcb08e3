/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/snap.h - a member's snapshot files: taking them, serving
 * their chunks, receiving and installing one.
 *
 * Why files: raft/ holds no snapshot bytes (raft/raft.h, "Memory"). A
 * snapshot is the queue tables as of one applied index, dumped by
 * store_snap_write from one read transaction - on a thread of its own, so
 * that a large queue does not hold up the Raft turns (LMDB's MVCC keeps
 * the dump consistent while batches commit). The finished file is kept
 * as snap-<index>-<term> in the snapshot directory, synced, and only then
 * handed to raft/ and recorded in the store; older files go. A snapshot
 * being received is written chunk by chunk to recv.partial, synced before
 * each chunk is acknowledged, and installed with store_snap_read when the
 * last one arrives; it then becomes this node's latest file.
 *
 * Not here: when to take one or what raft/ asks (node/cluster/turn.c).
 */
#ifndef GEARRAFT_CLUSTER_SNAP_H
#define GEARRAFT_CLUSTER_SNAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

struct gr_snaps {
    char dir[1024];
    struct store *store;
    /* The dump thread. */
    pthread_mutex_t lock;
    bool lock_init;
    pthread_t thread;
    bool started; /* a dump not yet collected */
    bool joined;  /* ... whose thread was joined already */
    bool done;    /* under lock: it finished */
    int rv;       /* under lock: its store code */
    uint64_t index; /* under lock: the applied index it covers */
    uint64_t len;   /* under lock: its size */
    /* Receiving. */
    int rx_fd; /* recv.partial, or -1 */
    char errmsg[256];
};

/* Sets s up over dir (created if missing; stray temporary files go).
 * Errors: GR_EIO (errmsg). */
int gr_snaps_init(struct gr_snaps *s, const char *dir, struct store *store);
/* Waits for a dump in progress and closes what is open. */
void gr_snaps_close(struct gr_snaps *s);

/* The size of snapshot (index, term)'s file, or -1 if there is none. */
int64_t gr_snaps_size(const struct gr_snaps *s, uint64_t index, uint64_t term);
/* Reads len bytes at offset of snapshot (index, term)'s file into buf.
 * Errors: GR_EIO (no such file, or it is shorter). */
int gr_snaps_read(const struct gr_snaps *s, uint64_t index, uint64_t term,
                  uint64_t offset, void *buf, size_t len);

/* Starts dumping the queue tables on a thread of its own (nothing if one
 * runs). Errors: GR_ENOMEM (no thread). */
int gr_snaps_dump_start(struct gr_snaps *s);
/* True once a dump finished (then it is joined): *index and *len
 * describe the temporary file, or *rv says why it failed (STORE_E*). */
bool gr_snaps_dump_done(struct gr_snaps *s, uint64_t *index, uint64_t *len,
                        int *rv);
/* Blocks until a dump in progress has finished (its result is still
 * collected by gr_snaps_dump_done). For tests and close. */
void gr_snaps_dump_wait(struct gr_snaps *s);
/* True while a dump runs. */
bool gr_snaps_dumping(const struct gr_snaps *s);
/* Keeps the finished dump as snapshot (index, term): renamed, the
 * directory synced, older snapshot files removed. Errors: GR_EIO. */
int gr_snaps_keep_dump(struct gr_snaps *s, uint64_t index, uint64_t term);

/* Writes a received chunk at offset (0 starts the file anew) and syncs
 * it. Errors: GR_EIO. */
int gr_snaps_rx_write(struct gr_snaps *s, uint64_t offset, const void *data,
                      size_t len);
/* Replaces the queue tables in txn with the received snapshot; *index gets
 * the applied index it covers. Errors: STORE_E* (abort txn). */
int gr_snaps_rx_install(struct gr_snaps *s, struct store_txn *txn,
                        uint64_t *index);
/* After the transaction that installed it committed: the received file
 * becomes snapshot (index, term). Errors: GR_EIO. */
int gr_snaps_rx_keep(struct gr_snaps *s, uint64_t index, uint64_t term);

#endif /* GEARRAFT_CLUSTER_SNAP_H */
