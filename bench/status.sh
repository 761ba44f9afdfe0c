#!/usr/bin/env bash
# Benchmark: `instancectl status --json` against `postmulti -p status` on the same N
# running instances, in a throwaway sandbox (private mount, network, pid and UTS
# namespaces with overlays on /etc and /var, as tests/e2e/common does), so the host's own
# Postfix is never touched and everything dies with the sandbox.
#
#   sudo bash bench/status.sh            # N = 20, then N = 50
#   sudo bash bench/status.sh 5 20 100   # any N
#
# Environment: INSTANCECTL=/path/to/instancectl (default: a release build of this
# tree), RUNS (timed runs per command, default 20), WARMUP (default 3).
#
# For each N it creates N instances with `instancectl create` (each on its own
# 127.0.0.1 port), starts the primary, checks that `instancectl status` calls every
# instance healthy, then times:
#   postmulti -p status                  Postfix's own: running or not, per instance
#   instancectl status --json            warm: postfix check results remembered
#   instancectl status --json --recheck  cold: postfix check run for every instance
#   instancectl status --json --no-check without postfix check
# with hyperfine when it is installed (apt-get install hyperfine), else with a loop.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

inside() {
  local n="$1" root="$2" bin="$3"
  mount --make-rprivate /
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$root/etc/upper,workdir=$root/etc/work" /etc
  mount -t overlay overlay -o "lowerdir=/var,upperdir=$root/var/upper,workdir=$root/var/work" /var
  ip link set lo up
  hostname bench.example.org
  export PATH="$(dirname "$bin"):/usr/sbin:/usr/bin:/sbin:/bin"
  export NO_COLOR=1
  # Postfix's own scripts start the masters: no supervisor needed for a status benchmark.
  export INSTANCECTL_MANAGER=postfix

  instancectl init --null-client >/dev/null
  local started=$SECONDS
  for i in $(seq 1 "$n"); do
    instancectl create "postfix-b$i" --listen "127.0.0.1:$((20000 + i))" >/dev/null
  done
  # The primary only: `postfix start` would start every enabled instance too.
  postmulti -i - -p start >/dev/null 2>&1
  echo "created and started $n instances in $((SECONDS - started)) s"

  # Both commands must see the same running instances, and status must agree.
  local report
  report="$(instancectl status --json)" || {
    echo "instancectl status does not call every instance healthy:" >&2
    instancectl status >&2 || true
    return 1
  }
  local summary
  summary="$(jq -r '.summary | "\(.instances) \(.healthy)"' <<<"$report")"
  [ "$summary" = "$((n + 1)) $((n + 1))" ] || {
    echo "expected $((n + 1)) healthy instances, got: $summary" >&2
    return 1
  }
  # postmulti -p status speaks through syslog (stderr only on a terminal); its exit
  # status says whether every instance runs.
  if postmulti -p status >/dev/null 2>&1; then
    echo "postmulti -p status: every instance is running"
  else
    echo "postmulti -p status fails: not every instance runs" >&2
    return 1
  fi

  local runs="${RUNS:-20}" warmup="${WARMUP:-3}"
  if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N --style basic --warmup "$warmup" --runs "$runs" -i \
      --export-json "$root/hyperfine.json" \
      -n 'postmulti -p status' 'postmulti -p status' \
      -n 'instancectl status --json' "$bin status --json" \
      -n 'instancectl status --json --no-check' "$bin status --json --no-check" \
      >"$root/hyperfine.txt" 2>&1 || { cat "$root/hyperfine.txt"; return 1; }
    # Cold: postfix check for every instance, each run.
    hyperfine -N --style basic --runs 3 -i --export-json "$root/cold.json" \
      -n 'instancectl status --json --recheck' "$bin status --json --recheck" \
      >>"$root/hyperfine.txt" 2>&1
    jq -r '.results[] | "\(.command)\t\(.mean)\t\(.stddev)\t\(.min)\t\(.max)"' \
      "$root/hyperfine.json" "$root/cold.json" >"$root/results.tsv"
  else
    : >"$root/results.tsv"
    local cmd
    for cmd in "postmulti -p status" "$bin status --json" "$bin status --json --no-check" \
      "$bin status --json --recheck"; do
      local k times=()
      local count="$runs"
      case "$cmd" in *--recheck) count=3 ;; esac
      for k in $(seq 1 "$warmup"); do $cmd >/dev/null 2>&1 || true; done
      for k in $(seq 1 "$count"); do
        local t0 t1
        t0=$(date +%s%N)
        $cmd >/dev/null 2>&1 || true
        t1=$(date +%s%N)
        times+=("$(((t1 - t0) / 1000))")
      done
      printf '%s\t%s\n' "${cmd/#$bin/instancectl}" "$(printf '%s\n' "${times[@]}" |
        awk '{s+=$1; if(min==""||$1<min)min=$1; if($1>max)max=$1} END {printf "%.6f\t0\t%.6f\t%.6f", s/NR/1e6, min/1e6, max/1e6}')" \
        >>"$root/results.tsv"
    done
  fi

  awk -F'\t' -v n="$n" '
    { name[NR] = $1; mean[NR] = $2; sd[NR] = $3; min[NR] = $4; max[NR] = $5 }
    $1 == "postmulti -p status" { base = $2 }
    END {
      printf "\nN = %d running instances (+ the primary)\n", n
      printf "  %-38s %9s %9s %9s %9s %10s\n", "command", "mean ms", "sd ms", "min ms", "max ms", "vs postmulti"
      for (i = 1; i <= NR; i++)
        printf "  %-38s %9.1f %9.1f %9.1f %9.1f %9.3fx\n", name[i], mean[i] * 1000, sd[i] * 1000, min[i] * 1000, max[i] * 1000, mean[i] / base
    }' "$root/results.tsv"
}

if [ "${1:-}" = "--inside" ]; then
  shift
  inside "$@"
  exit
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "run this as root: it needs namespaces and overlay mounts" >&2
  exit 1
fi
for tool in unshare nsenter ip jq postmulti; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is missing (bash scripts/install-deps.sh; apt-get install jq)" >&2; exit 1; }
done

bin="${INSTANCECTL:-}"
if [ -z "$bin" ]; then
  (cd "$repo" && cargo build --release --quiet)
  bin="${CARGO_TARGET_DIR:-$repo/target}/release/instancectl"
fi
bin="$(realpath "$bin")"

sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(20 50)
echo "instancectl: $bin"
echo "postfix: $(postconf -h mail_version), $(nproc) CPU(s), $(uname -sr)"
root=""
trap '[ -z "$root" ] || rm -rf "$root"' EXIT
for n in "${sizes[@]}"; do
  root="$(mktemp -d /tmp/instancectl-bench-XXXXXX)"
  mkdir -p "$root/etc/upper" "$root/etc/work" "$root/var/upper" "$root/var/work"
  # The sandbox's pid 1 is the inner script: when it ends, everything in it dies.
  unshare -m -n -p -u -f --mount-proc bash "$here/status.sh" --inside "$n" "$root" "$bin"
  rm -rf "$root"
  root=""
done
