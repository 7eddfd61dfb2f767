/*
 * Wiring of tsrund: store → exchange → namespaces/containers/leases/tasks logic → gRPC services
 * on the socket, then re-adoption of live shims and the restart-policy loop.
 */
import * as path from 'node:path';
import { TsrunError } from '../spec/errors';
import type { Config } from './config';
import { createContainers } from './containers/local';
import { createExchange, type Exchange } from './events/exchange';
import { serve, type RunningServer } from './grpc/server';
import { createImageServices } from './images/wire';
import { createLeases } from './leases/local';
import type { Logger } from './log';
import { createNamespaces } from './namespaces/local';
import { createRestarts, STOPPED_LABEL, type Restarts } from './restart/policy';
import {
  containersService,
  eventsService,
  introspectionService,
  leasesService,
  namespacesService,
  versionService,
} from './services/basic';
import { createNetworks, type Networks } from './networks/manager';
import { networksService } from './services/networks';
import { tasksService } from './services/tasks';
import { transferService } from './services/transfer';
import { volumesService } from './services/volumes';
import { createVolumes } from './volumes/local';
import { removeSnapshotIfAny } from './snapshots/local';
import { LABELS } from './labels';
import { openStore, type Store } from './store/db';
import { createTasks, type ShimDriver, type Tasks } from './tasks/local';

/** The version tsrund reports: containerd's API level it speaks, with our own build as metadata. */
export const API_VERSION = '1.6.20+tsrund';

/** How long one CNI plugin call may take before it is killed. */
const CNI_TIMEOUT_MS = 30000;

/** How long after start events are replayed to new subscribers (exits missed while tsrund was down). */
const STARTUP_BACKLOG_MS = 5000;
/** How long such an event is kept for the first subscriber it matches if none has had it yet. */
const STARTUP_HOLD_MS = 60_000;

/** A running daemon. */
export interface Daemon {
  readonly store: Store;
  readonly events: Exchange;
  readonly tasks: Tasks;
  readonly server: RunningServer;
  readonly restarts: Restarts | undefined;
  readonly networks: Networks;
  /** stop serving and detach from the shims (containers keep running) */
  stop(): Promise<void>;
}

