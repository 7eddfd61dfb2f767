/*
 * tsrund's metadata in SQLite (better-sqlite3), one file <root>/meta.db:
 *
 *   meta(key PK, value)                          daemon uuid
 *   namespaces(name PK, labels JSON, created_at)
 *   containers(namespace, id, labels JSON, image, runtime_name, runtime_options_url, runtime_options BLOB,
 *              spec_url, spec BLOB (stored and returned byte-for-byte), snapshotter, snapshot_key,
 *              extensions JSON, created_at, updated_at)           PK (namespace, id)
 *   leases(namespace, id, labels JSON, created_at)               PK (namespace, id)
 *   restarts(namespace, id, restart_count, manually_stopped, last_exit, backoff_step, started_at, last_exit_at)   PK (namespace, id)
 *                                                 restart-policy bookkeeping (the policy is a container label),
 *                                                 with the back-off, so a tsrund restart does not reset it
 *
 * Columns added after the first release come in through MIGRATIONS; PRAGMA user_version counts
 * the ones a database has been through.
 *
 * journal_mode=WAL and synchronous=FULL: a statement that returned has been fsynced, so an
 * acknowledged write survives kill -9 and power loss. Leases are written with synchronous=NORMAL
 * (still safe against kill -9, not against power loss): with --rootfs they protect nothing and
 * every `ctr run` makes and drops one. Timestamps are stored as "<seconds>.<nanos>" text.
 * Every statement is prepared once; a read is a few microseconds.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { timestampFromText, timestampText, type AnyValue, type Timestamp } from '../proto/index';
import { volumeStore, type VolumeStore } from './volumes';

/** A namespace as stored. */
export interface NamespaceRecord {
  name: string;
  labels: Record<string, string>;
}

/** A container record as stored and served by Containers.Get. */
export interface ContainerRecord {
  namespace: string;
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options: AnyValue | null };
  spec: AnyValue;
  snapshotter: string;
  snapshotKey: string;
  extensions: Record<string, AnyValue>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** A lease as stored. */
export interface LeaseRecord {
  namespace: string;
  id: string;
  labels: Record<string, string>;
  createdAt: Timestamp;
}

/** Restart-policy bookkeeping of one container. */
export interface RestartRecord {
  namespace: string;
  id: string;
  restartCount: number;
  /** set when the user stopped it (tsctl stop/kill): unless-stopped and always then leave it down */
  manuallyStopped: boolean;
  lastExit: number | null;
  /** restarts in a row that did not run HEALTHY_MS (restart/policy.ts): the next back-off is backoffMs(backoffStep) */
  backoffStep: number;
  /** when the last restart started the task (ms since the epoch), or null */
  startedAt: number | null;
  /** the exited_at of the exit the back-off was last counted for (a re-published exit is not counted twice) */
  lastExitAt: string | null;
}

