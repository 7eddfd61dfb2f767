/*
 * The volumes table of the metadata store (meta.db), kept apart from db.ts so the volume driver's
 * storage reads in one place:
 *
 *   volumes(name PK, labels JSON, options JSON, anonymous 0|1, created_at)
 *
 * Volumes are not namespaced: like docker's, a name is one directory under tsrund's root.
 */
import type Database from 'better-sqlite3';
import { timestampFromText, timestampText, type Timestamp } from '../proto/index';

/** A volume as stored. */
export interface VolumeRecord {
  name: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** made for a container's VOLUME or `-v /path`; `rm -v` and `--rm` remove it with the container */
  anonymous: boolean;
  createdAt: Timestamp;
}

/** The volume rows. */
export interface VolumeStore {
  get(name: string): VolumeRecord | undefined;
  list(): VolumeRecord[];
  /** false when the name exists */
  insert(v: VolumeRecord): boolean;
  delete(name: string): boolean;
}

interface Row {
  name: string;
  labels: string;
  options: string;
  anonymous: number;
  created_at: string;
}

function fromRow(r: Row): VolumeRecord {
  return {
    name: r.name,
    labels: JSON.parse(r.labels) as Record<string, string>,
    options: JSON.parse(r.options) as Record<string, string>,
    anonymous: r.anonymous !== 0,
    createdAt: timestampFromText(r.created_at),
  };
}

/** Create the table if needed and prepare its statements. */
export function volumeStore(db: Database.Database): VolumeStore {
  db.exec(`CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY, labels TEXT NOT NULL, options TEXT NOT NULL, anonymous INTEGER NOT NULL, created_at TEXT NOT NULL
  )`);
  const q = {
    get: db.prepare('SELECT * FROM volumes WHERE name = ?'),
    list: db.prepare('SELECT * FROM volumes ORDER BY name'),
    insert: db.prepare('INSERT OR IGNORE INTO volumes (name, labels, options, anonymous, created_at) VALUES (?, ?, ?, ?, ?)'),
    delete: db.prepare('DELETE FROM volumes WHERE name = ?'),
  };
  return {
    get(name) {
      const r = q.get.get(name) as Row | undefined;
      return r === undefined ? undefined : fromRow(r);
    },
    list: () => (q.list.all() as Row[]).map(fromRow),
    insert: (v) => q.insert.run(v.name, JSON.stringify(v.labels), JSON.stringify(v.options), v.anonymous ? 1 : 0, timestampText(v.createdAt)).changes > 0,
    delete: (name) => q.delete.run(name).changes > 0,
  };
}
