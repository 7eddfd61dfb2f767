import t from 'tap';
import { parseFast } from '../../../../runtime/cli/fast-args';
import { normalizeArgv } from '../../../../runtime/cli/main';

const parse = (...argv: string[]) => {
  const f = parseFast(normalizeArgv(argv));
  return f && { verb: f.verb, positionals: f.positionals, strings: f.strings, flags: [...f.flags].sort() };
};

t.test('plain engine command lines take the fast path', async (t) => {
  t.same(parse('--root', '/r', '--log', '/l', '--log-format', 'json', 'state', 'c1'), { verb: 'state', positionals: ['c1'], strings: { root: '/r', log: '/l', 'log-format': 'json' }, flags: [] });
  t.same(parse('--root=/r', 'start', 'c1'), { verb: 'start', positionals: ['c1'], strings: { root: '/r' }, flags: [] });
  t.same(parse('--rootless', 'true', 'kill', '--all', 'c1', 'KILL'), { verb: 'kill', positionals: ['c1', 'KILL'], strings: {}, flags: ['all'] }, 'global --rootless dropped first');
  t.same(parse('kill', 'c1', '-a'), { verb: 'kill', positionals: ['c1'], strings: {}, flags: ['all'] });
  t.same(parse('delete', '-f', 'c1', '--debug'), { verb: 'delete', positionals: ['c1'], strings: {}, flags: ['debug', 'force'] }, 'global flags after the verb');
  t.same(parse('create', '--bundle', '/b', '--pid-file', '/p', '--no-pivot', '--no-new-keyring', '--preserve-fds', '2', '--console-socket', '/s', 'c1'), {
    verb: 'create',
    positionals: ['c1'],
    strings: { bundle: '/b', 'pid-file': '/p', 'preserve-fds': '2', 'console-socket': '/s' },
    flags: ['no-new-keyring', 'no-pivot'],
  });
  t.same(parse('run', '-b', '/b', '-d', '--keep', 'c1'), { verb: 'run', positionals: ['c1'], strings: { bundle: '/b' }, flags: ['detach', 'keep'] });
  t.same(parse('--systemd-cgroup', 'run', '--bundle=/b', 'c1'), { verb: 'run', positionals: ['c1'], strings: { bundle: '/b' }, flags: ['systemd-cgroup'] });
});

t.test('anything unusual goes to yargs', async (t) => {
  const yargsCases: string[][] = [
    [],
    ['state'],
    ['state', 'a', 'b'],
    ['kill', 'a', 'KILL', 'extra'],
    ['state', '--help', 'c1'],
    ['-h'],
    ['--version'],
    ['list'],
    ['exec', 'c1', 'ls'],
    ['stat', 'c1'],
    ['state', '--bogus', 'c1'],
    ['delete', '--force=true', 'c1'],
    ['delete', '-af', 'c1'],
    ['--root', '/a', '--root', '/b', 'state', 'c1'],
    ['--root', 'state', 'c1'],
    ['state', 'c1', '--root'],
    ['create', '--bundle', '--pid-file', '/p', 'c1'],
    ['create', '--preserve-fds', 'x', 'c1'],
    ['create', '--preserve-fds', '-1', 'c1'],
    ['create', '-b=/b', 'c1'],
    ['--bundle', '/b', 'create', 'c1'],
    ['start', '--all', 'c1'],
    ['state', '--', 'c1'],
    ['state', '-', 'c1'],
    ['create', '--noPivot', 'c1'],
  ];
  for (const argv of yargsCases) t.equal(parse(...argv), undefined, argv.join(' ') || '(empty)');
});
