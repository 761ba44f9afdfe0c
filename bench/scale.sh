#!/usr/bin/env bash
# bench/scale.sh: instancectl with many instances on one host, side by side with
# Postfix's own commands on the same instances in the same run (issue 14).
#
#   sudo bash bench/scale.sh            # N = 20
#   sudo env N=50 bash bench/scale.sh
#   sudo env N=200 KILLS=10 bash bench/scale.sh
#
# Everything runs in a throwaway sandbox (bench/lib.sh: private mount, network, pid
# and UTS namespaces, overlays on /etc and /var): the host's own Postfix is never
# touched. Every instance and the primary log to /var/log/mail.log of the sandbox
# (maillog_file, Postfix 3.4+: there is no syslog daemon in a sandbox), which is what
# the mail-log rows count.
#
# The instances. postfix-b1..bN, plain role, 127.0.0.1:20001.., primary a null
# client. Creating them is the slow part (postmulti create, postconf, postfix check
# and a start: 6 to 10 s each on a 2-CPU VM, and postmulti edits the primary's
# main.cf, so creates run one at a time). So the sandbox's files (its overlay upper
# directories, every master stopped) are kept in CACHE/nN-postfixVERSION and copied
# into each later run's sandbox: a run then only starts what it measures. The first
# run (or REBUILD=1) creates them, timed per instance (the create-vs-apply rows):
# the first and the last quarter one after another with `instancectl create`, the
# middle half with one `instancectl apply -f` (A B B A, since a create costs more as
# instances accumulate). A run from the cache shows the creation figures of the run
# that made it, marked as such.
#
# Measured, in this order:
#   1. Postfix's multi-instance wrapper: `postfix start` (postmulti starts the primary
#      and every enabled instance, one after another, each with `postfix check`),
#      the mail-log lines one `postmulti -p status` and one `instancectl status`
#      write while everything is healthy, `postfix stop`.
#   2. instancectl with Postfix's scripts (--manager postfix): `start --all`,
#      `stop --all`; then `supervise --manager postfix` (a reconcile pass every
#      second) and kill-to-banner.
#   3. instancectl with its native supervisor (the Linux default): `start --all` and
#      `stop --all` (START_RUNS times); with everything running: `postmulti -p
#      status` against `status --json` warm (postfix check results remembered), the
#      first status after main.cf changed in every instance, and `--recheck` (the
#      full `postfix check` of every instance); `postmulti -l` against `list
#      --json`; the supervisor idle for DURATION s (CPU, RSS, threads, and the smtpd
#      connect lines its probes cause per minute); kill-to-banner.
#   4. The launchd emulator (when this build has it): `start --all` (writes and
#      bootstraps every job), kill-to-banner, `stop --all`.
# Kill-to-banner: `kill -9` a master, until a new master pid lives and its listener
# greets "220 " (KILLS kills rotating over the instances, GAP s apart).
#
# Timings are taken inside the sandbox (no nsenter in the figure): RUNS runs of each
# status and list command (after one warm-up), mean and standard deviation.
#
# Targets (issue 14), each a ratio measured in this run: warm status <= 0.03x
# postmulti -p status and < 150 ms; status after a configuration change <= 1.0x;
# start --all <= 0.33x postfix start; no mail-log line from a status run while
# everything is healthy; apply per instance <= the same create by hand; supervisor
# idle CPU < 0.5 % of a core and RSS < 20 MB; plus issue 5's native recovery
# median < 1 s. The exit status is non-zero only when the benchmark could not run.
#
# Environment:
#   N=20             instances
#   RUNS=10          timed runs per status/list command
#   COLD_RUNS=3      status runs after a configuration change (each after a new change)
#   RECHECK_RUNS=2   status --recheck runs
#   START_RUNS=2     stop --all / start --all rounds under the native supervisor
#   DURATION=60      seconds of idle measurement
#   IDLE_REPEATS=1   idle windows of DURATION s, one after another, a row each
#   START_ONLY=1     only the start and stop rows: Postfix's wrapper, --manager postfix
#                    and the native supervisor (START_RUNS rounds)
#   IDLE_ONLY=1      only the supervisor's idle cost: start it on the cached instances,
#                    `start --all`, main.cf changed in all and status run as before the
#                    idle phase of a full run (IDLE_PRELUDE=none: not), then
#                    IDLE_REPEATS windows (N=200: about 2 minutes plus the windows)
#   INTERVAL=1s      supervise --interval
#   KILLS=20         kills per recovery series;  GAP=1  seconds between them
#   CACHE=/var/tmp/instancectl-bench-cache   where created sandboxes are kept
#   REBUILD=1        create the instances again even when cached
#   CREATE_ONLY=1    create (or find) the cached instances and stop there: N=200 takes
#                    about 40 minutes, which can run ahead of the measuring runs
#   INSTANCECTL=PATH use this binary instead of `cargo build --release --workspace`
#   EMULATOR_BIN_DIR=DIR  where launchd-emulator and launchctl are
#   SKIP_LAUNCHD=1, SKIP_KILLS=1   leave those parts out
#   KEEP=1           keep the work directory (logs, raw timings)
#
# N=20 from the cache takes about 6 minutes; creating takes about N x 8 s more.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

