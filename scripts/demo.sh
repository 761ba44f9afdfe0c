#!/usr/bin/env bash
# The main job on a fresh Debian machine, as root: install Postfix if missing, build
# and install instancectl (scripts/install.sh: /usr/local/sbin, its manual page,
# shell completions, and the systemd unit where systemd runs), start its supervisor
# (the native manager, Linux's default), turn on multi-instance management, create
# and start an example input instance on a loopback address, and show its status.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install.sh
ctl=/usr/local/sbin/instancectl
state=/var/lib/instancectl

# Only this PID namespace counts: supervisors of containers (or of test sandboxes)
# show up in the host's process list too, but manage other instances.
if ! pgrep --ns $$ --nslist pid -f '[i]nstancectl supervise' >/dev/null; then
  echo "starting the supervisor (log: /var/log/instancectl-supervise.log)"
  mkdir -p "$state"
  setsid "$ctl" supervise >>/var/log/instancectl-supervise.log 2>&1 < /dev/null &
  for _ in $(seq 100); do [ -S "$state/supervisor.sock" ] && break; sleep 0.1; done
fi

"$ctl" init
if "$ctl" list --json | grep -q '"name": "postfix-example"'; then
  "$ctl" start postfix-example
else
  "$ctl" create postfix-example --group demo --role input --listen 127.0.0.1:2525
fi
"$ctl" status -v
