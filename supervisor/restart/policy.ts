/*
 * Restart policies for tsctl containers, docker's semantics:
 *
 *   label tsctl.restart-policy = no | always | on-failure[:N] | unless-stopped
 *   label tsctl.manually-stopped = true      set by `tsctl stop/kill` before it signals: always and
 *                                            unless-stopped then leave the container down (docker
 *                                            restarts `always` containers again on daemon start;
 *                                            tsrund keeps it simple and treats both alike)
 *
 *   init exit ─▶ policy says restart? ─▶ label tsctl.restart-state=restarting, wait the back-off
 *            ─▶ Tasks.Delete of the exited task, Tasks.Create (same stdio), Tasks.Start
 *            ─▶ restart count +1 (restarts table and label tsctl.restart-count); state label removed
 *
 * The restart count is the label (tsctl start removes it: a manual start begins a new count, as in
 * docker); the restarts table keeps the last exit. `tsctl.auto-remove=true` (run --rm -d) makes
 * an exit that is not restarted delete the task, the container record and its json-file log, and
 * (hooks.onRemoved) what else belongs to the record: its snapshot, network and anonymous volumes.
 *
 * A container made from an image (a snapshot key on the record) has no rootfs in its spec: its
 * client sent the snapshot's mounts with Tasks.Create, as ctr does. The restarted task gets them
 * again from the snapshotter (hooks.rootfsMounts), or it would start on an empty root path.
 *
 * Back-off: 100 ms doubling per consecutive restart up to 60 s; a container that ran for 10 s
 * or more counts as healthy again and the delay starts over (docker's rule). The step and the
 * time of the last restart are kept in the restarts table, so a crash-looping container is not
 * restarted at 100 ms again after every tsrund restart. The exited task must still be there,
 * stopped, when the back-off ends: a client that deleted it took over.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { formatRfc3339, now } from '../proto/index';
import type { Logger } from '../log';
import type { ContainerRecord, Store } from '../store/db';
import type { Tasks } from '../tasks/local';
import type { StdioSpec } from '../../shim/api';
import { LABELS } from '../labels';
import { crashPoint } from '../../shim/crash-points';

/** The label holding a container's restart policy. */
export const POLICY_LABEL = 'tsctl.restart-policy';
/** The label tsctl sets when the user stopped the container. */
export const STOPPED_LABEL = 'tsctl.manually-stopped';
/** "restarting" while a restart is pending. */
export const STATE_LABEL = 'tsctl.restart-state';
/** How many times tsrund restarted the container. */
export const COUNT_LABEL = 'tsctl.restart-count';

/** A parsed restart policy. */
export type RestartPolicy =
  | { readonly kind: 'no' }
  | { readonly kind: 'always' }
  | { readonly kind: 'unless-stopped' }
  | { readonly kind: 'on-failure'; readonly maxRetries: number | undefined };

/** Parse a policy label value; throws InvalidArgument on anything else. */
export function parsePolicy(text: string | undefined): RestartPolicy {
  if (text === undefined || text === '' || text === 'no') return { kind: 'no' };
  if (text === 'always' || text === 'unless-stopped') return { kind: text };
  const m = /^on-failure(?::(\d+))?$/.exec(text);
  if (m !== null) return { kind: 'on-failure', maxRetries: m[1] === undefined ? undefined : Number(m[1]) };
  throw new TsrunError('InvalidArgument', `restart policy ${JSON.stringify(text)}: want no, always, on-failure[:N] or unless-stopped`);
}

/** Whether a container with `policy` that exited with `exitStatus` after `restarts` restarts should run again. */
export function shouldRestart(policy: RestartPolicy, exitStatus: number, restarts: number, manuallyStopped: boolean): boolean {
  switch (policy.kind) {
    case 'no':
      return false;
    case 'always':
    case 'unless-stopped':
      return !manuallyStopped;
    case 'on-failure':
      return !manuallyStopped && exitStatus !== 0 && (policy.maxRetries === undefined || restarts < policy.maxRetries);
    default: {
      const never: never = policy;
      return never;
    }
  }
}

