/*
 * snapshot → layer → config → manifest → image, as a containerd client (tsctl) does it; shared by
 * `tsctl commit` and `tsctl build`:
 *
 *   lease      Leases.Create (gc.expire one hour ahead); every call below carries it, so the
 *              collector keeps what we made until an image record holds it; dropped at the end
 *   layer      Diff.Diff(parent mounts, snapshot mounts) → gzip blob in the content store, its
 *              containerd.io/uncompressed label the diff id; an empty change set is no layer
 *              (history entry with empty_layer, as docker's commit does)
 *   config     the parent's config + the diff id + a history entry (+ changes), written with
 *              containerd.io/gc.ref.snapshot.overlayfs = the top chain id
 *   manifest   OCI manifest; labels containerd.io/gc.ref.content.config and .l.<N>, as
 *              containerd's unpacker and importer label them
 *   image      Images.Create, or Update when the name exists (docker moves the tag)
 */
import { createHash, randomBytes } from 'node:crypto';
import { TsrunError } from '../../spec/errors';
import { RpcError, type CallOptions, type TsrundClient } from '../client';
import { formatRfc3339, now } from '../proto/index';
import { chainIds, ensureUnpacked, SNAPSHOTTER, type ImageConfig, type SnapshotMount } from '../tsctl/image-run';

/** A content descriptor. */
export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

/** One history entry of an image config. */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The `config` object of an image config, with the fields build and commit set. */
export interface RunConfig extends ImageConfig {
  Shell?: string[];
  OnBuild?: string[] | null;
  ArgsEscaped?: boolean;
  Hostname?: string;
  Domainname?: string;
}

/** An OCI image config. */
export interface OciConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: RunConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [k: string]: unknown;
}

/** An image being made: its config and its layer descriptors (parallel to rootfs.diff_ids). */
export interface ImageState {
  config: OciConfig;
  layers: Desc[];
}

export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
export const LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const UNCOMPRESSED = 'containerd.io/uncompressed';

const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : (v as { toNumber(): number }).toNumber());
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** Diff ids of a tar with no entries (the end marker alone, or padded to one 10 KiB record). */
const EMPTY_DIFFS = new Set([sha(Buffer.alloc(1024)), sha(Buffer.alloc(10240))]);

/** The host architecture in OCI's words. */
export function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}

/** Is the error tsrund's `code`? */
export function isRpc(e: unknown, code: 'NotFound' | 'AlreadyExists'): boolean {
  return e instanceof RpcError && e.errorCode() === code;
}

/** A client whose every call carries `lease` (content and snapshots made join it). */
export function leasedClient(client: TsrundClient, lease: string): TsrundClient {
  const o = (x: CallOptions | undefined): CallOptions => ({ ...(x ?? {}), lease });
  return {
    call: (s, m, r, x) => client.call(s, m, r, o(x)),
    stream: (s, m, r, x) => client.stream(s, m, r, o(x)),
    duplex: (s, m, x) => client.duplex(s, m, o(x)),
    close: () => client.close(),
  };
}

/**
 * Run `fn` under a fresh lease (an hour's gc.expire); the lease is deleted afterwards whatever
 * happens. After a failure the collector runs before this returns, so the caller can promise that
 * nothing is left; after success what the lease held is referenced and it runs in the background.
 */
export async function withLease<T>(client: TsrundClient, fn: (leased: TsrundClient, lease: string) => Promise<T>): Promise<T> {
  const id = `tsctl-${randomBytes(8).toString('hex')}`;
  const expire = formatRfc3339({ seconds: Math.floor(Date.now() / 1000) + 3600, nanos: 0 });
  await client.call('Leases', 'Create', { id, labels: { 'containerd.io/gc.expire': expire } });
  let ok = false;
  try {
    const r = await fn(leasedClient(client, id), id);
    ok = true;
    return r;
  } finally {
    await client.call('Leases', 'Delete', { id, sync: !ok }).catch(() => undefined);
  }
}

/** Read a whole blob. */
export async function readBlob(client: TsrundClient, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of client.stream<{ data: Uint8Array }>('Content', 'Read', { digest }).messages) parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}

