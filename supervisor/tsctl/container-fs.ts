/*
 * A container's file system, for `diff`, `cp` and `export` (docs/tsctl.md):
 *
 *   image container   its snapshot (Snapshots.Mounts of its snapshotKey): an overlay whose
 *                     upperdir is the container's layer and lowerdirs the image's layers
 *   directory rootfs  the spec's root.path
 *
 * withContainerRoot hands a callback the host directory showing the container's root:
 *   - the rootfs mount tsrund made for its task, found in /proc/self/mountinfo by the upperdir
 *     (a created, running, paused or stopped task keeps it until the task is deleted);
 *   - else the snapshot mounted on a private temporary directory, unmounted afterwards;
 *   - a running container is paused (frozen) meanwhile, so none of its processes can swap a
 *     directory for a symlink between the checks made on a path and its use (CVE-2018-15664; podman
 *     cp pauses by default for it, docker chroots its archiver instead), and resumed whatever
 *     happens.
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';
import type { Ctx } from './context';
import { SNAPSHOTTER, withMountedSnapshot, type SnapshotMount } from './image-run';
import type { ContainerInfo } from './model';

/** Where a container's files are. */
export type ContainerLayer =
  | { kind: 'snapshot'; snapshotter: string; key: string; mounts: SnapshotMount[] }
  | { kind: 'dir'; root: string };

/** The container's layer: its snapshot, or its directory rootfs. */
export async function containerLayer(ctx: Ctx, c: ContainerInfo): Promise<ContainerLayer> {
  const { container } = await ctx.client.call<{ container: { snapshotter: string; snapshotKey: string } }>('Containers', 'Get', { id: c.id });
  if (container.snapshotKey !== '') {
    const snapshotter = container.snapshotter || SNAPSHOTTER;
    const { mounts } = await ctx.client.call<{ mounts: SnapshotMount[] }>('Snapshots', 'Mounts', { snapshotter, key: container.snapshotKey });
    return { kind: 'snapshot', snapshotter, key: container.snapshotKey, mounts };
  }
  const root = (c.spec as { root?: { path?: string } }).root?.path;
  if (root === undefined || root === '') throw new TsrunError('FailedPrecondition', `container ${c.name}: neither a snapshot nor a rootfs path`);
  return { kind: 'dir', root };
}

/** The upper dir and the lower dirs (top first) of an overlay snapshot's mounts. */
export function overlayDirs(mounts: readonly SnapshotMount[]): { upper: string; lowers: string[] } | undefined {
  if (mounts.length !== 1) return undefined;
  const m = mounts[0]!;
  if (m.type === 'bind') return { upper: m.source, lowers: [] };
  if (m.type !== 'overlay') return undefined;
  const opt = (k: string): string | undefined => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const upper = opt('upperdir');
  if (upper === undefined) return undefined;
  return { upper, lowers: (opt('lowerdir') ?? '').split(':').filter((l) => l !== '') };
}

/** mountinfo's octal escapes (\040 for a space) undone. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount point of an overlay mount whose upperdir is `upper`, if one is mounted here. */
export function mountedOverlay(upper: string, mountinfo = '/proc/self/mountinfo'): string | undefined {
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'overlay') continue;
    if (!unescapeMountinfo(superOpts).split(',').includes(`upperdir=${upper}`)) continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint !== undefined) return unescapeMountinfo(mountPoint);
  }
  return undefined;
}

/** Run `fn` with the container paused when it is running; resumed afterwards whatever happens. */
export async function withFrozen<T>(ctx: Ctx, c: ContainerInfo, fn: () => Promise<T>): Promise<T> {
  if (c.state !== 'running') return fn();
  await ctx.client.call('Tasks', 'Pause', { containerId: c.id });
  try {
    return await fn();
  } finally {
    await ctx.client.call('Tasks', 'Resume', { containerId: c.id });
  }
}

/** Run `fn` on a host directory showing the container's root file system (see the top of the file). */
export async function withContainerRoot<T>(ctx: Ctx, c: ContainerInfo, fn: (root: string) => Promise<T>): Promise<T> {
  const layer = await containerLayer(ctx, c);
  return withFrozen(ctx, c, async () => {
    if (layer.kind === 'dir') return fn(layer.root);
    const dirs = overlayDirs(layer.mounts);
    const mounted = dirs !== undefined && dirs.lowers.length > 0 ? mountedOverlay(dirs.upper) : undefined;
    if (mounted !== undefined) return fn(mounted);
    if (c.state === 'running' || c.state === 'paused') {
      // a second overlay on a live upper dir is undefined behaviour (overlayfs.rst): refuse instead
      throw new TsrunError('FailedPrecondition', `container ${c.name} is running but its rootfs mount is not visible here (tsctl and tsrund in different mount namespaces?)`);
    }
    return withMountedSnapshot(layer.mounts, fn);
  });
}
