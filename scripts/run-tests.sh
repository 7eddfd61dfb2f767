#!/usr/bin/env bash
# make test: lint, unit tests (no root), the C decoders' TAP tests (plan, native shim), short fuzz runs of both decoders,
# and integration tests (as root, real containers). Prints every runner's output, the failing points, then one last
# line "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=$(mktemp -d /tmp/tsrun-tests.XXXXXX)
trap 'rm -rf "$out"' EXIT
passed=0; failed=0; skipped=0

# Add one TAP stream's leaf counts; a runner that failed without a failing test point counts as one failure.
tally() {
  local name=$1 rc=$2 p f s
  cat "$out/$name.tap"
  read -r p f s < <(node scripts/tap-leaves.cjs "$out/$name.tap" 2>>"$out/failures")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    failed=$((failed + 1)); echo "# $name: runner exited $rc without a failing test point" | tee -a "$out/failures"
  fi
}

# The portmap plugin's shared nat chains (CNI-HOSTPORT-*) stay once made, whoever made them: the
# tests' tsrunds, containerd's CRI and ctr --cni all map ports through it, and no single test can
# tell whether another running beside it still needs them. The suite made them when they were not
# there before it; remove them then, in one iptables-restore transaction: its -X of
# CNI-HOSTPORT-DNAT fails while that chain holds anyone's mapping, which aborts the whole of it, so
# a mapping added between a look and the removal is never flushed away.
remove_hostport_chains() {
  local rules text made
  rules=$(iptables-save -t nat 2>/dev/null) || return 0
  made=$(grep -oE '^:CNI-HOSTPORT-(DNAT|MASQ|SETMARK) ' <<<"$rules" | tr -d ': ')
  [ -n "$made" ] || return 0
  text="*nat"$'\n'
  # the jumps into them from the built-in chains, as -D lines (iptables-save prints them as -A)
  text+=$(grep -E -- '^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-(DNAT|MASQ)$' <<<"$rules" | sed 's/^-A /-D /')$'\n'
  # portmap's fixed rules (the mark and the masquerade) are flushed; the DNAT chain is not
  for c in $made; do [ "$c" = CNI-HOSTPORT-DNAT ] || text+="-F $c"$'\n'; done
  for c in $made; do text+="-X $c"$'\n'; done
  text+="COMMIT"$'\n'
  iptables-restore -w 5 --noflush <<<"$text" >/dev/null 2>&1 || true
  return 0
}

# A check that is not TAP (make lint) becomes one test point, its output kept as comments.
point() {
  local name=$1; shift
  if "$@" > "$out/$name.log" 2>&1; then echo "ok 1 - $name" > "$out/$name.tap"
  else { echo "not ok 1 - $name"; sed 's/^/# /' "$out/$name.log"; } > "$out/$name.tap"; fi
}

echo "== lint"
point lint make -s lint
tally lint 0

echo "== unit"
npx --no-install tap --reporter=tap --disable-coverage --allow-empty-coverage test/unit > "$out/unit.tap" 2>&1
tally unit $?

echo "== native"
make -s test-native > "$out/native.tap" 2>&1
tally native $?

echo "== native shim"
make -s test-native-shim > "$out/native-shim.tap" 2>&1
tally native-shim $?

echo "== fuzz"
make -s fuzz > "$out/fuzz.tap" 2>&1
tally fuzz $?
make -s fuzz-shim > "$out/fuzz-shim.tap" 2>&1
tally fuzz-shim $?

if [ "$(id -u)" = 0 ]; then
  echo "== integration"
  hostport_before=$(iptables -w 5 -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 && echo yes || echo no)
  npx --no-install tap --reporter=tap --disable-coverage --allow-empty-coverage --jobs=2 --timeout=600 test/integration > "$out/integration.tap" 2>&1
  tally integration $?
  if [ "$hostport_before" = no ]; then remove_hostport_chains; fi
else
  echo "# integration tests skipped: they need root (real containers)"
fi
echo "# skipped: $skipped"
# CI keeps only a log's tail: name what failed just above the count.
if [ -s "$out/failures" ]; then echo "# failed:"; sed 's/^/#   /' "$out/failures"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
