/*
 * Small durable JSON files for networking state under `<root>/networks/`: the network list and
 * one attachment record per container. Written temp → fsync → rename, so a kill -9 leaves the
 * old or the new content, never a torn file. They change a few times per container, not per call.
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
