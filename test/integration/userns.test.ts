/**
 * A new user namespace with id maps written by the runtime: init is root inside and an
 * unprivileged uid outside; files it creates belong to the mapped host uid; default devices still
 * work (mknod is not allowed in a user namespace, so they are bound from the host).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import type { OciSpec } from '../helpers/oci';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

const HOST_BASE = 200000;

/** A new user namespace whose 0..65535 are HOST_BASE.. on the host, and a writable root. */
function inUserns(s: OciSpec): void {
  s.linux.namespaces.push({ type: 'user' });
  s.linux.uidMappings = [{ containerID: 0, hostID: HOST_BASE, size: 65536 }];
  s.linux.gidMappings = [{ containerID: 0, hostID: HOST_BASE, size: 65536 }];
  s.root.readonly = false;
}

/** The mapped root is an unprivileged host uid: it must be able to walk down to the rootfs. */
function openPath(b: { sandbox: string; dir: string }): void {
  fs.chmodSync(b.sandbox, 0o711);
  fs.chmodSync(b.dir, 0o711);
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  const st = fs.lstatSync(p);
  if (st.isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

t.test('root inside a user namespace, an unprivileged uid outside', async (t) => {
  if (!requires(t, 'root', 'busybox', 'userns')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', [
      'echo "@@uid $(id -u)"',
      'echo "@@map $(cat /proc/self/uid_map)"',
      'touch /tmp/made-inside && echo "@@touch ok"',
      'echo hi > /dev/null && echo "@@devnull ok"',
      'echo "@@userns $(readlink /proc/self/ns/user)"',
    ].join('; ')],
    patch: (s) => {
      inUserns(s);
    },
  });
  openPath(b);
  chownTree(b.rootfs, HOST_BASE, HOST_BASE);
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'uid'), '0', 'root inside');
  t.match((fact(f, 'map') ?? '').trim(), new RegExp(`^0\\s+${HOST_BASE}\\s+65536$`), 'the uid map the config asked for');
  t.equal(fact(f, 'touch'), 'ok', 'can write its own rootfs');
  t.equal(fact(f, 'devnull'), 'ok', '/dev/null works');
  t.not(fact(f, 'userns'), fs.readlinkSync('/proc/self/ns/user'), 'a user namespace of its own');
  t.equal(fs.statSync(path.join(b.rootfs, 'tmp', 'made-inside')).uid, HOST_BASE, 'the file belongs to the mapped host uid');
});

t.test('a user namespace without the rootfs chowned cannot write the image', async (t) => {
  if (!requires(t, 'root', 'busybox', 'userns')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'touch /bin/x 2>/dev/null && echo "@@touch ok" || echo "@@touch denied"'],
    patch: (s) => {
      inUserns(s);
    },
  });
  openPath(b);
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  t.equal(fact(parseFacts(r.stdout), 'touch'), 'denied', 'host root is not root inside: the image stays read-only to it');
});

t.test('an idmapped bind mount gives the container root a host directory owned by root', async (t) => {
  if (!requires(t, 'root', 'busybox', 'userns')) return;
  if (runtimeName === 'runc') {
    t.plan(0, 'runc 1.1 has no idmapped mounts');
    return;
  }
  const b = makeBundle(t, {
    args: ['sh', '-c', 'echo "@@idmapped $(stat -c %u /data/f)"; echo "@@plain $(stat -c %u /plain/f)"; touch /data/made && echo "@@write ok"'],
    patch: (s) => {
      inUserns(s);
    },
  });
  openPath(b);
  chownTree(b.rootfs, HOST_BASE, HOST_BASE);
  const host = b.hostDir('shared');
  fs.chmodSync(host, 0o755);
  fs.writeFileSync(path.join(host, 'f'), 'root-owned on the host\n');
  b.writeSpec((s) => {
    const mapping = [{ containerID: 0, hostID: HOST_BASE, size: 65536 }];
    s.mounts.push({ destination: '/data', type: 'bind', source: host, options: ['rbind', 'idmap'], uidMappings: mapping, gidMappings: mapping });
    s.mounts.push({ destination: '/plain', type: 'bind', source: host, options: ['bind'] });
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'idmapped'), '0', 'through the idmapped mount the file is root\'s');
  t.equal(fact(f, 'plain'), '65534', 'through a plain bind it is an unmapped id');
  t.equal(fact(f, 'write'), 'ok', 'the container root can write there');
  t.equal(fs.statSync(path.join(host, 'made')).uid, 0, 'and what it writes is owned by root on disk');
});
