#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tests/sim/mutate.sh - proof that the simulator catches real Raft bugs.
#
# For each mutation below: copy raft/ to a temporary directory, inject one
# deliberate bug with sed, build the simulator (and the scenario tests)
# against the mutant, run the CI batch of seeds, and REQUIRE a failure.
# A mutant the simulator does not catch fails this script, and so does a
# mutation whose sed pattern no longer matches raft/ (the core changed:
# update the pattern here).  raft/ itself is never modified.
#
#   tests/sim/mutate.sh [--cc CC] [--seeds A..B] [--only NAME]
#
# Run from anywhere; CTest runs it as the test sim_mutations.
set -euo pipefail

src="$(cd "$(dirname "$0")/../.." && pwd)"
cc="${CC:-cc}"
seeds="1..2000"
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --cc) cc="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "mutate.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# name # file in raft/ # sed expression # what the bug is
mutations=(
  "old_term_vote#raft.c#s/^    if (m->term < r->term) {$/    if (m->term < r->term \&\& m->type == RAFT_MSG_VOTE_RESP) {\n        return true;\n    }\n&/#a candidate counts a vote granted in an older term"
  "old_term_vote#election.c#s/} else if (r->role != RAFT_CANDIDATE || m->term != r->term) {/} else if (r->role != RAFT_CANDIDATE || m->term > r->term) {/#(second half of the same bug)"
  "commit_old_term#replication.c#s/ || t != r->term) {/) {/#a leader commits an entry of an earlier term by counting replicas (paper figure 8)"
  # Bugs of kinds the randomized runs once nearly never caught: the
  # commit-durability and vote-durability checks and the reads sent to
  # stale leaders catch them now (docs/simulator.md, "Mutation proof").
  "removed_member_quorum#progress.c#s/^    r->n_prs = 0;$/&\n    for (size_t j = 0; j < n_old; j++) {\n        if (raft_conf_find(\&r->conf, old[j].id) == NULL) {\n            r->prs[r->n_prs++] = old[j];\n        }\n    }/#a removed member keeps its progress and still counts toward the commit quorum"
  "self_commit_unpersisted#progress.c#s/^    return r->log.persisted;$/    return raft__log_last(\&r->log);/#the leader counts its own entries toward commit before they are persisted"
  "vote_before_durable#raft.c#s/^    if (r->persisted_hs.term != r->term || r->persisted_hs.vote != r->vote) {$/    if (m->type == RAFT_MSG_VOTE_RESP) {\n        return true;\n    }\n&/#a vote response leaves before the vote is durable"
  "stale_read#readindex.c#s/ r->reads\[k\].seq <= acked \&\&//#a read index is answered without its heartbeat round (a deposed leader serves stale reads)"
  # The memory window and host-held snapshots (raft.h, "Memory"): the
  # per-core memory checks and the received file's check catch these.
  "window_unbounded#log.c#s/^    raft__log_compact(log, upto);$//#the window never lets an entry go: the core holds the whole log"
  "conf_below_lost#log.c#s/^            r->conf_below_index = i;$/            r->conf_below_index = 0;/#a CONF entry that leaves memory is forgotten: the configuration goes back to the snapshot's"
  "chunk_kept#raft.c#s/^    raft__free(r->batch.chunk.data.base);$//#received snapshot chunks are never freed: the follower ends up holding the whole snapshot"
  "fetched_prev_term#replication.c#s/^        prev_term = got\[0\].term;$/        prev_term = got[n - 1].term;/#an append of fetched entries names the term of its last entry as prev_term"
)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gr-mutate.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

cmocka_flags="$(pkg-config --cflags --libs cmocka 2>/dev/null || echo -lcmocka)"
sim_srcs=("$src"/tests/sim/sim_{rng,queue,net,trace,check,disk,swarm,cluster}.c)
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -g
        -I"$tmp/tree" -I"$src/tests/sim")

