/**
 * `ctr run --rm --cni` against tsrund, side by side with the same command against containerd 1.6.
 * ctr runs CNI itself (go-cni: the first configuration in /etc/cni/net.d, plugins from
 * /opt/cni/bin, results cached under /var/lib/cni) against the task's namespace
 * /proc/<pid>/ns/net, between task create and start, and DELs after the task exits; it has no flag
 * for those directories. So each ctr runs in a private mount namespace (`unshare -m`) where a
 * temp dir is bind-mounted over /etc/cni/net.d, Debian's plugins over /opt/cni/bin and a temp
 * dir over /var/lib/cni (a tmpfs over the parent where a directory does not exist): nothing is
 * written to the host's directories. The network is a bridge of the test's own on a random
 * 10.x.y.0/24 that no host route covers; traffic goes only to that bridge's address.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { hostRoutes, overlaps, parseCidr, formatCidr, formatIp } from '../../supervisor/networks/config';
import { startContainerd } from '../helpers/engines';
import { ctrPath, startTsrund, tsrundMissing } from '../helpers/tsrund';

const PLUGINS = ['/usr/lib/cni', '/opt/cni/bin'].find((d) => ['bridge', 'host-local'].every((p) => fs.existsSync(path.join(d, p))));
const why =
  tsrundMissing() ??
  (PLUGINS === undefined ? 'CNI plugins are not installed (apt install containernetworking-plugins)' : undefined) ??
  (fs.existsSync('/etc/cni/net.d') ? undefined : 'no /etc/cni/net.d to bind a private configuration over (ctr reads only there)') ??
  (spawnSync('containerd', ['--version']).status === 0 ? undefined : 'containerd is not installed (the comparison runs ctr against it too)');

/** A /24 in 10.0.0.0/8 that no host route overlaps. */
function freeSubnet(): string {
  const routes = hostRoutes(fs.readFileSync('/proc/net/route', 'utf8'));
  for (let i = 0; i < 100; i++) {
    const b = randomBytes(2);
    const c = parseCidr(`10.${200 + (b[0]! % 50)}.${b[1]!}.0/24`, 'subnet');
    if (!routes.some((r) => overlaps(r, c))) return formatCidr(c);
  }
  throw new Error('no free 10.x.y.0/24 for the test network');
}

/** The shell that makes the private mount namespace's CNI directories, then execs ctr. */
const PRIVATE_CNI = [
  'set -e',
  'mount --make-rprivate /',
  'mount --bind "$CONF" /etc/cni/net.d',
  'if [ -d /opt/cni/bin ]; then mount --bind "$PLUGINS" /opt/cni/bin; else',
  '  if [ -d /opt ]; then mount -t tmpfs tmpfs /opt; else echo "no /opt" >&2; exit 1; fi',
  '  mkdir -p /opt/cni/bin; mount --bind "$PLUGINS" /opt/cni/bin; fi',
  'if [ -d /var/lib/cni ]; then mount --bind "$CACHE" /var/lib/cni; else mount -t tmpfs tmpfs /var/lib; fi',
  'exec "$@"',
].join('\n');

interface Run {
  status: number | null;
  out: string;
}

function ctrCni(env: Record<string, string>, ctrArgs: readonly string[]): Run {
  const r = spawnSync('unshare', ['-m', 'sh', '-c', PRIVATE_CNI, 'sh', ctrPath, ...ctrArgs], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('ctr run --cni: tsrund gives the task a namespace ctr can network, as containerd does', async (t) => {
    const tag = randomBytes(3).toString('hex');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-ctr-cni-'));
    const bridge = `tscni${tag}`;
    const name = `tsrun-it-${tag}`;
    const subnet = freeSubnet();
    const gateway = formatIp(parseCidr(subnet, 'subnet').base + 1);
    const conf = path.join(dir, 'net.d');
    const cache = path.join(dir, 'cache');
    const ipam = path.join(dir, 'ipam');
    for (const d of [conf, cache, ipam]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(
      path.join(conf, '10-tsrun-it.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name,
        plugins: [{ type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet, gateway }]], dataDir: ipam } }],
      }),
    );
    t.teardown(() => {
      spawnSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const env = { CONF: conf, PLUGINS: PLUGINS!, CACHE: cache };
    const script = `ip -4 -o addr show eth0; ping -c 1 -W 2 ${gateway} >/dev/null && echo gateway-reachable`;
    const allocated = () => (fs.existsSync(path.join(ipam, name)) ? fs.readdirSync(path.join(ipam, name)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : []);
    const veths = () => (fs.existsSync(`/sys/class/net/${bridge}/brif`) ? fs.readdirSync(`/sys/class/net/${bridge}/brif`) : []);
    const addrRe = new RegExp(`inet ${subnet.split('.').slice(0, 3).join('\\.')}\\.\\d+/24`);

    const ctd = await startContainerd(t);
    const viaContainerd = ctrCni(env, ['--address', ctd.socket, '-n', ctd.namespace, 'run', '--rm', '--cni', ...ctd.runFlags, '--rootfs', ctd.rootfs, `cni-ctd-${tag}`, '/bin/sh', '-c', script]);
    t.equal(viaContainerd.status, 0, `containerd: ctr run --cni succeeds (${viaContainerd.out.trim()})`);
    t.match(viaContainerd.out, addrRe, 'containerd: eth0 has an address of the network');
    t.match(viaContainerd.out, /gateway-reachable/, 'containerd: the bridge answers');

    const d = await startTsrund(t);
    const viaTsrund = ctrCni(env, ['--address', d.socket, '-n', d.ns, 'run', '--rm', '--cni', ...d.runArgs(), `cni-ts-${tag}`, '/bin/sh', '-c', script]);
    t.equal(viaTsrund.status, 0, `tsrund: ctr run --cni succeeds (${viaTsrund.out.trim()})`);
    t.match(viaTsrund.out, addrRe, 'tsrund: eth0 has an address of the network');
    t.match(viaTsrund.out, /gateway-reachable/, 'tsrund: the bridge answers');

    // ctr DELs after the task exits (--rm): nothing of either run is left.
    t.same(allocated(), [], 'no address is still allocated');
    t.same(veths(), [], 'no veth is left on the bridge');
    t.same(fs.readdirSync(path.join(cache)).flatMap((f) => fs.readdirSync(path.join(cache, f))), [], 'ctr kept no cached result');
    t.notOk(fs.existsSync(`/var/lib/cni/results/${name}-cni-ts-${tag}-eth0`), 'nothing was written to the host\'s /var/lib/cni');
  });
}
