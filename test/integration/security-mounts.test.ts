/**
 * Mounts inside /proc (issue 12, item 3). A bind over /proc/sys/kernel or /proc/self/attr would
 * undo the masked and read-only paths; runc refuses any mount inside /proc ("cannot be mounted
 * because it is inside /proc") except the procfs at /proc and the files lxcfs emulates. The
 * check must hold on the path the destination resolves to in the rootfs, so an image symlink
 * (/x -> /proc/sys/kernel) cannot get around it. Runs against runc too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

for (const [name, destination, symlink] of [
  ['/proc/sys/kernel named directly', '/proc/sys/kernel', undefined],
  ['/proc/self/attr named directly', '/proc/self/attr', undefined],
  ['an image symlink /x -> /proc/sys/kernel', '/x', '/proc/sys/kernel'],
  ['a relative image symlink /y -> proc/sys', '/y', 'proc/sys'],
] as const) {
  t.test(`a bind mount onto ${name} is refused`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const b = makeBundle(t, {
      args: ['sh', '-c', 'cat /proc/sys/kernel/hostname; ls /proc/sys/kernel | head -n 3'],
      patch: (s, p) => {
        if (symlink !== undefined) fs.symlinkSync(symlink, path.join(p.rootfs, destination));
        s.mounts.push({ destination, type: 'bind', source: p.sandbox, options: ['rbind', 'ro'] });
      },
    });
    fs.writeFileSync(path.join(b.sandbox, 'planted'), 'x');
    const r = b.rt.run(b.id, b.dir);
    t.not(r.code, 0, `run fails (${describe(r)})`);
    t.match(r.stderr, /cannot be mounted because it is inside \/proc/, "runc's wording");
    if (runtimeName === 'tsrun') t.match(r.stderr, symlink === undefined ? /mounts\[\d+\]\.destination/ : /check proc-safety of \/[xy] mount: \/proc\/sys/, 'the error names the mount and where it resolved');
    t.notMatch(r.stdout, /planted/, 'the container never saw the bound directory');
    t.same(b.leftovers(), [], 'nothing left under the root');
  });
}

t.test('the lxcfs-style files inside /proc may still be bound over', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['cat', '/proc/uptime'],
    patch: (s, p) => {
      const file = path.join(p.sandbox, 'uptime');
      fs.writeFileSync(file, '4242.00 1.00\n');
      s.mounts.push({ destination: '/proc/uptime', type: 'bind', source: file, options: ['bind', 'ro'] });
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  t.match(r.stdout, /^4242\.00 1\.00/, 'the container reads the bound file');
});

t.test('a tmpfs onto /proc itself is refused: /proc takes only a procfs', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['true'],
    patch: (s) => {
      s.mounts = s.mounts.map((m) => (m.destination === '/proc' ? { destination: '/proc', type: 'tmpfs', source: 'tmpfs' } : m));
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.not(r.code, 0, `run fails (${describe(r)})`);
  // runc 1.1 refuses too, in older words (it stats the source "tmpfs").
  if (runtimeName === 'tsrun') t.match(r.stderr, /cannot be mounted because it is not of type proc/, "runc's current wording");
});
