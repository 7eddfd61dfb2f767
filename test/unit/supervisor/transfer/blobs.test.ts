/**
 * The registry client's BlobStore over tsrund's content store (supervisor/transfer/blobs.ts):
 * a verified commit publishes the blob; wrong bytes, too many bytes or too few fail naming the
 * digest and leave neither blob nor ingest; an abort removes the ingest; a blob the namespace
 * already holds commits as a success; reset and resume keep the digest right.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { createContentStore } from '../../../../supervisor/content/store';
import { openImageMeta } from '../../../../supervisor/store/images';
import { contentBlobStore } from '../../../../supervisor/transfer/blobs';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function setup(t: { teardown(fn: () => void): void }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-transfer-'));
  const meta = openImageMeta(root);
  t.teardown(() => {
    meta.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const cs = createContentStore(root, meta, () => undefined);
  const state = () => ({ blobs: fs.readdirSync(path.join(root, 'content', 'blobs', 'sha256')), ingests: fs.readdirSync(path.join(root, 'content', 'ingest')) });
  return { cs, bs: contentBlobStore(cs, 'ns1', ''), state };
}

t.test('a verified commit publishes the blob', async (t) => {
  const { cs, bs, state } = setup(t);
  const data = Buffer.from('hello layer');
  const w = await bs.writer('layer-a', { digest: sha(data), size: data.length });
  t.equal(w.offset, 0);
  await w.write(data.subarray(0, 5));
  await w.write(data.subarray(5));
  await w.commit();
  t.ok(await bs.has(sha(data)));
  t.equal(cs.readAll('ns1', sha(data)).toString(), 'hello layer');
  t.same(state().ingests, []);
  // again: the namespace has it, so the second commit is a success too
  const w2 = await bs.writer('layer-a2', { digest: sha(data), size: data.length });
  await w2.write(data);
  await w2.commit();
  t.same(state().ingests, []);
  const r = await bs.reader(sha(data));
  t.equal(r.size, data.length);
  const parts: Buffer[] = [];
  for await (const c of r.stream) parts.push(c as Buffer);
  t.equal(Buffer.concat(parts).toString(), 'hello layer');
});

t.test('wrong, missing or extra bytes fail naming the digest and leave nothing', async (t) => {
  const { bs, state } = setup(t);
  const want = Buffer.from('the real bytes');
  const d = sha(want);
  const w = await bs.writer('bad', { digest: d, size: want.length });
  await w.write(Buffer.from('the fake bytes'));
  await t.rejects(w.commit(), { message: new RegExp(`commit blob ${d}: failed verification`) });
  await w.abort(); // the registry client aborts after a failed commit: must be harmless
  t.same(state(), { blobs: [], ingests: [] });

  const short = await bs.writer('short', { digest: d, size: want.length });
  await short.write(want.subarray(0, 4));
  await t.rejects(short.commit(), { message: /failed verification/ });
  t.same(state(), { blobs: [], ingests: [] });

  const long = await bs.writer('long', { digest: d, size: want.length });
  await t.rejects(long.write(Buffer.concat([want, Buffer.from('!')])), { message: new RegExp(`more than the expected ${want.length} bytes of ${d}`) });
  await long.abort();
  t.same(state(), { blobs: [], ingests: [] });
  t.notOk(await bs.has(d));
});

t.test('abort removes the ingest; reset and resume keep the digest right', async (t) => {
  const { bs, state } = setup(t);
  const data = Buffer.from('0123456789');
  const w = await bs.writer('resume', { digest: sha(data), size: data.length });
  await w.write(data.subarray(0, 4));
  // a writer left open by a broken download: the ref is locked until it is aborted or committed
  await w.abort();
  t.same(state().ingests, []);
  const w2 = await bs.writer('resume', { digest: sha(data), size: data.length });
  await w2.write(Buffer.from('junk'));
  await w2.reset();
  t.equal(w2.offset, 0);
  await w2.write(data);
  await w2.commit();
  t.same(state().blobs, [sha(data).slice(7)]);
});
