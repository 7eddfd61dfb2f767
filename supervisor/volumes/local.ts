/*
 * The local volume driver: each volume is <root>/volumes/<name>/_data, its record (labels, options,
 * anonymous or not) a row of the store's volumes table.
 *
 *   create   mkdir, then the row (a crash between leaves a directory the next create reuses)
 *   remove   refused while a container's spec mounts it (the error names them); else the row goes
 *            and the directory is renamed to a hidden name, then removed, so a kill -9 midway
 *            leaves only a hidden directory that the next start sweeps
 *   prepare  what `run -v NAME:/path` needs: the volume (made if missing) and docker's copy-up of
 *            the rootfs's content at /path into it when it is empty
 *   removeAnonymousOf   a container removed by tsrund itself (run -d --rm): the anonymous volumes
 *            its spec mounted that no other container uses go, as docker removes them
 *
 * "In use" is read from the containers themselves (every namespace): a container whose spec has
 * a mount with the volume's _data as source uses it, whoever made it.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { now } from '../proto/index';
import type { Store } from '../store/db';
import type { VolumeRecord } from '../store/volumes';
import { copyUp } from './copy-up';

/** docker's rule for volume names (also keeps them one path component). */
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const REMOVING = '.removing-';

/** A volume as the API shows it. */
export interface VolumeView extends VolumeRecord {
  mountpoint: string;
  /** ids of the containers whose spec mounts it */
  usedBy: string[];
}

/** Options of prepare. */
export interface PrepareOptions {
  anonymous: boolean;
  labels: Record<string, string>;
  /** copy-up source: the container's rootfs and the path the volume is mounted at */
  copyFrom?: { rootfs: string; path: string };
}

