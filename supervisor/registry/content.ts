/*
 * The content interface the registry client reads from (push) and writes into (pull), so any
 * content-addressed store can plug in (tsrund's containerd content store implements it too).
 *
 *   writer(ref, expected) ─ write(chunk)… ─ commit()   verifies size + digest, then the blob
 *                                          ╰ abort()    exists under its digest; or nothing does
 *
 * A writer may resume an earlier ingest of the same ref: `offset` says how many bytes it already
 * holds, and the client asks the registry for the rest with a Range request. `reset()` drops
 * them when the registry answers the whole blob instead.
 *
 * DirBlobStore is the simple implementation: <root>/blobs/<alg>/<hex> and <root>/ingest/<ref>/data.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { validateDigest } from './reference';

/** What a writer must end up holding. */
export interface Expected {
  readonly digest: string;
  readonly size: number;
  readonly mediaType?: string;
}

/** An open ingest of one blob. */
export interface BlobWriter {
  /** Bytes already held from an earlier, interrupted ingest of the same ref. */
  readonly offset: number;
  /** Append bytes. */
  write(chunk: Buffer): Promise<void>;
  /** Drop every byte held so far (offset becomes 0). */
  reset(): Promise<void>;
  /** Verify size and digest and publish the blob; on a mismatch nothing is published and the ingest is gone. */
  commit(): Promise<void>;
  /** Discard the ingest; safe to call after a failed commit. */
  abort(): Promise<void>;
}

/** A stored blob opened for reading. */
export interface BlobReader {
  readonly size: number;
  readonly stream: Readable;
}

/** A content-addressed blob store. */
export interface BlobStore {
  has(digest: string): Promise<boolean>;
  writer(ref: string, expected: Expected): Promise<BlobWriter>;
  reader(digest: string): Promise<BlobReader>;
}

/** Read a whole (small) blob: manifests and configs. */
export async function readBlob(store: BlobStore, digest: string, limit = 16 << 20): Promise<Buffer> {
  const r = await store.reader(digest);
  if (r.size > limit) {
    r.stream.destroy();
    throw new TsrunError('InvalidArgument', `read blob ${digest}: ${r.size} bytes is more than the ${limit} allowed for a manifest or config`);
  }
  const chunks: Buffer[] = [];
  for await (const c of r.stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Another pull of the same blob holds its ingest ref: wait for it (polling, with a growing
 * delay) until the blob is there or the ref is free, as containerd's fetch does. The other
 * pull's stall timer bounds how long it can hold the ref; this bounds the wait in any case.
 */
const LOCK_WAIT_MS = 10 * 60_000;
const LOCK_POLL_MAX_MS = 1000;

/** Whether `e` says an ingest ref is held by another writer (both content stores say "locked"). */
function isRefLocked(e: unknown): boolean {
  return e instanceof TsrunError && e.code === 'Unavailable' && /\blocked\b/.test(e.message);
}

/**
 * Open the ingest `ref` of `expected`, waiting while another writer holds it (`onWait` once when
 * the wait begins); undefined when that other writer committed the blob meanwhile. `label` names
 * the blob in errors.
 */
export async function openWriterWaiting(
  store: BlobStore,
  ref: string,
  expected: Expected,
  label: string,
  signal?: AbortSignal,
  onWait?: () => void,
): Promise<BlobWriter | undefined> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, LOCK_POLL_MAX_MS)) {
    try {
      return await store.writer(ref, expected);
    } catch (e) {
      if (!isRefLocked(e)) throw e;
      if (Date.now() > deadline) throw new TsrunError('Unavailable', `${label}: another pull of this blob held it for ${LOCK_WAIT_MS / 1000} s`, { cause: e });
    }
    if (delay === 10) onWait?.();
    await new Promise((r) => setTimeout(r, delay));
    if (signal?.aborted === true) throw new TsrunError('Unavailable', `${label}: cancelled`);
    if (await store.has(expected.digest)) return undefined;
  }
}

/** Write a whole in-memory blob (a manifest) unless the store has it (or gets it from a writer of the same ref). */
export async function writeBlob(store: BlobStore, ref: string, data: Buffer, expected: Expected): Promise<void> {
  if (await store.has(expected.digest)) return;
  const w = await openWriterWaiting(store, ref, expected, `write blob ${expected.digest}`);
  if (w === undefined) return;
  try {
    if (w.offset > 0) await w.reset();
    await w.write(data);
    await w.commit();
  } catch (err) {
    await w.abort().catch(() => undefined);
    throw err;
  }
}

