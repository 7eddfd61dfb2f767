/**
 * The in-place writer of containers' hosts, hostname and resolv.conf: writes of one file collapse
 * to the newest text, and a peer's refresh (create: false) never makes a file again in a directory
 * being removed with its container (that made the removal fail with ENOTEMPTY).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { createInPlaceWriter } from '../../../supervisor/networks/files';

t.test('a burst of writes of one file ends with the newest text', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const w = createInPlaceWriter();
  const file = path.join(dir, 'hosts');
  await Promise.all(['a\n', 'bb\n', 'ccc\n'].map((x) => w.write(file, x)));
  t.equal(fs.readFileSync(file, 'utf8'), 'ccc\n');
});

t.test('create: false rewrites a file that exists and makes none that does not', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const w = createInPlaceWriter();
  const file = path.join(dir, 'hosts');
  fs.writeFileSync(file, 'old\n');
  const ino = fs.statSync(file).ino;
  await w.write(file, 'new\n', { create: false });
  t.equal(fs.readFileSync(file, 'utf8'), 'new\n');
  t.equal(fs.statSync(file).ino, ino, 'in place: a bind mount of it sees the change');
  fs.rmSync(file);
  await t.rejects(w.write(file, 'again\n', { create: false }), { code: 'ENOENT' });
  t.notOk(fs.existsSync(file), 'not made again');
  fs.rmdirSync(dir);
  await t.rejects(w.write(file, 'again\n', { create: false }), { code: 'ENOENT' }, 'nor its directory');
});
