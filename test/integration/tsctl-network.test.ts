/**
 * tsctl networking against a private tsrund with Debian's CNI plugins: the default bridge,
 * user-defined networks with name resolution, published ports on 127.0.0.1, isolation between
 * networks, --internal, host/none/container modes, inspect/port/ps, and a kill -9 of tsrund.
 * Traffic goes only to loopback and to the containers made here (busybox nc, never wget).
 */
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import t from 'tap';
import { startTsctl, tsctlMissing, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';
import { fetchTcp } from '../helpers/net';
import { waitFor } from '../helpers/wait';

const CNI_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
const hasPlugins = CNI_DIRS.some((d) => ['bridge', 'host-local', 'portmap', 'loopback', 'tuning'].every((p) => fs.existsSync(`${d}/${p}`)));
const why = tsctlMissing() ?? (hasPlugins ? undefined : 'CNI plugins are not installed (apt install containernetworking-plugins)');
let e: TsctlEnv;
// every subtest is dozens of tsctl, exec and container starts: on 2 cores under a load of 20 one
// takes more than a minute, and the file more than tap's default
t.setTimeout(900_000);
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;


/** Run a detached server that answers `text` on `port` once per connection, and wait until it listens. */
async function server(t: { teardown(fn: () => void): void }, name: string, port: number, text: string, extra: readonly string[] = []): Promise<void> {
  // nc -ll: keep listening; each connection gets `echo TEXT`.
  const r = e.tsctl(['run', '-d', '--name', name, ...extra, e.d.rootfs, 'nc', '-ll', '-p', String(port), '-e', 'echo', text]);
  if (r.status !== 0) throw new Error(`run ${name}: ${show(r)}`);
  t.teardown(() => {
    e.tsctl(['rm', '-f', name]);
  });
  // each exec is a process start or three: on a loaded machine 10 s is not enough
  const ok = await waitFor(() => e.tsctl(['exec', name, 'netstat', '-ltn']).stdout.includes(`:${port} `), 30_000);
  if (!ok) throw new Error(`${name} never listened on ${port} within 30 s`);
}

/** Two consecutive free TCP ports on 127.0.0.1 (checked by binding them). */
async function freePortPair(): Promise<number> {
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    if ((await bindable(base)) && (await bindable(base + 1))) return base;
  }
  throw new Error('no two consecutive free ports on 127.0.0.1');
}

/** Send a datagram (again each second: udp may drop one) and wait, at most 5 s, for one answer. */
function udpAsk(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const send = () => s.send(text, port, host);
    const again = setInterval(send, 1000);
    const timer = setTimeout(() => {
      clearInterval(again);
      s.close();
      reject(new Error(`no udp answer from ${host}:${port} within 5 s`));
    }, 5000);
    s.on('message', (m) => {
      clearTimeout(timer);
      clearInterval(again);
      s.close();
      resolve(m.toString());
    });
    send();
  });
}

