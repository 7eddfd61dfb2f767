/*
 * The runtime library in the shim's own process: the same calls the CLI's commands make
 * (runtime/commands/*.ts), with no process spawned per operation. The clone that becomes init or
 * an exec inherits this process's fds 0-2, so stdio.withStdio points them at the process's pipes
 * for the duration of the (synchronous) spawn. Modules load on first use.
 */
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { withStdio } from '../stdio';
import type { Runtime, RuntimeParams, RuntimeStdio } from './types';

/** Stats with bigints as decimal strings. */
function stringifyBigints(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))) as unknown;
}

/** The in-process Runtime. */
export function libraryRuntime(p: RuntimeParams): Runtime {
  const lifecycle = () => import('../../runtime/container/lifecycle');
  return {
    async create(stdio: RuntimeStdio) {
      const { createContainer } = await import('../../runtime/container/create');
      const s = withStdio(stdio.fds, () =>
        createContainer({
          root: p.root,
          id: p.id,
          bundle: p.bundle,
          pidFile: path.join(p.bundle, 'init.pid'),
          noPivot: p.noPivot,
          noNewKeyring: p.noNewKeyring,
          preserveFds: 0,
          systemdCgroup: false,
          consoleSocket: stdio.consoleSocket,
          detached: true,
        }),
      );
      return s.pid;
    },
    async start() {
      (await lifecycle()).startContainer(p.root, p.id);
    },
    async exec(execId, processJson, stdio) {
      const [{ startExec }, { parseProcess }] = await Promise.all([import('../../runtime/container/exec'), import('../../spec')]);
      const proc = parseProcess(processJson, `exec ${execId} process`);
      const r = withStdio(stdio.fds, () =>
        startExec({ root: p.root, id: p.id, process: proc, detach: true, pidFile: path.join(p.bundle, `${execId}.pid`), preserveFds: 0, consoleSocket: stdio.consoleSocket }),
      );
      return r.pid;
    },
    async kill(signal, all) {
      (await lifecycle()).killContainer(p.root, p.id, signal, all);
    },
    async delete(force) {
      try {
        await (await lifecycle()).deleteContainer(p.root, p.id, force);
      } catch (err) {
        if (force && err instanceof TsrunError && err.code === 'NotFound') return;
        throw err;
      }
    },
    async pause() {
      (await lifecycle()).pauseContainer(p.root, p.id);
    },
    async resume() {
      (await lifecycle()).resumeContainer(p.root, p.id);
    },
    async ps() {
      return (await lifecycle()).containerProcesses(p.root, p.id);
    },
    async stats() {
      return stringifyBigints((await lifecycle()).containerStats(p.root, p.id));
    },
    async update(resourcesJson) {
      const [{ updateContainer }, { parseResources }] = await Promise.all([lifecycle(), import('../../spec')]);
      updateContainer(p.root, p.id, parseResources(resourcesJson, 'update resources'));
    },
  };
}
