/*
 * bin/tsrun's launcher (runtime/cli/startup/launcher.sh) gives node glibc malloc tunables for its own
 * start-up when the caller set none, and the CLI drops them again, so nothing tsrun starts with its
 * environment inherits them. `tsrun ps` runs the host's `ps` with tsrun's env: a `ps` of our own,
 * first on PATH, records what it got and what its parent (the CLI's node) was started with.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { runDetached } from '../helpers/container';
import { requires } from '../helpers/requires';
import { runtimeName, runtimePath } from '../helpers/runtime';
import { LAUNCHER_GLIBC_TUNABLES } from '../../runtime/cli/startup/env';

t.test('the launcher tunes node\'s malloc for tsrun only, and a caller\'s GLIBC_TUNABLES wins', async (t) => {
  if (runtimeName !== 'tsrun') return t.plan(0, `${runtimePath} is not tsrun: the launcher is tsrun's own`);
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '100'] });
  runDetached(b); // makeBundle's teardown deletes it

  const bin = b.hostDir('fake-ps');
  const seen = path.join(bin, 'seen');
  fs.writeFileSync(
    path.join(bin, 'ps'),
    [
      '#!/bin/sh',
      `{ echo "child=\${GLIBC_TUNABLES-unset}"; tr '\\0' '\\n' < /proc/$PPID/environ | sed -n 's/^GLIBC_TUNABLES=/parent=/p'; } > ${seen}`,
      'echo "UID PID PPID C STIME TTY TIME CMD"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const psWith = (tunables: string | undefined): string[] => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
    delete env['GLIBC_TUNABLES'];
    if (tunables !== undefined) env['GLIBC_TUNABLES'] = tunables;
    fs.rmSync(seen, { force: true });
    const r = spawnSync(runtimePath, ['--root', b.rt.root, 'ps', b.id], { env, encoding: 'utf8' });
    t.equal(r.status, 0, `tsrun ps exits 0 (${r.stderr.trim()})`);
    t.equal(r.stdout, 'UID PID PPID C STIME TTY TIME CMD\n', 'the fake ps ran');
    return fs.readFileSync(seen, 'utf8').trim().split('\n');
  };

  // glibc parses GLIBC_TUNABLES in place at start-up, cutting the original string (what
  // /proc/<pid>/environ shows) after its first tunable; getenv sees a whole copy.
  const [child, parent] = psWith(undefined);
  t.equal(child, 'child=unset', 'ps did not inherit the launcher\'s tunables');
  t.equal(parent, `parent=${LAUNCHER_GLIBC_TUNABLES.split(':')[0]!}`, 'node was started with them');
  t.same(psWith('glibc.malloc.check=0'), ['child=glibc.malloc.check=0', 'parent=glibc.malloc.check=0'], 'a caller\'s own value reaches node and ps unchanged');
  t.same(psWith(''), ['child=', 'parent='], 'an empty value is the caller\'s too');
});
