#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Usage: raft_includes.sh RAFT_SOURCE_DIR
#
# raft/ is a pure library: it may include a few libc headers that do no
# I/O and its own headers, nothing else (no stdio, time, threads, sockets,
# event2, lmdb, ../node, ../storage).
set -eu
DIR=$1
n=$(ls "$DIR"/*.c "$DIR"/*.h 2>/dev/null | wc -l)
if [ "$n" -eq 0 ]; then
    echo "no sources found in $DIR"
    exit 1
fi
bad=$(awk '
    /^[ \t]*#[ \t]*include/ {
        inc = $0
        sub(/^[ \t]*#[ \t]*include[ \t]*/, "", inc)
        if (inc ~ /^<(stdbool|stddef|stdint|string|stdlib|limits)\.h>/) next
        if (inc ~ /^"raft\//) next
        printf "%s:%d: %s\n", FILENAME, FNR, $0
    }' "$DIR"/*.c "$DIR"/*.h)
if [ -n "$bad" ]; then
    echo "raft/ includes headers outside libc and raft/:"
    echo "$bad"
    exit 1
fi
echo "ok: $n files include only libc and raft/"