N="${N:-20}"
RUNS="${RUNS:-10}"
COLD_RUNS="${COLD_RUNS:-3}"
RECHECK_RUNS="${RECHECK_RUNS:-2}"
START_RUNS="${START_RUNS:-2}"
DURATION="${DURATION:-60}"
IDLE_REPEATS="${IDLE_REPEATS:-1}"
INTERVAL="${INTERVAL:-1s}"
KILLS="${KILLS:-20}"
GAP="${GAP:-1}"
CACHE="${CACHE:-/var/tmp/instancectl-bench-cache}"
BASE_PORT=20000
MAILLOG=/var/log/mail.log
DAEMONS=/var/Library/LaunchDaemons
EMU_STATE=/var/db/launchd-emulator

# ---------------------------------------------------------------------------------
# Inside the sandbox

# time_runs RUNS CMD...: runs CMD once to warm up, then RUNS times; prints
# "MEAN_MS SD_MS MIN_MS MAX_MS". The exit status of CMD is ignored (status exits 1
# when something is unwell; the caller checks health separately).
time_runs() {
  local runs=$1 i t0 t1
  shift
  "$@" >/dev/null 2>&1 || true
  for ((i = 0; i < runs; i++)); do
    t0=${EPOCHREALTIME/./}
    "$@" >/dev/null 2>&1 || true
    t1=${EPOCHREALTIME/./}
    echo $((t1 - t0))
  done | awk '{ v[NR] = $1 / 1000; s += v[NR] }
    END { m = s / NR; for (i = 1; i <= NR; i++) d += (v[i] - m) ^ 2
          min = v[1]; max = v[1]; for (i = 1; i <= NR; i++) { if (v[i] < min) min = v[i]; if (v[i] > max) max = v[i] }
          printf "%.1f %.1f %.1f %.1f\n", m, sqrt(d / NR), min, max }'
}

# time_once CMD...: wall time of one run in ms; fails when CMD fails.
time_once() {
  local t0 t1 rc=0
  t0=${EPOCHREALTIME/./}
  "$@" >>/var/log/instancectl-bench/commands.log 2>&1 || rc=$?
  t1=${EPOCHREALTIME/./}
  echo $(((t1 - t0) / 1000))
  return $rc
}

# Lines of the mail log, and smtpd connect lines in it.
log_lines() { wc -l <$MAILLOG; }
connect_lines() { grep -c 'smtpd\[[0-9]*\]: connect from' $MAILLOG || true; }

# every_serves N BASE_PORT TIMEOUT_S: waits until every instance greets.
every_serves() {
  local n=$1 base=$2 deadline=$((SECONDS + $3)) k
  for ((k = 1; k <= n; k++)); do
    until banner $((base + k)); do
      ((SECONDS < deadline)) || { echo "postfix-b$k does not greet on $((base + k))"; return 1; }
      sleep 0.1
    done
  done
}

