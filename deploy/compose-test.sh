#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# deploy/compose-test.sh - does what a user does with
# deploy/docker-compose.yml, and checks what the user would see:
#
#   1. makes the base image if it is missing (deploy/make-base-image.sh)
#      and, for `docker compose`, the plugin if it is missing
#      (deploy/install-compose-plugin.sh);
#   2. `build`, then exactly `COMPOSE -f deploy/docker-compose.yml up -d`
#      when nothing else uses the default project ("deploy") or the
#      ports 4730-4732; otherwise, so as not to disturb or delete a
#      cluster someone runs from the same file, the same under a project
#      name of its own with the client ports on free loopback ports;
#   3. waits until all three nodes name the same leader and Docker calls
#      each of them healthy;
#   4. submits a background job through one node (`gearman -b`) and
#      runs it with a worker on another (`gearman -w`), which writes the
#      payload to a file; checks the file and that the queue is empty as
#      a third node sees it;
#   5. with --drill DIR: runs every drill of deploy/drill against the
#      cluster, its report in DIR;
#   6. removes what the drills started and `down -v` (also when a step
#      fails, after printing the nodes' logs).
#
# --compose "docker compose" or --compose docker-compose picks the tool;
# by default `docker compose` when it works (after trying to install
# it), else docker-compose (1.29 is enough). Exits 0 on success, 1 on a
# failure, 77 (skipped) when Docker, the chosen compose command or the
# gearman CLI is missing. Every wait is bounded: COMPOSE_TEST_BUILD_S
# (default 1800) for the build and start, COMPOSE_TEST_WAIT_S (default
# 90) for each of the later steps; the drills bound themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_S=${COMPOSE_TEST_BUILD_S:-1800}
WAIT_S=${COMPOSE_TEST_WAIT_S:-90}
FILE=deploy/docker-compose.yml
t0=$(date +%s)

say() { echo "compose-test: [$(( $(date +%s) - t0 ))s] $*"; }
skip() { echo "compose-test: skipped: $*"; exit 77; }
fail() { echo "compose-test: FAILED: $*" >&2; exit 1; }

want=""
drill=""
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) want=$2; shift 2 ;;
    --drill) drill=$2; shift 2 ;;
    *) echo "usage: $0 [--compose 'docker compose'|docker-compose] [--drill DIR]" >&2; exit 2 ;;
  esac
done

command -v docker >/dev/null 2>&1 || skip "no docker command"
timeout 20 docker info >/dev/null 2>&1 || skip "the Docker engine does not answer"
plugin() { timeout 20 docker compose version >/dev/null 2>&1; }
case "$want" in
  "docker compose")
    plugin || deploy/install-compose-plugin.sh || true
    plugin || skip "no 'docker compose' (deploy/install-compose-plugin.sh could not make it)"
    compose=(docker compose) ;;
  docker-compose)
    command -v docker-compose >/dev/null 2>&1 || skip "no docker-compose (Debian: docker-compose)"
    compose=(docker-compose) ;;
  "")
    plugin || deploy/install-compose-plugin.sh >/dev/null 2>&1 || true
    if plugin; then
      compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
      compose=(docker-compose)
    else
      skip "neither 'docker compose' nor docker-compose"
    fi ;;
  *) echo "compose-test: --compose takes 'docker compose' or docker-compose" >&2; exit 2 ;;
esac
command -v gearman >/dev/null 2>&1 || skip "no gearman CLI (Debian: gearman-tools)"

deploy/make-base-image.sh

# The user's own command when nothing else is in its way.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
exact=1
[ -z "$(docker ps -aq --filter label=com.docker.compose.project=deploy)" ] || exact=0
for p in 4730 4731 4732; do port_free "$p" || exact=0; done
if [ "$exact" = 1 ]; then
  project=deploy
  pflag=()
else
  project=gearraft-test-$$
  pflag=(-p "$project")
  export GEARRAFT_BIND=127.0.0.1 GEARRAFT_PORT_N1= GEARRAFT_PORT_N2= GEARRAFT_PORT_N3=
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/gearraft-compose-test.XXXXXX")
dc() { "${compose[@]}" "${pflag[@]}" -f "$FILE" "$@"; }

status=1
finish() {
  if [ "$status" -ne 0 ]; then
    echo "compose-test: the nodes' logs:" >&2
    timeout 60 "${compose[@]}" "${pflag[@]}" -f "$FILE" logs --no-color \
      --tail 60 >&2 2>&1 || true
  fi
  # Containers a drill started in place of a wiped node (deploy/drill).
  extra=$(docker ps -aq --filter "label=gearraft.drill=$project")
  [ -z "$extra" ] || docker rm -f $extra >/dev/null 2>&1 || true
  say "down -v"
  timeout 120 "${compose[@]}" "${pflag[@]}" -f "$FILE" down -v \
    --remove-orphans >/dev/null 2>&1 || echo "compose-test: down -v failed" >&2
  rm -rf "$work"
  say "done, status $status"
}
trap 'finish' EXIT
trap 'exit 1' INT TERM

say "${compose[*]} -f $FILE build, then up -d (project $project)"
timeout "$BUILD_S" "${compose[@]}" "${pflag[@]}" -f "$FILE" build >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; fail "build"; }
# With no project flag this is, word for word, what docs/operations.md
# tells a user to type; otherwise an empty GEARRAFT_PORT_Nx publishes the
# node's port on a free one.
timeout "$BUILD_S" "${compose[@]}" "${pflag[@]}" -f "$FILE" up -d >"$work/up.log" 2>&1 ||
  { tail -n 40 "$work/up.log" >&2; fail "up -d"; }

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

if [ -n "$drill" ]; then
  say "deploy/drill --compose $project --out $drill"
  deploy/drill --compose "$project" --out "$drill" || fail "a drill failed: see the report in $drill"
fi
status=0
