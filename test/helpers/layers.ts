/**
 * Layer tarballs for tests, built with tar-stream's pack (an encoder independent of the one under
 * test) or, where tar-stream would not write what a crafted layer needs, with raw header blocks.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import * as tarStream from 'tar-stream';

/** One entry for tar-stream's pack: its header plus the body of a regular file. */
export interface LayerEntry extends tarStream.Headers {
  body?: string | Buffer;
  /** PAX records (tar-stream writes them as UTF-8 text) */
  pax?: Record<string, string>;
}

/** An uncompressed tar made by tar-stream. */
export async function packLayer(entries: readonly LayerEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const out: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) out.push(chunk);
  })();
  for (const e of entries) {
    const { body, ...header } = e;
    await new Promise<void>((resolve, reject) => {
      pack.entry({ mtime: new Date(1_600_000_000_000), ...header }, body ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(out);
}

/** A raw ustar header block with `name` written verbatim (nothing cleans it). */
export function rawHeader(name: string, typeflag: string, opts: { size?: number; linkname?: string; mode?: number } = {}): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write((opts.mode ?? 0o644).toString(8).padStart(7, '0'), 100, 'latin1');
  b.write('0000000', 108, 'latin1');
  b.write('0000000', 116, 'latin1');
  b.write((opts.size ?? 0).toString(8).padStart(11, '0'), 124, 'latin1');
  b.write('13000000000', 136, 'latin1');
  b.write(typeflag, 156, 'latin1');
  b.write(opts.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** A raw regular-file entry (header + padded body). */
export function rawFile(name: string, body: string): Buffer {
  const data = Buffer.from(body);
  return Buffer.concat([rawHeader(name, '0', { size: data.length }), data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** Concatenate raw entries and the end-of-archive marker. */
export function rawTar(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)]);
}

export function gzip(b: Buffer): Buffer {
  return zlib.gzipSync(b);
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export function streamOf(b: Buffer): Readable {
  return Readable.from([b]);
}

/** A temp dir removed at teardown. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'tsrun-layer-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every path under dir (relative, sorted), with a type letter: f d l c b p. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = fs.lstatSync(path.join(dir, r));
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : 'f';
      out.push(`${kind} ${r}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
