import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLogger, formatLine } from '../../../../runtime/cli/log';
import { tabwriter } from '../../../../runtime/cli/format';

const when = new Date('2026-11-23T13:05:19.123Z');

t.test('json and text log lines match runc', async (t) => {
  t.equal(formatLine('json', 'error', 'container does not exist', when), '{"level":"error","msg":"container does not exist","time":"2026-11-23T13:05:19Z"}');
  t.equal(formatLine('text', 'error', 'say "hi"', when), 'time="2026-11-23T13:05:19Z" level=error msg="say \\"hi\\""');
});

t.test('errors go to stderr plainly and once to the log file', async (t) => {
  const file = path.join(t.testdir(), 'log.json');
  const err: string[] = [];
  const log = createLogger({ file, format: 'json', debug: false }, (s) => err.push(s));
  log.error('boom: no such file or directory');
  log.debug('not shown without --debug');
  t.same(err, ['boom: no such file or directory\n']);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  t.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0]!) as Record<string, string>;
  t.same(Object.keys(parsed), ['level', 'msg', 'time']);
  t.match(parsed['time'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

t.test('tabwriter lays out like runc list', async (t) => {
  t.equal(tabwriter([['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']]), 'ID          PID         STATUS      BUNDLE      CREATED     OWNER\n');
  const out = tabwriter([['ID', 'PID'], ['a-very-long-container-id', '1']]);
  t.equal(out, 'ID                         PID\na-very-long-container-id   1\n');
});
