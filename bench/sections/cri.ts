/*
 * The Kubernetes path: a pod started through containerd 1.6's CRI plugin, as kubelet starts one,
 * with runc and with tsrun as the runtime of the runc shim (two runtime handlers of one
 * containerd, test/helpers/cri.ts; the same images and configs as test/integration/cri.test.ts).
 *
 *   RunPodSandbox     pause container (catatonit: shim, runtime create + start) + CNI bridge
 *   CreateContainer   a busybox `sleep` container in the pod (containerd metadata only)
 *   StartContainer    shim, runtime create + start
 *   pod start         the three above
 *   teardown          StopContainer (timeout 0: SIGKILL), RemoveContainer, StopPodSandbox,
 *                     RemovePodSandbox
 *
 * Each call is timed from this process: gRPC round trip, containerd's work, the shim and every
 * runtime invocation behind it. One untimed pod per handler first (image snapshots, shim
 * binaries and runtime files warm), then every handler once per round in rotating order.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CNI_BIN_DIR, criUnavailable, startCriContainerd, type CriEngine, type CriHandler } from '../../test/helpers/cri';
import { catatonitPath } from '../../test/helpers/cri-image';
import { containerConfig, importTestImages, PAUSE_IMAGE, podConfig } from '../../test/helpers/cri-pod';
import { which } from '../../test/helpers/host';
import { medianP95, ratio, table } from '../lib/report';
import { samples, type BenchContext, type Samples, type Section, type SectionReport } from '../lib/section';
import { median, rotation } from '../lib/stats';

const STEPS = ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'pod start', 'teardown'] as const;

function since(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Start a one-container pod on `h` and tear it down; adds each step's ms to `s` unless s is undefined. */
async function podCycle(e: CriEngine, h: CriHandler, name: string, s: Samples | undefined): Promise<void> {
  const call = e.client.call.bind(e.client);
  const pod = podConfig(e, name);
  const t0 = process.hrtime.bigint();
  const { podSandboxId } = await call<{ podSandboxId: string }>('RunPodSandbox', { config: pod, runtimeHandler: h.name });
  const run = since(t0);
  try {
    const t1 = process.hrtime.bigint();
    const { containerId } = await call<{ containerId: string }>('CreateContainer', { podSandboxId, config: containerConfig('sleeper', ['/bin/sleep', '100000']), sandboxConfig: pod });
    const create = since(t1);
    const t2 = process.hrtime.bigint();
    await call('StartContainer', { containerId });
    const start = since(t2);
    const t3 = process.hrtime.bigint();
    await call('StopContainer', { containerId, timeout: 0 });
    await call('RemoveContainer', { containerId });
    await call('StopPodSandbox', { podSandboxId });
    await call('RemovePodSandbox', { podSandboxId });
    const teardown = since(t3);
    if (s !== undefined) {
      for (const [step, ms] of [['RunPodSandbox', run], ['CreateContainer', create], ['StartContainer', start], ['pod start', run + create + start], ['teardown', teardown]] as const) s.add(step, h.name, ms);
    }
  } catch (err) {
    await call('StopPodSandbox', { podSandboxId }).catch(() => undefined);
    await call('RemovePodSandbox', { podSandboxId }).catch(() => undefined);
    throw err;
  }
  fs.rmSync(String(pod['logDirectory']), { recursive: true, force: true });
}

function lines(file: string, args: readonly string[]): string[] {
  const r = spawnSync(file, args, { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/** What the section compared besides tsrun and runc (their versions come with the CLI section). */
function versions(): Record<string, string> {
  const cni = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'containernetworking-plugins'], { encoding: 'utf8' });
  return {
    containerd: lines('containerd', ['--version'])[0] ?? 'unknown',
    'containerd-shim-runc-v2': lines('containerd-shim-runc-v2', ['-v']).slice(1).join(', ') || 'unknown',
    catatonit: lines(catatonitPath() ?? 'catatonit', ['--version'])[0] ?? 'unknown',
    'CNI plugins': cni.status === 0 ? `containernetworking-plugins ${cni.stdout.trim()} (${CNI_BIN_DIR})` : CNI_BIN_DIR,
  };
}

function report(s: Samples, handlers: readonly CriHandler[], runs: number): string {
  const med = (step: string, h: string): number => median([...s.get(step, h)].sort((a, b) => a - b));
  const out = ['## CRI pod start (containerd 1.6 + runc shim)\n'];
  out.push(
    `Wall time of each CRI call in ms, median / p95 over ${runs} interleaved rounds, through containerd 1.6's CRI plugin with its runc shim (containerd-shim-runc-v2) running runc or tsrun (two runtime handlers of one containerd; CNI bridge networking; catatonit as the pause image; a busybox \`sleep\` container). One pod per handler per round, started and torn down.\n`,
  );
  out.push(table([['step', ...handlers.map((h) => h.name), 'tsrun ÷ runc'], ...STEPS.map((step) => [step, ...handlers.map((h) => medianP95(s.get(step, h.name))), ratio(med(step, 'tsrun') / med(step, 'runc'))])]));
  out.push(
    "\nWhat runs the runtime binary: RunPodSandbox starts a shim that runs `create` and `start` of the pause container (and CNI's plugins set up the network); CreateContainer only records the container in containerd; StartContainer starts a shim that runs `create` and `start`; the teardown runs `kill`, `kill --all`, `delete` and each shim's cleanup `delete --force`, for the container and the pause. The differences between the columns are those runtime invocations, so they follow the CLI start-up times of the CLI latency section.",
  );
  return out.join('\n');
}

/** The CRI section. */
export const criSection: Section = {
  name: 'cri',
  unavailable(ctx) {
    if (process.geteuid?.() !== 0) return 'needs root (containerd, CNI, containers)';
    if (!fs.existsSync(path.join(ctx.repo, 'bin', 'tsrun'))) return 'bin/tsrun is not built (make bin/tsrun)';
    if (which('runc') === undefined) return 'runc is not installed';
    if (catatonitPath() === undefined) return 'catatonit is not installed (the pause image)';
    return criUnavailable();
  },
  async run(ctx: BenchContext): Promise<SectionReport> {
    const dir = path.join(ctx.tmp, 'cri');
    const handlers: CriHandler[] = [
      { name: 'runc', binary: which('runc')! },
      { name: 'tsrun', binary: path.join(ctx.repo, 'bin', 'tsrun') },
    ];
    const e = await startCriContainerd(path.join(dir, 'containerd'), handlers, PAUSE_IMAGE);
    const s = samples();
    try {
      importTestImages(e, path.join(dir, 'images'));
      for (const h of handlers) await podCycle(e, h, `warm-${h.name}`, undefined);
      for (let round = 0; round < ctx.runs && !ctx.stopping(); round++) {
        for (const h of rotation(handlers, round)) await podCycle(e, h, `r${round}-${h.name}`, s);
        if ((round + 1) % 10 === 0) ctx.progress(`cri: ${round + 1}/${ctx.runs} rounds`);
      }
    } finally {
      const forced = await e.stop();
      if (forced.length > 0) ctx.progress(`cri: teardown forced: ${forced.join('; ')}`);
    }
    return { markdown: report(s, handlers, ctx.runs), versions: versions() };
  },
};