# none_serves N BASE_PORT: no instance answers any more (an smtpd may outlive its
# master by a moment: up to 10 s).
none_serves() {
  local k deadline=$((SECONDS + 10))
  for ((k = 1; k <= $1; k++)); do
    while banner $(($2 + k)); do
      ((SECONDS < deadline)) || { echo "postfix-b$k still greets"; return 1; }
      sleep 0.1
    done
  done
}

scale_fns="$inside_fns; MAILLOG=$MAILLOG; $(declare -f time_runs time_once log_lines connect_lines every_serves none_serves)"

# Runs a function-using script inside.
inf() { ins "$scale_fns; $1"; }

# ---------------------------------------------------------------------------------
# The instances

cache_dir() { echo "$CACHE/n$N-postfix$(postconf -h mail_version)"; }

manifest() { # the first $1 instances
  local k
  for ((k = 1; k <= $1; k++)); do
    printf '[[instance]]\nname = "postfix-b%d"\nlisten = ["127.0.0.1:%d"]\n[instance.set]\nmaillog_file = "%s"\n\n' \
      "$k" $((BASE_PORT + k)) "$MAILLOG"
  done
}

# create_range FROM TO: `instancectl create` of each, one after another; prints the
# total ms.
create_range() {
  local k t ms=0 env="export INSTANCECTL_MANAGER=postfix;"
  for ((k = $1; k <= $2; k++)); do
    t="$(inf "$env time_once instancectl create postfix-b$k --listen 127.0.0.1:$((BASE_PORT + k)) --set maillog_file=$MAILLOG")" || {
      tail -30 "$(var_file $LOGS/commands.log)" >&2
      die "instancectl create postfix-b$k failed"
    }
    ms=$((ms + t))
    say "created postfix-b$k in $t ms"
  done
  echo "$ms"
}

# Creating costs more as instances accumulate (postmulti looks at every instance),
# so by hand and apply take turns as A B B A: the first and last quarters by hand,
# the middle half with one `apply -f` of a manifest listing the first three quarters.
create_sandbox() {
  local dir=$1 q1=$((N / 4)) q3=$((3 * N / 4)) hand apply_ms
  say "creating $N instances (once; kept in $dir)"
  sb_path="$base_path"
  sandbox_up
  local env="export INSTANCECTL_MANAGER=postfix;"
  ins "$env instancectl init --null-client && postconf -e maillog_file=$MAILLOG" >"$work/init.log" 2>&1 || {
    cat "$work/init.log" >&2
    die "instancectl init failed"
  }
  hand="$(create_range 1 "$q1")"
  manifest "$q3" | ins "cat >/var/tmp/bench.toml"
  say "apply -f: postfix-b$((q1 + 1)) to postfix-b$q3"
  apply_ms="$(inf "$env time_once instancectl apply -f /var/tmp/bench.toml")" || {
    tail -30 "$(var_file $LOGS/commands.log)" >&2
    die "instancectl apply failed"
  }
  hand=$((hand + $(create_range $((q3 + 1)) "$N")))
  ins "$scale_fns; every_serves $N $BASE_PORT 30" >&2 || die "not every instance serves after creating"
  # The cached sandbox has every instance stopped, enabled and wanted (no stop marks).
  ins "$env instancectl stop --all" >/dev/null 2>&1 || die "instancectl stop --all failed"
  ins "$scale_fns; none_serves $N $BASE_PORT" >&2 || die "stop --all left masters running"
  ins "rm -rf /var/lib/instancectl/stopped/* /var/lib/instancectl/health $LOGS; : > $MAILLOG"
  rm -rf "$dir.new"
  mkdir -p "$dir.new"
  cp -a "$sb_root/etc/upper" "$dir.new/etc"
  cp -a "$sb_root/var/upper" "$dir.new/var"
  local by_hand=$((q1 + N - q3))
  {
    echo "created=$(date -u +%FT%TZ)"
    echo "commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "create_ms_per_instance=$((hand / by_hand))"
    echo "apply_ms_per_instance=$((apply_ms / (q3 - q1)))"
    echo "create_count=$by_hand"
    echo "apply_count=$((q3 - q1))"
    echo "split=abba"
    echo "load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
  } >"$dir.new/info"
  sandbox_down
  rm -rf "$dir"
  mv "$dir.new" "$dir"
}

