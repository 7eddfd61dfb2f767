/*
 * tsrun-shim: the container's subreaper, owner of its stdio, driving it through a Runtime and
 * listening on <dir>/shim.sock until `delete` has been answered; then it removes its files. Three
 * ways to start (docs/shim-protocol.md §The process):
 *
 *   tsrun-shim <dir>                one container; readiness on fd 3: "ok\n" or one JSON error line
 *   tsrun-shim --pool [--title-room=…]
 *                                   a warm shim: loads everything, says "ok\n" on fd 3 (a socket),
 *                                   then waits there for one JSON line {dir, group?}, takes that
 *                                   container, retitles itself `tsrun-shim <dir>` (or
 *                                   `tsrun-shim --group <socket>`) and answers "ok\n" / a JSON error
 *                                   line; fd 3 then goes on as a connection to that container
 *                                   (tsrund queues hello and subscribe behind the line); EOF
 *                                   first (tsrund went away) means exit
 *   group mode (the line names a `group` control socket): the shim also listens there for more
 *                                   containers of its group, one JSON line {dir} per connection,
 *                                   and exits when its last container is deleted; its containers'
 *                                   blocking runtime calls run through bin/tsrun (runtime/group.ts)
 *
 * Every container gets its own Service and its own shim.sock in its own directory, so tsrund
 * talks to a grouped container exactly as to a lone one. The shim keeps an O_DIRECTORY fd on each
 * container directory: isShimAlive (supervisor/shims/client.ts) recognises it by that.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsrunError } from '../spec/errors';
import { openJsonLog } from './json-log';
import { watchOom } from './oom';
import { startReaper, stopReaper } from './reaper';
import { removeShimFiles, createService, type Service } from './service';
import { serve, type ShimServer } from './server';
import { FILES, readShimOptions, runtimeRootFor, writeAtomic, writeShimState, SHIM_STATE_VERSION } from './state';
import type { Runtime } from './runtime/types';
import { withSocketPath } from './sockpath';

/** The containers this process serves, by directory. */
const hosted = new Map<string, { svc: Service; dirFd: number }>();
/** Group mode: the control server; the process exits when its last container is deleted. */
let groupServer: net.Server | undefined;
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

/** Load every module a container's life needs, so a warm shim does no loading on the hot path. */
async function preload(): Promise<void> {
  await Promise.all([import('./runtime/library'), import('./runtime/group'), import('../runtime/container/create'), import('../runtime/container/lifecycle'), import('./stdio')]);
  const w = await import('./warmup');
  w.warmUp();
  await w.warmUpServer();
}

/**
 * Serve one container from `dir` in this process. `grouped`: the process serves (or may come to
 * serve) other containers too, so the library's blocking calls go through bin/tsrun
 * (runtime/group.ts): a slow create or hook of one container must not stall the others.
 */
async function host(dirArg: string, grouped: boolean): Promise<ShimServer> {
  const dir = path.resolve(dirArg);
  if (hosted.has(dir)) throw new TsrunError('AlreadyExists', `shim already serves ${dir}`);
  const o = readShimOptions(dir);
  const logFile = path.join(dir, FILES.log);
  const root = runtimeRootFor(dir, o.runtime);
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const params = { id: o.id, bundle: dir, root, noPivot: o.noPivot, noNewKeyring: o.noNewKeyring };
  let runtime: Runtime;
  if (o.runtime.kind === 'library') {
    runtime = grouped ? (await import('./runtime/group')).groupRuntime(params) : (await import('./runtime/library')).libraryRuntime(params);
  } else {
    runtime = (await import('./runtime/binary')).binaryRuntime({ ...params, path: o.runtime.path, systemdCgroup: o.runtime.systemdCgroup === true });
  }
  const svc = createService({ dir, options: o, runtime, runtimeRoot: root, openLog: (s) => openJsonLog(s), warn: (m) => warn(logFile, m), watchOom });
  writeShimState(dir, { version: SHIM_STATE_VERSION, namespace: o.namespace, id: o.id, runtime: o.runtime, runtimeRoot: root, shimPid: process.pid, execs: [], undelivered: [] });
  const sock = path.join(dir, FILES.sock);
  unlinkIfThere(sock);
  const dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  hosted.set(dir, { svc, dirFd });
  let server: ShimServer;
  try {
    server = await serve(sock, svc, {
      namespace: o.namespace,
      id: o.id,
      onDeleted: () => {
        server.close();
        hosted.delete(dir);
        fs.closeSync(dirFd);
        removeShimFiles(dir, [FILES.sock, FILES.state, FILES.options, FILES.config, FILES.runtimeLog, FILES.log, FILES.initPid, FILES.pid, FILES.runtimeRoot]);
        if (hosted.size > 0) return;
        stopReaper();
        if (groupServer !== undefined) {
          const ctl = groupServer.address();
          groupServer.close();
          if (typeof ctl === 'string') {
            fs.rmSync(ctl, { force: true });
            fs.rmSync(`${ctl}.log`, { force: true });
            try {
              fs.rmdirSync(path.dirname(ctl)); // .groups, when this was the namespace's last group
            } catch {
              // other groups' sockets are there
            }
          }
        }
        // Let the delete response leave the socket buffers, then go.
        setTimeout(() => process.exit(0), 20);
      },
    });
  } catch (err) {
    hosted.delete(dir);
    fs.closeSync(dirFd);
    throw err;
  }
  writeAtomic(path.join(dir, FILES.pid), String(process.pid), 0o644);
  return server;
}

