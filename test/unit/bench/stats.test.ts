import t from 'tap';
import { median, quantile, rotation, summarize } from '../../../bench/lib/stats';
import { cgroupMode } from '../../../bench/lib/host';
import { table } from '../../../bench/lib/report';

t.test('median and p95', async (t) => {
  t.equal(median([1, 2, 3]), 2);
  t.equal(median([1, 2, 3, 4]), 2.5, 'mean of the middle two');
  t.ok(Number.isNaN(median([])));
  const thirty = Array.from({ length: 30 }, (_, i) => i + 1);
  t.equal(quantile(thirty, 0.95), 29, 'nearest rank: ceil(0.95 * 30) = 29th');
  t.equal(quantile([5], 0.95), 5);
  t.same(summarize([3, 1, 2]), { n: 3, median: 2, p95: 3, min: 1 }, 'order does not matter');
});

t.test('rotation puts every subject first in turn', async (t) => {
  t.same(rotation(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  t.same(rotation(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  t.same(rotation(['a', 'b', 'c'], 5), ['c', 'a', 'b']);
  t.same(rotation([], 3), []);
});

t.test('cgroup mode from mountinfo', async (t) => {
  const v1 = '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu';
  const v2 = '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw';
  t.match(cgroupMode(`${v1}\n${v2}\n`), /^hybrid/);
  t.match(cgroupMode(`${v2}\n`), /^v2/);
  t.equal(cgroupMode(`${v1}\n`), 'v1');
});

t.test('markdown table', async (t) => {
  t.equal(table([['step', 'a'], ['run', '1.0']]), '| step | a |\n| --- | ---: |\n| run | 1.0 |\n');
});