# ---------------------------------------------------------------------------------
# Phases

# ratio A B: A/B with three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

# timed_row LABEL "MEAN SD MIN MAX" BASE_MS [TARGET_RATIO [TARGET_MS]]
timed_row() {
  local label=$1 mean sd min max base=$3 tr=${4:-} tm=${5:-} r target="" ok=""
  read -r mean sd min max <<<"$2"
  r="$(ratio "$mean" "$base")"
  if [ -n "$tr" ]; then
    target="<= ${tr}x"
    ok="$r <= $tr"
    if [ -n "$tm" ]; then
      target="$target, < $tm ms"
      ok="$ok && $mean < $tm"
    fi
    row "$label" "$mean ms (sd $sd, $min-$max)  ${r}x" "$target" "$(verdict "$ok")"
  else
    row "$label" "$mean ms (sd $sd, $min-$max)  ${r}x"
  fi
}

# postfix_wrapper: Postfix's own start, status and stop of everything.
postfix_wrapper() {
  say "postfix start (multi-instance wrapper, $N instances + the primary)"
  postfix_start_ms="$(inf "time_once postfix start")" || die "postfix start failed"
  ins "$scale_fns; every_serves $N $BASE_PORT 30" >&2 || die "not every instance serves after postfix start"
  row "postfix start (postmulti, one after another)" "$postfix_start_ms ms  1.000x"
  sleep 2
  # What one status run writes to the mail log while everything is healthy.
  local before after conn0 conn1
  read -r before conn0 < <(inf 'echo $(log_lines) $(connect_lines)')
  ins "postmulti -p status" >/dev/null 2>&1 || die "postmulti -p status: not every instance runs"
  sleep 1
  read -r after conn1 < <(inf 'echo $(log_lines) $(connect_lines)')
  row "mail-log lines per postmulti -p status run" "$((after - before)) ($((conn1 - conn0)) smtpd connects)"
  # The first status after the masters started probes every listener; the next ones
  # show what the same masters answered while they hold their listeners.
  local run
  for run in first next; do
    read -r before conn0 < <(inf 'echo $(log_lines) $(connect_lines)')
    ins "INSTANCECTL_MANAGER=postfix instancectl status --json >/dev/null" ||
      say "instancectl status does not call every instance healthy"
    sleep 1
    read -r after conn1 < <(inf 'echo $(log_lines) $(connect_lines)')
    if [ $run = first ]; then
      row "mail-log lines, first instancectl status after the start" "$((after - before)) ($((conn1 - conn0)) smtpd connects)"
    else
      row "mail-log lines per instancectl status run after that" "$((after - before)) ($((conn1 - conn0)) smtpd connects)" "0" \
        "$(verdict "$after - $before == 0")"
    fi
  done
  say "postfix stop"
  postfix_stop_ms="$(inf "time_once postfix stop")" || die "postfix stop failed"
  ins "$scale_fns; none_serves $N $BASE_PORT" >&2 || die "postfix stop left masters running"
  row "postfix stop" "$postfix_stop_ms ms  1.000x"
}

# start_stop_rows LABEL ENV: one stop --all / start --all round, timed (starts from
# everything running).
start_stop_round() {
  local env=$1 stop start
  stop="$(inf "$env time_once instancectl stop --all")" || die "instancectl stop --all failed ($env)"
  ins "$scale_fns; none_serves $N $BASE_PORT" >&2 || die "stop --all left masters running ($env)"
  start="$(inf "$env time_once instancectl start --all")" || {
    tail -20 "$(var_file $LOGS/commands.log)" >&2
    die "instancectl start --all failed ($env)"
  }
  ins "$scale_fns; every_serves $N $BASE_PORT 30" >&2 || die "not every instance serves after start --all ($env)"
  echo "$stop $start"
}

