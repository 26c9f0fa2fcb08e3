#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Usage: raft_symbols.sh NM LIBGR_RAFT_A
#
# Fails if libgr_raft.a needs a symbol from outside that is not on the libc
# allowlist below, or exports a symbol without the raft_ prefix.
#
# Honest exceptions for instrumented builds: sanitizer runtimes (__asan_,
# __ubsan_, __sanitizer_, __tsan_), coverage (__gcov_) and the hardening of
# the release preset (__stack_chk_fail, __*_chk from _FORTIFY_SOURCE for
# the mem* functions we already allow).
set -eu
NM=$1
LIB=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$NM" -u "$LIB" | awk 'NF == 2 && $1 == "U" { print $2 }' | sort -u \
    > "$tmp/undef"
"$NM" --defined-only "$LIB" | awk 'NF == 3 { print $3 }' | sort -u \
    > "$tmp/def"
comm -23 "$tmp/undef" "$tmp/def" > "$tmp/external"

allow='^(malloc|calloc|realloc|free|memcpy|memmove|memset|memcmp|abort)$'
instr='^(__asan_|__ubsan_|__sanitizer_|__tsan_|__gcov_|__llvm_gcov|__llvm_profile|_GLOBAL_OFFSET_TABLE_$|__stack_chk_fail$|__stack_chk_guard$|__(memcpy|memmove|memset)_chk$)'

status=0
bad=$(grep -Ev "$allow" "$tmp/external" | grep -Ev "$instr" || true)
if [ -n "$bad" ]; then
    echo "raft/ uses symbols outside the libc allowlist:"
    echo "$bad" | sed 's/^/  /'
    status=1
fi

# Exported (global) symbols must carry the module prefix.
"$NM" --defined-only -g "$LIB" | awk 'NF == 3 { print $3 }' | sort -u \
    > "$tmp/global"
badp=$(grep -Ev '^raft_' "$tmp/global" | grep -Ev "$instr" || true)
if [ -n "$badp" ]; then
    echo "raft/ exports symbols without the raft_ prefix:"
    echo "$badp" | sed 's/^/  /'
    status=1
fi
if [ ! -s "$tmp/global" ]; then
    echo "no global symbols found in $LIB: is it the right file?"
    status=1
fi
[ $status -eq 0 ] && echo "ok: $(wc -l < "$tmp/external") external symbols, all allowed"
exit $status
