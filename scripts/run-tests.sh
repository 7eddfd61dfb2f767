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
# there before it; remove them then, unless a port mapping (someone else's) is still in them.
remove_hostport_chains() {
  local c rule
  if iptables -w 5 -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A '; then return; fi
  for c in PREROUTING OUTPUT POSTROUTING; do
    iptables -w 5 -t nat -S "$c" | grep -E -- '-j CNI-HOSTPORT-(DNAT|MASQ)$' | while read -r rule; do
      # eval: iptables -S quotes a comment's words the way the shell reads them back
      eval "iptables -w 5 -t nat -D ${rule#-A }"
    done
  done
  for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do iptables -w 5 -t nat -F "$c" 2>/dev/null; done
  for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do iptables -w 5 -t nat -X "$c" 2>/dev/null; done
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
