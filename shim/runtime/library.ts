/*
 * The runtime library in the shim's own process: the same calls the CLI's commands make
 * (runtime/commands/*.ts), with no process spawned per operation. The clone that becomes init or
 * an exec gets the process's pipes as its 0-2 from the helper (the plan's STDIO op); the shim's
 * own 0-2 stay on /dev/null. Modules load on first use.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import type { Runtime, RuntimeParams, RuntimeStdio } from './types';

/** Stats with bigints as decimal strings. */
function stringifyBigints(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))) as unknown;
}

/** Run fn with `fds` where -1 (the contract's /dev/null) is an fd open on /dev/null for the call. */
function withDevNull<T>(fds: readonly [number, number, number], fn: (fds: readonly [number, number, number]) => T): T {
  if (!fds.includes(-1)) return fn(fds);
  const devNull = fs.openSync('/dev/null', 'r+');
  try {
    return fn([fds[0] < 0 ? devNull : fds[0], fds[1] < 0 ? devNull : fds[1], fds[2] < 0 ? devNull : fds[2]]);
  } finally {
    fs.closeSync(devNull);
  }
}

/** The in-process Runtime. */
export function libraryRuntime(p: RuntimeParams): Runtime {
  const lifecycle = () => import('../../runtime/container/lifecycle');
  return {
    async create(stdio: RuntimeStdio) {
      const { createContainer } = await import('../../runtime/container/create');
      const s = withDevNull(stdio.fds, (fds) =>
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
          stdio: fds,
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
      const r = withDevNull(stdio.fds, (fds) =>
        startExec({ root: p.root, id: p.id, process: proc, detach: true, pidFile: path.join(p.bundle, `${execId}.pid`), preserveFds: 0, consoleSocket: stdio.consoleSocket, stdio: fds }),
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