/** Start tsrund with `cfg`; resolves once the socket accepts calls and live shims are re-adopted. */
export async function startDaemon(cfg: Config, driver: ShimDriver, log: Logger, revision: string): Promise<Daemon> {
  const store = openStore(cfg.root);
  const events = createExchange();
  // json-file logs live with the metadata (persistent, like docker's), not in the volatile shim state.
  const tasks = createTasks(store, events, driver, { shimRoot: cfg.shimRoot, defaultRuntime: cfg.runtime, shimBinary: cfg.shimBinary, logRoot: path.join(cfg.root, 'logs') }, log);
  const namespaces = createNamespaces(store, events, (ns) => tasks.hasTasks(ns));
  // Auto-removal releases the record's network and anonymous volumes; a restarted image container
  // gets its snapshot's mounts again (the services are made below and used only once running).
  const restarts = cfg.restartPolicies
    ? createRestarts(store, tasks, log, {
        onRemoved: async (ns, c) => {
          try {
            // as `tsctl rm` does: the snapshot at once, rather than at the next collection
            if (c.snapshotKey !== '') removeSnapshotIfAny(imageServices.snapshots, c.snapshotter === '' ? 'overlayfs' : c.snapshotter, ns, c.snapshotKey);
            const gone = volumes.removeAnonymousOf(c.spec.value);
            if (gone.length > 0) log.info('removed anonymous volumes (auto-remove)', { namespace: ns, id: c.id, volumes: gone.join(', ') });
          } finally {
            await networks.detach(ns, c.id);
          }
        },
        rootfsMounts: (ns, sn, key) => imageServices.snapshots.mounts(sn, ns, key),
      })
    : undefined;
  // Marking a container manually stopped is a barrier: the answer comes once no restart is pending
  // or under way, so `tsctl stop/rm -f` then sees the task as it stays.
  const containers = createContainers(
    store,
    events,
    (ns, id) => tasks.hasTask(ns, id),
    restarts === undefined ? undefined : async (ns, c) => (c.labels[STOPPED_LABEL] === 'true' ? restarts.quiesce(ns, c.id) : undefined),
  );
  const leases = createLeases(store);
  const imageServices = createImageServices(cfg.root, store, events, log);
  const volumes = createVolumes(store, cfg.root);
  const networks = createNetworks({
    root: cfg.root,
    state: cfg.state,
    binDirs: cfg.cniBinDirs,
    timeoutMs: CNI_TIMEOUT_MS,
    defaultBridge: cfg.networkBridge,
    chainPrefix: cfg.iptablesChainPrefix,
    log,
  });
  // A network belongs to its container record: deleting the record (tsctl rm, ctr c rm) releases it.
  const containersWithNet: typeof containers = {
    ...containers,
    delete(ns, id) {
      containers.delete(ns, id);
      networks.detach(ns, id).catch((e: unknown) => log.warn('release network', { namespace: ns, id, error: e instanceof Error ? e.message : String(e) }));
    },
  };

  // `tsctl run --rm`: the network goes the moment the task exits, while tsctl deletes the task and
  // the record (its own Detach then waits for this one).
  tasks.onInitExit((ns, id) => {
    if (store.getContainer(ns, id)?.labels[LABELS.releaseNetworkOnExit] !== 'true') return;
    networks.detach(ns, id).catch((e: unknown) => log.warn('release network on exit', { namespace: ns, id, error: e instanceof Error ? e.message : String(e) }));
  });

  // A background network attach (tsctl run) overlaps the container's create; its task starts only
  // once the plugins are done, and a create that failed meanwhile reports the network's error.
  const tasksWithNet: typeof tasks = {
    ...tasks,
    async create(ns, id, input) {
      try {
        return await tasks.create(ns, id, input);
      } catch (e) {
        await networks.ready(ns, id);
        throw e;
      }
    },
    async start(ns, id, execId) {
      if (execId === undefined || execId === '') await networks.ready(ns, id);
      return tasks.start(ns, id, execId);
    },
  };

  // Everything published before serving starts is kept (nobody can subscribe yet); the window
  // proper is set once serving starts, below.
  events.holdBacklog();
  // Re-adopt before serving: a client never sees a task list without the tasks that are running.
  const t0 = Date.now();
  const adopted = await tasks.adopt();
  if (adopted.adopted + adopted.dead + adopted.discarded > 0) {
    log.info('re-adopted shims', { live: adopted.adopted, dead: adopted.dead, interruptedCreates: adopted.discarded, ms: Date.now() - t0 });
  }
  // Networking a crash left half-made or half-released: whatever has no container record goes.
  try {
    const live = new Set(store.listNamespaces().flatMap((ns) => store.listContainers(ns.name).map((c) => `${ns.name}/${c.id}`)));
    const released = await networks.reconcile(live);
    if (released.length > 0) log.info('released leftover networking', { containers: released.join(', ') });
  } catch (e) {
    log.warn('network reconcile', { error: e instanceof Error ? e.message : String(e) });
  }

  let server: RunningServer;
  try {
    server = await serve({ socketPath: cfg.socket, allowedUids: [process.getuid?.() ?? 0, ...cfg.allowUids], log }, [
      versionService(API_VERSION, revision),
      introspectionService(store.uuid),
      namespacesService(namespaces),
      imageServices.leases(leasesService(leases)),
      containersService(containersWithNet),
      tasksService(tasksWithNet),
      eventsService(events),
      ...imageServices.services,
      volumesService(volumes),
      networksService(networks),
      transferService({ store, images: imageServices, insecureRegistries: cfg.insecureRegistries, warn: (m) => log.warn('pull', { warning: m }) }),
    ]);
  } catch (e) {
    tasks.detachAll();
    imageServices.close();
    store.close();
    throw e instanceof TsrunError ? e : new TsrunError('Unavailable', `serve ${cfg.socket}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  // The window counts from when clients can subscribe: re-adoption can take longer than it (it
  // asks every shim, and for a native shim's running init the runtime, for their state; an
  // interrupted create in a Node shim is given CREATE_SETTLE_MS, tasks/adopt.ts).
  events.keepBacklog(STARTUP_BACKLOG_MS, STARTUP_HOLD_MS);
  restarts?.start();
  return {
    store,
    events,
    tasks,
    server,
    restarts,
    networks,
    async stop() {
      restarts?.stop();
      await server.close();
      tasks.detachAll();
      imageServices.close();
      store.close();
    },
  };
}
