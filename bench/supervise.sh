#!/usr/bin/env bash
# bench/supervise.sh: what the supervisor costs and how fast it brings a master back
# (issue 5, item 7).
#
# Everything runs in throwaway sandboxes made the way tests/e2e/common does it: private
# mount, network, pid and UTS namespaces, overlays on /etc and /var (upper and work
# directories outside the overlaid trees), a private tmpfs on /tmp, loopback up.
# Commands run inside through nsenter. The host's own Postfix is never touched, and
# killing a sandbox's pid 1 ends everything in it: the script does so on exit, on
# failure and on Ctrl-C.
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
export LC_ALL=C # $EPOCHREALTIME with a dot

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

N="${N:-20}"
DURATION="${DURATION:-60}"
INTERVAL="${INTERVAL:-1s}"
SETTLE="${SETTLE:-5}"
KILLS="${KILLS:-20}"
GAP="${GAP:-1}"
THROTTLED_KILLS="${THROTTLED_KILLS:-5}"
# Where the sandboxed launchd keeps its plists and state (/var is overlaid).
DAEMONS=/var/Library/LaunchDaemons
EMU_STATE=/var/db/launchd-emulator
LOGS=/var/log/instancectl-bench

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------
# Sandboxes

sb_root=""   # the current sandbox's directory on the host
sb_holder="" # unshare, on the host
sb_init=""   # the sandbox's pid 1, as the host sees it
sb_path=""   # PATH inside
work=""      # this run's directory (raw timings, copies of the logs)

sandbox_up() {
  sb_root="$(mktemp -d "$work/sandbox.XXXXXX")"
  mkdir -p "$sb_root"/{etc,var}/{upper,work}
  local r="$sb_root"
  # fd 3 is opened before /tmp is covered by the private tmpfs, so "ready" reaches
  # the host even when the work directory is under /tmp.
  # --kill-child: should this script die before it knows the sandbox's pid 1, ending
  # unshare still takes the sandbox with it.
  unshare -m -n -p -u -f --mount-proc --kill-child bash -c "
exec 3>>'$r/ready'
set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=/etc,upperdir='$r/etc/upper',workdir='$r/etc/work' /etc
mount -t overlay overlay -o lowerdir=/var,upperdir='$r/var/upper',workdir='$r/var/work' /var
mount -t tmpfs tmpfs /tmp
ip link set lo up
hostname bench.example.org
echo ready >&3
exec 3>&-
set +e
while :; do sleep 1 & wait \$!; done" </dev/null >"$r/sandbox.log" 2>&1 &
  sb_holder=$!
  local i
  for i in $(seq 200); do
    [ -s "$r/ready" ] && break
    kill -0 "$sb_holder" 2>/dev/null || die "the sandbox did not come up: $(cat "$r/sandbox.log")"
    sleep 0.05
  done
  [ -s "$r/ready" ] || die "the sandbox did not come up in 10 s: $(cat "$r/sandbox.log")"
  sb_init="$(tr -d ' \n' <"/proc/$sb_holder/task/$sb_holder/children")"
  [ -n "$sb_init" ] || die "no pid 1 in the sandbox"
  ins "mkdir -p $LOGS"
}

