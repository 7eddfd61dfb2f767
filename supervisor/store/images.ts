/*
 * The image metadata of tsrund, in the same <root>/meta.db as store/db.ts but through its own
 * connection and its own tables (so the two evolve independently):
 *
 *   content(namespace, digest, size, labels JSON, created_at, updated_at)        PK (namespace, digest)
 *   images(namespace, name, labels JSON, media_type, digest, size, annotations JSON, created_at, updated_at)
 *   snapshots(id PK, snapshotter, namespace, key, parent, kind, labels JSON, created_at, updated_at,
 *             size, inodes)                              UNIQUE (snapshotter, namespace, key)
 *   lease_resources(namespace, lease, type, id)          PK (all four)
 *
 * Blobs and snapshot directories are on disk (content/, snapshots/); a row is written after its
 * file is durable and deleted before it is, so a crash leaves at most an orphan file that the next
 * garbage collection removes, never a row naming a missing or partial file. The schema version is
 * meta.images_schema; `migrate` brings an older file up to date.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { timestampFromText, timestampText, type Timestamp } from '../proto/index';

/** A blob's metadata in one namespace. */
export interface ContentRecord {
  digest: string;
  size: number;
  labels: Record<string, string>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** An OCI descriptor as images point at it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

/** An image record (a name pointing at a manifest or index). */
export interface ImageRecord {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** Snapshot kinds, numbered as containerd's Kind enum. */
export type SnapshotKind = 'view' | 'active' | 'committed';

/** A snapshot's metadata. `id` names its directory under the snapshotter's root. */
export interface SnapshotRecord {
  id: number;
  snapshotter: string;
  namespace: string;
  key: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  /** bytes and inodes measured at commit (committed snapshots only) */
  size: number;
  inodes: number;
}

/** A resource a lease holds: type "content" (id a digest), "snapshots/<snapshotter>" (id a key) or "ingests". */
export interface LeaseResource {
  type: string;
  id: string;
}

const SCHEMA_VERSION = 1;

const MIGRATIONS: Record<number, string> = {
  1: `
CREATE TABLE IF NOT EXISTS content (
  namespace TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL, labels TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (namespace, digest)
);
CREATE TABLE IF NOT EXISTS images (
  namespace TEXT NOT NULL, name TEXT NOT NULL, labels TEXT NOT NULL, media_type TEXT NOT NULL, digest TEXT NOT NULL,
  size INTEGER NOT NULL, annotations TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT, snapshotter TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,
  parent TEXT NOT NULL, kind TEXT NOT NULL, labels TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  size INTEGER NOT NULL DEFAULT 0, inodes INTEGER NOT NULL DEFAULT 0, UNIQUE (snapshotter, namespace, key)
);
CREATE TABLE IF NOT EXISTS lease_resources (
  namespace TEXT NOT NULL, lease TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (namespace, lease, type, id)
);
`,
};

/** The image tables' reads and writes. */
export interface ImageMeta {
  getContent(ns: string, digest: string): ContentRecord | undefined;
  listContent(ns: string): ContentRecord[];
  /** every (namespace, digest) row: the sweep keeps a blob while any namespace has it */
  allContent(): Array<{ namespace: string; digest: string; labels: Record<string, string> }>;
  /** insert, or keep the existing row (returns false then) */
  putContent(ns: string, c: ContentRecord): boolean;
  updateContent(ns: string, c: ContentRecord): void;
  deleteContent(ns: string, digest: string): boolean;

  getImage(ns: string, name: string): ImageRecord | undefined;
  listImages(ns: string): ImageRecord[];
  allImages(): Array<ImageRecord & { namespace: string }>;
  createImage(ns: string, i: ImageRecord): boolean;
  updateImage(ns: string, i: ImageRecord): void;
  deleteImage(ns: string, name: string): boolean;

  getSnapshot(snapshotter: string, ns: string, key: string): SnapshotRecord | undefined;
  listSnapshots(snapshotter: string, ns: string): SnapshotRecord[];
  allSnapshots(snapshotter?: string): SnapshotRecord[];
  /** the new row's id, or undefined when the key exists */
  createSnapshot(s: Omit<SnapshotRecord, 'id'>): number | undefined;
  /** rename active `key` to committed `name` (same id and directory) */
  commitSnapshot(snapshotter: string, ns: string, key: string, name: string, labels: Record<string, string>, size: number, inodes: number): boolean;
  updateSnapshot(s: SnapshotRecord): void;
  deleteSnapshot(snapshotter: string, ns: string, key: string): boolean;
  countChildren(snapshotter: string, ns: string, key: string): number;

  addLeaseResource(ns: string, lease: string, r: LeaseResource): void;
  deleteLeaseResource(ns: string, lease: string, r: LeaseResource): void;
  listLeaseResources(ns: string, lease: string): LeaseResource[];
  allLeaseResources(): Array<LeaseResource & { namespace: string; lease: string }>;
  dropLeaseResources(ns: string, lease: string): void;

