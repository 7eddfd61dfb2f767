/*
 * `tsctl run IMAGE` from tsrund's image store, docker's way (docs/tsctl.md):
 *
 *   name     docker's normalisation (busybox → docker.io/library/busybox:latest), Images.Get;
 *            missing → "Unable to find image 'X' locally", exit 125 (tsctl does not pull)
 *   layers   the host platform's manifest; unpacked (Diff.Apply per layer, committed under its
 *            chain id) when the overlayfs chain is missing
 *   rootfs   Snapshots.Prepare(key = container id, parent = top chain id) under a lease that
 *            expires (as containerd's clients do) and is deleted once the container record (a
 *            collector root) names the snapshot: a tsctl killed in between leaves a snapshot the
 *            collector takes when the lease expires, never one kept for good. Tasks.Create gets
 *            its mounts (tsrund mounts them); `rm` removes it after the container
 *   config   Entrypoint/Cmd, Env, WorkingDir (made if missing), User (the image's /etc/passwd and
 *            /etc/group, read with symlinks resolved inside the rootfs), StopSignal (a label that
 *            `stop` reads), Labels (under the container's), Volumes (anonymous volumes, copy-up)
 *
 * The image's files are read from the container's own snapshot, mounted on a private temporary
 * directory for the duration of create (and unmounted whatever happens).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { RpcError, type CallOptions, type TsrundClient } from '../client';
import { crashPoint } from '../../shim/crash-points';
import { formatRfc3339 } from '../proto/index';
import { withExit } from './context';
import { dockerName, fullName, namesById } from './commands/images';
import { parseVolumeFlag, type MountRequest } from './mounts';
import { resolveInRoot } from '../volumes/copy-up';
import { mountOne, unmountOne } from '../snapshots/mount';

/** The snapshotter image containers use (ctr's default, the one `ctr images import` unpacks into). */
export const SNAPSHOTTER = 'overlayfs';
/** The container label holding the image's StopSignal (read by `tsctl stop`). */
export const STOP_SIGNAL_LABEL = 'tsctl.stop-signal';
/**
 * How long a run's lease keeps what it made when tsctl dies before the container record holds it
 * (ctr's leases last 24 h; a run that takes an hour has failed). TSCTL_TEST_LEASE_MS shortens it
 * for the test that kills tsctl there.
 */
const RUN_LEASE_MS = 60 * 60 * 1000;

/** One containerd.types.Mount. */
export interface SnapshotMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** The `config` part of an OCI image config (the fields run uses). */
export interface ImageConfig {
  User?: string;
  ExposedPorts?: Record<string, unknown>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, unknown>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

/** An image resolved in the store. */
export interface ResolvedImage {
  /** the containerd name (docker.io/library/busybox:latest) */
  name: string;
  /** the config digest (docker's image id) */
  id: string;
  config: ImageConfig;
  layers: Array<{ mediaType: string; digest: string; size: number }>;
  diffIds: string[];
  chain: string[];
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number | { toNumber(): number };
}

const num = (v: number | { toNumber(): number }): number => (typeof v === 'number' ? v : v.toNumber());

async function readBlob(client: TsrundClient, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of client.stream<{ data: Uint8Array }>('Content', 'Read', { digest }).messages) parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}

async function readJson<T>(client: TsrundClient, digest: string, what: string): Promise<T> {
  const text = (await readBlob(client, digest)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new TsrunError('InvalidArgument', `${what} ${digest}: not JSON: ${(e as Error).message}`);
  }
}

function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
}

/** A lease that what a run makes joins, with a client whose every call carries it. */
export interface RunLease {
  readonly id: string;
  readonly client: TsrundClient;
  /** delete the lease: what it held lives on only if something else (image, container record) holds it */
  release(): Promise<void>;
}

/** A client whose every call carries `lease`. */
function leasedClient(client: TsrundClient, lease: string): TsrundClient {
  const o = (x: CallOptions | undefined): CallOptions => ({ ...(x ?? {}), lease });
  return {
    call: (service, method, req, opts) => client.call(service, method, req, o(opts)),
    stream: (service, method, req, opts) => client.stream(service, method, req, o(opts)),
    duplex: (service, method, opts) => client.duplex(service, method, o(opts)),
    close: () => client.close(),
  };
}

/** A fresh lease expiring RUN_LEASE_MS from now (containerd.io/gc.expire), for one run's unpack and snapshot. */
export async function createRunLease(client: TsrundClient, what: string): Promise<RunLease> {
  const test = Number(process.env['TSCTL_TEST_LEASE_MS']);
  const ttl = Number.isSafeInteger(test) && test > 0 ? test : RUN_LEASE_MS;
  const id = `tsctl-${what}-${randomBytes(6).toString('hex')}`;
  const at = Date.now() + ttl;
  const expire = formatRfc3339({ seconds: Math.floor(at / 1000), nanos: (at % 1000) * 1e6 });
  await client.call('Leases', 'Create', { id, labels: { 'containerd.io/gc.expire': expire } });
  return {
    id,
    client: leasedClient(client, id),
    release: async () => {
      await client.call('Leases', 'Delete', { id, sync: false });
    },
  };
}

