/*
 * Reading the JSON documents a caller hands us by path: <bundle>/config.json and the
 * process.json of `exec --process`. Only a regular file is read, and only up to
 * MAX_CONFIG_BYTES: /dev/zero would otherwise be read until memory runs out, and a FIFO with
 * no writer would block open(2) forever. A symlink to a regular file is fine (bundles made by
 * engines use them).
 */
import * as fs from 'node:fs';
import { TsrunError, wrapSystemError } from '../../spec/errors';

/**
 * The largest config.json or process.json read, in bytes (documented in
 * docs/spec-conformance.md). Far above real configs, including runc-tested ones with 50 MB of
 * annotations; small enough that a mistaken path cannot exhaust memory.
 */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a fifo';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notRegular(file: string, st: fs.Stats): TsrunError {
  const kind = kindOf(st);
  return new TsrunError('InvalidArgument', `read ${file}: ${kind === 'not a regular file' ? kind : `is ${kind}, not a regular file`}`);
}

function tooBig(file: string): TsrunError {
  return new TsrunError('InvalidArgument', `read ${file}: larger than the limit of ${MAX_CONFIG_BYTES / (1024 * 1024)} MiB`);
}

/** Read a JSON document given by path as UTF-8 text, refusing anything but a regular file within the size cap. */
export function readConfigFile(file: string): string {
  // stat first so a device or FIFO is never opened at all (opening some devices has effects) ...
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw wrapSystemError(`read ${file}`, err);
  }
  if (!st.isFile()) throw notRegular(file, st);
  if (st.size > MAX_CONFIG_BYTES) throw tooBig(file);
  // ... and fstat after open, non-blocking, in case the path was swapped in between.
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw wrapSystemError(`read ${file}`, err);
  }
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile()) throw notRegular(file, now);
    const chunks: Buffer[] = [];
    let total = 0;
    // The size can change while we read: read to EOF, but never past the cap.
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(Math.max(now.size - total, 0) + 1, MAX_CONFIG_BYTES + 1 - total));
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_CONFIG_BYTES) throw tooBig(file);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (err) {
    throw wrapSystemError(`read ${file}`, err);
  } finally {
    fs.closeSync(fd);
  }
}
