/**
 * tsrund's networking layer (supervisor/networks/) with Debian's real CNI plugins: namespaces,
 * bridge networks, published ports, isolation, internal networks, bad input, crash reconcile and
 * a leak check. Traffic goes only to loopback and to the addresses of namespaces made here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { removeIsolation } from '../../supervisor/networks/isolation';
import { createNetworks, type AttachRequest, type Networks } from '../../supervisor/networks/manager';
import type { TeardownHost } from '../helpers/bundle';
import { busyboxPath, requires } from '../helpers/requires';
import { fetchTcp } from '../helpers/net';
import { waitFor } from '../helpers/wait';

const CNI_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
// 200 attach/detach cycles are 800 plugin process starts: more than tap's default on a loaded machine.
t.setTimeout(900_000);
const hasPlugins = CNI_DIRS.some((d) => ['bridge', 'host-local', 'portmap', 'loopback', 'tuning'].every((p) => fs.existsSync(path.join(d, p))));

interface Setup {
  nets: Networks;
  root: string;
  state: string;
  prefix: string;
  bridge: string;
}

function natRules(): string {
  return spawnSync('iptables', ['-w', '5', '-t', 'nat', '-S'], { encoding: 'utf8' }).stdout;
}

/** A manager over temp dirs with its own chain prefix and default bridge name. */
function setup(t: TeardownHost, binDirs: readonly string[] = CNI_DIRS): Setup {
  const tag = randomBytes(3).toString('hex');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-net-root-'));
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-net-state-'));
  const resolv = path.join(root, 'host-resolv.conf');
  fs.writeFileSync(resolv, 'nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.test\n');
  const prefix = `TSRT${tag}`;
  const bridge = `tsrt${tag}`;
  const natBefore = new Set(natRules().split('\n').filter((l) => l.startsWith('-N ')));
  const nets = createNetworks({ root, state, binDirs, timeoutMs: 10000, hostResolvConf: resolv, defaultBridge: bridge, chainPrefix: prefix });
  t.teardown(async () => {
    await nets.reconcile(new Set());
    for (const n of nets.list()) {
      if (n.name !== 'bridge') await nets.remove(n.name);
    }
    // The default network cannot be removed through the API (as docker's); tear it down by hand.
    spawnSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
    await removeIsolation(prefix);
    // portmap's top-level nat chains, when this test made them and nobody else uses them now:
    // another test running beside this one may have put its own port mappings in them since.
    // One iptables-restore transaction: its -X of CNI-HOSTPORT-DNAT fails while that chain holds
    // anyone's mapping (and of SETMARK while a mapping's chain jumps to it), which aborts the whole
    // of it, so a mapping added between a check and the removal can never be flushed away.
    const made = natRules().split('\n').filter((l) => l.startsWith('-N CNI-HOSTPORT') && !natBefore.has(l)).map((l) => l.slice(3));
    if (made.length > 0) {
      const jumps = natRules().split('\n').filter((l) => {
        const f = l.split(' ');
        return f[0] === '-A' && made.includes(f[f.length - 1]!) && !made.includes(f[1]!);
      });
      // portmap's own fixed rules (the mark and the masquerade) are flushed; the DNAT chain is not
      const fixed = made.filter((c) => c !== 'CNI-HOSTPORT-DNAT');
      const text = ['*nat', ...jumps.map((l) => `-D${l.slice(2)}`), ...fixed.map((c) => `-F ${c}`), ...made.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
      spawnSync('iptables-restore', ['-w', '5', '--noflush'], { input: text, stdio: ['pipe', 'ignore', 'ignore'] });
    }
    // ip_forward is left on when tsrund turned it on: other tests' containers running beside this
    // one route through it, as they would with docker's (which also leaves it on).
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(state, { recursive: true, force: true });
  });
  return { nets, root, state, prefix, bridge };
}

function req(id: string, endpoints: AttachRequest['endpoints'], extra: Partial<AttachRequest> = {}): AttachRequest {
  return { namespace: 'default', id, name: id, hostname: id, endpoints, ports: [], dns: [], dnsSearch: [], dnsOptions: [], extraHosts: [], ...extra };
}

function inNs(netns: string, args: readonly string[], timeoutMs = 5000): { code: number | null; out: string } {
  const r = spawnSync('nsenter', [`--net=${netns}`, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function ping(netns: string, ip: string): boolean {
  return inNs(netns, [busyboxPath, 'ping', '-c', '1', '-W', '1', ip]).code === 0;
}

/** A one-shot TCP server in a namespace that answers `text` (busybox nc), ready when it listens. */
async function serveOnce(t: TeardownHost, netns: string, port: number, text: string): Promise<void> {
  const child = spawn('nsenter', [`--net=${netns}`, busyboxPath, 'nc', '-l', '-p', String(port), '-e', busyboxPath, 'echo', text], { stdio: 'ignore' });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const listening = await waitFor(() => inNs(netns, [busyboxPath, 'netstat', '-ltn']).out.includes(`:${port} `), 5000);
  if (!listening) throw new Error(`nc did not listen on ${port} in ${netns}`);
}


t.test('two containers on a user-defined network reach each other; hosts, resolv.conf', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed (apt install containernetworking-plugins)');
  const s = setup(t);
  const n = await s.nets.create({ name: `it-${s.prefix.toLowerCase()}`, labels: { a: 'b' } });
  t.match(n.subnet, /^(172|192)\./, `a subnet was chosen: ${n.subnet}`);
  const a = await s.nets.attach(req('aaa', [{ network: n.name, aliases: ['web'] }]));
  const b = await s.nets.attach(req('bbb', [{ network: n.name }], { extraHosts: ['db.test:192.0.2.77'] }));
  t.ok(fs.existsSync(a.netns), 'the namespace file exists');
  t.ok(ping(b.netns, a.endpoints[0]!.ip), `bbb pings aaa at ${a.endpoints[0]!.ip}`);
  t.ok(ping(a.netns, '127.0.0.1'), 'lo is up in the namespace');
  const hostsB = fs.readFileSync(path.join(b.filesDir, 'hosts'), 'utf8');
  t.match(hostsB, new RegExp(`${a.endpoints[0]!.ip.replace(/\./g, '\\.')}\\taaa web`), 'bbb resolves aaa and its alias');
  t.match(hostsB, /192\.0\.2\.77\tdb\.test/, '--add-host entry');
  const hostsA = fs.readFileSync(path.join(a.filesDir, 'hosts'), 'utf8');
  t.match(hostsA, /\tbbb/, 'aaa learned of bbb when bbb joined (peers are rewritten)');
  const resolv = fs.readFileSync(path.join(a.filesDir, 'resolv.conf'), 'utf8');
  t.equal(resolv, 'nameserver 192.0.2.53\nsearch example.test\n', 'host resolv.conf minus loopback servers');
  // In the background (tsctl run): the answer comes before the plugins ran; ready() waits for them.
  const c = await s.nets.attach(req('ccc', [{ network: n.name }], { background: true }));
  t.same(c.endpoints, [], 'a background attach answers without endpoints');
  await s.nets.ready('default', 'ccc');
  const cIp = s.nets.attachment('default', 'ccc')?.endpoints[0]?.ip ?? '';
  t.ok(ping(c.netns, a.endpoints[0]!.ip), `after ready(), ccc (${cIp}) reaches aaa`);
  t.match(fs.readFileSync(path.join(c.filesDir, 'hosts'), 'utf8'), new RegExp(`${cIp.replace(/\./g, '\\.')}\tccc`), 'its /etc/hosts names its own address');
  await s.nets.detach('default', 'ccc');
  await s.nets.detach('default', 'bbb');
  t.notMatch(fs.readFileSync(path.join(a.filesDir, 'hosts'), 'utf8'), /\tbbb/, 'bbb left aaa\'s hosts when it detached');
  await t.rejects(s.nets.remove(n.name), /has active endpoints \(aaa\)/, 'a network in use cannot be removed');
  await s.nets.detach('default', 'aaa');
  t.notOk(fs.existsSync(a.netns), 'the namespace is released');
});

t.test('published ports answer on 127.0.0.1; a taken port is refused', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  const a = await s.nets.attach(req('web', [{ network: 'bridge' }], { ports: [{ hostIP: '127.0.0.1', hostPort: 0, containerPort: 8080, protocol: 'tcp' }] }));
  const hostPort = a.ports[0]!.hostPort;
  t.ok(hostPort > 0, `a free host port was chosen: ${hostPort}`);
  t.equal(s.nets.get('bridge').bridge, s.bridge, 'the default network uses its own bridge device');
  await serveOnce(t, a.netns, 8080, 'hello-from-container');
  t.equal((await fetchTcp('127.0.0.1', hostPort)).trim(), 'hello-from-container', 'host → 127.0.0.1:hostPort reaches the container');
  await t.rejects(
    s.nets.attach(req('web2', [{ network: 'bridge' }], { ports: [{ hostIP: '127.0.0.1', hostPort, containerPort: 80, protocol: 'tcp' }] })),
    /port is already allocated/,
    'the same host port twice is refused',
  );
  t.equal(s.nets.attachment('default', 'web2'), undefined, 'the refused attach left no record');
  t.notOk(fs.existsSync(path.join(s.state, 'netns', 'default-web2')), 'nor a namespace');
  await s.nets.detach('default', 'web');
  t.notMatch(natRules(), /default-web/, 'no nat rule of the container is left');
});

t.test('networks are isolated from each other; an internal network has no way out', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  const n1 = await s.nets.create({ name: `one-${s.prefix.toLowerCase()}` });
  const n2 = await s.nets.create({ name: `two-${s.prefix.toLowerCase()}` });
  const n3 = await s.nets.create({ name: `in-${s.prefix.toLowerCase()}`, internal: true });
  t.not(n1.subnet, n2.subnet, 'each network gets its own subnet');
  const a = await s.nets.attach(req('a1', [{ network: n1.name }]));
  const b = await s.nets.attach(req('b2', [{ network: n2.name }]));
  const c = await s.nets.attach(req('c3', [{ network: n3.name }]));
  const d = await s.nets.attach(req('d1', [{ network: n1.name }]));
  t.ok(ping(d.netns, a.endpoints[0]!.ip), 'same network: reachable');
  t.notOk(ping(b.netns, a.endpoints[0]!.ip), 'network two cannot reach network one');
  t.notOk(ping(a.netns, b.endpoints[0]!.ip), 'network one cannot reach network two');
  t.notOk(ping(c.netns, a.endpoints[0]!.ip), 'the internal network cannot reach network one');
  t.notMatch(inNs(c.netns, ['ip', 'route']).out, /default/, 'the internal network has no default route');
  t.match(inNs(a.netns, ['ip', 'route']).out, /default via/, 'a normal network has a default route');
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  t.match(natRules(), new RegExp(`-A ${s.prefix}-POSTROUTING -s ${esc(n1.subnet)} ! -o ${n1.bridge} -j MASQUERADE`), 'one masquerade rule for a network');
  // Only this manager's chain: another test's tsrund may hold the same subnet on its own bridge.
  const ownNat = natRules().split('\n').filter((l) => l.startsWith(`-A ${s.prefix}-`)).join('\n');
  t.notMatch(ownNat, new RegExp(`-s ${esc(n3.subnet)} `), 'none for the internal network');
  // connect: a1 joins network two and can now reach b2 there.
  const a2 = await s.nets.connect('default', 'a1', { network: n2.name });
  t.equal(a2.endpoints[1]!.ifName, 'eth1', 'the second network is eth1');
  t.ok(ping(a.netns, b.endpoints[0]!.ip), 'after connect, a1 reaches b2');
  await s.nets.disconnect('default', 'a1', n2.name);
  t.notOk(inNs(a.netns, ['ip', 'link', 'show', 'eth1']).code === 0, 'disconnect removed eth1');
  for (const id of ['a1', 'b2', 'c3', 'd1']) await s.nets.detach('default', id);
  t.same(await s.nets.prune(), [n1.name, n2.name, n3.name], 'prune removes the unused networks');
  for (const n of [n1, n2, n3]) t.notOk(fs.existsSync(`/sys/class/net/${n.bridge}`), `bridge ${n.bridge} removed`);
});

t.test('bad input is refused with a clear error and leaves nothing', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  await t.rejects(s.nets.attach(req('x', [{ network: 'nope' }])), /network nope not found/, 'unknown network');
  const n = await s.nets.create({ name: `ok-${s.prefix.toLowerCase()}`, subnet: '10.213.7.0/24' });
  await t.rejects(s.nets.create({ name: 'other', subnet: '10.213.0.0/16' }), /overlaps with network ok-/, 'overlapping subnet');
  await t.rejects(s.nets.create({ name: 'hostly', subnet: '192.0.2.0/25' }), /overlaps with the host route 192\.0\.2\.0\/24/, 'a subnet on a host route');
  await t.rejects(s.nets.create({ name: 'bad', subnet: '10.1.2.3/16' }), /host bits are set/, 'a subnet with host bits');
  await t.rejects(s.nets.create({ name: n.name }), /already exists/, 'a taken name');
  await t.rejects(s.nets.attach(req('y', [{ network: n.name, ip: '10.9.9.9' }])), /not an address in network/, '--ip outside the subnet');
  await s.nets.attach(req('dflt', [{ network: 'bridge' }]));
  await s.nets.detach('default', 'dflt');
  await t.rejects(s.nets.remove('bridge'), /bridge is a pre-defined network and cannot be removed/, 'the default network cannot be removed');
  // Other test files make veths at the same time: only this network's bridge counts.
  const ports = () => (fs.existsSync(`/sys/class/net/${n.bridge}/brif`) ? fs.readdirSync(`/sys/class/net/${n.bridge}/brif`) : []);
  const nothingOf = (id: string) => {
    t.equal(s.nets.attachment('default', id), undefined, `${id}: no attachment record left`);
    t.notOk(fs.existsSync(path.join(s.state, 'netns', `default-${id}`)), `${id}: no namespace left`);
    t.same(fs.readdirSync(path.join(s.root, 'networks', 'cni-cache')).filter((f) => f.includes(`-default-${id}-`)), [], `${id}: no CNI cache entry left`);
    t.same(ports(), [], `${id}: no veth left`);
    const ipam = path.join(s.root, 'networks', 'ipam', n.name);
    t.same(fs.existsSync(ipam) ? fs.readdirSync(ipam).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [], [], `${id}: no address allocated`);
  };
  // A plugin directory without the bridge plugin: the attach fails naming it and undoes itself.
  const partial = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-partial-'));
  t.teardown(() => fs.rmSync(partial, { recursive: true, force: true }));
  const dir = CNI_DIRS.find((d) => fs.existsSync(path.join(d, 'loopback')))!;
  for (const p of ['loopback', 'host-local', 'portmap', 'tuning']) fs.symlinkSync(path.join(dir, p), path.join(partial, p));
  const s2 = createNetworks({ root: s.root, state: s.state, binDirs: [partial], timeoutMs: 5000, defaultBridge: s.bridge, chainPrefix: s.prefix });
  await t.rejects(s2.attach(req('z', [{ network: n.name }])), /cni plugin "bridge": not found in/, 'a missing plugin binary is named');
  nothingOf('z');
  // A plugin that fails: its own error message reaches the caller.
  const failing = path.join(partial, 'bridge');
  fs.writeFileSync(failing, '#!/bin/sh\ncat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\necho \'{"cniVersion":"1.0.0","code":7,"msg":"bridge says no","details":"because"}\'\nexit 1\n', { mode: 0o755 });
  await t.rejects(s2.attach(req('w', [{ network: n.name }])), /cni plugin bridge \(network ok-[^)]*\) ADD: bridge says no: because \(cni error code 7\)/, 'the plugin error is passed on');
  nothingOf('w');
  // The same in the background: the attach answers, ready() carries the plugin's error.
  const early = await s2.attach(req('bg', [{ network: n.name }], { background: true }));
  t.same(early.endpoints, [], 'a background attach answers before the plugins ran');
  await t.rejects(s2.ready('default', 'bg'), /bridge says no: because/, 'ready() reports the plugin error');
  nothingOf('bg');
  // A plugin that hangs is killed at the timeout.
  fs.writeFileSync(failing, '#!/bin/sh\n[ "$CNI_COMMAND" = DEL ] && exit 0\nexec sleep 30\n', { mode: 0o755 });
  const s3 = createNetworks({ root: s.root, state: s.state, binDirs: [partial], timeoutMs: 300, defaultBridge: s.bridge, chainPrefix: s.prefix });
  await t.rejects(s3.attach(req('h', [{ network: n.name }])), /timed out after 300 ms/, 'a hanging plugin times out');
  nothingOf('h');
});

