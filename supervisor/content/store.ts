/*
 * The content store: immutable, content-addressed blobs under <root>/content, with per-namespace
 * metadata (size, labels) in the image tables.
 *
 *   <root>/content/blobs/sha256/<hex>          committed blobs (mode 0444), shared by namespaces
 *   <root>/content/ingest/<sha256(ns/ref)>/    one in-progress write: `ref` (JSON), `data`
 *
 * A write goes to its ingest's `data` (resumable: the ref names it, the offset is data's length),
 * and only at commit, once the size and digest check out and the data is fsynced, is it renamed
 * into blobs/ (then the directory is fsynced and the metadata row written). A crash or kill -9 at
 * any point leaves an ingest (resumable or abortable) or a complete blob whose row may be missing
 * (the sweep removes it); never a partial blob under its digest.
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { objectAdaptor, parseFilters } from '../events/filters';
import { now, timestampFromText, timestampText, type Timestamp } from '../proto/index';
import type { ContentRecord, ImageMeta } from '../store/images';

const DIGEST = /^sha256:([a-f0-9]{64})$/;
const READ_CHUNK = 1 << 20;

/** The status of one ingest (Content.Status / ListStatuses / the Write stream's answers). */
export interface IngestStatus {
  ref: string;
  offset: number;
  total: number;
  expected: string;
  startedAt: Timestamp;
  updatedAt: Timestamp;
}

/** An open writer on one ingest; only one per ref at a time. */
export interface ContentWriter {
  status(): IngestStatus;
  /** bytes in the ingest so far (status() without its stat of the data file, for per-chunk checks) */
  offset(): number;
  /** the digest of what was written so far */
  digest(): string;
  write(data: Uint8Array): void;
  truncate(): void;
  setTotal(total: number): void;
  setExpected(expected: string): void;
  /** verify, make durable, move into blobs/, record; returns the digest. AlreadyExists when the namespace has it. */
  commit(total: number, expected: string, labels: Record<string, string>, lease: string): string;
  /** release the ref lock (the ingest stays, resumable) */
  close(): void;
}

/** Content logic over blobs on disk and the metadata tables. */
export interface ContentStore {
  readonly root: string;
  blobPath(digest: string): string;
  info(ns: string, digest: string): ContentRecord;
  has(ns: string, digest: string): boolean;
  update(ns: string, digest: string, labels: Record<string, string>, paths: readonly string[]): ContentRecord;
  list(ns: string, filters: readonly string[]): ContentRecord[];
  delete(ns: string, digest: string): void;
  read(ns: string, digest: string, offset: number, size: number): AsyncGenerator<{ offset: number; data: Buffer }>;
  readAll(ns: string, digest: string): Buffer;
  status(ns: string, ref: string): IngestStatus;
  listStatuses(ns: string, filters: readonly string[]): IngestStatus[];
  abort(ns: string, ref: string): void;
  /** open (or resume) the ingest `ref`; with a lease, the lease holds the ingest until it commits or the lease goes */
  writer(ns: string, ref: string, total: number, expected: string, lease?: string): ContentWriter;
  /** blob files on disk (for the sweep) */
  blobDigests(): string[];
  /** remove a blob file no namespace has (the sweep only) */
  removeBlob(digest: string): void;
  /** every ingest with its namespace and whether a writer holds it now (the sweep) */
  ingests(): Array<{ namespace: string; ref: string; locked: boolean }>;
}

/** The error for a malformed digest, naming it. */
export function checkDigest(digest: string): string {
  const m = DIGEST.exec(digest);
  if (m === null) throw new TsrunError('InvalidArgument', `digest ${JSON.stringify(digest)}: not a sha256 digest: invalid argument`);
  return m[1]!;
}

/**
 * Remove an ingest directory once its blob is committed: its files by name and then the directory,
 * without the recursive walk's stat and listing; anything unexpected in it falls back to that walk.
 */
