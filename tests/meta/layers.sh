#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Usage: layers.sh SRC
#
# The include arrows of the code point one way (docs/DESIGN.md, "Modules
# and which way they call"). This fails, naming each offending line, if
#   - raft/ includes anything of ours but raft/;
#   - storage/ includes node/ (or libevent, which only node/ uses);
#   - a unit of node/ includes a unit above it or beside it. The units,
#     from the bottom:
#        base      node/*.[ch] but loop and main (gr.h, config, log, ...)
#        cluster   node/cluster/ (the Raft host, peers)
#        pipeline  node/pipeline/ (drives the host from its thread)
#        alone     node/alone/
#        gearman   node/gearman/
#        loop      node/loop.[ch]
#        main      node/main.c
#     A file may include its own unit and the units of a lower rank.
#     node/cluster/members.[ch] ranks with base: pure code the flags
#     (config.c) parse with, kept beside the cluster it describes.
# Only quoted includes name our files; the generated protobuf-c headers
# ("proto/...") are lint's business (tests/lint/lint.sh).
set -eu
SRC=$1
cd "$SRC"

files=$(find raft storage node -name '*.[ch]' | sort)
if [ -z "$files" ]; then
    echo "no sources found under $SRC"
    exit 1
fi

# rank FILE-OR-HEADER-PATH -> "unit rank"
rank() {
    case "$1" in
    node/main.c) echo "main 7" ;;
    node/loop.c | node/loop.h) echo "loop 6" ;;
    node/gearman/*) echo "gearman 5" ;;
    node/alone/*) echo "alone 4" ;;
    node/pipeline/*) echo "pipeline 3" ;;
    node/cluster/members.c | node/cluster/members.h) echo "base 1" ;;
    node/cluster/*) echo "cluster 2" ;;
    node/*/*) echo "unknown 0" ;;
    node/*) echo "base 1" ;;
    *) echo "other 0" ;;
    esac
}

bad=$(
    for f in $files; do
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" |
            while IFS= read -r line; do
                inc=$(printf '%s\n' "$line" |
                      sed -e 's/^[0-9]*:[[:space:]]*#[[:space:]]*include[[:space:]]*//')
                path=$(printf '%s\n' "$inc" | sed -e 's/^["<]//' -e 's/[">].*$//')
                case "$f" in
                raft/*)
                    case "$inc" in
                    \"raft/*) ;;
                    \"*) echo "$f:${line%%:*}: raft/ includes $path" ;;
                    esac
                    ;;
                storage/*)
                    case "$path" in
                    node/* | ../node/*) echo "$f:${line%%:*}: storage/ includes $path" ;;
                    event2/*) echo "$f:${line%%:*}: storage/ includes libevent ($path)" ;;
                    esac
                    ;;
                node/*)
                    case "$inc" in
                    \"node/*)
                        set -- $(rank "$f")
                        from=$1 from_rank=$2
                        set -- $(rank "$path")
                        to=$1 to_rank=$2
                        if [ "$to" = unknown ] || [ "$from" = unknown ]; then
                            echo "$f:${line%%:*}: $path is in no unit of node/ (add its folder to tests/meta/layers.sh and docs/DESIGN.md)"
                        elif [ "$to" != "$from" ] && [ "$to_rank" -ge "$from_rank" ]; then
                            echo "$f:${line%%:*}: $from includes $path, of $to, which is not below it"
                        fi
                        ;;
                    esac
                    ;;
                esac
            done
    done
)
if [ -n "$bad" ]; then
    echo "includes against the arrows (docs/DESIGN.md):"
    echo "$bad"
    exit 1
fi
echo "ok: $(echo "$files" | wc -l) files, every include points down"