/** The delay before restart number `consecutive` (0-based). */
export function backoffMs(consecutive: number): number {
  return Math.min(100 * 2 ** Math.min(consecutive, 20), 60_000);
}

/** The restart-policy loop. */
export interface Restarts {
  start(): void;
  stop(): void;
  /**
   * The container was marked manually stopped: drop its pending restart and wait for a restart
   * under way to finish (it sees the label and undoes itself). Afterwards nothing restarts it, so
   * the caller can read the task and signal it without racing the policy.
   */
  quiesce(namespace: string, id: string): Promise<void>;
}

const HEALTHY_MS = 10_000;

/**
 * The back-off step of the restart after the exit at `exitedAt` (0: 100 ms), recorded in the
 * restarts table with the step after it: a container that ran HEALTHY_MS since its last restart
 * starts over. The same exit published again (after a tsrund restart) is not counted twice.
 */
export function nextBackoffStep(store: Store, ns: string, id: string, restartCount: number, exitStatus: number, exitedAt: string, nowMs: number): number {
  const rec = store.getRestart(ns, id);
  if (rec !== undefined && rec.lastExitAt === exitedAt && rec.backoffStep > 0) return rec.backoffStep - 1;
  const ranFor = nowMs - (rec?.startedAt ?? 0);
  const step = ranFor >= HEALTHY_MS ? 0 : (rec?.backoffStep ?? 0);
  store.putRestart({
    namespace: ns,
    id,
    restartCount: rec?.restartCount ?? restartCount,
    manuallyStopped: rec?.manuallyStopped ?? false,
    lastExit: exitStatus,
    backoffStep: step + 1,
    startedAt: rec?.startedAt ?? null,
    lastExitAt: exitedAt,
  });
  return step;
}