function removeIngest(dir: string): void {
  try {
    for (const f of ['data', 'ref']) {
      try {
        fs.unlinkSync(path.join(dir, f));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    fs.rmdirSync(dir);
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const notFound = (digest: string): TsrunError => new TsrunError('NotFound', `content digest ${digest}: not found`);
const ingestMissing = (ref: string): TsrunError => new TsrunError('NotFound', `ref ${ref}: not found`);
const labelPaths = (paths: readonly string[]): boolean => paths.every((p) => p === 'labels' || p.startsWith('labels.'));

/** Apply containerd's field-mask label update: `labels` replaces all, `labels.k` sets or removes one. */
export function updateLabels(old: Record<string, string>, next: Record<string, string>, paths: readonly string[], what: string): Record<string, string> {
  if (paths.length === 0) return { ...next };
  if (!labelPaths(paths)) {
    const bad = paths.find((p) => p !== 'labels' && !p.startsWith('labels.'))!;
    throw new TsrunError('InvalidArgument', `cannot update ${JSON.stringify(bad)} field on ${what}: invalid argument`);
  }
  let out = { ...old };
  for (const p of paths) {
    if (p === 'labels') {
      out = { ...next };
      continue;
    }
    const k = p.slice('labels.'.length);
    const v = next[k];
    if (v === undefined || v === '') delete out[k];
    else out[k] = v;
  }
  return out;
}

interface IngestMeta {
  namespace: string;
  ref: string;
  total: number;
  expected: string;
  startedAt: string;
}

/** Open the content store under `root` (<root>/content). */
export function createContentStore(root: string, meta: ImageMeta, onLease: (ns: string, lease: string, type: 'content' | 'ingests', id: string) => void): ContentStore {
  const base = path.join(root, 'content');
  const blobs = path.join(base, 'blobs', 'sha256');
  const ingests = path.join(base, 'ingest');
  fs.mkdirSync(blobs, { recursive: true, mode: 0o700 });
  fs.mkdirSync(ingests, { recursive: true, mode: 0o700 });
  const locked = new Set<string>();

  const blobPath = (digest: string): string => path.join(blobs, checkDigest(digest));
  const ingestDir = (ns: string, ref: string): string => path.join(ingests, createHash('sha256').update(`${ns}/${ref}`).digest('hex'));
  const readMeta = (dir: string): IngestMeta | undefined => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'ref'), 'utf8')) as IngestMeta;
    } catch {
      return undefined;
    }
  };
  const statusOf = (dir: string, m: IngestMeta): IngestStatus => {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(path.join(dir, 'data'));
    } catch {
      st = undefined;
    }
    const mtime = st?.mtimeMs ?? Date.now();
    return {
      ref: m.ref,
      offset: st?.size ?? 0,
      total: m.total,
      expected: m.expected,
      startedAt: timestampFromText(m.startedAt),
      updatedAt: { seconds: Math.floor(mtime / 1000), nanos: Math.floor((mtime % 1000) * 1e6) },
    };
  };
  const info = (ns: string, digest: string): ContentRecord => {
    checkDigest(digest);
    const r = meta.getContent(ns, digest);
    if (r === undefined) throw notFound(digest);
    return r;
  };

  const store: ContentStore = {
    root: base,
    blobPath,
    info,
    has: (ns, digest) => DIGEST.test(digest) && meta.getContent(ns, digest) !== undefined,
    update(ns, digest, labels, paths) {
      const old = info(ns, digest);
      const next: ContentRecord = { ...old, labels: updateLabels(old.labels, labels, paths, 'content info'), updatedAt: now() };
      meta.updateContent(ns, next);
      return next;
    },
    list(ns, filters) {
      const f = parseFilters(filters);
      return meta.listContent(ns).filter((c) => f(objectAdaptor({ digest: c.digest, size: String(c.size), labels: c.labels })));
    },
    delete(ns, digest) {
      checkDigest(digest);
      if (!meta.deleteContent(ns, digest)) throw notFound(digest);
      // the blob goes when no namespace has it any more (the sweep checks all of them)
      if (!meta.allContent().some((c) => c.digest === digest)) store.removeBlob(digest);
    },
    async *read(ns, digest, offset, size) {
      const rec = info(ns, digest);
      if (offset < 0 || offset > rec.size) throw new TsrunError('InvalidArgument', `read ${digest} at ${offset}: beyond its ${rec.size} bytes: invalid argument`);
      const end = size > 0 ? Math.min(rec.size, offset + size) : rec.size;
      const fh = await fs.promises.open(blobPath(digest), 'r');
      try {
        let pos = offset;
        while (pos < end) {
          const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - pos));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new TsrunError('Internal', `read ${digest}: blob shorter than its recorded ${rec.size} bytes`);
          yield { offset: pos, data: buf.subarray(0, bytesRead) };
          pos += bytesRead;
        }
      } finally {
        await fh.close();
      }
    },
    readAll(ns, digest) {
      info(ns, digest);
      return fs.readFileSync(blobPath(digest));
    },
    status(ns, ref) {
      const dir = ingestDir(ns, ref);
      const m = readMeta(dir);
      if (m === undefined) throw ingestMissing(ref);
      return statusOf(dir, m);
    },
    listStatuses(ns, filters) {
      const f = parseFilters(filters);
      const out: IngestStatus[] = [];
      for (const name of fs.readdirSync(ingests)) {
        const dir = path.join(ingests, name);
        const m = readMeta(dir);
        if (m === undefined || m.namespace !== ns) continue;
        const s = statusOf(dir, m);
        if (f(objectAdaptor({ ref: s.ref }))) out.push(s);
      }
      return out.sort((a, b) => (a.ref < b.ref ? -1 : 1));
    },
    abort(ns, ref) {
      const dir = ingestDir(ns, ref);
      if (readMeta(dir) === undefined) throw ingestMissing(ref);
      if (locked.has(dir)) throw new TsrunError('Unavailable', `ref ${ref} locked: unavailable`);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    writer(ns, ref, total, expected, lease = '') {
      if (ref === '') throw new TsrunError('InvalidArgument', 'ref must not be empty: invalid argument');
      if (expected !== '') checkDigest(expected);
      const dir = ingestDir(ns, ref);
      if (locked.has(dir)) throw new TsrunError('Unavailable', `ref ${ref} locked: unavailable`);
      locked.add(dir);
      try {
        const w = openWriter(dir, ns, ref, total, expected);
        if (lease !== '') onLease(ns, lease, 'ingests', ref);
        return w;
      } catch (e) {
        locked.delete(dir);
        throw e;
      }
    },
    blobDigests: () => fs.readdirSync(blobs).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`),
    removeBlob(digest) {
      fs.rmSync(blobPath(digest), { force: true });
    },
    ingests() {
      const out: Array<{ namespace: string; ref: string; locked: boolean }> = [];
      for (const name of fs.readdirSync(ingests)) {
        const dir = path.join(ingests, name);
        const m = readMeta(dir);
        if (m !== undefined) out.push({ namespace: m.namespace, ref: m.ref, locked: locked.has(dir) });
        // a directory without a readable ref file is a create cut short by a crash
        else if (!locked.has(dir)) fs.rmSync(dir, { recursive: true, force: true });
      }
      return out;
    },
  };

  function openWriter(dir: string, ns: string, ref: string, total: number, expected: string): ContentWriter {
    let m = readMeta(dir);
    const dataPath = path.join(dir, 'data');
    if (m === undefined) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { mode: 0o700 });
      m = { namespace: ns, ref, total, expected, startedAt: timestampText(now()) };
      fs.writeFileSync(path.join(dir, 'ref'), JSON.stringify(m));
      fs.writeFileSync(dataPath, '');
    }
    const meta0 = m;
    if (total > 0) meta0.total = total;
    if (expected !== '') meta0.expected = expected;
    const fd = fs.openSync(dataPath, 'r+');
    // Resuming: the digest so far is the hash of what the ingest already holds.
    let hash: Hash = createHash('sha256');
    let offset = 0;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, offset);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      offset += n;
    }
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      fs.closeSync(fd);
      locked.delete(dir);
    };
    return {
      status: () => ({ ...statusOf(dir, meta0), offset }),
      offset: () => offset,
      digest: () => `sha256:${hash.copy().digest('hex')}`,
      write(data) {
        let done = 0;
        while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, offset + done);
        hash.update(data);
        offset += data.length;
      },
      truncate() {
        fs.ftruncateSync(fd, 0);
        hash = createHash('sha256');
        offset = 0;
      },
      setTotal(t) {
        meta0.total = t;
      },
      setExpected(e) {
        checkDigest(e);
        meta0.expected = e;
      },
      commit(commitTotal, commitExpected, labels, lease) {
        const size = commitTotal > 0 ? commitTotal : meta0.total;
        if (size > 0 && offset !== size) {
          throw new TsrunError('FailedPrecondition', `unexpected commit size ${offset}, expected ${size}: failed precondition`);
        }
        const digest = `sha256:${hash.copy().digest('hex')}`;
        const want = commitExpected !== '' ? commitExpected : meta0.expected;
        if (want !== '' && want !== digest) {
          throw new TsrunError('FailedPrecondition', `unexpected commit digest ${digest}, expected ${want}: failed precondition`);
        }
        const target = blobPath(digest);
        if (fs.existsSync(target)) {
          close();
          removeIngest(dir);
        } else {
          fs.fchmodSync(fd, 0o444);
          fs.fsyncSync(fd);
          close();
          fs.renameSync(dataPath, target);
          fsyncDir(blobs);
          removeIngest(dir);
        }
        const t = now();
        // The row and its lease reference in one transaction: one fsync of the journal, not two,
        // and never a blob recorded without the lease that holds it.
        const fresh = meta.transaction(() => {
          const added = meta.putContent(ns, { digest, size: offset, labels, createdAt: t, updatedAt: t });
          if (lease !== '') onLease(ns, lease, 'content', digest);
          return added;
        });
        if (!fresh) throw new TsrunError('AlreadyExists', `content ${digest}: already exists`);
        return digest;
      },
      close,
    };
  }
  return store;
}
