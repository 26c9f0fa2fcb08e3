#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tests/bench/run.sh - the side-by-side benchmark in one go.
#
# Starts each server under test on its own free loopback port with its own
# temporary directory - stock gearmand in memory ("gearmand"), stock
# gearmand with its durable sqlite queue ("gearmand-sqlite"), gearraftd
# alone ("gearraftd"), and a cluster of three gearraftd on loopback
# ("gearraft3", whose cases spread their clients and workers over the three
# nodes) - runs every gr_bench case against it (a fresh server or cluster
# per case, so one case's leftovers never skew the next one's memory or
# speed), and prints one table with the ratios gearraftd/gearmand (and
# gearraft3/gearmand). Every case verifies its jobs; any failed
# verification makes the whole run exit non-zero.
#
# Usage: tests/bench/run.sh [options]
#   --build DIR          build directory (default <src>/build/bench)
#   --tool PATH          gr_bench (default DIR/tests/bench/gr_bench)
#   --fsync-tool PATH    gr_fsync_lat (default next to gr_bench)
#   --gearmand PATH      stock gearmand (default: gearmand on PATH or /usr/sbin)
#   --gearraftd PATH     gearraftd (default $GEARRAFTD or DIR/node/gearraftd)
#   --servers LIST       comma list of gearmand,gearmand-sqlite,gearraftd,
#                        gearraft3 (default gearmand,gearmand-sqlite,
#                        gearraftd)
#   --cases LIST         comma list of submit,roundtrip,deep,big,failover
#                        (default submit,roundtrip,deep,big); failover runs
#                        on gearraft3 only: its leader SIGKILLed --kills
#                        times under a light submit load, the time from
#                        each kill to the first JOB_CREATED through a
#                        survivor, then no acknowledged job lost
#   --smoke              small counts: proves the tool works in seconds
#   --submit-jobs N      background submit case (default 100000)
#   --sqlite-submit-jobs N   the same against gearmand-sqlite (default 10000)
#   --rt-jobs N          foreground round trips (default 200000)
#   --deep-jobs N        deep queue for memory and drain (default 1000000)
#   --sqlite-deep-jobs N the same against gearmand-sqlite (default 100000)
#   --big-size BYTES     large payload (default 64M), --big-repeat N (3)
#   --kills N            leaders killed in the failover case (default 100)
#   --fsync-count N      write+fdatasync samples (default 2000)
#   --time-limit SECS    limit per phase handed to gr_bench (default 900;
#                        in the failover case each wait for a leader, for
#                        the first JOB_CREATED or for a restarted node is
#                        a phase)
#   --rounds N           run every case N times over (case by case, each
#                        on every server in turn, then the next round),
#                        and print each round's gearraftd/gearmand (and
#                        gearraft3/gearmand) ratio of every rate and its
#                        median (default 1)
#   --out FILE           also write the raw RESULT lines here (with
#                        --rounds N > 1: FILE.1 ... FILE.N, one per round)
#   --keep               keep the temporary directories
#   --report FILE        (repeatable) print the table of earlier --out files
#                        instead of running anything; given two or more,
#                        also each run's gearraftd/gearmand (and
#                        gearraft3/gearmand) ratio of every rate both
#                        servers have, and its median
# Exit status: 0 all measured and verified, 1 a case failed, 2 usage,
# 77 nothing to benchmark (no gearmand and no gearraftd).
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build="$src/build/bench"
tool=""
fsync_tool=""
gearmand_bin=""
gearraftd_bin="${GEARRAFTD:-}"
servers="gearmand,gearmand-sqlite,gearraftd"
cases="submit,roundtrip,deep,big"
smoke=0
submit_jobs=100000
sqlite_submit_jobs=10000
rt_jobs=200000
deep_jobs=1000000
sqlite_deep_jobs=100000
big_size=64M
big_repeat=3
kills=100
fsync_count=2000
time_limit=900
rounds=1
out=""
keep=0
report=()

