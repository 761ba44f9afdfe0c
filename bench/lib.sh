# bench/lib.sh: what the benchmarks share (sourced by bench/scale.sh and
# bench/supervise.sh, never run by itself): throwaway sandboxes made the way
# tests/e2e/common does it, running commands inside them, timing, CPU and memory of a
# process, kill-to-banner series, and the summary table with PASS/FAIL per target.
#
# A sandbox: private mount, network, pid and UTS namespaces, overlays on /etc and
# /var (upper and work directories outside the overlaid trees), a private tmpfs on
# /tmp, loopback up. Commands run inside through nsenter. The host's own Postfix is
# never touched, and killing a sandbox's pid 1 ends everything in it: cleanup does so
# on exit, on failure and on Ctrl-C.
#
# The sourcing script sets: bin (the instancectl binary, see build_instancectl),
# sb_path (PATH inside), work (its work directory), load_start.

export LC_ALL=C # $EPOCHREALTIME with a dot

# Where benchmark logs go inside a sandbox (/var is overlaid, so the host sees them
# in the upper directory).
LOGS=/var/log/instancectl-bench

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# ---------------------------------------------------------------------------------
# Sandboxes

sb_root=""   # the current sandbox's directory on the host
sb_holder="" # unshare, on the host
sb_init=""   # the sandbox's pid 1, as the host sees it
sb_path=""   # PATH inside
work=""      # this run's directory (raw timings, copies of the logs)

