/**
 * docker's TTY progress for pull and push: the bar's shape and the in-place redraw of a layer's line.
 */
import t from 'tap';
import { progressBar, TtyLines } from '../../../../supervisor/tsctl/progress';

t.test('the progress bar has docker\'s shape', async (t) => {
  t.equal(progressBar(0, 1000), `[${' '.repeat(50)}]       0B/1kB`);
  t.equal(progressBar(500_000, 1_000_000), `[${'='.repeat(24)}>${' '.repeat(25)}]    500kB/1MB`);
  t.equal(progressBar(1_000_000, 1_000_000), `[${'='.repeat(49)}>]      1MB/1MB`);
  t.equal(progressBar(2_000_000, 1_000_000), `[${'='.repeat(49)}>]      2MB/1MB`, 'more than the total stays a full bar');
  t.equal(progressBar(1234, 0), '1.23kB', 'an unknown total shows the count alone');
});

t.test('a new id adds a line; a change redraws that line in place; no change draws nothing', async (t) => {
  const out: string[] = [];
  const lines = new TtyLines((s) => out.push(s));
  lines.set('a', 'a: Pulling fs layer');
  lines.set('b', 'b: Pulling fs layer');
  t.same(out, ['a: Pulling fs layer\n', 'b: Pulling fs layer\n']);
  out.length = 0;
  lines.set('a', 'a: Downloading');
  t.same(out, ['\x1b[2A\r\x1b[2Ka: Downloading\r\x1b[2B'], 'two lines up, cleared, written, back down');
  out.length = 0;
  lines.set('b', 'b: Pull complete');
  t.same(out, ['\x1b[1A\r\x1b[2Kb: Pull complete\r\x1b[1B']);
  out.length = 0;
  lines.set('b', 'b: Pull complete');
  t.same(out, [], 'unchanged: nothing written');
});
