/**
 * Two ways of setting up the root that runtime-spec allows and engines use: a config without a
 * mount namespace (the container shares the caller's, as with runc), and a shared rootfs
 * propagation, where mounts made after start travel between the host and the container. Each
 * runs on the runtime under test and on runc, on the same bundle.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { makeGate, runDetached, waitForStatus } from '../helpers/container';
import { mountsUnder, nsId } from '../helpers/host';
import type { OciSpec } from '../helpers/oci';
import { requires } from '../helpers/requires';
import { describe, runcPath, type Runtime } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

/** What a container without a mount namespace must leave out: each would change the caller's mounts. */
function withoutMountNs(s: OciSpec): void {
  s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'mount');
  delete s.linux.maskedPaths;
  delete s.linux.readonlyPaths;
  s.root.readonly = false;
}

const readOr = (file: string): string => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
};

t.test('a config without a mount namespace runs in the caller\'s, chrooted to the rootfs', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t);
  const gate = makeGate(b);
  fs.writeFileSync(path.join(b.rootfs, 'marker'), 'in the rootfs\n');
  b.writeSpec((s) => {
    withoutMountNs(s);
    s.mounts.push(gate.mount);
    s.process.args = ['sh', '-c', `readlink /proc/self/ns/mnt > /ctl/mnt; cat /marker > /ctl/marker; grep -c . /proc/self/mounts > /ctl/mounts; ${gate.wait}`];
  });
  const c = runDetached(b);
  t.ok(await waitFor(() => readOr(path.join(gate.hostDir, 'mounts')) !== ''), 'the process ran');
  t.equal(readOr(path.join(gate.hostDir, 'mnt')), nsId('self', 'mnt'), 'it is in our mount namespace');
  t.equal(readOr(path.join(gate.hostDir, 'marker')), 'in the rootfs', 'its root is the rootfs');
  t.ok(mountsUnder(b.rootfs).length > 0, `its mounts are in our namespace, under the rootfs (${mountsUnder(b.rootfs).length})`);
  t.equal(nsId(c.pid, 'mnt'), nsId('self', 'mnt'), 'init shares our mount namespace');

  // exec has no mount namespace to join: it must still land in the rootfs, not in our root.
  const ex = b.rt.exec(['exec', c.id, 'cat', '/marker']);
  t.equal(ex.code, 0, `exec runs (${describe(ex)})`);
  t.equal(ex.stdout.trim(), 'in the rootfs', 'exec sees the rootfs as /');

  gate.open();
  t.ok(await waitForStatus(b.rt, c.id, 'stopped'), 'the container stops');
  const del = b.rt.delete(c.id);
  t.equal(del.code, 0, `delete (${describe(del)})`);
  t.same(mountsUnder(b.rootfs), [], 'delete takes the mounts made in our namespace down again');

  // What a config without a mount namespace cannot have is refused, naming the field.
  for (const [field, patch] of [
    ['linux.maskedPaths', (s: OciSpec) => void (s.linux.maskedPaths = ['/proc/kcore'])],
    ['linux.readonlyPaths', (s: OciSpec) => void (s.linux.readonlyPaths = ['/proc/sys'])],
    ['root.readonly', (s: OciSpec) => void (s.root.readonly = true)],
    ['linux.rootfsPropagation', (s: OciSpec) => void (s.linux.rootfsPropagation = 'rshared')],
  ] as const) {
    b.writeSpec(patch);
    const r = b.rt.create(b.newId(), b.dir);
    t.not(r.code, 0, `${field} without a mount namespace is refused`);
    t.match(r.stderr, new RegExp(`${field.replace('.', '\\.')}: needs a mount namespace`), `naming ${field}`);
    b.writeSpec((s) => {
      withoutMountNs(s);
      delete s.linux.rootfsPropagation;
    });
  }
  t.same(mountsUnder(b.sandbox), [], 'the refused creates left no mount');
});

