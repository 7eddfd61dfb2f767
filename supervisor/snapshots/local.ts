/*
 * The Snapshots service's logic over the metadata rows (store/images.ts) and the drivers
 * (drivers.ts), in containerd's model: keys are per namespace; an active snapshot (Prepare) or a
 * view (View) sits on a committed parent; Commit turns an active key into a committed name (same
 * directory); a snapshot with children can't be removed. A new row is written first (it reserves
 * the id) and its directory right after; rows are deleted before their directories. A crash can
 * so leave a directory without a row (Cleanup and the collector remove it) or a new row without
 * its directory (Cleanup, also run when tsrund starts, makes it: an empty snapshot, as if the
 * crash had come a moment later).
 */
import { TsrunError } from '../../spec/errors';
import { objectAdaptor, parseFilters } from '../events/filters';
import type { Exchange } from '../events/exchange';
import { updateLabels } from '../content/store';
import { now } from '../proto/index';
import type { ImageMeta, SnapshotKind, SnapshotRecord } from '../store/images';
import { diskUsage, type Mount, type SnapshotDriver } from './drivers';

/** Snapshot logic for every loaded snapshotter. */
export interface Snapshots {
  readonly names: readonly string[];
  driver(snapshotter: string): SnapshotDriver;
  prepare(sn: string, ns: string, key: string, parent: string, labels: Record<string, string>, lease: string): Mount[];
  view(sn: string, ns: string, key: string, parent: string, labels: Record<string, string>, lease: string): Mount[];
  mounts(sn: string, ns: string, key: string): Mount[];
  commit(sn: string, ns: string, name: string, key: string, labels: Record<string, string>, lease: string): void;
  remove(sn: string, ns: string, key: string): void;
  stat(sn: string, ns: string, key: string): SnapshotRecord;
  update(sn: string, ns: string, key: string, labels: Record<string, string>, paths: readonly string[]): SnapshotRecord;
  list(sn: string, ns: string, filters: readonly string[]): SnapshotRecord[];
  usage(sn: string, ns: string, key: string): { size: number; inodes: number };
  /** remove directories no row names and make those a new row lacks (both left by a crash) */
  cleanup(sn: string): number;
  /** the ids of `s`'s parent chain, nearest first */
  parentIds(s: SnapshotRecord): number[];
}

const notExist = (key: string): TsrunError => new TsrunError('NotFound', `snapshot ${key} does not exist: not found`);

