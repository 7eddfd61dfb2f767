/**
 * Pods as kubelet describes them to the CRI, for the CRI test and bench: the images they run
 * (built and imported here), the sandbox config (network and IPC shared by the pod, PID per
 * container, a cgroup parent per pod, a log directory) and container configs (RuntimeDefault
 * seccomp, an oom_score_adj, a CRI log file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CriEngine } from './cri';
import { buildBusyboxImage, buildPauseImage } from './cri-image';

/** The sandbox image containerd's config names (catatonit as /pause). */
export const PAUSE_IMAGE = 'tsrun.test/pause:1';
/** The containers' image (static busybox, util-linux ipcmk/ipcs). */
export const BUSYBOX_IMAGE = 'tsrun.test/busybox:1';

/** Build both images under `dir` and import them into the engine's k8s.io namespace. */
export function importTestImages(e: CriEngine, dir: string, extraBinaries: readonly string[] = []): void {
  fs.mkdirSync(dir, { recursive: true });
  e.importImage(buildPauseImage(dir, PAUSE_IMAGE));
  e.importImage(buildBusyboxImage(dir, BUSYBOX_IMAGE, extraBinaries));
}

const SHARED = { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } as const;

/** A pod's config: hostname = name, cgroup parent <cgroupRoot>/<name>, logs in <logDir>/<name>. */
export function podConfig(e: CriEngine, name: string): Record<string, unknown> {
  const logDirectory = path.join(e.logDir, name);
  fs.mkdirSync(logDirectory, { recursive: true });
  return {
    metadata: { name, uid: `${name}-uid-${process.pid}`, namespace: 'tsrun-test', attempt: 0 },
    hostname: name,
    logDirectory,
    labels: { 'io.tsrun.test': 'cri' },
    linux: { cgroupParent: podCgroupParent(e, name), securityContext: { namespaceOptions: SHARED } },
  };
}

/** The cgroup parent of pod `name`. */
export function podCgroupParent(e: CriEngine, name: string): string {
  return `${e.cgroupRoot}/${name}`;
}

/** Options of one container. */
export interface ContainerOptions {
  readonly oomScoreAdj?: number;
  readonly memoryLimit?: number;
  /** join the sandbox's PID namespace (kubelet's shareProcessNamespace) instead of one of its own */
  readonly sharePid?: boolean;
}

/** A busybox container's config running `command`, logging to <pod log dir>/<name>.log. */
export function containerConfig(name: string, command: readonly string[], opts: ContainerOptions = {}): Record<string, unknown> {
  return {
    metadata: { name, attempt: 0 },
    image: { image: BUSYBOX_IMAGE },
    command,
    logPath: `${name}.log`,
    labels: { 'io.tsrun.test': 'cri' },
    linux: {
      resources: { oomScoreAdj: opts.oomScoreAdj ?? 0, memoryLimitInBytes: opts.memoryLimit ?? 0 },
      securityContext: { namespaceOptions: { ...SHARED, pid: opts.sharePid === true ? 'POD' : 'CONTAINER' }, seccomp: { profileType: 'RuntimeDefault' } },
    },
  };
}

/** The CRI log line format: `<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`. */
export const CRI_LOG_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$/;