/** Store `data` in the content store with `labels` (an existing blob gets the labels). */
export async function writeBlob(client: TsrundClient, data: Buffer, mediaType: string, labels: Record<string, string>): Promise<Desc> {
  const digest = sha(data);
  const d = { mediaType, digest, size: data.length };
  const w = client.duplex<{ digest: string }>('Content', 'Write');
  try {
    await w.write({ action: 2, ref: `tsctl-${digest}-${randomBytes(4).toString('hex')}`, total: data.length, expected: digest, offset: 0, data, labels });
    w.end();
    for await (const m of w.messages) {
      if (m.digest !== digest) throw new TsrunError('Internal', `write blob ${digest}: the store says ${m.digest}`);
    }
  } catch (e) {
    if (!isRpc(e, 'AlreadyExists')) throw e;
    const paths = Object.keys(labels).map((k) => `labels.${k}`);
    if (paths.length > 0) await client.call('Content', 'Update', { info: { digest, labels }, updateMask: { paths } });
  }
  return d;
}

/** Read a JSON blob, naming it in the error when it is not JSON. */
export async function readJson<T>(client: TsrundClient, digest: string, what: string): Promise<T> {
  const text = (await readBlob(client, digest)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new TsrunError('InvalidArgument', `${what} ${digest}: not JSON: ${(e as Error).message}`);
  }
}

/** The state of the image named `name` (containerd name): its platform manifest's config and layers. */
export async function readImageState(client: TsrundClient, name: string): Promise<{ state: ImageState; id: string }> {
  const { image } = await client.call<{ image: { target: Desc | null } }>('Images', 'Get', { name });
  if (image.target === null) throw new TsrunError('InvalidArgument', `image ${name}: no target`);
  type Doc = { manifests?: Array<Desc & { platform?: { os?: string; architecture?: string } }>; config?: Desc; layers?: Desc[] };
  let doc = await readJson<Doc>(client, image.target.digest, 'manifest');
  if (doc.manifests !== undefined) {
    const m = doc.manifests.find((x) => x.platform?.os === 'linux' && x.platform.architecture === hostArch()) ?? (doc.manifests.length === 1 ? doc.manifests[0] : undefined);
    if (m === undefined) throw new TsrunError('NotFound', `image ${name}: no manifest for linux/${hostArch()}`);
    doc = await readJson<Doc>(client, m.digest, 'manifest');
  }
  if (doc.config === undefined) throw new TsrunError('InvalidArgument', `manifest of ${name}: no config`);
  const config = await readJson<OciConfig>(client, doc.config.digest, 'image config');
  config.rootfs = { type: 'layers', diff_ids: [...(config.rootfs?.diff_ids ?? [])] };
  config.config ??= {};
  const layers = (doc.layers ?? []).map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: num(l.size) }));
  if (layers.length !== config.rootfs.diff_ids.length) throw new TsrunError('InvalidArgument', `image ${name}: ${layers.length} layers but ${config.rootfs.diff_ids.length} diff ids`);
  return { state: { config, layers }, id: doc.config.digest };
}

