#!/usr/bin/env bash
# bench/systemd.sh: how fast a killed master serves again under systemd (the systemd
# manager: one unit per instance, Restart=always) and under the native supervisor
# (`instancectl supervise`, itself a systemd service), in the same run, on the same
# machine image.
#
# Each half boots a real systemd as pid 1 of private namespaces with the test harness's
# boot script (tests/e2e/common/boot-systemd.sh: overlays of the host's /usr, /etc and /var,
# Debian's postfix units as the package leaves them), so the host's own Postfix is
# never touched (the machines start from the host's /etc/postfix as it is: run it where
# that is as the package left it). Commands run inside through nsenter, each with a
# time limit.
#
# Kill-to-banner: `kill -9` a master (pid from its master.pid), then the time until a
# NEW master pid lives and its listener greets with "220 ". KILLS kills rotating over
# N instances, GAP seconds after each recovery. Median, p90 and max in ms.
#
# Under systemd a recovery includes RestartSec=100ms and the unit's ExecStartPre
# (Debian's configure-instance.sh and `postfix check`, about a second of CPU); the
# native supervisor starts the master again at once and runs `postfix check` only when
# main.cf or master.cf changed.
#
# Run (root; Postfix and systemd installed, cgroup v1 name=systemd + unified mounted):
#
#   sudo bash bench/systemd.sh
#   sudo env N=5 KILLS=30 INSTANCECTL_BIN_DIR=target/debug bash bench/systemd.sh
#
# Environment:
#   N=3         instances (postfix-b1..bN on 127.0.0.1:3001..)
#   KILLS=15    kills per manager; the units allow 10 starts a minute
#               (StartLimitBurst), so keep KILLS/N under 10 per minute of run
#   GAP=2       seconds between a recovery and the next kill
#   INSTANCECTL_BIN_DIR=DIR   the directory holding instancectl (default: a release
#               build, made when missing)
#   KEEP=1      keep the work directory (machines' upper directories, raw timings)
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
N="${N:-3}"
KILLS="${KILLS:-15}"
GAP="${GAP:-2}"
LIMIT=60 # seconds one recovery may take
COMMAND_LIMIT=900 # seconds one command in a machine may take (a whole kill series)

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (namespaces, overlays, cgroups)"
[ -x /usr/lib/systemd/systemd ] || die "systemd is not installed"
for h in systemd unified; do
  [ -f "/sys/fs/cgroup/$h/cgroup.procs" ] || die "/sys/fs/cgroup/$h is not a mounted cgroup hierarchy"
done

bin="${INSTANCECTL_BIN_DIR:-$repo/target/release}"
if [ ! -x "$bin/instancectl" ]; then
  say "building instancectl (release)"
  (cd "$repo" && cargo build --release --quiet)
fi
bin="$(cd "$bin" && pwd)"

# The machines' upper directories must be on a disk, beside the lower ones.
mkdir -p "$repo/target/tmp"
work="$(mktemp -d "$repo/target/tmp/bench-systemd.XXXXXX")"
cgroup="instancectl-bench-$$"
machine="" # systemd's pid, as the host sees it
launcher=""

remove_cgroups() {
  local h
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h/$cgroup" ] || continue
    for _ in $(seq 50); do
      find "/sys/fs/cgroup/$h/$cgroup" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "/sys/fs/cgroup/$h/$cgroup" ] || break
      sleep 0.1
    done
  done
}