/** Snapshots over `drivers` (by name). */
export function createSnapshots(
  meta: ImageMeta,
  drivers: readonly SnapshotDriver[],
  events: Exchange,
  onLease: (ns: string, lease: string, type: string, id: string) => void,
): Snapshots {
  const byName = new Map(drivers.map((d) => [d.name, d]));
  const driver = (sn: string): SnapshotDriver => {
    const d = byName.get(sn === '' ? 'overlayfs' : sn);
    if (d === undefined) throw new TsrunError('InvalidArgument', `snapshotter not loaded: ${sn}: invalid argument`);
    return d;
  };
  const get = (sn: string, ns: string, key: string): SnapshotRecord => {
    if (key === '') throw new TsrunError('InvalidArgument', 'snapshot key must not be empty: invalid argument');
    const s = meta.getSnapshot(driver(sn).name, ns, key);
    if (s === undefined) throw notExist(key);
    return s;
  };
  const parentIds = (s: SnapshotRecord): number[] => {
    const out: number[] = [];
    let p = s.parent;
    for (let depth = 0; p !== '' && depth < 1000; depth++) {
      const ps = meta.getSnapshot(s.snapshotter, s.namespace, p);
      if (ps === undefined) throw new TsrunError('Internal', `snapshot ${s.key}: parent ${p} is missing from the metadata`);
      out.push(ps.id);
      p = ps.parent;
    }
    return out;
  };
  const create = (kind: SnapshotKind, sn: string, ns: string, key: string, parent: string, labels: Record<string, string>, lease: string): Mount[] => {
    const d = driver(sn);
    if (key === '') throw new TsrunError('InvalidArgument', 'snapshot key must not be empty: invalid argument');
    if (meta.getSnapshot(d.name, ns, key) !== undefined) throw new TsrunError('AlreadyExists', `snapshot ${JSON.stringify(key)}: already exists`);
    if (parent !== '') {
      const ps = meta.getSnapshot(d.name, ns, parent);
      if (ps === undefined) throw new TsrunError('NotFound', `parent snapshot ${parent} does not exist: not found`);
      if (ps.kind !== 'committed') throw new TsrunError('InvalidArgument', `parent ${parent} is not committed snapshot: invalid argument`);
    }
    const t = now();
    const rec: Omit<SnapshotRecord, 'id'> = { snapshotter: d.name, namespace: ns, key, parent, kind, labels, createdAt: t, updatedAt: t, size: 0, inodes: 0 };
    // The row first (it reserves the id), the directory next; a failed directory takes the row back.
    const id = meta.createSnapshot(rec);
    if (id === undefined) throw new TsrunError('AlreadyExists', `snapshot ${JSON.stringify(key)}: already exists`);
    const full: SnapshotRecord = { ...rec, id };
    const parents = parentIds(full);
    try {
      d.create(id, kind, parents);
    } catch (e) {
      meta.deleteSnapshot(d.name, ns, key);
      d.remove(id);
      throw e;
    }
    if (lease !== '') onLease(ns, lease, `snapshots/${d.name}`, key);
    events.publish(ns, '/snapshot/prepare', 'containerd.events.SnapshotPrepare', { key, parent });
    return d.mounts(id, kind, parents);
  };

  return {
    names: drivers.map((d) => d.name),
    driver,
    parentIds,
    prepare: (sn, ns, key, parent, labels, lease) => create('active', sn, ns, key, parent, labels, lease),
    view: (sn, ns, key, parent, labels, lease) => create('view', sn, ns, key, parent, labels, lease),
    mounts(sn, ns, key) {
      const s = get(sn, ns, key);
      if (s.kind === 'committed') throw new TsrunError('FailedPrecondition', `snapshot ${key} is committed, mounts are only for active or view snapshots: failed precondition`);
      return driver(sn).mounts(s.id, s.kind, parentIds(s));
    },
    commit(sn, ns, name, key, labels, lease) {
      const d = driver(sn);
      const s = get(sn, ns, key);
      if (s.kind !== 'active') throw new TsrunError('FailedPrecondition', `snapshot ${key} is not active: failed precondition`);
      if (name === '') throw new TsrunError('InvalidArgument', 'snapshot name must not be empty: invalid argument');
      if (meta.getSnapshot(d.name, ns, name) !== undefined) throw new TsrunError('AlreadyExists', `snapshot ${JSON.stringify(name)}: already exists`);
      const usage = diskUsage(d.fsPath(s.id));
      const merged = Object.keys(labels).length > 0 ? labels : s.labels;
      if (!meta.commitSnapshot(d.name, ns, key, name, merged, usage.size, usage.inodes)) throw notExist(key);
      // work/ is only for an active overlay
      d.create(s.id, 'committed', []);
      if (lease !== '') onLease(ns, lease, `snapshots/${d.name}`, name);
      events.publish(ns, '/snapshot/commit', 'containerd.events.SnapshotCommit', { key, name });
    },
    remove(sn, ns, key) {
      const d = driver(sn);
      const s = get(sn, ns, key);
      if (meta.countChildren(d.name, ns, key) > 0) throw new TsrunError('FailedPrecondition', `cannot remove snapshot with child: failed precondition`);
      meta.deleteSnapshot(d.name, ns, key);
      d.remove(s.id);
      events.publish(ns, '/snapshot/remove', 'containerd.events.SnapshotRemove', { key });
    },
    stat: get,
    update(sn, ns, key, labels, paths) {
      const s = get(sn, ns, key);
      const next: SnapshotRecord = { ...s, labels: updateLabels(s.labels, labels, paths, 'snapshot'), updatedAt: now() };
      meta.updateSnapshot(next);
      return next;
    },
    list(sn, ns, filters) {
      const f = parseFilters(filters);
      const kinds: Record<SnapshotKind, string> = { view: 'view', active: 'active', committed: 'committed' };
      return meta
        .listSnapshots(driver(sn).name, ns)
        .filter((s) => f(objectAdaptor({ name: s.key, parent: s.parent, kind: kinds[s.kind], labels: s.labels })));
    },
    usage(sn, ns, key) {
      const s = get(sn, ns, key);
      // as containerd: only an active snapshot is measured live; a view reports nothing of its own
      if (s.kind !== 'active') return { size: s.size, inodes: s.inodes };
      return diskUsage(driver(sn).fsPath(s.id));
    },
    cleanup(sn) {
      const d = driver(sn);
      const rows = meta.allSnapshots(d.name);
      const known = new Set(rows.map((s) => s.id));
      const onDisk = new Set(d.ids());
      for (const s of rows) if (s.kind !== 'committed' && !onDisk.has(s.id)) d.create(s.id, s.kind, []);
      let n = 0;
      for (const id of d.ids()) {
        if (known.has(id)) continue;
        d.remove(id);
        n++;
      }
      return n;
    },
  };
}

/** Remove snapshot `key` if it is there (gone already, or never made, is fine). */
export function removeSnapshotIfAny(snaps: Snapshots, sn: string, ns: string, key: string): void {
  try {
    snaps.remove(sn, ns, key);
  } catch (e) {
    if (!(e instanceof TsrunError && e.code === 'NotFound')) throw e;
  }
}