usage() { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --build) need "$@"; build=$2; shift ;;
    --tool) need "$@"; tool=$2; shift ;;
    --fsync-tool) need "$@"; fsync_tool=$2; shift ;;
    --gearmand) need "$@"; gearmand_bin=$2; shift ;;
    --gearraftd) need "$@"; gearraftd_bin=$2; shift ;;
    --servers) need "$@"; servers=$2; shift ;;
    --cases) need "$@"; cases=$2; shift ;;
    --smoke) smoke=1 ;;
    --submit-jobs) need "$@"; submit_jobs=$2; shift ;;
    --sqlite-submit-jobs) need "$@"; sqlite_submit_jobs=$2; shift ;;
    --rt-jobs) need "$@"; rt_jobs=$2; shift ;;
    --deep-jobs) need "$@"; deep_jobs=$2; shift ;;
    --sqlite-deep-jobs) need "$@"; sqlite_deep_jobs=$2; shift ;;
    --big-size) need "$@"; big_size=$2; shift ;;
    --big-repeat) need "$@"; big_repeat=$2; shift ;;
    --kills) need "$@"; kills=$2; shift ;;
    --fsync-count) need "$@"; fsync_count=$2; shift ;;
    --time-limit) need "$@"; time_limit=$2; shift ;;
    --rounds) need "$@"; rounds=$2; shift ;;
    --out) need "$@"; out=$2; shift ;;
    --keep) keep=1 ;;
    --report) need "$@"; report+=("$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

# print_table "SERVERS" "RAN" FILE...: one row per metric, one column per
# server (in SERVERS order; those not in RAN show "not run"), then the
# ratios gearraftd/gearmand and gearraftd/gearmand-sqlite, and, when
# gearraft3 is in SERVERS, gearraft3/gearmand and gearraft3/gearmand-sqlite.
print_table() {
  awk -v servers="$1" -v ran="$2" '
  function val(srv, cs, key, when,   k) {
    k = srv SUBSEP cs SUBSEP when SUBSEP key
    return (k in v) ? v[k] : ""
  }
  function fmt(x, d) { return x == "" ? "-" : sprintf("%." d "f", x) }
  function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
  {
    srv = $1; cs = ""; when = ""
    for (i = 2; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "case") cs = kv[2]
      if (kv[1] == "when" || kv[1] == "pattern") when = kv[2]
    }
    if ($2 == "FAIL") { fail[srv SUBSEP cs] = 1; next }
    for (i = 2; i <= NF; i++) {
      split($i, kv, "=")
      v[srv SUBSEP cs SUBSEP when SUBSEP kv[1]] = kv[2]
    }
  }
  END {
    n = split(servers, S, " ")
    split(ran, RAN, " ")
    for (s in RAN) was_run[RAN[s]] = 1
    row[1] = "bg submit, 4 thr x 16 in flight (jobs/s)|submit||rate|0|hi"
    row[2] = "  drain of that queue, 16 workers (jobs/s)|submit_drain||rate|0|hi"
    row[3] = "fg round trips, 64 clients 16 workers (/s)|roundtrip||rate|0|hi"
    row[4] = "  fg latency p50 (ms)|roundtrip||p50_ms|2|lo"
    row[5] = "  fg latency p99 (ms)|roundtrip||p99_ms|2|lo"
    row[6] = "  worker wait between jobs (ms)|roundtrip||worker_gap_ms|3|lo"
    row[7] = "deep queue: jobs queued|deep||jobs|0|"
    row[8] = "  fill rate (jobs/s)|deep||rate|0|hi"
    row[9] = "  drain rate, 16 workers (jobs/s)|deep_drain||rate|0|hi"
    row[10] = "  server RSS empty (MiB)|deep_mem|empty|rss_kb|1|lo"
    row[11] = "  server RSS holding the queue (MiB)|deep_mem|full|rss_kb|1|lo"
    row[12] = "    of which anonymous (MiB)|deep_mem|full|anon_kb|1|lo"
    row[13] = "    of which file-backed, e.g. mmap (MiB)|deep_mem|full|file_kb|1|lo"
    row[14] = "  RSS growth per queued job (bytes)|deep_mem|full|per_job|0|lo"
    row[15] = "  data on disk holding the queue (MiB)|deep_disk|full|allocated_b|1|lo"
    row[16] = "  server RSS after the drain (MiB)|deep_mem|drained|rss_kb|1|lo"
    row[17] = "big payload round trip (s, median)|big||median_s|3|lo"
    row[18] = "  big payload size (MiB)|big||size|0|"
    row[19] = "failover: leaders SIGKILLed|failover||kills|0|"
    row[20] = "  kill to next JOB_CREATED, p50 (ms)|failover||p50_ms|1|"
    row[21] = "  kill to next JOB_CREATED, p99 (ms)|failover||p99_ms|1|"
    row[22] = "  kill to next JOB_CREATED, max (ms)|failover||max_ms|1|"
    row[23] = "  acknowledged jobs, all kills|failover_check||acked|0|"
    row[24] = "  of them lost|failover_check||lost|0|"
    nrow = 24
    # Derived values.
    for (s = 1; s <= n; s++) {
      srv = S[s]
      e = val(srv, "deep_mem", "rss_kb", "empty"); f = val(srv, "deep_mem", "rss_kb", "full")
      j = val(srv, "deep", "jobs", "")
      if (e != "" && f != "" && j > 0) v[srv SUBSEP "deep_mem" SUBSEP "full" SUBSEP "per_job"] = (f - e) * 1024 / j
    }
    printf "%-44s", "metric"
    for (s = 1; s <= n; s++) printf " %16s", S[s]
    has_raft = 0; has_gm = 0; has_sq = 0; has_r3 = 0
    for (s = 1; s <= n; s++) { if (S[s] == "gearraftd") has_raft = 1; if (S[s] == "gearmand") has_gm = 1; if (S[s] == "gearmand-sqlite") has_sq = 1; if (S[s] == "gearraft3") has_r3 = 1 }
    show_raft = has_raft || !has_r3
    if (show_raft) printf " %16s %16s", "raftd/gearmand", "raftd/sqlite"
    if (has_r3) printf " %16s %16s", "raft3/gearmand", "raft3/sqlite"
    printf "\n"
    for (r = 1; r <= nrow; r++) {
      split(row[r], R, "|")
      printf "%-44s", R[1]
      for (s = 1; s <= n; s++) {
        srv = S[s]; x = val(srv, R[2], R[4], R[3])
        if (x != "" && (R[4] ~ /_kb$/)) x = x / 1024
        if (x != "" && (R[4] == "allocated_b" || R[4] == "size")) x = x / 1048576
        base = substr(R[2], 1, index(R[2] "_", "_") - 1)
        if (x == "" && ((srv SUBSEP base) in fail)) printf " %16s", "FAIL"
        else if ((srv SUBSEP base) in fail) { printf " %16s", fmt(x, R[5]) "!"; marked = 1 }
        else if (!(srv in was_run)) printf " %16s", "not run"
        else printf " %16s", fmt(x, R[5])
        cur[srv] = x
      }
      if (R[6] == "") { printf "\n"; continue }
      if (show_raft) printf " %16s %16s", (has_raft && has_gm) ? ratio(cur["gearraftd"], cur["gearmand"]) : "-", \
                                         (has_raft && has_sq) ? ratio(cur["gearraftd"], cur["gearmand-sqlite"]) : "-"
      if (has_r3) printf " %16s %16s", has_gm ? ratio(cur["gearraft3"], cur["gearmand"]) : "-", \
                                       has_sq ? ratio(cur["gearraft3"], cur["gearmand-sqlite"]) : "-"
      printf "\n"
    }
    if (marked) printf "! measured, but the case FAILED its verification (see the log above)\n"
    if (("disk" SUBSEP "fsync" SUBSEP "overwrite" SUBSEP "p50_ms") in v) {
      printf "\ndisk write+fdatasync of 4 KiB: rewrite in place p50 %s ms p99 %s ms (%s/s); append p50 %s ms p99 %s ms (%s/s)\n", \
        v["disk" SUBSEP "fsync" SUBSEP "overwrite" SUBSEP "p50_ms"], v["disk" SUBSEP "fsync" SUBSEP "overwrite" SUBSEP "p99_ms"], \
        v["disk" SUBSEP "fsync" SUBSEP "overwrite" SUBSEP "ops_per_s"], v["disk" SUBSEP "fsync" SUBSEP "append" SUBSEP "p50_ms"], \
        v["disk" SUBSEP "fsync" SUBSEP "append" SUBSEP "p99_ms"], v["disk" SUBSEP "fsync" SUBSEP "append" SUBSEP "ops_per_s"]
    }
    if (("disk" SUBSEP "fsync" SUBSEP "scattered" SUBSEP "p50_ms") in v) {
      printf "disk 50 pages of 4 KiB + one fdatasync: scattered p50 %s ms p99 %s ms; contiguous p50 %s ms p99 %s ms\n", \
        v["disk" SUBSEP "fsync" SUBSEP "scattered" SUBSEP "p50_ms"], v["disk" SUBSEP "fsync" SUBSEP "scattered" SUBSEP "p99_ms"], \
        v["disk" SUBSEP "fsync" SUBSEP "contiguous" SUBSEP "p50_ms"], v["disk" SUBSEP "fsync" SUBSEP "contiguous" SUBSEP "p99_ms"]
    }
  }' "${@:3}"
}

