/*
 * An OCI runtime binary (runc, crun, tsrun) through its CLI, with the argv containerd-shim-runc-v2
 * uses (docs/engines.md §3a), global flags first:
 *
 *   <bin> --root R --log B/log.json --log-format json [--systemd-cgroup] <verb> …
 *     create --bundle B --pid-file B/init.pid [--console-socket S] [--no-pivot] [--no-new-keyring] ID
 *     start ID · kill ID SIGNUM · kill --all ID SIGNUM · delete [--force] ID · pause ID · resume ID
 *     exec --process B/exec-E.json --detach --pid-file B/E.pid [--console-socket S] ID
 *     ps --format json ID · update --resources - ID · events --stats ID
 *
 * A failure's message is the last {"level":"error","msg":…} line the call appended to log.json,
 * else its stderr. Children are spawned with spawnOwned so the reaper leaves them to libuv.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError, type ErrorCode } from '../../spec/errors';
import { spawnOwned } from '../reaper';
import type { Runtime, RuntimeParams, RuntimeStdio } from './types';

/** Settings of a binary runtime. */
export interface BinaryParams extends RuntimeParams {
  readonly path: string;
  readonly systemdCgroup: boolean;
}

/** The error code a runtime's error message most likely means. */
export function codeForRuntimeMessage(msg: string): ErrorCode {
  const m = msg.toLowerCase();
  if (/does not exist|not found|no such/.test(m)) return 'NotFound';
  if (/already exists/.test(m)) return 'AlreadyExists';
  if (/not running|stopped|not paused|already paused|already running|cannot (start|pause|delete|exec)|is not|not created/.test(m)) return 'FailedPrecondition';
  if (/permission denied|operation not permitted/.test(m)) return 'PermissionDenied';
  if (/invalid|unknown|must/.test(m)) return 'InvalidArgument';
  return 'Internal';
}

/** The last error line's msg among JSON log lines. */
export function lastLogError(text: string): string | undefined {
  let found: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const o = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if ((o.level === 'error' || o.level === 'fatal') && typeof o.msg === 'string') found = o.msg;
    } catch {
      // not JSON: runc writes only JSON here, skip anything else
    }
  }
  return found;
}

/** Turn integers too large for a double into decimal strings before JSON.parse. */
export function parseJsonKeepingBigints(text: string): unknown {
  return JSON.parse(text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"')) as unknown;
}

/** An OCI runtime binary as a Runtime. */
export function binaryRuntime(p: BinaryParams): Runtime {
  const logFile = path.join(p.bundle, 'log.json');
  const globals = ['--root', p.root, '--log', logFile, '--log-format', 'json', ...(p.systemdCgroup ? ['--systemd-cgroup'] : [])];

  const run = (verb: string, args: readonly string[], opts: { stdio?: RuntimeStdio; input?: string } = {}): Promise<string> =>
    new Promise((resolve, reject) => {
      let logOffset = 0;
      try {
        logOffset = fs.statSync(logFile).size;
      } catch {
        // no log yet
      }
      const fds = opts.stdio?.fds;
      const child = spawnOwned(p.path, [...globals, verb, ...args], {
        cwd: p.bundle,
        stdio: fds
          ? [fds[0] < 0 ? 'ignore' : fds[0], fds[1] < 0 ? 'ignore' : fds[1], fds[2] < 0 ? 'ignore' : fds[2]]
          : [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      child.on('error', (e) => reject(new TsrunError('Unavailable', `run ${p.path} ${verb}: ${e.message}`, { cause: e })));
      child.on('close', (code, signal) => {
        if (code === 0) return resolve(out);
        let logged: string | undefined;
        try {
          const fd = fs.openSync(logFile, 'r');
          try {
            const size = fs.fstatSync(fd).size;
            const buf = Buffer.alloc(Math.max(0, size - logOffset));
            fs.readSync(fd, buf, 0, buf.length, logOffset);
            logged = lastLogError(buf.toString('utf8'));
          } finally {
            fs.closeSync(fd);
          }
        } catch {
          // no log: fall back to stderr
        }
        const why = logged ?? (err.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit status ${code}`));
        reject(new TsrunError(codeForRuntimeMessage(why), `${path.basename(p.path)} ${verb} ${p.id}: ${why}`));
      });
    });

  const readPid = (file: string): number => {
    try {
      const n = parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
      if (Number.isInteger(n) && n > 0) return n;
    } catch (err) {
      throw new TsrunError('Internal', `read pid file ${file}: ${(err as Error).message}`, { cause: err });
    }
    throw new TsrunError('Internal', `read pid file ${file}: not a pid`);
  };
  const consoleArgs = (s: RuntimeStdio): string[] => (s.consoleSocket ? ['--console-socket', s.consoleSocket] : []);

  return {
    async create(stdio) {
      const pidFile = path.join(p.bundle, 'init.pid');
      await run('create', ['--bundle', p.bundle, '--pid-file', pidFile, ...consoleArgs(stdio), ...(p.noPivot ? ['--no-pivot'] : []), ...(p.noNewKeyring ? ['--no-new-keyring'] : []), p.id], { stdio });
      return readPid(pidFile);
    },
    async start() {
      await run('start', [p.id]);
    },
    async exec(execId, processJson, stdio) {
      const procFile = path.join(p.bundle, `exec-${execId}.json`);
      const pidFile = path.join(p.bundle, `${execId}.pid`);
      fs.writeFileSync(procFile, processJson, { mode: 0o600 });
      try {
        await run('exec', ['--process', procFile, '--detach', '--pid-file', pidFile, ...consoleArgs(stdio), p.id], { stdio });
      } finally {
        fs.rmSync(procFile, { force: true });
      }
      return readPid(pidFile);
    },
    async kill(signal, all) {
      await run('kill', [...(all ? ['--all'] : []), p.id, String(signal)]);
    },
    async delete(force) {
      await run('delete', [...(force ? ['--force'] : []), p.id]);
    },
    async pause() {
      await run('pause', [p.id]);
    },
    async resume() {
      await run('resume', [p.id]);
    },
    async ps() {
      const v = JSON.parse((await run('ps', ['--format', 'json', p.id])).trim() || '[]') as unknown;
      return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
    },
    async stats() {
      const line = (await run('events', ['--stats', p.id])).trim().split('\n').pop() ?? '';
      const v = parseJsonKeepingBigints(line) as { data?: unknown };
      return v.data ?? {};
    },
    async update(resourcesJson) {
      await run('update', ['--resources', '-', p.id], { input: resourcesJson });
    },
  };
}
