/**
 * What a process sees inside the container: namespaces, /dev, masked and read-only paths,
 * the process fields of config.json, and mounts (including symlinked destinations that
 * point out of the rootfs). Each subtest is one `run` of a busybox `sh -c` script that
 * prints facts in the @@ protocol of test/helpers/facts.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { block, fact, factsOf, parseFacts, type Facts } from '../helpers/facts';
import { isUnder, parseMountInfo } from '../helpers/host';
import { requires } from '../helpers/requires';
import { describe, type RunResult } from '../helpers/runtime';

/** `run` the bundle in the foreground; the result and the facts it printed. */
function runFacts(b: Bundle): { r: RunResult; f: Facts } {
  const r = b.rt.run(b.id, b.dir, { timeoutMs: 30_000 });
  return { r, f: parseFacts(r.stdout) };
}

const lines = (s: string | undefined): string[] => (s ?? '').split('\n').filter((l) => l.trim() !== '');

t.test('namespaces, /dev, masked and read-only paths', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const script = [
    'echo "@@pid $$"',
    'echo "@@init-stat $(cat /proc/1/stat)"',
    'echo "@@self-stat $(cat /proc/self/stat)"',
    'echo "@@hostname $(hostname)"',
    block('netdev', 'cat /proc/net/dev'),
    block('mountinfo', 'cat /proc/self/mountinfo'),
    block('ps', 'ps -o pid,comm'),
    'for f in null zero full random urandom tty; do echo "@@dev $f $(stat -c %F:%t:%T /dev/$f)"; done',
    'for f in ptmx fd stdin stdout stderr; do if [ -L /dev/$f ]; then echo "@@link $f $(readlink /dev/$f)"; else echo "@@link $f not-a-symlink"; fi; done',
    'for p in /proc/acpi /proc/kcore /proc/keys /proc/timer_list /sys/firmware; do',
    '  if [ -d $p ]; then echo "@@masked $p $(ls -A $p 2>/dev/null | wc -l)";',
    '  elif [ -e $p ]; then echo "@@masked $p $(cat $p 2>/dev/null | wc -c)";',
    '  else echo "@@masked $p 0"; fi',
    'done',
    'if echo hijacked 2>/dev/null > /proc/sys/kernel/hostname; then echo "@@proc-sys writable"; else echo "@@proc-sys read-only"; fi',
    'echo "@@hostname-after $(hostname)"',
    'if touch /probe 2>/dev/null; then echo "@@root writable"; else echo "@@root read-only"; fi',
    'echo x > /dev/null && echo "@@devnull ok"',
    'echo "@@zero $(head -c 5 /dev/zero | wc -c)"',
    'if echo x 2>/dev/null > /dev/full; then echo "@@full accepted"; else echo "@@full refused"; fi',
    'grep "^Cap" /proc/1/status | while read k v; do echo "@@cap $k $v"; done',
  ].join('\n');
  const b = makeBundle(t, {
    args: ['sh', '-c', script],
    patch: (s) => {
      s.hostname = 'tsrun-iso';
    },
  });
  const { r, f } = runFacts(b);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);

  t.equal(fact(f, 'pid'), '1', 'the shell is PID 1 ($$)');
  const initStat = (fact(f, 'init-stat') ?? '').split(' ');
  t.equal(initStat[0], '1', '/proc/1/stat pid is 1');
  t.equal(initStat[3], '0', '/proc/1/stat ppid is 0 (nothing above init in its pid namespace)');
  const selfPid = Number((fact(f, 'self-stat') ?? '').split(' ')[0]);
  t.ok(selfPid > 1 && selfPid < 100, `/proc/self/stat of a child shows a small in-namespace pid (${selfPid})`);

  t.equal(fact(f, 'hostname'), 'tsrun-iso', 'hostname comes from config.json');

  const ifaces = lines(fact(f, 'netdev'))
    .slice(2)
    .map((l) => l.split(':')[0]?.trim());
  t.same(ifaces, ['lo'], 'only lo in /proc/net/dev (private network namespace)');

  const mounts = parseMountInfo(fact(f, 'mountinfo') ?? '');
  t.ok(mounts.length > 0, 'mountinfo was readable');
  const allowed = ['/proc', '/dev', '/sys', ...b.spec().mounts.map((m) => m.destination)];
  const foreign = mounts.map((m) => m.mountPoint).filter((mp) => mp !== '/' && !allowed.some((a) => isUnder(mp, a)));
  t.same(foreign, [], 'every mount point is / or under /proc, /dev, /sys or a config mount');
  const hostish = mounts.map((m) => m.mountPoint).filter((mp) => isUnder(mp, '/work') || isUnder(mp, b.sandbox));
  t.same(hostish, [], 'no host path (/work, the sandbox) is a mount point inside');

  const ps = lines(fact(f, 'ps')).slice(1);
  const comms = ps.map((l) => l.trim().split(/\s+/)[1]);
  t.ok(ps.length >= 2 && ps.length <= 3, `ps shows only the container's processes (${ps.length})`);
  t.same([...new Set(comms)].sort(), ['ps', 'sh'], 'those processes are sh and ps');

  const devs = new Map(factsOf(f, 'dev').map((v) => [v.split(' ')[0], v.split(' ').slice(1).join(' ')]));
  const expectedDevs: Record<string, string> = { null: '1:3', zero: '1:5', full: '1:7', random: '1:8', urandom: '1:9', tty: '5:0' };
  for (const [name, majmin] of Object.entries(expectedDevs)) {
    t.equal(devs.get(name), `character special file:${majmin}`, `/dev/${name} is char device ${majmin}`);
  }
  const links = new Map(factsOf(f, 'link').map((v) => [v.split(' ')[0], v.split(' ')[1]]));
  t.match(links.get('ptmx'), /^(\/dev\/)?pts\/ptmx$/, '/dev/ptmx is a symlink to pts/ptmx');
  t.equal(links.get('fd'), '/proc/self/fd', '/dev/fd → /proc/self/fd');
  t.equal(links.get('stdin'), '/proc/self/fd/0', '/dev/stdin → /proc/self/fd/0');
  t.equal(links.get('stdout'), '/proc/self/fd/1', '/dev/stdout → /proc/self/fd/1');
  t.equal(links.get('stderr'), '/proc/self/fd/2', '/dev/stderr → /proc/self/fd/2');
  t.equal(fact(f, 'devnull'), 'ok', '/dev/null accepts writes');
  t.equal(fact(f, 'zero'), '5', '/dev/zero reads');
  t.equal(fact(f, 'full'), 'refused', '/dev/full refuses writes (ENOSPC)');

  // Masked paths: whatever the host shows there (timer_list, firmware tables, keys), the
  // container sees nothing. /proc/kcore is absent on some kernels; a missing masked path must
  // be skipped, which the successful run above already shows.
  for (const v of factsOf(f, 'masked')) {
    const [p, n] = v.split(' ');
    t.equal(n, '0', `masked path ${p ?? '?'} is empty or unreadable inside`);
  }
  t.equal(factsOf(f, 'masked').length, 5, 'all masked paths were probed');

  t.equal(fact(f, 'proc-sys'), 'read-only', '/proc/sys (readonlyPaths) cannot be written');
  t.equal(fact(f, 'hostname-after'), 'tsrun-iso', 'the hostname survived the write attempt');
  const procSys = mounts.find((m) => m.mountPoint === '/proc/sys');
  t.ok(procSys?.options.includes('ro'), '/proc/sys is a read-only mount in mountinfo');
  t.equal(fact(f, 'root'), 'read-only', 'root.readonly: true makes / read-only (touch fails)');
  t.notOk(fs.existsSync(path.join(b.rootfs, 'probe')), 'nothing was written into the host rootfs');

  // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10). The base config lists the
  // same three as ambient but none as inheritable, and the kernel only raises ambient
  // capabilities that are also inheritable: runc skips them silently and starts the
  // container with CapAmb 0, so that is the only outcome a successful create can have.
  const caps = new Map(factsOf(f, 'cap').map((v) => [v.split(' ')[0], v.split(' ')[1]]));
  const three = '0000000020000420';
  t.same(
    ['CapPrm:', 'CapEff:', 'CapBnd:', 'CapInh:', 'CapAmb:'].map((k) => caps.get(k)),
    [three, three, three, '0000000000000000', '0000000000000000'],
    'init has exactly the configured capabilities (permitted, effective, bounding; no inheritable, no ambient)',
  );
});

