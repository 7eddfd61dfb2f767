/*
 * The cgroup v2 driver: one directory in the unified tree.
 *
 *   <mount>/<a>/<b>/<leaf>      cgroup.subtree_control of the mount root, a and b gets every
 *                               controller their cgroup.controllers offers, so the leaf has the
 *                               files; the leaf itself enables nothing (processes live there,
 *                               and the "no internal processes" rule forbids both).
 *
 * Freezing is cgroup.freeze plus waiting for "frozen 1" in cgroup.events; SIGKILL to the
 * whole container is one write to cgroup.kill (5.14+). Device rules are an eBPF program
 * (devices-bpf.ts) installed through the loader the caller passes in.
 */
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import type { LinuxResources } from '../../spec/schema-linux';
import { runOps } from './apply';
import { POLL_MS, isSigkill, levelsBelow, removeTree, signalAll, withCleanup, type Freezer } from './common';
import { deviceRules } from './devices';
import type { CgroupDriver, DriverContext, Signal } from './driver';
import { pidsInTree, readFile, readIfExists, writeFile } from './fs';
import { dirInHierarchy } from './path';
import { v2Writes } from './resources';
import { v2Stats, type CgroupStats } from './stats';

/** The v2 driver. */
export function v2Driver(ctx: DriverContext): CgroupDriver {
  const mount = ctx.hierarchies.v2;
  if (mount === undefined) throw new TsrunError('FailedPrecondition', 'cgroup v2 is not mounted on this host');
  const dir = dirInHierarchy(mount, ctx.path);

  const controllersOf = (d: string): string[] => (readIfExists(ctx.fs, d, 'cgroup.controllers') ?? '').split(/\s+/).filter((c) => c !== '');

  // Enable in each ancestor what it offers but has not enabled. One write for all, then one
  // per controller if that fails (a threaded or busy parent may refuse some): a controller
  // left disabled here surfaces later as a clear "not enabled" error from apply, only if the
  // container asks for it.
  const enableControllers = (): void => {
    for (const level of [mount.mountpoint, ...levelsBelow(mount.mountpoint, dir).slice(0, -1)]) {
      const enabled = new Set((readIfExists(ctx.fs, level, 'cgroup.subtree_control') ?? '').split(/\s+/));
      const want = controllersOf(level).filter((c) => !enabled.has(c));
      if (want.length === 0) continue;
      try {
        writeFile(ctx.fs, level, 'cgroup.subtree_control', want.map((c) => `+${c}`).join(' '));
      } catch {
        for (const c of want) {
          try {
            writeFile(ctx.fs, level, 'cgroup.subtree_control', `+${c}`);
          } catch {
            // See above: reported by apply when the container needs it.
          }
        }
      }
    }
  };

  const explainMissing = (controller: string, d: string, err: TsrunError): TsrunError => {
    if (controller === 'cgroup') return err;
    const available = controllersOf(d);
    if (available.includes(controller)) return err;
    return new TsrunError(
      'FailedPrecondition',
      `cgroup controller ${JSON.stringify(controller)} is not enabled for ${d} (cgroup.controllers: ${available.length === 0 ? 'none' : available.join(' ')})`,
      { cause: err },
    );
  };

  const freezer: Freezer = {
    canFreeze: true,
    isFrozen: () => readIfExists(ctx.fs, dir, 'cgroup.freeze') === '1',
    freeze: (state) => {
      const want = state === 'frozen' ? '1' : '0';
      writeFile(ctx.fs, dir, 'cgroup.freeze', want);
      for (let waited = 0; ; waited += POLL_MS) {
        const events = readFile(ctx.fs, dir, 'cgroup.events');
        const frozen = /^frozen (\d)$/m.exec(events)?.[1];
        if (frozen === want) return;
        if (waited >= ctx.timeoutMs) {
          const err = new TsrunError(
            'Unavailable',
            `${state === 'frozen' ? 'freeze' : 'thaw'} ${path.join(dir, 'cgroup.freeze')}: cgroup.events still says frozen ${frozen ?? '(missing)'} after ${ctx.timeoutMs} ms`,
          );
          if (state !== 'frozen') throw err;
          try {
            writeFile(ctx.fs, dir, 'cgroup.freeze', '0');
          } catch (thawErr) {
            throw withCleanup(err, thawErr);
          }
          throw err;
        }
        ctx.sleep(POLL_MS);
      }
    },
  };

  const pids = (): number[] => pidsInTree(ctx.fs, dir);

  return {
    create(): void {
      try {
        ctx.fs.mkdir(dir);
      } catch (err) {
        throw wrapSystemError(`create cgroup ${dir}`, err);
      }
      enableControllers();
    },
    addProcess(pid: number): void {
      writeFile(ctx.fs, dir, 'cgroup.procs', String(pid));
    },
    joinTargets: () => [{ mode: 'into', path: dir }],
    apply(resources: LinuxResources): void {
      runOps(ctx.fs, v2Writes(resources), { dirFor: () => dir, explainMissing });
      if (resources.devices === undefined) return;
      if (ctx.devices === undefined) {
        throw new TsrunError('FailedPrecondition', `apply linux.resources.devices to ${dir}: cgroup v2 device rules need the eBPF device-program loader, and none was given`);
      }
      ctx.devices(dir, deviceRules(resources.devices));
    },
    freeze: (state) => freezer.freeze(state),
    isFrozen: () => freezer.isFrozen(),
    stats(): CgroupStats {
      return v2Stats(ctx.fs, dir);
    },
    destroy(): void {
      removeTree(ctx, dir);
    },
    pids,
    kill(signal: Signal): void {
      if (isSigkill(signal) && ctx.fs.exists(path.join(dir, 'cgroup.kill'))) {
        // A v2-frozen task still dies on a fatal signal (cgroup-v2.rst, cgroup.freeze): no thaw.
        writeFile(ctx.fs, dir, 'cgroup.kill', '1');
        return;
      }
      signalAll(ctx, freezer, pids, signal);
    },
    paths(): Readonly<Record<string, string>> {
      return { [mount.mountpoint]: dir };
    },
  };
}
