import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { parseFast } from '../../../../runtime/cli/startup/fast-args';
import { renderLauncher } from '../../../../runtime/cli/startup/launcher';
import { LIFECYCLE_COMMANDS } from '../../../../runtime/cli/startup/fast-run';
import { buildParser, defaultRoot, normalizeArgv } from '../../../../runtime/cli/main';
import { GLOBAL_FLAGS, VERBS, fastVerbs, globalValueFlags } from '../../../../runtime/cli/verbs';

/** The fast parser's verb and the arguments it gives besides the defaults. */
const parse = (...argv: string[]) => {
  const f = parseFast(normalizeArgv(argv));
  if (f === undefined) return undefined;
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f.args)) {
    const def = GLOBAL_FLAGS[k] ?? VERBS[f.verb]!.flags[k];
    const dflt = def === undefined ? undefined : typeof def.default === 'function' ? def.default() : (def.default ?? (def.type === 'boolean' ? false : undefined));
    if (v !== dflt) given[k] = v;
  }
  return { verb: f.verb, given };
};

/** What yargs hands the handler for argv, on the keys the table names; undefined when it refuses. */
async function viaYargs(argv: string[]): Promise<{ verb: string; args: Record<string, unknown> } | undefined> {
  let got: { verb: string; args: Record<string, unknown> } | undefined;
  try {
    await buildParser(yargs, normalizeArgv(argv), (verb, a) => {
      const def = VERBS[verb]!;
      const keys = [...Object.keys(GLOBAL_FLAGS), ...Object.keys(def.flags), ...def.positionals.map((p) => p.name)];
      got = { verb, args: Object.fromEntries(keys.filter((k) => a[k] !== undefined).map((k) => [k, a[k]])) };
    }).parseAsync();
  } catch {
    return undefined;
  }
  return got;
}

t.test('plain engine command lines take the fast path', async (t) => {
  t.same(parse('--root', '/r', '--log', '/l', '--log-format', 'json', 'state', 'c1'), { verb: 'state', given: { root: '/r', log: '/l', 'log-format': 'json', 'container-id': 'c1' } });
  t.same(parse('--root=/r', 'start', 'c1'), { verb: 'start', given: { root: '/r', 'container-id': 'c1' } });
  t.same(parse('--rootless', 'true', 'kill', '--all', 'c1', 'KILL'), { verb: 'kill', given: { all: true, 'container-id': 'c1', signal: 'KILL' } }, 'global --rootless dropped first');
  t.same(parse('kill', 'c1', '-a'), { verb: 'kill', given: { all: true, 'container-id': 'c1', signal: 'SIGTERM' } }, "kill's signal defaults to SIGTERM");
  t.same(parse('delete', '-f', 'c1', '--debug'), { verb: 'delete', given: { debug: true, force: true, 'container-id': 'c1' } }, 'global flags after the verb');
  t.same(parse('create', '--bundle', '/b', '--pid-file', '/p', '--no-pivot', '--no-new-keyring', '--preserve-fds', '2', '--console-socket', '/s', 'c1'), {
    verb: 'create',
    given: { bundle: '/b', 'pid-file': '/p', 'no-pivot': true, 'no-new-keyring': true, 'preserve-fds': 2, 'console-socket': '/s', 'container-id': 'c1' },
  });
  t.same(parse('run', '-b', '/b', '-d', '--keep', 'c1'), { verb: 'run', given: { bundle: '/b', detach: true, keep: true, 'container-id': 'c1' } });
  t.same(parse('--systemd-cgroup', 'run', '--bundle=/b', 'c1'), { verb: 'run', given: { 'systemd-cgroup': true, bundle: '/b', 'container-id': 'c1' } });
  t.equal(parseFast(['state', 'c1'])?.args['root'], defaultRoot(), "--root's default is defaultRoot()");
});