t.test('process fields: user, additionalGids, cwd, env, umask, oomScoreAdj', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const script = [
    'echo "@@id $(id)"',
    'echo "@@uid $(id -u) $(id -g)"',
    'echo "@@groups $(id -G)"',
    'echo "@@pwd $(pwd)"',
    'echo "@@cwd $(readlink /proc/self/cwd)"',
    'echo "@@env $TSRUN_FOO"',
    'echo "@@env-path $PATH"',
    'echo "@@umask $(umask)"',
    'echo "@@oom $(cat /proc/self/oom_score_adj)"',
    'touch /scratch/file && echo "@@mode $(stat -c %a /scratch/file)"',
  ].join('\n');
  const b = makeBundle(t, {
    args: ['sh', '-c', script],
    patch: (s) => {
      s.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 2000], umask: 0o027 };
      s.process.cwd = '/tmp';
      s.process.env = ['PATH=/bin:/sbin', 'TSRUN_FOO=bar baz'];
      s.process.oomScoreAdj = 271;
      s.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777', 'size=1m'] });
    },
  });
  const { r, f } = runFacts(b);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  t.equal(fact(f, 'uid'), '1000 1000', 'uid and gid from process.user');
  t.same(
    (fact(f, 'groups') ?? '').split(' ').map(Number).sort((x, y) => x - y),
    [10, 1000, 2000],
    'supplementary groups are the primary gid plus additionalGids',
  );
  t.equal(fact(f, 'pwd'), '/tmp', 'cwd honoured (pwd)');
  t.equal(fact(f, 'cwd'), '/tmp', 'cwd honoured (/proc/self/cwd, as seen inside)');
  t.equal(fact(f, 'env'), 'bar baz', 'env honoured (value with a space)');
  t.equal(fact(f, 'env-path'), '/bin:/sbin', 'PATH from env');
  t.equal(fact(f, 'umask'), '0027', 'process.user.umask honoured');
  t.equal(fact(f, 'mode'), '640', 'files are created with the umask applied (666 & ~027)');
  t.equal(fact(f, 'oom'), '271', 'oomScoreAdj visible in /proc/self/oom_score_adj');
});

