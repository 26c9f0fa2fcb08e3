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
#        ops       node/ops/ (the operators' HTTP endpoint)
#        loop      node/loop.[ch], node/liveness.[ch] (the loop's
#                  policies about silence, on its state)
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

# One awk pass over every include line (a fork per line was slow on a
# busy machine). rank(path) gives "unit rank" as listed above.
bad=$(
    grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' $files |
    awk '
    function rank(p) {
        if (p == "node/main.c") return "main 8"
        if (p == "node/loop.c" || p == "node/loop.h" ||
            p == "node/liveness.c" || p == "node/liveness.h") return "loop 7"
        if (p ~ /^node\/ops\//) return "ops 6"
        if (p ~ /^node\/gearman\//) return "gearman 5"
        if (p ~ /^node\/alone\//) return "alone 4"
        if (p ~ /^node\/pipeline\//) return "pipeline 3"
        if (p == "node/cluster/members.c" || p == "node/cluster/members.h") return "base 1"
        if (p ~ /^node\/cluster\//) return "cluster 2"
        if (p ~ /^node\/[^\/]+\//) return "unknown 0"
        if (p ~ /^node\//) return "base 1"
        return "other 0"
    }
    {
        # file:line:text
        f = $0; sub(/:.*/, "", f)
        rest = substr($0, length(f) + 2)
        ln = rest; sub(/:.*/, "", ln)
        inc = substr(rest, length(ln) + 2)
        sub(/^[[:space:]]*#[[:space:]]*include[[:space:]]*/, "", inc)
        quoted = substr(inc, 1, 1) == "\""
        path = inc; sub(/^["<]/, "", path); sub(/[">].*$/, "", path)
        if (f ~ /^raft\//) {
            if (quoted && path !~ /^raft\//) print f ":" ln ": raft/ includes " path
        } else if (f ~ /^storage\//) {
            if (path ~ /^(\.\.\/)?node\//) print f ":" ln ": storage/ includes " path
            else if (path ~ /^event2\//) print f ":" ln ": storage/ includes libevent (" path ")"
        } else if (f ~ /^node\// && quoted && path ~ /^node\//) {
            split(rank(f), a, " "); split(rank(path), b, " ")
            if (a[1] == "unknown" || b[1] == "unknown")
                print f ":" ln ": " path " is in no unit of node/ (add its folder to tests/meta/layers.sh and docs/DESIGN.md)"
            else if (a[1] != b[1] && b[2] + 0 >= a[2] + 0)
                print f ":" ln ": " a[1] " includes " path ", of " b[1] ", which is not below it"
        }
    }'
)
if [ -n "$bad" ]; then
    echo "includes against the arrows (docs/DESIGN.md):"
    echo "$bad"
    exit 1
fi
echo "ok: $(echo "$files" | wc -l) files, every include points down"