/** The empty image (FROM scratch). */
export function scratchState(): ImageState {
  return { config: { architecture: hostArch(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, layers: [] };
}

/** The top chain id of a state ('' for no layers). */
export function topChain(s: ImageState): string {
  const c = chainIds(s.config.rootfs.diff_ids);
  return c[c.length - 1] ?? '';
}

/** A deep copy (states are extended step by step; a cached parent must not change). */
export function cloneState(s: ImageState): ImageState {
  return JSON.parse(JSON.stringify(s)) as ImageState;
}

/**
 * The changes of the snapshot mounted by `upper` against its parent as a gzip layer blob.
 * Overlay mounts carry their own parents; bind mounts (the native snapshotter) need `lower`.
 */
export async function diffLayer(client: TsrundClient, upper: readonly SnapshotMount[], lower: readonly SnapshotMount[]): Promise<{ layer: Desc; diffId: string } | undefined> {
  const { diff } = await client.call<{ diff: { mediaType: string; digest: string; size: unknown } }>('Diff', 'Diff', { left: lower, right: upper, mediaType: LAYER_GZIP, ref: `tsctl-diff-${randomBytes(8).toString('hex')}`, labels: {} });
  const { info } = await client.call<{ info: { labels: Record<string, string> } }>('Content', 'Info', { digest: diff.digest });
  const diffId = info.labels[UNCOMPRESSED];
  if (diffId === undefined) throw new TsrunError('Internal', `diff layer ${diff.digest}: no ${UNCOMPRESSED} label`);
  if (EMPTY_DIFFS.has(diffId)) return undefined;
  return { layer: { mediaType: diff.mediaType, digest: diff.digest, size: num(diff.size) }, diffId };
}

/** Append a layer (or, without one, an empty_layer entry) and its history entry. */
export function appendStep(s: ImageState, layer: { layer: Desc; diffId: string } | undefined, entry: HistoryEntry): void {
  const created = entry.created ?? formatRfc3339(now());
  if (layer !== undefined) {
    s.layers.push(layer.layer);
    s.config.rootfs.diff_ids.push(layer.diffId);
  }
  s.config.history = [...(s.config.history ?? []), { ...entry, created, ...(layer === undefined ? { empty_layer: true } : {}) }];
  s.config.created = created;
}

/** Write the config of `s` with `labels` (and the gc reference to its top chain snapshot). */
export async function storeConfig(client: TsrundClient, s: ImageState, labels: Record<string, string> = {}): Promise<Desc> {
  return writeBlob(client, Buffer.from(JSON.stringify(s.config)), CONFIG_TYPE, { ...labels, ...configGcLabels(s) });
}

/** The gc reference a config carries to its top chain snapshot (none for no layers). */
export function configGcLabels(s: ImageState): Record<string, string> {
  const top = topChain(s);
  return top !== '' ? { [`containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`]: top } : {};
}

/** The manifest of a config and its layers: its bytes and descriptor (nothing written). */
export function manifestOf(config: Desc, layers: readonly Desc[]): { bytes: Buffer; desc: Desc } {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config, layers }));
  return { bytes, desc: { mediaType: MANIFEST_TYPE, digest: sha(bytes), size: bytes.length } };
}

/** Write the manifest of `config` and `layers` with containerd's gc labels. */
export async function storeManifest(client: TsrundClient, config: Desc, layers: readonly Desc[]): Promise<Desc> {
  const mLabels: Record<string, string> = { 'containerd.io/gc.ref.content.config': config.digest };
  layers.forEach((l, i) => (mLabels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  return writeBlob(client, manifestOf(config, layers).bytes, MANIFEST_TYPE, mLabels);
}

/** Write the config and manifest of `s`; returns both descriptors. `configLabels` go on the config blob. */
export async function storeImage(client: TsrundClient, s: ImageState, configLabels: Record<string, string> = {}): Promise<{ config: Desc; manifest: Desc }> {
  const config = await storeConfig(client, s, configLabels);
  return { config, manifest: await storeManifest(client, config, s.layers) };
}

/** Point the image record `name` at `manifest` (create, or move an existing name as docker's tag does). */
export async function nameImage(client: TsrundClient, name: string, manifest: Desc): Promise<void> {
  const image = { name, labels: {}, target: manifest };
  try {
    await client.call('Images', 'Create', { image });
  } catch (e) {
    if (!isRpc(e, 'AlreadyExists')) throw e;
    await client.call('Images', 'Update', { image, updateMask: { paths: ['target'] } });
  }
}

/** The record name of an untagged image (found again by `untagged@sha256:…`, listed as dangling). */
export function untaggedName(configDigest: string): string {
  return `docker.io/library/untagged@${configDigest}`;
}

/**
 * Make the committed snapshot of the state's top chain id from the active snapshot `key` whose
 * changes are the state's last layer (build's steps: no second extraction). An existing chain
 * (the same layer made before) wins and `key` is removed.
 */
export async function commitChain(client: TsrundClient, s: ImageState, key: string): Promise<void> {
  try {
    await client.call('Snapshots', 'Commit', { snapshotter: SNAPSHOTTER, name: topChain(s), key, labels: {} });
  } catch (e) {
    if (!isRpc(e, 'AlreadyExists')) throw e;
    await client.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key });
  }
}

/**
 * Unpack the state's layers whose chain snapshot is missing: `tsctl run`'s unpacker (image-run's
 * ensureUnpacked, which also labels the config `configDigest` with its top chain as containerd's
 * unpacker does). `client` must carry a lease: nothing here is labelled gc.root.
 */
export async function unpackState(client: TsrundClient, s: ImageState, what: string, configDigest: string): Promise<void> {
  const diffIds = s.config.rootfs.diff_ids;
  if (diffIds.length === 0) return;
  await ensureUnpacked(client, { name: what, id: configDigest, config: s.config.config, layers: s.layers, diffIds, chain: chainIds(diffIds) });
}
