#!/usr/bin/env bash
# make fuzz: run the plan decoder's libFuzzer target (build/decode_fuzz) for FUZZ_SECONDS from the
# seed plans in build/fuzz-seeds, and report it as one TAP test point for scripts/run-tests.sh.
# New inputs go to a temp corpus (deleted after), so the seeds stay the ones the build made.
# FUZZ_TARGET, FUZZ_SEEDS and FUZZ_WHAT pick another target (make fuzz-shim: the native shim's
# control-frame decoder, seeded from its own frames).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
seconds=${FUZZ_SECONDS:-25}
target=${FUZZ_TARGET:-build/decode_fuzz}
seeds=${FUZZ_SEEDS:-build/fuzz-seeds}
what=${FUZZ_WHAT:-plan decoder}
corpus=$(mktemp -d /tmp/tsrun-fuzz.XXXXXX)
log=$(mktemp /tmp/tsrun-fuzz-log.XXXXXX)
trap 'rm -rf "$corpus" "$log"' EXIT
echo "TAP version 14"
echo "1..1"
# -artifact_prefix keeps a crashing input in build/ for `build/decode_fuzz <file>` to replay.
if "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -artifact_prefix=build/fuzz- \
  "$corpus" "$seeds" >"$log" 2>&1; then
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 || true)
  echo "ok 1 - ${what} fuzzed for ${seconds} s from $(find "$seeds" -type f | wc -l) seeds: ${runs:-done}, no crash"
else
  echo "not ok 1 - ${what} fuzz run failed (crash input: build/fuzz-*)"
  sed 's/^/# /' "$log" | tail -40
  exit 1
fi