/** The restart count of a container: its label (absent: 0). */
function countOf(labels: Readonly<Record<string, string>>): number {
  const n = Number(labels[COUNT_LABEL] ?? '0');
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** One rootfs mount of a restarted task (a containerd.types.Mount). */
export interface RootfsMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** What the loop needs from the rest of tsrund. */
export interface RestartHooks {
  /** an auto-removed container's record `c` is gone: release what belonged to it */
  onRemoved?: (ns: string, c: ContainerRecord) => Promise<void>;
  /** the rootfs mounts of a container's snapshot (none when the record names no snapshot) */
  rootfsMounts?: (ns: string, snapshotter: string, key: string) => RootfsMount[];
}

/** A restart-policy loop over the tasks: listens to init exits from now on, acts once started. */
export function createRestarts(store: Store, tasks: Tasks, log: Logger, hooks: RestartHooks = {}): Restarts {
  let running = false;
  let stopped = false;
  const pending: Array<() => void> = [];
  const timers = new Map<string, NodeJS.Timeout>();
  const inFlight = new Map<string, Promise<void>>();

  const setLabels = (ns: string, id: string, patch: Record<string, string | undefined>): void => {
    const c = store.getContainer(ns, id);
    if (c === undefined) return;
    const labels = { ...c.labels };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete labels[k];
      else labels[k] = v;
    }
    store.updateContainer({ ...c, labels });
  };

  /** A restart under way: `quiesce` waits for it; a failure is logged and clears the restarting label. */
  const track = (ns: string, id: string, work: Promise<void>): void => {
    const key = `${ns}/${id}`;
    const p = work
      .catch((e: unknown) => {
        log.warn('restart failed', { namespace: ns, id, error: e instanceof Error ? e.message : String(e) });
        setLabels(ns, id, { [STATE_LABEL]: undefined });
      })
      .finally(() => {
        if (inFlight.get(key) === p) inFlight.delete(key);
      });
    inFlight.set(key, p);
  };

  const restart = async (ns: string, id: string, exitedPid: number): Promise<void> => {
    const c = store.getContainer(ns, id);
    if (c === undefined || stopped) return;
    const policy = parsePolicy(c.labels[POLICY_LABEL]);
    const count = countOf(c.labels);
    let view;
    try {
      view = tasks.get(ns, id, undefined);
    } catch {
      setLabels(ns, id, { [STATE_LABEL]: undefined });
      return; // deleted by a client meanwhile
    }
    if (view.status !== 'stopped' || view.pid !== exitedPid) return;
    if (!shouldRestart(policy, view.exitStatus, count, c.labels[STOPPED_LABEL] === 'true')) {
      setLabels(ns, id, { [STATE_LABEL]: undefined });
      return;
    }
    // Written down before the delete: a tsrund killed before the new task exists finishes this on start.
    store.setRestartInFlight(ns, id, JSON.stringify(view.stdio));
    try {
      await tasks.delete(ns, id);
      // test-only (TSRUND_TEST_CRASH_AT, shim/crash-points.ts): tsrund killed between delete and create
      crashPoint('restart:task-deleted');
      await recreate(ns, id, c, view.stdio, count, view.exitStatus);
    } finally {
      store.setRestartInFlight(ns, id, null);
    }
  };

  /** Whether the user stopped or removed the container, or tsrund is stopping: the restart is dropped. */
  const abandoned = (ns: string, id: string): boolean => {
    const now = store.getContainer(ns, id);
    return stopped || now === undefined || now.labels[STOPPED_LABEL] === 'true';
  };

  /**
   * The second half of a restart, once the exited task is gone: create the task again with `stdio`
   * and start it. A client may stop or remove the container while we are here (tsctl stop/rm -f
   * set the manually-stopped label first): look again after every step, and undo a task made meanwhile.
   */
  const recreate = async (ns: string, id: string, c: ContainerRecord, stdio: StdioSpec, restartCount: number, exitStatus: number | null): Promise<void> => {
    if (abandoned(ns, id)) {
      setLabels(ns, id, { [STATE_LABEL]: undefined });
      return;
    }
    // an image container's snapshot: its mounts again, as its client sent them the first time
    const rootfs = c.snapshotKey !== '' && hooks.rootfsMounts !== undefined ? hooks.rootfsMounts(ns, c.snapshotter === '' ? 'overlayfs' : c.snapshotter, c.snapshotKey) : [];
    await tasks.create(ns, id, { stdio, options: null, rootfsMounts: rootfs.length, ...(rootfs.length > 0 ? { rootfs } : {}), checkpoint: false });
    if (abandoned(ns, id)) {
      await tasks.delete(ns, id).catch(() => undefined);
      setLabels(ns, id, { [STATE_LABEL]: undefined });
      return;
    }
    await startCreated(ns, id, restartCount, exitStatus);
  };

  /** Start a restarted container's created task and count the restart. */
  const startCreated = async (ns: string, id: string, restartCount: number, exitStatus: number | null): Promise<void> => {
    await tasks.start(ns, id, undefined);
    if (abandoned(ns, id)) {
      // Stopped while it was starting: the client saw no running task to signal, so we do it.
      await tasks.kill(ns, id, undefined, 9, true).catch(() => undefined);
      setLabels(ns, id, { [STATE_LABEL]: undefined });
      return;
    }
    const kept = store.getRestart(ns, id);
    const next = {
      namespace: ns,
      id,
      manuallyStopped: false,
      restartCount: restartCount + 1,
      lastExit: exitStatus,
      backoffStep: kept?.backoffStep ?? 1,
      startedAt: Date.now(),
      lastExitAt: kept?.lastExitAt ?? null,
    };
    store.putRestart(next);
    const c = store.getContainer(ns, id);
    setLabels(ns, id, { [STATE_LABEL]: undefined, [COUNT_LABEL]: String(next.restartCount), [LABELS.startedAt]: formatRfc3339(now()) });
    log.info('restarted by policy', { namespace: ns, id, policy: c?.labels[POLICY_LABEL], count: next.restartCount });
  };

  /**
   * Restarts a killed tsrund left half done (after adoption, so the task list is complete): the
   * exited task was deleted and no new one made — create and start it; made but not started — start it.
   */
  const resumeInFlight = (): void => {
    for (const r of store.listRestartsInFlight()) {
      const { namespace: ns, id } = r;
      const c = store.getContainer(ns, id);
      const kept = store.getRestart(ns, id);
      const count = c === undefined ? 0 : countOf(c.labels);
      const go = async (): Promise<void> => {
        try {
          if (c === undefined || abandoned(ns, id)) {
            setLabels(ns, id, { [STATE_LABEL]: undefined });
            return;
          }
          if (!tasks.hasTask(ns, id)) {
            log.info('finishing a restart that a stopped tsrund left without a task', { namespace: ns, id });
            await recreate(ns, id, c, JSON.parse(r.stdio) as StdioSpec, count, kept?.lastExit ?? null);
          } else if (tasks.get(ns, id, undefined).status === 'created') {
            log.info('starting a restarted task that a stopped tsrund left created', { namespace: ns, id });
            await startCreated(ns, id, count, kept?.lastExit ?? null);
          } else {
            setLabels(ns, id, { [STATE_LABEL]: undefined });
          }
        } finally {
          store.setRestartInFlight(ns, id, null);
        }
      };
      track(ns, id, go());
    }
  };

  /** run --rm -d: the exited container goes away with its task and log (a client may have done it already). */
  const autoRemove = (ns: string, id: string): void => {
    const go = async (): Promise<void> => {
      const c = store.getContainer(ns, id);
      if (c === undefined) return;
      if (tasks.hasTask(ns, id)) await tasks.delete(ns, id);
      store.deleteContainer(ns, id);
      store.deleteRestart(ns, id);
      // what else belongs to the record (its network, its anonymous volumes) goes with it
      await hooks.onRemoved?.(ns, c);
      const logPath = c.labels[LABELS.logPath];
      if (logPath !== undefined && logPath !== '') fs.rmSync(path.dirname(logPath), { recursive: true, force: true });
      log.info('removed on exit (auto-remove)', { namespace: ns, id });
    };
    // after the exit's listeners (a `tsctl wait` gets the exit first)
    setTimeout(() => {
      go().catch((e: unknown) => log.warn('auto-remove failed', { namespace: ns, id, error: e instanceof Error ? e.message : String(e) }));
    }, 0);
  };

  const onExit = (ns: string, id: string, exitStatus: number, exitedAt: string): void => {
    const c = store.getContainer(ns, id);
    const label = c?.labels[POLICY_LABEL];
    if (c === undefined) return;
    if (label === undefined || label === 'no') {
      if (c.labels[LABELS.autoRemove] === 'true') autoRemove(ns, id);
      return;
    }
    let policy: RestartPolicy;
    try {
      policy = parsePolicy(label);
    } catch (e) {
      log.warn('bad restart policy label', { namespace: ns, id, error: e instanceof Error ? e.message : String(e) });
      return;
    }
    if (!shouldRestart(policy, exitStatus, countOf(c.labels), c.labels[STOPPED_LABEL] === 'true')) {
      if (c.labels[LABELS.autoRemove] === 'true') autoRemove(ns, id);
      return;
    }
    const key = `${ns}/${id}`;
    let pid = 0;
    try {
      pid = tasks.get(ns, id, undefined).pid;
    } catch {
      return;
    }
    const delay = backoffMs(nextBackoffStep(store, ns, id, countOf(c.labels), exitStatus, exitedAt, Date.now()));
    const act = (): void => {
      setLabels(ns, id, { [STATE_LABEL]: 'restarting', [LABELS.exitCode]: String(exitStatus), [LABELS.finishedAt]: exitedAt });
      clearTimeout(timers.get(key));
      const timer = setTimeout(() => {
        timers.delete(key);
        track(ns, id, restart(ns, id, pid));
      }, delay);
      timers.set(key, timer);
    };
    if (running) act();
    else pending.push(act);
  };

  tasks.onInitExit((ns, id, exit) => onExit(ns, id, exit.exitStatus, exit.exitedAt));
  return {
    start() {
      running = true;
      resumeInFlight();
      for (const a of pending.splice(0)) a();
    },
    stop() {
      stopped = true;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
    async quiesce(ns, id) {
      const key = `${ns}/${id}`;
      const timer = timers.get(key);
      if (timer !== undefined) {
        clearTimeout(timer);
        timers.delete(key);
        setLabels(ns, id, { [STATE_LABEL]: undefined });
      }
      await inFlight.get(key);
    },
  };
}
