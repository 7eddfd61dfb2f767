/**
 * Memory stays flat while a large layer is applied: a ~200 MB layer is generated on the fly (never
 * held whole), gzipped in the pipe, applied, and the process RSS sampled meanwhile. Unbounded
 * buffering (ignoring backpressure) would hold most of the layer: RSS would grow by ~200 MB, and
 * would keep growing as the layer goes by. Flat means the peak after the first quarter of the layer
 * is about the peak after all of it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import t from 'tap';
import { applyLayer } from '../../../../supervisor/diff/apply';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../../../../supervisor/diff/tar-header';
import { tempDir } from '../../../helpers/layers';

const FILES = 4;
const FILE_SIZE = 50 * 1024 * 1024;
const CHUNK = 256 * 1024;

t.test('a 200 MB layer applies with flat memory', async (t) => {
  const root = tempDir(t, 'tsrun-bigl-');
  const hash = createHash('sha256');
  let produced = 0;
  const pattern = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) pattern[i] = (i * 7919) & 0xff;
  async function* layer(): AsyncGenerator<Buffer> {
    for (let f = 0; f < FILES; f++) {
      const h = encodeHeader({ name: `big/${f}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: FILE_SIZE, mtime: 1_600_000_000, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() });
      const head = f === 0 ? Buffer.concat([encodeHeader({ name: 'big', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() }), h]) : h;
      hash.update(head);
      yield head;
      for (let off = 0; off < FILE_SIZE; off += CHUNK) {
        produced += CHUNK;
        const c = Buffer.from(pattern);
        c.writeUInt32LE(f * 1000 + off / CHUNK, 0); // each chunk differs, so gzip cannot collapse it
        hash.update(c);
        yield c;
      }
      hash.update(padding(FILE_SIZE));
      yield padding(FILE_SIZE);
    }
    hash.update(END_OF_ARCHIVE);
    yield END_OF_ARCHIVE;
  }
  global.gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  let earlyPeak = base;
  const timer = setInterval(() => {
    const rss = process.memoryUsage.rss();
    peak = Math.max(peak, rss);
    if (produced < (FILES * FILE_SIZE) / 4) earlyPeak = peak;
  }, 10);
  try {
    const input = Readable.from(layer()).pipe(zlib.createGzip({ level: 1 }));
    const r = await applyLayer(input, root, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', whiteouts: 'apply' });
    t.equal(r.diffId, `sha256:${hash.digest('hex')}`);
    t.ok(r.size > FILES * FILE_SIZE);
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  for (let f = 0; f < FILES; f++) t.equal(fs.statSync(path.join(root, 'big', String(f))).size, FILE_SIZE);
  const MiB = 1024 * 1024;
  const grew = (peak - base) / MiB;
  const late = (peak - earlyPeak) / MiB;
  t.comment(`RSS grew by ${grew.toFixed(1)} MiB in all, ${late.toFixed(1)} MiB after the first quarter, applying ${(FILES * FILE_SIZE) / MiB} MiB`);
  t.ok(grew < 100, `RSS growth ${grew.toFixed(1)} MiB stays well below the layer size`);
  t.ok(late < 32, `RSS after the first quarter grew ${late.toFixed(1)} MiB: flat`);
});