t.test('mounts: created mount points, read-only bind, writable root, symlinked destinations', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  let escapeAbs = '';
  const b = makeBundle(t, {
    patch: (s, p) => {
      s.root.readonly = false;
      // Absolute symlink to "/": followed on the host it would reach <sandbox>/escape1.
      escapeAbs = path.join('/evil', p.sandbox, 'escape1');
      s.mounts.push(
        { destination: '/run/x/y', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        { destination: '/mnt/ro', type: 'bind', source: path.join(p.sandbox, 'hostro'), options: ['bind', 'ro'] },
        { destination: escapeAbs, type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        // Relative symlink climbing out of rootfs: followed on the host it would reach <sandbox>/escape2.
        { destination: '/up/escape2', type: 'bind', source: path.join(p.sandbox, 'hostsrc'), options: ['bind', 'ro'] },
      );
    },
  });
  const hostro = b.hostDir('hostro');
  fs.writeFileSync(path.join(hostro, 'marker'), 'from-host\n');
  const hostsrc = b.hostDir('hostsrc');
  fs.writeFileSync(path.join(hostsrc, 'marker'), 'escaped-correctly\n');
  fs.symlinkSync('/', path.join(b.rootfs, 'evil'));
  fs.symlinkSync('../..', path.join(b.rootfs, 'up'));
  const insideAbs = escapeAbs.replace(/^\/evil/, '');

  const script = [
    'echo "@@runxy $(grep -c " /run/x/y " /proc/self/mountinfo)"',
    'if touch /run/x/y/f 2>/dev/null; then echo "@@runxy-rw yes"; else echo "@@runxy-rw no"; fi',
    'echo "@@ro-read $(cat /mnt/ro/marker)"',
    'if touch /mnt/ro/new 2>/dev/null; then echo "@@ro-write allowed"; else echo "@@ro-write refused"; fi',
    'if touch /rootfile 2>/dev/null; then echo "@@root writable"; else echo "@@root read-only"; fi',
    `echo "@@escape1 $(grep -c " ${insideAbs} " /proc/self/mountinfo)"`,
    'echo "@@escape2 $(cat /escape2/marker)"',
    'echo "@@escape2-via-link $(cat /up/escape2/marker)"',
  ].join('\n');
  b.writeSpec((s) => {
    s.process.args = ['sh', '-c', script];
  });
  const { r, f } = runFacts(b);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);

  t.equal(fact(f, 'runxy'), '1', 'a tmpfs at a missing path (/run/x/y) is mounted');
  t.ok(fs.statSync(path.join(b.rootfs, 'run', 'x', 'y')).isDirectory(), 'its mount point was created inside the rootfs');
  t.equal(fact(f, 'runxy-rw'), 'yes', 'the tmpfs is writable');
  t.equal(fact(f, 'ro-read'), 'from-host', 'the read-only bind shows the host directory');
  t.equal(fact(f, 'ro-write'), 'refused', 'the bind mounted with "ro" is read-only');
  t.notOk(fs.existsSync(path.join(hostro, 'new')), 'nothing was written through the read-only bind');
  t.equal(fact(f, 'root'), 'writable', 'root.readonly: false leaves / writable');
  t.ok(fs.existsSync(path.join(b.rootfs, 'rootfile')), 'a file written to / lands in the bundle rootfs');

  t.equal(fact(f, 'escape1'), '1', 'the mount through "/evil -> /" is inside the container');
  t.notOk(fs.existsSync(path.join(b.sandbox, 'escape1')), 'nothing was created at the host path the absolute symlink names');
  t.ok(fs.existsSync(path.join(b.rootfs, insideAbs)), 'the mount point was created under the rootfs instead');
  t.equal(fact(f, 'escape2'), 'escaped-correctly', 'the mount through "up -> ../.." landed at /escape2 in the container');
  t.equal(fact(f, 'escape2-via-link'), 'escaped-correctly', 'and is reachable through the symlink inside');
  t.notOk(fs.existsSync(path.join(b.sandbox, 'escape2')), 'nothing was created at the host path the relative symlink climbs to');
});

t.test('sysctls are written inside the container namespaces only', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const host = fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim();
  const b = makeBundle(t, {
    args: ['sh', '-c', 'echo "@@port $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"'],
    patch: (s) => {
      (s.linux as unknown as Record<string, unknown>)['sysctl'] = { 'net.ipv4.ip_unprivileged_port_start': '0' };
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  t.equal(fact(parseFacts(r.stdout), 'port'), '0', 'the container sees the value it asked for');
  t.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim(), host, 'the host value is untouched');
});
