#!/usr/bin/env bash
# bench/supervise.sh: what the supervisor costs and how fast it brings a master back
# (issue 5, item 7).
#
# Everything runs in throwaway sandboxes (bench/lib.sh, shared with bench/scale.sh,
# which measures the same and more with many instances side by side with Postfix's own
# commands): the host's own Postfix is never touched.
#
# What it measures:
#   1. Idle cost of `instancectl supervise --interval 1s` with N running instances
#      (postfix-b1..bN, plain role, 127.0.0.1:3001..), after SETTLE seconds:
#      CPU = (utime+stime) from /proc/PID/stat before and after DURATION seconds,
#      divided by the wall time, in % of one core; VmRSS and VmHWM (peak) from
#      /proc/PID/status at the end; its threads (sampled every second).
#      Also, for scale, the CPU of the whole sandbox (Postfix answering the probes).
#   2. Kill-to-banner recovery with the native manager: `kill -9` a master (pid from
#      its master.pid), then the time until a NEW master pid lives and its listener
#      greets with "220 ". KILLS kills, GAP seconds after each recovery, in two
#      series: rotating over the instances (each kill hits a master that has served
#      for a while), and the same instance again and again (its master has served
#      about GAP seconds). Median, p90 and max in ms; also the time until the new
#      master's pid appeared, and how long the killed masters had run.
#   3. The same under the launchd emulator (workspace crate launchd-emulator/), when
#      this build has the launchd manager: the emulator's daemon runs in its own
#      sandbox, its `launchctl` first in PATH, instances created with
#      `--manager launchd --launchd-dir DIR`. launchd respawns a KeepAlive job at once
#      when it ran longer than ThrottleInterval and otherwise ThrottleInterval after
#      its last start, so there are two series again: rotating (old masters, given
#      enough instances) and the same master killed GAP seconds after it came back
#      (throttled).
#
# Targets (issue 5): median native recovery < 1 s, idle CPU < 1 % of one core,
# RSS < 20 MB. The exit status is non-zero only when the benchmark itself could not
# run, never for a missed target.
#
# Run (root: namespaces and overlay mounts; Postfix installed, see scripts/install-deps.sh):
#
#   sudo bash bench/supervise.sh
#   sudo env N=50 bash bench/supervise.sh
#   sudo env INSTANCECTL=target/release/instancectl KEEP=1 bash bench/supervise.sh
#
# With N=20 it takes about 10 minutes, mostly the creates (7 to 8 s each on a 2-CPU VM).
#
# Environment:
#   N=20               instances
#   DURATION=60        seconds of idle measurement
#   INTERVAL=1s        supervise --interval
#   SETTLE=5           seconds between the last create and the idle measurement
#   KILLS=20           kills per recovery series
#   GAP=1              seconds between a recovery and the next kill (below 1 s, the
#                      supervisor sees a master die young and backs off, by design)
#   THROTTLED_KILLS=5  launchd: kills of a master that came back GAP s before
#   INSTANCECTL=PATH   use this binary instead of `cargo build --release --workspace`
#   EMULATOR_BIN_DIR=DIR  where launchd-emulator and launchctl are (default: next to
#                      instancectl)
#   SKIP_NATIVE=1      only the launchd part;  SKIP_LAUNCHD=1  only the native part
#   KEEP=1             keep the work directory (logs, raw timings) afterwards; it is
#                      also kept when the script fails
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

N="${N:-20}"
DURATION="${DURATION:-60}"
INTERVAL="${INTERVAL:-1s}"
SETTLE="${SETTLE:-5}"
KILLS="${KILLS:-20}"
GAP="${GAP:-1}"
THROTTLED_KILLS="${THROTTLED_KILLS:-5}"
# Instance k listens on 127.0.0.1:$((BASE_PORT + k)).
BASE_PORT=3000
# Where the sandboxed launchd keeps its plists and state (/var is overlaid).
DAEMONS=/var/Library/LaunchDaemons
EMU_STATE=/var/db/launchd-emulator