# Ends the sandbox, keeps its logs in $work/logs, removes its files.
sandbox_down() {
  [ -n "$sb_holder" ] || return 0
  # Killing pid 1 of a pid namespace kills everything in it, and its mounts go too.
  [ -z "$sb_init" ] || kill -9 "$sb_init" 2>/dev/null || true
  kill "$sb_holder" 2>/dev/null || true
  wait "$sb_holder" 2>/dev/null || true
  mkdir -p "$work/logs"
  cp -r "$(var_file $LOGS)"/. "$work/logs/" 2>/dev/null || true
  cp "$(var_file /var/log)"/*.log "$work/logs/" 2>/dev/null || true # launchd jobs' logs
  rm -rf "$sb_root"
  sb_init="" sb_holder="" sb_root=""
}

# Runs a bash script inside the current sandbox.
ins() {
  nsenter -t "$sb_init" -m -n -p -u -- \
    env PATH="$sb_path" LC_ALL=C NO_COLOR=1 bash -c "$1"
}

# A file of the sandbox, read from the host (overlay upper dir; /var only).
var_file() { echo "$sb_root/var/upper/${1#/var/}"; }

# The host pid of the sandbox's process whose command line matches $1.
host_pid_of() {
  pgrep --ns "$sb_init" --nslist pid -f "$1" | head -1 || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  sandbox_down
  if [ -n "$work" ]; then
    # Kept after a failure (not after Ctrl-C): the logs tell what went wrong.
    if [ "${KEEP:-}" = 1 ] || { [ "$status" -ne 0 ] && [ "$status" -ne 130 ] && [ "$status" -ne 143 ]; }; then
      say "logs and raw timings kept in $work"
    else
      rm -rf "$work"
    fi
  fi
  exit "$status"
}

# ---------------------------------------------------------------------------------
# Inside the sandbox (passed in with `declare -f`)

# Whether 127.0.0.1:$1 greets with "220 " (bash builtins only: no fork).
banner() {
  local fd line rc
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  read -r -t 2 line <&"$fd" 2>/dev/null
  rc=$?
  printf 'QUIT\r\n' >&"$fd" 2>/dev/null
  exec {fd}>&-
  [ "$rc" -eq 0 ] && [[ $line == "220 "* ]]
}

# kill_series MODE N KILLS GAP TIMEOUT_S SKIP HZ: kill -9 a master and time until a new
# master pid lives and its listener greets. MODE rotate: postfix-b1, b2, ... in turn;
# same: postfix-b1 every time. The first SKIP kills are not reported. Prints
# "ok I NAME PID_MS BANNER_MS AGE_MS" per kill (AGE: how long the killed master had
# run); "timeout I NAME" or "down I NAME" ends the series. The polling loop uses
# only builtins, so it neither forks nor competes much for the CPU.
kill_series() {
  local mode=$1 n=$2 kills=$3 gap=$4 limit=$(($5 * 1000000)) skip=$6 hz=$7
  local fifo=/tmp/bench-nap.$$ nap_fd i k name port pidfile old new t0 now tpid stat up age
  mkfifo "$fifo"
  exec {nap_fd}<>"$fifo"
  rm -f "$fifo"
  for ((i = 1; i <= kills + skip; i++)); do
    k=1
    [ "$mode" = rotate ] && k=$(((i - 1) % n + 1))
    name=postfix-b$k port=$((3000 + k)) pidfile=/var/spool/postfix-b$k/pid/master.pid
    old=
    read -r old <"$pidfile" || true # padded with spaces: read strips them
    if [ -z "$old" ] || ! kill -0 "$old" 2>/dev/null || ! banner "$port"; then
      echo "down $i $name (master.pid: '$old'): not serving before the kill; series ended"
      return 0
    fi
    # Its age: uptime (centiseconds) minus its start time (field 22 of stat, ticks).
    read -r stat <"/proc/$old/stat"
    read -r up _ </proc/uptime
    stat=${stat##*) }
    set -- $stat
    age=$((${up/./} * 10 - ${20} * 1000 / hz))
    t0=${EPOCHREALTIME/./}
    kill -9 "$old"
    tpid=
    while :; do
      new=
      read -r new <"$pidfile" 2>/dev/null || true
      now=${EPOCHREALTIME/./}
      if [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; then
        [ -n "$tpid" ] || tpid=$now
        if banner "$port"; then
          now=${EPOCHREALTIME/./}
          ((i <= skip)) || echo "ok $i $name $(((tpid - t0) / 1000)) $(((now - t0) / 1000)) $age"
          break
        fi
      fi
      if ((now - t0 > limit)); then
        echo "timeout $i $name"
        return 0 # the series ends: in "same" mode there is nothing left to kill
      fi
      read -r -t 0.005 -u "$nap_fd" _ || true
    done
    read -r -t "$gap" -u "$nap_fd" _ || true
  done
}

# Every instance has exactly one master, and it greets.
check_serving() {
  local n=$1 k bad=0 count
  for ((k = 1; k <= n; k++)); do
    count=$(pgrep -fc "/master -c /etc/postfix-b$k( |\$)" || true)
    if [ "$count" != 1 ]; then
      echo "postfix-b$k: $count masters"
      bad=1
    elif ! banner $((3000 + k)); then
      echo "postfix-b$k: no greeting on 127.0.0.1:$((3000 + k))"
      bad=1
    fi
  done
  return $bad
}

# SIGPIPE ignored: a QUIT written to a connection the server has just reset must not
# kill the shell.
inside_fns="trap '' PIPE; $(declare -f banner kill_series check_serving)"

# ---------------------------------------------------------------------------------
# Measuring from the host

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in parentheses may contain spaces).
cpu_ticks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

status_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# Every process of the sandbox with its utime+stime+cutime+cstime (ticks).
sandbox_ticks() {
  local ns p stat
  ns="$(readlink "/proc/$sb_init/ns/pid")"
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
    stat="$(cat "$p/stat" 2>/dev/null)" || continue
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    echo "${p#/proc/} $((${12} + ${13} + ${14} + ${15}))"
  done
}

# median, p90 (nearest rank) and max of the numbers on stdin: "MEDIAN P90 MAX COUNT".
stats() {
  sort -n | awk '{ v[NR] = $1 }
    END {
      if (NR == 0) { print "- - - 0"; exit }
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      r = int(0.9 * NR); if (r < 0.9 * NR) r++
      printf "%d %d %d %d\n", med, v[r], v[NR], NR
    }'
}

# Runs a kill series in the sandbox; the raw lines go to $work/$1.txt.
run_series() {
  local tag=$1
  shift
  ins "$inside_fns; kill_series $*" >"$work/$tag.txt" || {
    cat "$work/$tag.txt" >&2
    die "kill series $tag could not run"
  }
}

# "median p90 max count" of column $2 (4: until the new pid, 5: until the banner).
series_stats() { awk -v c="$2" '$1 == "ok" { print $c }' "$work/$1.txt" | stats; }
series_failures() { grep -cE '^(timeout|down) ' "$work/$1.txt" || true; }

rows=()   # the summary: "metric|value|target|verdict"
row() { rows+=("$1|$2|${3:-}|${4:-}"); }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }

recovery_rows() { # TAG LABEL TARGET_MS(or empty)
  local tag=$1 label=$2 target=${3:-} med p90 max cnt pmed failed
  read -r med p90 max cnt < <(series_stats "$tag" 5)
  read -r pmed _ _ _ < <(series_stats "$tag" 4)
  failed=$(series_failures "$tag")
  [ "$failed" -eq 0 ] || grep -E '^(timeout|down) ' "$work/$tag.txt" >&2
  local value="median $med  p90 $p90  max $max ms ($cnt ok, $failed failed)"
  if [ -n "$target" ] && [ "$cnt" -gt 0 ]; then
    row "$label" "$value" "median < $target ms" "$(verdict "$med < $target && $failed == 0")"
  elif [ -n "$target" ]; then
    row "$label" "$value" "median < $target ms" FAIL
  else
    row "$label" "$value"
  fi
  row "  of which until the new master's pid" "median $pmed ms"
  row "  killed masters had run" "$(awk '$1 == "ok" { print $6 }' "$work/$tag.txt" |
    sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f to %.1f s", v[1] / 1000, v[NR] / 1000 }')"
}

# A summary row: does every instance have one master that greets?
serving_row() {
  if ins "$inside_fns; check_serving $N" >&2; then
    row "every instance serving, one master each, $1" yes "" PASS
  else
    row "every instance serving, one master each, $1" "no (see above)" "" FAIL
  fi
}

# ---------------------------------------------------------------------------------
# Native manager

create_instances() { # N [the command that runs instancectl]
  local n=$1 ctl=${2:-instancectl} k t0
  t0=$SECONDS
  for ((k = 1; k <= n; k++)); do
    ins "$ctl create postfix-b$k --listen 127.0.0.1:$((3000 + k))" \
      >"$work/create.log" 2>&1 || {
      cat "$work/create.log" >&2
      die "instancectl create postfix-b$k failed"
    }
  done
  say "created $n instances in $((SECONDS - t0)) s"
}

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
  ins "$inside_fns; check_serving $N" >&2 || die "not every instance serves after the settle time"
  kill -0 "$sup" || die "the supervisor died: $(cat "$(var_file $LOGS/supervise.log)")"

  say "native: idle for $DURATION s"
  local hz t0 t1 c0 c1 w0 w1 thr tmin=999999 tmax=0 s
  hz="$(getconf CLK_TCK)"
  sandbox_ticks >"$work/ticks0"
  c0="$(cpu_ticks "$sup")" w0=${EPOCHREALTIME/./}
  t0=$SECONDS
  while ((SECONDS - t0 < DURATION)); do
    thr="$(status_field "$sup" Threads)"
    ((thr < tmin)) && tmin=$thr
    ((thr > tmax)) && tmax=$thr
    sleep 1
  done
  c1="$(cpu_ticks "$sup")" w1=${EPOCHREALTIME/./}
  sandbox_ticks >"$work/ticks1"
  local wall cpu rss hwm threads total
  wall="$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')"
  cpu="$(awk -v c=$((c1 - c0)) -v hz="$hz" -v w="$wall" 'BEGIN { printf "%.2f", c / hz / w * 100 }')"
  # Whole sandbox: processes alive at the end, minus what they had at the start.
  total="$(awk -v hz="$hz" -v w="$wall" 'NR == FNR { t0[$1] = $2; next }
    { d += $2 - ($1 in t0 ? t0[$1] : 0) } END { printf "%.2f", d / hz / w * 100 }' \
    "$work/ticks0" "$work/ticks1")"
  rss="$(status_field "$sup" VmRSS)" hwm="$(status_field "$sup" VmHWM)"
  threads="$(status_field "$sup" Threads)"
  say "native: supervisor used $((c1 - c0)) ticks ($hz/s) in $wall s: $cpu % of one core"

  row "supervisor idle CPU, $N instances, --interval $INTERVAL, ${wall} s" "$cpu % of one core" "< 1 %" "$(verdict "$cpu < 1")"
  row "supervisor RSS (VmRSS) after the idle period" "$(mb "$rss")" "< 20 MB" "$(verdict "$rss < 20480")"
  row "supervisor peak RSS (VmHWM)" "$(mb "$hwm")" "< 20 MB" "$(verdict "$hwm < 20480")"
  row "supervisor threads (now; min-max while idle)" "$threads; $tmin-$tmax"
  row "whole sandbox CPU while idle (Postfix answering probes too)" "$total % of one core"

  say "native: $KILLS kills rotating over the instances"
  run_series native-rotate rotate "$N" "$KILLS" "$GAP" 15 0 "$hz"
  say "native: $KILLS kills of postfix-b1, $GAP s after each recovery"
  run_series native-same same "$N" "$KILLS" "$GAP" 15 0 "$hz"
  recovery_rows native-rotate "native recovery, rotating over $N instances" 1000
  recovery_rows native-same "native recovery, same master again" 1000
  serving_row "after the kills (native)"
  local log exits
  log="$(var_file $LOGS/supervise.log)"
  exits=$(grep -c 'killed by SIGKILL' "$log" || true)
  row "supervisor: exits logged (killed by SIGKILL) / kills" "$exits / $((2 * KILLS))"
  row "supervisor RSS / peak after the kills" "$(mb "$(status_field "$sup" VmRSS)") / $(mb "$(status_field "$sup" VmHWM)")"
  sandbox_down
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

# ---------------------------------------------------------------------------------
# launchd emulator

launchd() {
  if ! "$bin" --manager launchd --launchd-dir /nonexistent --help >/dev/null 2>&1; then
    say "launchd: not in this build"
    row "launchd emulator" "launchd: not in this build"
    return 0
  fi
  local emu="${EMULATOR_BIN_DIR:-$(dirname "$bin")}"
  if [ ! -x "$emu/launchd-emulator" ] || [ ! -x "$emu/launchctl" ]; then
    say "launchd: launchd-emulator and launchctl not found in $emu (EMULATOR_BIN_DIR)"
    row "launchd emulator" "not found in $emu: skipped"
    return 0
  fi
  say "launchd: sandbox, emulated launchd, $N instances"
  sb_path="$(realpath "$emu"):$sb_path"
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
  ins "$inside_fns; check_serving $N" >&2 || die "not every instance serves under launchd"

  local plist throttle note=""
  plist="$(ins "ls $DAEMONS/*.postfix-b1.plist | head -1")"
  throttle="$(ins "cat '$plist'" | tr -d '\n\t ' |
    sed -n 's|.*<key>ThrottleInterval</key><integer>\([0-9]*\)</integer>.*|\1|p')"
  if [ -z "$throttle" ]; then
    throttle=10 note=" (not in the plist: launchd's default)"
  fi
  row "launchd ThrottleInterval ($(basename "$plist"))" "$throttle s$note"

  say "launchd: $KILLS kills rotating over the instances"
  run_series launchd-rotate rotate "$N" "$KILLS" "$GAP" $((throttle + 15)) 0 "$(getconf CLK_TCK)"
  say "launchd: $THROTTLED_KILLS kills of postfix-b1, $GAP s after each recovery (throttled)"
  run_series launchd-same same "$N" "$THROTTLED_KILLS" "$GAP" $((throttle + 15)) 1 "$(getconf CLK_TCK)"
  recovery_rows launchd-rotate "launchd recovery, rotating over $N instances"
  recovery_rows launchd-same "launchd recovery, same master again (throttled)"
  serving_row "after the kills (launchd)"
  sandbox_down
}

# ---------------------------------------------------------------------------------

summary() {
  echo
  echo "instancectl supervise benchmark: N=$N, --interval $INTERVAL, idle $DURATION s, $KILLS kills per series, GAP $GAP s"
  echo "$bin; Postfix $(postconf -h mail_version 2>/dev/null); $(nproc) CPU(s); $(uname -sr)"
  echo "load average at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on the host slows creates and recoveries)"
  echo
  {
    echo "metric|value|target|verdict"
    printf '%s\n' "${rows[@]}"
  } | column -t -s '|' -o '   '
}

main() {
  [ "$(id -u)" -eq 0 ] || { echo "run this as root (sudo bash $0): it needs namespaces and overlay mounts" >&2; exit 1; }
  local tool
  for tool in unshare nsenter ip pgrep postmulti postconf getconf column; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (bash scripts/install-deps.sh)"
  done

  bin="${INSTANCECTL:-}"
  if [ -z "$bin" ]; then
    command -v cargo >/dev/null 2>&1 ||
      die "cargo not found (under sudo: sudo env PATH=\"\$PATH\" bash $0), or set INSTANCECTL"
    say "building: cargo build --release --workspace"
    (cd "$repo" && cargo build --release --workspace --quiet)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/instancectl"
  fi
  [ -x "$bin" ] || die "no instancectl at $bin"
  bin="$(realpath "$bin")"

  work="$(mktemp -d "${TMPDIR:-/tmp}/instancectl-bench.XXXXXX")"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  base_path="$(dirname "$bin"):/usr/sbin:/usr/bin:/sbin:/bin"
  load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

  sb_path="$base_path"
  [ "${SKIP_NATIVE:-}" = 1 ] || native
  sb_path="$base_path"
  [ "${SKIP_LAUNCHD:-}" = 1 ] || launchd
  summary
}

# One line: bash has read the whole file before main runs, so editing the file cannot
# disturb a run.
main "$@"; exit
