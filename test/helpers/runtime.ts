/**
 * Runs the OCI runtime under test (or runc) the way engines do: argv arrays, global flags
 * before the subcommand, a private `--root` per test.
 *
 * Output capture. The container inherits the stdio of `create` and `run`, so capturing
 * through pipes would make every call wait for the container to exit. Each invocation
 * therefore writes stdout and stderr to fresh files under the runtime's `ioDir`; the
 * result carries the text read when the runtime exited plus the paths, so a test can
 * re-read them later to see what the container wrote through the same descriptors.
 */
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { which } from './host';

const repoRoot = path.resolve(__dirname, '..', '..');

/** Absolute path of the binary under test: `$TSRUN`, else `<repo>/bin/tsrun`. */
export const runtimePath: string = path.resolve(process.env['TSRUN'] ?? path.join(repoRoot, 'bin', 'tsrun'));

/** Which implementation `runtimePath` is, for the few checks that knowingly differ. */
export const runtimeName: 'runc' | 'tsrun' = path.basename(runtimePath) === 'runc' ? 'runc' : 'tsrun';


/** The reference runtime (runc on $PATH, or `$RUNC`), if installed. */
export const runcPath: string | undefined = process.env['RUNC'] ?? which('runc');

/** `--log FILE --log-format json|text`. */
export interface LogOptions {
  path: string;
  format?: 'json' | 'text';
}

/** How to invoke the runtime once. */
export interface InvokeOptions {
  /** Text fed on stdin; stdin is /dev/null otherwise. */
  input?: string;
  /** Descriptors the child receives as fds 3, 4, … (without O_CLOEXEC). */
  extraFds?: readonly number[];
  /** Kill the runtime with SIGKILL after this long (default 60 s). */
  timeoutMs?: number;
  /** Override the runtime's default `--log` setting for this call (`false`: no --log). */
  log?: LogOptions | false;
}

/** What one invocation did. */
export interface RunResult {
  /** argv after the binary. */
  readonly args: readonly string[];
  /** Exit status, or null when killed by a signal (including our timeout). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** stdout/stderr as they were when the runtime exited. */
  readonly stdout: string;
  readonly stderr: string;
  /** Files that received stdout/stderr; the container may keep writing to them. */
  readonly stdoutPath: string;
  readonly stderrPath: string;
  readonly ms: number;
}

/** `create` options beyond the id and bundle. */
export interface CreateOptions extends InvokeOptions {
  /** Pid file path; omit for none. */
  pidFile?: string;
  preserveFds?: number;
  noPivot?: boolean;
}

/** `run` options beyond the id and bundle. */
export interface RunOptions extends CreateOptions {
  detach?: boolean;
}

/** One runtime binary bound to one `--root`. */
export interface Runtime {
  readonly binary: string;
  readonly name: 'runc' | 'tsrun';
  readonly root: string;
  /** Every id this runtime was asked to create or run (teardown force-deletes them). */
  readonly ids: ReadonlySet<string>;
  /** Full argv (global flags first) for `args`, for tests that spawn by hand. */
  argv(args: readonly string[], log?: LogOptions | false): string[];
  exec(args: readonly string[], opts?: InvokeOptions): RunResult;
  execAsync(args: readonly string[], opts?: InvokeOptions): Promise<RunResult>;
  create(id: string, bundle: string, opts?: CreateOptions): RunResult;
  createAsync(id: string, bundle: string, opts?: CreateOptions): Promise<RunResult>;
  run(id: string, bundle: string, opts?: RunOptions): RunResult;
  runAsync(id: string, bundle: string, opts?: RunOptions): Promise<RunResult>;
  start(id: string, opts?: InvokeOptions): RunResult;
  state(id: string, opts?: InvokeOptions): RunResult;
  kill(id: string, signal?: string, opts?: InvokeOptions & { all?: boolean }): RunResult;
  delete(id: string, opts?: InvokeOptions & { force?: boolean }): RunResult;
  list(flags?: readonly string[], opts?: InvokeOptions): RunResult;
}

/** Settings for `makeRuntime`. */
export interface RuntimeSettings {
  binary: string;
  root: string;
  /** Directory for the per-call stdout/stderr files. */
  ioDir: string;
  /** Default `--log` for every call. */
  log?: LogOptions;
}

let callSeq = 0;

/** A compact description of a result for assertion messages. */
export function describe(r: RunResult): string {
  const status = r.code !== null ? `exit ${r.code}` : `signal ${r.signal ?? '?'}`;
  const clip = (s: string): string => (s.length > 600 ? `${s.slice(0, 600)}…` : s);
  return `${r.args.join(' ')} → ${status}; stdout=${JSON.stringify(clip(r.stdout))} stderr=${JSON.stringify(clip(r.stderr))}`;
}

/** stdout and stderr together, as containerd string-matches them. */
export function combined(r: RunResult): string {
  return `${r.stdout}${r.stderr}`;
}

/** Re-read what has been written so far to a result's stdout (e.g. by the container). */
export function stdoutNow(r: RunResult): string {
  return fs.readFileSync(r.stdoutPath, 'utf8');
}

