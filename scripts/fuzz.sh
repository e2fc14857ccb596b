#!/usr/bin/env bash
# Runs every cargo-fuzz target: first each saved finding in fuzz/regressions/<target>/
# (they fail until the bug is fixed), then fuzzing for the given time per target, starting
# from the committed seeds in fuzz/corpus/<target>/ plus what earlier runs found (kept in
# fuzz/work/<target>/, not committed).
#
#   scripts/fuzz.sh [seconds per target, default 20] [--explore] [target ...]
#
# Fuzzing steps around the findings already saved in fuzz/regressions/ (their replay fails
# until they are fixed), so it can look for new ones: QGATE_FUZZ_TOLERATE=all, see
# fuzz/src/known.rs, whose entry goes when the bug is fixed.
#
# --explore: for long runs. Keeps going after a crash (libFuzzer fork mode, every crash
# saved under fuzz/artifacts/).
#
# cargo-fuzz needs nightly compiler flags; this toolchain is stable, which accepts them
# with RUSTC_BOOTSTRAP=1 (set here, for this script's cargo only).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=20
explore=""
targets=()
for arg in "$@"; do
  case "$arg" in
    --explore) explore=1 ;;
    ''|*[!0-9]*) targets+=("$arg") ;;
    *) seconds=$arg ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(event_stream_decode translate_request stream_translator)

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build
mkdir -p work
bin_dir=target/x86_64-unknown-linux-gnu/release

failed=()
summary=()
for t in "${targets[@]}"; do
  if compgen -G "regressions/$t/*" >/dev/null; then
    echo "--- $t: replaying saved findings"
    for input in regressions/"$t"/*; do
      if "$bin_dir/$t" "$input" >"work/replay.log" 2>&1; then
        echo "    fixed: $input"
      else
        echo "    STILL FAILS: $input"
        grep -m1 -A2 "panicked at" "work/replay.log" | sed 's/^/      /' || true
        failed+=("$t:$(basename "$input")")
      fi
    done
    rm -f work/replay.log
  fi

  echo "--- $t: fuzzing for ${seconds}s"
  mkdir -p "work/$t"
  log="work/$t.log"
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [ -n "$explore" ]; then
    flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  # The saved findings above already fail while unfixed; fuzzing steps around them to
  # look for new ones.
  if QGATE_FUZZ_TOLERATE=all cargo fuzz run "$t" "work/$t" "corpus/$t" -- "${flags[@]}" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -m1 -A3 "panicked at\|ERROR: libFuzzer\|==ERROR" "$log" | sed 's/^/    /' || true
    grep -m1 "Reproduce with" -A2 "$log" | sed 's/^/    /' || true
  fi
  # Plain mode ends with "stat::number_of_executed_units: N"; fork mode's progress
  # lines start with "#N:" (total executions so far).
  runs=$(grep -aoE "stat::number_of_executed_units: *[0-9]+|^#[0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || true)
  crashes=$(ls artifacts/"$t" 2>/dev/null | grep -c "^crash-" || true)
  summary+=("$t: $status, ${runs:-?} executions in ${seconds}s, corpus $(ls "work/$t" | wc -l) inputs, crash files ${crashes}")
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems: ${failed[*]} (logs in fuzz/work/, inputs in fuzz/artifacts/)"
  exit 1
fi
