/*
 * Load an image archive streamed by the client (tsctl load) into the content store, record and
 * unpack its images. Both archive kinds `docker save` and `podman save` make are read:
 *
 *   OCI archive     oci-layout, index.json (names in io.containerd.image.name or
 *                   org.opencontainers.image.ref.name), blobs/sha256/<hex>
 *   docker-archive  manifest.json [{ Config, RepoTags, Layers }] naming files in the archive
 *                   (<hex>.json, <id>/layer.tar, or blobs/sha256/<hex> as docker 25 writes)
 *
 * The archive is read once, in order: every regular file goes into the content store under the
 * digest of its bytes (a blobs/sha256/<hex> file whose bytes do not match its name is refused,
 * naming it); the small index files are kept in memory. For a docker-archive a docker schema2
 * manifest is then made for each image. Everything is done under one lease (transfer.ts), so a
 * failure leaves nothing behind once the lease is dropped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TsrunError } from '../../spec/errors';
import type { ContentStore } from '../content/store';
import { readTar } from '../diff/tar-reader';
import type { ImageServices } from '../images/wire';
import { formatReference, MediaType, parseManifest, parseReference, selectManifest, hostPlatform, type Descriptor } from '../registry/index';
import { defaultSnapshotter, recordImage, withLease, type TransferDeps, type TransferProgress } from './transfer';
import { labelForGc, unpackLayers } from './unpack';

const SMALL_FILES = new Set(['manifest.json', 'index.json', 'repositories', 'oci-layout']);
const SMALL_LIMIT = 16 << 20;

interface Stored {
  digest: string;
  size: number;
}

async function storeEntry(cs: ContentStore, ns: string, lease: string, body: AsyncIterable<Buffer>): Promise<Stored> {
  const ref = `load-${randomBytes(8).toString('hex')}`;
  const w = cs.writer(ns, ref, 0, '', lease);
  let size = 0;
  try {
    for await (const c of body) {
      w.write(c);
      size += c.length;
    }
    const digest = w.digest();
    try {
      w.commit(size, digest, {}, lease);
    } catch (e) {
      if (!(e instanceof TsrunError && e.code === 'AlreadyExists')) throw e;
    }
    return { digest, size };
  } catch (e) {
    w.close();
    try {
      cs.abort(ns, ref);
    } catch {
      // committed or gone
    }
    throw e;
  }
}

function writeSmallBlob(cs: ContentStore, ns: string, lease: string, data: Buffer): Stored {
  const ref = `load-${randomBytes(8).toString('hex')}`;
  const w = cs.writer(ns, ref, 0, '', lease);
  w.write(data);
  const digest = w.digest();
  try {
    w.commit(data.length, digest, {}, lease);
  } catch (e) {
    if (!(e instanceof TsrunError && e.code === 'AlreadyExists')) throw e;
  }
  return { digest, size: data.length };
}

function isGzip(cs: ContentStore, digest: string): boolean {
  const fd = fs.openSync(cs.blobPath(digest), 'r');
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Unpack one image (target = index or manifest) and record it under `names`. */
async function finish(deps: TransferDeps, ns: string, lease: string, target: Descriptor, names: readonly string[], send: (p: TransferProgress) => void): Promise<void> {
  const { images } = deps;
  const cs = images.content;
  const what = `load: image ${names[0] ?? target.digest}`;
  let manifestDesc = target;
  const top = parseManifest(cs.readAll(ns, target.digest), target.mediaType, `${what}: manifest ${target.digest}`);
  if (top.kind === 'index') {
    const chosen = selectManifest(top.manifests, hostPlatform());
    if (chosen === undefined) throw new TsrunError('NotFound', `${what}: index ${target.digest} has no manifest for this platform`);
    if (!cs.has(ns, chosen.digest)) throw new TsrunError('NotFound', `${what}: manifest ${chosen.digest} is not in the archive`);
    manifestDesc = chosen;
    const k = 'containerd.io/gc.ref.content.m.0';
    cs.update(ns, target.digest, { [k]: chosen.digest }, [`labels.${k}`]);
  }
  const m = parseManifest(cs.readAll(ns, manifestDesc.digest), manifestDesc.mediaType, `${what}: manifest ${manifestDesc.digest}`);
  if (m.kind !== 'manifest') throw new TsrunError('InvalidArgument', `${what}: manifest ${manifestDesc.digest} is an index inside an index`);
  for (const b of [m.config, ...m.layers]) if (!cs.has(ns, b.digest)) throw new TsrunError('NotFound', `${what}: blob ${b.digest} is not in the archive`);
  const sn = defaultSnapshotter(images);
  const chain = await unpackLayers({ cs, snapshots: images.snapshots, snapshotter: sn, ns, lease, warn: deps.warn }, m.config, m.layers, () => undefined);
  labelForGc(cs, ns, manifestDesc, m.config, m.layers, sn, chain);
  for (const name of names) {
    recordImage(images, ns, name, target);
    send({ id: '', state: 'loaded', current: 0, total: 0, kind: 'image', image: name, digest: m.config.digest });
  }
  if (names.length === 0) send({ id: '', state: 'loaded', current: 0, total: 0, kind: 'image', image: '', digest: m.config.digest });
}