start_rows() { # LABEL START_MS STOP_MS
  local r
  r="$(ratio "$2" "$postfix_start_ms")"
  row "$1 start --all" "$2 ms  ${r}x" "<= 0.33x" "$(verdict "$r <= 0.33")"
  row "$1 stop --all" "$3 ms  $(ratio "$3" "$postfix_stop_ms")x"
}

kill_rows() { # TAG LABEL [TARGET_MS] [TIMEOUT_S]
  [ "${SKIP_KILLS:-}" = 1 ] && return 0
  say "$2: $KILLS kills rotating over the instances"
  run_series "$1" rotate "$N" "$KILLS" "$GAP" "${4:-15}" 0 "$(getconf CLK_TCK)" "$BASE_PORT"
  recovery_rows "$1" "$2" "${3:-}"
}

scripts_manager() {
  local env="export INSTANCECTL_MANAGER=postfix;" t stop start
  say "instancectl --manager postfix: start --all"
  start="$(inf "$env time_once instancectl start --all")" || die "instancectl start --all failed (postfix)"
  ins "$scale_fns; every_serves $N $BASE_PORT 30" >&2 || die "not every instance serves (postfix manager)"
  read -r stop t < <(start_stop_round "$env")
  start_rows "instancectl --manager postfix" "$start" "$stop"
  row "  second round (start --all)" "$t ms  $(ratio "$t" "$postfix_start_ms")x"
  if [ "${SKIP_KILLS:-}" != 1 ]; then
    ins "$env setsid instancectl supervise --interval $INTERVAL >>$LOGS/supervise-postfix.log 2>&1 </dev/null &"
    sleep 3
    local sup
    sup="$(host_pid_of '^[^ ]*instancectl supervise')"
    [ -n "$sup" ] || die "supervise --manager postfix did not start: $(cat "$(var_file $LOGS/supervise-postfix.log)")"
    kill_rows postfix-rotate "postfix scripts + supervise (reconcile every $INTERVAL): recovery" "" 30
    kill "$sup"
    while kill -0 "$sup" 2>/dev/null; do sleep 0.1; done
  fi
  inf "$env time_once instancectl stop --all" >/dev/null || die "instancectl stop --all failed (postfix)"
}

# native_up: starts the supervisor and `start --all` (everything is stopped, with stop
# marks); sets sup (its host pid) and native_first_start (ms).
native_up() {
  say "native: supervisor (--interval $INTERVAL)"
  ins "rm -f /var/lib/instancectl/supervisor.sock
       setsid instancectl supervise --interval $INTERVAL >>$LOGS/supervise.log 2>&1 </dev/null &"
  ins 'for i in $(seq 200); do test -S /var/lib/instancectl/supervisor.sock && exit 0; sleep 0.1; done; exit 1' ||
    die "the supervisor did not come up: $(cat "$(var_file $LOGS/supervise.log)")"
  sup="$(host_pid_of '^[^ ]*instancectl supervise')"
  [ -n "$sup" ] || die "cannot find the supervisor's pid"
  native_first_start="$(inf "time_once instancectl start --all")" || {
    tail -20 "$(var_file $LOGS/commands.log)" >&2
    die "instancectl start --all failed (native)"
  }
  ins "$scale_fns; every_serves $N $BASE_PORT 30" >&2 || die "not every instance serves (native)"
  # The first start after the supervisor came up also ran postfix check for each.
  row "  first start --all after the supervisor started (checks each)" \
    "$native_first_start ms  $(ratio "$native_first_start" "$postfix_start_ms")x"
}

