/*
 * `tsctl image inspect IMAGE…`, `tsctl history [--no-trunc] [-q] IMAGE`, `tsctl image prune [-a] [-f]`
 * and the `tsctl image SUBCOMMAND` dispatcher, over the Images, Content and Snapshots services,
 * with docker's output shapes. Image ids are config digests (docker's).
 */
import { createHash } from 'node:crypto';
import { TsrunError } from '../../../spec/errors';
import { RpcError, type TsrundClient } from '../../client';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { bytesDecimal, humanDuration, table } from '../format';
import { listContainers } from '../model';
import { dockerName, fullName, imageRecordName, images, rmi, tag } from './images';
import { pull, push } from './pull';
import { load, readAll, resolveManifest, save } from './save';

interface WireImage {
  name: string;
  target: { mediaType: string; digest: string; size: number | { toNumber(): number } };
}

interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
  comment?: string;
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

const num = (v: number | { toNumber(): number } | undefined): number => (v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : `sha256:${createHash('sha256').update(`${out[out.length - 1]!} ${d}`).digest('hex')}`);
  return out;
}

/** Each layer's own unpacked size (its overlayfs snapshot), or the compressed size when not unpacked. */
async function layerSizes(client: TsrundClient, diffIds: readonly string[], compressed: readonly number[]): Promise<number[]> {
  const chains = chainIds(diffIds);
  const out: number[] = [];
  for (const [i, key] of chains.entries()) {
    try {
      out.push(num((await client.call<{ size: number }>('Snapshots', 'Usage', { snapshotter: 'overlayfs', key })).size));
    } catch {
      out.push(compressed[i] ?? 0);
    }
  }
  return out;
}

interface Resolved {
  name: string;
  id: string;
  config: ImageConfig;
  sizes: number[];
  target: string;
}

async function resolveImage(client: TsrundClient, ref: string): Promise<Resolved> {
  let image: WireImage;
  try {
    // a name, else docker's image id (or a prefix of it)
    const name = (await imageRecordName(client, ref)) ?? fullName(ref);
    image = (await client.call<{ image: WireImage }>('Images', 'Get', { name })).image;
  } catch (e) {
    if (e instanceof RpcError && e.errorCode() === 'NotFound') throw new TsrunError('NotFound', `No such image: ${ref}`);
    throw e;
  }
  const m = await resolveManifest(client, { ...image.target }, ref);
  const config = JSON.parse((await readAll(client, m.config.digest)).toString('utf8')) as ImageConfig;
  const sizes = await layerSizes(client, config.rootfs?.diff_ids ?? [], m.layers.map((l) => num(l.size)));
  return { name: image.name, id: m.config.digest, config, sizes, target: image.target.digest };
}

async function allImages(client: TsrundClient): Promise<WireImage[]> {
  return (await client.call<{ images: WireImage[] }>('Images', 'List', {})).images;
}

/** `tsctl image inspect IMAGE…` */
export async function imageInspect(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'format', short: 'f', kind: 'string', help: 'only "json" (the default) is supported' }], false);
  if (a.operands.length === 0) throw usage('"image inspect" requires at least 1 argument');
  const all = await allImages(ctx.client);
  const out: unknown[] = [];
  let status = 0;
  for (const ref of a.operands) {
    let r: Resolved;
    try {
      r = await resolveImage(ctx.client, ref);
    } catch (e) {
      if (!(e instanceof TsrunError && e.code === 'NotFound')) throw e;
      ctx.warn(`Error: No such image: ${ref}`);
      status = 1;
      continue;
    }
    const same = all.filter((i) => i.target.digest === r.target);
    const repoTags = same.filter((i) => !i.name.includes('@') && dockerName(i.name)[1] !== '<none>').map((i) => dockerName(i.name).join(':'));
    const repoDigests = [...new Set(same.map((i) => `${dockerName(i.name)[0]}@${r.target}`))];
    const c = r.config;
    out.push({
      Id: r.id,
      RepoTags: repoTags,
      RepoDigests: repoDigests,
      Parent: '',
      Comment: c.comment ?? '',
      Created: c.created ?? '',
      DockerVersion: '',
      Author: c.author ?? '',
      Config: c.config ?? null,
      Architecture: c.architecture ?? '',
      ...(c.variant !== undefined ? { Variant: c.variant } : {}),
      Os: c.os ?? '',
      Size: r.sizes.reduce((x, y) => x + y, 0),
      GraphDriver: { Name: 'overlayfs', Data: null },
      RootFS: { Type: c.rootfs?.type ?? 'layers', Layers: c.rootfs?.diff_ids ?? [] },
      Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
    });
  }
  ctx.out(JSON.stringify(out, null, 4));
  return status;
}

