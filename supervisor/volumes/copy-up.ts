/*
 * docker's copy-up: a new, empty volume mounted over a directory of the image gets that
 * directory's content first (owners, modes, xattrs, links kept). The source is the container's
 * rootfs, so the path is resolved *inside* it (symlinks followed as the container would see them,
 * never leaving it) and the copy reuses the layer code: a tree diff of the source against nothing,
 * applied to the volume, which walks with lstat and writes nothing through a symlink.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { applyLayer } from '../diff/apply';
import { writeDiff } from '../diff/write';
import { resolveInContainer } from './container-paths';

/**
 * The host path of `p` (absolute, as seen inside the container) under `root`, resolving symlinks as
 * if `root` were `/`: ".." stops at the root and absolute link targets restart from it. The result
 * is always under `root`; it may not exist.
 */
export function resolveInRoot(root: string, p: string): string {
  return resolveInContainer(root, [], p).host;
}

/** Copy `rootfs`'s content at container path `at` into the empty directory `data`; false if nothing there. */
export async function copyUp(rootfs: string, at: string, data: string): Promise<boolean> {
  const src = resolveInRoot(rootfs, at);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(src);
  } catch {
    return false;
  }
  if (!st.isDirectory() || fs.readdirSync(src).length === 0) return false;
  try {
    await applyLayer(writeDiff({ kind: 'tree', lower: null, upper: src }), data, {
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      whiteouts: 'apply',
    });
    if (process.getuid?.() === 0) fs.chownSync(data, st.uid, st.gid);
    fs.chmodSync(data, st.mode & 0o7777);
  } catch (e) {
    throw wrapSystemError(`copy ${at} of ${rootfs} into volume ${data}`, e);
  }
  return true;
}
