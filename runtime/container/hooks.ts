/*
 * Hooks that run in the runtime's namespaces: prestart, createRuntime, poststart, poststop.
 * (createContainer and startContainer run inside the container and are plan ops.)
 * Each hook gets the OCI state JSON on stdin; `timeout` seconds bound it.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Hook } from '../../spec';
import { TsrunError } from '../../spec/errors';

/** The state document hooks read on stdin (runtime-spec runtime.md#state). */
export interface HookState {
  readonly ociVersion: string;
  readonly id: string;
  readonly status: string;
  readonly pid?: number;
  readonly bundle: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Run one hook; throws a TsrunError naming the hook kind, path and what went wrong. */
export function runHook(kind: string, hook: Hook, state: HookState): void {
  const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const res = spawnSync(hook.path, args.slice(1), {
    argv0: args[0] ?? hook.path,
    env: Object.fromEntries((hook.env ?? []).map((kv) => splitEnv(kv))),
    input: JSON.stringify(state),
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: hook.timeout !== undefined && hook.timeout > 0 ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
    maxBuffer: 1024 * 1024,
  });
  hookOutcome(kind, hook, { status: res.status, signal: res.signal, error: res.error as NodeJS.ErrnoException | undefined, output: `${res.stdout?.toString() ?? ''}${res.stderr?.toString() ?? ''}` });
}

/** runHook with the hook a child process of ours that we await: the caller's event loop goes on (tsrund). */
export async function runHookAsync(kind: string, hook: Hook, state: HookState): Promise<void> {
  const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const res = await new Promise<HookRun>((resolve) => {
    let output = '';
    let error: NodeJS.ErrnoException | undefined;
    let timer: NodeJS.Timeout | undefined;
    const c = spawn(hook.path, args.slice(1), { argv0: args[0] ?? hook.path, env: Object.fromEntries((hook.env ?? []).map((kv) => splitEnv(kv))), stdio: ['pipe', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      if (output.length < 1024 * 1024) output += b.toString();
    };
    c.stdout.on('data', keep);
    c.stderr.on('data', keep);
    c.stdin.on('error', (e: NodeJS.ErrnoException) => (error ??= e));
    c.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e;
      if (c.pid === undefined) resolve({ status: null, signal: null, error, output });
    });
    if (hook.timeout !== undefined && hook.timeout > 0) {
      timer = setTimeout(() => {
        error = Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' });
        c.kill('SIGKILL');
      }, hook.timeout * 1000);
    }
    c.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, error, output });
    });
    c.stdin.end(JSON.stringify(state));
  });
  hookOutcome(kind, hook, res);
}

interface HookRun {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error: NodeJS.ErrnoException | undefined;
  readonly output: string;
}

function hookOutcome(kind: string, hook: Hook, res: HookRun): void {
  const output = res.output.trim().slice(0, 1024);
  const where = `${kind} hook ${hook.path}`;
  // A hook that exits without reading the state breaks the pipe: not a failure (runc ignores it too).
  const broken = res.error?.code === 'EPIPE' && (res.status !== null || res.signal !== null);
  const err = broken ? undefined : res.error;
  if (err) {
    if (err.code === 'ETIMEDOUT') throw new TsrunError('Unavailable', `${where}: timed out after ${hook.timeout} s`);
    throw new TsrunError('FailedPrecondition', `${where}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`, { cause: err });
  }
  if (res.signal) throw new TsrunError('FailedPrecondition', `${where}: killed by signal ${res.signal}${output ? `: ${output}` : ''}`);
  if (res.status !== 0) throw new TsrunError('FailedPrecondition', `${where}: exit status ${res.status}${output ? `: ${output}` : ''}`);
}

/** runHooks, awaited one after another. */
export async function runHooksAsync(kind: string, hooks: readonly Hook[] | undefined, state: HookState): Promise<void> {
  for (const h of hooks ?? []) await runHookAsync(kind, h, state);
}

/** Run hooks in order, stopping at the first failure. */
export function runHooks(kind: string, hooks: readonly Hook[] | undefined, state: HookState): void {
  for (const h of hooks ?? []) runHook(kind, h, state);
}

/** Run hooks whose failure must not fail the operation (poststart, poststop); returns the warnings. */
export function runHooksWarnOnly(kind: string, hooks: readonly Hook[] | undefined, state: HookState): string[] {
  const warnings: string[] = [];
  for (const h of hooks ?? []) {
    try {
      runHook(kind, h, state);
    } catch (err) {
      warnings.push((err as Error).message);
    }
  }
  return warnings;
}

function splitEnv(kv: string): [string, string] {
  const i = kv.indexOf('=');
  return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
}
