import t from 'tap';
import { cpuMax, ioRate, ioWeight, memoryMax, parseLimit, pidsMax, sharesToWeight, swapMax, swappinessText } from '../../../../runtime/cgroups/convert';

t.test('cpu.shares → cpu.weight', async (t) => {
  const table: [number, number][] = [
    [2, 1],
    [1024, 39],
    [512, 20],
    [262144, 10000],
    [1, 1], // clamped to 2 first
    [300000, 10000], // clamped to 262144
  ];
  for (const [shares, weight] of table) t.equal(sharesToWeight(shares), weight, `shares ${shares}`);
});

t.test('blkio weight → io.weight', async (t) => {
  const table: [number, number][] = [
    [10, 1],
    [100, 910],
    [500, 4950],
    [1000, 10000],
    [5, 1],
    [2000, 10000],
  ];
  for (const [w, io] of table) t.equal(ioWeight(w), io, `weight ${w}`);
});

t.test('cpu.max', async (t) => {
  t.equal(cpuMax(undefined, undefined), undefined);
  t.equal(cpuMax(undefined, 100000), undefined, 'a period alone is a field write, not a cpu.max line');
  t.equal(cpuMax(-1, undefined), 'max');
  t.equal(cpuMax(-1, 100000), 'max 100000');
  t.equal(cpuMax(50000, 100000), '50000 100000');
  t.equal(cpuMax(50000, undefined), '50000');
});

t.test('memory values', async (t) => {
  t.equal(memoryMax(-1), 'max');
  t.equal(memoryMax(1024), '1024');
  t.equal(memoryMax(2 ** 63), '9223372036854775807', 'the parsed i64 max is the real one');
  t.equal(swapMax(undefined, undefined), undefined);
  t.equal(swapMax(undefined, 1000), undefined);
  t.equal(swapMax(undefined, -1), 'max', 'unlimited memory, swap unset: swap unlimited too');
  t.equal(swapMax(-1, 1000), 'max');
  t.equal(swapMax(3000, 1000), '2000');
  t.equal(swapMax(1000, 1000), '0');
  t.throws(() => swapMax(500, 1000), { code: 'InvalidArgument' });
  t.throws(() => swapMax(500, -1), { code: 'InvalidArgument' });
  t.equal(swappinessText(0), '0');
  t.equal(swappinessText(100), '100');
  t.equal(swappinessText(2 ** 64), undefined, 'a Go -1 sent as uint64');
  t.throws(() => swappinessText(101));
});

t.test('pids and io rates', async (t) => {
  t.equal(pidsMax(10), '10');
  t.equal(pidsMax(0), 'max');
  t.equal(pidsMax(-1), 'max');
  t.equal(ioRate(0), 'max');
  t.equal(ioRate(1048576), '1048576');
  t.equal(ioRate(2 ** 64), '18446744073709551615');
});

t.test('parseLimit', async (t) => {
  t.equal(parseLimit('max'), null);
  t.equal(parseLimit('-1'), null);
  t.equal(parseLimit('9223372036854771712\n'), null, 'v1 unlimited');
  t.equal(parseLimit('4096'), 4096n);
});
