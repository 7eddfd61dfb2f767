/**
 * `tsctl commit`: a running container that adds, changes and deletes files (the deletion must
 * become a whiteout) is committed with -a, -m and --change; the new image runs at once (its chain
 * unpacked), keeps the changes, the config changes and the container's command, and `history`
 * shows the entry. Committing a stopped container, a rootfs-directory container and a bad
 * --change are checked too; rmi lets the collector take the new layer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { buildOciLayout, ociArchive } from '../helpers/images';
import { which } from '../helpers/host';
import { startTsctl, tsctlMissing, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';

const why = tsctlMissing() ?? (which('tar') === undefined ? 'tar not installed' : undefined);
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
let e: TsctlEnv;
const BASE = 'docker.io/library/tsrunimg:base';

function ok(t: Test, args: string[]): string {
  const r = e.tsctl(args);
  t.equal(r.status, 0, `tsctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

function snapshotKeys(): string[] {
  return e.d.ctr(['snapshots', 'ls'], { ns: e.ns }).stdout.split('\n').slice(1).map((l) => l.split(/\s+/)[0] ?? '').filter((k) => k !== '');
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  // each commit diffs, gzips and unpacks a layer: slow on a loaded machine
  t.setTimeout(600_000);
  t.before(async () => {
    e = await startTsctl(t);
    const work = path.join(e.d.sandbox, 'images');
    fs.mkdirSync(work);
    const img = buildOciLayout(work, BASE);
    const r = e.d.ctr(['images', 'import', ociArchive(img, path.join(work, 'base.tar'))], { ns: e.ns });
    if (r.status !== 0) throw new Error(`ctr images import: ${r.stderr}`);
  });

  t.test('commit a running container: adds, changes, deletes; --change; history', async (t) => {
    ok(t, ['run', '-d', '--name', 'c1', 'tsrunimg:base', 'sh', '-c', 'mkdir /added; echo new > /added/file; echo changed > /etc/motd; rm /keep/new; echo ready > /ready; sleep 100']);
    let ready = '';
    for (let i = 0; i < 100 && ready !== 'ready\n'; i++) {
      ready = e.tsctl(['exec', 'c1', 'cat', '/ready']).stdout;
      if (ready !== 'ready\n') await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(ready, 'ready\n', 'the container made its changes');
    const out = ok(t, ['commit', '-a', 'Jane <jane@example.com>', '-m', 'a message', '-c', 'ENV X=from-change', '-c', 'CMD ["cat", "/added/file"]', '-c', 'EXPOSE 8080', 'c1', 'committed:one']);
    t.match(out, /^sha256:[0-9a-f]{64}\n$/, 'prints the image id');
    t.equal(ok(t, ['inspect', '-f', '{{.State.Status}}', 'c1']), 'running\n', 'paused during commit, running again after');
    ok(t, ['rm', '-f', 'c1']);
    t.equal(ok(t, ['run', '--rm', 'committed:one']), 'new\n', 'the --change CMD runs');
    t.equal(ok(t, ['run', '--rm', 'committed:one', 'sh', '-c', 'cat /etc/motd; test -e /keep/new || echo gone; echo $X $FOO; pwd']), 'changed\ngone\nfrom-change bar\n/data\n', 'changed file, whiteout, ENV kept and added, WorkingDir kept');
    const [info] = JSON.parse(ok(t, ['image', 'inspect', 'committed:one'])) as Array<{ Id: string; Author?: string; Config: { ExposedPorts?: Record<string, unknown>; Cmd: string[] }; RootFS: { Layers: string[] } }>;
    t.equal(info?.Id, out.trim());
    t.equal(info?.RootFS.Layers.length, 4, 'one layer on the base\'s three');
    t.ok(info?.Config.ExposedPorts?.['8080/tcp'] !== undefined, 'EXPOSE applied');
    const hist = ok(t, ['history', '--no-trunc', 'committed:one']).split('\n');
    t.match(hist[1], /sh -c mkdir \/added.*a message/, `the newest entry is the commit: ${hist[1]}`);
  });

  t.test('commit a stopped container without a name: an untagged image; an empty change set', async (t) => {
    ok(t, ['run', '--name', 'c2', 'tsrunimg:base', 'sh', '-c', 'echo two > /two']);
    const id = ok(t, ['commit', 'c2']).trim();
    t.match(id, /^sha256:[0-9a-f]{64}$/);
    t.equal(ok(t, ['run', '--rm', `untagged@${id}`, 'cat', '/two']), 'two\n', 'runs by untagged@<id>');
    ok(t, ['rm', 'c2']);
    ok(t, ['run', '--name', 'c3', 'tsrunimg:base', 'true']);
    ok(t, ['commit', 'c3', 'committed:empty']);
    const [info] = JSON.parse(ok(t, ['image', 'inspect', 'committed:empty'])) as Array<{ RootFS: { Layers: string[] } }>;
    t.equal(info?.RootFS.Layers.length, 3, 'no changes: no layer (history has empty_layer)');
    ok(t, ['rm', 'c3']);
  });

  t.test('errors: a rootfs-directory container, a bad --change, an unknown container', async (t) => {
    const rootfs = path.join(e.d.sandbox, 'rootfs-for-commit');
    fs.cpSync(e.d.rootfs, rootfs, { recursive: true, verbatimSymlinks: true });
    ok(t, ['run', '--name', 'dir', rootfs, 'true']);
    let r = e.tsctl(['commit', 'dir', 'x:y']);
    t.not(r.status, 0, show(r));
    t.match(r.stderr, 'runs on a rootfs directory, not an image');
    ok(t, ['rm', 'dir']);
    ok(t, ['run', '--name', 'c4', 'tsrunimg:base', 'true']);
    const before = snapshotKeys();
    r = e.tsctl(['commit', '-c', 'RUN echo no', 'c4', 'x:y']);
    t.equal(r.status, 125, show(r));
    t.match(r.stderr, 'RUN is not a valid change command');
    t.same(snapshotKeys(), before, 'nothing made');
    ok(t, ['rm', 'c4']);
    r = e.tsctl(['commit', 'nosuch']);
    t.equal(r.status, 1, show(r));
    t.match(r.stderr, 'No such container: nosuch');
  });

  t.test('rmi of the committed image lets the collector take its layer', async (t) => {
    const [info] = JSON.parse(ok(t, ['image', 'inspect', 'committed:one'])) as Array<{ RootFS: { Layers: string[] } }>;
    const layers = info?.RootFS.Layers ?? [];
    const chain = snapshotKeys().length;
    ok(t, ['rmi', 'committed:one']);
    t.ok(snapshotKeys().length < chain, 'its chain snapshot went');
    const content = e.d.ctr(['content', 'ls'], { ns: e.ns }).stdout;
    t.notMatch(content, layers[layers.length - 1] ?? 'none', 'no blob labelled with the new diff id is left');
  });
}
