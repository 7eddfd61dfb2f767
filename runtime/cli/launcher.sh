#!/bin/sh
# tsrun's launcher (bin/tsrun, written by the bin/tsrun recipe from runtime/cli/launcher.sh).
#
# The CLI is bin/tsrun.js. Started plainly, node spends most of tsrun's start-up compiling and
# initialising that bundle (yargs, zod, the runtime); bin/tsrun.blob is a V8 startup snapshot of
# it with every module already initialised (runtime/cli/entry.ts). Loading a snapshot costs
# time by its size, so start, state, kill and delete, the verbs engines call on every container,
# get a bundle of their own with a snapshot half as big: bin/tsrun-lifecycle.{js,blob}
# (runtime/cli/entry-lifecycle.ts). The verb is the first word that is not a global flag or its
# value; a wrong guess costs only time, since that bundle hands any command line it does not take
# to bin/tsrun.js. A snapshot only loads into the node binary that built it, so the snapshots are
# used only when that binary (@NODE@) still has the modification time recorded on
# bin/tsrun.blob-node; otherwise, or with TSRUN_NO_SNAPSHOT set, node on $PATH runs the plain
# bundle. No forks: `make install` writes $(PREFIX)/bin/tsrun with its directory filled in below;
# bin/tsrun finds its own, and runs readlink only when reached through a symlink. exec
# keeps the pid, the fds and the signals the caller gave us.
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
# code runs (47 ms per start with Debian's 140-certificate bundle, measured on the bench host).
# tsrun makes no TLS connections, and nothing it starts inherits its environment (hooks and the
# container get the env their config gives), so it goes.
unset NODE_EXTRA_CA_CERTS
# Most of a start-up spent past `node -e 0` is page faults: node reads the snapshot (4-6 MB) into a
# malloc'd buffer, copies its code cache out, and deserialises it into fresh heap pages. These glibc
# tunables keep allocations under 32 MiB on malloc's heap (no mmap per block) and let it madvise
# that heap for transparent huge pages, so the buffers fault in 2 MiB at a time where THP is
# `madvise` or `always` (a no-op where it is `never`). On a VM whose fresh pages are slow to fault
# (10-11 us each on the firecracker bench host: free page reporting hands freed guest memory back
# to the host) they took `tsrun state` from 92 to 60 ms and `tsrun run` from 168 to 123 ms (one
# bench run, A/B). A caller's own GLIBC_TUNABLES is left as it is; the CLI drops ours from its env
# at start (runtime/cli/env.ts), so nothing tsrun starts inherits it. Shims are long-lived and do
# not use this: huge pages would add to their memory.
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
      --root | --log | --log-format | --criu | --rootless) value=1 ;;
      -*) ;;
      start | state | kill | delete) [ -r "$dir/tsrun-lifecycle.blob" ] && cli=tsrun-lifecycle; break ;;
      *) break ;;
    esac
  done
  # --no-rehash-snapshot as the snapshots were built (see SNAPSHOT_FLAGS in the Makefile).
  exec "$node" --no-rehash-snapshot --snapshot-blob "$dir/$cli.blob" "$dir/$cli.js" "$@"
fi
exec node "$dir/tsrun.js" "$@"
