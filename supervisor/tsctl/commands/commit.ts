/*
 * `tsctl commit [-a AUTHOR] [-m MSG] [-c INSTRUCTION]… [-p=false] CONTAINER [REPO[:TAG]]`, docker's:
 *
 *   pause      a running container is paused while its changes are read (default), resumed after
 *   layer      Diff.Diff of the container's snapshot against its parent (supervisor/build/layer.ts)
 *   config     the image's config with the container's Cmd, Entrypoint and Env, --change
 *              instructions applied, the diff id and a history entry (created_by = the command)
 *   image      manifest, config and layer in the content store; unpacked (Diff.Apply into the new
 *              chain) so `tsctl run` starts at once; named REPO:TAG, else untagged@<image id>
 *
 * Prints the image id (sha256:…). Everything is made under one lease, so a failure leaves nothing.
 */
import { TsrunError } from '../../../spec/errors';
import { parseDockerfile } from '../../build/dockerfile';
import { appendStep, cloneState, diffLayer, nameImage, readImageState, storeImage, unpackState, untaggedName, withLease, type ImageState } from '../../build/layer';
import { applyMetadata, CHANGE_INSTRUCTIONS, envVars } from '../../build/metadata';
import { dropMountPoints } from '../../build/mountpoints';
import type { TsrundClient } from '../../client';
import { parseArgs } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { chainIds, IMAGE_LABELS, SNAPSHOTTER, type SnapshotMount } from '../image-run';
import { findContainer } from '../model';
import { fullName } from './images';
import { randomBytes } from 'node:crypto';

/** The image a container was made from: by its name, else any record whose config is the id. */
async function parentImage(client: TsrundClient, name: string, id: string | undefined): Promise<ImageState> {
  const first = await readImageState(client, name).catch(() => undefined);
  if (first !== undefined && (id === undefined || first.id === id)) return first.state;
  const { images } = await client.call<{ images: Array<{ name: string }> }>('Images', 'List', { filters: [] });
  for (const i of images) {
    const r = await readImageState(client, i.name).catch(() => undefined);
    if (r !== undefined && r.id === id) return r.state;
  }
  throw new TsrunError('NotFound', `commit: the image ${name} (${id ?? 'unknown id'}) the container was made from is no longer in the store`);
}

/** Apply docker's --change instructions (one instruction per flag). */
export function applyChanges(s: ImageState, changes: readonly string[]): void {
  const flags = { cmdSet: true };
  for (const ch of changes) {
    for (const ins of parseDockerfile(ch).instructions) {
      if (!CHANGE_INSTRUCTIONS.has(ins.cmd)) throw usage(`${ins.cmd} is not a valid change command`);
      applyMetadata(s.config, ins, envVars(s.config.config.Env), '\\', flags);
    }
  }
}

/** `tsctl commit` */
export async function commit(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'author', short: 'a', kind: 'string', help: 'author (e.g. "Jane <jane@example.com>")' },
      { name: 'message', short: 'm', kind: 'string', help: 'commit message' },
      { name: 'change', short: 'c', kind: 'list', help: 'apply a Dockerfile instruction to the image (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR)' },
      { name: 'pause', short: 'p', kind: 'bool', help: 'pause the container during commit (default true)' },
    ],
    false,
  );
  if (a.operands.length < 1 || a.operands.length > 2) throw usage('"commit" requires at least 1 and at most 2 arguments: tsctl commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]');
  const pause = !argv.some((x) => /^(--pause|-p)=false$/.test(x));
  const { client } = ctx;
  const c = await findContainer(client, a.operands[0]!);
  const { container } = await client.call<{ container: { image: string; snapshotKey: string; snapshotter: string } }>('Containers', 'Get', { id: c.id });
  if (container.snapshotKey === '') throw withExit(new TsrunError('InvalidArgument', `commit ${c.name}: the container runs on a rootfs directory, not an image`), 1);
  const parent = await parentImage(client, container.image, c.labels[IMAGE_LABELS.id]);
  const target = a.operands[1] === undefined ? undefined : fullName(a.operands[1]);
  const s = cloneState(parent);
  // docker commits the container's own config: its command and environment
  const parseList = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : (JSON.parse(v) as string[]));
  const ep = parseList(c.labels[IMAGE_LABELS.entrypoint]);
  const cmd = parseList(c.labels[IMAGE_LABELS.cmd]);
  if (ep !== undefined) s.config.config.Entrypoint = ep.length > 0 ? ep : null;
  if (cmd !== undefined) s.config.config.Cmd = cmd.length > 0 ? cmd : null;
  const env = ((c.spec['process'] as { env?: string[] } | undefined)?.env ?? []).filter((e) => !e.startsWith('HOSTNAME='));
  if (env.length > 0) s.config.config.Env = env;
  applyChanges(s, a.lists.get('change') ?? []);
  const snapshotter = container.snapshotter || SNAPSHOTTER;
  const id = await withLease(client, async (lc) => {
    const paused = pause && c.state === 'running';
    if (paused) await lc.call('Tasks', 'Pause', { containerId: c.id });
    let layer;
    try {
      const { mounts } = await lc.call<{ mounts: SnapshotMount[] }>('Snapshots', 'Mounts', { snapshotter, key: container.snapshotKey });
      // an overlay mount names its lower layers itself; a bind (native) needs the parent's tree
      if (mounts[0]?.type === 'overlay' || parent.layers.length === 0) layer = await diffLayer(lc, mounts, []);
      else {
        const viewKey = `commit-view-${randomBytes(6).toString('hex')}`;
        const chain = chainIds(parent.config.rootfs.diff_ids);
        const { mounts: lower } = await lc.call<{ mounts: SnapshotMount[] }>('Snapshots', 'View', { snapshotter, key: viewKey, parent: chain[chain.length - 1]!, labels: {} });
        try {
          layer = await diffLayer(lc, mounts, lower);
        } finally {
          await lc.call('Snapshots', 'Remove', { snapshotter, key: viewKey }).catch(() => undefined);
        }
      }
    } finally {
      if (paused) await lc.call('Tasks', 'Resume', { containerId: c.id }).catch((e: unknown) => ctx.warn(`tsctl: resume ${c.name}: ${String(e)}`));
    }
    // the runtime's mount points (/etc/hosts…) are not the container's changes (docker's init layer)
    if (layer !== undefined) layer = await dropMountPoints(lc, layer);
    const author = a.strings.get('author');
    if (author !== undefined) s.config.author = author;
    appendStep(s, layer, {
      created_by: [...(ep ?? []), ...(cmd ?? c.command)].join(' '),
      ...(author !== undefined ? { author } : {}),
      ...(a.strings.has('message') ? { comment: a.strings.get('message')! } : {}),
    });
    const { config, manifest } = await storeImage(lc, s);
    const name = target ?? untaggedName(config.digest);
    await unpackState(lc, s, name, config.digest);
    await nameImage(lc, name, manifest);
    return config.digest;
  });
  ctx.out(id);
  return 0;
}
