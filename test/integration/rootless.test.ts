/**
 * Rootless: tsrun run by an unprivileged user (nobody) with a `tsrun spec --rootless` bundle.
 * State goes under $XDG_RUNTIME_DIR/tsrun, the user's own uid is root inside, cgroups it cannot
 * write are skipped with a note, and nothing is left behind.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { populateRootfs } from '../helpers/bundle';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { runtimeName, runtimePath } from '../helpers/runtime';

const NOBODY = 65534;

t.test('an unprivileged user runs a container', async (t) => {
  if (!requires(t, 'root', 'busybox', 'userns')) return;
  if (runtimeName === 'runc') {
    t.plan(0, 'this checks tsrun-specific output (its cgroup note and state location)');
    return;
  }
  const sandbox = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-rootless-'));
  t.teardown(() => fs.rmSync(sandbox, { recursive: true, force: true }));
  fs.chmodSync(sandbox, 0o755);
  const bundle = path.join(sandbox, 'bundle');
  const xdg = path.join(sandbox, 'xdg');
  fs.mkdirSync(bundle);
  fs.mkdirSync(xdg, { mode: 0o700 });
  populateRootfs(path.join(bundle, 'rootfs'));
  fs.chownSync(bundle, NOBODY, NOBODY);
  fs.chownSync(xdg, NOBODY, NOBODY);
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', XDG_RUNTIME_DIR: xdg, HOME: sandbox };
  const asNobody = (args: string[]): SpawnSyncReturns<string> =>
    spawnSync(runtimePath, args, { uid: NOBODY, gid: NOBODY, env, encoding: 'utf8', timeout: 60_000, cwd: sandbox });

  const spec = asNobody(['spec', '--rootless', '--bundle', bundle]);
  t.equal(spec.status, 0, `spec --rootless as nobody (${spec.stderr})`);
  const configPath = path.join(bundle, 'config.json');
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as { process: { terminal: boolean; args: string[] }; linux: { uidMappings: { hostID: number }[] } };
  t.equal(config.linux.uidMappings[0]?.hostID, NOBODY, "the rootless config maps the caller's own uid");
  config.process.terminal = false;
  config.process.args = ['sh', '-c', 'echo "@@uid $(id -u)"; echo "@@map $(cat /proc/self/uid_map)"; echo "@@pid $$"; echo x > /dev/null && echo "@@null ok"'];
  fs.writeFileSync(configPath, JSON.stringify(config));

  const id = `rootless-${process.pid}`;
  const run = asNobody(['run', '--bundle', bundle, id]);
  t.equal(run.status, 0, `run as nobody exits 0 (stderr: ${run.stderr})`);
  const f = parseFacts(run.stdout);
  t.equal(fact(f, 'uid'), '0', 'root inside');
  t.match((fact(f, 'map') ?? '').trim(), new RegExp(`^0\\s+${NOBODY}\\s+1$`), 'root inside is nobody outside');
  t.equal(fact(f, 'pid'), '1', 'pid 1 in its own pid namespace');
  t.equal(fact(f, 'null'), 'ok', '/dev/null works (bound from the host)');
  t.match(run.stderr, /cgroups skipped: .*permission denied/, 'a clear note that cgroups were skipped');
  t.same(fs.readdirSync(path.join(xdg, 'tsrun')), [], 'state lived under $XDG_RUNTIME_DIR/tsrun and is gone after run');
});
