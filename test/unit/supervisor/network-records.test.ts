/**
 * Attachment records and CNI cache entries are written temp → rename without fsync (files.ts):
 * a kill of tsrund leaves the old or the new file, and only a crash of the machine can leave one
 * empty or cut short. Those torn files must read as torn (not throw, which would stop tsrund's
 * reconcile and every detach), and the cache's readers must tell them from whole entries.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { cacheFile, listCache, readCache, scanCache, type CacheEntry } from '../../../supervisor/networks/cni';
import { readRecord, writeAtomic } from '../../../supervisor/networks/files';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-netrec-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const entry = (containerId: string, ifName: string): CacheEntry => ({
  kind: 'cniCacheV1',
  containerId,
  ifName,
  networkName: 'front',
  netns: `/run/netns/${containerId}`,
  config: { cniVersion: '1.0.0', name: 'front', plugins: [{ type: 'bridge' }] },
  result: { cniVersion: '1.0.0', ips: [{ address: '172.18.0.2/16' }] },
});

t.test('writeAtomic replaces the file whole and leaves no temp file', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'sub', 'rec.json');
  writeAtomic(file, '{"a":1}');
  writeAtomic(file, '{"a":2}');
  t.same(readRecord(file), { kind: 'ok', value: { a: 2 } });
  t.same(fs.readdirSync(path.dirname(file)), ['rec.json']);
});

t.test('readRecord: missing, torn (empty, cut short, not an object) and whole files', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'rec.json');
  t.same(readRecord(file), { kind: 'missing' });
  for (const text of ['', '{"namespace":"default","id":"c1","endp', 'null', '7']) {
    fs.writeFileSync(file, text);
    t.equal(readRecord(file).kind, 'torn', JSON.stringify(text));
  }
  fs.writeFileSync(file, '{"id":"c1"}');
  t.same(readRecord(file), { kind: 'ok', value: { id: 'c1' } });
  fs.rmSync(file);
  fs.mkdirSync(file);
  t.throws(() => readRecord(file), { code: 'Internal' }, 'a read error other than ENOENT is not taken for a torn file');
});

t.test('a torn cache entry reads as none, is left out of listCache and named by scanCache', async (t) => {
  const dir = tmpDir(t);
  const whole = cacheFile(dir, 'front', { containerId: 'default-c1', ifName: 'eth0' });
  const torn = cacheFile(dir, 'front', { containerId: 'default-c2', ifName: 'eth0' });
  fs.writeFileSync(whole, JSON.stringify(entry('default-c1', 'eth0')));
  fs.writeFileSync(torn, JSON.stringify(entry('default-c2', 'eth0')).slice(0, 40));
  fs.writeFileSync(`${torn}.tmp`, '');
  t.equal(readCache(torn), undefined);
  t.equal(readCache(whole)?.containerId, 'default-c1');
  t.same(listCache(dir).map((e) => e.containerId), ['default-c1']);
  t.same(scanCache(dir).torn, [torn], 'temp files are not entries');
  t.same(scanCache(dir, 'default-c2').torn, [torn]);
  t.same(scanCache(dir, 'default-c1').torn, []);
  fs.writeFileSync(whole, JSON.stringify({ ...entry('default-c1', 'eth0'), kind: 'other' }));
  t.throws(() => readCache(whole), /unknown kind/, 'a whole file of another kind is an error, not a torn file');
});
