#!/usr/bin/env bash
# make demo: a busybox bundle in demo/, run in the foreground with tsrun, showing its isolation.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "make demo needs root (namespaces, mounts)" >&2; exit 1; }
rm -rf demo && mkdir -p demo
bash scripts/make-busybox-rootfs.sh demo/rootfs
bin/tsrun spec --bundle demo
# shellcheck disable=SC2016 # the $ signs are the container shell's, not ours
node -e '
  const fs = require("fs"); const f = "demo/config.json"; const c = JSON.parse(fs.readFileSync(f, "utf8"));
  c.process.terminal = false;
  c.hostname = "tsrun-demo";
  c.process.args = ["/bin/sh", "-c", [
    "echo \"== I am PID $$ in my own PID namespace\"",
    "echo \"== hostname: $(hostname)\"",
    "echo \"== my processes:\"; ps -o pid,comm",
    "echo \"== my mounts:\"; cat /proc/self/mounts",
    "echo \"== my network interfaces:\"; ip -o link | cut -d: -f2",
    "echo \"== my open fds (the shell, PID 1):\"; ls /proc/$$/fd",
    "echo \"== done\"",
  ].join("; ")];
  fs.writeFileSync(f, JSON.stringify(c, null, 2));
'
id="tsrun-demo-$$"
echo "\$ tsrun run --bundle demo $id"
set +e
bin/tsrun run --bundle demo "$id"
rc=$?
set -e
echo "container exited with status $rc"
bin/tsrun delete --force "$id"
exit $rc
