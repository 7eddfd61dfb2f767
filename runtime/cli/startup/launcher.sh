#!/bin/sh
# tsrun's launcher: bin/tsrun, written from this template by scripts/gen.ts (startup/launcher.ts
# fills in the node, the directory and the lists of runtime/cli/verbs.ts). runtime/cli/startup/
# README.md tells the whole start-up; in short: pick the bundle by the verb (the lifecycle
# bundle's snapshot is smaller, so it loads sooner), and start it from its V8 startup snapshot
# when the node that built the snapshot (@NODE@) is still the same file (same mtime as
# bin/tsrun.blob-node); otherwise, or with TSRUN_NO_SNAPSHOT set, node on $PATH runs the plain
# bundle. No forks: `make install` fills in the directory; bin/tsrun finds its own and runs
# readlink only when reached through a symlink. exec keeps the pid, the fds and the signals.
dir="@DIR@"
if [ -z "$dir" ]; then
  self=$0
  if [ -L "$self" ]; then self=$(readlink -f -- "$self"); fi
  case $self in */*) dir=${self%/*} ;; *) dir=. ;; esac
  # Absolute, because node resolves a script path given to --snapshot-blob as is (koffi is found from it).
  case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
fi
node=@NODE@
# node reads and parses every certificate in NODE_EXTRA_CA_CERTS at start-up, before any of our
# code runs. tsrun makes no TLS connections, and nothing it starts inherits its environment (hooks
# and the container get the env their config gives), so it goes.
unset NODE_EXTRA_CA_CERTS
# Most of a start-up spent past `node -e 0` is page faults: node reads the snapshot into a
# malloc'd buffer, copies its code cache out, and deserialises it into fresh heap pages. These glibc
# tunables keep allocations under 32 MiB on malloc's heap (no mmap per block) and let it madvise
# that heap for transparent huge pages, so the buffers fault in 2 MiB at a time where THP is
# `madvise` or `always` (a no-op where it is `never`): fewer faults, which matters most on a VM
# whose fresh pages are slow to fault (bench/RESULTS.md). A caller's own GLIBC_TUNABLES is left as
# it is; the CLI drops ours from its env at start (startup/env.ts), so nothing tsrun starts
# inherits it. Shims are long-lived and do not use this: huge pages would add to their memory.
if [ -z "${GLIBC_TUNABLES+set}" ]; then
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432
  export GLIBC_TUNABLES
fi
# --preserve-fds N hands the container fds 3..3+N-1, but only those the caller really passed may
# go: where the caller had one closed, node's own fds (epoll, eventfd, pipes) land there once it
# starts. So list here, before node exists, which fds the caller gave us (this script's own fd,
# which the shell holds to read it, excluded); runtime/cli/caller-fds.ts refuses any other.
# The glob's directory fd is closed again before the loop body tests it, so -e drops it.
unset TSRUN_CALLER_FDS
for a in "$@"; do
  case $a in
    --preserve-fds | --preserve-fds=*)
      TSRUN_CALLER_FDS=
      for f in "/proc/$$/fd/"*; do
        n=${f##*/}
        # shellcheck disable=SC3013 # -ef: dash, busybox sh and bash all have it
        if [ "$n" -gt 2 ] && [ -e "$f" ] && ! [ "$f" -ef "$0" ]; then TSRUN_CALLER_FDS="$TSRUN_CALLER_FDS $n"; fi
      done
      export TSRUN_CALLER_FDS
      break
      ;;
  esac
done
# shellcheck disable=SC3013 # -nt/-ot: dash, busybox sh and bash all have them, and they are the only way to compare mtimes without a fork
if [ -z "${TSRUN_NO_SNAPSHOT:-}" ] && [ -r "$dir/tsrun.blob" ] && [ -e "$dir/tsrun.blob-node" ] \
  && ! [ "$node" -nt "$dir/tsrun.blob-node" ] && ! [ "$node" -ot "$dir/tsrun.blob-node" ]; then
  cli=tsrun
  value=
  for a in "$@"; do
    if [ -n "$value" ]; then value=; continue; fi
    case $a in
      @GLOBAL_VALUE_FLAGS@) value=1 ;;
      -*) ;;
      @LIFECYCLE_VERBS@) [ -r "$dir/tsrun-lifecycle.blob" ] && cli=tsrun-lifecycle; break ;;
      *) break ;;
    esac
  done
  # --no-rehash-snapshot as the snapshots were built (see SNAPSHOT_FLAGS in the Makefile).
  exec "$node" --no-rehash-snapshot --snapshot-blob "$dir/$cli.blob" "$dir/$cli.js" "$@"
fi
exec node "$dir/tsrun.js" "$@"
