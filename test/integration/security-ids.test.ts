/**
 * Out-of-range user and group ids (issue 12, item 2). 4294967295 is (uid_t)-1, which means
 * "leave unchanged" to setresuid(2)/setresgid(2): a runtime that passes it on runs the process
 * with its own ids, root. Every way an id enters is refused, naming the field: config.json's
 * process.user (uid, gid, additionalGids), id mappings, and exec's -u, -g and --process. Runs
 * against runc too, which refuses the same ids ("uids and gids must be in range 0-2147483647").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { runDetached } from '../helpers/container';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

const HUGE = 4294967295;

for (const [name, user] of [
  ['uid and gid', { uid: HUGE, gid: HUGE }],
  ['uid', { uid: HUGE, gid: 0 }],
  ['gid', { uid: 0, gid: HUGE }],
  ['additionalGids', { uid: 0, gid: 0, additionalGids: [HUGE] }],
] as const) {
  t.test(`process.user ${name} of 4294967295 is refused, never run as root`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const b = makeBundle(t, {
      args: ['id'],
      patch: (s) => {
        (s.process as unknown as Record<string, unknown>)['user'] = user;
      },
    });
    const r = b.rt.run(b.id, b.dir);
    t.not(r.code, 0, `run fails (${describe(r)})`);
    t.notMatch(r.stdout, /uid=/, 'the process never ran');
    t.match(r.stderr, /must be in range 0-2147483647/, 'the error gives the valid range');
    if (runtimeName === 'tsrun') t.match(r.stderr, /process\.user\.(uid|gid|additionalGids)/, 'the error names the field');
    t.same(b.leftovers(), [], 'nothing left under the root');
  });
}

t.test('an id mapping reaching (u32)-1 is refused before anything is cloned', async (t) => {
  if (!requires(t, 'root', 'busybox', 'userns')) return;
  if (runtimeName === 'runc') {
    t.plan(0, 'runc leaves mapping ranges to the kernel, which refuses them in its own words');
    return;
  }
  const b = makeBundle(t, {
    args: ['id'],
    patch: (s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 2147483647, size: 2147483649 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.not(r.code, 0, `run fails (${describe(r)})`);
  t.match(r.stderr, /linux\.uidMappings\[0\]: hostID 2147483647 \+ size 2147483649/, 'the error names the mapping');
  t.same(b.leftovers(), [], 'nothing left under the root');
});

t.test('exec -u, -g and --process refuse 4294967295 and run nothing as root', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, { args: ['sleep', '1000'] });
  runDetached(b);
  const attempts: [string, string[]][] = [
    ['-u uid:gid', ['exec', '-u', `${HUGE}:${HUGE}`, b.id, 'id']],
    ['-u uid', ['exec', '-u', String(HUGE), b.id, 'id']],
    ['-u 1000:gid', ['exec', '-u', `1000:${HUGE}`, b.id, 'id']],
    ['-g', ['exec', '-u', '1000:1000', '-g', String(HUGE), b.id, 'id']],
  ];
  const processFile = path.join(b.sandbox, 'process.json');
  fs.writeFileSync(processFile, JSON.stringify({ cwd: '/', args: ['id'], user: { uid: HUGE, gid: HUGE } }));
  attempts.push(['--process', ['exec', '--process', processFile, b.id]]);
  for (const [what, args] of attempts) {
    const r = b.rt.exec(args);
    t.not(r.code, 0, `exec ${what} fails (${describe(r)})`);
    t.notMatch(r.stdout, /uid=/, `exec ${what}: the process never ran`);
    if (runtimeName === 'tsrun') t.match(r.stderr, /must be in range 0-2147483647/, `exec ${what}: the error gives the valid range`);
  }
  const ok = b.rt.exec(['exec', '-u', '1000:1000', '-g', '5', b.id, 'id']);
  t.equal(ok.code, 0, `an in-range exec still works (${describe(ok)})`);
  t.match(ok.stdout, /uid=1000 gid=1000 groups=5/, 'and gets exactly the ids asked for');
});