t.test('runc runs the same config without a mount namespace', async (t) => {
  if (!requires(t, 'root', 'busybox', 'runc', 'not-runc')) return;
  const b = makeBundle(t);
  fs.writeFileSync(path.join(b.rootfs, 'marker'), 'in the rootfs\n');
  b.writeSpec((s) => {
    withoutMountNs(s);
    s.process.args = ['cat', '/marker'];
  });
  // runc makes "/" of the caller's namespace a slave and leaves its mounts there: give it a
  // throwaway namespace, so this machine's mount table stays as it is.
  const ref = b.runtime(runcPath ?? 'runc');
  const id = b.newId();
  (ref.ids as Set<string>).add(id);
  const r = spawnSync('unshare', ['--mount', '--propagation', 'slave', '--', ref.binary, ...ref.argv(['run', id, '--bundle', b.dir], false)], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `runc run exits 0 (${r.stderr.trim()})`);
  t.equal(r.stdout.trim(), 'in the rootfs', 'runc too chroots to the rootfs');
});

/** Run mount(8) with `args`; throws with its message when it fails. */
function mount(args: readonly string[]): void {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
}

function umount(dir: string): void {
  spawnSync('umount', ['--lazy', dir], { stdio: 'ignore' });
}

for (const rootfsPropagation of ['shared', 'rshared']) {
  t.test(`rootfsPropagation ${rootfsPropagation}: mounts made after start propagate both ways through a shared bind`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const b = makeBundle(t);
    const gate = makeGate(b);
    // A host directory that is a shared mount of its own, bound into the container with rshared.
    const shared = b.hostDir('shared');
    mount(['--bind', shared, shared]);
    mount(['--make-shared', shared]);
    b.writeSpec((s) => {
      s.linux.rootfsPropagation = rootfsPropagation;
      s.mounts.push(gate.mount, { destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rshared'] });
      for (const set of ['bounding', 'effective', 'permitted'] as const) s.process.capabilities?.[set]?.push('CAP_SYS_ADMIN');
      s.process.args = ['sh', '-c', [
        'mkdir -p /shared/fromct && mount -t tmpfs fromct /shared/fromct && touch /ctl/mounted',
        gate.wait,
        'grep -c " /shared/fromhost " /proc/self/mountinfo > /ctl/seen',
        'umount /shared/fromct',
      ].join('; ')];
    });
    const runtimes: Runtime[] = [b.rt, ...(runcPath !== undefined && b.rt.name !== 'runc' ? [b.runtime(runcPath)] : [])];
    for (const rt of runtimes) {
      for (const f of ['mounted', 'seen', 'go']) fs.rmSync(path.join(gate.hostDir, f), { force: true });
      fs.mkdirSync(path.join(shared, 'fromhost'), { recursive: true });
      const id = b.newId();
      const c = runDetached({ ...b, rt } as Bundle, { id });
      t.ok(await waitFor(() => fs.existsSync(path.join(gate.hostDir, 'mounted'))), `${rt.name}: the container mounted a tmpfs under /shared`);
      t.ok(mountsUnder(path.join(shared, 'fromct')).length > 0, `${rt.name}: that mount reached the host`);
      mount(['-t', 'tmpfs', 'fromhost', path.join(shared, 'fromhost')]);
      gate.open();
      t.ok(await waitFor(() => readOr(path.join(gate.hostDir, 'seen')) !== ''), `${rt.name}: the container looked`);
      t.equal(readOr(path.join(gate.hostDir, 'seen')), '1', `${rt.name}: the host's later mount reached the container`);
      t.ok(await waitForStatus(rt, c.id, 'stopped'), `${rt.name}: the container stops`);
      umount(path.join(shared, 'fromhost'));
      umount(path.join(shared, 'fromct'));
      t.equal(rt.delete(c.id).code, 0, `${rt.name}: delete`);
    }
    // Before the bundle's teardown, which counts every mount under the sandbox as a leak.
    umount(shared);
  });
}
