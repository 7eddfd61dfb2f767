/*
 * tsrun-shim <dir>: one per container, started detached by startShim (shim/client.ts) in its own
 * session with stdio on /dev/null and a readiness pipe on fd 3 ("ok\n", or one JSON error line).
 * It is the container's subreaper, owns its stdio, drives it through a Runtime, and listens on
 * <dir>/shim.sock until `delete` has been answered; then it removes its files and exits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../spec/errors';
import { openJsonLog } from './json-log';
import { startReaper, stopReaper } from './reaper';
import { removeShimFiles, createService } from './service';
import { serve } from './server';
import { FILES, readShimOptions, runtimeRootFor, writeAtomic, writeShimState, SHIM_STATE_VERSION } from './state';
import type { Runtime } from './runtime/types';

function ready(msg: string): void {
  try {
    fs.writeSync(3, msg);
    fs.closeSync(3);
  } catch {
    // Started by hand, without the readiness pipe.
  }
}

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? '');
  if (!process.argv[2]) throw new TsrunError('InvalidArgument', 'usage: tsrun-shim <shim dir>');
  const o = readShimOptions(dir);
  const logFile = path.join(dir, FILES.log);
  const warn = (m: string): void => {
    try {
      fs.appendFileSync(logFile, `${JSON.stringify({ level: 'warning', msg: m, time: new Date().toISOString() })}\n`);
    } catch {
      // nowhere left to say it
    }
  };
  process.on('uncaughtException', (err) => warn(`uncaught: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => warn(`unhandled rejection: ${String((err as Error)?.stack ?? err)}`));
  process.chdir(dir);

  const root = runtimeRootFor(dir, o.runtime);
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const params = { id: o.id, bundle: dir, root, noPivot: o.noPivot, noNewKeyring: o.noNewKeyring };
  let runtime: Runtime;
  if (o.runtime.kind === 'library') {
    runtime = (await import('./runtime/library')).libraryRuntime(params);
  } else {
    runtime = (await import('./runtime/binary')).binaryRuntime({ ...params, path: o.runtime.path, systemdCgroup: o.runtime.systemdCgroup === true });
  }
  const svc = createService({ dir, options: o, runtime, runtimeRoot: root, openLog: (s) => openJsonLog(s), warn });
  startReaper((pid, status) => svc.reaped(pid, status));
  writeShimState(dir, { version: SHIM_STATE_VERSION, namespace: o.namespace, id: o.id, runtime: o.runtime, runtimeRoot: root, shimPid: process.pid, execs: [], undelivered: [] });
  const sock = path.join(dir, FILES.sock);
  fs.rmSync(sock, { force: true });
  const server = await serve(sock, svc, {
    namespace: o.namespace,
    id: o.id,
    onDeleted: () => {
      server.close();
      stopReaper();
      removeShimFiles(dir, [FILES.sock, FILES.state, FILES.options, FILES.config, FILES.runtimeLog, FILES.log, FILES.initPid, FILES.pid, FILES.runtimeRoot]);
      // Let the delete response leave the socket buffers, then go.
      setTimeout(() => process.exit(0), 20);
    },
  });
  writeAtomic(path.join(dir, FILES.pid), String(process.pid), 0o644);
  ready('ok\n');
}

main().catch((err: unknown) => {
  const msg = err instanceof TsrunError ? { code: err.code, message: err.message } : { code: 'Internal', message: String((err as Error)?.message ?? err) };
  ready(`${JSON.stringify(msg)}\n`);
  process.exit(1);
});
