/*
 * Small durable JSON files for networking state under `<root>/networks/`: the network list and
 * one attachment record per container. Written temp → fsync → rename, so a kill -9 leaves the
 * old or the new content, never a torn file. They change a few times per container, not per call.
 * What is written while containers start (attachment records, CNI cache entries, the per-container
 * hosts files) goes through the async variants: an fsync on tsrund's main thread stalls every
 * other request for as long as the disk takes, and fifty starts at once make that add up.
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

/** writeJson off the main thread (the fsync waits on the disk in libuv's pool). */
export async function writeJsonAsync(file: string, value: unknown): Promise<void> {
  await writeDurable(file, JSON.stringify(value, null, 1));
}

/** Write `text` to `file` atomically (temp → fsync → rename), off the main thread. */
export async function writeDurable(file: string, text: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
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
 */
export function createInPlaceWriter(): { write(file: string, text: string, opts?: { create?: boolean }): Promise<void> } {
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
  return {
    write: (file, text, opts = {}) =>
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
      }),
  };
}
