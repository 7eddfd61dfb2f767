/*
 * Pull and push inside tsrund (docker's model: the daemon holds the content, the CLI sends the
 * reference and the credentials and prints progress). A pull runs under a temporary lease, so
 * the collector never takes a blob or snapshot before the image record holds it:
 *
 *   lease ─ registry pull into the content store ─ unpack into the snapshotter ─ gc labels
 *         ─ Images.Create (or Update when the name moved; nothing when unchanged) ─ drop lease
 *
 * A failure anywhere drops the lease, so what the pull made is collected and nothing half-made
 * stays (the content store's writer already removed any unverified ingest).
 */
import { randomBytes } from 'node:crypto';
import { TsrunError } from '../../spec/errors';
import type { ImageServices } from '../images/wire';
import { formatRfc3339, now } from '../proto/index';
import { parseManifest, pull, push, readBlob, RegistryClient, shortId, type ClientOptions, type Credentials, type Descriptor, type ImageManifest, type ProgressEvent, type PulledImage } from '../registry/index';
import type { Store } from '../store/db';
import { contentBlobStore } from './blobs';
import { labelForGc, unpackLayers, type UnpackProgress } from './unpack';

/** One progress message to the client. */
export interface TransferProgress {
  id: string;
  state: string;
  current: number;
  total: number;
  kind: string;
  /** set on the last message: the image's name and target digest */
  image?: string;
  digest?: string;
  /** last message of a pull: the record is new or moved (docker's "Downloaded newer image") */
  newer?: boolean;
  size?: number;
}

/** What the Transfer service needs from the daemon. */
export interface TransferDeps {
  readonly store: Store;
  readonly images: ImageServices;
  readonly insecureRegistries: readonly string[];
  readonly warn: (message: string) => void;
}

const LEASE_TTL_MS = 60 * 60 * 1000;

function clientFor(deps: TransferDeps, domain: string, auth: Credentials | undefined): RegistryClient {
  const opts: ClientOptions = {
    insecureRegistries: deps.insecureRegistries,
    // only the caller's credentials: tsrund never reads its own user's docker config
    credentials: (d) => (d === domain ? auth : undefined),
  };
  return new RegistryClient(opts);
}

export async function withLease<T>(deps: TransferDeps, ns: string, fn: (lease: string) => Promise<T>): Promise<T> {
  const id = `tsrun-transfer-${randomBytes(8).toString('hex')}`;
  const expire = formatRfc3339({ seconds: Math.floor((Date.now() + LEASE_TTL_MS) / 1000), nanos: 0 });
  if (!deps.store.createLease({ namespace: ns, id, labels: { 'containerd.io/gc.expire': expire }, createdAt: now() })) {
    throw new TsrunError('Internal', `lease ${id}: already exists`);
  }
  try {
    return await fn(id);
  } finally {
    deps.store.deleteLease(ns, id);
    deps.images.meta.dropLeaseResources(ns, id);
    deps.images.gc.schedule();
  }
}

/** The snapshotter images unpack into: overlayfs when it loaded, else native. */
export function defaultSnapshotter(images: ImageServices): string {
  return images.snapshots.names.includes('overlayfs') ? 'overlayfs' : 'native';
}

/** Create the image record, or move it to `target`; false when it already pointed there. */
export function recordImage(images: ImageServices, ns: string, name: string, desc: Descriptor): boolean {
  const target = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: {} };
  try {
    const old = images.images.get(ns, name);
    if (old.target.digest === target.digest) return false;
    images.images.update(ns, { name, labels: old.labels, target }, ['target']);
  } catch (e) {
    if (!(e instanceof TsrunError && e.code === 'NotFound')) throw e;
    images.images.create(ns, { name, labels: {}, target });
  }
  return true;
}

/** Blobs a pull has committed, for the unpack running beside it to wait on. */
class Arrivals {
  private readonly waits = new Map<string, { done: Promise<void>; resolve: () => void; reject: (e: unknown) => void }>();
  private failure: { error: unknown } | undefined;

