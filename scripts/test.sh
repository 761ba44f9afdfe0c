#!/usr/bin/env bash
# The whole test suite: unit tests, and end-to-end tests that run the real Postfix in
# throwaway namespaces (root required). Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace --all-targets --no-fail-fast 2>&1
