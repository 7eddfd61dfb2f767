/**
 * The Kubernetes path: containerd 1.6's CRI plugin (private root, state, socket and config; CNI
 * bridge and subnet of its own; restrict_oom_score_adj) with two runtime handlers of its runc shim,
 * the runtime under test and runc, driven through the CRI API as kubelet drives it. The same pod
 * scenario runs once per handler: a pause sandbox (catatonit) and two busybox containers sharing
 * its network, IPC and UTS namespaces; one serves with nc, the other reaches it on 127.0.0.1 and
 * sees its SysV IPC objects; ExecSync output and exit codes; ContainerStatus states and exit codes
 * (a trapped SIGTERM, a SIGKILL after the stop timeout); CRI-format logs; seccomp RuntimeDefault;
 * oom_score_adj; the pod's cgroup parent; and afterwards nothing left: mounts, veths, iptables
 * rules, IP leases, CNI cache, namespaces, processes, cgroups, runtime state, the bridge.
 * Images are built here and imported with ctr; nothing is pulled.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { criUnavailable, masqChain, natChainExists, startCriContainerd, type CriEngine, type CriHandler } from '../helpers/cri';
import { CriError, type CriContainerStatus, type CriExecResult } from '../helpers/cri-api';
import { catatonitPath } from '../helpers/cri-image';
import { containerConfig, CRI_LOG_LINE, importTestImages, PAUSE_IMAGE, podCgroupParent, podConfig } from '../helpers/cri-pod';
import { allPids, nsId } from '../helpers/host';
import { requires } from '../helpers/requires';
import { runcPath, runtimePath } from '../helpers/runtime';

const IPC_TOOLS = ['/usr/bin/ipcmk', '/usr/bin/ipcs'];
const PORT = 8080;

function skipReason(): string | undefined {
  const cri = criUnavailable();
  if (cri !== undefined) return cri;
  if (catatonitPath() === undefined) return 'catatonit is not installed (make test installs it with apt)';
  const ipc = IPC_TOOLS.filter((f) => !fs.existsSync(f));
  if (ipc.length > 0) return `util-linux IPC tools missing: ${ipc.join(' ')}`;
  return undefined;
}

/** The cgroup path of `pid` (the memory hierarchy on v1, the unified one on v2). */
function cgroupPathOf(pid: number): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const line = lines.find((l) => l.split(':')[1]?.split(',').includes('memory')) ?? lines.find((l) => l.startsWith('0::')) ?? '';
  return line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
}

/** Pids (other than the kernel's) whose namespace of `kind` is `id`. */
function holders(kind: 'net' | 'ipc', id: string): number[] {
  return allPids().filter((p) => {
    try {
      return nsId(p, kind) === id;
    } catch {
      return false;
    }
  });
}

const text = (b: Buffer): string => b.toString('utf8');

