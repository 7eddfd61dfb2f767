/*
 * `tsctl images [-q] [--no-trunc] [--format json|table]`, `tsctl rmi [-f] IMAGE…`, `tsctl tag SRC DST`
 * over tsrund's Images, Content and Snapshots services (docs/images.md).
 *
 * Names as docker shows them: docker.io/library/NAME:TAG → NAME:TAG, other registries keep their
 * host. IMAGE ID is the config digest (docker's image id); SIZE the unpacked size (the overlayfs
 * snapshots of the chain) when unpacked, else the compressed size of config and layers.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { bytesDecimal, humanDuration, table } from '../format';
import { TsrunError } from '../../../spec/errors';
import { RpcError, type TsrundClient } from '../../client';
import { listContainers } from '../model';

interface WireImage {
  name: string;
  labels: Record<string, string>;
  target: { mediaType: string; digest: string; size: number | { toNumber(): number } } | null;
  createdAt: { seconds: number | { toNumber(): number } } | null;
}

interface ImageRow {
  name: string;
  repository: string;
  tag: string;
  id: string;
  createdMs: number;
  size: number;
}

const num = (v: number | { toNumber(): number } | undefined | null): number => (v === undefined || v === null ? 0 : typeof v === 'number' ? v : v.toNumber());

/** docker's short form of a containerd image name: [repository, tag]. */
export function dockerName(name: string): [string, string] {
  let ref = name.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return [ref.slice(0, colon), ref.slice(colon + 1)];
  return [ref, '<none>'];
}

/** A short name as docker accepts it, as the containerd name ("busybox" → docker.io/library/busybox:latest). */
export function fullName(ref: string): string {
  let r = ref;
  const lastSlash = r.lastIndexOf('/');
  if (r.lastIndexOf(':') <= lastSlash && !r.includes('@')) r = `${r}:latest`;
  const first = r.split('/')[0]!;
  if (!r.includes('/')) return `docker.io/library/${r}`;
  if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return `docker.io/${r}`;
  return r;
}

async function readBlob(client: TsrundClient, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of client.stream<{ data: Uint8Array }>('Content', 'Read', { digest }).messages) parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}

/** The linux/amd64 (or only) manifest of a target, its config and layers. */
async function manifestOf(client: TsrundClient, target: { mediaType: string; digest: string }): Promise<{ config: { digest: string; size: number }; layers: Array<{ size: number }> }> {
  let doc = JSON.parse((await readBlob(client, target.digest)).toString('utf8')) as {
    manifests?: Array<{ digest: string; mediaType: string; platform?: { os?: string; architecture?: string } }>;
    config?: { digest: string; size: number };
    layers?: Array<{ size: number }>;
  };
  if (doc.manifests !== undefined) {
    const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch;
    const m = doc.manifests.find((x) => x.platform?.os === 'linux' && x.platform.architecture === arch) ?? doc.manifests[0];
    if (m === undefined) throw new Error(`image index ${target.digest} lists no manifest`);
    doc = JSON.parse((await readBlob(client, m.digest)).toString('utf8')) as typeof doc;
  }
  if (doc.config === undefined) throw new Error(`manifest of ${target.digest} has no config`);
  return { config: doc.config, layers: doc.layers ?? [] };
}

function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : `sha256:${createHash('sha256').update(`${out[out.length - 1]!} ${d}`).digest('hex')}`);
  return out;
}

/** Whether `ref` can be an image id or a prefix of one, as docker reads it ("sha256:" optional). */
function maybeId(ref: string): boolean {
  return /^(sha256:)?[0-9a-f]{1,64}$/.test(ref);
}

/**
 * The names of the image records whose image id (config digest) starts with `ref`, docker's
 * second way to name an image: all of them share one id; none when `ref` is not an id prefix.
 * An id prefix that fits two different images is refused, as docker refuses it.
 */
export async function namesById(client: TsrundClient, ref: string): Promise<string[]> {
  if (!maybeId(ref)) return [];
  const want = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
  const { images } = await client.call<{ images: WireImage[] }>('Images', 'List', {});
  const byId = new Map<string, string[]>();
  for (const i of images) {
    if (i.target === null) continue;
    const id = await manifestOf(client, i.target).then(
      (m) => m.config.digest,
      () => undefined,
    );
    if (id === undefined || !id.startsWith(want)) continue;
    byId.set(id, [...(byId.get(id) ?? []), i.name]);
  }
  if (byId.size > 1) throw new TsrunError('InvalidArgument', `multiple IDs found with provided prefix: ${ref}`);
  return [...byId.values()][0] ?? [];
}

/** The record name `ref` stands for: a record of that name, else one with that image id; undefined when neither. */
export async function imageRecordName(client: TsrundClient, ref: string): Promise<string | undefined> {
  const name = fullName(ref);
  try {
    await client.call('Images', 'Get', { name });
    return name;
  } catch (e) {
    if (!(e instanceof RpcError && e.errorCode() === 'NotFound')) throw e;
  }
  return (await namesById(client, ref))[0];
}