/** containerd's chain ids of a list of diff ids. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : `sha256:${createHash('sha256').update(`${out[out.length - 1]!} ${d}`).digest('hex')}`);
  return out;
}

/** Is the error tsrund's NotFound? */
function notFound(e: unknown): boolean {
  return e instanceof RpcError && e.errorCode() === 'NotFound';
}

/** Find `ref` in the store; exit 125 with docker's message when it is not there. */
export async function resolveImage(client: TsrundClient, ref: string): Promise<ResolvedImage> {
  let name = fullName(ref);
  let target: Descriptor;
  try {
    let got: { image: { target: Descriptor | null } };
    try {
      got = await client.call<{ image: { target: Descriptor | null } }>('Images', 'Get', { name });
    } catch (e) {
      // not a name: docker also takes the image id, or a prefix of it
      const byId = notFound(e) ? (await namesById(client, ref))[0] : undefined;
      if (byId === undefined) throw e;
      name = byId;
      got = await client.call<{ image: { target: Descriptor | null } }>('Images', 'Get', { name });
    }
    if (got.image.target === null) throw new TsrunError('InvalidArgument', `image ${name}: no target`);
    target = got.image.target;
  } catch (e) {
    if (notFound(e)) throw withExit(new TsrunError('NotFound', `Unable to find image '${dockerName(fullName(ref)).join(':')}' locally`), 125);
    throw e;
  }
  type Doc = { manifests?: Array<Descriptor & { platform?: { os?: string; architecture?: string } }>; config?: Descriptor; layers?: Descriptor[] };
  let doc = await readJson<Doc>(client, target.digest, 'manifest');
  if (doc.manifests !== undefined) {
    const m = doc.manifests.find((x) => x.platform?.os === 'linux' && x.platform.architecture === hostArch());
    if (m === undefined) throw withExit(new TsrunError('NotFound', `image ${ref}: no matching manifest for linux/${hostArch()} in the manifest list entries`), 125);
    doc = await readJson<Doc>(client, m.digest, 'manifest');
  }
  if (doc.config === undefined) throw new TsrunError('InvalidArgument', `manifest of ${name}: no config`);
  const cfg = await readJson<{ config?: ImageConfig; rootfs?: { diff_ids?: string[] } }>(client, doc.config.digest, 'image config');
  const diffIds = cfg.rootfs?.diff_ids ?? [];
  const layers = (doc.layers ?? []).map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: num(l.size) }));
  if (diffIds.length !== layers.length) throw new TsrunError('InvalidArgument', `image ${name}: ${layers.length} layers but ${diffIds.length} diff ids in its config`);
  if (layers.length === 0) throw new TsrunError('InvalidArgument', `image ${name}: no layers`);
  return { name, id: doc.config.digest, config: cfg.config ?? {}, layers, diffIds, chain: chainIds(diffIds) };
}

async function exists(client: TsrundClient, key: string): Promise<boolean> {
  try {
    await client.call('Snapshots', 'Stat', { snapshotter: SNAPSHOTTER, key });
    return true;
  } catch (e) {
    if (notFound(e)) return false;
    throw e;
  }
}

/**
 * Unpack the layers whose chain snapshot is missing, as containerd's unpacker does: Prepare on the
 * parent, Diff.Apply the blob, check the diff id, Commit under the chain id. `client` carries a
 * lease (createRunLease) that keeps the extraction snapshots until the image's config labels the
 * chain; a failure removes the one under way.
 */
export async function ensureUnpacked(client: TsrundClient, img: ResolvedImage): Promise<void> {
  const top = img.chain[img.chain.length - 1]!;
  if (await exists(client, top)) return;
  // as containerd's unpacker: the image's config references the top of the chain (which keeps its
  // parents), so the layers live as long as the image does and go with `rmi`
  const ref = `containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`;
  await client.call('Content', 'Update', { info: { digest: img.id, labels: { [ref]: top } }, updateMask: { paths: [`labels.${ref}`] } });
  for (const [i, chainId] of img.chain.entries()) {
    if (await exists(client, chainId)) continue;
    const key = `extract-${randomBytes(6).toString('hex')} ${chainId}`;
    const parent = i === 0 ? '' : img.chain[i - 1]!;
    const { mounts } = await client.call<{ mounts: SnapshotMount[] }>('Snapshots', 'Prepare', { snapshotter: SNAPSHOTTER, key, parent, labels: {} });
    try {
      const l = img.layers[i]!;
      const { applied } = await client.call<{ applied: { digest: string } }>('Diff', 'Apply', { diff: { mediaType: l.mediaType, digest: l.digest, size: l.size }, mounts });
      const want = img.diffIds[i]!;
      if (applied.digest !== want) throw new TsrunError('InvalidArgument', `unpack ${img.name} layer ${l.digest}: diff id ${applied.digest}, the config says ${want}`);
      await client.call('Snapshots', 'Commit', { snapshotter: SNAPSHOTTER, name: chainId, key, labels: {} });
    } catch (e) {
      await client.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key }).catch(() => undefined);
      throw e;
    }
  }
}

