/**
 * The content store: ingest → commit with size and digest checks, resume by ref and offset, a
 * writer that dies mid-ingest leaves no blob, labels, namespaces, delete; and the image table
 * migration.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { createContentStore, updateLabels } from '../../../supervisor/content/store';
import { openImageMeta, migrate } from '../../../supervisor/store/images';
import { TsrunError } from '../../../spec/errors';

function tempRoot(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-content-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function open(root: string): { cs: ReturnType<typeof createContentStore>; close(): void; leased: string[] } {
  const meta = openImageMeta(root);
  const leased: string[] = [];
  const cs = createContentStore(root, meta, (ns, lease, type, d) => leased.push(`${ns}/${lease}/${type}/${d}`));
  return { cs, close: () => meta.close(), leased };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof TsrunError ? `${e.code}: ${e.message}` : String(e);
  }
  return 'no error';
}

t.test('write, commit, info, read back; a second commit of the same blob is AlreadyExists', async (t) => {
  const root = tempRoot(t);
  const { cs, close, leased } = open(root);
  t.teardown(close);
  const data = Buffer.from('hello layer\n'.repeat(1000));
  const d = sha(data);
  const w = cs.writer('default', 'ref-1', data.length, d, 'lease1');
  w.write(data.subarray(0, 100));
  t.equal(cs.status('default', 'ref-1').offset, 100);
  w.write(data.subarray(100));
  t.equal(w.commit(data.length, d, { a: 'b' }, 'lease1'), d);
  t.same(leased, ['default/lease1/ingests/ref-1', `default/lease1/content/${d}`], 'the lease holds the ingest, then the blob');
  const info = cs.info('default', d);
  t.equal(info.size, data.length);
  t.same(info.labels, { a: 'b' });
  t.equal(fs.readFileSync(cs.blobPath(d)).compare(data), 0, 'blob on disk is the data');
  t.equal(fs.statSync(cs.blobPath(d)).mode & 0o777, 0o444, 'blob is read-only');
  t.same(fs.readdirSync(path.join(root, 'content', 'ingest')), [], 'ingest gone after commit');
  const chunks: Buffer[] = [];
  for await (const c of cs.read('default', d, 5, 10)) chunks.push(c.data);
  t.equal(Buffer.concat(chunks).toString(), data.subarray(5, 15).toString());
  t.match(code(() => cs.info('other', d)), /^NotFound: content digest sha256:[a-f0-9]+: not found$/, 'namespaces do not see each other');

  const w2 = cs.writer('default', 'ref-2', 0, '');
  w2.write(data);
  t.match(code(() => w2.commit(0, '', {}, '')), /^AlreadyExists: content sha256:.*: already exists/);
  // the other namespace gets its row for the same blob file
  const w3 = cs.writer('other', 'ref-3', 0, '');
  w3.write(data);
  t.equal(w3.commit(0, d, {}, ''), d);
  cs.delete('default', d);
  t.ok(fs.existsSync(cs.blobPath(d)), 'blob kept while a namespace has it');
  cs.delete('other', d);
  t.notOk(fs.existsSync(cs.blobPath(d)), 'blob removed with its last row');
});

t.test('commit refuses a wrong size or digest and leaves no blob', async (t) => {
  const root = tempRoot(t);
  const { cs, close } = open(root);
  t.teardown(close);
  const data = Buffer.from('some bytes');
  const wrong = sha(Buffer.from('other bytes'));
  const w = cs.writer('default', 'bad', 0, '');
  w.write(data);
  t.match(code(() => w.commit(data.length + 1, '', {}, '')), /^FailedPrecondition: unexpected commit size 10, expected 11/);
  t.match(code(() => w.commit(data.length, wrong, {}, '')), new RegExp(`^FailedPrecondition: unexpected commit digest ${sha(data)}, expected ${wrong}`));
  w.close();
  t.notOk(fs.existsSync(cs.blobPath(sha(data))), 'no blob under the real digest');
  t.notOk(fs.existsSync(cs.blobPath(wrong)), 'no blob under the expected digest');
  t.equal(cs.status('default', 'bad').offset, data.length, 'the ingest stays, resumable or abortable');
  cs.abort('default', 'bad');
  t.match(code(() => cs.status('default', 'bad')), /^NotFound: ref bad: not found/);
  t.match(code(() => cs.writer('default', 'x', 0, 'sha256:nothex')), /^InvalidArgument: digest/);
});

t.test('a writer that dies mid-ingest leaves no blob; the next one resumes from the offset', async (t) => {
  const root = tempRoot(t);
  const data = Buffer.alloc(3 << 20, 7);
  for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
  const d = sha(data);
  // first "daemon": writes a part, then vanishes without closing anything
  let s = open(root);
  const w = s.cs.writer('default', 'resume-me', data.length, d);
  w.write(data.subarray(0, 1 << 20));
  t.match(code(() => s.cs.writer('default', 'resume-me', 0, '')), /^Unavailable: ref resume-me locked/, 'one writer per ref');
  s.close();
  // second "daemon" on the same root
  s = open(root);
  t.teardown(() => s.close());
  t.notOk(fs.existsSync(s.cs.blobPath(d)), 'no blob after the crash');
  const st = s.cs.status('default', 'resume-me');
  t.equal(st.offset, 1 << 20);
  t.equal(st.total, data.length);
  t.equal(st.expected, d);
  t.same(s.cs.listStatuses('default', ['ref~=resume']).map((x) => x.ref), ['resume-me']);
  const w2 = s.cs.writer('default', 'resume-me', data.length, d);
  t.equal(w2.status().offset, 1 << 20, 'offset from the ingest data');
  w2.write(data.subarray(1 << 20));
  t.equal(w2.commit(data.length, d, {}, ''), d, 'the digest covers the bytes written before the crash');
  t.equal(fs.readFileSync(s.cs.blobPath(d)).compare(data), 0);
});

t.test('labels: field-mask updates and list filters', async (t) => {
  const root = tempRoot(t);
  const { cs, close } = open(root);
  t.teardown(close);
  const blobs = ['a', 'b', 'c'].map((x) => Buffer.from(x));
  for (const [i, b] of blobs.entries()) {
    const w = cs.writer('default', `r${i}`, 0, '');
    w.write(b);
    w.commit(0, '', i === 1 ? { keep: 'yes' } : {}, '');
  }
  t.same(cs.list('default', ['labels.keep==yes']).map((c) => c.digest), [sha(blobs[1]!)]);
  const u = cs.update('default', sha(blobs[0]!), { 'containerd.io/gc.ref.content.l.0': sha(blobs[2]!) }, ['labels.containerd.io/gc.ref.content.l.0']);
  t.same(u.labels, { 'containerd.io/gc.ref.content.l.0': sha(blobs[2]!) });
  t.same(updateLabels({ a: '1', b: '2' }, { a: '' }, ['labels.a'], 'x'), { b: '2' }, 'an empty value removes the label');
  t.same(updateLabels({ a: '1' }, { c: '3' }, ['labels'], 'x'), { c: '3' }, '"labels" replaces them all');
  t.match(code(() => cs.update('default', sha(blobs[0]!), {}, ['size'])), /^InvalidArgument: cannot update "size" field/);
});

t.test('the image tables migrate from nothing and refuse a newer schema', async (t) => {
  const root = tempRoot(t);
  const db = new Database(path.join(root, 'meta.db'));
  t.teardown(() => db.close());
  migrate(db);
  migrate(db);
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
  for (const n of ['content', 'images', 'snapshots', 'lease_resources']) t.ok(tables.includes(n), n);
  db.prepare("UPDATE meta SET value = '99' WHERE key = 'images_schema'").run();
  t.throws(() => migrate(db), /schema 99 is newer/);
});
