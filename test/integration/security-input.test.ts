/**
 * Bad input refused cleanly (issue 12, item 4, and --preserve-fds). config.json and exec's
 * process.json are read only as regular files within a size cap (a /dev/zero config used to be
 * read until memory ran out, a FIFO hung forever); a namespace path that is missing, is no
 * namespace or is of the wrong type is named before anything is cloned; and --preserve-fds N
 * hands over only fds the caller passed, never tsrun's own.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { runDetached } from '../helpers/container';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

const RUNC_READS_ANYTHING = 'runc 1.1 reads a /dev/zero config.json until memory runs out and blocks on a FIFO: the behaviour refused here';

t.test('config.json that is /dev/zero, a FIFO or over the cap is refused at once, naming the file', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (runtimeName === 'runc') {
    t.plan(0, RUNC_READS_ANYTHING);
    return;
  }
  const b = makeBundle(t, { args: ['true'] });
  const config = b.configPath;
  const cases: [string, () => void, RegExp][] = [
    ['/dev/zero', () => fs.symlinkSync('/dev/zero', config), /config\.json: is a character device, not a regular file/],
    ['a FIFO', () => spawnSync('mkfifo', [config]), /config\.json: is a fifo, not a regular file/],
    ['65 MiB', () => fs.writeFileSync(config, Buffer.alloc(65 * 1024 * 1024, 0x20)), /config\.json: larger than the limit of 64 MiB/],
  ];
  for (const [what, make, message] of cases) {
    fs.rmSync(config, { force: true });
    make();
    const r = b.rt.exec(['create', '--bundle', b.dir, b.newId()], { timeoutMs: 20_000 });
    t.not(r.code, 0, `${what}: create fails (${describe(r)})`);
    t.equal(r.signal, null, `${what}: create ended by itself, not by the timeout`);
    t.match(r.stderr, message, `${what}: the error names the file and why`);
    t.same(b.leftovers(), [], `${what}: nothing left under the root`);
  }
  fs.rmSync(config, { force: true });
});

t.test('exec --process /dev/zero is refused naming the file', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (runtimeName === 'runc') {
    t.plan(0, RUNC_READS_ANYTHING);
    return;
  }
  const b = makeBundle(t, { args: ['sleep', '1000'] });
  runDetached(b);
  const r = b.rt.exec(['exec', '--process', '/dev/zero', b.id], { timeoutMs: 20_000 });
  t.not(r.code, 0, `exec fails (${describe(r)})`);
  t.match(r.stderr, /\/dev\/zero: is a character device, not a regular file/, 'the error names the file and why');
});

t.test('a namespace path that is missing, no namespace, or of the wrong type is named before cloning', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
  t.teardown(() => sleeper.kill('SIGKILL'));
  const other = sleeper.pid!;
  const b = makeBundle(t, { args: ['true'] });
  const plain = path.join(b.sandbox, 'plain-file');
  fs.writeFileSync(plain, 'x');
  const cases: [string, string, RegExp][] = [
    ['missing', '/nonexistent/ns/net', /linux\.namespaces\[\d\]\.path \/nonexistent\/ns\/net: no such file or directory/],
    ['a regular file', plain, /plain-file: not a namespace file/],
    ['a mount namespace listed as network', `/proc/${other}/ns/mnt`, new RegExp(`/proc/${other}/ns/mnt: is a mnt namespace, not net`)],
  ];
  for (const [what, nsPath, message] of cases) {
    b.writeSpec((s) => {
      s.linux.namespaces = s.linux.namespaces.filter((ns) => ns.type !== 'network').concat([{ type: 'network', path: nsPath }]);
    });
    const r = b.rt.run(b.newId(), b.dir);
    t.not(r.code, 0, `${what}: run fails (${describe(r)})`);
    if (runtimeName === 'tsrun') {
      t.match(r.stderr, message, `${what}: the error names the field, the path and why`);
      t.notMatch(r.stderr, /sync message|epipe|econnreset/i, `${what}: not a broken sync socket`);
    }
    t.same(b.leftovers(), [], `${what}: nothing left under the root`);
  }
  b.writeSpec((s) => {
    s.linux.namespaces = s.linux.namespaces.filter((ns) => ns.type !== 'network').concat([{ type: 'network', path: `/proc/${other}/ns/net` }]);
  });
  const ok = b.rt.run(b.newId(), b.dir);
  t.equal(ok.code, 0, `the right type joins fine (${describe(ok)})`);
});

t.test('--preserve-fds never hands over fds the caller did not pass', async (t) => {
  // With fds 3..5 closed in the caller, node's own epoll and pipe fds sit at 3..5 in tsrun.
  if (!requires(t, 'root', 'busybox')) return;
  if (runtimeName === 'runc') {
    t.plan(0, 'runc 1.1 hands over its own fds there (its /sys/fs/cgroup O_PATH fd, its epoll and a pipe)');
    return;
  }
  const b = makeBundle(t, { args: ['sh', '-c', 'ls -l /proc/self/fd/'] });
  const closed = b.rt.run(b.id, b.dir, { preserveFds: 3 });
  t.not(closed.code, 0, `run --preserve-fds 3 with fds 3-5 closed fails (${describe(closed)})`);
  t.notMatch(closed.stdout, /eventpoll|eventfd|pipe:/, 'no fd of tsrun reached the container');
  t.match(closed.stderr, /--preserve-fds 3: fd 3 was not passed to tsrun/, 'the error names the fd');
  t.same(b.leftovers(), [], 'nothing left under the root');

  const fd = fs.openSync(b.configPath, 'r');
  t.teardown(() => fs.closeSync(fd));
  const passed = b.rt.run(b.newId(), b.dir, { preserveFds: 1, extraFds: [fd] });
  t.equal(passed.code, 0, `run --preserve-fds 1 with fd 3 passed works (${describe(passed)})`);
  t.match(passed.stdout, /3 -> .*config\.json/, 'the container got the passed fd');
});
