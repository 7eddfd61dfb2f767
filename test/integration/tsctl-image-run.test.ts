/**
 * `tsctl run IMAGE` from tsrund's image store: the three-layer busybox image of
 * test/helpers/images.ts (and a variant of it with Entrypoint, User, WorkingDir and StopSignal in
 * its config) imported with the real ctr into tsctl's namespace, then run as docker would: the
 * config's Cmd, Entrypoint+Cmd, --entrypoint, Env/WorkingDir/User, a copy-on-write layer per
 * container, --read-only, VOLUME as an anonymous volume removed by rm -v, no snapshot or mount left
 * by rm, and docker's message for a missing image.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { buildOciLayout, ociArchive, type TestImage } from '../helpers/images';
import { which } from '../helpers/host';
import { startTsctl, tsctlMissing, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';

const why = tsctlMissing() ?? (which('tar') === undefined ? 'tar not installed' : undefined);
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
let e: TsctlEnv;
let img: TestImage;
const PLAIN = 'docker.io/library/tsrunimg:plain';
const ENTRY = 'docker.io/library/tsrunimg:entry';
const LINKED = 'docker.io/library/tsrunimg:linked';

function ok(t: Test, args: string[]): string {
  const r = e.tsctl(args);
  t.equal(r.status, 0, `tsctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

/**
 * A copy of the layout whose config's `config` gets `patch`, named `name`, with the directory
 * `extra` (if given) as one more layer; returned as an OCI archive.
 */
function variant(dir: string, name: string, patch: Record<string, unknown>, extra?: string): string {
  const tag = name.slice(name.lastIndexOf(':') + 1);
  const out = path.join(dir, `variant-${tag}`);
  fs.cpSync(img.layout, out, { recursive: true });
  const blob = (d: string): string => path.join(out, 'blobs', 'sha256', d.slice(7));
  const config = JSON.parse(fs.readFileSync(blob(img.configDigest), 'utf8')) as { config: Record<string, unknown>; rootfs: { diff_ids: string[] } };
  config.config = { ...config.config, ...patch };
  const manifest = JSON.parse(fs.readFileSync(blob(img.manifestDigest), 'utf8')) as { config: { digest: string; size: number }; layers: Array<{ mediaType: string; digest: string; size: number }> };
  if (extra !== undefined) {
    const layerTar = path.join(dir, `extra-${tag}.tar`);
    execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '-C', extra, '-cf', layerTar, '.']);
    const bytes = fs.readFileSync(layerTar);
    fs.writeFileSync(blob(sha(bytes)), bytes);
    config.rootfs.diff_ids.push(sha(bytes));
    manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(bytes), size: bytes.length });
  }
  const cbytes = Buffer.from(JSON.stringify(config));
  fs.writeFileSync(blob(sha(cbytes)), cbytes);
  manifest.config.digest = sha(cbytes);
  manifest.config.size = cbytes.length;
  const mbytes = Buffer.from(JSON.stringify(manifest));
  fs.writeFileSync(blob(sha(mbytes)), mbytes);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number; annotations: Record<string, string> }> };
  index.manifests[0]!.digest = sha(mbytes);
  index.manifests[0]!.size = mbytes.length;
  index.manifests[0]!.annotations['io.containerd.image.name'] = name;
  fs.writeFileSync(path.join(out, 'index.json'), JSON.stringify(index));
  const tar = path.join(dir, `variant-${tag}.tar`);
  execFileSync('tar', ['-C', out, '-cf', tar, 'oci-layout', 'index.json', 'blobs']);
  return tar;
}

function snapshotKeys(): string[] {
  const r = e.d.ctr(['snapshots', 'ls'], { ns: e.ns });
  return r.stdout.split('\n').slice(1).map((l) => l.split(/\s+/)[0] ?? '').filter((k) => k !== '');
}