t.test('yargs and the fast parser read every fast command line alike', async (t) => {
  const lines: string[][] = [];
  for (const verb of fastVerbs()) {
    const def = VERBS[verb]!;
    const ids = def.positionals.filter((p) => p.required).map((p, i) => `id${i}`);
    const all = def.positionals.map((p, i) => (p.required ? `id${i}` : 'SIGKILL'));
    lines.push([verb, ...ids], [verb, ...all]);
    for (const [name, f] of [...Object.entries(GLOBAL_FLAGS), ...Object.entries(def.flags)]) {
      const value = f.type === 'number' ? '3' : f.choices?.[1] ?? `/v-${name}`;
      const forms = f.type === 'boolean' ? [[`--${name}`], ...(f.alias ? [[`-${f.alias}`]] : [])] : [[`--${name}`, value], [`--${name}=${value}`], ...(f.alias ? [[`-${f.alias}`, value]] : [])];
      // Global flags go before or after the verb; a verb's own only after it.
      for (const form of forms) lines.push([verb, ...form, ...ids], ...(name in GLOBAL_FLAGS ? [[...form, verb, ...ids]] : []));
    }
  }
  // --preserve-fds N asks the launcher for the caller's fds: there is none here, so both refuse
  // the same way when the handler runs, not when parsing; parsing is what is compared.
  for (const argv of lines) {
    const fast = parseFast(normalizeArgv(argv));
    const slow = await viaYargs(argv);
    if (fast === undefined) {
      t.fail(`${argv.join(' ')}: the fast parser declined a plain command line`);
      continue;
    }
    t.same({ verb: fast.verb, args: fast.args }, slow, argv.join(' '));
  }
});

t.test('the launcher sends to the lifecycle bundle exactly what it runs', async (t) => {
  const lifecycle = fastVerbs('lifecycle');
  t.same(Object.keys(LIFECYCLE_COMMANDS).sort(), [...lifecycle].sort(), 'the lifecycle bundle has a handler for each lifecycle verb');
  const template = fs.readFileSync(path.resolve(__dirname, '../../../../runtime/cli/startup/launcher.sh'), 'utf8');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-launcher-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A "node" that prints the script it was given: the bundle the launcher chose.
  const node = path.join(dir, 'node');
  fs.writeFileSync(node, '#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in *.js) echo "${1##*/}"; exit 0;; esac; shift; done\n', { mode: 0o755 });
  for (const f of ['tsrun.blob', 'tsrun-lifecycle.blob', 'tsrun.blob-node', 'tsrun.js', 'tsrun-lifecycle.js']) fs.writeFileSync(path.join(dir, f), '');
  const now = new Date();
  fs.utimesSync(node, now, now);
  fs.utimesSync(path.join(dir, 'tsrun.blob-node'), now, now);
  const launcher = path.join(dir, 'tsrun');
  const text = renderLauncher(template, node, dir);
  t.match(text, `  ${lifecycle.join(' | ')}) `, 'the lifecycle verbs are filled in');
  t.match(text, `  ${globalValueFlags().join(' | ')}) value=1`, 'the value-taking global flags are filled in');
  fs.writeFileSync(launcher, text, { mode: 0o755 });
  const env = { ...process.env };
  delete env['TSRUN_NO_SNAPSHOT'];
  const bundleFor = (argv: string[]): string => execFileSync('sh', [launcher, ...argv], { env, encoding: 'utf8', timeout: 10_000 }).trim();
  const cases: string[][] = [
    ['state', 'c1'],
    ['--root', '/r', 'kill', 'c1', 'KILL'],
    ['--rootless', 'true', '--log-format', 'json', 'delete', '-f', 'c1'],
    ['--debug', '--criu', 'x', 'start', 'c1'],
    ['create', '--bundle', '/b', 'c1'],
    ['--root', 'state', 'run', 'c1'],
    ['list'],
    ['exec', 'c1', 'state'],
  ];
  for (const verb of Object.keys(VERBS)) cases.push(['--log', verb, verb, 'c1']);
  for (const argv of cases) {
    const f = parseFast(normalizeArgv(argv));
    const want = f !== undefined && lifecycle.includes(f.verb) ? 'tsrun-lifecycle.js' : 'tsrun.js';
    t.equal(bundleFor(argv), want, argv.join(' '));
  }
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
