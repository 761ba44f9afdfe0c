#!/usr/bin/env bash
# The main job on a fresh Debian machine, as root: install Postfix if missing, build
# instancectl, turn on multi-instance management, create and start an example input
# instance on a loopback address, and show its status.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release
ctl=target/release/instancectl
$ctl init
if $ctl list --json | grep -q '"name": "postfix-example"'; then
  $ctl start postfix-example
else
  $ctl create postfix-example --group demo --role input --listen 127.0.0.1:2525
fi
$ctl list
