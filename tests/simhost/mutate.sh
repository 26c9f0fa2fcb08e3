#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tests/simhost/mutate.sh - proof that the host simulator catches real
# bugs of the server (docs/simulator.md, "The host simulator").
#
# It copies the source tree to a temporary directory, builds simhost there
# once (no sanitizers, optimised), keeps that binary as the control, and
# then for each mutation below: injects one deliberate bug with sed into
# storage/ or node/, rebuilds (only the file changed), runs the seeds and
# REQUIRES a failing seed that the control passes. A mutant that is not
# caught fails this script, and so does a mutation whose sed pattern no
# longer matches (the code changed: update the pattern here). The tree in
# the repository is never modified.
#
#   tests/simhost/mutate.sh [--seeds A..B] [--only NAME] [--jobs N]
#
# CTest runs it as the test simhost_mutations.
set -euo pipefail

src="$(cd "$(dirname "$0")/../.." && pwd)"
seeds="1..25"
only=""
jobs=2
while [ $# -gt 0 ]; do
    case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "mutate.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# name # file # sed expression # what the bug is
mutations=(
  "no_dedupe#storage/apply.c#s/^    rv = store__dedupe(txn, &cmd->origin, &dup, &over);$/&\n    dup = false;\n    over = false;/#apply keeps no replay table: a command forwarded twice applies twice"
  "gone_keeps_jobs#storage/apply.c#s/^        rv = requeue_held(c, \&held, all, ng->max_retries);$/        rv = 0;/#NODE_GONE detaches clients but leaves the lost node's jobs assigned"
  "no_resend#node/pipeline/member.c#s/^            (p->sent_to == leader \&\&$/            (p->sent_to != 0 \&\&/;s/^             t->mono_ms - p->sent_ms < p->resend_wait)) {$/             true)) {/#a follower forwards a proposal once and never again, whatever became of the leader"
  "apply_uncommitted#node/cluster/turn.c#s/^    for (i = 0; i < h->rd.n_committed; i++) {$/    for (i = 0; i < h->rd.n_entries; i++) {/;s/^        const struct raft_entry \*e = \&h->rd.committed\[i\];$/        const struct raft_entry *e = \&h->rd.entries[i];/#a member applies (and answers) its entries once they are on its disk, before they commit"
  "stale_judgment#node/pipeline/member.c#s/^    if (p->cmd.type != STORE_CMD_NODE_GONE || p->judged_term == 0 ||$/    if (true ||/#a leader's NODE_GONE of another node stays pending after it steps down, and is forwarded to the next leader"
  "copy_dropped_after_apply#node/cluster/fwdseen.c#s/^           s->slot\[i\].index > applied;$/           true;/#a leader drops a follower's copy of a forwarded command it has applied already, though apply may have left the first undone (OVERTAKEN)"
  "overtaken_taken#node/pipeline/member.c#s/^    if (p != NULL \&\& was_overtaken(x->fx, fx_begin, fx_end)) {$/    if (p != NULL \&\& false) {/#a member counts a proposal that apply left undone (OVERTAKEN) as applied"
)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gr-simhost-mutate.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# The tree as git knows it (tracked and new files), without build output.
mkdir -p "$tmp/tree"
(cd "$src" && git ls-files -co --exclude-standard | grep -v '^build/' |
    tar -cf - -T -) | (cd "$tmp/tree" && tar -xf -)
cmake -S "$tmp/tree" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
    -DGR_WERROR=OFF >"$tmp/cmake.out" 2>&1 || {
    cat "$tmp/cmake.out"; exit 1; }
build() {
    cmake --build "$tmp/build" --target simhost -j "$jobs" >"$tmp/build.out" 2>&1
}
if ! build; then
    cat "$tmp/build.out"
    exit 1
fi
cp "$tmp/build/tests/simhost/simhost" "$tmp/control"

fails=0
for m in "${mutations[@]}"; do
    IFS='#' read -r name file expr desc <<<"$m"
    if [ -n "$only" ] && [ "$only" != "$name" ]; then
        continue
    fi
    cp "$src/$file" "$tmp/tree/$file"
    sed -i -e "$expr" "$tmp/tree/$file"
    if cmp -s "$src/$file" "$tmp/tree/$file"; then
        echo "MUTATION NOT APPLIED: $name: pattern not found in $file"
        echo "  ($expr) - the code changed; update tests/simhost/mutate.sh"
        fails=$((fails + 1))
        continue
    fi
    echo "== mutant $name: $desc"
    diff -u "$src/$file" "$tmp/tree/$file" | grep '^[-+][^-+]' |
        sed 's/^/   /' || true
    if ! build; then
        echo "   does not build:"
        tail -20 "$tmp/build.out"
        fails=$((fails + 1))
        cp "$src/$file" "$tmp/tree/$file"
        continue
    fi
    if "$tmp/build/tests/simhost/simhost" --seeds "$seeds" --stop-on-fail \
        --last 0 >"$tmp/run.out" 2>&1; then
        echo "   NOT CAUGHT by seeds $seeds"
        fails=$((fails + 1))
    else
        line="$(grep -m1 '^FAIL' "$tmp/run.out" || tail -3 "$tmp/run.out")"
        seed="$(printf '%s\n' "$line" | sed -n 's/^FAIL seed=\([0-9]*\).*/\1/p')"
        if [ -n "$seed" ] && "$tmp/control" --seed "$seed" --last 0 \
            >"$tmp/control.out" 2>&1; then
            echo "   CAUGHT: $line"
        else
            echo "   fails, but so does the control (seed ${seed:-?}): no proof"
            echo "   $line"
            fails=$((fails + 1))
        fi
    fi
    cp "$src/$file" "$tmp/tree/$file"
done
if [ "$fails" -ne 0 ]; then
    echo "mutate.sh: $fails mutant(s) not proven caught"
    exit 1
fi
echo "mutate.sh: every mutant caught"
