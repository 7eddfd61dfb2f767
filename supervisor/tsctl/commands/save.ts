/*
 * `tsctl save [-o FILE] IMAGE…` (names, or image ids and their prefixes): a docker-archive (the format `docker load`, `podman load` and
 * skopeo's docker-archive: read) of images in tsrund's store, streamed from the Content service:
 *
 *   manifest.json            [{ Config, RepoTags, Layers }] per image
 *   repositories             { repo: { tag: top layer dir } }  (docker's legacy index)
 *   <config hex>.json        the image config, as stored
 *   <diff id hex>/layer.tar  each layer uncompressed (its name is its diff ID), once per archive
 *
 * Layers are decompressed twice: once to learn the size the tar header needs, then into the
 * archive, so memory stays flat however big a layer is. The archive is written to FILE.partial and
 * renamed when complete; a failure removes it.
 */
import { once } from 'node:events';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { TsrunError } from '../../../spec/errors';
import type { TsrundClient } from '../../client';
import { decompressor } from '../../diff/compression';
import { encodeHeader, padding, type TarHeader } from '../../diff/tar-header';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { dockerName, fullName, imageRecordName } from './images';

interface Desc {
  mediaType: string;
  digest: string;
  size: number | { toNumber(): number };
}

function blobStream(client: TsrundClient, digest: string): Readable {
  const s = client.stream<{ data: Uint8Array }>('Content', 'Read', { digest });
  return Readable.from(
    (async function* () {
      for await (const m of s.messages) yield Buffer.from(m.data);
    })(),
  );
}

