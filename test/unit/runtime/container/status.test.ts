import t from 'tap';
import { computeStatus, parseProcStat, type ProcView } from '../../../../runtime/container/status';
import { parseSignal } from '../../../../runtime/container/processes';

const stat = (comm: string, state: string, start: string): string =>
  `42 (${comm}) ${state} 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 10 18446744073709551615`;

t.test('parseProcStat survives spaces and parens in comm', async (t) => {
  t.same(parseProcStat(stat('a) b (c', 'S', '777')), { state: 'S', ppid: 1, startTime: '777' });
  t.equal(parseProcStat('garbage'), null);
});

t.test('status is computed from pid, start time and fifo', async (t) => {
  const view = (text: string | null, fifo: boolean): ProcView => ({ readStat: () => text, fifoExists: () => fifo });
  const s = { pid: 42, pidStartTime: '777' };
  t.equal(computeStatus(s, view(stat('sh', 'S', '777'), true)), 'created');
  t.equal(computeStatus(s, view(stat('sh', 'R', '777'), false)), 'running');
  t.equal(computeStatus(s, view(stat('sh', 'S', '778'), false)), 'stopped', 'a reused pid is not our init');
  t.equal(computeStatus(s, view(stat('sh', 'Z', '777'), false)), 'stopped', 'a zombie has stopped');
  t.equal(computeStatus(s, view(null, false)), 'stopped', 'no such process');
  t.equal(computeStatus({ pid: 0, pidStartTime: '' }, view(stat('sh', 'S', '1'), false)), 'stopped');
});

t.test('signals by name or number', async (t) => {
  t.equal(parseSignal('KILL'), 9);
  t.equal(parseSignal('SIGKILL'), 9);
  t.equal(parseSignal('sigterm'), 15);
  t.equal(parseSignal('9'), 9);
  t.equal(parseSignal('USR1'), 10);
  t.equal(parseSignal('RTMIN+2'), 36);
  t.throws(() => parseSignal('NOPE'), { code: 'InvalidArgument', message: 'invalid signal "NOPE"' });
  t.throws(() => parseSignal('0'), { code: 'InvalidArgument' });
  t.throws(() => parseSignal('65'), { code: 'InvalidArgument' });
});

t.test('a record create has not finished: creating while create runs, stopped once it is gone', async (t) => {
  const view = (creatorStat: string | null): ProcView => ({ readStat: (pid) => (pid === 7 ? creatorStat : stat('sh', 'S', '777')), fifoExists: () => true });
  const s = { pid: 42, pidStartTime: '777', creating: { pid: 7, startTime: '555' } };
  t.equal(computeStatus(s, view(stat('node', 'S', '555'))), 'creating');
  t.equal(computeStatus(s, view(null)), 'stopped', 'create was killed');
  t.equal(computeStatus(s, view(stat('node', 'S', '556'))), 'stopped', 'a reused pid is not our create');
  t.equal(computeStatus({ ...s, pid: 0, pidStartTime: '' }, view(null)), 'stopped', 'killed before init existed');
});