# native_rounds: START_RUNS rounds of stop --all / start --all under the supervisor;
# the last round's figures, and every round's in a note.
native_rounds() {
  local start stop i rounds=""
  for ((i = 1; i <= START_RUNS; i++)); do
    read -r stop start < <(start_stop_round "")
    rounds="$rounds $stop:$start"
  done
  start_rows "instancectl (native supervisor)" "$start" "$stop"
  row "  every round (stop:start ms)" "${rounds# }"
}

# change_all_main_cf ROUND: a parameter the running masters do not notice until a
# reload, changed in every instance's main.cf.
change_all_main_cf() {
  # A Postfix program that starts within a second or two of a main.cf change waits
  # before it reads the file (postsuper: 1.5 to 2 s right after `postconf -e`, 25 ms
  # three seconds later), and so would status's checks.
  ins "for k in \$(seq $N); do postconf -c /etc/postfix-b\$k -e bounce_queue_lifetime=$((4 + $1))d; done; sleep 3"
}

# native_idle: the supervisor left alone, IDLE_REPEATS windows of DURATION s, a row
# each (CPU, by thread, the whole sandbox, smtpd connects from its probes).
native_idle() {
  local i c0 c1 label
  for ((i = 1; i <= IDLE_REPEATS; i++)); do
    label="supervisor idle CPU, $N instances, --interval $INTERVAL"
    ((IDLE_REPEATS == 1)) || label="$label, window $i of $IDLE_REPEATS"
    say "native: idle for $DURATION s (window $i of $IDLE_REPEATS)"
    c0="$(inf connect_lines)"
    idle_measure "$sup" "$DURATION" "native-idle-$i"
    c1="$(inf connect_lines)"
    row "$label, ${idle_wall} s (load $(cut -d' ' -f1 /proc/loadavg))" "$idle_cpu % of one core" "< 0.5 %" "$(verdict "$idle_cpu < 0.5")"
    row "  by thread (ticks of $(getconf CLK_TCK)/s)" "$idle_by_thread"
    row "  whole sandbox CPU (Postfix answering probes too)" "$idle_total % of one core"
    row "  smtpd connect lines per minute (supervisor probes)" \
      "$(awk -v c=$((c1 - c0)) -v w="$idle_wall" 'BEGIN { printf "%.0f", c * 60 / w }')"
  done
  row "supervisor RSS (VmRSS) / peak (VmHWM)" "$(mb "$idle_rss") / $(mb "$idle_hwm")" "< 20 MB" "$(verdict "$idle_hwm < 20480")"
  row "supervisor threads (now; min-max while idle)" "$idle_threads; $idle_tmin-$idle_tmax"
}

# native_down: SIGTERM; the supervisor stops every instance in reverse order and exits.
native_down() {
  kill "$sup"
  while kill -0 "$sup" 2>/dev/null; do sleep 0.1; done
  ins "$scale_fns; none_serves $N $BASE_PORT" >&2 || die "the supervisor left masters running"
}

