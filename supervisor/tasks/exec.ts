/*
 * Exec processes of a task: Tasks.Exec registers one in the shim (/tasks/exec-added; Start runs
 * it), DeleteProcess removes a stopped one, ResizePty and CloseIO reach its stdio.
 */
import type { ProcessExit } from '../../shim/api';
import { TsrunError } from '../../spec/errors';
import { errors, validateIdentifier } from '../errors';
import { emit } from '../events/exchange';
import { exitView, type TaskContext, type Tasks } from './api';
import { newProc, nowRfc3339 } from './task';

/** The exec half of Tasks. */
export function execMethods(ctx: TaskContext): Pick<Tasks, 'exec' | 'deleteProcess' | 'resizePty' | 'closeIO'> {
  const { events, getTask, getProc, liveConn, queued } = ctx;
  return {
    exec: (ns, id, execId, spec, stdio) => queued(ns, id, async (t) => {
      validateIdentifier('invalid exec id', execId);
      if (t.execs.has(execId)) throw errors.processExists(execId);
      if (t.init.exit !== undefined || t.heldInitExit !== undefined) {
        throw new TsrunError('FailedPrecondition', 'cannot exec in a stopped state: failed precondition');
      }
      if (spec === null || spec.value.length === 0) throw errors.invalid('exec process spec must be set');
      const conn = liveConn(t);
      const p = newProc(execId, 0, 'created', stdio);
      t.execs.set(execId, p);
      try {
        await conn.exec(execId, spec.value, stdio);
      } catch (e) {
        t.execs.delete(execId);
        throw e;
      }
      emit(events, ns, 'taskExecAdded', { containerId: id, execId });
    }),

    deleteProcess: (ns, id, execId) => queued(ns, id, async (t) => {
      const p = getProc(t, execId);
      let exit: ProcessExit;
      if (t.conn !== undefined) {
        if (p.exit === undefined && p.status !== 'created') {
          throw new TsrunError('FailedPrecondition', `process ${execId} must be stopped before deletion: ${p.status}: failed precondition`);
        }
        exit = await t.conn.deleteProcess(execId);
      } else {
        exit = p.exit ?? { execId, pid: p.pid, exitStatus: 255, exitedAt: nowRfc3339() };
      }
      t.execs.delete(execId);
      for (const w of p.waiters.splice(0)) w(p.exit ?? exit);
      return exitView(execId, p.exit ?? exit);
    }),

    async resizePty(ns, id, execId, width, height) {
      const t = getTask(ns, id);
      const p = getProc(t, execId);
      if (p.exit !== undefined) return;
      await liveConn(t).resizePty(width, height, execId);
    },

    async closeIO(ns, id, execId) {
      const t = getTask(ns, id);
      const p = getProc(t, execId);
      if (p.exit !== undefined || t.conn === undefined) return;
      await t.conn.closeStdin(execId);
    },
  };
}