  /** run `fn` in one transaction */
  transaction<T>(fn: () => T): T;
  close(): void;
}

interface ContentRow { namespace: string; digest: string; size: number; labels: string; created_at: string; updated_at: string }
interface ImageRow {
  namespace: string; name: string; labels: string; media_type: string; digest: string; size: number; annotations: string;
  created_at: string; updated_at: string;
}
interface SnapshotRow {
  id: number; snapshotter: string; namespace: string; key: string; parent: string; kind: string; labels: string;
  created_at: string; updated_at: string; size: number; inodes: number;
}

const json = (v: unknown): string => JSON.stringify(v);
const labelsOf = (t: string): Record<string, string> => JSON.parse(t) as Record<string, string>;

const contentRow = (r: ContentRow): ContentRecord => ({
  digest: r.digest, size: r.size, labels: labelsOf(r.labels),
  createdAt: timestampFromText(r.created_at), updatedAt: timestampFromText(r.updated_at),
});
const imageRow = (r: ImageRow): ImageRecord & { namespace: string } => ({
  namespace: r.namespace, name: r.name, labels: labelsOf(r.labels),
  target: { mediaType: r.media_type, digest: r.digest, size: r.size, annotations: labelsOf(r.annotations) },
  createdAt: timestampFromText(r.created_at), updatedAt: timestampFromText(r.updated_at),
});
const snapshotRow = (r: SnapshotRow): SnapshotRecord => ({
  id: r.id, snapshotter: r.snapshotter, namespace: r.namespace, key: r.key, parent: r.parent, kind: r.kind as SnapshotKind,
  labels: labelsOf(r.labels), createdAt: timestampFromText(r.created_at), updatedAt: timestampFromText(r.updated_at),
  size: r.size, inodes: r.inodes,
});

/** Bring the image tables of `db` to the current schema version. */
export function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const row = db.prepare("SELECT value FROM meta WHERE key = 'images_schema'").get() as { value: string } | undefined;
  const from = row === undefined ? 0 : Number(row.value);
  if (from > SCHEMA_VERSION) throw new Error(`image metadata schema ${from} is newer than this tsrund's (${SCHEMA_VERSION})`);
  db.transaction(() => {
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] ?? '');
    db.prepare("INSERT INTO meta (key, value) VALUES ('images_schema', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(SCHEMA_VERSION));
  })();
}