# print_run_ratios NUM FILE...: one line per rate that both gearmand and
# NUM (gearraftd or gearraft3) measured in a run (one --out file): the
# ratio NUM/gearmand in each run, then the median of the runs. A run is
# only comparable with itself, so ratios are taken inside a run and only
# then summarised.
print_run_ratios() {
  awk -v num="$1" '
    FNR == 1 { run++ }
    $1 == "gearmand" || $1 == num {
      cs = ""; rate = ""
      for (i = 2; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "case") cs = kv[2]
        if (kv[1] == "rate") rate = kv[2]
      }
      if (cs != "" && rate != "") { r[run, cs, $1] = rate; seen[cs] = 1 }
    }
    END {
      for (cs in seen) {
        n = 0; line = ""
        for (k = 1; k <= run; k++) {
          a = r[k, cs, num]; b = r[k, cs, "gearmand"]
          if (a == "" || b == "" || b == 0) { line = line "     -"; continue }
          x[++n] = a / b; line = line sprintf(" %5.2f", a / b)
        }
        if (n == 0) continue
        for (i = 2; i <= n; i++) {   # insertion sort, n is small
          v = x[i]
          for (j = i - 1; j >= 1 && x[j] > v; j--) x[j + 1] = x[j]
          x[j + 1] = v
        }
        med = (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
        printf "  %-14s%s   median %.2f\n", cs, line, med
      }
    }' "${@:2}" | sort
}

