#!/usr/bin/env bash
# Builds instancectl (release) and installs it, as root:
#   PREFIX/sbin/instancectl                                  the program
#   PREFIX/share/man/man8/instancectl.8                      its manual page
#   PREFIX/share/bash-completion/completions/instancectl     bash completion
#   PREFIX/share/zsh/site-functions/_instancectl             zsh completion
#   PREFIX/share/fish/vendor_completions.d/instancectl.fish  fish completion
#   /etc/systemd/system/instancectl.service                  the supervisor's unit, where
#                                                            systemd runs
#
# Usage: bash scripts/install.sh [--binary PATH]
#   --binary PATH     install this build instead of running `cargo build --release`
# Environment:
#   PREFIX=/usr/local           where the program, manual and completions go
#   DESTDIR=                    stage everything under this directory (packaging, tests);
#                               nothing on the running system is touched then
#   SYSTEMD=auto|yes|no         install the unit: auto does when systemd runs the host
#   SYSTEMD_UNIT_DIR=/etc/systemd/system
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

binary=
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSTEMD=${SYSTEMD:-auto}
SYSTEMD_UNIT_DIR=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
case $PREFIX in /*) ;; *) echo "install.sh: PREFIX must be an absolute path, not $PREFIX" >&2; exit 2 ;; esac
case $SYSTEMD in auto|yes|no) ;; *) echo "install.sh: SYSTEMD is auto, yes or no, not $SYSTEMD" >&2; exit 2 ;; esac
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root (or stage with DESTDIR=DIR)" >&2
  exit 2
fi

if [ -z "$binary" ]; then
  cargo build --release --locked
  binary=target/release/instancectl
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 2; }

root=$DESTDIR$PREFIX
installed=()
# Writes the output of `instancectl ARGS...` to FILE (mode 0644).
generate() {
  local file=$1; shift
  install -d "$(dirname "$file")"
  "$binary" "$@" >"$file.tmp"
  chmod 0644 "$file.tmp"
  mv -f "$file.tmp" "$file"
  installed+=("$file")
}

install -D -m 0755 "$binary" "$root/sbin/instancectl"
installed+=("$root/sbin/instancectl")
generate "$root/share/man/man8/instancectl.8" man
generate "$root/share/bash-completion/completions/instancectl" completions bash
generate "$root/share/zsh/site-functions/_instancectl" completions zsh
generate "$root/share/fish/vendor_completions.d/instancectl.fish" completions fish

with_unit=no
case $SYSTEMD in
  yes) with_unit=yes ;;
  auto) [ -d /run/systemd/system ] && with_unit=yes ;;
esac
if [ "$with_unit" = yes ]; then
  unit=$DESTDIR$SYSTEMD_UNIT_DIR/instancectl.service
  install -d "$(dirname "$unit")"
  # The unit names /usr/local/sbin/instancectl; another PREFIX is written into it.
  sed "s|/usr/local/sbin/instancectl|$PREFIX/sbin/instancectl|g" contrib/instancectl.service >"$unit.tmp"
  chmod 0644 "$unit.tmp"
  mv -f "$unit.tmp" "$unit"
  installed+=("$unit")
fi

printf 'installed %s\n' "${installed[@]}"
if [ "$with_unit" = yes ] && [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "start the supervisor now and at boot: systemctl enable --now instancectl"
fi