/** Open the image tables in <root>/meta.db (created and migrated as needed). */
export function openImageMeta(root: string): ImageMeta {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const db = new Database(path.join(root, 'meta.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  /*
   * A lease's resources are written with synchronous=NORMAL, as store/db.ts writes leases: every
   * ingest adds one and every lease delete drops them, and an fsync each was a good part of an
   * import's metadata cost. Still safe against kill -9; after a power loss a lost row can only
   * drop a lease's hold, never name a missing blob (the WAL is a sequence: the FULL commit of a
   * content or snapshot row that comes after makes the earlier rows durable with it). Inside a
   * transaction the setting can't change; the transaction's own commit decides.
   */
  const relaxed = <T>(fn: () => T): T => {
    if (db.inTransaction) return fn();
    db.pragma('synchronous = NORMAL');
    try {
      return fn();
    } finally {
      db.pragma('synchronous = FULL');
    }
  };
  const p = (sql: string): Database.Statement => db.prepare(sql);
  const q = {
    cGet: p('SELECT * FROM content WHERE namespace = ? AND digest = ?'),
    cList: p('SELECT * FROM content WHERE namespace = ? ORDER BY digest'),
    cAll: p('SELECT namespace, digest, labels FROM content'),
    cInsert: p('INSERT OR IGNORE INTO content VALUES (?, ?, ?, ?, ?, ?)'),
    cUpdate: p('UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?'),
    cDelete: p('DELETE FROM content WHERE namespace = ? AND digest = ?'),
    iGet: p('SELECT * FROM images WHERE namespace = ? AND name = ?'),
    iList: p('SELECT * FROM images WHERE namespace = ? ORDER BY name'),
    iAll: p('SELECT * FROM images'),
    iInsert: p('INSERT OR IGNORE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    iUpdate: p('UPDATE images SET labels = ?, media_type = ?, digest = ?, size = ?, annotations = ?, updated_at = ? WHERE namespace = ? AND name = ?'),
    iDelete: p('DELETE FROM images WHERE namespace = ? AND name = ?'),
    sGet: p('SELECT * FROM snapshots WHERE snapshotter = ? AND namespace = ? AND key = ?'),
    sList: p('SELECT * FROM snapshots WHERE snapshotter = ? AND namespace = ? ORDER BY key'),
    sAll: p('SELECT * FROM snapshots ORDER BY id'),
    sAllOf: p('SELECT * FROM snapshots WHERE snapshotter = ? ORDER BY id'),
    sInsert: p(`INSERT OR IGNORE INTO snapshots (snapshotter, namespace, key, parent, kind, labels, created_at, updated_at, size, inodes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    sCommit: p(`UPDATE snapshots SET key = ?, kind = 'committed', labels = ?, updated_at = ?, size = ?, inodes = ?
                WHERE snapshotter = ? AND namespace = ? AND key = ? AND kind = 'active'`),
    sUpdate: p('UPDATE snapshots SET labels = ?, updated_at = ? WHERE id = ?'),
    sDelete: p('DELETE FROM snapshots WHERE snapshotter = ? AND namespace = ? AND key = ?'),
    sChildren: p('SELECT COUNT(*) AS n FROM snapshots WHERE snapshotter = ? AND namespace = ? AND parent = ?'),
    rAdd: p('INSERT OR IGNORE INTO lease_resources VALUES (?, ?, ?, ?)'),
    rDel: p('DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?'),
    rList: p('SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ? ORDER BY type, id'),
    rAll: p('SELECT * FROM lease_resources'),
    rDrop: p('DELETE FROM lease_resources WHERE namespace = ? AND lease = ?'),
  };
  const ts = timestampText;
  return {
    getContent(ns, digest) {
      const r = q.cGet.get(ns, digest) as ContentRow | undefined;
      return r === undefined ? undefined : contentRow(r);
    },
    listContent: (ns) => (q.cList.all(ns) as ContentRow[]).map(contentRow),
    allContent: () => (q.cAll.all() as ContentRow[]).map((r) => ({ namespace: r.namespace, digest: r.digest, labels: labelsOf(r.labels) })),
    putContent: (ns, c) => q.cInsert.run(ns, c.digest, c.size, json(c.labels), ts(c.createdAt), ts(c.updatedAt)).changes > 0,
    updateContent(ns, c) {
      q.cUpdate.run(json(c.labels), ts(c.updatedAt), ns, c.digest);
    },
    deleteContent: (ns, digest) => q.cDelete.run(ns, digest).changes > 0,

    getImage(ns, name) {
      const r = q.iGet.get(ns, name) as ImageRow | undefined;
      return r === undefined ? undefined : imageRow(r);
    },
    listImages: (ns) => (q.iList.all(ns) as ImageRow[]).map(imageRow),
    allImages: () => (q.iAll.all() as ImageRow[]).map(imageRow),
    createImage: (ns, i) =>
      q.iInsert.run(ns, i.name, json(i.labels), i.target.mediaType, i.target.digest, i.target.size, json(i.target.annotations), ts(i.createdAt), ts(i.updatedAt))
        .changes > 0,
    updateImage(ns, i) {
      q.iUpdate.run(json(i.labels), i.target.mediaType, i.target.digest, i.target.size, json(i.target.annotations), ts(i.updatedAt), ns, i.name);
    },
    deleteImage: (ns, name) => q.iDelete.run(ns, name).changes > 0,

    getSnapshot(snapshotter, ns, key) {
      const r = q.sGet.get(snapshotter, ns, key) as SnapshotRow | undefined;
      return r === undefined ? undefined : snapshotRow(r);
    },
    listSnapshots: (snapshotter, ns) => (q.sList.all(snapshotter, ns) as SnapshotRow[]).map(snapshotRow),
    allSnapshots: (snapshotter) => ((snapshotter === undefined ? q.sAll.all() : q.sAllOf.all(snapshotter)) as SnapshotRow[]).map(snapshotRow),
    createSnapshot(s) {
      const r = q.sInsert.run(s.snapshotter, s.namespace, s.key, s.parent, s.kind, json(s.labels), ts(s.createdAt), ts(s.updatedAt), s.size, s.inodes);
      return r.changes > 0 ? Number(r.lastInsertRowid) : undefined;
    },
    commitSnapshot: (snapshotter, ns, key, name, labels, size, inodes) =>
      q.sCommit.run(name, json(labels), ts(nowTs()), size, inodes, snapshotter, ns, key).changes > 0,
    updateSnapshot(s) {
      q.sUpdate.run(json(s.labels), ts(s.updatedAt), s.id);
    },
    deleteSnapshot: (snapshotter, ns, key) => q.sDelete.run(snapshotter, ns, key).changes > 0,
    countChildren: (snapshotter, ns, key) => (q.sChildren.get(snapshotter, ns, key) as { n: number }).n,

    addLeaseResource(ns, lease, r) {
      relaxed(() => q.rAdd.run(ns, lease, r.type, r.id));
    },
    deleteLeaseResource(ns, lease, r) {
      relaxed(() => q.rDel.run(ns, lease, r.type, r.id));
    },
    listLeaseResources: (ns, lease) => q.rList.all(ns, lease) as LeaseResource[],
    allLeaseResources: () => q.rAll.all() as Array<LeaseResource & { namespace: string; lease: string }>,
    dropLeaseResources(ns, lease) {
      relaxed(() => q.rDrop.run(ns, lease));
    },
    transaction: <T>(fn: () => T): T => db.transaction(fn)(),
    close: () => db.close(),
  };
}

function nowTs(): Timestamp {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