interface ContainerRow {
  namespace: string;
  id: string;
  labels: string;
  image: string;
  runtime_name: string;
  runtime_options_url: string | null;
  runtime_options: Buffer | null;
  spec_url: string;
  spec: Buffer;
  snapshotter: string;
  snapshot_key: string;
  extensions: string;
  created_at: string;
  updated_at: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, labels TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS containers (
  namespace TEXT NOT NULL, id TEXT NOT NULL, labels TEXT NOT NULL, image TEXT NOT NULL,
  runtime_name TEXT NOT NULL, runtime_options_url TEXT, runtime_options BLOB,
  spec_url TEXT NOT NULL, spec BLOB NOT NULL, snapshotter TEXT NOT NULL, snapshot_key TEXT NOT NULL,
  extensions TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (namespace, id)
);
CREATE TABLE IF NOT EXISTS leases (
  namespace TEXT NOT NULL, id TEXT NOT NULL, labels TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (namespace, id)
);
CREATE TABLE IF NOT EXISTS restarts (
  namespace TEXT NOT NULL, id TEXT NOT NULL, restart_count INTEGER NOT NULL, manually_stopped INTEGER NOT NULL,
  last_exit INTEGER, backoff_step INTEGER NOT NULL DEFAULT 0, started_at INTEGER, last_exit_at TEXT,
  in_flight_stdio TEXT,
  PRIMARY KEY (namespace, id)
);
`;

/**
 * Changes to databases made before them, in order; user_version N means the first N are applied.
 * Each checks before it changes, so a database made with today's SCHEMA passes through unchanged.
 */
const MIGRATIONS: ReadonlyArray<(db: Database.Database) => void> = [
  // 1: the restart back-off is kept with the policy state (it used to start over at every tsrund start)
  (db) => {
    const cols = new Set((db.prepare('PRAGMA table_info(restarts)').all() as Array<{ name: string }>).map((c) => c.name));
    if (!cols.has('backoff_step')) db.exec('ALTER TABLE restarts ADD COLUMN backoff_step INTEGER NOT NULL DEFAULT 0');
    if (!cols.has('started_at')) db.exec('ALTER TABLE restarts ADD COLUMN started_at INTEGER');
    if (!cols.has('last_exit_at')) db.exec('ALTER TABLE restarts ADD COLUMN last_exit_at TEXT');
  },
  // 2: a restart between its task's delete and create is written down, so a tsrund killed there finishes it on start
  (db) => {
    const cols = new Set((db.prepare('PRAGMA table_info(restarts)').all() as Array<{ name: string }>).map((c) => c.name));
    if (!cols.has('in_flight_stdio')) db.exec('ALTER TABLE restarts ADD COLUMN in_flight_stdio TEXT');
  },
];

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version >= MIGRATIONS.length) return;
  db.transaction(() => {
    for (const m of MIGRATIONS.slice(version)) m(db);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
}

/** The metadata store: every read and write tsrund makes to disk besides the shims' own. */
export interface Store {
  /** the daemon's uuid (made on first open, then stable) */
  readonly uuid: string;
  listNamespaces(): NamespaceRecord[];
  getNamespace(name: string): NamespaceRecord | undefined;
  /** false when it already existed */
  createNamespace(ns: NamespaceRecord): boolean;
  /** create it unless it exists (implicit creation on the first namespaced write) */
  ensureNamespace(name: string): void;
  updateNamespace(ns: NamespaceRecord): void;
  deleteNamespace(name: string): boolean;
  countContainers(namespace: string): number;

  getContainer(namespace: string, id: string): ContainerRecord | undefined;
  listContainers(namespace: string): ContainerRecord[];
  /** every container of every namespace (re-adoption) */
  allContainers(): ContainerRecord[];
  /** false when (namespace, id) exists */
  createContainer(c: ContainerRecord): boolean;
  updateContainer(c: ContainerRecord): void;
  deleteContainer(namespace: string, id: string): boolean;

  getLease(namespace: string, id: string): LeaseRecord | undefined;
  listLeases(namespace: string): LeaseRecord[];
  createLease(l: LeaseRecord): boolean;
  deleteLease(namespace: string, id: string): boolean;

  getRestart(namespace: string, id: string): RestartRecord | undefined;
  putRestart(r: RestartRecord): void;
  deleteRestart(namespace: string, id: string): void;
  /**
   * A policy restart deletes the exited task and creates it again with the same stdio: `stdio`
   * (JSON) is kept from before the delete until the new task exists (null), so a tsrund killed
   * in between creates it on its next start instead of leaving a container without a task.
   */
  setRestartInFlight(namespace: string, id: string, stdio: string | null): void;
  /** the restarts a killed tsrund left between delete and create */
  listRestartsInFlight(): Array<{ namespace: string; id: string; stdio: string }>;

  /** the volumes table (store/volumes.ts) */
  readonly volumes: VolumeStore;

  close(): void;
}

function parseLabels(text: string): Record<string, string> {
  return JSON.parse(text) as Record<string, string>;
}

function extensionsToText(ext: Record<string, AnyValue>): string {
  const out: Record<string, [string, string]> = {};
  for (const [k, v] of Object.entries(ext)) out[k] = [v.typeUrl, Buffer.from(v.value).toString('base64')];
  return JSON.stringify(out);
}

function extensionsFromText(text: string): Record<string, AnyValue> {
  const raw = JSON.parse(text) as Record<string, [string, string]>;
  const out: Record<string, AnyValue> = {};
  for (const [k, [typeUrl, b64]] of Object.entries(raw)) out[k] = { typeUrl, value: Buffer.from(b64, 'base64') };
  return out;
}

function rowToContainer(r: ContainerRow): ContainerRecord {
  return {
    namespace: r.namespace,
    id: r.id,
    labels: parseLabels(r.labels),
    image: r.image,
    runtime: {
      name: r.runtime_name,
      options: r.runtime_options_url === null ? null : { typeUrl: r.runtime_options_url, value: r.runtime_options ?? Buffer.alloc(0) },
    },
    spec: { typeUrl: r.spec_url, value: r.spec },
    snapshotter: r.snapshotter,
    snapshotKey: r.snapshot_key,
    extensions: extensionsFromText(r.extensions),
    createdAt: timestampFromText(r.created_at),
    updatedAt: timestampFromText(r.updated_at),
  };
}

function containerParams(c: ContainerRecord): Record<string, unknown> {
  return {
    namespace: c.namespace,
    id: c.id,
    labels: JSON.stringify(c.labels),
    image: c.image,
    runtime_name: c.runtime.name,
    runtime_options_url: c.runtime.options === null ? null : c.runtime.options.typeUrl,
    runtime_options: c.runtime.options === null ? null : Buffer.from(c.runtime.options.value),
    spec_url: c.spec.typeUrl,
    spec: Buffer.from(c.spec.value),
    snapshotter: c.snapshotter,
    snapshot_key: c.snapshotKey,
    extensions: extensionsToText(c.extensions),
    created_at: timestampText(c.createdAt),
    updated_at: timestampText(c.updatedAt),
  };
}

/** Open (creating if needed) the store at <root>/meta.db. */
export function openStore(root: string): Store {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const db = new Database(path.join(root, 'meta.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  migrate(db);

  let uuid = (db.prepare('SELECT value FROM meta WHERE key = ?').get('uuid') as { value: string } | undefined)?.value;
  if (uuid === undefined) {
    uuid = crypto.randomUUID();
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('uuid', uuid);
  }

  const q = {
    nsList: db.prepare('SELECT name, labels FROM namespaces ORDER BY name'),
    nsGet: db.prepare('SELECT name, labels FROM namespaces WHERE name = ?'),
    nsInsert: db.prepare('INSERT OR IGNORE INTO namespaces (name, labels, created_at) VALUES (?, ?, ?)'),
    nsUpdate: db.prepare('UPDATE namespaces SET labels = ? WHERE name = ?'),
    nsDelete: db.prepare('DELETE FROM namespaces WHERE name = ?'),
    cCount: db.prepare('SELECT COUNT(*) AS n FROM containers WHERE namespace = ?'),
    cGet: db.prepare('SELECT * FROM containers WHERE namespace = ? AND id = ?'),
    cList: db.prepare('SELECT * FROM containers WHERE namespace = ? ORDER BY created_at, id'),
    cAll: db.prepare('SELECT * FROM containers'),
    cInsert: db.prepare(
      `INSERT OR IGNORE INTO containers (namespace, id, labels, image, runtime_name, runtime_options_url, runtime_options,
         spec_url, spec, snapshotter, snapshot_key, extensions, created_at, updated_at)
       VALUES (@namespace, @id, @labels, @image, @runtime_name, @runtime_options_url, @runtime_options,
         @spec_url, @spec, @snapshotter, @snapshot_key, @extensions, @created_at, @updated_at)`,
    ),
    cUpdate: db.prepare(
      `UPDATE containers SET labels = @labels, image = @image, runtime_name = @runtime_name,
         runtime_options_url = @runtime_options_url, runtime_options = @runtime_options, spec_url = @spec_url, spec = @spec,
         snapshotter = @snapshotter, snapshot_key = @snapshot_key, extensions = @extensions, updated_at = @updated_at
       WHERE namespace = @namespace AND id = @id`,
    ),
    cDelete: db.prepare('DELETE FROM containers WHERE namespace = ? AND id = ?'),
    lGet: db.prepare('SELECT * FROM leases WHERE namespace = ? AND id = ?'),
    lList: db.prepare('SELECT * FROM leases WHERE namespace = ? ORDER BY created_at'),
    lInsert: db.prepare('INSERT OR IGNORE INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)'),
    lDelete: db.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?'),
    rGet: db.prepare('SELECT * FROM restarts WHERE namespace = ? AND id = ?'),
    rPut: db.prepare(
      `INSERT INTO restarts (namespace, id, restart_count, manually_stopped, last_exit, backoff_step, started_at, last_exit_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (namespace, id) DO UPDATE SET restart_count = excluded.restart_count,
         manually_stopped = excluded.manually_stopped, last_exit = excluded.last_exit,
         backoff_step = excluded.backoff_step, started_at = excluded.started_at, last_exit_at = excluded.last_exit_at`,
    ),
    rDelete: db.prepare('DELETE FROM restarts WHERE namespace = ? AND id = ?'),
    rInFlight: db.prepare(
      `INSERT INTO restarts (namespace, id, restart_count, manually_stopped, in_flight_stdio) VALUES (?, ?, 0, 0, ?)
       ON CONFLICT (namespace, id) DO UPDATE SET in_flight_stdio = excluded.in_flight_stdio`,
    ),
    rListInFlight: db.prepare('SELECT namespace, id, in_flight_stdio AS stdio FROM restarts WHERE in_flight_stdio IS NOT NULL ORDER BY namespace, id'),
  };

  // Names known to exist: implicit creation costs no write on the hot path.
  const knownNamespaces = new Set<string>((q.nsList.all() as Array<{ name: string }>).map((r) => r.name));
  const nowText = (): string => timestampText({ seconds: Math.floor(Date.now() / 1000), nanos: (Date.now() % 1000) * 1e6 });
  /** Run a lease write with synchronous=NORMAL (see the header). */
  const relaxed = <T>(fn: () => T): T => {
    db.pragma('synchronous = NORMAL');
    try {
      return fn();
    } finally {
      db.pragma('synchronous = FULL');
    }
  };
  const leaseRow = (r: { namespace: string; id: string; labels: string; created_at: string }): LeaseRecord => ({
    namespace: r.namespace,
    id: r.id,
    labels: parseLabels(r.labels),
    createdAt: timestampFromText(r.created_at),
  });

  return {
    uuid,
    listNamespaces: () =>
      (q.nsList.all() as Array<{ name: string; labels: string }>).map((r) => ({ name: r.name, labels: parseLabels(r.labels) })),
    getNamespace(name) {
      const r = q.nsGet.get(name) as { name: string; labels: string } | undefined;
      return r === undefined ? undefined : { name: r.name, labels: parseLabels(r.labels) };
    },
    createNamespace(ns) {
      const changed = q.nsInsert.run(ns.name, JSON.stringify(ns.labels), nowText()).changes > 0;
      knownNamespaces.add(ns.name);
      return changed;
    },
    ensureNamespace(name) {
      if (knownNamespaces.has(name)) return;
      q.nsInsert.run(name, '{}', nowText());
      knownNamespaces.add(name);
    },
    updateNamespace(ns) {
      q.nsUpdate.run(JSON.stringify(ns.labels), ns.name);
    },
    deleteNamespace(name) {
      knownNamespaces.delete(name);
      return q.nsDelete.run(name).changes > 0;
    },
    countContainers: (namespace) => (q.cCount.get(namespace) as { n: number }).n,

    getContainer(namespace, id) {
      const r = q.cGet.get(namespace, id) as ContainerRow | undefined;
      return r === undefined ? undefined : rowToContainer(r);
    },
    listContainers: (namespace) => (q.cList.all(namespace) as ContainerRow[]).map(rowToContainer),
    allContainers: () => (q.cAll.all() as ContainerRow[]).map(rowToContainer),
    createContainer: (c) => q.cInsert.run(containerParams(c)).changes > 0,
    updateContainer(c) {
      q.cUpdate.run(containerParams(c));
    },
    deleteContainer: (namespace, id) => q.cDelete.run(namespace, id).changes > 0,

    getLease(namespace, id) {
      const r = q.lGet.get(namespace, id) as { namespace: string; id: string; labels: string; created_at: string } | undefined;
      return r === undefined ? undefined : leaseRow(r);
    },
    listLeases: (namespace) =>
      (q.lList.all(namespace) as Array<{ namespace: string; id: string; labels: string; created_at: string }>).map(leaseRow),
    createLease: (l) =>
      relaxed(() => q.lInsert.run(l.namespace, l.id, JSON.stringify(l.labels), timestampText(l.createdAt)).changes > 0),
    deleteLease: (namespace, id) => relaxed(() => q.lDelete.run(namespace, id).changes > 0),

    getRestart(namespace, id) {
      const r = q.rGet.get(namespace, id) as
        | {
            namespace: string;
            id: string;
            restart_count: number;
            manually_stopped: number;
            last_exit: number | null;
            backoff_step: number;
            started_at: number | null;
            last_exit_at: string | null;
          }
        | undefined;
      if (r === undefined) return undefined;
      return {
        namespace: r.namespace,
        id: r.id,
        restartCount: r.restart_count,
        manuallyStopped: r.manually_stopped !== 0,
        lastExit: r.last_exit,
        backoffStep: r.backoff_step,
        startedAt: r.started_at,
        lastExitAt: r.last_exit_at,
      };
    },
    putRestart(r) {
      q.rPut.run(r.namespace, r.id, r.restartCount, r.manuallyStopped ? 1 : 0, r.lastExit, r.backoffStep, r.startedAt, r.lastExitAt);
    },
    deleteRestart(namespace, id) {
      q.rDelete.run(namespace, id);
    },
    setRestartInFlight(namespace, id, stdio) {
      q.rInFlight.run(namespace, id, stdio);
    },
    listRestartsInFlight: () => q.rListInFlight.all() as Array<{ namespace: string; id: string; stdio: string }>,
    volumes: volumeStore(db),
    close: () => db.close(),
  };
}