create_instances() { # N [the command that runs instancectl]
  local n=$1 ctl=${2:-instancectl} k t0
  t0=$SECONDS
  for ((k = 1; k <= n; k++)); do
    ins "$ctl create postfix-b$k --listen 127.0.0.1:$((BASE_PORT + k))" \
      >"$work/create.log" 2>&1 || {
      cat "$work/create.log" >&2
      die "instancectl create postfix-b$k failed"
    }
  done
  say "created $n instances in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------
# Native manager

native() {
  say "native: sandbox, supervisor (--interval $INTERVAL), $N instances"
  sandbox_up
  ins "rm -f /var/lib/instancectl/supervisor.sock
       setsid instancectl supervise --interval $INTERVAL >>$LOGS/supervise.log 2>&1 </dev/null &"
  ins 'for i in $(seq 200); do test -S /var/lib/instancectl/supervisor.sock && exit 0; sleep 0.1; done; exit 1' ||
    die "the supervisor did not come up: $(cat "$(var_file $LOGS/supervise.log)")"
  local sup
  sup="$(host_pid_of '^[^ ]*instancectl supervise')"
  [ -n "$sup" ] || die "cannot find the supervisor's pid"
  ins "instancectl init --null-client" >"$work/init.log" 2>&1 || {
    cat "$work/init.log" >&2
    die "instancectl init failed"
  }
  create_instances "$N"
  sleep "$SETTLE"
  ins "$inside_fns; check_serving $N $BASE_PORT" >&2 || die "not every instance serves after the settle time"
  kill -0 "$sup" || die "the supervisor died: $(cat "$(var_file $LOGS/supervise.log)")"

  say "native: idle for $DURATION s"
  idle_measure "$sup" "$DURATION" native-idle
  row "supervisor idle CPU, $N instances, --interval $INTERVAL, ${idle_wall} s" "$idle_cpu % of one core" "< 1 %" "$(verdict "$idle_cpu < 1")"
  row "  by thread (ticks of $(getconf CLK_TCK)/s)" "$idle_by_thread"
  row "supervisor RSS (VmRSS) after the idle period" "$(mb "$idle_rss")" "< 20 MB" "$(verdict "$idle_rss < 20480")"
  row "supervisor peak RSS (VmHWM)" "$(mb "$idle_hwm")" "< 20 MB" "$(verdict "$idle_hwm < 20480")"
  row "supervisor threads (now; min-max while idle)" "$idle_threads; $idle_tmin-$idle_tmax"
  row "whole sandbox CPU while idle (Postfix answering probes too)" "$idle_total % of one core"

  local hz
  hz="$(getconf CLK_TCK)"
  say "native: $KILLS kills rotating over the instances"
  run_series native-rotate rotate "$N" "$KILLS" "$GAP" 15 0 "$hz" "$BASE_PORT"
  say "native: $KILLS kills of postfix-b1, $GAP s after each recovery"
  run_series native-same same "$N" "$KILLS" "$GAP" 15 0 "$hz" "$BASE_PORT"
  recovery_rows native-rotate "native recovery, rotating over $N instances" 1000
  recovery_rows native-same "native recovery, same master again" 1000
  serving_row "$N" "$BASE_PORT" "after the kills (native)"
  local log exits
  log="$(var_file $LOGS/supervise.log)"
  exits=$(grep -c 'killed by SIGKILL' "$log" || true)
  row "supervisor: exits logged (killed by SIGKILL) / kills" "$exits / $((2 * KILLS))"
  row "supervisor RSS / peak after the kills" "$(mb "$(status_field "$sup" VmRSS)") / $(mb "$(status_field "$sup" VmHWM)")"
  sandbox_down
}

# ---------------------------------------------------------------------------------
# launchd emulator

launchd() {
  local emu
  if ! emu="$(launchd_emulator_dir)"; then
    say "launchd: no launchd manager or emulator in this build (EMULATOR_BIN_DIR)"
    row "launchd emulator" "not in this build: skipped"
    return 0
  fi
  say "launchd: sandbox, emulated launchd, $N instances"
  sb_path="$emu:$sb_path"
  sandbox_up
  local env="export INSTANCECTL_MANAGER=launchd INSTANCECTL_LAUNCHD_DIR=$DAEMONS LAUNCHD_EMULATOR_DIR=$EMU_STATE;"
  ins "mkdir -p $DAEMONS $EMU_STATE && chmod 755 $DAEMONS
       setsid launchd-emulator --state-dir $EMU_STATE --daemons-dir $DAEMONS \
         </dev/null >>$LOGS/launchd-emulator.log 2>&1 &"
  ins "for i in \$(seq 200); do test -S $EMU_STATE/launchd.sock && exit 0; sleep 0.1; done; exit 1" ||
    die "the emulated launchd did not come up: $(cat "$(var_file $LOGS/launchd-emulator.log)")"
  ins "$env instancectl init --null-client" >"$work/init.log" 2>&1 || {
    cat "$work/init.log" >&2
    die "instancectl init failed"
  }
  create_instances "$N" "$env instancectl --manager launchd --launchd-dir $DAEMONS"
  sleep "$SETTLE"
  ins "$inside_fns; check_serving $N $BASE_PORT" >&2 || die "not every instance serves under launchd"

  local plist throttle note=""
  plist="$(ins "ls $DAEMONS/*.postfix-b1.plist | head -1")"
  throttle="$(ins "cat '$plist'" | tr -d '\n\t ' |
    sed -n 's|.*<key>ThrottleInterval</key><integer>\([0-9]*\)</integer>.*|\1|p')"
  if [ -z "$throttle" ]; then
    throttle=10 note=" (not in the plist: launchd's default)"
  fi
  row "launchd ThrottleInterval ($(basename "$plist"))" "$throttle s$note"

  local hz
  hz="$(getconf CLK_TCK)"
  say "launchd: $KILLS kills rotating over the instances"
  run_series launchd-rotate rotate "$N" "$KILLS" "$GAP" $((throttle + 15)) 0 "$hz" "$BASE_PORT"
  say "launchd: $THROTTLED_KILLS kills of postfix-b1, $GAP s after each recovery (throttled)"
  run_series launchd-same same "$N" "$THROTTLED_KILLS" "$GAP" $((throttle + 15)) 1 "$hz" "$BASE_PORT"
  recovery_rows launchd-rotate "launchd recovery, rotating over $N instances"
  recovery_rows launchd-same "launchd recovery, same master again (throttled)"
  serving_row "$N" "$BASE_PORT" "after the kills (launchd)"
  sandbox_down
}

# ---------------------------------------------------------------------------------

main() {
  bench_start "$0"
  sb_path="$base_path"
  [ "${SKIP_NATIVE:-}" = 1 ] || native
  sb_path="$base_path"
  [ "${SKIP_LAUNCHD:-}" = 1 ] || launchd
  print_summary "instancectl supervise benchmark: N=$N, --interval $INTERVAL, idle $DURATION s, $KILLS kills per series, GAP $GAP s"
}

# One line: bash has read the whole file before main runs, so editing the file cannot
# disturb a run.
main "$@"; exit