/** Reaped children go to the container that knows the pid, else to every container (an early exit). */
function dispatchReaped(pid: number, status: number): void {
  const all = [...hosted.values()].map((h) => h.svc);
  const owner = all.find((s) => s.owns(pid));
  if (owner !== undefined) owner.reaped(pid, status);
  else for (const s of all) s.reaped(pid, status);
}

/**
 * Read one line from a socket; undefined on EOF first. The socket is left paused with what came
 * after the newline in `rest` (tsrund sends its first request frames right behind the line).
 */
function readLine(sock: net.Socket): Promise<{ line: string; rest: Buffer } | undefined> {
  return new Promise((resolve) => {
    let got: Buffer = Buffer.alloc(0);
    const onData = (b: Buffer): void => {
      got = got.length === 0 ? b : Buffer.concat([got, b]);
      const nl = got.indexOf(10);
      if (nl < 0) return;
      sock.pause();
      sock.off('data', onData).off('end', onEnd).off('close', onEnd);
      resolve({ line: got.subarray(0, nl).toString('utf8'), rest: got.subarray(nl + 1) });
    };
    const onEnd = (): void => resolve(undefined);
    sock.on('data', onData).once('end', onEnd).once('close', onEnd);
  });
}

interface Assignment {
  readonly dir: string;
  /** group mode: the control socket to listen on for the group's further containers */
  readonly group?: string;
}

function parseAssignment(line: string): Assignment {
  const a = JSON.parse(line) as Partial<Assignment>;
  if (typeof a.dir !== 'string' || a.dir === '') throw new TsrunError('InvalidArgument', `shim assignment without a dir: ${line}`);
  return { dir: a.dir, ...(typeof a.group === 'string' && a.group !== '' ? { group: a.group } : {}) };
}

/** unlink, when there is something to unlink (fs.rmSync's force path costs ms on first use). */
function unlinkIfThere(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch {
    // not there
  }
}

/** Group mode: listen on `ctl` for more containers (one JSON line {dir} per connection). */
function listenGroup(ctl: string): Promise<void> {
  unlinkIfThere(ctl);
  const server = net.createServer((c) => {
    void readLine(c).then(async (got) => {
      if (got === undefined) return void c.destroy();
      try {
        if (hosted.size === 0) throw new TsrunError('Unavailable', 'group shim is exiting');
        await host(parseAssignment(got.line).dir, true);
        c.end('ok\n');
      } catch (err) {
        c.end(errorLine(err));
      }
    });
    c.on('error', () => undefined);
  });
  groupServer = server;
  return withSocketPath(
    ctl,
    (usable) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(usable, () => {
          server.off('error', reject);
          resolve();
        });
      }),
  );
}

async function poolMain(): Promise<void> {
  const ctl = new net.Socket({ fd: 3, readable: true, writable: true });
  ctl.on('error', () => undefined);
  await preload();
  startReaper(dispatchReaped);
  ctl.write('ok\n');
  const got = await readLine(ctl);
  if (got === undefined) process.exit(0); // tsrund went away before it needed us
  resetNice();
  try {
    const a = parseAssignment(got.line);
    processLog = path.join(a.dir, FILES.log);
    process.title = a.group !== undefined ? `tsrun-shim --group ${a.group}` : `tsrun-shim ${a.dir}`;
    let server: ShimServer;
    if (a.group !== undefined) {
      processLog = `${a.group}.log`;
      process.chdir(path.dirname(a.group));
      server = await host(a.dir, true);
      await listenGroup(a.group);
    } else {
      process.chdir(a.dir);
      server = await host(a.dir, false);
    }
    // fd 3 goes on as tsrund's first connection to the container (hello, subscribe and create
    // may already be queued behind the line), so taking a warm shim costs no connect.
    ctl.write('ok\n');
    server.adopt(ctl, got.rest);
  } catch (err) {
    ctl.end(errorLine(err), () => process.exit(1));
  }
}

/** A warm shim was started at low priority (supervisor/shims/pool.ts); serving a container it runs at normal priority. */
function resetNice(): void {
  try {
    for (const tid of fs.readdirSync('/proc/self/task')) os.setPriority(Number(tid), 0);
  } catch {
    // not allowed (no CAP_SYS_NICE): stays nice
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
  if (!dirArg) throw new TsrunError('InvalidArgument', 'usage: tsrun-shim <shim dir> | tsrun-shim --pool');
  const dir = path.resolve(dirArg);
  processLog = path.join(dir, FILES.log);
  process.chdir(dir);
  startReaper(dispatchReaped);
  await host(dir, false);
  ready('ok\n');
}

process.on('uncaughtException', (err) => warn(processLog, `uncaught: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => warn(processLog, `unhandled rejection: ${String((err as Error)?.stack ?? err)}`));

const main = process.argv[2] === '--pool' ? poolMain() : singleMain(process.argv[2]);
main.catch((err: unknown) => {
  ready(errorLine(err));
  process.exit(1);
});
