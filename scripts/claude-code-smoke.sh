#!/usr/bin/env bash
# Claude Code against `qgate demo`, fully offline: a plain `claude -p` turn, then a tool
# turn where the simulator calls Bash and Claude Code must run it and send the result back.
# Exits non-zero on any failure.
#
#   ./scripts/claude-code-smoke.sh
#
# Environment:
#   CLAUDE_CODE_VERSION  npm version to install (default 2.1.197, the one real-clients.md measured)
#   CLAUDE_CODE_DIR      install cache (default .cache/claude-code, gitignored)
#   QGATE_BIN            a built qgate binary; otherwise `cargo build` (QGATE_PROFILE=debug|release)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VERSION=${CLAUDE_CODE_VERSION:-2.1.197}
CACHE=${CLAUDE_CODE_DIR:-$ROOT/.cache/claude-code}
PROFILE=${QGATE_PROFILE:-debug}
TOOL_MARK=qgate-tool-ok

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# --- Claude Code from npm (the native binary arrives inside an optional dependency)
CLAUDE="$CACHE/node_modules/.bin/claude"
if ! [ -x "$CLAUDE" ] || [[ "$("$CLAUDE" --version 2>/dev/null)" != "$VERSION"* ]]; then
  step "installing @anthropic-ai/claude-code@$VERSION into $CACHE"
  mkdir -p "$CACHE"
  [ -f "$CACHE/package.json" ] || printf '{"name":"claude-code-cache","private":true}\n' >"$CACHE/package.json"
  (cd "$CACHE" && npm install --no-audit --no-fund --silent "@anthropic-ai/claude-code@$VERSION")
fi
echo "claude: $("$CLAUDE" --version)"

# --- qgate
if [ -n "${QGATE_BIN:-}" ]; then
  QGATE=$QGATE_BIN
else
  step "building qgate ($PROFILE)"
  if [ "$PROFILE" = release ]; then
    cargo build --release --locked -p qgate --bin qgate
  else
    cargo build --locked -p qgate --bin qgate
  fi
  QGATE="$ROOT/target/$PROFILE/qgate"
fi

WORK=$(mktemp -d)
DEMO_PID=""
cleanup() {
  if [ -n "$DEMO_PID" ]; then
    kill "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "starting qgate demo"
mkdir -p "$WORK/home" "$WORK/project"
"$QGATE" demo --port 0 --state-dir "$WORK/state" >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
URL=""
for _ in $(seq 1 100); do
  URL=$(sed -n 's/^ *gateway *\(http:\/\/[0-9.:]*\).*/\1/p' "$WORK/demo.log" | head -n1)
  [ -n "$URL" ] && break
  kill -0 "$DEMO_PID" 2>/dev/null || { cat "$WORK/demo.log"; fail "qgate demo exited"; }
  sleep 0.1
done
[ -n "$URL" ] || { cat "$WORK/demo.log"; fail "qgate demo did not start within 10 s"; }
SIM=$(sed -n 's/^ *simulator *\(http:\/\/[0-9.:]*\).*/\1/p' "$WORK/demo.log" | head -n1)
echo "gateway $URL, simulator $SIM"

# Offline: only the gateway's loopback address; a throwaway HOME so no login or settings leak in.
claude() {
  (cd "$WORK/project" && env -u ANTHROPIC_AUTH_TOKEN -u ANTHROPIC_MODEL -u ANTHROPIC_CUSTOM_HEADERS \
    HOME="$WORK/home" ANTHROPIC_BASE_URL="$URL" ANTHROPIC_API_KEY=sk-ant-qgate-smoke \
    DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    DISABLE_AUTOUPDATER=1 timeout 120 "$CLAUDE" "$@")
}

step 'claude -p "say hi"'
start=$EPOCHREALTIME
out=$(claude -p "say hi") || fail "claude -p exited $?: $out"
printf '%s\n' "$out"
python3 -c 'import sys; print(f"({float(sys.argv[2]) - float(sys.argv[1]):.1f} s)")' "$start" "$EPOCHREALTIME"
[ -n "$(printf '%s' "$out" | tr -d '[:space:]')" ] || fail "empty answer"

step "tool turn: the simulator calls Bash, Claude Code runs it and sends the result back"
prompt="Run the check. [[sim tool=Bash input={\"command\":\"echo $TOOL_MARK\"}]]"
json=$(claude -p "$prompt" --allowedTools Bash --output-format json) || fail "claude exited $?: $json"
printf '%s\n' "$json"
printf '%s' "$json" | python3 -c '
import json, sys
mark = sys.argv[1]
r = json.load(sys.stdin)
turns, result = int(r.get("num_turns", 0)), str(r.get("result", ""))
problems = []
if r.get("is_error"):
    problems.append("is_error is true")
if turns < 2:
    problems.append(f"num_turns {turns} < 2: the tool result was not sent back")
if mark not in result:
    problems.append(f"the final text does not quote the tool output {mark!r}")
for p in problems:
    print("FAIL:", p, file=sys.stderr)
print(f"num_turns={turns} result={result!r}")
sys.exit(1 if problems else 0)
' "$TOOL_MARK" || fail "tool turn"

step "simulator stats"
stats=$(curl -fsS "$SIM/_sim/stats")
printf '%s\n' "$stats"
printf '%s' "$stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
bad = sum(a["validation_failures"] for a in s["accounts"].values())
ok = sum(a["chat_ok"] for a in s["accounts"].values())
print(f"chat_ok={ok} validation_failures={bad}")
sys.exit(1 if bad or ok < 3 else 0)
' || fail "the simulator rejected a request (or saw too few)"

echo
echo "claude-code smoke passed"