async function podScenario(t: Test, e: CriEngine, h: CriHandler): Promise<void> {
  const call = e.client.call.bind(e.client);
  const name = `pod-${h.name}`;
  const logFrom = fs.statSync(e.log).size;
  const pod = podConfig(e, name);
  const { podSandboxId } = await call<{ podSandboxId: string }>('RunPodSandbox', { config: pod, runtimeHandler: h.name });
  t.ok(podSandboxId, `RunPodSandbox on handler ${h.name}`);
  let podGone = false;
  t.teardown(async () => {
    if (podGone) return;
    await call('StopPodSandbox', { podSandboxId }).catch(() => undefined);
    await call('RemovePodSandbox', { podSandboxId }).catch(() => undefined);
  });

  const ps = await call<{ status: { state: string; runtimeHandler: string; network: { ip: string } }; info: Record<string, string> }>('PodSandboxStatus', { podSandboxId, verbose: true });
  t.equal(ps.status.state, 'SANDBOX_READY', 'the sandbox is ready');
  t.equal(ps.status.runtimeHandler, h.name, 'on the handler asked for');
  const prefix = e.subnet.split('.').slice(0, 3).join('.');
  t.ok(ps.status.network.ip.startsWith(`${prefix}.`), `the pod got an address in ${e.subnet} (${ps.status.network.ip})`);
  const chain = masqChain(e.netName, podSandboxId);
  t.ok(natChainExists(chain), `the bridge plugin made the pod's masquerade chain ${chain}`);
  const pausePid = Number((JSON.parse(ps.info['info'] ?? '{}') as { pid?: number }).pid);
  t.ok(pausePid > 0, `the sandbox's pid (${pausePid})`);
  const ownAdj = fs.readFileSync(`/proc/${e.pid}/oom_score_adj`, 'utf8').trim();
  t.equal(fs.readFileSync(`/proc/${pausePid}/oom_score_adj`, 'utf8').trim(), ownAdj, "restrict_oom_score_adj: the sandbox's -998 became containerd's own");
  t.equal(cgroupPathOf(pausePid), `${podCgroupParent(e, name)}/${podSandboxId}`, 'the sandbox is in the pod cgroup parent');

  const server = containerConfig('server', ['/bin/sh', '-c', `trap 'exit 7' TERM; echo serving; while :; do echo "pong from $(hostname)" | nc -l -p ${PORT} & wait $!; done`], { oomScoreAdj: 500 });
  const client = containerConfig('client', ['/bin/sh', '-c', 'echo out-line; echo err-line >&2; exec sleep 100000'], { oomScoreAdj: -100 });
  const ids: Record<string, string> = {};
  for (const [n, c] of [['server', server], ['client', client]] as const) {
    const r = await call<{ containerId: string }>('CreateContainer', { podSandboxId, config: c, sandboxConfig: pod });
    ids[n] = r.containerId;
    const st = await call<{ status: CriContainerStatus }>('ContainerStatus', { containerId: r.containerId });
    t.equal(st.status.state, 'CONTAINER_CREATED', `${n}: created`);
    await call('StartContainer', { containerId: r.containerId });
  }
  const serverId = ids['server']!;
  const clientId = ids['client']!;
  const pidOf = async (id: string): Promise<{ status: CriContainerStatus; pid: number }> => {
    const st = await call<{ status: CriContainerStatus; info: Record<string, string> }>('ContainerStatus', { containerId: id, verbose: true });
    return { status: st.status, pid: Number((JSON.parse(st.info['info'] ?? '{}') as { pid?: number }).pid) };
  };
  const srv = await pidOf(serverId);
  const cli = await pidOf(clientId);
  t.equal(srv.status.state, 'CONTAINER_RUNNING', 'server: running');
  t.equal(cli.status.state, 'CONTAINER_RUNNING', 'client: running');
  t.ok(srv.status.startedAt > 0, 'server: startedAt is set');

  const listed = await call<{ containers: { id: string; state: string; metadata: { name: string } }[] }>('ListContainers', { filter: { podSandboxId } });
  t.same(listed.containers.map((c) => `${c.metadata.name}:${c.state}`).sort(), ['client:CONTAINER_RUNNING', 'server:CONTAINER_RUNNING'], 'ListContainers: both, running');

  for (const kind of ['net', 'ipc', 'uts'] as const) {
    t.equal(nsId(srv.pid, kind), nsId(pausePid, kind), `server joined the sandbox's ${kind} namespace`);
    t.equal(nsId(cli.pid, kind), nsId(pausePid, kind), `client joined the sandbox's ${kind} namespace`);
  }
  t.not(nsId(srv.pid, 'pid'), nsId(cli.pid, 'pid'), 'PID namespaces are per container');
  t.not(nsId(srv.pid, 'ipc'), nsId('self', 'ipc'), 'the pod IPC namespace is not the host one');
  const podNet = nsId(pausePid, 'net');
  const podIpc = nsId(pausePid, 'ipc');

  t.equal(fs.readFileSync(`/proc/${srv.pid}/oom_score_adj`, 'utf8').trim(), '500', 'oom_score_adj 500 reached the server');
  t.equal(fs.readFileSync(`/proc/${cli.pid}/oom_score_adj`, 'utf8').trim(), String(Math.max(-100, Number(ownAdj))), "the client's -100 was restricted to containerd's own");
  t.equal(cgroupPathOf(srv.pid), `${podCgroupParent(e, name)}/${serverId}`, "the server's cgroup is <pod cgroup parent>/<id>");

  const exec = (id: string, cmd: string, timeout = 30) => call<CriExecResult>('ExecSync', { containerId: id, cmd: ['/bin/sh', '-c', cmd], timeout });
  const reach = await exec(clientId, `i=0; while [ $i -lt 100 ]; do r=$(nc 127.0.0.1 ${PORT} </dev/null) && [ -n "$r" ] && { echo "$r"; exit 0; }; sleep 0.1; i=$((i+1)); done; exit 1`);
  t.equal(reach.exitCode, 0, `the client reached the server on 127.0.0.1:${PORT} (${text(reach.stderr)})`);
  t.equal(text(reach.stdout).trim(), `pong from ${name}`, "the server's answer, with the pod's hostname");

  const out = await exec(clientId, 'echo to-out; echo to-err >&2; exit 5');
  t.equal(out.exitCode, 5, 'ExecSync: the exit code');
  t.equal(text(out.stdout), 'to-out\n', 'ExecSync: stdout');
  t.equal(text(out.stderr), 'to-err\n', 'ExecSync: stderr');
  const sec = await exec(clientId, "grep '^Seccomp:' /proc/self/status /proc/1/status");
  t.match(text(sec.stdout), /self\/status:Seccomp:\s+2\n.*1\/status:Seccomp:\s+2/s, 'seccomp RuntimeDefault: a filter in init and in the exec');
  const missing = await call('ExecSync', { containerId: clientId, cmd: ['/nonexistent'], timeout: 30 }).then(
    (r) => r,
    (err: unknown) => err,
  );
  t.ok(missing instanceof CriError && /\/nonexistent/.test(missing.details), `ExecSync of a missing program fails, naming it (${String(missing instanceof CriError ? missing.details : JSON.stringify(missing))})`);

  const mk = await exec(serverId, 'ipcmk -M 4096 && ipcmk -Q');
  t.equal(mk.exitCode, 0, `ipcmk in the server (${text(mk.stderr)})`);
  const shmId = /Shared memory id: (\d+)/.exec(text(mk.stdout))?.[1];
  const msgId = /Message queue id: (\d+)/.exec(text(mk.stdout))?.[1];
  t.ok(shmId !== undefined && msgId !== undefined, `ipcmk made a segment and a queue (${text(mk.stdout).trim()})`);
  const seen = await exec(clientId, 'ipcs -m; ipcs -q');
  t.match(text(seen.stdout), new RegExp(`^0x[0-9a-f]+\\s+${shmId}\\s`, 'm'), 'the client sees the shared memory segment');
  t.match(text(seen.stdout), new RegExp(`^0x[0-9a-f]+\\s+${msgId}\\s`, 'm'), 'the client sees the message queue');

  const logFile = path.join(String(pod['logDirectory']), 'client.log');
  let log = '';
  for (let i = 0; i < 100 && !(log.includes(' stdout F out-line\n') && log.includes(' stderr F err-line\n')); i++) {
    await new Promise((r) => setTimeout(r, 100));
    log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
  }
  const lines = log.split('\n').filter((l) => l !== '');
  t.ok(lines.length >= 2 && lines.every((l) => CRI_LOG_LINE.test(l)), `every log line is "<rfc3339nano> <stream> F <text>" (${JSON.stringify(lines)})`);
  t.ok(lines.some((l) => / stdout F out-line$/.test(l)), 'stdout reached the CRI log');
  t.ok(lines.some((l) => / stderr F err-line$/.test(l)), 'stderr reached the CRI log');
  t.equal(cli.status.logPath, logFile, 'ContainerStatus names the log path');

  // A container in the sandbox's PID namespace (shareProcessNamespace) that exits by itself: the
  // runc shim then runs `<runtime> kill --all <id> KILL` on the stopped container for what is left
  // in its cgroup, which must succeed as with runc (no "failed to kill init's children" below).
  const sidecarCfg = containerConfig('sidecar', ['/bin/sh', '-c', "echo pid1=$(tr '\\0' ' ' </proc/1/cmdline); exit 3"], { sharePid: true });
  const { containerId: sidecarId } = await call<{ containerId: string }>('CreateContainer', { podSandboxId, config: sidecarCfg, sandboxConfig: pod });
  await call('StartContainer', { containerId: sidecarId });
  let sidecar = (await pidOf(sidecarId)).status;
  for (let i = 0; i < 100 && sidecar.state !== 'CONTAINER_EXITED'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    sidecar = (await pidOf(sidecarId)).status;
  }
  t.equal(sidecar.state, 'CONTAINER_EXITED', 'sidecar: exited by itself');
  t.equal(sidecar.exitCode, 3, 'sidecar: its exit code');
  t.match(fs.readFileSync(path.join(String(pod['logDirectory']), 'sidecar.log'), 'utf8'), /^\S+ stdout F pid1=\/pause -P$/m, "sidecar: pid 1 of its PID namespace is the sandbox's pause");

  await call('StopContainer', { containerId: serverId, timeout: 10 });
  const stopped = await pidOf(serverId);
  t.equal(stopped.status.state, 'CONTAINER_EXITED', 'server: exited after StopContainer');
  t.equal(stopped.status.exitCode, 7, "server: its TERM trap's exit code");
  t.ok(stopped.status.finishedAt >= stopped.status.startedAt, 'server: finishedAt is set');
  await call('StopContainer', { containerId: clientId, timeout: 1 });
  const killed = (await pidOf(clientId)).status;
  t.equal(killed.state, 'CONTAINER_EXITED', 'client: exited after StopContainer');
  t.equal(killed.exitCode, 137, 'client: SIGKILL after the stop timeout (sleep as pid 1 ignores TERM)');
  t.match(fs.readFileSync(path.join(String(pod['logDirectory']), 'server.log'), 'utf8'), /^\S+ stdout F serving$/m, "the server's log");

  for (const id of [serverId, clientId, sidecarId]) await call('RemoveContainer', { containerId: id });
  const after = await call<{ containers: unknown[] }>('ListContainers', { filter: { podSandboxId } });
  t.same(after.containers, [], 'RemoveContainer: none listed');
  await call('StopPodSandbox', { podSandboxId });
  const notReady = await call<{ status: { state: string } }>('PodSandboxStatus', { podSandboxId });
  t.equal(notReady.status.state, 'SANDBOX_NOTREADY', 'StopPodSandbox: not ready');
  await call('RemovePodSandbox', { podSandboxId });
  podGone = true;

  t.same(e.leftovers(), [], 'nothing of the pod is left (mounts, veths, iptables, leases, CNI cache, processes, cgroups, runtime state)');
  t.notOk(natChainExists(chain), `the pod's iptables chain ${chain} is gone`);
  t.same(holders('net', podNet), [], "no process is left in the pod's network namespace");
  t.same(holders('ipc', podIpc), [], "no process is left in the pod's IPC namespace (its segment and queue went with it)");
  // (the ExecSync of /nonexistent above is logged as an error by design)
  const logged = fs.readFileSync(e.log, 'utf8').slice(logFrom).split('\n');
  const errors = logged.filter((l) => /level=error/.test(l) && !l.includes('/nonexistent'));
  t.same(errors, [], "containerd logged no error for this pod (runc's shim calls to the runtime all succeeded)");
}