  private slot(digest: string): { done: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
    let s = this.waits.get(digest);
    if (s === undefined) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((a, b) => {
        resolve = a;
        reject = b;
      });
      done.catch(() => undefined); // a blob nobody waits for may still fail with the pull
      s = { done, resolve, reject };
      this.waits.set(digest, s);
      if (this.failure !== undefined) reject(this.failure.error);
    }
    return s;
  }

  /** Resolves once `digest` is in the store; rejects when the pull failed first. */
  of(digest: string): Promise<void> {
    return this.slot(digest).done;
  }

  arrived(digest: string): void {
    this.slot(digest).resolve();
  }

  /** The pull failed: every wait, now and later, ends with its error. */
  fail(error: unknown): void {
    this.failure = { error };
    for (const s of this.waits.values()) s.reject(error);
  }
}

/** Pull `reference` into namespace `ns`, unpack it, record it; `send` gets docker-like progress. */
export async function pullImage(
  deps: TransferDeps,
  ns: string,
  req: { reference: string; platform: string; auth: Credentials | undefined; domain: string },
  send: (p: TransferProgress) => void,
): Promise<void> {
  const { images } = deps;
  const client = clientFor(deps, req.domain, req.auth);
  await withLease(deps, ns, async (lease) => {
    const blobs = contentBlobStore(images.content, ns, lease);
    const onProgress = (e: ProgressEvent): void => {
      // layers are complete once unpacked, reported below
      if (e.kind !== 'layer' || e.state === 'Pull complete' || e.state === 'Already exists') return;
      send({ id: e.id, state: e.state, current: e.current, total: e.total, kind: e.kind });
    };
    const sn = defaultSnapshotter(images);
    const target = { cs: images.content, snapshots: images.snapshots, snapshotter: sn, ns, lease, warn: deps.warn };
    const unpackProgress: UnpackProgress = (l, state) => {
      if (state !== 'Extracting') send({ id: shortId(l.digest), state, current: l.size, total: l.size, kind: 'layer' });
    };
    // Layers are unpacked while later ones download: each waits for its blob to be committed.
    const arrivals = new Arrivals();
    let unpacking: Promise<string> | undefined;
    const startUnpack = (m: ImageManifest): void => {
      unpacking = (async () => {
        await arrivals.of(m.config.digest);
        return unpackLayers(target, m.config, m.layers, unpackProgress, (l) => arrivals.of(l.digest));
      })();
      unpacking.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled meanwhile
    };
    let pulled: PulledImage;
    try {
      pulled = await pull(client, blobs, req.reference, {
        ...(req.platform !== '' ? { platform: req.platform } : {}),
        onProgress,
        onManifest: startUnpack,
        onBlob: (d) => arrivals.arrived(d.digest),
      });
    } catch (e) {
      // the unpack stops at its next wait; one already extracting finishes before the lease goes
      arrivals.fail(e);
      await unpacking?.catch(() => undefined);
      throw e;
    }
    const top = await (unpacking ?? unpackLayers(target, pulled.config, pulled.layers, unpackProgress));
    labelForGc(images.content, ns, pulled.manifest, pulled.config, pulled.layers, sn, top);
    if (pulled.target.digest !== pulled.manifest.digest) {
      const k = 'containerd.io/gc.ref.content.m.0';
      images.content.update(ns, pulled.target.digest, { [k]: pulled.manifest.digest }, [`labels.${k}`]);
    }
    const newer = recordImage(images, ns, pulled.name, pulled.target);
    send({ id: '', state: 'done', current: 0, total: 0, kind: 'image', image: pulled.name, digest: pulled.target.digest, newer });
  });
}

/** Push the image named `name` in `ns` as `reference` (usually the same name). */
export async function pushImage(
  deps: TransferDeps,
  ns: string,
  req: { name: string; reference: string; auth: Credentials | undefined; domain: string },
  send: (p: TransferProgress) => void,
): Promise<void> {
  const { images } = deps;
  const img = images.images.get(ns, req.name);
  const blobs = contentBlobStore(images.content, ns, '');
  const target: Descriptor = { mediaType: img.target.mediaType, digest: img.target.digest, size: img.target.size };
  // check the manifest parses before talking to the registry: a clear error for a broken image
  parseManifest(await readBlob(blobs, target.digest), target.mediaType, `push ${req.name}: manifest ${target.digest}`);
  const client = clientFor(deps, req.domain, req.auth);
  await push(client, blobs, req.reference, target, {
    onProgress: (e) => {
      if (e.kind === 'layer' || e.kind === 'config') send({ id: e.id, state: e.state, current: e.current, total: e.total, kind: e.kind });
    },
  });
  send({ id: '', state: 'done', current: 0, total: 0, kind: 'image', image: req.reference, digest: target.digest, size: target.size });
}
