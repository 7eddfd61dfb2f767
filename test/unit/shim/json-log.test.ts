import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { openJsonLog } from '../../../shim/json-log';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-log-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('one JSON object per line, partial lines held until newline or end', async (t) => {
  const d = tmp(t);
  const p = path.join(d, 'c.log');
  const log = openJsonLog({ path: p, maxSize: 0, maxFiles: 1 }, () => 'T');
  log.write('stdout', Buffer.from('hel'));
  log.write('stderr', Buffer.from('err\n'));
  log.write('stdout', Buffer.from('lo\nwor'));
  log.write('stdout', Buffer.from('ld "quoted"\ntail'));
  log.end('stdout');
  log.close();
  t.equal(
    fs.readFileSync(p, 'utf8'),
    [
      '{"log":"err\\n","stream":"stderr","time":"T"}',
      '{"log":"hello\\n","stream":"stdout","time":"T"}',
      '{"log":"world \\"quoted\\"\\n","stream":"stdout","time":"T"}',
      '{"log":"tail","stream":"stdout","time":"T"}',
      '',
    ].join('\n'),
  );
});

t.test('rotation by size keeps maxFiles files', async (t) => {
  const d = tmp(t);
  const p = path.join(d, 'c.log');
  const log = openJsonLog({ path: p, maxSize: 100, maxFiles: 3 }, () => 'T');
  for (let i = 0; i < 20; i++) log.write('stdout', Buffer.from(`line-${String(i).padStart(2, '0')}\n`));
  log.close();
  t.same(fs.readdirSync(d).sort(), ['c.log', 'c.log.1', 'c.log.2']);
  for (const f of fs.readdirSync(d)) t.ok(fs.statSync(path.join(d, f)).size <= 100, `${f} <= maxSize`);
  const last = fs.readFileSync(p, 'utf8').trim().split('\n').pop();
  t.match(last, /line-19/, 'newest line in the live file');
  const older = fs.readFileSync(`${p}.1`, 'utf8');
  t.notMatch(older, /line-19/);
});

t.test('maxFiles 1 truncates in place; maxSize 0 never rotates', async (t) => {
  const d = tmp(t);
  const p = path.join(d, 'one.log');
  const log = openJsonLog({ path: p, maxSize: 100, maxFiles: 1 }, () => 'T');
  for (let i = 0; i < 10; i++) log.write('stdout', Buffer.from(`line-${i}\n`));
  log.close();
  t.same(fs.readdirSync(d), ['one.log']);
  t.ok(fs.statSync(p).size <= 100);
  const q = path.join(d, 'big.log');
  const l2 = openJsonLog({ path: q, maxSize: 0, maxFiles: 5 }, () => 'T');
  for (let i = 0; i < 50; i++) l2.write('stderr', Buffer.from(`x${i}\n`));
  l2.close();
  t.equal(fs.readFileSync(q, 'utf8').trim().split('\n').length, 50);
  t.notOk(fs.existsSync(`${q}.1`));
});
