#!/bin/sh
# tsctl's launcher: bin/tsctl, written from this template by the Makefile (@NODE@: the node that
# built the snapshot; @DIR@: the directory of tsctl.js, '' = find it at run time). It starts
# tsctl.js from its V8 startup snapshot (startup/entry.ts) when that node is still the same file
# (same mtime as tsctl.blob-node), as bin/tsrun does (runtime/cli/startup/README.md); otherwise, or
# with TSCTL_NO_SNAPSHOT set, node on $PATH runs the plain bundle. No forks unless reached
# through a symlink; exec keeps the pid, the fds and the signals.
dir="@DIR@"
if [ -z "$dir" ]; then
  self=$0
  if [ -L "$self" ]; then self=$(readlink -f -- "$self"); fi
  case $self in */*) dir=${self%/*} ;; *) dir=. ;; esac
  # Absolute: node takes a script path given with --snapshot-blob as is (koffi is found from it).
  case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
fi
node=@NODE@
# node parses every certificate of NODE_EXTRA_CA_CERTS at start-up; tsctl speaks no TLS itself
# (pull and push run in tsrund).
unset NODE_EXTRA_CA_CERTS
# Huge pages for the buffers node reads the snapshot into, as bin/tsrun's launcher gives (its
# comment in runtime/cli/startup/launcher.sh says why); entry.ts drops it again at start, so
# nothing tsctl starts inherits it. A caller's own GLIBC_TUNABLES is left as it is.
if [ -z "${GLIBC_TUNABLES+set}" ]; then
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432
  export GLIBC_TUNABLES
fi
# shellcheck disable=SC3013 # -nt/-ot: dash, busybox sh and bash all have them, and they compare mtimes without a fork
if [ -z "${TSCTL_NO_SNAPSHOT:-}" ] && [ -r "$dir/tsctl.blob" ] && [ -e "$dir/tsctl.blob-node" ] \
  && ! [ "$node" -nt "$dir/tsctl.blob-node" ] && ! [ "$node" -ot "$dir/tsctl.blob-node" ]; then
  # --no-rehash-snapshot as the snapshot was built (SNAPSHOT_FLAGS in the Makefile)
  exec "$node" --no-rehash-snapshot --snapshot-blob "$dir/tsctl.blob" "$dir/tsctl.js" "$@"
fi
exec node "$dir/tsctl.js" "$@"