native_manager() {
  native_up
  native_rounds
  sleep 2
  ins "instancectl status >/dev/null" || {
    ins "instancectl status" >&2 || true
    die "instancectl status does not call every instance healthy (native)"
  }

  say "status and list: $RUNS runs each"
  local pm st list pl
  pm="$(inf "time_runs $RUNS postmulti -p status")"
  row "postmulti -p status" "$(cut -d' ' -f1 <<<"$pm") ms (sd $(cut -d' ' -f2 <<<"$pm"))  1.000x"
  local base
  base="$(cut -d' ' -f1 <<<"$pm")"
  # The first status after main.cf changed in every instance.
  local t times=() i
  for ((i = 1; i <= COLD_RUNS; i++)); do
    change_all_main_cf "$i"
    t="$(inf "time_once instancectl status --json" || true)"
    times+=("$t")
  done
  local cold
  cold="$(printf '%s\n' "${times[@]}" | awk '{ v[NR] = $1; s += $1 } END { m = s / NR; for (i = 1; i <= NR; i++) d += (v[i] - m) ^ 2;
    min = v[1]; max = v[1]; for (i = 1; i <= NR; i++) { if (v[i] < min) min = v[i]; if (v[i] > max) max = v[i] }
    printf "%.1f %.1f %.1f %.1f", m, sqrt(d / NR), min, max }')"
  timed_row "status --json, first after main.cf changed in all $N ($COLD_RUNS runs)" "$cold" "$base" 1.0
  timed_row "status --json --recheck (full postfix check of all, $RECHECK_RUNS runs)" \
    "$(inf "time_runs $RECHECK_RUNS instancectl status --json --recheck")" "$base"
  # Warm: right after the full checks, so that every result is remembered and fresh.
  # A full check comes due 7.5 to 10 minutes after the last one (a run that meets
  # one pays for it, see README), and on large N the phases before take that long.
  st="$(inf "time_runs $RUNS instancectl status --json")"
  timed_row "status --json, warm (checks remembered and fresh)" "$st" "$base" 0.03 150
  timed_row "status --json --no-check" "$(inf "time_runs $RUNS instancectl status --json --no-check")" "$base"
  # Every full check due at once, as after a quiet hour: one round of them runs, the
  # others show their last result and wait for later runs.
  local age_checks
  age_checks='perl -pi -e '"'"'s/"(checked_at|full_checked_at)": (\d+)/"\"$1\": ".($2 - 7200)/ge'"'"' /var/lib/instancectl/health/*.check.json'
  ins "$age_checks"
  t="$(inf "time_once instancectl status --json" || true)"
  timed_row "status --json after every full check came due (one run)" "$t 0 $t $t" "$base" 1.0
  # Every instance healthy, and the check results fresh, again.
  ins "instancectl status >/dev/null" || say "status after the configuration changes is not healthy"
  pl="$(inf "time_runs $RUNS postmulti -l")"
  list="$(inf "time_runs $RUNS instancectl list --json")"
  row "postmulti -l" "$(cut -d' ' -f1 <<<"$pl") ms (sd $(cut -d' ' -f2 <<<"$pl"))  1.000x"
  timed_row "list --json" "$list" "$(cut -d' ' -f1 <<<"$pl")"

  native_idle
  kill_rows native-rotate "native recovery, rotating over $N instances" 1000
  [ "${SKIP_KILLS:-}" = 1 ] || serving_row "$N" "$BASE_PORT" "after the kills (native)"
  native_down
}

# START_ONLY=1: `postfix start`/`stop` against `start/stop --all` with Postfix's
# scripts and with the native supervisor (START_RUNS rounds), in that order, on the
# same instances.
start_only() {
  postfix_wrapper
  SKIP_KILLS=1 scripts_manager
  native_up
  native_rounds
  native_down
}

# IDLE_ONLY=1: the native supervisor on the cached instances, `start --all`, what
# precedes the idle phase of a full run (main.cf changed in every instance, a status
# run, a --recheck run, a warm one), then the idle windows.
idle_only() {
  postfix_start_ms=0
  native_up
  if [ "${IDLE_PRELUDE:-status}" = status ]; then
    say "as before the idle phase of a full run: main.cf changed in all, status, --recheck, status"
    change_all_main_cf 1
    ins "instancectl status --json >/dev/null; instancectl status --json --recheck >/dev/null
         instancectl status >/dev/null" || say "status does not call every instance healthy"
  fi
  native_idle
  native_down
}

