/*
 * A dockerd of the benchmark's own, started in `dir` (data root, exec root, pid file, socket and
 * log all there; no bridge, no iptables; its containers under a cgroup parent named with `tag`),
 * and torn down with every container it still has, its cgroups and its mounts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupDirsFor, removeCgroupTree } from '../../test/helpers/host';

/** A running dockerd. */
export interface Dockerd {
  /** `unix://<dir>/docker.sock` */
  readonly host: string;
  /** argv of `docker -H HOST args…` */
  docker(args: readonly string[]): string[];
  /** `dockerd --version` */
  readonly version: string;
  /** remove its containers, stop it, remove its cgroups, unmount its data root */
  stop(): Promise<void>;
}

/** SIGTERM `p` and wait for its exit (SIGKILL after 20 s); at once when it has already exited. */
export function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(); // its 'exit' has come and gone
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

/** Start dockerd in `dir` (made here) and wait until `docker version` answers (60 s). */
export async function startDockerd(dir: string, tag: string): Promise<Dockerd> {
  fs.mkdirSync(dir, { recursive: true });
  const host = `unix://${dir}/docker.sock`;
  const cgroupParent = `tsrun-bench-docker${tag}`;
  fs.writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
  const logPath = path.join(dir, 'dockerd.log');
  const log = fs.openSync(logPath, 'a');
  const daemon = spawn(
    'dockerd',
    ['--config-file', `${dir}/daemon.json`, '--data-root', `${dir}/docker`, '--exec-root', `${dir}/docker-exec`, '--pidfile', `${dir}/docker.pid`, '-H', host, '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--cgroup-parent', `/${cgroupParent}`],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  const docker = (args: readonly string[]): string[] => ['docker', '-H', host, ...args];
  const stop = async (): Promise<void> => {
    const ids = spawnSync('docker', ['-H', host, 'ps', '-aq'], { encoding: 'utf8' }).stdout?.split('\n').filter((x) => x !== '') ?? [];
    if (ids.length > 0) spawnSync('docker', ['-H', host, 'rm', '-f', ...ids], { stdio: 'ignore' });
    await stopProcess(daemon);
    for (const d of cgroupDirsFor(cgroupParent)) removeCgroupTree(d);
    spawnSync('umount', ['-R', `${dir}/docker`], { stdio: 'ignore' });
  };
  const deadline = Date.now() + 60_000;
  while (spawnSync('docker', ['-H', host, 'version'], { stdio: 'ignore' }).status !== 0) {
    if (Date.now() > deadline || daemon.exitCode !== null) {
      await stop();
      throw new Error(`dockerd did not come up: ${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const version = (spawnSync('dockerd', ['--version'], { encoding: 'utf8' }).stdout ?? '').trim();
  return { host, docker, version, stop };
}
