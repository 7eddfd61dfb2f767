#!/bin/sh
# tsrun's launcher (bin/tsrun, written by the bin/tsrun recipe from runtime/cli/launcher.sh).
#
# The CLI is bin/tsrun.js. Started plainly, node spends most of tsrun's start-up compiling and
# initialising that bundle (yargs, zod, the runtime); bin/tsrun.blob is a V8 startup snapshot of
# it with every module already initialised (runtime/cli/entry.ts). A snapshot only loads into the
# node binary that built it, so it is used only when that binary (@NODE@) still has the
# modification time recorded on bin/tsrun.blob-node; otherwise, or with TSRUN_NO_SNAPSHOT set,
# node on $PATH runs the plain bundle. No forks on the common path: `make install` symlinks to
# this file, and only then is readlink run. exec keeps the pid, the fds and the signals the
# caller gave us.
self=$0
if [ -L "$self" ]; then self=$(readlink -f -- "$self"); fi
case $self in */*) dir=${self%/*} ;; *) dir=. ;; esac
# Absolute, because node resolves a script path given to --snapshot-blob as is (koffi is found from it).
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
node=@NODE@
if [ -z "${TSRUN_NO_SNAPSHOT:-}" ] && [ -r "$dir/tsrun.blob" ] && [ -e "$dir/tsrun.blob-node" ] \
  && ! [ "$node" -nt "$dir/tsrun.blob-node" ] && ! [ "$node" -ot "$dir/tsrun.blob-node" ]; then
  exec "$node" --snapshot-blob "$dir/tsrun.blob" "$dir/tsrun.js" "$@"
fi
exec node "$dir/tsrun.js" "$@"