/**
 * The container's own copy-on-write layer on top of the image; its mounts. `client` carries the
 * run's lease (createRunLease), which keeps the snapshot until the container record names it.
 */
export async function prepareSnapshot(client: TsrundClient, img: ResolvedImage, id: string): Promise<SnapshotMount[]> {
  const prepare = async (): Promise<SnapshotMount[]> =>
    (await client.call<{ mounts: SnapshotMount[] }>('Snapshots', 'Prepare', { snapshotter: SNAPSHOTTER, key: id, parent: img.chain[img.chain.length - 1]!, labels: {} })).mounts;
  // The image is unpacked almost always: Prepare on its top chain straight away, and unpack only
  // when that parent is missing (NotFound), not one Stat round trip first on every run.
  let mounts: SnapshotMount[];
  try {
    mounts = await prepare();
  } catch (e) {
    if (!notFound(e)) throw e;
    await ensureUnpacked(client, img);
    mounts = await prepare();
  }
  // test-only (TSRUND_TEST_CRASH_AT, shim/crash-points.ts): tsctl killed before the record exists
  crashPoint('tsctl:run-snapshot-prepared');
  return mounts;
}

/** Remove the container's snapshot (`key` = its snapshotKey); gone already is fine. */
export async function removeSnapshot(client: TsrundClient, snapshotter: string, key: string): Promise<void> {
  try {
    await client.call('Snapshots', 'Remove', { snapshotter, key });
  } catch (e) {
    if (!notFound(e)) throw e;
  }
}

/** The rootfs mounts for Tasks.Create of container `id`: its snapshot's, or none for a directory rootfs. */
export async function rootfsMounts(client: TsrundClient, id: string): Promise<SnapshotMount[]> {
  const { container } = await client.call<{ container: { snapshotter: string; snapshotKey: string } }>('Containers', 'Get', { id });
  if (container.snapshotKey === '') return [];
  const { mounts } = await client.call<{ mounts: SnapshotMount[] }>('Snapshots', 'Mounts', { snapshotter: container.snapshotter || SNAPSHOTTER, key: container.snapshotKey });
  return mounts;
}

/** Mount the snapshot on a fresh private directory, run `fn` on it, unmount and remove the directory. */
export async function withMountedSnapshot<T>(mounts: readonly SnapshotMount[], fn: (root: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsctl-rootfs-'));
  fs.chmodSync(dir, 0o700);
  const mounted: string[] = [];
  try {
    for (const m of mounts) {
      mountOne(m, dir, `mount the image's snapshot on ${dir}`);
      mounted.push(dir);
    }
    return await fn(dir);
  } finally {
    for (const d of mounted.reverse()) unmountOne(d);
    // a directory still busy must not hide the error that brought us here
    try {
      fs.rmdirSync(dir);
    } catch {
      // left for the next boot's tmp cleanup: it holds nothing once detached
    }
  }
}

/** docker's Entrypoint/Cmd merge: --entrypoint replaces the image's and drops its Cmd. */
export function mergeCommand(cfg: ImageConfig, entrypointFlag: string | undefined, cmd: readonly string[]): { entrypoint: string[]; cmd: string[] } {
  if (entrypointFlag !== undefined) return { entrypoint: entrypointFlag === '' ? [] : [entrypointFlag], cmd: [...cmd] };
  return { entrypoint: [...(cfg.Entrypoint ?? [])], cmd: cmd.length > 0 ? [...cmd] : [...(cfg.Cmd ?? [])] };
}

/** Labels keeping what `inspect` shows as docker does (Image id, Config.Entrypoint/Cmd). */
export const IMAGE_LABELS = { id: 'tsctl.image-id', entrypoint: 'tsctl.entrypoint', cmd: 'tsctl.cmd' } as const;

/** The image's exposed ports as `--expose` values ("80/tcp"). */
export function exposedPorts(cfg: ImageConfig): string[] {
  return Object.keys(cfg.ExposedPorts ?? {});
}

/** The image's VOLUME paths, absolute and not /, in order. */
export function imageVolumes(cfg: ImageConfig): string[] {
  return Object.keys(cfg.Volumes ?? {}).filter((v) => path.isAbsolute(v) && path.normalize(v) !== '/');
}

/** An anonymous volume (with copy-up) for each image VOLUME that no flag mounts something on. */
export function imageVolumeRequests(img: ResolvedImage, given: readonly MountRequest[]): MountRequest[] {
  const taken = new Set(given.filter((r) => r.kind !== 'from').map((r) => path.normalize((r as { target: string }).target)));
  return imageVolumes(img.config)
    .filter((v) => !taken.has(path.normalize(v)))
    .map((v) => parseVolumeFlag(path.normalize(v)));
}

/** docker makes the working directory when the image lacks it (resolved inside the rootfs). */
export function makeWorkdir(root: string, cwd: string): void {
  const host = resolveInRoot(root, cwd);
  try {
    fs.mkdirSync(host, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new TsrunError('InvalidArgument', `make the working directory ${cwd}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!fs.statSync(host).isDirectory()) throw new TsrunError('InvalidArgument', `working directory ${cwd}: not a directory`);
}
