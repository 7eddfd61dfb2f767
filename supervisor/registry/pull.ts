/*
 * Pull: reference → manifest (or index → the platform's manifest) → config and layers, into a
 * BlobStore. Every manifest's digest is checked against what pinned it (the reference's digest,
 * the index entry, the registry's Docker-Content-Digest); blobs are checked by the store's
 * writer as they commit. The result is what an image store records: name → target descriptor.
 */
import { TsrunError } from '../../spec/errors';
import type { RegistryClient } from './client';
import { digestOf, writeBlob, type BlobStore } from './content';
import { fetchBlob, runBounded, shortId, type BlobSource, type ProgressFn } from './fetch';
import { MANIFEST_ACCEPT, parseManifest, type Descriptor, type ImageManifest, type Platform } from './manifest';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from './platform';
import { formatReference, manifestReference, parseReference, type Reference } from './reference';
import { readBody } from './transport';

/** Options of one pull. */
export interface PullOptions {
  /** the platform to pick from an index (default: the host's) */
  readonly platform?: Platform | string;
  /** layers downloaded at once (default 3, docker's max-concurrent-downloads) */
  readonly concurrency?: number;
  readonly onProgress?: ProgressFn;
  /** told the platform's manifest once it is known, before any of its blobs is fetched */
  readonly onManifest?: (manifest: ImageManifest) => void;
  /** told each blob of the manifest (config, layers) once the store holds it, fetched or already there */
  readonly onBlob?: (desc: Descriptor) => void;
}

/** What a pull put in the store, in the shape an image store records. */
export interface PulledImage {
  /** the normalised reference: "docker.io/library/busybox:latest" */
  readonly name: string;
  /** what the name points at: the index when there was one, else the manifest */
  readonly target: Descriptor;
  /** the platform's manifest (equal to target without an index) */
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  /** the platform picked from the index, or the one asked for */
  readonly platform: Platform | undefined;
}

const MANIFEST_LIMIT = 8 << 20;

interface FetchedManifest {
  readonly desc: Descriptor;
  readonly body: Buffer;
}

/** GET a manifest by tag or digest and check its digest against everything that names it. */
export async function fetchManifest(client: RegistryClient, ref: Reference, reference: string, pinned: Descriptor | undefined): Promise<FetchedManifest> {
  const image = formatReference(ref);
  const what = `pull ${image}: manifest ${reference}`;
  const res = await client.request(ref.domain, ref.path, 'pull', {
    method: 'GET',
    path: `/v2/${ref.path}/manifests/${reference}`,
    headers: { accept: MANIFEST_ACCEPT },
    expect: [200],
    what,
  });
  const body = await readBody(res, what, client.transport.stallTimeoutMs, MANIFEST_LIMIT);
  const wantDigest = pinned?.digest ?? (reference.includes(':') ? reference : undefined);
  const alg = wantDigest?.split(':')[0] ?? 'sha256';
  const digest = digestOf(body, alg);
  if (wantDigest !== undefined && digest !== wantDigest) {
    throw new TsrunError('InvalidArgument', `${what}: content has digest ${digest}, want ${wantDigest}`);
  }
  const header = res.headers['docker-content-digest'];
  if (typeof header === 'string' && header.startsWith(`${alg}:`) && header !== digest) {
    throw new TsrunError('InvalidArgument', `${what}: content has digest ${digest}, registry says ${header}`);
  }
  if (pinned !== undefined && pinned.size !== body.length) {
    throw new TsrunError('InvalidArgument', `${what}: got ${body.length} bytes, the index says ${pinned.size}`);
  }
  const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  const parsed = parseManifest(body, contentType !== '' ? contentType : (pinned?.mediaType ?? ''), what);
  return { desc: { mediaType: parsed.mediaType, digest, size: body.length }, body };
}

