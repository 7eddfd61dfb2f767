/*
 * A running task's cgroup through its shim: Pause and Resume (/tasks/paused, /tasks/resumed, the
 * processes' status), ListPids, Metrics' stats, Update.
 */
import { TsrunError } from '../../spec/errors';
import { errors } from '../errors';
import { emit } from '../events/exchange';
import { objectAdaptor, parseFilters } from '../events/filters';
import type { TaskContext, Tasks } from './api';

/** The cgroup half of Tasks. */
export function controlMethods(ctx: TaskContext): Pick<Tasks, 'pause' | 'resume' | 'listPids' | 'stats' | 'update'> {
  const { tasks, events, liveConn, queued } = ctx;
  return {
    pause: (ns, id) => queued(ns, id, async (t) => {
      if (t.init.exit !== undefined || t.heldInitExit !== undefined || t.conn === undefined) throw errors.pauseStopped();
      await t.conn.pause();
      t.init.status = 'paused';
      for (const p of t.execs.values()) if (p.status === 'running') p.status = 'paused';
      emit(events, ns, 'taskPaused', { containerId: id });
    }),

    resume: (ns, id) => queued(ns, id, async (t) => {
      if (t.init.exit !== undefined || t.conn === undefined) {
        throw new TsrunError('FailedPrecondition', `cannot resume a stopped container: failed precondition`);
      }
      await t.conn.resume();
      if (t.init.status === 'paused') t.init.status = 'running';
      for (const p of t.execs.values()) if (p.status === 'paused') p.status = 'running';
      emit(events, ns, 'taskResumed', { containerId: id });
    }),

    listPids: (ns, id) => queued(ns, id, async (t) => (t.conn === undefined ? [] : t.conn.pids())),

    async stats(ns, filters) {
      const f = parseFilters(filters);
      const picked = [...tasks.values()].filter(
        (t) => t.namespace === ns && t.conn !== undefined && f(objectAdaptor({ id: t.id, namespace: t.namespace })),
      );
      return Promise.all(picked.map(async (t) => ({ id: t.id, stats: await t.conn!.stats() })));
    },

    update: (ns, id, resources) => queued(ns, id, async (t) => {
      if (resources === null || resources.value.length === 0) throw errors.invalid('resources must be set');
      await liveConn(t).update(resources.value);
    }),
  };
}
