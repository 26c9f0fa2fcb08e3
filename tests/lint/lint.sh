#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tests/lint/lint.sh SRC BUILD - checks of the codebase itself
# (docs/DESIGN.md, "Conventions"): banned functions, include boundaries
# between modules (see also tests/meta/layers.sh), where the
# generated protobuf-c types may appear, exported-symbol prefixes per module
# library, and that every public header compiles on its own.
# Prints every violation and exits 1 if there is any.
set -u
src=$1
build=$2
fail=0
say() { echo "lint: $*"; fail=1; }

cd "$src" || exit 2
c_files=$(git ls-files -co --exclude-standard -- 'raft/*.[ch]' 'storage/*.[ch]' 'node/*.[ch]' 2>/dev/null)
[ -n "$c_files" ] || c_files=$(find raft storage node -name '*.[ch]')

# 1. Banned functions (curl checksrc style). Comments are stripped first
#    so that prose may name them.
strip() { sed -e 's://.*$::' -e 's:/\*.*\*/::g' "$1"; }
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|rand|srand|event_set|event_base_set)[[:space:]]*\('
for f in $c_files; do
    hits=$(strip "$f" | grep -nE "$banned" | grep -vE '\b(snprintf|vsnprintf)\b' || true)
    [ -z "$hits" ] || say "$f uses a banned function: $hits"
done
# Time may not be read inside the pure core nor inside apply.
for f in $(echo "$c_files" | tr ' ' '\n' | grep -E '^(raft/|storage/apply)'); do
    hits=$(strip "$f" | grep -nE '\b(time|clock_gettime|gettimeofday)[[:space:]]*\(' || true)
    [ -z "$hits" ] || say "$f reads a clock: $hits"
done

# 2. Include boundaries: node -> storage -> raft, everyone -> proto.
for f in $(echo "$c_files" | tr ' ' '\n' | grep '^raft/'); do
    hits=$(grep -nE '#include *[<"](event2/|lmdb\.h|sys/socket\.h|pthread\.h|time\.h|stdio\.h|protobuf-c|proto/|\.\./|node/|storage/)' "$f" || true)
    [ -z "$hits" ] || say "$f breaks raft/ purity: $hits"
done
for f in $(echo "$c_files" | tr ' ' '\n' | grep '^storage/'); do
    hits=$(grep -nE '#include *[<"](event2/|node/|\.\./node/)' "$f" || true)
    [ -z "$hits" ] || say "$f (storage/) includes node/ or libevent: $hits"
done

# 3. Generated protobuf-c types live in exactly two files.
for f in $c_files; do
    case "$f" in storage/codec.c|node/cluster/peer_codec.c) continue ;; esac
    hits=$(grep -nE 'Gearraft__|pb-c\.h' "$f" || true)
    [ -z "$hits" ] || say "$f uses generated protobuf-c code (only storage/codec.c and node/cluster/peer_codec.c may): $hits"
done

# 4. Exported symbols carry their module's prefix.
check_prefix() { # lib regex
    local lib=$1 re=$2
    [ -f "$lib" ] || { say "missing library $lib"; return; }
    local bad
    bad=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF==3 {print $3}' | grep -vE '^__(odr_)?asan|^__ubsan' | grep -vE "$re" || true)
    [ -z "$bad" ] || say "$(basename "$lib") exports symbols without its prefix: $(echo $bad)"
}
check_prefix "$build/raft/libgr_raft.a" '^raft_'
check_prefix "$build/storage/libgr_storage.a" '^store_'
check_prefix "$build/node/libgr_node.a" '^(gm_|admin_|peer_|ops_|gr_)'

# 5. Every public header compiles on its own.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in raft/raft.h storage/store.h $(find node -name '*.h' | sort); do
    [ -f "$h" ] || continue
    printf '#include "%s"\n' "$h" > "$tmp/t.c"
    if ! out=$(cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Werror \
              -I"$src" -I"$build/proto/gen" -fsyntax-only "$tmp/t.c" 2>&1); then
        say "$h does not compile on its own: $out"
    fi
done

[ $fail -eq 0 ] && echo "lint: clean"
exit $fail
