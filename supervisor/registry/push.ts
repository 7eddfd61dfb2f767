/*
 * Push: blobs, then manifests, then tags, from a BlobStore to a registry.
 *
 *   blob:     HEAD (exists? skip) ─ POST ?mount=&from= (cross-repo mount) or POST uploads/
 *             ─ PUT <location>?digest= with the whole blob (monolithic)
 *               or PATCH <location> per chunk (Content-Range) ─ PUT ?digest= (chunked)
 *   manifest: the index's children by digest first, then the top manifest by each tag
 */
import { PassThrough, type Readable } from 'node:stream';
import { TsrunError } from '../../spec/errors';
import type { RegistryClient } from './client';
import { readBlob, type BlobStore } from './content';
import { runBounded, shortId, type BlobKind, type ProgressFn } from './fetch';
import { parseManifest, type Descriptor } from './manifest';
import { formatReference, parseReference, type Reference } from './reference';

/** Options of one push. */
export interface PushOptions {
  /** blobs uploaded at once (default 3, docker's max-concurrent-uploads is 5) */
  readonly concurrency?: number;
  readonly onProgress?: ProgressFn;
  /** a repository on the same registry that holds the blobs (cross-repo mount) */
  readonly mountFrom?: string;
  /** upload in PATCH chunks of this many bytes; 0 or unset: one PUT per blob */
  readonly chunkSize?: number;
  /** more tags to point at the pushed manifest */
  readonly tags?: readonly string[];
}

interface Target {
  readonly client: RegistryClient;
  readonly store: BlobStore;
  readonly ref: Reference;
  readonly image: string;
  readonly opts: PushOptions;
  readonly progress: ProgressFn;
  readonly pushed: Set<string>;
}

/** Push the image `target` (an index or manifest held in `store`) as `reference`. */
export async function push(client: RegistryClient, store: BlobStore, reference: string, target: Descriptor, opts: PushOptions = {}): Promise<Descriptor> {
  const ref = parseReference(reference);
  const t: Target = { client, store, ref, image: formatReference(ref), opts, progress: opts.onProgress ?? ((): void => undefined), pushed: new Set() };
  await pushTree(t, target, 0);
  const tags = [...(ref.digest === undefined && ref.tag !== undefined ? [ref.tag] : []), ...(opts.tags ?? [])];
  const body = await readBlob(store, target.digest);
  for (const tag of tags) await putManifest(t, target, body, tag);
  return target;
}

async function pushTree(t: Target, desc: Descriptor, depth: number): Promise<void> {
  if (depth > 4) throw new TsrunError('InvalidArgument', `push ${t.image}: indexes nested more than 4 deep at ${desc.digest}`);
  let body: Buffer;
  try {
    body = await readBlob(t.store, desc.digest);
  } catch (err) {
    throw new TsrunError('NotFound', `push ${t.image}: read manifest ${desc.digest}: ${(err as Error).message}`, { cause: err });
  }
  const m = parseManifest(body, desc.mediaType, `push ${t.image}: manifest ${desc.digest}`);
  if (m.kind === 'index') {
    for (const child of m.manifests) await pushTree(t, child, depth + 1);
  } else {
    const seen = new Set<string>();
    const blobs = [...m.layers.map((d) => ({ d, kind: 'layer' as BlobKind })), { d: m.config, kind: 'config' as BlobKind }].filter((b) => !seen.has(b.d.digest) && seen.add(b.d.digest) !== undefined);
    for (const b of blobs) {
      if (!(await t.store.has(b.d.digest))) throw new TsrunError('NotFound', `push ${t.image}: ${b.kind} ${b.d.digest} of manifest ${desc.digest}: not in the content store`);
    }
    for (const b of blobs) t.progress({ id: shortId(b.d.digest), digest: b.d.digest, kind: b.kind, state: 'Preparing', current: 0, total: b.d.size });
    await runBounded(blobs, t.opts.concurrency ?? 3, async (b) => pushBlob(t, b.d, b.kind));
  }
  // children and the top-level manifest go up by digest, so every tag lands on complete content
  if (depth > 0 || t.ref.digest !== undefined || t.ref.tag === undefined) await putManifest(t, desc, body, desc.digest);
}

async function putManifest(t: Target, desc: Descriptor, body: Buffer, reference: string): Promise<void> {
  const what = `push ${t.image}: manifest ${desc.digest} as ${reference}`;
  const res = await t.client.request(t.ref.domain, t.ref.path, 'pull,push', {
    method: 'PUT',
    path: `/v2/${t.ref.path}/manifests/${reference}`,
    headers: { 'content-type': desc.mediaType },
    body,
    expect: [201, 200],
    what,
  });
  res.resume();
  const got = res.headers['docker-content-digest'];
  if (typeof got === 'string' && got !== '' && got !== desc.digest) {
    throw new TsrunError('Internal', `${what}: registry stored it as ${got}`);
  }
}