export async function readAll(client: TsrundClient, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of blobStream(client, digest)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/** The platform manifest of an image target: its config and layers. */
export async function resolveManifest(client: TsrundClient, target: Desc, what: string): Promise<{ config: Desc; layers: Desc[] }> {
  let doc = JSON.parse((await readAll(client, target.digest)).toString('utf8')) as { manifests?: Array<Desc & { platform?: { os?: string; architecture?: string } }>; config?: Desc; layers?: Desc[] };
  if (doc.manifests !== undefined) {
    const m = doc.manifests.find((x) => x.platform?.os === 'linux' && x.platform.architecture === hostArch()) ?? (doc.manifests.length === 1 ? doc.manifests[0] : undefined);
    if (m === undefined) throw new TsrunError('NotFound', `save ${what}: index ${target.digest} has no manifest for linux/${hostArch()}`);
    doc = JSON.parse((await readAll(client, m.digest)).toString('utf8')) as typeof doc;
  }
  if (doc.config === undefined) throw new TsrunError('InvalidArgument', `save ${what}: manifest of ${target.digest} has no config`);
  return { config: doc.config, layers: doc.layers ?? [] };
}

function fileHeader(name: string, size: number, mtime: number): Buffer {
  const h: TarHeader = { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() };
  return encodeHeader(h);
}

function dirHeader(name: string, mtime: number): Buffer {
  return encodeHeader({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() });
}

/** `tsctl save` */
export async function save(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'output', short: 'o', kind: 'string', help: 'write to FILE instead of stdout' }], false);
  if (a.operands.length === 0) throw usage('"save" requires at least 1 argument');
  const file = a.strings.get('output');
  if (file === undefined && ctx.stdout.isTTY) throw usage('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const client = ctx.client;
  const mtime = Math.floor(Date.now() / 1000);
  const images: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  const layers = new Map<string, Desc>();
  const configs = new Map<string, string>();
  for (const ref of a.operands) {
    // a name first, else an image id or prefix, as docker reads it
    const name = await imageRecordName(client, ref);
    if (name === undefined) throw new TsrunError('NotFound', `save ${ref}: no such image`);
    const byId = name !== fullName(ref);
    const { image } = await client.call<{ image: { name: string; target: Desc } }>('Images', 'Get', { name }).catch((e: unknown) => {
      throw new TsrunError('NotFound', `save ${ref}: no such image (${e instanceof Error ? e.message : String(e)})`);
    });
    const m = await resolveManifest(client, image.target, ref);
    const cfg = JSON.parse((await readAll(client, m.config.digest)).toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
    const diffIds = cfg.rootfs?.diff_ids ?? [];
    if (diffIds.length !== m.layers.length) throw new TsrunError('InvalidArgument', `save ${ref}: config ${m.config.digest} has ${diffIds.length} diff_ids for ${m.layers.length} layers`);
    const dirs = diffIds.map((d) => d.replace(/^sha256:/, ''));
    dirs.forEach((dir, i) => layers.set(dir, m.layers[i]!));
    const cfgFile = `${m.config.digest.replace(/^sha256:/, '')}.json`;
    configs.set(cfgFile, m.config.digest);
    const [repo, tag] = dockerName(image.name);
    // saved by id, the archive names no tag (docker's RepoTags is empty then too)
    const tags = !byId && tag !== '<none>' && !image.name.includes('@') ? [`${repo}:${tag}`] : [];
    const existing = images.find((i) => i.Config === cfgFile);
    if (existing !== undefined) existing.RepoTags.push(...tags);
    else images.push({ Config: cfgFile, RepoTags: tags, Layers: dirs.map((d) => `${d}/layer.tar`) });
    if (tags.length > 0 && dirs.length > 0) (repositories[repo] ??= {})[tag] = dirs[dirs.length - 1]!;
  }
  const tmp = file !== undefined ? `${file}.partial` : undefined;
  const out: NodeJS.WritableStream = tmp !== undefined ? fs.createWriteStream(tmp, { mode: 0o600 }) : ctx.stdout;
  const write = async (b: Buffer): Promise<void> => {
    if (!out.write(b)) await once(out, 'drain');
  };
  try {
    for (const [dir, desc] of layers) {
      let size = 0;
      for await (const c of blobStream(client, desc.digest).pipe(decompressor(desc.mediaType))) size += (c as Buffer).length;
      await write(dirHeader(dir, mtime));
      await write(fileHeader(`${dir}/VERSION`, 3, mtime));
      await write(Buffer.concat([Buffer.from('1.0'), padding(3)]));
      await write(fileHeader(`${dir}/layer.tar`, size, mtime));
      let n = 0;
      for await (const c of blobStream(client, desc.digest).pipe(decompressor(desc.mediaType))) {
        n += (c as Buffer).length;
        await write(c as Buffer);
      }
      if (n !== size) throw new TsrunError('Internal', `save: layer ${desc.digest} changed size while read (${size} then ${n} bytes)`);
      await write(padding(size));
    }
    for (const [f, digest] of configs) {
      const data = await readAll(client, digest);
      await write(Buffer.concat([fileHeader(f, data.length, mtime), data, padding(data.length)]));
    }
    for (const [f, body] of [
      ['manifest.json', Buffer.from(JSON.stringify(images))],
      ['repositories', Buffer.from(JSON.stringify(repositories))],
    ] as const) {
      await write(Buffer.concat([fileHeader(f, body.length, mtime), body, padding(body.length)]));
    }
    await write(Buffer.alloc(1024));
    if (tmp !== undefined && file !== undefined) {
      const ws = out as fs.WriteStream;
      await new Promise<void>((resolve, reject) => ws.end((e?: Error | null) => (e ? reject(e) : resolve())));
      fs.renameSync(tmp, file);
    }
  } catch (e) {
    if (tmp !== undefined) {
      (out as fs.WriteStream).destroy();
      fs.rmSync(tmp, { force: true });
    }
    throw e;
  }
  return 0;
}

/** `tsctl load [-i FILE] [-q]`: a docker-archive or OCI archive from FILE or stdin, into tsrund. */
export async function load(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'input', short: 'i', kind: 'string', help: 'read from FILE instead of stdin' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'no output' },
    ],
    false,
  );
  if (a.operands.length > 0) throw usage('"load" accepts no arguments');
  const file = a.strings.get('input');
  if (file === undefined && ctx.stdin.isTTY) throw usage('requested load from stdin, but stdin is empty');
  const input: Readable = file !== undefined ? fs.createReadStream(file, { highWaterMark: 1 << 20 }) : ctx.stdin;
  const call = ctx.client.duplex<{ state: string; image: string; digest: string }>('Transfer', 'Load');
  const sending = (async () => {
    try {
      for await (const c of input) await call.write({ data: c as Buffer });
      call.end();
    } catch (e) {
      call.cancel();
      throw new TsrunError('InvalidArgument', `load: read ${file ?? 'stdin'}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  })();
  // the server's error (from `messages`) is the one to report; this one is awaited below
  sending.catch(() => undefined);
  const quiet = a.bools.has('quiet');
  try {
    for await (const m of call.messages) {
      if (m.state !== 'loaded' || quiet) continue;
      if (m.image !== '') ctx.out(`Loaded image: ${dockerName(m.image).join(':')}`);
      else ctx.out(`Loaded image ID: ${m.digest}`);
    }
  } finally {
    input.destroy();
  }
  await sending;
  return 0;
}