function ipOf(name: string, network?: string): string {
  if (network === undefined) return e.tsctl(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', name]).stdout.trim();
  const nets = JSON.parse(e.tsctl(['inspect', '-f', '{{json .NetworkSettings.Networks}}', name]).stdout) as Record<string, { IPAddress: string }>;
  const ip = nets[network]?.IPAddress ?? '';
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) throw new Error(`${name} has no address on ${network}: ${JSON.stringify(nets)}`);
  return ip;
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
  });

  t.test('the default bridge: an address, a route out, a published port on 127.0.0.1, port and ps', async (t) => {
    await server(t, 'web', 8080, 'hello-web', ['-p', '127.0.0.1::8080']);
    const ip = ipOf('web');
    t.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `web has an address: ${ip}`);
    const port = e.tsctl(['port', 'web', '8080']);
    t.equal(port.status, 0, show(port));
    const m = /^127\.0\.0\.1:(\d+)$/.exec(port.stdout.trim());
    t.ok(m, `port prints the host address: ${port.stdout}`);
    t.equal((await fetchTcp('127.0.0.1', Number(m![1]))).trim(), 'hello-web', 'the published port answers on 127.0.0.1');
    t.equal((await fetchTcp(ip, 8080)).trim(), 'hello-web', 'the host reaches the container address directly');
    t.match(e.tsctl(['ps']).stdout, new RegExp(`127\\.0\\.0\\.1:${m![1]}->8080/tcp`), 'ps shows the port');
    const r = e.tsctl(['exec', 'web', 'ip', 'route']);
    t.match(r.stdout, /default via/, 'the container has a default route');
    t.match(e.tsctl(['exec', 'web', 'cat', '/etc/hosts']).stdout, new RegExp(`${ip.replace(/\./g, '\\.')}\\t`), '/etc/hosts names the container');
    const taken = e.tsctl(['run', '-d', '-p', `127.0.0.1:${m![1]}:80`, e.d.rootfs, 'sleep', '100']);
    t.not(taken.status, 0, 'the same host port cannot be published twice');
    t.match(taken.stderr, /port is already allocated/, show(taken));
    t.equal(e.tsctl(['rm', '-f', 'web']).status, 0);
  });

  t.test('port ranges, 127.0.0.1::PORT, udp; a stopped container shows no address or ports, as docker', async (t) => {
    const base = await freePortPair();
    await server(t, 'ranged', 80, 'r80', ['-p', `127.0.0.1:${base}-${base + 1}:80-81`, '-p', '127.0.0.1::5353/udp']);
    const r81 = e.tsctl(['exec', '-d', 'ranged', 'nc', '-ll', '-p', '81', '-e', 'echo', 'r81']);
    t.equal(r81.status, 0, show(r81));
    t.ok(await waitFor(() => e.tsctl(['exec', 'ranged', 'netstat', '-ltn']).stdout.includes(':81 '), 10_000), 'the second server listens');
    const lines = e.tsctl(['port', 'ranged']).stdout.trim().split('\n');
    t.equal(lines.length, 3, `port lists every mapping: ${lines.join(' | ')}`);
    t.match(lines[0], /^5353\/udp -> 127\.0\.0\.1:\d+$/, 'the udp port (a free host port), sorted first as docker sorts the lines');
    t.same(lines.slice(1), [`80/tcp -> 127.0.0.1:${base}`, `81/tcp -> 127.0.0.1:${base + 1}`], 'the range maps one to one');
    t.match(e.tsctl(['ps']).stdout, new RegExp(`127\\.0\\.0\\.1:${base}-${base + 1}->80-81/tcp`), 'ps shows the range as docker does');
    t.equal((await fetchTcp('127.0.0.1', base)).trim(), 'r80', 'the first port of the range answers');
    t.equal((await fetchTcp('127.0.0.1', base + 1)).trim(), 'r81', 'the second port of the range answers');
    // udp: a responder in the container's namespace (busybox has no udp server) answers a datagram
    const udpPort = Number(/^5353\/udp -> 127\.0\.0\.1:(\d+)$/m.exec(lines.join('\n'))?.[1] ?? 0);
    const netns = e.tsctl(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', 'ranged']).stdout.trim();
    const responder = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pong:'+m,r.port,r.address,()=>s.close()));s.bind(5353,()=>console.log('ready'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    t.teardown(() => {
      if (responder.exitCode === null) responder.kill('SIGKILL');
    });
    await new Promise<void>((resolve) => responder.stdout.once('data', () => resolve()));
    t.equal(await udpAsk('127.0.0.1', udpPort, 'ping'), 'pong:ping', 'a datagram to the published udp port reaches the container and the answer comes back');
    t.equal(e.tsctl(['stop', '-t', '1', 'ranged']).status, 0);
    const st = JSON.parse(e.tsctl(['inspect', '-f', '{{json .NetworkSettings}}', 'ranged']).stdout) as { IPAddress: string; Ports: Record<string, unknown>; Networks: Record<string, { IPAddress: string; NetworkID: string }> };
    t.equal(st.IPAddress, '', 'stopped: no IPAddress');
    t.same(st.Ports, {}, 'stopped: no ports');
    t.equal(st.Networks['bridge']?.IPAddress, '', 'stopped: the network is listed without an address');
    t.not(st.Networks['bridge']?.NetworkID ?? '', '', 'stopped: with its network id');
    t.equal(e.tsctl(['port', 'ranged']).stdout, '', 'stopped: port prints nothing');
    t.equal(e.tsctl(['rm', 'ranged']).status, 0);
    const bad = e.tsctl(['run', '--rm', '-p', '8000-8002:80-81', e.d.rootfs, 'true']);
    t.equal(bad.status, 125, show(bad));
    t.match(bad.stderr, /differ in length/, 'ranges of different lengths are refused');
  });

  t.test('a user-defined network: names and aliases resolve; other networks cannot be reached; internal has no way out', async (t) => {
    let r = e.tsctl(['network', 'create', '--label', 'team=a', 'front']);
    t.equal(r.status, 0, show(r));
    r = e.tsctl(['network', 'create', 'back']);
    t.equal(r.status, 0, show(r));
    r = e.tsctl(['network', 'create', '--internal', 'secret']);
    t.equal(r.status, 0, show(r));
    t.match(e.tsctl(['network', 'ls']).stdout, /front\s+bridge\s+local/, 'ls lists it');
    const insp = JSON.parse(e.tsctl(['network', 'inspect', 'front']).stdout) as { Labels: Record<string, string>; IPAM: { Config: { Subnet: string }[] } }[];
    t.equal(insp[0]!.Labels['team'], 'a', 'labels kept');
    await server(t, 'api', 9000, 'hello-api', ['--network', 'front', '--network-alias', 'backend']);
    // Each name is tried up to three times: on a loaded machine (CI, 2 cores) a connection has
    // once failed with "No route to host" (its ARP resolution timed out) right after one to the
    // same address had worked. A name that does not resolve, or the wrong server, still fails.
    r = e.tsctl(['run', '--rm', '--network', 'front', e.d.rootfs, 'sh', '-c', 'for h in api backend; do for i in 1 2 3; do nc $h 9000 </dev/null && break; done; done']);
    t.equal(r.stdout, 'hello-api\nhello-api\n', `by name and by alias (${show(r)})`);
    const apiIp = ipOf('api', 'front');
    r = e.tsctl(['run', '--rm', '--network', 'back', e.d.rootfs, 'sh', '-c', `nc -w 2 ${apiIp} 9000 </dev/null; ping -c 1 -W 1 ${apiIp} >/dev/null || echo blocked`]);
    t.equal(r.stdout.trim(), 'blocked', `another network cannot reach it (${show(r)})`);
    r = e.tsctl(['run', '--rm', '--network', 'secret', e.d.rootfs, 'ip', 'route']);
    t.notMatch(r.stdout, /default/, `internal: no default route (${show(r)})`);
    r = e.tsctl(['run', '--rm', '--network', 'secret', e.d.rootfs, 'sh', '-c', `nc -w 2 ${apiIp} 9000 </dev/null; ping -c 1 -W 1 ${apiIp} >/dev/null || echo blocked`]);
    t.equal(r.stdout.trim(), 'blocked', `internal cannot reach other networks (${show(r)})`);
    // connect / disconnect a running container
    await server(t, 'multi', 7000, 'hello-multi', ['--network', 'back']);
    r = e.tsctl(['network', 'connect', 'front', 'multi']);
    t.equal(r.status, 0, show(r));
    r = e.tsctl(['exec', 'multi', 'sh', '-c', 'nc api 9000 </dev/null']);
    t.equal(r.stdout.trim(), 'hello-api', `after connect, multi reaches api by name (${show(r)})`);
    r = e.tsctl(['network', 'rm', 'front']);
    t.equal(r.status, 1, 'a network in use cannot be removed');
    t.match(r.stderr, /has active endpoints/, show(r));
    r = e.tsctl(['network', 'disconnect', 'front', 'multi']);
    t.equal(r.status, 0, show(r));
    for (const n of ['api', 'multi']) t.equal(e.tsctl(['rm', '-f', n]).status, 0);
    r = e.tsctl(['network', 'rm', 'front', 'back', 'secret']);
    t.equal(r.status, 0, show(r));
    r = e.tsctl(['network', 'rm', 'bridge']);
    t.match(r.stderr, /pre-defined network/, 'the default network stays');
  });

  t.test('host, none and container modes; bad input', async (t) => {
    let r = e.tsctl(['run', '--rm', '--network', 'none', e.d.rootfs, 'ip', '-o', 'link']);
    t.equal(r.stdout.split('\n').filter((l) => l !== '').length, 1, `none: only lo (${show(r)})`);
    // host mode is the host's network namespace itself (a count of links raced other tests' veths)
    r = e.tsctl(['run', '--rm', '--network', 'host', e.d.rootfs, 'readlink', '/proc/self/ns/net']);
    t.equal(r.stdout.trim(), fs.readlinkSync('/proc/self/ns/net'), `host: the host's network namespace (${show(r)})`);
    await server(t, 'base', 6000, 'hello-base', []);
    r = e.tsctl(['run', '--rm', '--network', 'container:base', e.d.rootfs, 'sh', '-c', 'nc 127.0.0.1 6000 </dev/null']);
    t.equal(r.stdout.trim(), 'hello-base', `container:base shares its namespace (${show(r)})`);
    t.equal(e.tsctl(['rm', '-f', 'base']).status, 0);
    r = e.tsctl(['run', '--rm', '--network', 'nope', e.d.rootfs, 'true']);
    t.equal(r.status, 125, show(r));
    t.match(r.stderr, /network nope not found/);
    r = e.tsctl(['network', 'create', '--subnet', '10.1.2.3/16', 'bad']);
    t.match(r.stderr, /host bits are set/, show(r));
    r = e.tsctl(['run', '--rm', '-p', '99999', e.d.rootfs, 'true']);
    t.equal(r.status, 125, show(r));
    // a missing image, or a flag refused, leaves no network behind (and the image's error is the
    // one shown: it resolves while the flags are checked)
    r = e.tsctl(['run', '--rm', '--log-driver', 'bogus', 'no-such-image-here:1', 'true']);
    t.equal(r.status, 125, show(r));
    t.match(r.stderr, /no-such-image-here/, `the image's error (${show(r)})`);
    r = e.tsctl(['run', '--rm', '--log-driver', 'bogus', e.d.rootfs, 'true']);
    t.not(r.status, 0, show(r));
    t.match(r.stderr, /log driver "bogus"/, show(r));
    t.same(fs.readdirSync(`${e.d.state}/netns`), [], 'no namespace left by the refused runs');
    t.equal(e.tsctl(['ps', '-a', '-q']).stdout, '', 'nothing was left by the refused runs');
  });

  t.test('run --rm: tsrund releases the network as the task exits, even when tsctl is killed right then', async (t) => {
    const netns = (): string[] => (fs.existsSync(`${e.d.state}/netns`) ? fs.readdirSync(`${e.d.state}/netns`) : []);
    const before = netns().length;
    const tmpBefore = fs.readdirSync(e.tmp);
    const r = e.tsctl(['run', '--rm', '--name', 'exiting', e.d.rootfs, 'true'], { env: { TSRUND_TEST_CRASH_AT: 'tsctl:run-exited' } });
    t.teardown(() => {
      e.tsctl(['rm', '-f', 'exiting']);
    });
    // the killed tsctl's own fifo directory (its stdio), which only tsctl removes
    for (const d of fs.readdirSync(e.tmp).filter((d) => !tmpBefore.includes(d))) fs.rmSync(`${e.tmp}/${d}`, { recursive: true, force: true });
    t.equal(r.status, null, `tsctl died at the crash point: ${show(r)}`);
    t.match(r.stderr, 'crashing at tsctl:run-exited');
    t.ok(await waitFor(() => netns().length === before, 30_000), 'its network namespace is released without tsctl');
    t.equal(ipOf('exiting'), '', 'inspect shows no address');
    t.equal(e.tsctl(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'exiting']).stdout.trim(), 'exited 0', 'the record is left for rm (tsctl removes an attached --rm container, not tsrund)');
    const rm = e.tsctl(['rm', 'exiting']);
    t.equal(rm.status, 0, `rm: ${show(rm)}`);
  });

  t.test('kill -9 of tsrund: running containers keep their network; rm afterwards releases it', async (t) => {
    await server(t, 'survivor', 5000, 'still-here', ['-p', '127.0.0.1::5000']);
    const port = Number(e.tsctl(['port', 'survivor', '5000']).stdout.trim().split(':')[1]);
    await e.d.kill9();
    await e.d.start();
    t.equal((await fetchTcp('127.0.0.1', port)).trim(), 'still-here', 'the port still answers after a restart');
    const r = e.tsctl(['rm', '-f', 'survivor']);
    t.equal(r.status, 0, show(r));
    t.same(fs.readdirSync(`${e.d.state}/netns`), [], 'no namespace left');
  });
}