function mounted(id: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(id);
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
    const work = path.join(e.d.sandbox, 'images');
    fs.mkdirSync(work);
    img = buildOciLayout(work, PLAIN);
    const plain = ociArchive(img, path.join(work, 'plain.tar'));
    const entry = variant(work, ENTRY, { Entrypoint: ['/bin/echo', 'entry'], Cmd: ['default'], User: 'nobody', WorkingDir: '/made/here', StopSignal: 'SIGUSR1', Env: ['PATH=/bin', 'FOO=entry'] });
    // /etc/passwd a symlink to an absolute path: it must resolve inside the image, never on the host
    const links = path.join(work, 'links');
    fs.mkdirSync(path.join(links, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(links, 'etc', 'passwd-in-image'), 'root:x:0:0:root:/root:/bin/sh\nalice:x:1234:4321::/:/bin/sh\n');
    fs.symlinkSync('/etc/passwd-in-image', path.join(links, 'etc', 'passwd'));
    const linked = variant(work, LINKED, { User: 'alice' }, links);
    // the last one not unpacked: run unpacks its top layer (Diff.Apply, Commit)
    for (const tar of [plain, entry, linked]) {
      const r = e.d.ctr(['images', 'import', ...(tar === linked ? ['--no-unpack'] : []), tar], { ns: e.ns });
      if (r.status !== 0) throw new Error(`ctr images import ${tar}: ${r.stderr}`);
    }
  });

  t.test('the image\'s Cmd, Env, WorkingDir; -e and -w override', async (t) => {
    t.equal(ok(t, ['run', '--rm', 'tsrunimg:plain']), '', 'the Cmd (/bin/sh) runs and ends at stdin\'s end');
    t.equal(ok(t, ['run', '--rm', 'tsrunimg:plain', 'sh', '-c', 'echo $FOO; pwd; cat /etc/motd; ls /keep']), 'bar\n/data\nlayer three\nnew\n');
    t.equal(ok(t, ['run', '--rm', '-e', 'FOO=mine', '-w', '/tmp', 'docker.io/library/tsrunimg:plain', 'sh', '-c', 'echo $FOO; pwd']), 'mine\n/tmp\n');
  });

  t.test('Entrypoint + Cmd, --entrypoint, User and a WorkingDir made', async (t) => {
    t.equal(ok(t, ['run', '--rm', 'tsrunimg:entry']), 'entry default\n');
    t.equal(ok(t, ['run', '--rm', 'tsrunimg:entry', 'given']), 'entry given\n');
    t.equal(ok(t, ['run', '--rm', '--entrypoint', '/bin/sh', 'tsrunimg:entry', '-c', 'id -u; id -g; pwd; echo $FOO']), '65534\n65534\n/made/here\nentry\n');
    t.equal(ok(t, ['run', '--rm', '-u', 'root', '--entrypoint', 'id', 'tsrunimg:entry', '-u']), '0\n');
    const id = ok(t, ['create', '--name', 'insp', 'tsrunimg:entry']).trim();
    const [info] = JSON.parse(ok(t, ['inspect', 'insp'])) as Array<{ Image: string; Config: { Image: string; Entrypoint: string[]; Cmd: string[]; StopSignal?: string } }>;
    t.same(info?.Config.Entrypoint, ['/bin/echo', 'entry']);
    t.same(info?.Config.Cmd, ['default']);
    t.equal(info?.Config.Image, 'tsrunimg:entry');
    t.equal(info?.Config.StopSignal, 'SIGUSR1');
    t.match(info?.Image, /^sha256:[0-9a-f]{64}$/);
    t.match(ok(t, ['ps', '-a']), /\stsrunimg:entry\s/, 'ps shows the image as given');
    t.ok(snapshotKeys().includes(id), 'the container has its snapshot');
    t.notMatch(e.d.ctr(['snapshots', 'info', id], { ns: e.ns }).stdout, 'gc.root', 'kept by the container record, not a gc.root label');
    ok(t, ['rm', '-v', 'insp']);
    t.notOk(snapshotKeys().includes(id), 'rm removed the snapshot');
  });

  t.test('User: /etc/passwd read inside the image, its symlinks resolved there', async (t) => {
    t.notOk(fs.existsSync('/etc/passwd-in-image'), 'the host has no such file (the link would dangle there)');
    const before = snapshotKeys();
    t.equal(ok(t, ['run', '--rm', 'tsrunimg:linked', 'sh', '-c', 'id -u; id -g; cat /etc/motd']), '1234\n4321\nlayer three\n');
    const added = snapshotKeys().filter((k) => !before.includes(k));
    t.equal(added.length, 1, `run unpacked the missing top layer, and only it: ${added.join(' ')}`);
    t.match(added[0] ?? '', /^sha256:[0-9a-f]{64}$/, 'committed under its chain id');
  });

  t.test('stop sends the image\'s StopSignal', async (t) => {
    // the shell traps USR1 (the image's STOPSIGNAL) and exits 7: stop must end it before its grace
    ok(t, ['run', '-d', '--name', 'sig', '--entrypoint', '/bin/sh', 'tsrunimg:entry', '-c', 'trap "exit 7" USR1; echo ready; while true; do sleep 0.1; done']);
    let logs = '';
    for (let i = 0; i < 50 && !logs.includes('ready'); i++) {
      logs = e.tsctl(['logs', 'sig']).stdout;
      if (!logs.includes('ready')) await new Promise((r) => setTimeout(r, 100));
    }
    t.match(logs, 'ready');
    ok(t, ['stop', '-t', '20', 'sig']);
    t.equal(ok(t, ['inspect', '-f', '{{.State.ExitCode}}', 'sig']), '7\n', 'ended by USR1, not by the grace period\'s KILL');
    ok(t, ['rm', '-v', 'sig']);
  });

  t.test('each container has its own copy-on-write layer; --read-only', async (t) => {
    ok(t, ['run', '-d', '--name', 'w1', 'tsrunimg:plain', 'sh', '-c', 'echo one > /etc/motd; echo new > /written; sleep 30']);
    ok(t, ['run', '-d', '--name', 'w2', 'tsrunimg:plain', 'sleep', '30']);
    const id1 = ok(t, ['inspect', '-f', '{{.Id}}', 'w1']).trim();
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'one\n'; i++) {
      seen = e.tsctl(['exec', 'w1', 'cat', '/etc/motd']).stdout;
      if (seen !== 'one\n') await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(seen, 'one\n', 'w1 sees its write');
    t.equal(ok(t, ['exec', 'w2', 'sh', '-c', 'cat /etc/motd; ls /written 2>&1 || true']), 'layer three\nls: /written: No such file or directory\n', 'w2 does not');
    t.ok(mounted(id1), 'the running container\'s rootfs is mounted');
    ok(t, ['rm', '-f', '-v', 'w1', 'w2']);
    t.notOk(mounted(id1), 'rm leaves no mount');
    t.notOk(snapshotKeys().includes(id1), 'nor the snapshot');
    const r = e.tsctl(['run', '--rm', '--read-only', 'tsrunimg:plain', 'sh', '-c', 'touch /etc/x 2>&1; echo rc=$?']);
    t.match(r.stdout, /Read-only file system\nrc=1\n$/, show(r));
    t.equal(ok(t, ['run', '--rm', 'tsrunimg:plain', 'sh', '-c', 'test -e /etc/x; echo $?']), '1\n', 'a new container starts from the image');
  });

  t.test('VOLUME: an anonymous volume with the image\'s content, removed by rm -v', async (t) => {
    ok(t, ['run', '--name', 'vol', 'tsrunimg:plain', 'sh', '-c', 'cat /data/a; echo more > /data/c']);
    const [info] = JSON.parse(ok(t, ['inspect', 'vol'])) as Array<{ Id: string; Mounts: Array<{ Source: string; Destination: string }> }>;
    const m = info?.Mounts.find((x) => x.Destination === '/data');
    t.ok(m !== undefined, 'a mount on /data');
    const source = m?.Source ?? '/nonexistent';
    t.match(source, /\/volumes\/[0-9a-f]{64}\/_data$/);
    t.same(fs.readdirSync(source).sort(), ['a', 'b', 'c'], 'copied up from the image, then written');
    t.equal(JSON.parse(ok(t, ['inspect', '-f', '{{json .Config.Entrypoint}}', 'vol'])), null, 'no Entrypoint: null, as docker shows it');
    ok(t, ['rm', '-v', 'vol']);
    t.notOk(fs.existsSync(path.dirname(source)), 'rm -v removed it');
    t.notOk(snapshotKeys().includes(info?.Id ?? ''), 'and the snapshot');
  });

  t.test('an unknown image: docker\'s message, exit 125, nothing left', async (t) => {
    const before = snapshotKeys();
    const r = e.tsctl(['run', '--rm', 'nosuchimage', 'true']);
    t.equal(r.status, 125, show(r));
    t.match(r.stderr, "Unable to find image 'nosuchimage:latest' locally");
    t.same(snapshotKeys(), before);
    t.equal(ok(t, ['ps', '-aq']), '');
  });
}
