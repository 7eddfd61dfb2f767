/*
 * A task's rootfs from mounts (Tasks.Create's `rootfs`, which ctr sends for image containers: the
 * snapshotter's mounts). containerd's shim mounts them on <bundle>/rootfs; tsrund mounts them on
 * <state>/rootfs/<ns>/<id> instead, outside the shim directory (the shim removes its directory
 * recursively on delete, which must never walk into a container's filesystem), and hands the shim
 * a spec whose root.path names that directory. Unmounted (detached if busy) when the task is
 * deleted or its create fails; `unmountRootfs` is idempotent, so a restarted tsrund cleans up too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { mountOne, unmountOne } from '../snapshots/mount';

/** One containerd.types.Mount. */
export interface RootfsMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** Where the rootfs of task `id` in `ns` is mounted, given the shim root (<state>/shims). */
export function rootfsDir(shimRoot: string, ns: string, id: string): string {
  return path.join(path.dirname(shimRoot), 'rootfs', ns, id);
}

function isMountpoint(dir: string): boolean {
  const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const esc = dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((l) => l.split(' ')[4] === esc);
}

/** Mount `mounts` in order on `dir` and return `spec` (OCI JSON) with root.path = dir. */
export function mountRootfs(dir: string, mounts: readonly RootfsMount[], spec: Uint8Array): Uint8Array {
  let parsed: { root?: { path?: string; readonly?: boolean } };
  try {
    parsed = JSON.parse(Buffer.from(spec).toString('utf8')) as typeof parsed;
  } catch (e) {
    throw new TsrunError('InvalidArgument', `rootfs mounts: the container's spec is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  try {
    for (const [i, m] of mounts.entries()) mountOne(m, dir, `mount rootfs ${i} (${m.type} ${m.source}) on ${dir}`);
  } catch (e) {
    unmountRootfs(dir);
    throw e;
  }
  parsed.root = { ...(parsed.root ?? {}), path: dir };
  return Buffer.from(JSON.stringify(parsed));
}

/**
 * A start-up sweep's step for a directory where a rootfs may have been left mounted: unmounted and
 * removed only when something is mounted on it. An empty directory is left: the directory these
 * live in sits beside the shim root, which a user may have put next to a `rootfs` of their own.
 */
export function unmountLeftoverRootfs(dir: string): boolean {
  if (!isMountpoint(dir)) return false;
  unmountRootfs(dir);
  return true;
}

/** Unmount everything stacked on `dir` and remove it; nothing mounted → just the rmdir. */
export function unmountRootfs(dir: string): void {
  if (!fs.existsSync(dir)) return;
  // a failure is seen below: still mounted
  for (let i = 0; i < 16 && isMountpoint(dir); i++) unmountOne(dir);
  if (isMountpoint(dir)) throw new TsrunError('Internal', `unmount rootfs ${dir}: still mounted`);
  fs.rmdirSync(dir);
}