machine_down() {
  [ -n "$launcher" ] || return 0
  [ -z "$machine" ] || kill -9 "$machine" 2>/dev/null || true
  wait "$launcher" 2>/dev/null || true
  launcher="" machine=""
  remove_cgroups
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  machine_down
  if [ "${KEEP:-}" = 1 ] || [ "$status" -ne 0 ]; then
    say "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

# Runs a bash script inside the machine.
in_machine() {
  timeout -k 5 "$COMMAND_LIMIT" nsenter -t "$machine" -a -- env -i HOME=/root LANG=C.UTF-8 \
    PATH=/opt/instancectl:/usr/sbin:/usr/bin:/sbin:/bin ${MANAGER_ENV:-} bash -c "$1"
}

# Boots a fresh machine in $work/$1 and waits until systemd is running.
machine_up() {
  local dir="$work/$1" h state
  mkdir -p "$dir"
  for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$cgroup"; done
  (
    echo $BASHPID >"/sys/fs/cgroup/systemd/$cgroup/cgroup.procs"
    echo $BASHPID >"/sys/fs/cgroup/unified/$cgroup/cgroup.procs"
    exec setsid unshare -m -p -f -n -u -i -C --propagation private \
      bash "$repo/tests/e2e/common/boot-systemd.sh" "$dir" "$bin"
  ) </dev/null >"$dir/boot.log" 2>&1 &
  launcher=$!
  for _ in $(seq 600); do
    # setsid execs unshare (the subshell leads no group), whose child is systemd.
    machine="$(tr -d ' \n' <"/proc/$launcher/task/$launcher/children" 2>/dev/null || true)"
    [ -n "$machine" ] && [ "$(readlink "/proc/$machine/exe" 2>/dev/null)" = /usr/lib/systemd/systemd ] && break
    machine=""
    sleep 0.1
  done
  [ -n "$machine" ] || die "systemd did not start: $(cat "$dir/boot.log")"
  for _ in $(seq 600); do
    state="$(in_machine 'systemctl is-system-running' 2>/dev/null || true)"
    [ "$state" = running ] && return 0
    sleep 0.2
  done
  die "systemd did not come up (state $state): $(in_machine 'journalctl -b --no-pager -n 80' || cat "$dir/boot.log")"
}

# ---------------------------------------------------------------------------------
# Inside the machine (passed in with `declare -f`)

# Whether 127.0.0.1:$1 greets with "220 " (builtins only).
greets() {
  local fd line
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  read -r -t 2 line <&"$fd" 2>/dev/null || line=
  exec {fd}>&-
  [[ $line == "220 "* ]]
}

# recover N KILLS GAP LIMIT: kill -9 the masters of postfix-b1..bN in turn; for each,
# print the milliseconds until a new master pid lives and its listener greets, or
# "timeout NAME".
recover() {
  local n=$1 kills=$2 gap=$3 limit=$(($4 * 1000000)) i k pidfile old new t0 now
  for ((i = 0; i < kills; i++)); do
    k=$((i % n + 1)) pidfile=/var/spool/postfix-b$k/pid/master.pid
    read -r old <"$pidfile"
    t0=${EPOCHREALTIME/./}
    kill -9 "$old"
    while :; do
      new=
      read -r new <"$pidfile" 2>/dev/null || true
      now=${EPOCHREALTIME/./}
      if [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null && greets $((3000 + k)); then
        echo $(((${EPOCHREALTIME/./} - t0) / 1000))
        break
      fi
      ((now - t0 < limit)) || { echo "timeout postfix-b$k"; return 0; }
      sleep 0.005
    done
    sleep "$gap"
  done
}
inside="trap '' PIPE; $(declare -f greets recover)"

# "median p90 max count" of the numbers on stdin (p90: nearest rank).
stats() {
  local v n
  mapfile -t v < <(sort -n)
  n=${#v[@]}
  if ((n == 0)); then echo "- - - 0"; return; fi
  echo "${v[n / 2]} ${v[(9 * n + 9) / 10 - 1]} ${v[n - 1]} $n"
}

create_instances() {
  local k
  in_machine "instancectl init --null-client" >"$work/init.log" 2>&1 || die "init: $(cat "$work/init.log")"
  for ((k = 1; k <= N; k++)); do
    in_machine "instancectl create postfix-b$k --listen 127.0.0.1:$((3000 + k))" \
      >"$work/create.log" 2>&1 || die "create postfix-b$k: $(cat "$work/create.log")"
  done
}

# Measures one manager: TAG, then the raw timings are in $work/TAG.txt.
measure() {
  local tag=$1
  say "$tag: $KILLS kills over $N instances, $GAP s apart"
  in_machine "$inside; recover $N $KILLS $GAP $LIMIT" >"$work/$tag.txt" ||
    die "$tag: the kill series could not run"
  if grep -q timeout "$work/$tag.txt"; then
    grep timeout "$work/$tag.txt" >&2
  fi
}

say "systemd manager: booting, $N instances"
machine_up systemd-manager
create_instances
in_machine 'systemctl show -p Version --value' >"$work/version.txt"
measure systemd
in_machine 'for u in $(systemctl list-units --plain --no-legend "instancectl-*" | cut -d" " -f1); do
  echo "$u NRestarts=$(systemctl show -p NRestarts --value $u)"; done' >"$work/systemd-restarts.txt"
# What the checks before each start cost: the same units with ExecStartPre= emptied by
# a drop-in (for the figures only; instancectl never writes one).
in_machine 'for k in $(seq '"$N"'); do
  d=/etc/systemd/system/instancectl-postfix-b$k.service.d; mkdir -p $d
  printf "[Service]\nExecStartPre=\n" > $d/bench-no-checks.conf; done
  systemctl daemon-reload && systemctl restart $(seq -f "instancectl-postfix-b%g.service" '"$N"')' ||
  die "could not drop the checks"
sleep 3
measure systemd-no-checks
machine_down

say "native supervisor: booting, supervisor as a transient service, $N instances"
MANAGER_ENV="INSTANCECTL_MANAGER=native"
machine_up native-supervisor
in_machine "systemd-run --unit=instancectl-supervise --property=KillMode=mixed \
  /opt/instancectl/instancectl --manager native supervise --interval 1s" >/dev/null 2>&1 ||
  die "could not start the supervisor"
in_machine 'for i in $(seq 200); do test -S /var/lib/instancectl/supervisor.sock && exit 0; sleep 0.1; done; exit 1' ||
  die "the supervisor did not come up: $(in_machine 'journalctl -u instancectl-supervise -o cat')"
create_instances
measure native
machine_down

printf '\nkill -9 of a master until a new master greets (ms), %s kills over %s instances, %s s apart\n' "$KILLS" "$N" "$GAP"
printf 'systemd %s, Postfix %s, %s CPUs\n' "$(cat "$work/version.txt")" "$(postconf -h mail_version)" "$(nproc)"
printf '  %-34s %8s %8s %8s %6s %8s\n' "" median p90 max ok timeouts
for tag in systemd systemd-no-checks native; do
  read -r med p90 max cnt < <(grep -E '^[0-9]+$' "$work/$tag.txt" | stats)
  case $tag in
  systemd) label="systemd unit as written" ;;
  systemd-no-checks) label="systemd unit without ExecStartPre" ;;
  native) label="native supervisor (under systemd)" ;;
  esac
  printf '  %-34s %8s %8s %8s %6s %8s\n' "$label" "$med" "$p90" "$max" "$cnt" "$(grep -c timeout "$work/$tag.txt" || true)"
done
echo "automatic restarts counted by systemd (first series):"
sed 's/^/  /' "$work/systemd-restarts.txt"