t.test('the gateway keeps its MAC address while containers come and go', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  const n = await s.nets.create({ name: `mac-${s.prefix.toLowerCase()}` });
  const mac = () => fs.readFileSync(`/sys/class/net/${n.bridge}/address`, 'utf8').trim();
  const before = mac();
  const a = await s.nets.attach(req('maca', [{ network: n.name }]));
  const b = await s.nets.attach(req('macb', [{ network: n.name }]));
  t.equal(mac(), before, 'joining containers do not change the bridge address (a bridge takes its lowest port address unless one was set)');
  t.ok(ping(b.netns, n.gateway), 'macb reaches the gateway (its ARP entry now holds the bridge address)');
  await s.nets.detach('default', 'maca');
  t.equal(mac(), before, 'a container leaving does not change it either');
  // without a set address the bridge would have moved to another port's address, and macb's ARP
  // entry for the gateway would name a device that is gone
  t.ok(ping(b.netns, n.gateway), 'macb still reaches the gateway after maca left');
  t.notOk(fs.existsSync(a.netns), 'maca is released');
  await s.nets.detach('default', 'macb');
});

t.test('after a crash in the middle of an attach, reconcile releases everything', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  const n = await s.nets.create({ name: `cr-${s.prefix.toLowerCase()}` });
  const live = await s.nets.attach(req('keep', [{ network: n.name }]));
  const gone = await s.nets.attach(req('gone', [{ network: n.name }], { ports: [{ hostIP: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' }] }));
  // Simulate a crash after the namespace and the CNI cache exist but before the record was finished:
  // drop the record's endpoints (as if the ADD had not been recorded yet).
  const recFile = path.join(s.root, 'networks', 'containers', 'default-gone.json');
  const rec = JSON.parse(fs.readFileSync(recFile, 'utf8')) as { endpoints: unknown[] };
  rec.endpoints = [];
  fs.writeFileSync(recFile, JSON.stringify(rec));
  const onBridge = () => fs.readdirSync(`/sys/class/net/${n.bridge}/brif`).length;
  t.equal(onBridge(), 2, 'two veths on the bridge before the restart');
  // A fresh manager, as after a restart: only `keep` is live.
  const again = createNetworks({ root: s.root, state: s.state, binDirs: CNI_DIRS, timeoutMs: 10000, defaultBridge: s.bridge, chainPrefix: s.prefix });
  const released = await again.reconcile(new Set(['default/keep']));
  t.ok(released.includes('default/gone'), `gone was released (${released.join(', ')})`);
  t.notOk(fs.existsSync(gone.netns), 'its namespace is gone');
  t.equal(onBridge(), 1, 'its veth is gone (from the CNI cache alone)');
  t.notMatch(natRules(), /default-gone/, 'its port mapping is gone');
  const ipam = path.join(s.root, 'networks', 'ipam', n.name);
  t.notOk(fs.readdirSync(ipam).includes(gone.endpoints[0]?.ip ?? '172.31.255.254'), 'its address is free again');
  t.ok(ping(live.netns, n.gateway), 'the live container keeps its network');
  await again.detach('default', 'keep');
});

t.test('records and CNI cache entries torn by a machine crash are released by reconcile and detach', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  const n = await s.nets.create({ name: `tn-${s.prefix.toLowerCase()}` });
  const keep = await s.nets.attach(req('keep', [{ network: n.name }]));
  // No published port: portmap's DEL needs the mappings a torn entry lost, and the machine crash
  // that tears a file has taken the rules with it (here they would stay).
  const gone = await s.nets.attach(req('gone', [{ network: n.name }]));
  // They are written without fsync: after a machine crash one may be empty or cut short.
  const netDir = path.join(s.root, 'networks');
  const cut = (file: string) => fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 30));
  for (const id of ['keep', 'gone']) {
    cut(path.join(netDir, 'containers', `default-${id}.json`));
    cut(path.join(netDir, 'cni-cache', `${n.name}-default-${id}-eth0`));
  }
  fs.writeFileSync(path.join(netDir, 'cni-cache', `${n.name}-default-gone-eth0.tmp`), '');
  const onBridge = () => fs.readdirSync(`/sys/class/net/${n.bridge}/brif`).length;
  const ipam = path.join(netDir, 'ipam', n.name);
  t.equal(onBridge(), 2, 'two veths on the bridge before the restart');
  const again = createNetworks({ root: s.root, state: s.state, binDirs: CNI_DIRS, timeoutMs: 10000, defaultBridge: s.bridge, chainPrefix: s.prefix });
  const released = await again.reconcile(new Set(['default/keep']));
  t.ok(released.includes('default-gone'), `gone was released (${released.join(', ')})`);
  t.notOk(fs.existsSync(gone.netns), 'its namespace is gone');
  t.equal(onBridge(), 1, 'its veth is gone (DEL with the network named by the torn cache file)');
  t.notOk(fs.readdirSync(ipam).includes(gone.endpoints[0]!.ip), 'its address is free again');
  t.same(fs.readdirSync(path.join(netDir, 'cni-cache')), [`${n.name}-default-keep-eth0`], 'only the live container keeps a cache file; no temp file is left');
  t.ok(ping(keep.netns, n.gateway), 'the live container keeps its network');
  t.equal(again.attachment('default', 'keep'), undefined, 'a torn record is not shown as an attachment');
  await t.rejects(again.connect('default', 'keep', { network: n.name }), { code: 'FailedPrecondition' }, 'nor connected to');
  await again.detach('default', 'keep');
  t.equal(onBridge(), 0, 'detach of the torn record releases the veth');
  t.notOk(fs.existsSync(keep.netns), 'and the namespace');
  t.notOk(fs.readdirSync(ipam).includes(keep.endpoints[0]!.ip), 'and the address');
  t.same(fs.readdirSync(path.join(netDir, 'containers')), [], 'and the record');
  t.same(fs.readdirSync(path.join(netDir, 'cni-cache')), [], 'and the cache file');
});

t.test('200 attach/detach cycles leave no namespace, veth, rule or allocation', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (!hasPlugins) return t.plan(0, 'CNI plugins are not installed');
  const s = setup(t);
  const n = await s.nets.create({ name: `leak-${s.prefix.toLowerCase()}` });
  // Other test files run containers at the same time: only what names this test's ids or bridge counts.
  const tag = `lk${s.prefix.slice(-6).toLowerCase()}`;
  const ours = () => natRules().split('\n').filter((l) => l.includes(tag)).sort();
  // Four at a time, as parallel `run`s do: attaches of different containers overlap.
  const cycle = async (i: number): Promise<void> => {
    const id = `${tag}-${i}`;
    await s.nets.attach(req(id, [{ network: n.name }], i % 10 === 0 ? { ports: [{ hostIP: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: i % 20 === 0 ? 'udp' : 'tcp' }] } : {}));
    await s.nets.detach('default', id);
  };
  for (let i = 0; i < 200; i += 4) await Promise.all([0, 1, 2, 3].map((k) => cycle(i + k)));
  t.same(fs.readdirSync(`/sys/class/net/${n.bridge}/brif`), [], 'no veth left on the bridge');
  t.equal(fs.readdirSync(path.join(s.state, 'netns')).length, 0, 'no namespace file left');
  t.equal(fs.readdirSync(path.join(s.root, 'networks', 'cni-cache')).length, 0, 'no CNI cache entry left');
  const ipam = path.join(s.root, 'networks', 'ipam', n.name);
  t.same(fs.readdirSync(ipam).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)), [], 'no address still allocated');
  t.same(ours(), [], 'no nat chain or rule of the containers is left (portmap, masquerade)');
  t.same(natRules().split('\n').filter((l) => l.startsWith(`-A ${s.prefix}-POSTROUTING`)), [`-A ${s.prefix}-POSTROUTING -s ${n.subnet} ! -o ${n.bridge} -j MASQUERADE`], 'masquerading stays one rule for the network');
  t.notMatch(fs.readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(s.state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no nsfs mount left');
});
