/**
 * Every way `create` can fail must exit 1, say why (the wording engines match on where it
 * matters), append exactly one JSON error line to --log, write no pid file, and leave
 * nothing behind: no entry under --root, no process of the bundle, no cgroup, no mount.
 *
 * `both` patterns must match under any runtime; `tsrunOnly` patterns encode tsrun's
 * "what failed: why, with the path" rule where runc 1.1.5 words it differently (e.g. its
 * invalid-JSON message does not name config.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { isErrorLogLine, logLines } from '../helpers/container';
import { requires } from '../helpers/requires';
import { combined, describe, runtimeName } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

interface Case {
  name: string;
  /** Break the bundle; may return another id or bundle directory to pass to create. */
  setup: (b: Bundle) => { id?: string; bundleDir?: string } | void;
  both: RegExp[];
  tsrunOnly?: RegExp[];
}

const cases: Case[] = [
  {
    name: 'missing config.json',
    setup: (b) => fs.rmSync(b.configPath),
    both: [/config\.json/],
  },
  {
    name: 'invalid JSON in config.json',
    setup: (b) => fs.writeFileSync(b.configPath, '{"ociVersion": "1.0.2", bad'),
    both: [],
    tsrunOnly: [/config\.json/],
  },
  {
    name: 'missing rootfs',
    setup: (b) =>
      b.writeSpec((s) => {
        s.root.path = 'no-such-rootfs';
      }),
    both: [/no-such-rootfs/, /no such file or directory/],
  },
  {
    name: 'missing executable',
    setup: (b) =>
      b.writeSpec((s) => {
        s.process.args = ['/bin/nonexistent'];
      }),
    // docker maps "no such file or directory" (case-sensitive) to 127, podman likewise.
    both: [/no such file or directory/, /\/bin\/nonexistent/],
  },
  {
    name: 'executable without the x bit',
    setup: (b) => {
      fs.writeFileSync(path.join(b.rootfs, 'etc', 'not-executable'), '#!/bin/sh\n', { mode: 0o644 });
      b.writeSpec((s) => {
        s.process.args = ['/etc/not-executable'];
      });
    },
    // docker and podman map "permission denied" to 126.
    both: [/permission denied/, /\/etc\/not-executable/],
  },
  {
    name: 'relative cwd',
    setup: (b) =>
      b.writeSpec((s) => {
        s.process.cwd = 'tmp';
      }),
    both: [/cwd/i],
  },
  {
    name: 'mount of an unknown filesystem type',
    setup: (b) =>
      b.writeSpec((s) => {
        s.mounts.push({ destination: '/mnt', type: 'nosuchfs', source: 'none' });
      }),
    both: [/\/mnt/, /no such device/],
  },
  {
    name: 'hostname without a uts namespace',
    setup: (b) =>
      b.writeSpec((s) => {
        s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'uts');
      }),
    both: [/hostname/i, /uts/i],
  },
  {
    name: 'unknown namespace type',
    setup: (b) =>
      b.writeSpec((s) => {
        s.linux.namespaces.push({ type: 'bogus' });
      }),
    both: [/bogus/],
  },
  { name: 'id with a slash', setup: () => ({ id: 'a/b' }), both: [/container id/i] },
  { name: 'empty id', setup: () => ({ id: '' }), both: [/container id/i] },
  { name: 'id ".."', setup: () => ({ id: '..' }), both: [/container id/i] },
  {
    name: 'bundle is a regular file',
    setup: (b) => {
      const file = path.join(b.sandbox, 'not-a-bundle');
      fs.writeFileSync(file, '{}');
      return { bundleDir: file };
    },
    both: [/not a directory/],
  },
];

for (const c of cases) {
  t.test(`create fails cleanly: ${c.name}`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const b = makeBundle(t, { args: ['sleep', '100'], log: true });
    const { id = b.id, bundleDir = b.dir } = c.setup(b) ?? {};
    const r = b.rt.create(id, bundleDir, { pidFile: b.pidFile });

    t.equal(r.code, 1, `create exits 1 (${describe(r)})`);
    const text = combined(r);
    for (const re of c.both) t.match(text, re, `the message matches ${String(re)}`);
    if (runtimeName !== 'runc') for (const re of c.tsrunOnly ?? []) t.match(text, re, `the message matches ${String(re)}`);

    const lines = logLines(b.logFile);
    t.equal(lines.length, 1, 'exactly one line in --log');
    t.ok(isErrorLogLine(lines[0]), `a {"level":"error","msg","time"} line (${JSON.stringify(lines[0])})`);
    t.notOk(fs.existsSync(b.pidFile), 'no pid file was written');

    await waitFor(() => b.leftovers().length === 0, 3000);
    t.same(b.leftovers(), [], 'nothing left: no root entry, process, cgroup or mount');
    if (id !== '') t.equal(b.rt.state(id).code, 1, 'state says it does not exist');
  });
}
