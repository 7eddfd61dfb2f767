import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAUNCHER_GLIBC_TUNABLES, dropLauncherEnv } from '../../../../runtime/cli/startup/env';

const launcher = fs.readFileSync(path.resolve(__dirname, '../../../../runtime/cli/startup/launcher.sh'), 'utf8');

t.test('the launcher sets the tunables the CLI drops, and only when the caller set none', async (t) => {
  t.match(launcher, `\n  GLIBC_TUNABLES=${LAUNCHER_GLIBC_TUNABLES}\n`, 'launcher.sh and env.ts name the same value');
  t.match(launcher, 'if [ -z "${GLIBC_TUNABLES+set}" ]; then', 'set only when GLIBC_TUNABLES is unset (an empty value is the caller\'s)');
});

t.test('dropLauncherEnv removes the launcher\'s value and keeps a caller\'s', async (t) => {
  const ours: NodeJS.ProcessEnv = { GLIBC_TUNABLES: LAUNCHER_GLIBC_TUNABLES, PATH: '/bin' };
  dropLauncherEnv(ours);
  t.same(ours, { PATH: '/bin' }, 'ours goes, the rest stays');
  const theirs: NodeJS.ProcessEnv = { GLIBC_TUNABLES: 'glibc.malloc.check=3' };
  dropLauncherEnv(theirs);
  t.same(theirs, { GLIBC_TUNABLES: 'glibc.malloc.check=3' }, 'a caller\'s own value stays');
  const empty: NodeJS.ProcessEnv = { GLIBC_TUNABLES: '' };
  dropLauncherEnv(empty);
  t.same(empty, { GLIBC_TUNABLES: '' }, 'an empty value is a caller\'s too');
});