# print_rounds_ratios WHAT FILE...: print_run_ratios for gearraftd and,
# when the files have it, gearraft3 (WHAT: "rounds" or "files").
print_rounds_ratios() {
  local what=$1 num
  shift
  for num in gearraftd gearraft3; do
    grep -q "^$num " "$@" 2>/dev/null || continue
    printf '%s/gearmand, %s (%d %s):\n' "$num" \
      "$([ "$what" = rounds ] && echo "round by round" || echo "run by run")" "$#" "$what"
    print_run_ratios "$num" "$@"
  done
}

if [ ${#report[@]} -gt 0 ]; then
  # Report mode: merge RESULT files of earlier runs into one table.
  ran=$(cat "${report[@]}" | awk '$1 != "disk" && !seen[$1]++ { printf "%s ", $1 }')
  cols="gearmand gearmand-sqlite gearraftd"
  [[ " $ran" != *" gearraft3 "* ]] || cols="$cols gearraft3"
  print_table "$cols" "$ran" "${report[@]}"
  if [ ${#report[@]} -gt 1 ]; then
    printf '\n(the table above: where a case is in several files, the last)\n'
    print_rounds_ratios files "${report[@]}"
  fi
  exit 0
fi

if [ "$smoke" -eq 1 ]; then
  submit_jobs=2000; sqlite_submit_jobs=300; rt_jobs=3000
  deep_jobs=5000; sqlite_deep_jobs=300; big_size=4M; big_repeat=1
  fsync_count=20; time_limit=60; kills=3
fi
for v in "$submit_jobs" "$sqlite_submit_jobs" "$rt_jobs" "$deep_jobs" \
         "$sqlite_deep_jobs" "$big_repeat" "$fsync_count" "$time_limit" \
         "$rounds" "$kills"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "bad count '$v'"
done

[ -n "$tool" ] || tool="$build/tests/bench/gr_bench"
[ -n "$fsync_tool" ] || fsync_tool="$(dirname "$tool")/gr_fsync_lat"
[ -n "$gearraftd_bin" ] || gearraftd_bin="$build/node/gearraftd"
if [ -z "$gearmand_bin" ]; then
  gearmand_bin=$(command -v gearmand || true)
  [ -n "$gearmand_bin" ] || [ ! -x /usr/sbin/gearmand ] || gearmand_bin=/usr/sbin/gearmand
fi
[ -x "$tool" ] || die "gr_bench not found at $tool (build target gr_bench, or pass --tool)"

# Which servers can run.
want=()
IFS=',' read -r -a requested <<< "$servers"
for s in "${requested[@]}"; do
  case "$s" in
    gearmand|gearmand-sqlite)
      if [ -n "$gearmand_bin" ] && [ -x "$gearmand_bin" ]; then
        want+=("$s")
      else
        echo "run.sh: stock gearmand not found (package gearman-job-server): skipping $s" >&2
      fi ;;
    gearraftd|gearraft3)
      if [ -x "$gearraftd_bin" ]; then
        want+=("$s")
      else
        echo "run.sh: gearraftd not found at $gearraftd_bin: benchmarking gearmand only (pass --gearraftd PATH or set GEARRAFTD)" >&2
      fi ;;
    *) die "unknown server '$s'" ;;
  esac
done
[ ${#want[@]} -gt 0 ] || { echo "run.sh: nothing to benchmark" >&2; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gr-bench.XXXXXX") || die "mktemp failed"
round_files=()
server_pid=""
server_port=""
server_du=""
cluster_dir=""      # the running gearraft3's directory, or empty
cluster_servers=""  # its Gearman ports: 127.0.0.1:P1,127.0.0.1:P2,...

stop_server() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  # Wait for the clean exit, at most 15 s, then force it. tail --pid
  # watches the process without a second background job of this shell:
  # a watchdog subshell raced bash's own reaping ("wait_for: No record of
  # process").
  timeout 15 tail --pid="$pid" -s 0.01 -f /dev/null 2>/dev/null ||
    kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The process ids of the running cluster's nodes, from their pid files
# (node.sh keeps them; the failover case restarts nodes under new ids).
cluster_pids() {
  local k
  for k in 1 2 3; do
    [ -s "$cluster_dir/n$k.pid" ] && cat "$cluster_dir/n$k.pid"
  done
}

# stop_cluster: SIGTERM to every node at once (a leader first hands its
# leadership over, for at most two election timeouts), then each is
# waited for like a single server.
stop_cluster() {
  local pid pids
  [ -n "$cluster_dir" ] || return 0
  pids=$(cluster_pids)
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pids; do stop_server "$pid"; done
  cluster_dir=""
  cluster_servers=""
}

main_pid=$BASHPID
cleanup() {
  # A subshell forked by this script can receive a signal before it
  # resets the inherited traps; only the main shell cleans up.
  [ "$BASHPID" = "$main_pid" ] || exit 0
  stop_server "$server_pid"
  server_pid=""
  stop_cluster
  if [ "$keep" -eq 1 ]; then
    echo "run.sh: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_cluster DIR: three gearraftd nodes on loopback, n1..n3, each with
# its data in DIR/nK/data. DIR/node.sh K runs node K in the foreground
# (exec, so its process id is the node's) and records that id in
# DIR/nK.pid; the failover case runs it again to restart a node on its
# own data. Waits until every node answers ECHO and all agree on one
# leader. Sets cluster_dir, cluster_servers and server_du (node 1's
# data); server_pid stays empty (stop_cluster stops the nodes).
start_cluster() {
  local dir=$1 attempt k ic gp pp
  for attempt in 1 2 3; do
    gp=(); pp=()
    for k in 1 2 3; do
      gp+=("$("$tool" free-port)") || return 1
      pp+=("$("$tool" free-port)") || return 1
    done
    ic="n1=127.0.0.1:${pp[0]},n2=127.0.0.1:${pp[1]},n3=127.0.0.1:${pp[2]}"
    {
      echo '#!/usr/bin/env bash'
      echo '# node.sh K: runs node K of this cluster in the foreground (run.sh).'
      echo 'set -u'
      echo 'k=$1'
      echo 'case "$k" in'
      for k in 1 2 3; do
        echo "  $k) gp=${gp[k-1]}; pp=${pp[k-1]} ;;"
      done
      echo '  *) echo "node.sh: no node $k" >&2; exit 2 ;;'
      echo 'esac'
      printf 'dir=%q\n' "$dir"
      echo 'mkdir -p "$dir/n$k"'
      echo 'echo $$ > "$dir/n$k.pid.tmp" && mv "$dir/n$k.pid.tmp" "$dir/n$k.pid"'
      printf 'exec %q --node-id "n$k" --peer-listen "127.0.0.1:$pp" \\\n' "$gearraftd_bin"
      printf '  --initial-cluster %q -L 127.0.0.1 -p "$gp" \\\n' "$ic"
      echo '  --data-dir "$dir/n$k/data" >> "$dir/n$k/stdout.log" 2>&1'
    } > "$dir/node.sh"
    chmod +x "$dir/node.sh"
    cluster_dir=$dir
    cluster_servers="127.0.0.1:${gp[0]},127.0.0.1:${gp[1]},127.0.0.1:${gp[2]}"
    for k in 1 2 3; do
      # Disowned: bash would report each SIGKILL of the failover case.
      "$dir/node.sh" "$k" &
      disown $!
    done
    server_du="$dir/n1/data"
    if "$tool" ping --servers "$cluster_servers" --time-limit 20 2>>"$dir/ping.log" &&
       "$tool" cluster-wait --servers "$cluster_servers" --time-limit 30 \
         >"$dir/leader" 2>>"$dir/ping.log"; then
      return 0
    fi
    echo "run.sh: the gearraft3 cluster did not come up (attempt $attempt):" >&2
    tail -n 5 "$dir"/ping.log "$dir"/n*/stdout.log >&2 2>/dev/null
    stop_cluster
  done
  return 1
}

# start_server NAME DIR: starts NAME in DIR on a free port and waits until it
# answers ECHO. Sets server_pid, server_port and server_du (what to measure
# on disk); for gearraft3 see start_cluster.
start_server() {
  local name=$1 dir=$2 attempt
  if [ "$name" = gearraft3 ]; then
    start_cluster "$dir"
    return
  fi
  for attempt in 1 2 3; do
    server_port=$("$tool" free-port) || return 1
    case "$name" in
      gearmand)
        server_du=""
        "$gearmand_bin" -L 127.0.0.1 -p "$server_port" \
          --log-file="$dir/gearmand.log" --verbose=ERROR \
          >"$dir/stdout.log" 2>&1 &
        ;;
      gearmand-sqlite)
        server_du="$dir/sqlite"
        mkdir -p "$server_du"
        "$gearmand_bin" -L 127.0.0.1 -p "$server_port" \
          --log-file="$dir/gearmand.log" --verbose=ERROR \
          --queue-type=libsqlite3 --libsqlite3-db="$server_du/queue.db" \
          >"$dir/stdout.log" 2>&1 &
        ;;
      gearraftd)
        server_du="$dir/data"
        "$gearraftd_bin" -L 127.0.0.1 -p "$server_port" \
          --data-dir "$server_du" >"$dir/stdout.log" 2>&1 &
        ;;
    esac
    server_pid=$!
    if "$tool" ping --port "$server_port" --time-limit 20 2>>"$dir/ping.log"; then
      return 0
    fi
    echo "run.sh: $name did not come up on port $server_port (attempt $attempt):" >&2
    tail -n 5 "$dir"/*.log >&2 2>/dev/null
    stop_server "$server_pid"
    server_pid=""
  done
  return 1
}

# servers_alive NAME: whether the server (every node of gearraft3) runs.
servers_alive() {
  local pid
  if [ "$1" = gearraft3 ]; then
    for pid in $(cluster_pids); do
      kill -0 "$pid" 2>/dev/null || return 1
    done
    return 0
  fi
  kill -0 "$server_pid" 2>/dev/null
}

failed=0
# run_case SERVER CASE ARGS...: fresh server, one gr_bench case, results
# tagged with the server name.
run_case() {
  local name=$1 case=$2 dir rc limit
  shift 2
  dir="$work/round$round/$name-$case"
  mkdir -p "$dir"
  if ! start_server "$name" "$dir"; then
    echo "$name FAIL case=$case reason=start" >> "$results"
    failed=1
    return
  fi
  local target=(--port "$server_port") extra=()
  if [ "$name" = gearraft3 ]; then
    target=(--servers "$cluster_servers")
  fi
  if [ "$case" = deep ]; then
    # A cluster's memory and disk: node 1's.
    extra=(--server-pid "${server_pid:-$(cat "$dir/n1.pid")}")
    [ -z "$server_du" ] || extra+=(--du "$server_du")
  fi
  if [ "$case" = failover ]; then
    extra=(--pid-files "$dir/n1.pid,$dir/n2.pid,$dir/n3.pid"
           --restart "$dir/node.sh")
  fi
  echo "== $name: $case $* (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  # The tool bounds each phase itself; timeout is the backstop (a kill
  # of the failover case has up to three phases).
  limit=$((time_limit * 4 + 60))
  [ "$case" != failover ] || limit=$((limit + kills * time_limit * 3))
  timeout --kill-after=10 "$limit" \
    "$tool" "$case" "${target[@]}" --time-limit "$time_limit" \
    --tag "$case$$" "${extra[@]}" "$@" > "$dir/result" 2> "$dir/stderr"
  rc=$?
  grep -E '^(verify|big:|submit:|deep:|failover: [0-9]+ kills)' "$dir/stderr" | sed "s/^/   /" >&2
  sed "s/^RESULT /$name /" "$dir/result" >> "$results"
  if [ $rc -ne 0 ] || ! servers_alive "$name"; then
    echo "run.sh: $name $case FAILED (exit $rc); its stderr:" >&2
    tail -n 20 "$dir/stderr" >&2
    echo "$name FAIL case=$case reason=exit$rc" >> "$results"
    failed=1
  fi
  stop_server "$server_pid"
  server_pid=""
  stop_cluster
}

# Case by case, each on every server in turn, so that servers compared in
# one row were measured minutes apart, not a whole run apart: on a shared
# machine the background load drifts.
IFS=',' read -r -a case_list <<< "$cases"
for ((round = 1; round <= rounds; round++)); do
  results="$work/results.$round"
  : > "$results"
  round_files+=("$results")
  [ "$rounds" -eq 1 ] || echo "== round $round of $rounds" >&2
  for case in "${case_list[@]}"; do
    for name in "${want[@]}"; do
      sj=$submit_jobs; dj=$deep_jobs
      if [ "$name" = gearmand-sqlite ]; then
        sj=$sqlite_submit_jobs; dj=$sqlite_deep_jobs
      fi
      case "$case" in
        submit) run_case "$name" submit --jobs "$sj" --threads 4 --pipeline 16 --workers 16 ;;
        roundtrip) run_case "$name" roundtrip --jobs "$rt_jobs" --clients 64 --workers 16 ;;
        deep) run_case "$name" deep --jobs "$dj" --threads 4 --pipeline 16 --workers 16 ;;
        big) run_case "$name" big --size "$big_size" --repeat "$big_repeat" ;;
        failover)
          # Only a cluster has a leader to lose.
          [ "$name" = gearraft3 ] || continue
          run_case "$name" failover --kills "$kills" --workers 4 ;;
        *) die "unknown case '$case'" ;;
      esac
    done
  done
  # A round's servers and their data are gone by now: free the disk.
  [ "$keep" -eq 1 ] || rm -rf "$work/round$round"
done

# Disk sync latency where the servers kept their data.
if [ -x "$fsync_tool" ]; then
  "$fsync_tool" "$work" "$fsync_count" 4096 2>&1 | sed "s/^RESULT /disk /" >> "$results"
  # What a commit of 50 dirty pages costs, scattered or contiguous.
  "$fsync_tool" --pages 50 "$work" 200 2>&1 | sed "s/^RESULT /disk /" >> "$results"
fi

if [ -n "$out" ] && [ "$rounds" -eq 1 ]; then
  cp "$results" "$out"
elif [ -n "$out" ]; then
  for ((round = 1; round <= rounds; round++)); do
    cp "$work/results.$round" "$out.$round"
  done
fi

# The table: one row per metric, one column per server, then the ratios.
ordered=()
for s in gearmand gearmand-sqlite gearraftd gearraft3; do
  [[ " ${requested[*]} " == *" $s "* ]] && ordered+=("$s")
done
print_table "${ordered[*]}" "${want[*]}" "${round_files[@]}"
if [ "$rounds" -gt 1 ]; then
  printf '\n(the table above: the last round)\n'
  print_rounds_ratios rounds "${round_files[@]}"
fi
if [ ! -x "$gearraftd_bin" ]; then
  echo
  echo "gearraftd was not benchmarked (not found at $gearraftd_bin); its column and the ratios are empty."
fi

if [ "$failed" -ne 0 ]; then
  echo "run.sh: at least one case FAILED (see above)" >&2
  exit 1
fi
exit 0