/** `tsctl history IMAGE` */
export async function history(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'no-trunc', kind: 'bool', help: 'do not truncate output' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'only image ids' },
      { name: 'human', short: 'H', kind: 'bool', help: 'human-readable sizes and dates (default)' },
    ],
    false,
  );
  if (a.operands.length !== 1) throw usage('"history" requires exactly 1 argument');
  const r = await resolveImage(ctx.client, a.operands[0]!);
  const full = a.bools.has('no-trunc');
  const hist = r.config.history ?? [];
  // sizes go to the history entries that made a layer, in order
  let li = 0;
  const rows = hist.map((h) => ({ h, size: h.empty_layer === true ? 0 : (r.sizes[li++] ?? 0) }));
  rows.reverse();
  const id = full ? r.id : r.id.slice(7, 19);
  if (a.bools.has('quiet')) {
    rows.forEach((_, i) => ctx.out(i === 0 ? id : '<missing>'));
    return 0;
  }
  const now = Date.now();
  const by = (s: string): string => {
    const one = s.replace(/\s+/g, ' ');
    return full || one.length <= 45 ? one : `${one.slice(0, 44)}…`;
  };
  ctx.out(
    table([
      ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
      ...rows.map(({ h, size }, i) => [
        i === 0 ? id : '<missing>',
        h.created !== undefined && !Number.isNaN(Date.parse(h.created)) ? `${humanDuration(now - Date.parse(h.created))} ago` : 'N/A',
        by(h.created_by ?? ''),
        bytesDecimal(size),
        h.comment ?? '',
      ]),
    ]),
  );
  return 0;
}

/** `tsctl image prune [-a] [-f]`: untagged images (all unused ones with -a) no container uses. */
export async function imagePrune(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'all', short: 'a', kind: 'bool', help: 'remove all images no container uses, not only untagged ones' },
      { name: 'force', short: 'f', kind: 'bool', help: 'do not prompt (tsctl never prompts)' },
    ],
    false,
  );
  if (a.operands.length > 0) throw usage('"image prune" accepts no arguments');
  const used = new Set((await listContainers(ctx.client)).map((c) => fullName(c.image)));
  const all = await allImages(ctx.client);
  const usedTargets = new Set(all.filter((i) => used.has(i.name)).map((i) => i.target.digest));
  const dangling = (i: WireImage): boolean => i.name.includes('@') || dockerName(i.name)[1] === '<none>';
  const victims = all.filter((i) => (a.bools.has('all') || dangling(i)) && !usedTargets.has(i.target.digest));
  const lines: string[] = [];
  let reclaimed = 0;
  for (const [n, i] of victims.entries()) {
    const last = !all.some((o) => o.target.digest === i.target.digest && !victims.includes(o));
    const lastOfTarget = last && !victims.slice(n + 1).some((o) => o.target.digest === i.target.digest);
    let size = 0;
    if (lastOfTarget) size = (await resolveImage(ctx.client, i.name).catch(() => undefined))?.sizes.reduce((x, y) => x + y, 0) ?? 0;
    await ctx.client.call('Images', 'Delete', { name: i.name, sync: lastOfTarget });
    lines.push(`untagged: ${i.name.includes('@') ? `${dockerName(i.name)[0]}@${i.name.split('@')[1]!}` : dockerName(i.name).join(':')}`);
    if (lastOfTarget) {
      lines.push(`deleted: ${i.target.digest}`);
      reclaimed += size;
    }
  }
  if (lines.length > 0) ctx.out(['Deleted Images:', ...lines, ''].join('\n'));
  ctx.out(`Total reclaimed space: ${bytesDecimal(reclaimed)}`);
  return 0;
}

/** `tsctl image SUBCOMMAND …` */
export async function image(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'inspect':
      return imageInspect(ctx, rest);
    case 'history':
      return history(ctx, rest);
    case 'prune':
      return imagePrune(ctx, rest);
    case 'ls':
    case 'list':
      return images(ctx, rest);
    case 'rm':
    case 'remove':
      return rmi(ctx, rest);
    case 'tag':
      return tag(ctx, rest);
    case 'pull':
      return pull(ctx, rest);
    case 'push':
      return push(ctx, rest);
    case 'save':
      return save(ctx, rest);
    case 'load':
      return load(ctx, rest);
    default:
      throw usage(`"image" needs a subcommand: inspect, history, prune, ls, rm, tag, pull, push, save, load${sub !== undefined ? ` (not ${JSON.stringify(sub)})` : ''}`);
  }
}
