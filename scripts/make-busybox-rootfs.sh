#!/usr/bin/env bash
# Build a minimal root filesystem from busybox-static: /bin/busybox plus one relative symlink per
# applet (absolute links would point at the host path and break inside the container).
set -euo pipefail
dest=${1:?usage: make-busybox-rootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "make-busybox-rootfs: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dest"/{bin,proc,sys,dev,tmp,etc,root,run}
cp "$busybox" "$dest/bin/busybox"
for applet in $("$dest/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dest/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dest/etc/passwd"
echo 'root:x:0:' > "$dest/etc/group"
