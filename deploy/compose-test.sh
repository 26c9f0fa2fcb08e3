#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# deploy/compose-test.sh - brings up deploy/docker-compose.yml's three
# nodes, runs a Gearman job through them with the stock `gearman` CLI,
# and takes everything down again:
#
#   1. makes the base image if it is missing (deploy/make-base-image.sh);
#   2. `up -d --build` under a project name of its own, with the client
#      ports published on free loopback ports, so that a cluster someone
#      runs from the same file is neither disturbed nor deleted;
#   3. waits until all three nodes name the same leader and Docker calls
#      each of them healthy;
#   4. submits a background job through one node (`gearman -b`) and
#      runs it with a worker on another (`gearman -w`), which writes the
#      payload to a file; checks the file and that the queue is empty as
#      a third node sees it;
#   5. `down -v` (also when a step fails, after printing the nodes' logs).
#
# Uses `docker compose` when that works, else docker-compose (1.29 is
# enough). Exits 0 on success, 1 on a failure, 77 (skipped) when Docker,
# a compose command or the gearman CLI is missing. Every wait is
# bounded: COMPOSE_TEST_BUILD_S (default 1800) for the build and start,
# COMPOSE_TEST_WAIT_S (default 90) for each of the later steps.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_S=${COMPOSE_TEST_BUILD_S:-1800}
WAIT_S=${COMPOSE_TEST_WAIT_S:-90}
FILE=deploy/docker-compose.yml
t0=$(date +%s)

say() { echo "compose-test: [$(( $(date +%s) - t0 ))s] $*"; }
skip() { echo "compose-test: skipped: $*"; exit 77; }
fail() { echo "compose-test: FAILED: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || skip "no docker command"
timeout 20 docker info >/dev/null 2>&1 || skip "the Docker engine does not answer"
if timeout 20 docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  skip "neither 'docker compose' nor docker-compose"
fi
command -v gearman >/dev/null 2>&1 || skip "no gearman CLI (Debian: gearman-tools)"

deploy/make-base-image.sh

project=gearraft-test-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/gearraft-compose-test.XXXXXX")
dc() { "${compose[@]}" -p "$project" -f "$FILE" "$@"; }

status=1
finish() {
  if [ "$status" -ne 0 ]; then
    echo "compose-test: the nodes' logs:" >&2
    timeout 60 "${compose[@]}" -p "$project" -f "$FILE" logs --no-color \
      --tail 60 >&2 2>&1 || true
  fi
  say "down -v"
  timeout 120 "${compose[@]}" -p "$project" -f "$FILE" down -v \
    --remove-orphans >/dev/null 2>&1 || echo "compose-test: down -v failed" >&2
  rm -rf "$work"
  say "done, status $status"
}
trap 'finish' EXIT
trap 'exit 1' INT TERM

# An empty GEARRAFT_PORT_Nx publishes the node's port on a free one.
say "${compose[*]} up -d --build (project $project)"
GEARRAFT_BIND=127.0.0.1 GEARRAFT_PORT_N1= GEARRAFT_PORT_N2= GEARRAFT_PORT_N3= \
  timeout "$BUILD_S" "${compose[@]}" -p "$project" -f "$FILE" up -d --build \
  >"$work/up.log" 2>&1 || { tail -n 40 "$work/up.log" >&2; fail "up -d --build"; }

declare -A port cid
for n in n1 n2 n3; do
  hp=$(dc port "$n" 4730 | tail -n 1)
  port[$n]=${hp##*:}
  [ -n "${port[$n]}" ] || fail "no published port for $n"
  cid[$n]=$(dc ps -q "$n")
  [ -n "${cid[$n]}" ] || fail "no container for $n"
done
say "client ports: n1 ${port[n1]}, n2 ${port[n2]}, n3 ${port[n3]}"

# The admin `cluster` lines through the image's own gearraft CLI, so that
# the host needs only the gearman tools.
leader_of() {
  docker exec "${cid[$1]}" gearraft -h 127.0.0.1 -t 2000 cluster 2>/dev/null |
    awk '$1 == "leader" { print $2 }'
}
deadline=$(( $(date +%s) + WAIT_S ))
while :; do
  l1=$(leader_of n1 || true); l2=$(leader_of n2 || true); l3=$(leader_of n3 || true)
  case "$l1" in n1 | n2 | n3) [ "$l1" = "$l2" ] && [ "$l1" = "$l3" ] && break ;; esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "no leader all agree on (n1: '$l1', n2: '$l2', n3: '$l3')"
  sleep 1
done
say "leader: $l1"

deadline=$(( $(date +%s) + WAIT_S ))
while :; do
  unhealthy=""
  for n in n1 n2 n3; do
    h=$(docker inspect -f '{{.State.Health.Status}}' "${cid[$n]}" 2>/dev/null || echo unknown)
    [ "$h" = healthy ] || unhealthy="$unhealthy $n:$h"
  done
  [ -z "$unhealthy" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy:$unhealthy"
  sleep 2
done
say "all three healthy"

# The job: submitted through n1, run by a worker on n2, checked on n3.
payload="compose-test $$ $RANDOM $(date +%s%N)"
fn=compose_test_$$
timeout 30 gearman -h 127.0.0.1 -p "${port[n1]}" -f "$fn" -b -- "$payload" ||
  fail "gearman -b through n1"
say "background job submitted through n1"
timeout "$WAIT_S" gearman -h 127.0.0.1 -p "${port[n2]}" -w -f "$fn" -c 1 -- \
  sh -c "cat > '$work/out'" || fail "gearman -w through n2 got no job"
got=$(cat "$work/out" 2>/dev/null || true)
[ "$got" = "$payload" ] || fail "the worker got '$got', not '$payload'"
say "worker on n2 ran it with the payload"

deadline=$(( $(date +%s) + WAIT_S ))
while :; do
  left=$(docker exec "${cid[n3]}" gearraft -h 127.0.0.1 -t 2000 status 2>/dev/null |
    awk -v f="$fn" '$1 == f { print $2 }')
  [ "${left:-0}" = 0 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "n3 still counts $left job(s) of $fn"
  sleep 1
done
say "n3 sees the queue empty"
status=0
