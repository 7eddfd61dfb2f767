/*
 * tsrun-shim (the Node shim, `tsrund --shim node`): the container's subreaper, owner of its stdio,
 * driving it through a Runtime and listening on <dir>/shim.sock until `delete` has been answered;
 * then it removes its files and exits (docs/shim-protocol.md §The process).
 *
 *   tsrun-shim <dir>                one container; readiness on fd 3: "ok\n" or one JSON error line
 *
 * The shim keeps an O_DIRECTORY fd on the container directory: isShimAlive
 * (supervisor/shims/client.ts) recognises it by that.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../spec/errors';
import { openJsonLog } from './json-log';
import { watchOom } from './oom';
import { startReaper, stopReaper } from './reaper';
import { removeShimFiles, createService, type Service } from './service';
import { serve, type ShimServer } from './server';
import { FILES, readShimOptions, runtimeRootFor, writeAtomic, writeShimState, SHIM_STATE_VERSION } from './state';
import type { Runtime } from './runtime/types';

/** The container this process serves, once its service is up. */
let hosted: Service | undefined;
let processLog = '';

function warn(file: string, m: string): void {
  try {
    fs.appendFileSync(file, `${JSON.stringify({ level: 'warning', msg: m, time: new Date().toISOString() })}\n`);
  } catch {
    // nowhere left to say it
  }
}

function errorLine(err: unknown): string {
  const msg = err instanceof TsrunError ? { code: err.code, message: err.message } : { code: 'Internal', message: String((err as Error)?.message ?? err) };
  return `${JSON.stringify(msg)}\n`;
}

/** Serve the container of `dir` in this process. */
async function host(dir: string): Promise<void> {
  const o = readShimOptions(dir);
  const logFile = path.join(dir, FILES.log);
  const root = runtimeRootFor(dir, o.runtime);
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const params = { id: o.id, bundle: dir, root, noPivot: o.noPivot, noNewKeyring: o.noNewKeyring };
  let runtime: Runtime;
  if (o.runtime.kind === 'library') {
    runtime = (await import('./runtime/library')).libraryRuntime(params);
  } else {
    runtime = (await import('./runtime/binary')).binaryRuntime({ ...params, path: o.runtime.path, systemdCgroup: o.runtime.systemdCgroup === true });
  }
  const svc = createService({ dir, options: o, runtime, runtimeRoot: root, openLog: (s) => openJsonLog(s), warn: (m) => warn(logFile, m), watchOom });
  writeShimState(dir, { version: SHIM_STATE_VERSION, namespace: o.namespace, id: o.id, runtime: o.runtime, runtimeRoot: root, shimPid: process.pid, execs: [], undelivered: [] });
  const sock = path.join(dir, FILES.sock);
  unlinkIfThere(sock);
  const dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  hosted = svc;
  let server: ShimServer;
  try {
    server = await serve(sock, svc, {
      namespace: o.namespace,
      id: o.id,
      onDeleted: () => {
        server.close();
        hosted = undefined;
        fs.closeSync(dirFd);
        removeShimFiles(dir, [FILES.sock, FILES.state, FILES.options, FILES.config, FILES.runtimeLog, FILES.log, FILES.initPid, FILES.pid, FILES.runtimeRoot]);
        stopReaper();
        // Let the delete response leave the socket buffers, then go.
        setTimeout(() => process.exit(0), 20);
      },
    });
  } catch (err) {
    hosted = undefined;
    fs.closeSync(dirFd);
    throw err;
  }
  writeAtomic(path.join(dir, FILES.pid), String(process.pid), 0o644);
}

/** Reaped children go to the container's service (also ones it does not know yet: an early exit). */
function dispatchReaped(pid: number, status: number): void {
  hosted?.reaped(pid, status);
}

/** unlink, when there is something to unlink (fs.rmSync's force path costs ms on first use). */
function unlinkIfThere(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch {
    // not there
  }
}

function ready(msg: string): void {
  try {
    fs.writeSync(3, msg);
    fs.closeSync(3);
  } catch {
    // Started by hand, without the readiness pipe.
  }
}

async function singleMain(dirArg: string | undefined): Promise<void> {
  if (!dirArg) throw new TsrunError('InvalidArgument', 'usage: tsrun-shim <shim dir>');
  const dir = path.resolve(dirArg);
  processLog = path.join(dir, FILES.log);
  process.chdir(dir);
  startReaper(dispatchReaped);
  await host(dir);
  ready('ok\n');
}

process.on('uncaughtException', (err) => warn(processLog, `uncaught: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => warn(processLog, `unhandled rejection: ${String((err as Error)?.stack ?? err)}`));

singleMain(process.argv[2]).catch((err: unknown) => {
  ready(errorLine(err));
  process.exit(1);
});
