#!/usr/bin/env bash
# Installs what instancectl's build, demo and tests need on Debian: Postfix (without
# starting a mail system of its own), iproute2 and util-linux for the test sandboxes;
# Cyrus SASL's client plugins (a relay authenticates with PLAIN/LOGIN), and for the
# relay tests sasl2-bin (saslpasswd2, the test relay's user database), openssl and
# the CA bundle; zsh and fish, whose completion scripts the tests load.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "run this as root (it installs packages)" >&2
  exit 1
fi
need=()
for pkg in postfix iproute2 util-linux procps libsasl2-modules sasl2-bin openssl ca-certificates zsh fish; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install a current Rust toolchain (https://rustup.rs) and run this again" >&2
  exit 1
fi