/** Re-read what has been written so far to a result's stderr. */
export function stderrNow(r: RunResult): string {
  return fs.readFileSync(r.stderrPath, 'utf8');
}

interface Prepared {
  args: string[];
  stdio: StdioOptions;
  close: () => void;
  outPath: string;
  errPath: string;
}

function prepare(settings: RuntimeSettings, argv: string[], verb: string, opts: InvokeOptions): Prepared {
  const seq = ++callSeq;
  const base = path.join(settings.ioDir, `${String(seq).padStart(4, '0')}-${verb.replace(/[^a-z-]/gi, '_')}`);
  const outPath = `${base}.out`;
  const errPath = `${base}.err`;
  const fds: number[] = [];
  const open = (p: string, flags: string): number => {
    const fd = fs.openSync(p, flags);
    fds.push(fd);
    return fd;
  };
  let stdin: number | 'ignore' = 'ignore';
  if (opts.input !== undefined) {
    fs.writeFileSync(`${base}.in`, opts.input);
    stdin = open(`${base}.in`, 'r');
  }
  const stdio: StdioOptions = [stdin, open(outPath, 'w'), open(errPath, 'w'), ...(opts.extraFds ?? [])];
  const close = (): void => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
  };
  return { args: argv, stdio, close, outPath, errPath };
}

function finish(p: Prepared, code: number | null, signal: NodeJS.Signals | null, started: number): RunResult {
  return {
    args: p.args,
    code,
    signal,
    stdout: fs.readFileSync(p.outPath, 'utf8'),
    stderr: fs.readFileSync(p.errPath, 'utf8'),
    stdoutPath: p.outPath,
    stderrPath: p.errPath,
    ms: Date.now() - started,
  };
}

function createArgs(verb: 'create' | 'run', id: string, bundle: string, opts: RunOptions): string[] {
  const args: string[] = [verb, '--bundle', bundle];
  if (opts.pidFile !== undefined) args.push('--pid-file', opts.pidFile);
  if (opts.preserveFds !== undefined) args.push('--preserve-fds', String(opts.preserveFds));
  if (opts.noPivot === true) args.push('--no-pivot');
  if (verb === 'run' && opts.detach === true) args.push('--detach');
  args.push(id);
  return args;
}

/** A runtime bound to `settings.root`; nothing is created until it is called. */
export function makeRuntime(settings: RuntimeSettings): Runtime {
  const ids = new Set<string>();
  const name: 'runc' | 'tsrun' = path.basename(settings.binary) === 'runc' ? 'runc' : 'tsrun';
  fs.mkdirSync(settings.ioDir, { recursive: true });

  const argv = (args: readonly string[], log?: LogOptions | false): string[] => {
    const chosen = log === undefined ? settings.log : log === false ? undefined : log;
    const global: string[] = ['--root', settings.root];
    if (chosen !== undefined) global.push('--log', chosen.path, '--log-format', chosen.format ?? 'json');
    return [...global, ...args];
  };

  const exec = (args: readonly string[], opts: InvokeOptions = {}): RunResult => {
    const p = prepare(settings, argv(args, opts.log), args[0] ?? 'none', opts);
    const started = Date.now();
    try {
      const r = spawnSync(settings.binary, p.args, {
        stdio: p.stdio,
        timeout: opts.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
      });
      const err = r.error as NodeJS.ErrnoException | undefined;
      if (err !== undefined && err.code !== 'ETIMEDOUT') throw err;
      return finish(p, r.status, r.signal, started);
    } finally {
      p.close();
    }
  };

  const execAsync = (args: readonly string[], opts: InvokeOptions = {}): Promise<RunResult> => {
    const p = prepare(settings, argv(args, opts.log), args[0] ?? 'none', opts);
    const started = Date.now();
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(settings.binary, p.args, { stdio: p.stdio });
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      child.once('error', (err) => {
        clearTimeout(timer);
        p.close();
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        p.close();
        resolve(finish(p, code, signal, started));
      });
    });
  };

  return {
    binary: settings.binary,
    name,
    root: settings.root,
    ids,
    argv,
    exec,
    execAsync,
    create(id, bundle, opts = {}) {
      ids.add(id);
      return exec(createArgs('create', id, bundle, opts), opts);
    },
    createAsync(id, bundle, opts = {}) {
      ids.add(id);
      return execAsync(createArgs('create', id, bundle, opts), opts);
    },
    run(id, bundle, opts = {}) {
      ids.add(id);
      return exec(createArgs('run', id, bundle, opts), opts);
    },
    runAsync(id, bundle, opts = {}) {
      ids.add(id);
      return execAsync(createArgs('run', id, bundle, opts), opts);
    },
    start: (id, opts) => exec(['start', id], opts),
    state: (id, opts) => exec(['state', id], opts),
    kill(id, signal = 'KILL', opts = {}) {
      return exec(opts.all === true ? ['kill', '--all', id, signal] : ['kill', id, signal], opts);
    },
    delete(id, opts = {}) {
      return exec(opts.force === true ? ['delete', '--force', id] : ['delete', id], opts);
    },
    list: (flags = [], opts) => exec(['list', ...flags], opts),
  };
}