launchd_manager() {
  local emu
  if ! emu="$(launchd_emulator_dir)"; then
    row "launchd emulator" "not in this build: skipped"
    return 0
  fi
  say "launchd emulator: start --all"
  sb_path="$emu:$base_path"
  local env="export INSTANCECTL_MANAGER=launchd INSTANCECTL_LAUNCHD_DIR=$DAEMONS LAUNCHD_EMULATOR_DIR=$EMU_STATE;"
  ins "mkdir -p $DAEMONS $EMU_STATE && chmod 755 $DAEMONS
       setsid launchd-emulator --state-dir $EMU_STATE --daemons-dir $DAEMONS \
         </dev/null >>$LOGS/launchd-emulator.log 2>&1 &"
  ins "for i in \$(seq 200); do test -S $EMU_STATE/launchd.sock && exit 0; sleep 0.1; done; exit 1" ||
    die "the emulated launchd did not come up: $(cat "$(var_file $LOGS/launchd-emulator.log)")"
  local start stop
  start="$(inf "$env time_once instancectl start --all")" || {
    tail -20 "$(var_file $LOGS/commands.log)" >&2
    die "instancectl start --all failed (launchd)"
  }
  ins "$scale_fns; every_serves $N $BASE_PORT 30" >&2 || die "not every instance serves (launchd)"
  kill_rows launchd-rotate "launchd emulator recovery, rotating over $N instances" "" 30
  stop="$(inf "$env time_once instancectl stop --all")" || die "instancectl stop --all failed (launchd)"
  start_rows "instancectl (launchd emulator, jobs written)" "$start" "$stop"
}

creation_rows() {
  local dir=$1 from=$2
  # shellcheck disable=SC1090,SC1091
  . "$dir/info"
  local r hand="first and last quarter" apply="middle half"
  # Caches made before the A B B A order: the first half by hand, the second by apply.
  if [ "${split:-}" != abba ]; then
    hand="first half" apply="second half"
  fi
  r="$(ratio "$apply_ms_per_instance" "$create_ms_per_instance")"
  row "create by hand, per instance ($create_count: $hand)$from" "$create_ms_per_instance ms"
  row "apply -f, per new instance ($apply_count in one run: $apply)$from" "$apply_ms_per_instance ms  ${r}x" "<= 1.0x" "$(verdict "$r <= 1.0")"
}

main() {
  bench_start "$0"
  local dir from=""
  dir="$(cache_dir)"
  if [ "${REBUILD:-}" = 1 ] || [ ! -f "$dir/info" ]; then
    create_sandbox "$dir"
  else
    from=" [cached: $(sed -n 's/^created=//p' "$dir/info"), $(sed -n 's/^commit=//p' "$dir/info"), load $(sed -n 's/^load=//p' "$dir/info")]"
    say "using the instances created $(sed -n 's/^created=//p' "$dir/info") ($dir; REBUILD=1 creates them again)"
  fi
  creation_rows "$dir" "$from"
  if [ "${CREATE_ONLY:-}" = 1 ]; then
    print_summary "instancectl scale benchmark: N=$N instances created in $dir (CREATE_ONLY=1: nothing measured)"
    return 0
  fi
  sb_path="$base_path"
  sandbox_up "$dir"
  # The cache keeps no remembered checks, and instances instancectl made have the one
  # their create ran (a start uses it, of any age: README, "The check before a
  # start"). One full check of every instance, untimed, puts them back.
  say "status --recheck: every instance's full check, remembered as after its create"
  ins "instancectl status --recheck >/dev/null 2>&1" || true
  if [ "${IDLE_ONLY:-}" = 1 ]; then
    idle_only
    sandbox_down
    print_summary "instancectl scale benchmark, IDLE_ONLY: N=$N instances, $IDLE_REPEATS idle windows of $DURATION s"
    return 0
  fi
  if [ "${START_ONLY:-}" = 1 ]; then
    start_only
    sandbox_down
    print_summary "instancectl scale benchmark, START_ONLY: N=$N instances (+ the primary), $START_RUNS native rounds"
    return 0
  fi
  postfix_wrapper
  scripts_manager
  native_manager
  [ "${SKIP_LAUNCHD:-}" = 1 ] || launchd_manager
  sandbox_down
  print_summary "instancectl scale benchmark: N=$N instances (+ the primary), status/list $RUNS runs, idle $DURATION s, $KILLS kills per series"
}

# One line: bash has read the whole file before main runs, so editing the file cannot
# disturb a run.
main "$@"; exit
