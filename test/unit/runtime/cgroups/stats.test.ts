import * as fs from 'node:fs';
import t from 'tap';
import { cgroupDriver } from '../../../../runtime/cgroups/driver';
import { parseBlkioV1, parseCpuList, parseIoStat, statsJson } from '../../../../runtime/cgroups/stats';
import { fakeCgroupfs } from './fixtures/fake-cgroupfs';

t.test('v1 stats from the files that exist', async (t) => {
  const fake = fakeCgroupfs(t, 'legacy', ['cpu', 'cpuacct', 'memory', 'pids', 'blkio', 'hugetlb', 'cpuset']);
  const d = cgroupDriver('legacy', { root: fake.root, path: '/c', fs: fake.fs });
  d.create();
  const w = (f: string, v: string): void => fs.writeFileSync(fake.at(f), v);
  w('cpuacct/c/cpuacct.usage', '123456789\n');
  w('cpuacct/c/cpuacct.usage_percpu', '100000000 23456789 \n');
  w('cpuacct/c/cpuacct.usage_sys', '20000000\n');
  w('cpuacct/c/cpuacct.usage_user', '103456789\n');
  w('cpu/c/cpu.stat', 'nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n');
  w('memory/c/memory.limit_in_bytes', '67108864\n');
  w('memory/c/memory.usage_in_bytes', '491520\n');
  w('memory/c/memory.max_usage_in_bytes', '1000000\n');
  w('memory/c/memory.memsw.usage_in_bytes', '491520\n');
  w('memory/c/memory.stat', 'cache 4096\nrss 8192\nhierarchical_memory_limit 9223372036854771712\n');
  fs.rmSync(fake.at('memory/c/memory.kmem.limit_in_bytes'));
  fs.rmSync(fake.at('memory/c/memory.kmem.tcp.limit_in_bytes'));
  w('pids/c/pids.current', '3\n');
  w('pids/c/pids.max', '100\n');
  w('blkio/c/blkio.throttle.io_service_bytes_recursive', '8:0 Read 4096\n8:0 Write 0\nTotal 4096\n');
  w('blkio/c/blkio.throttle.io_serviced_recursive', '8:0 Read 1\nTotal 1\n');
  w('hugetlb/c/hugetlb.2MB.limit_in_bytes', '9223372036854771712');
  w('hugetlb/c/hugetlb.2MB.usage_in_bytes', '0');
  w('hugetlb/c/hugetlb.2MB.failcnt', '0');
  const s = d.stats();
  t.same(s.cpu, {
    usage: { total: 123456789n, percpu: [100000000n, 23456789n], percpu_kernel: [0n, 0n], percpu_user: [0n, 0n], kernel: 20000000n, user: 103456789n },
    throttling: { periods: 10n, throttledPeriods: 2n, throttledTime: 5000n },
  });
  t.same(s.memory?.usage, { limit: 67108864n, usage: 491520n, max: 1000000n, failcnt: 0n });
  t.same(s.memory?.swap, { limit: 9223372036854771712n, usage: 491520n }, 'memsw: the files that exist');
  t.equal(s.memory?.kernel, undefined, 'no kmem files: left out');
  t.equal(s.memory?.cache, 4096n);
  t.equal(s.memory?.raw?.['hierarchical_memory_limit'], 9223372036854771712n, 'exact beyond 2^53');
  t.same(s.pids, { current: 3n, limit: 100n });
  t.same(s.blkio, {
    ioServiceBytesRecursive: [
      { major: 8, minor: 0, op: 'Read', value: 4096n },
      { major: 8, minor: 0, op: 'Write', value: 0n },
    ],
    ioServicedRecursive: [{ major: 8, minor: 0, op: 'Read', value: 1n }],
  });
  t.same(s.hugetlb, { '2MB': { usage: 0n, failcnt: 0n } });
  t.same(s.cpuset, { cpus: [0, 1], mems: [0] });
  const json = statsJson(s);
  t.match(json, /"hierarchical_memory_limit":9223372036854771712[,}]/, 'bigints printed as exact numbers');
  t.match(json, /"usage":\{"limit":67108864,"usage":491520,"max":1000000,"failcnt":0\}/);
  t.same(JSON.parse(json).pids, { current: 3, limit: 100 });
});

t.test('v1: cpuacct.stat ticks when the ns files are missing; nothing mounted, nothing reported', async (t) => {
  const fake = fakeCgroupfs(t, 'legacy', ['cpuacct']);
  const d = cgroupDriver('legacy', { root: fake.root, path: '/c', fs: fake.fs });
  d.create();
  for (const f of ['usage_sys', 'usage_user', 'usage_percpu_sys', 'usage_percpu_user']) fs.rmSync(fake.at(`cpuacct/c/cpuacct.${f}`));
  fs.writeFileSync(fake.at('cpuacct/c/cpuacct.stat'), 'user 150\nsystem 25\n');
  t.same(d.stats(), { cpu: { usage: { total: 0n, percpu: [0n, 0n], kernel: 250000000n, user: 1500000000n } } });
  fs.writeFileSync(fake.at('cpuacct/c/cpuacct.usage'), 'garbage');
  t.throws(() => d.stats(), { message: `read ${fake.at('cpuacct/c/cpuacct.usage')}: "garbage" is not a number` });
});

t.test('v2 stats', async (t) => {
  const fake = fakeCgroupfs(t, 'unified');
  const d = cgroupDriver('unified', { root: fake.root, path: '/c', fs: fake.fs });
  d.create();
  const w = (f: string, v: string): void => fs.writeFileSync(fake.at('c', f), v);
  w('cpu.stat', 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n');
  w('memory.current', '8192\n');
  w('memory.max', '16384\n');
  w('memory.peak', '10000\n');
  w('memory.events', 'low 0\nhigh 0\nmax 3\noom 0\n');
  w('memory.swap.current', '100\n');
  w('memory.swap.max', 'max\n');
  w('memory.stat', 'anon 4096\nfile 2048\n');
  w('pids.current', '2\n');
  w('pids.max', '50\n');
  w('io.stat', '8:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n');
  w('hugetlb.2MB.current', '0\n');
  w('hugetlb.2MB.events', 'max 1\n');
  w('cpuset.cpus.effective', '0-3,6\n');
  const s = d.stats();
  t.same(s.cpu, { usage: { total: 1500000n, kernel: 500000n, user: 1000000n }, throttling: { periods: 4n, throttledPeriods: 1n, throttledTime: 20000n } });
  t.same(s.memory?.usage, { limit: 16384n, usage: 8192n, max: 10000n, failcnt: 3n });
  t.same(s.memory?.swap, { limit: (1n << 64n) - 1n, usage: 8292n }, 'swap as memory+swap, like v1');
  t.equal(s.memory?.cache, 2048n);
  t.same(s.pids, { current: 2n, limit: 50n });
  t.same(s.blkio?.['ioServiceBytesRecursive'], [
    { major: 8, minor: 0, op: 'Read', value: 4096n },
    { major: 8, minor: 0, op: 'Write', value: 512n },
  ]);
  t.same(s.hugetlb, { '2MB': { usage: 0n, failcnt: 1n } });
  t.same(s.cpuset, { cpus: [0, 1, 2, 3, 6] });
});

t.test('parsers', async (t) => {
  t.same(parseCpuList('0-2,4,7-8'), [0, 1, 2, 4, 7, 8]);
  t.same(parseCpuList(''), []);
  t.equal(parseCpuList(undefined), undefined);
  t.same(parseBlkioV1('Total 0\n'), []);
  t.same(parseIoStat(''), { ioServiceBytesRecursive: [], ioServicedRecursive: [] });
});
