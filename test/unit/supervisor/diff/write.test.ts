/** writeDiff in tree mode (a copying snapshotter's diff) without root. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import { applyLayer } from '../../../../supervisor/diff/apply';
import { readTar } from '../../../../supervisor/diff/tar-reader';
import { writeDiff } from '../../../../supervisor/diff/write';
import { listTree, tempDir } from '../../../helpers/layers';

async function entries(r: Readable): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readTar(r)) {
    let body = '';
    for await (const c of e.body) body += c.toString();
    out.push(`${e.header.type} ${e.header.name}${e.header.linkname ? ` -> ${e.header.linkname}` : ''}${body ? ` = ${body}` : ''}`);
  }
  return out;
}

function write(root: string, rel: string, body: string, mtime = 1_600_000_000.5): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), body);
  fs.utimesSync(path.join(root, rel), mtime, mtime);
}

t.test('tree diff: additions, deletions, changes, type changes, hard links; unchanged parents written once', async (t) => {
  const base = tempDir(t);
  const lower = path.join(base, 'lower');
  const upper = path.join(base, 'upper');
  for (const f of ['a/same', 'a/changed', 'a/gone', 'b/sub/x', 'c/f', 'sec/truncated']) write(lower, f, `old ${f}`);
  fs.utimesSync(path.join(lower, 'sec/truncated'), 1_600_000_000, 1_600_000_000);
  fs.mkdirSync(path.join(lower, 'd'));
  fs.cpSync(lower, upper, { recursive: true, preserveTimestamps: true });
  write(upper, 'a/changed', 'new!!!!!!!!!!!');
  fs.rmSync(path.join(upper, 'a/gone'));
  fs.rmSync(path.join(upper, 'b'), { recursive: true });
  fs.rmSync(path.join(upper, 'c'), { recursive: true });
  write(upper, 'c', 'now a file');
  // same size, same whole-second mtime, different bytes: only a content compare finds it
  fs.writeFileSync(path.join(upper, 'sec/truncated'), 'OLD sec/truncated');
  fs.utimesSync(path.join(upper, 'sec/truncated'), 1_600_000_000, 1_600_000_000);
  write(upper, 'n/new', 'fresh');
  fs.linkSync(path.join(upper, 'n/new'), path.join(upper, 'n/new-link'));
  fs.symlinkSync('../a/same', path.join(upper, 'n/sl'));
  // the directories' mtimes changed with their children: reset them so only real changes remain
  for (const d of ['a', 'sec', 'd']) {
    fs.utimesSync(path.join(upper, d), 1_600_000_000, 1_600_000_000);
    fs.utimesSync(path.join(lower, d), 1_600_000_000, 1_600_000_000);
  }
  const got = await entries(writeDiff({ kind: 'tree', lower, upper }));
  t.same(got, [
    'dir a/',
    'file a/changed = new!!!!!!!!!!!',
    'file a/.wh.gone',
    'file .wh.b',
    'file c = now a file',
    'dir n/',
    'file n/new = fresh',
    'hardlink n/new-link -> n/new',
    'symlink n/sl -> ../a/same',
    'dir sec/',
    'file sec/truncated = OLD sec/truncated',
  ]);
  // applying it onto a copy of lower gives upper
  const copy = path.join(base, 'copy');
  fs.cpSync(lower, copy, { recursive: true, preserveTimestamps: true });
  await applyLayer(writeDiff({ kind: 'tree', lower, upper }), copy, { mediaType: 'application/vnd.oci.image.layer.v1.tar', whiteouts: 'apply' });
  t.same(listTree(copy), listTree(upper));
  t.equal(fs.readFileSync(path.join(copy, 'sec/truncated'), 'utf8'), 'OLD sec/truncated');
});

t.test('tree diff with no lower is the whole tree, in byte order', async (t) => {
  const upper = tempDir(t);
  write(upper, 'B', 'b');
  write(upper, 'a/x', 'x');
  write(upper, 'Z/y', 'y');
  const got = await entries(writeDiff({ kind: 'tree', lower: null, upper }));
  t.same(got, ['file B = b', 'dir Z/', 'file Z/y = y', 'dir a/', 'file a/x = x']);
});

t.test('a missing upper fails with the path', async (t) => {
  const dir = tempDir(t);
  await t.rejects(entries(writeDiff({ kind: 'tree', lower: null, upper: path.join(dir, 'nope') })), { message: /write diff of .*nope: no such file or directory/ });
});