function normalName(n: string, where: string): string {
  try {
    return formatReference(parseReference(n));
  } catch (e) {
    throw new TsrunError('InvalidArgument', `${where}: image name ${JSON.stringify(n)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Read the archive from `chunks`, then record and unpack what it holds. */
export async function loadArchive(deps: TransferDeps, ns: string, chunks: AsyncIterable<Buffer>, send: (p: TransferProgress) => void): Promise<void> {
  const cs: ContentStore = deps.images.content;
  await withLease(deps, ns, async (lease) => {
    const small = new Map<string, Buffer>();
    const files = new Map<string, Stored>();
    for await (const entry of readTar(chunks)) {
      const name = path.posix.normalize(entry.header.name).replace(/^(\.\/)+/, '').replace(/^\/+/, '');
      if (entry.header.type !== 'file') continue;
      if (SMALL_FILES.has(name)) {
        if (entry.header.size > SMALL_LIMIT) throw new TsrunError('InvalidArgument', `load: ${name} is ${entry.header.size} bytes, more than ${SMALL_LIMIT}`);
        const parts: Buffer[] = [];
        for await (const c of entry.body) parts.push(c);
        small.set(name, Buffer.concat(parts));
        continue;
      }
      const stored = await storeEntry(cs, ns, lease, entry.body);
      const named = /^blobs\/([a-z0-9]+)\/([a-f0-9]{64})$/.exec(name);
      if (named !== null && `${named[1]!}:${named[2]!}` !== stored.digest) {
        throw new TsrunError('InvalidArgument', `load: archive entry ${name} has content digest ${stored.digest}`);
      }
      files.set(name, stored);
    }
    const index = small.get('index.json');
    const manifest = small.get('manifest.json');
    if (manifest !== undefined) {
      type Entry = { Config?: string; RepoTags?: string[] | null; Layers?: string[] };
      let entries: Entry[];
      try {
        entries = JSON.parse(manifest.toString('utf8')) as Entry[];
        if (!Array.isArray(entries)) throw new Error('not a list');
      } catch (e) {
        throw new TsrunError('InvalidArgument', `load: manifest.json: ${e instanceof Error ? e.message : String(e)}`);
      }
      for (const [i, e] of entries.entries()) {
        const where = `load: manifest.json entry ${i}`;
        const file = (p: string | undefined, what: string): Stored => {
          const f = p === undefined ? undefined : files.get(path.posix.normalize(p));
          if (f === undefined) throw new TsrunError('NotFound', `${where}: ${what} ${JSON.stringify(p ?? '')} is not in the archive`);
          return f;
        };
        const config = file(e.Config, 'config');
        const layers = (e.Layers ?? []).map((l) => {
          const f = file(l, 'layer');
          return { mediaType: isGzip(cs, f.digest) ? MediaType.dockerLayerGzip : 'application/vnd.docker.image.rootfs.diff.tar', digest: f.digest, size: f.size };
        });
        const body = Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: { mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size }, layers }),
        );
        const m = writeSmallBlob(cs, ns, lease, body);
        const names = (e.RepoTags ?? []).map((n) => normalName(n, where));
        await finish(deps, ns, lease, { mediaType: MediaType.dockerManifest, digest: m.digest, size: m.size }, names, send);
      }
      return;
    }
    if (index !== undefined) {
      let doc: { manifests?: Array<Descriptor & { annotations?: Record<string, string> }> };
      try {
        doc = JSON.parse(index.toString('utf8')) as typeof doc;
      } catch (e) {
        throw new TsrunError('InvalidArgument', `load: index.json: ${e instanceof Error ? e.message : String(e)}`);
      }
      for (const d of doc.manifests ?? []) {
        const a = d.annotations ?? {};
        const raw = a['io.containerd.image.name'] ?? a['org.opencontainers.image.ref.name'];
        const names = raw !== undefined && /[/:]/.test(raw) ? [normalName(raw, 'load: index.json')] : [];
        if (!cs.has(ns, d.digest)) throw new TsrunError('NotFound', `load: index.json names ${d.digest}, which is not in the archive`);
        await finish(deps, ns, lease, { mediaType: d.mediaType, digest: d.digest, size: d.size }, names, send);
      }
      return;
    }
    throw new TsrunError('InvalidArgument', 'load: the archive has neither manifest.json (docker-archive) nor index.json (OCI archive)');
  });
}