t.test('containerd 1.6 CRI: a pod on tsrun and on runc', async (t) => {
  if (!requires(t, 'root', 'busybox', 'runc')) return;
  const skip = skipReason();
  if (skip !== undefined) {
    t.plan(0, skip);
    return;
  }
  if (!fs.existsSync(runtimePath)) throw new Error(`runtime under test not found at ${runtimePath}: run "make build" or set TSRUN`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-cri-'));
  const handlers: CriHandler[] = [
    { name: 'tsrun', binary: runtimePath },
    { name: 'runc', binary: runcPath! },
  ];
  let engine: CriEngine | undefined;
  t.teardown(async () => {
    // containerd (its mounts are under dir) before dir
    const forced = (await engine?.stop()) ?? [];
    if (forced.length > 0) t.comment(`teardown forced: ${forced.join('; ')}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const e = await startCriContainerd(path.join(dir, 'containerd'), handlers, PAUSE_IMAGE);
  engine = e;
  t.comment(`CNI network ${e.netName}: bridge ${e.bridge}, subnet ${e.subnet} (overlaps no route or address of this host)`);
  importTestImages(e, path.join(dir, 'images'), IPC_TOOLS);
  const v = await e.client.call<{ runtimeName: string; runtimeApiVersion: string }>('Version', { version: 'v1' });
  t.equal(v.runtimeName, 'containerd', 'Version: containerd answers');
  t.equal(v.runtimeApiVersion, 'v1', 'Version: CRI runtime.v1');

  for (const h of handlers) await t.test(`a pod on the ${h.name} handler (${h.binary})`, (t) => podScenario(t, e, h));

  await t.test('containerd stopped: nothing left on the host', async (t) => {
    const bridge = e.bridge;
    t.same(await e.stop(), [], 'stop had nothing to force (no pod, process, cgroup or CNI cache file left)');
    t.notOk(fs.existsSync(`/sys/class/net/${bridge}`), `the bridge ${bridge} is gone`);
    t.notOk(fs.existsSync(e.dir), "containerd's dir (root, state, netns mounts, IPAM leases, logs) is gone");
  });
});
