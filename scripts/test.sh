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

# One-shot builds gain nothing from incremental caches, which were a third of target/
# (2.3 GB of 6.7) in a clean run; set CARGO_INCREMENTAL=1 to keep them when iterating.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build: every test and the qgate binary, in one feature set"
# The tests that run the real binary (and the Claude Code smoke test) use this build
# through QGATE_BIN instead of each running `cargo build -p qgate` while tests run: that
# build resolves features without the dev-dependencies' (tokio's test-util), so it
# compiled a second copy of tokio and everything above it, in the middle of the test run.
cargo build --workspace --bins --tests --locked
target_dir=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export QGATE_BIN="$target_dir/debug/qgate"
[ -x "$QGATE_BIN" ] || { echo "no qgate binary at $QGATE_BIN" >&2; exit 1; }

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