function counted(src: Readable, onBytes: (n: number) => void): Readable {
  const pass = new PassThrough();
  let n = 0;
  src.on('data', (c: Buffer) => {
    n += c.length;
    onBytes(n);
  });
  src.on('error', (err) => pass.destroy(err));
  src.pipe(pass);
  return pass;
}

async function pushBlob(t: Target, desc: Descriptor, kind: BlobKind): Promise<void> {
  if (t.pushed.has(desc.digest)) return;
  const { client, ref } = t;
  const label = `push ${t.image}: ${kind} ${desc.digest}`;
  const ev = (state: Parameters<ProgressFn>[0]['state'], current: number, from?: string): void =>
    t.progress({ id: shortId(desc.digest), digest: desc.digest, kind, state, current, total: desc.size, ...(from !== undefined ? { from } : {}) });
  const head = await client.request(ref.domain, ref.path, 'pull,push', { method: 'HEAD', path: `/v2/${ref.path}/blobs/${desc.digest}`, expect: [200, 404], what: `${label}: check` });
  head.resume();
  if (head.statusCode === 200) {
    t.pushed.add(desc.digest);
    ev('Layer already exists', desc.size);
    return;
  }
  let location: string;
  const from = t.opts.mountFrom !== undefined ? parseReference(t.opts.mountFrom) : undefined;
  if (from !== undefined && from.domain === ref.domain && from.path !== ref.path) {
    const res = await client.request(
      ref.domain,
      ref.path,
      'pull,push',
      { method: 'POST', path: `/v2/${ref.path}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from.path)}`, expect: [201, 202], what: `${label}: mount from ${from.path}` },
      [`repository:${from.path}:pull`],
    );
    res.resume();
    if (res.statusCode === 201) {
      t.pushed.add(desc.digest);
      ev('Mounted', desc.size, from.path);
      return;
    }
    location = uploadLocation(res.headers.location, label);
  } else {
    const res = await client.request(ref.domain, ref.path, 'pull,push', { method: 'POST', path: `/v2/${ref.path}/blobs/uploads/`, expect: [202], what: `${label}: start upload` });
    res.resume();
    location = uploadLocation(res.headers.location, label);
  }
  ev('Pushing', 0);
  const chunk = t.opts.chunkSize ?? 0;
  if (chunk > 0) location = await uploadChunks(t, desc, location, chunk, label, ev);
  const url = new URL(location, 'http://placeholder');
  url.searchParams.set('digest', desc.digest);
  const target = /^[a-z]+:\/\//i.test(location) ? url.toString() : `${url.pathname}${url.search}`;
  const res = await client.request(ref.domain, ref.path, 'pull,push', {
    method: 'PUT',
    path: target,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunk > 0 ? 0 : desc.size) },
    ...(chunk > 0
      ? { body: Buffer.alloc(0) }
      : {
          body: async () => {
            const r = await t.store.reader(desc.digest);
            if (r.size !== desc.size) throw new TsrunError('InvalidArgument', `${label}: the store holds ${r.size} bytes, the manifest says ${desc.size}`);
            return counted(r.stream, (n) => ev('Pushing', n));
          },
        }),
    expect: [201],
    what: `${label}: upload`,
  });
  res.resume();
  t.pushed.add(desc.digest);
  ev('Pushed', desc.size);
}

function uploadLocation(loc: string | undefined, label: string): string {
  if (loc === undefined || loc === '') throw new TsrunError('Internal', `${label}: registry started an upload without a Location`);
  return loc;
}

async function uploadChunks(t: Target, desc: Descriptor, location: string, size: number, label: string, ev: (s: 'Pushing', n: number) => void): Promise<string> {
  const r = await t.store.reader(desc.digest);
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let loc = location;
  const send = async (): Promise<void> => {
    const body = Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    const res = await t.client.request(t.ref.domain, t.ref.path, 'pull,push', {
      method: 'PATCH',
      path: loc,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + body.length - 1}` },
      body,
      expect: [202],
      what: `${label}: upload bytes ${offset}-${offset + body.length - 1}`,
    });
    res.resume();
    loc = uploadLocation(res.headers.location, label);
    offset += body.length;
    ev('Pushing', offset);
  };
  for await (const c of r.stream) {
    let buf = c as Buffer;
    while (buf.length > 0) {
      const take = Math.min(size - pendingLen, buf.length);
      pending.push(buf.subarray(0, take));
      pendingLen += take;
      buf = buf.subarray(take);
      if (pendingLen === size) await send();
    }
  }
  if (pendingLen > 0) await send();
  if (offset !== desc.size) throw new TsrunError('InvalidArgument', `${label}: the store holds ${offset} bytes, the manifest says ${desc.size}`);
  return loc;
}
