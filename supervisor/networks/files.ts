/*
 * Small JSON files for networking state under `<root>/networks/`: the network list and one
 * attachment record per container (and cni.ts's result cache). All are written temp → rename, so
 * a kill -9 of tsrund leaves the old or the new content, never a torn file: the page cache
 * outlives the process.
 *
 * The network list is also fsynced (writeJson): it changes at network create/remove only, and
 * losing it would orphan bridges and allocations. What is written while containers start
 * (attachment records, CNI cache entries) is not (writeAtomic): an fsync waits for the disk,
 * several times per container, and only a crash of the whole machine can then leave such a file
 * empty or torn, after which the namespaces, veths and rules it described are gone with the
 * kernel anyway. Their readers take a torn file as what it is (readRecord says 'torn'), and the
 * reconcile at start releases what it may have named (manager.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';

/** Write `value` as JSON to `file` atomically. */
export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 1));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/**
 * Write `text` to `file` atomically against a kill of tsrund (temp → rename), without fsync.
 * Files written so must be read with readRecord (see the top of this file). Synchronous: without
 * the fsync it is a few system calls on the page cache (tens of µs), where each step of an
 * asynchronous write waited for a turn of libuv's pool and then of the event loop, several ms per
 * file on a loaded machine, in the path of every attach.
 */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, text, { mode: 0o600 });
  }
  fs.renameSync(tmp, file);
}

/** What readRecord found. */
export type RecordRead<T> = { readonly kind: 'ok'; readonly value: T } | { readonly kind: 'missing' } | { readonly kind: 'torn'; readonly why: string };

/**
 * Read a JSON file written by writeAtomic: its value, 'missing' when there is none, 'torn' when
 * it is not one whole JSON value (empty or cut short by a crash of the machine before the data
 * reached the disk). Other read errors are thrown.
 */
export function readRecord<T>(file: string): RecordRead<T> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw new TsrunError('Internal', `read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return { kind: 'torn', why: 'not a JSON object' };
    return { kind: 'ok', value: value as T };
  } catch (e) {
    return { kind: 'torn', why: (e as Error).message };
  }
}

/** Read JSON from `file`, or `fallback` when it does not exist. */
export function readJson<T>(file: string, fallback: T): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw new TsrunError('Internal', `read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new TsrunError('Internal', `parse ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Replace a file's content in place (truncate + write, no rename): /etc/hosts is bind-mounted
 * into running containers, and a bind mount pins the inode, so a renamed-in file would not be seen.
 */
export function rewriteInPlace(file: string, text: string): void {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
  try {
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, text, 0);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * In-place rewrites (as rewriteInPlace) done off the main thread, one at a time per file: a file
 * asked for again while its write runs is written once more afterwards with the newest text only,
 * so that the writes of a burst of peers joining a network collapse instead of queueing, and two
 * writes of one file never interleave their truncate and write. A write with `create: false`
 * (a peer's hosts file) only rewrites a file that exists: one that is being removed with its
 * container's directory is not made again inside it (ENOENT is the caller's to ignore).
 * writeNow, for a container's own files, writes on the calling thread at once (a few system
 * calls) when no write of the file is under way, and queues like write otherwise.
 */
export function createInPlaceWriter(): {
  write(file: string, text: string, opts?: { create?: boolean }): Promise<void>;
  /** a container's own file: written before this returns unless a write of it is under way (then queued as write's) */
  writeNow(file: string, text: string): Promise<void>;
} {
  type Waiter = { resolve(): void; reject(e: unknown): void };
  /** per file being written: the text still to write (the newest asked for), whether it may be created, and who waits */
  const busy = new Map<string, { next: string | undefined; create: boolean; waiters: Waiter[] }>();
  const once = async (file: string, text: string, create: boolean): Promise<void> => {
    const fh = await fs.promises.open(file, fs.constants.O_WRONLY | (create ? fs.constants.O_CREAT : 0) | fs.constants.O_NOFOLLOW, 0o644);
    try {
      await fh.truncate(0);
      await fh.write(text, 0);
    } finally {
      await fh.close();
    }
  };
  const pump = async (file: string): Promise<void> => {
    for (;;) {
      const state = busy.get(file)!;
      const text = state.next;
      if (text === undefined) {
        busy.delete(file);
        return;
      }
      const waiters = state.waiters;
      const create = state.create;
      state.next = undefined;
      state.create = false;
      state.waiters = [];
      try {
        await once(file, text, create);
        for (const w of waiters) w.resolve();
      } catch (e) {
        for (const w of waiters) w.reject(e);
      }
    }
  };
  const write = (file: string, text: string, opts: { create?: boolean } = {}): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const create = opts.create ?? true;
      const state = busy.get(file);
      if (state !== undefined) {
        state.next = text;
        state.create ||= create;
        state.waiters.push({ resolve, reject });
        return;
      }
      busy.set(file, { next: text, create, waiters: [{ resolve, reject }] });
      void pump(file);
    });
  return {
    write,
    writeNow: (file, text) => {
      if (busy.has(file)) return write(file, text);
      try {
        rewriteInPlace(file, text);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}