/** Pull `reference` (docker's syntax) into `store`. */
export async function pull(client: RegistryClient, store: BlobStore, reference: string, opts: PullOptions = {}): Promise<PulledImage> {
  const ref = parseReference(reference);
  const image = formatReference(ref);
  const progress = opts.onProgress ?? ((): void => undefined);
  const want = typeof opts.platform === 'string' ? parsePlatform(opts.platform) : (opts.platform ?? hostPlatform());
  const top = await fetchManifest(client, ref, manifestReference(ref), undefined);
  let manifestDesc = top.desc;
  let manifestBody = top.body;
  let platform: Platform | undefined = opts.platform !== undefined ? want : undefined;
  const where = `pull ${image}`;
  const parsedTop = parseManifest(top.body, top.desc.mediaType, where);
  if (parsedTop.kind === 'index') {
    const chosen = selectManifest(parsedTop.manifests, want);
    if (chosen === undefined) {
      const offered = parsedTop.manifests.map((m) => (m.platform !== undefined ? formatPlatform(m.platform) : 'unknown')).join(', ');
      throw new TsrunError('NotFound', `${where}: no matching manifest for ${formatPlatform(want)} in the manifest list entries (has: ${offered || 'none'})`);
    }
    platform = chosen.platform;
    const m = await fetchManifest(client, ref, chosen.digest, chosen);
    manifestDesc = { ...m.desc, ...(chosen.platform !== undefined ? { platform: chosen.platform } : {}) };
    manifestBody = m.body;
  }
  const manifest = parseManifest(manifestBody, manifestDesc.mediaType, `${where}: manifest ${manifestDesc.digest}`);
  if (manifest.kind !== 'manifest') {
    throw new TsrunError('InvalidArgument', `${where}: manifest ${manifestDesc.digest} is an index inside an index, which is not supported`);
  }
  opts.onManifest?.(manifest);
  await fetchContent(client, store, ref, manifest, opts.concurrency ?? 3, progress, opts.onBlob);
  // manifests go in last, so a store never holds a manifest whose blobs are missing
  await writeBlob(store, `manifest-${manifestDesc.digest}`, manifestBody, manifestDesc);
  if (parsedTop.kind === 'index') await writeBlob(store, `index-${top.desc.digest}`, top.body, top.desc);
  return { name: image, target: top.desc, manifest: manifestDesc, config: manifest.config, layers: manifest.layers, platform };
}

async function fetchContent(
  client: RegistryClient,
  store: BlobStore,
  ref: Reference,
  manifest: ImageManifest,
  concurrency: number,
  progress: ProgressFn,
  onBlob: ((desc: Descriptor) => void) | undefined,
): Promise<void> {
  const src: BlobSource = {
    client,
    domain: ref.domain,
    repo: ref.path,
    image: formatReference(ref),
    retries: client.opts.retries ?? 3,
    retryDelayMs: client.opts.retryDelayMs ?? 250,
  };
  // the same layer may appear twice in a manifest; fetch it once
  const seen = new Set<string>();
  const layers = manifest.layers.filter((l) => !seen.has(l.digest) && seen.add(l.digest) !== undefined);
  for (const l of layers) progress({ id: shortId(l.digest), digest: l.digest, kind: 'layer', state: 'Waiting', current: 0, total: l.size });
  const jobs: { desc: Descriptor; kind: 'config' | 'layer' }[] = [{ desc: manifest.config, kind: 'config' }, ...layers.map((desc) => ({ desc, kind: 'layer' as const }))];
  const downloaded: Descriptor[] = [];
  await runBounded(jobs, concurrency, async (job, signal) => {
    if (await fetchBlob(src, store, job.desc, job.kind, progress, signal)) {
      if (job.kind === 'layer') downloaded.push(job.desc);
    }
    onBlob?.(job.desc);
  });
  for (const l of downloaded) progress({ id: shortId(l.digest), digest: l.digest, kind: 'layer', state: 'Pull complete', current: l.size, total: l.size });
}

/** Resolve `reference` to the descriptor it names now (index or manifest), downloading nothing else. */
export async function resolve(client: RegistryClient, reference: string): Promise<{ readonly name: string; readonly target: Descriptor }> {
  const ref = parseReference(reference);
  const m = await fetchManifest(client, ref, manifestReference(ref), undefined);
  return { name: formatReference(ref), target: m.desc };
}