async function imageRows(client: TsrundClient): Promise<ImageRow[]> {
  const { images } = await client.call<{ images: WireImage[] }>('Images', 'List', {});
  const rows: ImageRow[] = [];
  for (const i of images) {
    const [repository, tag] = dockerName(i.name);
    let id = i.target?.digest ?? '';
    let createdMs = num(i.createdAt?.seconds) * 1000;
    let size = 0;
    try {
      const m = await manifestOf(client, { mediaType: i.target?.mediaType ?? '', digest: i.target?.digest ?? '' });
      id = m.config.digest;
      const config = JSON.parse((await readBlob(client, m.config.digest)).toString('utf8')) as { created?: string; rootfs?: { diff_ids?: string[] } };
      if (config.created !== undefined && !Number.isNaN(Date.parse(config.created))) createdMs = Date.parse(config.created);
      size = m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
      try {
        let unpacked = 0;
        for (const key of chainIds(config.rootfs?.diff_ids ?? [])) unpacked += num((await client.call<{ size: number }>('Snapshots', 'Usage', { snapshotter: 'overlayfs', key })).size);
        size = unpacked;
      } catch {
        // not unpacked (or not with overlayfs): the compressed size stands
      }
    } catch {
      // content missing: show what the record says
    }
    rows.push({ name: i.name, repository, tag, id, createdMs, size });
  }
  return rows;
}

/** `tsctl images` */
export async function images(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'quiet', short: 'q', kind: 'bool', help: 'image ids only' },
      { name: 'no-trunc', kind: 'bool', help: 'full image ids' },
      { name: 'format', kind: 'string', help: 'table (default) or json' },
    ],
    false,
  );
  if (a.operands.length > 1) throw usage('"images" accepts at most one argument');
  const want = a.operands[0];
  const full = a.bools.has('no-trunc');
  const rows = (await imageRows(ctx.client))
    .filter((r) => want === undefined || r.repository === want || `${r.repository}:${r.tag}` === want || r.name === fullName(want))
    .sort((x, y) => y.createdMs - x.createdMs || (x.name < y.name ? -1 : 1));
  const shortId = (id: string): string => (full ? id : id.replace(/^sha256:/, '').slice(0, 12));
  if (a.bools.has('quiet')) {
    for (const id of new Set(rows.map((r) => shortId(r.id)))) ctx.out(id);
    return 0;
  }
  const now = Date.now();
  const format = a.strings.get('format') ?? 'table';
  if (format === 'json' || format === '{{json .}}') {
    for (const r of rows) {
      ctx.out(JSON.stringify({ Containers: 'N/A', CreatedAt: new Date(r.createdMs).toISOString(), CreatedSince: `${humanDuration(now - r.createdMs)} ago`, Digest: '<none>', ID: shortId(r.id), Repository: r.repository, Tag: r.tag, Size: bytesDecimal(r.size) }));
    }
    return 0;
  }
  if (format !== 'table') throw usage(`--format ${JSON.stringify(format)}: only table and json are supported`);
  ctx.out(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows.map((r) => [r.repository, r.tag, shortId(r.id), `${humanDuration(now - r.createdMs)} ago`, bytesDecimal(r.size)])]));
  return 0;
}

/** `tsctl tag SOURCE TARGET` */
export async function tag(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [], false);
  if (a.operands.length !== 2) throw usage('"tag" requires exactly 2 arguments: SOURCE_IMAGE TARGET_IMAGE');
  const srcName = await imageRecordName(ctx.client, a.operands[0]!);
  if (srcName === undefined) throw new TsrunError('NotFound', `No such image: ${a.operands[0]!}`);
  const src = await ctx.client.call<{ image: WireImage }>('Images', 'Get', { name: srcName });
  const image = { name: fullName(a.operands[1]!), labels: src.image.labels, target: src.image.target };
  try {
    await ctx.client.call('Images', 'Create', { image });
  } catch (e) {
    if (!(e instanceof RpcError && e.errorCode() === 'AlreadyExists')) throw e;
    await ctx.client.call('Images', 'Update', { image, updateMask: { paths: ['target'] } });
  }
  return 0;
}

/** `tsctl rmi [-f] IMAGE…`: untag; the content goes with the image's last name (collector, synchronously). */
export async function rmi(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'force', short: 'f', kind: 'bool', help: 'remove even if containers use the image' }], false);
  if (a.operands.length === 0) throw usage('"rmi" requires at least 1 argument');
  let status = 0;
  const containers = await listContainers(ctx.client);
  for (const ref of a.operands) {
    try {
      let names = [fullName(ref)];
      try {
        await ctx.client.call('Images', 'Get', { name: names[0] });
      } catch (e) {
        if (!(e instanceof RpcError && e.errorCode() === 'NotFound')) throw e;
        // not a name: docker's image id (or a prefix of it), which stands for every name it has
        names = await namesById(ctx.client, ref);
        if (names.length === 0) throw e;
        if (names.length > 1 && !a.bools.has('force')) {
          ctx.warn(`Error response from daemon: conflict: unable to delete ${ref} (must be forced) - image is referenced in multiple repositories`);
          status = 1;
          continue;
        }
      }
      for (const name of names) {
        const { image } = await ctx.client.call<{ image: WireImage }>('Images', 'Get', { name });
        const users = containers.filter((c) => c.image === name || c.image === ref || fullName(c.image) === name);
        if (users.length > 0 && !a.bools.has('force')) {
          ctx.warn(`Error response from daemon: conflict: unable to remove repository reference "${ref}" (must force) - container ${users[0]!.id.slice(0, 12)} is using its referenced image ${(image.target?.digest ?? '').slice(7, 19)}`);
          status = 1;
          continue;
        }
        const digest = image.target?.digest ?? '';
        const { images: all } = await ctx.client.call<{ images: WireImage[] }>('Images', 'List', {});
        const last = !all.some((i) => i.name !== name && i.target?.digest === digest);
        await ctx.client.call('Images', 'Delete', { name, sync: last });
        ctx.out(`Untagged: ${dockerName(name).join(':')}`);
        if (last) ctx.out(`Deleted: ${digest}`);
      }
    } catch (e) {
      if (!(e instanceof RpcError && e.errorCode() === 'NotFound')) throw e;
      ctx.warn(`Error response from daemon: No such image: ${ref}`);
      status = 1;
    }
  }
  return status;
}
