/**
 * Security guarantees that need a real container: init is non-dumpable from the start (its own
 * report, since the kernel also resets dumpable on a uid change and would hide a missing prctl);
 * a cwd that points outside the container through a leaked fd is refused (the CVE-2024-21626
 * class); each container gets its own session keyring unless --no-new-keyring. One file per
 * further class: security-ids (out-of-range ids), security-mounts (mounts inside /proc),
 * security-input (unbounded config files, bad namespace paths, --preserve-fds);
 * docs/security.md lists them all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

t.test('init reports itself non-dumpable when set-up ends (tsrun --debug)', async (t) => {
  if (!requires(t, 'root', 'busybox', 'not-runc')) return;
  const b = makeBundle(t, { args: ['true'] });
  const log = path.join(b.sandbox, 'debug.log');
  const r = b.rt.exec(['--debug', '--log', log, 'run', '--bundle', b.dir, b.id]);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const text = fs.readFileSync(log, 'utf8');
  t.match(text, /init reports: dumpable=0 nspid=1/, 'PR_GET_DUMPABLE was 0 in init, which is pid 1 in its namespace');
  t.notMatch(text, /level=error/, 'no error line on success');
});

t.test('a cwd reaching outside the root through a preserved fd is refused', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'pwd; ls'],
    patch: (s) => {
      s.process.cwd = '/proc/self/fd/3';
    },
  });
  const hostDir = b.hostDir('outside');
  fs.writeFileSync(path.join(hostDir, 'host-secret'), 'x');
  const fd = fs.openSync(hostDir, 'r');
  t.teardown(() => fs.closeSync(fd));
  const r = b.rt.run(b.id, b.dir, { preserveFds: 1, extraFds: [fd] });
  t.not(r.code, 0, `run fails (${describe(r)})`);
  t.notMatch(r.stdout, /host-secret/, 'the process never listed the host directory');
  // Resolving the cwd inside the root refuses the /proc magic link outright (ELOOP); the getcwd
  // check after chdir ("is outside the container root") is the second line behind it.
  if (runtimeName === 'tsrun') t.match(r.stderr, /cwd.*\/proc\/self\/fd\/3/, 'the error names the cwd');
  t.same(fs.readdirSync(b.rt.root), [], 'nothing left under the root');
});

t.test('a new session keyring per container unless --no-new-keyring', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'cat /proc/keys'],
    patch: (s) => {
      s.linux.maskedPaths = (s.linux.maskedPaths ?? []).filter((p) => p !== '/proc/keys');
    },
  });
  const own = b.rt.run(b.id, b.dir);
  t.equal(own.code, 0, `run exits 0 (${describe(own)})`);
  t.match(own.stdout, new RegExp(`keyring\\s+_ses\\.${b.id}:`), 'the container joined a keyring named _ses.<id>');
  const id2 = b.newId();
  const shared = b.rt.exec(['run', '--no-new-keyring', '--bundle', b.dir, id2]);
  t.equal(shared.code, 0, `run --no-new-keyring exits 0 (${describe(shared)})`);
  t.notMatch(shared.stdout, new RegExp(`_ses\\.${id2}:`), 'no keyring of its own with --no-new-keyring');
});

t.test('a created init cannot be reached through /proc from a process sharing its pid namespace', async (t) => {
  // The CVE-2019-5736 class: before exec, init is a copy of the runtime (here /proc/1/exe is
  // node). Being non-dumpable keeps other processes, even root ones in the container, from
  // opening /proc/1/exe, /proc/1/fd or /proc/1/mem.
  if (!requires(t, 'root', 'busybox')) return;
  if (runtimeName === 'runc') {
    t.plan(0, 'runc guards this with a sealed memfd copy of itself instead, so its /proc/1/exe is readable by design');
    return;
  }
  const a = makeBundle(t, { args: ['true'] });
  const created = a.rt.create(a.id, a.dir, { pidFile: a.pidFile });
  t.equal(created.code, 0, `create exits 0 (${describe(created)})`);
  const initPid = Number(fs.readFileSync(a.pidFile, 'utf8'));
  const b = makeBundle(t, {
    args: ['sh', '-c', [
      'cat /proc/1/exe > /dev/null 2>&1 && echo "@@exe readable" || echo "@@exe denied"',
      'readlink /proc/1/cwd > /dev/null 2>&1 && echo "@@cwd readable" || echo "@@cwd denied"',
      'echo "@@comm $(cat /proc/1/comm)"',
    ].join('; ')],
    patch: (s) => {
      delete s.hostname;
      s.linux.namespaces = [{ type: 'mount' }, { type: 'pid', path: `/proc/${initPid}/ns/pid` }];
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run in the created container's pid namespace exits 0 (${describe(r)})`);
  t.match(r.stdout, /@@exe denied/, '/proc/1/exe of the created init cannot be opened');
  t.match(r.stdout, /@@cwd denied/, "/proc/1/cwd of the created init cannot be followed (no way into the host's view)");
  t.equal(a.rt.delete(a.id, { force: true }).code, 0, 'delete the created container');
});