# sandbox_up [UPPER_SOURCE]: a new sandbox; with UPPER_SOURCE (a directory holding
# etc/ and var/ overlay upper directories, e.g. a cached sandbox), its files are
# copied in first, so the sandbox starts with what that one had on disk.
sandbox_up() {
  sb_root="$(mktemp -d "$work/sandbox.XXXXXX")"
  mkdir -p "$sb_root"/{etc,var}/{upper,work}
  if [ -n "${1:-}" ]; then
    cp -a "$1/etc/." "$sb_root/etc/upper/"
    cp -a "$1/var/." "$sb_root/var/upper/"
  fi
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

# bench_start SCRIPT: checks root and tools, builds or finds instancectl ($bin), makes
# the work directory and installs the cleanup.
bench_start() {
  [ "$(id -u)" -eq 0 ] || {
    echo "run this as root (sudo bash $1): it needs namespaces and overlay mounts" >&2
    exit 1
  }
  local tool
  for tool in unshare nsenter ip pgrep postmulti postconf getconf column; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (bash scripts/install-deps.sh)"
  done
  bin="${INSTANCECTL:-}"
  if [ -z "$bin" ]; then
    command -v cargo >/dev/null 2>&1 ||
      die "cargo not found (under sudo: sudo env PATH=\"\$PATH\" bash $1), or set INSTANCECTL"
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
  sb_path="$base_path"
  load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
}

# Whether this build has the launchd manager and the emulator next to it (or in
# EMULATOR_BIN_DIR); prints the emulator's directory.
launchd_emulator_dir() {
  "$bin" --manager launchd --launchd-dir /nonexistent --help >/dev/null 2>&1 || return 1
  local emu="${EMULATOR_BIN_DIR:-$(dirname "$bin")}"
  [ -x "$emu/launchd-emulator" ] && [ -x "$emu/launchctl" ] || return 1
  realpath "$emu"
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

# kill_series MODE N KILLS GAP TIMEOUT_S SKIP HZ BASE_PORT: kill -9 a master and time
# until a new master pid lives and its listener greets. MODE rotate: postfix-b1, b2,
# ... in turn; same: postfix-b1 every time. Instance k listens on BASE_PORT+k. The
# first SKIP kills are not reported. Prints "ok I NAME PID_MS BANNER_MS AGE_MS" per
# kill (AGE: how long the killed master had run); "timeout I NAME" or "down I NAME"
# ends the series. The polling loop uses only builtins, so it neither forks nor
# competes much for the CPU.
kill_series() {
  local mode=$1 n=$2 kills=$3 gap=$4 limit=$(($5 * 1000000)) skip=$6 hz=$7 base=$8
  local fifo=/tmp/bench-nap.$$ nap_fd i k name port pidfile old new t0 now tpid stat up age
  mkfifo "$fifo"
  exec {nap_fd}<>"$fifo"
  rm -f "$fifo"
  for ((i = 1; i <= kills + skip; i++)); do
    k=1
    [ "$mode" = rotate ] && k=$(((i - 1) % n + 1))
    name=postfix-b$k port=$((base + k)) pidfile=/var/spool/postfix-b$k/pid/master.pid
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

# check_serving N BASE_PORT: every instance has exactly one master, and it greets
# (masters run in the foreground as `master -c DIR`: native and launchd managers).
check_serving() {
  local n=$1 base=$2 k bad=0 count
  for ((k = 1; k <= n; k++)); do
    count=$(pgrep -fc "/master -c /etc/postfix-b$k( |\$)" || true)
    if [ "$count" != 1 ]; then
      echo "postfix-b$k: $count masters"
      bad=1
    elif ! banner $((base + k)); then
      echo "postfix-b$k: no greeting on 127.0.0.1:$((base + k))"
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

# Every thread of a process: "TID NAME utime+stime" (ticks); the supervisor names its
# threads (prober, reaper, control, ...), so a cost can be told to its thread.
thread_ticks() {
  local t stat name
  for t in /proc/"$1"/task/[0-9]*; do
    stat="$(cat "$t/stat" 2>/dev/null)" || continue
    name="${stat#*(}" name="${name%%)*}"
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    echo "${t##*/} ${name// /_} $((${12} + ${13}))"
  done
}

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

# median, p90, p99 (nearest rank) and max of the numbers on stdin:
# "MEDIAN P90 P99 MAX COUNT".
stats() {
  sort -n | awk '{ v[NR] = $1 }
    function rank(p,  r) { r = int(p * NR); if (r < p * NR) r++; return v[r] }
    END {
      if (NR == 0) { print "- - - - 0"; exit }
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%d %d %d %d %d\n", med, rank(0.9), rank(0.99), v[NR], NR
    }'
}

# idle_measure PID DURATION TAG: the CPU (% of one core over the wall time), VmRSS,
# VmHWM and threads (min-max, sampled each second) of PID while nothing is asked of
# it, plus the CPU of the whole sandbox over the same window. Sets idle_cpu,
# idle_wall, idle_rss, idle_hwm, idle_threads, idle_tmin, idle_tmax, idle_total and
# idle_by_thread (ticks per thread name).
idle_measure() {
  local pid=$1 duration=$2 tag=$3 hz c0 c1 w0 w1 t0 thr
  hz="$(getconf CLK_TCK)"
  idle_tmin=999999 idle_tmax=0
  sandbox_ticks >"$work/$tag.ticks0"
  thread_ticks "$pid" >"$work/$tag.threads0"
  c0="$(cpu_ticks "$pid")" w0=${EPOCHREALTIME/./}
  t0=$SECONDS
  while ((SECONDS - t0 < duration)); do
    thr="$(status_field "$pid" Threads)"
    ((thr < idle_tmin)) && idle_tmin=$thr
    ((thr > idle_tmax)) && idle_tmax=$thr
    sleep 1
  done
  c1="$(cpu_ticks "$pid")" w1=${EPOCHREALTIME/./}
  thread_ticks "$pid" >"$work/$tag.threads1"
  sandbox_ticks >"$work/$tag.ticks1"
  idle_wall="$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')"
  idle_cpu="$(awk -v c=$((c1 - c0)) -v hz="$hz" -v w="$idle_wall" 'BEGIN { printf "%.2f", c / hz / w * 100 }')"
  # Whole sandbox: processes alive at the end, minus what they had at the start.
  idle_total="$(awk -v hz="$hz" -v w="$idle_wall" 'NR == FNR { t0[$1] = $2; next }
    { d += $2 - ($1 in t0 ? t0[$1] : 0) } END { printf "%.2f", d / hz / w * 100 }' \
    "$work/$tag.ticks0" "$work/$tag.ticks1")"
  # Per thread (threads that ended meanwhile are in the process total only).
  idle_by_thread="$(awk 'NR == FNR { t0[$1] = $3; next }
    { d = $3 - ($1 in t0 ? t0[$1] : 0); if (d > 0) by[$2] += d }
    END { for (n in by) printf "%s %d, ", n, by[n] }' \
    "$work/$tag.threads0" "$work/$tag.threads1" | sed 's/, $//')"
  [ -n "$idle_by_thread" ] || idle_by_thread="none"
  idle_rss="$(status_field "$pid" VmRSS)" idle_hwm="$(status_field "$pid" VmHWM)"
  idle_threads="$(status_field "$pid" Threads)"
  say "$tag: $((c1 - c0)) ticks ($hz/s) in $idle_wall s: $idle_cpu % of one core (by thread: $idle_by_thread)"
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

# Runs a kill series in the sandbox; the raw lines go to $work/$1.txt.
run_series() {
  local tag=$1
  shift
  ins "$inside_fns; kill_series $*" >"$work/$tag.txt" || {
    cat "$work/$tag.txt" >&2
    die "kill series $tag could not run"
  }
}

# "median p90 p99 max count" of column $2 (4: until the new pid, 5: until the banner).
series_stats() { awk -v c="$2" '$1 == "ok" { print $c }' "$work/$1.txt" | stats; }
series_failures() { grep -cE '^(timeout|down) ' "$work/$1.txt" || true; }

# ---------------------------------------------------------------------------------
# The summary table

rows=() # "metric|value|target|verdict"
row() { rows+=("$1|$2|${3:-}|${4:-}"); }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }

# recovery_rows TAG LABEL [TARGET_MS]: median, p90, p99 and max kill-to-banner.
recovery_rows() {
  local tag=$1 label=$2 target=${3:-} med p90 p99 max cnt pmed failed
  read -r med p90 p99 max cnt < <(series_stats "$tag" 5)
  read -r pmed _ _ _ _ < <(series_stats "$tag" 4)
  failed=$(series_failures "$tag")
  [ "$failed" -eq 0 ] || grep -E '^(timeout|down) ' "$work/$tag.txt" >&2
  local value="median $med  p90 $p90  p99 $p99  max $max ms ($cnt ok, $failed failed)"
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

# serving_row N BASE_PORT WHEN: does every instance have one master that greets?
serving_row() {
  if ins "$inside_fns; check_serving $1 $2" >&2; then
    row "every instance serving, one master each, $3" yes "" PASS
  else
    row "every instance serving, one master each, $3" "no (see above)" "" FAIL
  fi
}

# print_summary TITLE: the header (binary, Postfix, CPUs, load) and the table.
print_summary() {
  echo
  echo "$1"
  echo "$bin; Postfix $(postconf -h mail_version 2>/dev/null); $(nproc) CPU(s); $(uname -sr)"
  echo "load average at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on the host slows everything measured here)"
  echo
  {
    echo "metric|value|target|verdict"
    printf '%s\n' "${rows[@]}"
  } | column -t -s '|' -o '   '
}