/** The digest of `data` with `alg` ("sha256"). */
export function digestOf(data: Buffer, alg = 'sha256'): string {
  return `${alg}:${crypto.createHash(alg).update(data).digest('hex')}`;
}

/** A BlobStore on a plain directory. */
export class DirBlobStore implements BlobStore {
  private readonly busy = new Set<string>();

  constructor(readonly root: string) {}

  /** Where the blob with `digest` lives. */
  blobPath(digest: string): string {
    validateDigest(digest, 'blob path');
    const [alg, hex] = digest.split(':') as [string, string];
    return path.join(this.root, 'blobs', alg, hex);
  }

  private ingestDir(ref: string): string {
    return path.join(this.root, 'ingest', crypto.createHash('sha256').update(ref).digest('hex'));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await fs.promises.access(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  async reader(digest: string): Promise<BlobReader> {
    const file = this.blobPath(digest);
    let size: number;
    try {
      size = (await fs.promises.stat(file)).size;
    } catch (err) {
      const e = wrapSystemError(`open blob ${digest}`, err);
      throw e.code === 'NotFound' ? new TsrunError('NotFound', `blob ${digest}: not found`, { cause: err }) : e;
    }
    return { size, stream: fs.createReadStream(file) };
  }

  async writer(ref: string, expected: Expected): Promise<BlobWriter> {
    validateDigest(expected.digest, `ingest ${ref}`);
    if (this.busy.has(ref)) throw new TsrunError('Unavailable', `ingest ${ref}: ref locked by another writer`);
    // taken before the first await, so a second writer of the ref can't slip in while this one opens
    this.busy.add(ref);
    try {
      return await this.openWriter(ref, expected);
    } catch (e) {
      this.busy.delete(ref);
      throw e;
    }
  }

  private async openWriter(ref: string, expected: Expected): Promise<BlobWriter> {
    const dir = this.ingestDir(ref);
    const data = path.join(dir, 'data');
    const alg = expected.digest.split(':')[0]!;
    let hash = crypto.createHash(alg);
    let offset = 0;
    try {
      await fs.promises.mkdir(dir, { recursive: true });
      // resume: hash what an earlier ingest left, unless it can't be a prefix of the blob
      const st = await fs.promises.stat(data).catch(() => undefined);
      if (st !== undefined && st.size <= expected.size) {
        for await (const c of fs.createReadStream(data)) hash.update(c as Buffer);
        offset = st.size;
      } else if (st !== undefined) {
        await fs.promises.truncate(data, 0);
      }
    } catch (err) {
      throw wrapSystemError(`open ingest ${data}`, err);
    }
    const fh = await fs.promises.open(data, 'a').catch((err: unknown) => {
      throw wrapSystemError(`open ingest ${data}`, err);
    });
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await fh.close();
    };
    // The ref is released only once its directory is gone: a writer waiting for it must not
    // open the directory this one is about to remove.
    const remove = async (): Promise<void> => {
      try {
        await close();
        await fs.promises.rm(dir, { recursive: true, force: true });
      } finally {
        this.busy.delete(ref);
      }
    };
    const w: BlobWriter = {
      get offset() {
        return offset;
      },
      write: async (chunk) => {
        if (offset + chunk.length > expected.size) {
          throw new TsrunError('InvalidArgument', `ingest ${ref}: more than the expected ${expected.size} bytes of ${expected.digest}`);
        }
        await fh.write(chunk);
        hash.update(chunk);
        offset += chunk.length;
      },
      reset: async () => {
        await fh.truncate(0);
        hash = crypto.createHash(alg);
        offset = 0;
      },
      commit: async () => {
        const got = `${alg}:${hash.digest('hex')}`;
        if (offset !== expected.size || got !== expected.digest) {
          await remove();
          const why = offset !== expected.size ? `got ${offset} bytes, want ${expected.size}` : `content has digest ${got}`;
          throw new TsrunError('InvalidArgument', `commit blob ${expected.digest}: failed verification: ${why}`);
        }
        const target = this.blobPath(expected.digest);
        try {
          await fh.sync();
          await close();
          await fs.promises.mkdir(path.dirname(target), { recursive: true });
          await fs.promises.rename(data, target);
          await fs.promises.rm(dir, { recursive: true, force: true });
          this.busy.delete(ref);
        } catch (err) {
          await remove().catch(() => undefined);
          throw wrapSystemError(`commit blob ${expected.digest} to ${target}`, err);
        }
      },
      abort: remove,
    };
    return w;
  }
}