/** The volume logic the Volumes service adapts. */
export interface Volumes {
  create(name: string, labels: Record<string, string>, options: Record<string, string>, anonymous: boolean): VolumeView;
  get(name: string): VolumeView;
  list(): VolumeView[];
  remove(name: string, force: boolean): void;
  /** unused anonymous volumes (all unused ones with `all`) removed; their names and bytes freed */
  prune(all: boolean, keep: (v: VolumeView) => boolean): { deleted: string[]; reclaimed: number };
  prepare(name: string, opts: PrepareOptions): Promise<VolumeView>;
  /** bytes used under a volume's directory */
  size(name: string): number;
  /** the anonymous volumes a removed container's spec (JSON) mounted and nobody else uses, removed; their names */
  removeAnonymousOf(spec: Uint8Array): string[];
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new TsrunError('InvalidArgument', `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
  }
}

function duBytes(dir: string): number {
  let total = 0;
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    total += st.blocks * 512;
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return total;
}

/** Volumes under `<root>/volumes` over the store. */
export function createVolumes(store: Store, root: string): Volumes {
  const base = path.join(root, 'volumes');
  fs.mkdirSync(base, { recursive: true, mode: 0o701 });
  // Sweep what a kill -9 in the middle of a remove left.
  for (const n of fs.readdirSync(base)) if (n.startsWith(REMOVING)) fs.rmSync(path.join(base, n), { recursive: true, force: true });

  const dataDir = (name: string): string => path.join(base, name, '_data');

  const usersOf = (name: string): string[] => {
    const mp = dataDir(name);
    const out: string[] = [];
    for (const c of store.allContainers()) {
      let mounts: Array<{ source?: unknown }> = [];
      try {
        const spec = JSON.parse(Buffer.from(c.spec.value).toString('utf8')) as { mounts?: Array<{ source?: unknown }> };
        mounts = spec.mounts ?? [];
      } catch {
        continue;
      }
      if (mounts.some((m) => typeof m.source === 'string' && (m.source === mp || m.source.startsWith(`${mp}/`)))) out.push(c.id);
    }
    return out;
  };

  const view = (v: VolumeRecord): VolumeView => ({ ...v, mountpoint: dataDir(v.name), usedBy: usersOf(v.name) });

  const lookup = (name: string): VolumeRecord => {
    const v = store.volumes.get(name);
    if (v === undefined) throw new TsrunError('NotFound', `get ${name}: no such volume`);
    return v;
  };

  const create = (name: string, labels: Record<string, string>, options: Record<string, string>, anonymous: boolean): VolumeView => {
    checkName(name);
    for (const k of Object.keys(options)) {
      // the local driver's mount options (type=, device=, o=) would mount file systems as root on request: not offered
      throw new TsrunError('InvalidArgument', `create ${name}: driver option ${JSON.stringify(k)} is not supported by the local driver`);
    }
    const existing = store.volumes.get(name);
    if (existing !== undefined) {
      fs.mkdirSync(dataDir(name), { recursive: true, mode: 0o755 });
      return view(existing); // docker: creating an existing volume returns it
    }
    try {
      fs.mkdirSync(dataDir(name), { recursive: true, mode: 0o755 });
    } catch (e) {
      throw wrapSystemError(`create volume ${name}: mkdir ${dataDir(name)}`, e);
    }
    const rec: VolumeRecord = { name, labels, options, anonymous, createdAt: now() };
    store.volumes.insert(rec);
    return view(store.volumes.get(name) ?? rec);
  };

  const removeDir = (name: string): void => {
    const dir = path.join(base, name);
    const hidden = path.join(base, `${REMOVING}${name}-${randomBytes(4).toString('hex')}`);
    try {
      fs.renameSync(dir, hidden);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw wrapSystemError(`remove volume ${name}: rename ${dir}`, e);
    }
    fs.rmSync(hidden, { recursive: true, force: true });
  };

  return {
    create,
    get: (name) => view(lookup(name)),
    list: () => store.volumes.list().map(view),
    remove(name, force) {
      const v = store.volumes.get(name);
      if (v === undefined) {
        if (force) return;
        throw new TsrunError('NotFound', `get ${name}: no such volume`);
      }
      const users = usersOf(name);
      if (users.length > 0) {
        throw new TsrunError('FailedPrecondition', `remove ${name}: volume is in use - [${users.join(', ')}]`);
      }
      store.volumes.delete(name);
      removeDir(name);
    },
    prune(all, keep) {
      const deleted: string[] = [];
      let reclaimed = 0;
      for (const v of store.volumes.list().map(view)) {
        if (v.usedBy.length > 0 || (!all && !v.anonymous) || keep(v)) continue;
        reclaimed += duBytes(v.mountpoint);
        store.volumes.delete(v.name);
        removeDir(v.name);
        deleted.push(v.name);
      }
      return { deleted, reclaimed };
    },
    async prepare(name, opts) {
      const from = opts.copyFrom;
      if (from !== undefined && (!path.isAbsolute(from.rootfs) || !path.isAbsolute(from.path))) {
        throw new TsrunError('InvalidArgument', `prepare volume ${name}: rootfs and path must be absolute`);
      }
      const v = create(name, opts.labels, {}, opts.anonymous);
      if (from !== undefined && fs.readdirSync(v.mountpoint).length === 0) await copyUp(from.rootfs, from.path, v.mountpoint);
      return v;
    },
    size: (name) => duBytes(dataDir(lookup(name).name)),
    removeAnonymousOf(spec) {
      let mounts: Array<{ source?: unknown }>;
      try {
        mounts = (JSON.parse(Buffer.from(spec).toString('utf8')) as { mounts?: Array<{ source?: unknown }> }).mounts ?? [];
      } catch {
        return []; // not a spec we wrote: nothing of ours to find in it
      }
      const sources = new Set(mounts.map((m) => m.source).filter((x): x is string => typeof x === 'string'));
      const removed: string[] = [];
      for (const v of store.volumes.list()) {
        if (!v.anonymous || !sources.has(dataDir(v.name)) || usersOf(v.name).length > 0) continue;
        store.volumes.delete(v.name);
        removeDir(v.name);
        removed.push(v.name);
      }
      return removed;
    },
  };
}
