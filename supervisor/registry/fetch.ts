/*
 * Downloading one blob into a BlobStore writer: Range resume after a broken connection,
 * bounded retries, a stall timer, size and digest checked by the writer's commit, progress
 * events, and an aborted ingest on any failure so no half-written blob stays behind.
 */
import { TsrunError } from '../../spec/errors';
import type { RegistryClient } from './client';
import { openWriterWaiting, type BlobStore } from './content';
import type { Descriptor } from './manifest';
import { isRetryableNetError, readWithStall, StallError } from './transport';

/** Docker's per-blob progress states. */
export type ProgressState =
  | 'Waiting'
  | 'Downloading'
  | 'Verifying Checksum'
  | 'Download complete'
  | 'Already exists'
  | 'Pull complete'
  | 'Preparing'
  | 'Pushing'
  | 'Pushed'
  | 'Layer already exists'
  | 'Mounted';

/** One progress report about one blob. */
export interface ProgressEvent {
  /** docker's short id: the first 12 hex digits of the digest */
  readonly id: string;
  readonly digest: string;
  readonly kind: BlobKind;
  readonly state: ProgressState;
  readonly current: number;
  readonly total: number;
  /** for Mounted: the repository the blob came from */
  readonly from?: string;
}

/** What a blob is in the image. */
export type BlobKind = 'index' | 'manifest' | 'config' | 'layer';

/** Receives progress events. */
export type ProgressFn = (e: ProgressEvent) => void;

/** The short id docker prints for a digest. */
export function shortId(digest: string): string {
  return (digest.split(':')[1] ?? digest).slice(0, 12);
}

/** Where a blob comes from. */
export interface BlobSource {
  readonly client: RegistryClient;
  readonly domain: string;
  readonly repo: string;
  /** the image, for errors: "127.0.0.1:5000/app:1" */
  readonly image: string;
  readonly retries: number;
  readonly retryDelayMs: number;
}

const PROGRESS_EVERY_MS = 100;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Download `desc` into `store` unless it is there; resolves true if it was downloaded. */
export async function fetchBlob(src: BlobSource, store: BlobStore, desc: Descriptor, kind: BlobKind, progress: ProgressFn, signal: AbortSignal): Promise<boolean> {
  const ev = (state: ProgressState, current: number): void => progress({ id: shortId(desc.digest), digest: desc.digest, kind, state, current, total: desc.size });
  if (await store.has(desc.digest)) {
    ev('Already exists', desc.size);
    return false;
  }
  const label = `pull ${src.image}: ${kind} ${desc.digest}`;
  const w = await openWriterWaiting(store, `${kind}-${desc.digest}`, desc, label, signal, () => ev('Waiting', 0));
  if (w === undefined) {
    ev('Already exists', desc.size);
    return false;
  }
  try {
    let lastEmit = 0;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new TsrunError('Unavailable', `${label}: cancelled`);
      const start = w.offset;
      if (start >= desc.size) break;
      const res = await src.client.request(src.domain, src.repo, 'pull', {
        method: 'GET',
        path: `/v2/${src.repo}/blobs/${desc.digest}`,
        headers: start > 0 ? { range: `bytes=${start}-` } : {},
        expect: [200, 206],
        what: `${label}: fetch`,
        followRedirects: true,
      });
      if (res.statusCode === 206) {
        const cr = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (cr === null || Number(cr[1]) !== start) {
          res.destroy();
          throw new TsrunError('Unavailable', `${label}: registry answered Range bytes=${start}- with Content-Range "${res.headers['content-range'] ?? ''}"`);
        }
      } else if (start > 0) {
        // the registry ignored Range: start over
        await w.reset();
      }
      const onAbort = (): void => {
        res.destroy(new TsrunError('Unavailable', `${label}: cancelled`));
      };
      signal.addEventListener('abort', onAbort);
      try {
        ev('Downloading', w.offset);
        for await (const chunk of readWithStall(res, `${label}: fetch`, src.client.transport.stallTimeoutMs)) {
          await w.write(chunk);
          const now = Date.now();
          if (now - lastEmit >= PROGRESS_EVERY_MS) {
            lastEmit = now;
            ev('Downloading', w.offset);
          }
        }
        if (w.offset >= desc.size) break;
        // a body that ended short without an error: resume like a broken connection
        if (attempt >= src.retries) throw new TsrunError('Unavailable', `${label}: body ended after ${w.offset} of ${desc.size} bytes`);
      } catch (err) {
        if (err instanceof StallError || signal.aborted || !isRetryableNetError(err) || attempt >= src.retries) {
          if (err instanceof TsrunError) throw err;
          throw new TsrunError('Unavailable', `${label}: ${(err as Error).message} after ${w.offset} of ${desc.size} bytes`, { cause: err });
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      await sleep(src.retryDelayMs * 2 ** attempt);
    }
    ev('Downloading', w.offset);
    ev('Verifying Checksum', w.offset);
    await w.commit();
    ev('Download complete', desc.size);
    return true;
  } catch (err) {
    await w.abort().catch(() => undefined);
    if (err instanceof TsrunError && err.message.startsWith(label)) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new TsrunError(err instanceof TsrunError ? err.code : 'Internal', `${label}: ${msg}`, { cause: err });
  }
}

/** Run `work` over `items` with at most `limit` at a time; the first failure aborts the rest. */
export async function runBounded<T>(items: readonly T[], limit: number, work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  let next = 0;
  let first: unknown;
  const worker = async (): Promise<void> => {
    while (!ac.signal.aborted && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, ac.signal);
      } catch (err) {
        if (first === undefined) first = err;
        ac.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (first !== undefined) throw first;
}

