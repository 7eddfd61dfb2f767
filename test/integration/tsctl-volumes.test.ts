/**
 * tsctl volumes against a private tsrund: volume create/ls/inspect/rm/prune, -v NAME:/path[:ro],
 * anonymous volumes (rm -v, --rm), copy-up from the rootfs (and not through a symlink out of it),
 * --mount bind|volume|tmpfs, --tmpfs, --volumes-from, and in-use volumes refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { startTsctl, tsctlMissing, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';

const why = tsctlMissing();
let e: TsctlEnv;
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
const mountpoint = (name: string): string => path.join(e.d.root, 'volumes', name, '_data');

function ok(t: Test, args: string[]): string {
  const r = e.tsctl(args);
  t.equal(r.status, 0, `tsctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
  });

  t.test('volume create, ls, inspect, rm', async (t) => {
    t.equal(ok(t, ['volume', 'create', '--label', 'team=a', 'v1']), 'v1\n');
    t.equal(ok(t, ['volume', 'create', 'v1']), 'v1\n', 'creating an existing volume returns it');
    t.ok(fs.statSync(mountpoint('v1')).isDirectory());
    const ls = ok(t, ['volume', 'ls']);
    t.match(ls, /^DRIVER {3,}VOLUME NAME\n/);
    t.match(ls, /\nlocal {3,}v1\n/);
    t.equal(ok(t, ['volume', 'ls', '-q', '--filter', 'label=team=a']), 'v1\n');
    t.equal(ok(t, ['volume', 'ls', '-q', '--filter', 'label=team=b']), '');
    const [info] = JSON.parse(ok(t, ['volume', 'inspect', 'v1'])) as Array<Record<string, unknown>>;
    t.same(info, { CreatedAt: info?.['CreatedAt'], Driver: 'local', Labels: { team: 'a' }, Mountpoint: mountpoint('v1'), Name: 'v1', Options: null, Scope: 'local' });
    t.match(String(info?.['CreatedAt']), /^\d{4}-\d\d-\d\dT/);
    t.equal(ok(t, ['volume', 'inspect', '-f', '{{.Mountpoint}}', 'v1']), `${mountpoint('v1')}\n`);
    t.equal(ok(t, ['volume', 'rm', 'v1']), 'v1\n');
    t.notOk(fs.existsSync(path.dirname(mountpoint('v1'))), 'the directory is gone');
    const missing = e.tsctl(['volume', 'inspect', 'v1']);
    t.equal(missing.status, 1);
    t.match(missing.stderr, /Error response from daemon: get v1: no such volume/);
    const bad = e.tsctl(['volume', 'create', '../x']);
    t.not(bad.status, 0);
    t.match(bad.stderr, /includes invalid characters for a local volume name/);
    t.notOk(fs.existsSync(path.join(e.d.root, 'x')), 'nothing made outside the volumes directory');
    const opt = e.tsctl(['volume', 'create', '-o', 'type=nfs', 'v2']);
    t.match(opt.stderr, /driver option "type" is not supported/);
  });

  t.test('-v NAME:/path keeps data between containers; :ro is read-only', async (t) => {
    ok(t, ['run', '--rm', '-v', 'data:/data', e.d.rootfs, 'sh', '-c', 'echo hello > /data/f']);
    t.equal(fs.readFileSync(path.join(mountpoint('data'), 'f'), 'utf8'), 'hello\n');
    const r = e.tsctl(['run', '--rm', '-v', 'data:/data:ro', e.d.rootfs, 'sh', '-c', 'cat /data/f; touch /data/g 2>&1; echo rc=$?']);
    t.match(r.stdout, /^hello\n.*Read-only file system\nrc=1\n$/s, show(r));
    t.equal(ok(t, ['volume', 'rm', 'data']), 'data\n');
  });

  t.test('a volume in use cannot be removed; the error names the container', async (t) => {
    const id = ok(t, ['run', '-d', '-v', 'busy:/b', e.d.rootfs, 'sleep', '1000']).trim();
    const r = e.tsctl(['volume', 'rm', 'busy']);
    t.equal(r.status, 1);
    t.match(r.stderr, new RegExp(`Error response from daemon: remove busy: volume is in use - \\[${id}\\]`));
    t.ok(fs.existsSync(mountpoint('busy')));
    const prune = ok(t, ['volume', 'prune', '-f', '-a']);
    t.notMatch(prune, /busy/, 'prune keeps a volume in use');
    ok(t, ['rm', '-f', id]);
    t.equal(ok(t, ['volume', 'rm', 'busy']), 'busy\n');
  });

  t.test('anonymous volumes: rm -v and --rm remove them, plain rm keeps them for prune', async (t) => {
    const before = new Set(ok(t, ['volume', 'ls', '-q']).split('\n').filter((x) => x !== ''));
    const fresh = (): string[] => ok(t, ['volume', 'ls', '-q']).split('\n').filter((x) => x !== '' && !before.has(x));
    const id = ok(t, ['run', '-d', '-v', '/anon', e.d.rootfs, 'sleep', '1000']).trim();
    const [anon] = fresh();
    t.match(anon ?? '', /^[0-9a-f]{64}$/, 'a 64-hex name');
    ok(t, ['rm', '-f', '-v', id]);
    t.same(fresh(), [], 'rm -v removed it');
    ok(t, ['run', '--rm', '--mount', 'type=volume,target=/anon2', e.d.rootfs, 'true']);
    t.same(fresh(), [], '--rm removed it');
    const id2 = ok(t, ['run', '-d', '-v', '/anon3', e.d.rootfs, 'true']).trim();
    ok(t, ['rm', '-f', id2]);
    const [kept] = fresh();
    t.ok(kept !== undefined, 'plain rm keeps it');
    ok(t, ['volume', 'create', 'named-unused']);
    const pruned = ok(t, ['volume', 'prune', '-f']);
    t.match(pruned, new RegExp(`^Deleted Volumes:\\n${kept}\\n\\nTotal reclaimed space: `));
    t.ok(fs.existsSync(mountpoint('named-unused')), 'prune without -a keeps named volumes');
    t.match(ok(t, ['volume', 'prune', '-f', '-a']), /named-unused/);
    t.same(fresh(), []);
  });

  t.test('copy-up: a new volume gets the rootfs content at its path, owners kept, once', async (t) => {
    const seed = path.join(e.d.rootfs, 'seed');
    const outside = path.join(e.d.sandbox, 'outside');
    fs.mkdirSync(path.join(seed, 'sub'), { recursive: true });
    fs.mkdirSync(outside, { recursive: true });
    fs.mkdirSync(path.join(outside, 'x'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'x', 'host-secret'), 'secret');
    fs.symlinkSync(outside, path.join(e.d.rootfs, 'escape'));
    t.teardown(() => {
      fs.rmSync(seed, { recursive: true, force: true });
      fs.rmSync(path.join(e.d.rootfs, 'escape'), { force: true });
    });
    fs.writeFileSync(path.join(seed, 'a'), 'from the image');
    fs.writeFileSync(path.join(seed, 'sub', 'b'), 'b');
    fs.chownSync(path.join(seed, 'a'), 1234, 1235);
    fs.chmodSync(seed, 0o750);
    fs.chownSync(seed, 1234, 1234);
    const r = e.tsctl(['run', '--rm', '-v', 'seeded:/seed', e.d.rootfs, 'sh', '-c', 'cat /seed/a /seed/sub/b; stat -c "%u:%g %a" /seed /seed/a']);
    t.equal(r.stdout, 'from the imageb1234:1234 750\n1234:1235 644\n', show(r));
    fs.writeFileSync(path.join(seed, 'a'), 'changed image');
    t.match(e.tsctl(['run', '--rm', '-v', 'seeded:/seed', e.d.rootfs, 'cat', '/seed/a']).stdout, /^from the image$/, 'a volume with content is not copied into again');
    t.equal(e.tsctl(['run', '--rm', '-v', 'bare:/seed:nocopy', e.d.rootfs, 'ls', '-A', '/seed']).stdout, '', 'nocopy');
    // /escape is a symlink to a host directory holding x/: resolved inside the rootfs, /escape/x is nothing
    t.equal(e.tsctl(['run', '--rm', '-v', 'esc:/escape/x', e.d.rootfs, 'ls', '-A', '/escape/x']).stdout, '');
    t.same(fs.readdirSync(mountpoint('esc')), [], 'nothing copied from outside the rootfs');
    for (const v of ['seeded', 'bare', 'esc']) ok(t, ['volume', 'rm', v]);
  });

  t.test('--mount bind|volume|tmpfs and --tmpfs', async (t) => {
    const host = path.join(e.d.sandbox, 'bind-src');
    fs.mkdirSync(host, { recursive: true });
    fs.writeFileSync(path.join(host, 'h'), 'host file');
    const r = e.tsctl([
      'run', '--rm',
      '--mount', `type=bind,source=${host},target=/b,readonly`,
      '--mount', 'type=volume,source=mv,target=/v',
      '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770',
      '--tmpfs', '/t2:size=64k',
      e.d.rootfs, 'sh', '-c', 'cat /b/h; echo; grep -E " /(b|v|t|t2) " /proc/mounts | cut -d" " -f2-4 | sort; stat -c %a /t',
    ]);
    t.equal(r.status, 0, show(r));
    const lines = r.stdout.split('\n');
    t.equal(lines[0], 'host file');
    t.match(r.stdout, /\n\/b \S+ ro,/);
    t.match(r.stdout, /\n\/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770/);
    t.match(r.stdout, /\n\/t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=64k/);
    t.match(r.stdout, /\n\/v \S+ rw,/);
    t.match(r.stdout, /\n1770\n$/);
    const missing = e.tsctl(['run', '--rm', '--mount', `type=bind,source=${host}-nope,target=/b`, e.d.rootfs, 'true']);
    t.equal(missing.status, 125);
    t.match(missing.stderr, /bind source path does not exist/);
    const badType = e.tsctl(['run', '--rm', '--mount', 'type=nfs,target=/x', e.d.rootfs, 'true']);
    t.match(badType.stderr, /invalid mount type "nfs"/);
    ok(t, ['volume', 'rm', 'mv']);
  });

  t.test('--volumes-from copies binds and volumes, :ro makes them read-only', async (t) => {
    const src = ok(t, ['run', '-d', '--name', 'vsrc', '-v', 'shared:/shared', e.d.rootfs, 'sh', '-c', 'echo from-src > /shared/f; sleep 1000']).trim();
    const r = e.tsctl(['run', '--rm', '--volumes-from', 'vsrc:ro', e.d.rootfs, 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -f /shared/f ] && break; sleep 0.2; done; cat /shared/f; touch /shared/x 2>&1; echo rc=$?']);
    t.match(r.stdout, /^from-src\n.*Read-only file system\nrc=1\n$/s, show(r));
    ok(t, ['rm', '-f', src]);
    ok(t, ['volume', 'rm', 'shared']);
  });
}