# The control: the same build of the unmodified core.  A seed that fails
# on a mutant proves something only if it passes here.
mkdir -p "$tmp/tree"
cp -R "$src/raft" "$tmp/tree/raft"
"$cc" "${cflags[@]}" -o "$tmp/sim_control" "$tmp"/tree/raft/*.c \
    "${sim_srcs[@]}" "$src/tests/sim/sim_main.c"
"$cc" "${cflags[@]}" -o "$tmp/scen_control" "$tmp"/tree/raft/*.c \
    "${sim_srcs[@]}" "$src/tests/sim/test_scenarios.c" $cmocka_flags
scen_control_ok=1
if ! "$tmp/scen_control" >"$tmp/scen_control.out" 2>&1; then
    scen_control_ok=0
    echo "control: the scenarios fail on the real core; scenario catches" \
        "below are no proof"
fi

names=()
for m in "${mutations[@]}"; do
    name="${m%%#*}"
    case " ${names[*]-} " in *" $name "*) ;; *) names+=("$name") ;; esac
done

fails=0
for name in "${names[@]}"; do
    if [ -n "$only" ] && [ "$only" != "$name" ]; then
        continue
    fi
    rm -rf "$tmp/tree"
    mkdir -p "$tmp/tree"
    cp -R "$src/raft" "$tmp/tree/raft"
    what=""
    for m in "${mutations[@]}"; do
        IFS='#' read -r mname file expr desc <<<"$m"
        [ "$mname" = "$name" ] || continue
        [ -n "$what" ] || what="$desc"
        sed -i -e "$expr" "$tmp/tree/raft/$file"
        if cmp -s "$src/raft/$file" "$tmp/tree/raft/$file"; then
            echo "MUTATION NOT APPLIED: $name: pattern not found in raft/$file"
            echo "  ($expr) - raft/ changed; update tests/sim/mutate.sh"
            fails=$((fails + 1))
            continue 2
        fi
    done
    echo "== mutant $name: $what"
    diff -u "$src/raft" "$tmp/tree/raft" | grep '^[-+][^-+]' | sed 's/^/   /' || true
    "$cc" "${cflags[@]}" -o "$tmp/sim_$name" "$tmp"/tree/raft/*.c \
        "${sim_srcs[@]}" "$src/tests/sim/sim_main.c"
    "$cc" "${cflags[@]}" -o "$tmp/scen_$name" "$tmp"/tree/raft/*.c \
        "${sim_srcs[@]}" "$src/tests/sim/test_scenarios.c" $cmocka_flags

    caught=""
    if "$tmp/scen_$name" >"$tmp/scen.out" 2>&1; then
        echo "   scenarios: all passed (not caught there)"
    else
        [ "$scen_control_ok" = 1 ] && caught="scenarios"
        echo "   scenarios: CAUGHT by" \
            "$(grep -E '^\[  FAILED  \] test_' "$tmp/scen.out" |
               awk '{print $4}' | sort -u | tr '\n' ' ')"
    fi
    if "$tmp/sim_$name" --seeds "$seeds" --stop-on-fail --last 0 \
        >"$tmp/sim.out" 2>&1; then
        echo "   sim --seeds $seeds: all passed (not caught there)"
    else
        line="$(grep -m1 '^FAIL' "$tmp/sim.out" || tail -3 "$tmp/sim.out")"
        seed="$(echo "$line" | sed -n 's/^FAIL seed=\([0-9]*\):.*/\1/p')"
        echo "   sim --seeds $seeds: $line"
        if [ -n "$seed" ] && "$tmp/sim_control" --seed "$seed" >/dev/null; then
            caught="$caught sim"
            echo "   sim: CAUGHT at seed $seed (which passes on the real core)"
        else
            echo "   sim: seed ${seed:-?} fails on the real core too:" \
                "not proof; run sim --seed ${seed:-?} --trace"
        fi
    fi
    if [ -z "$caught" ]; then
        echo "   NOT CAUGHT"
        fails=$((fails + 1))
    fi
done

if [ "$fails" -ne 0 ]; then
    echo "mutate.sh: $fails mutant(s) not caught or not applied"
    exit 1
fi
echo "mutate.sh: every mutant caught"
