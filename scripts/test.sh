#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a fresh Debian machine,
# then runs formatting, lints and every test. Safe to re-run; installs are skipped when
# already present.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

# --- system packages (redis-server for the multi-instance tests)
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Rust tools
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked

# --- official Anthropic client SDKs for the conformance tests
if [ -f tests/clients/requirements.txt ]; then
  step "Python client SDK"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/clients/requirements.txt
  export QGATE_PYTHON="$ROOT/.venv/bin/python"
fi
if [ -f tests/clients/package.json ]; then
  step "TypeScript client SDK"
  (cd tests/clients && npm install --silent --no-audit --no-fund >/dev/null)
  export QGATE_NODE_CLIENTS="$ROOT/tests/clients"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --locked --doc

if [ -z "${QGATE_SKIP_CLAUDE_CODE:-}" ]; then
  step "Claude Code (offline) against qgate demo"
  ./scripts/claude-code-smoke.sh
fi

if [ -z "${QGATE_SKIP_FUZZ:-}" ]; then
  # Saved findings replayed (each fails until fixed), then a short run per target;
  # longer runs: ./scripts/fuzz.sh 600 --explore (docs/reliability.md).
  step "fuzz targets, ${QGATE_FUZZ_SECONDS:-20} s each (QGATE_SKIP_FUZZ=1 skips)"
  ./scripts/fuzz.sh "${QGATE_FUZZ_SECONDS:-20}"
fi

echo
echo "all checks passed"
