/*
 * `tsctl exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD [ARG…]`: the container's
 * process spec with the command, env, cwd and user replaced → Tasks.Exec (fifos) → Start → Wait →
 * DeleteProcess; exits with the command's status (126/127 when it cannot be run).
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { TsrunError } from '../../../spec/errors';
import { RpcError } from '../../client';
import { PROCESS_TYPE_URL } from '../../proto/index';
import { parseArgs } from '../args';
import { startFailureExit, usage, withExit, type Ctx } from '../context';
import { findContainer } from '../model';
import { expandEnv, mergeEnv, resolveUser } from '../spec';
import { openFifos, rawTerminal } from '../stdio';
import { signalNumber } from '../task';

/** `tsctl exec` */
export async function exec(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'detach', short: 'd', kind: 'bool', help: 'run in the background' },
      { name: 'interactive', short: 'i', kind: 'bool', help: 'keep stdin open' },
      { name: 'tty', short: 't', kind: 'bool', help: 'allocate a pseudo-terminal' },
      { name: 'env', short: 'e', kind: 'list', help: 'set an environment variable' },
      { name: 'workdir', short: 'w', kind: 'string', help: 'working directory' },
      { name: 'user', short: 'u', kind: 'string', help: 'user[:group]' },
      { name: 'privileged', kind: 'bool', help: 'accepted, ignored' },
    ],
    true,
  );
  const [ref, ...cmd] = a.operands;
  if (ref === undefined || cmd.length === 0) throw usage('"exec" requires at least 2 arguments: tsctl exec [OPTIONS] CONTAINER COMMAND [ARG...]');
  const { client } = ctx;
  const c = await findContainer(client, ref);
  if (c.state !== 'running') throw withExit(new TsrunError('FailedPrecondition', `Container ${c.id} is ${c.state === 'paused' ? 'paused, unpause the container before exec' : 'not running'}`), 1);
  const base = (c.spec['process'] ?? {}) as Record<string, unknown>;
  const tty = a.bools.has('tty');
  const proc: Record<string, unknown> = { ...base, args: cmd, terminal: tty };
  proc['env'] = mergeEnv((base['env'] as string[] | undefined) ?? [], tty ? ['TERM=xterm'] : [], expandEnv(a.lists.get('env') ?? [], ctx.env));
  const wd = a.strings.get('workdir');
  if (wd !== undefined) {
    if (!path.isAbsolute(wd)) throw usage(`the working directory '${wd}' is invalid, it needs to be an absolute path`);
    proc['cwd'] = wd;
  }
  const user = a.strings.get('user');
  if (user !== undefined) {
    const root = ((c.spec['root'] ?? {}) as { path?: string }).path ?? '/';
    proc['user'] = resolveUser(root, user);
  }
  delete proc['consoleSize'];
  // short: the shim names the exec's console socket after it (<shimdir>/pty-exec-<id>.sock) and
  // a unix socket path is limited to 107 bytes; a clash is AlreadyExists and can be retried
  const execId = randomBytes(2).toString('hex');
  const spec = { typeUrl: PROCESS_TYPE_URL, value: Buffer.from(JSON.stringify(proc)) };
  const startErr = (e: unknown): Error => {
    const msg = e instanceof RpcError ? e.details : e instanceof Error ? e.message : String(e);
    return withExit(new TsrunError('Internal', msg.startsWith('exec failed') ? msg : `exec failed: ${msg}`, { cause: e }), startFailureExit(msg));
  };
  if (a.bools.has('detach')) {
    try {
      await client.call('Tasks', 'Exec', { containerId: c.id, execId, stdin: '', stdout: '', stderr: '', terminal: false, spec });
      await client.call('Tasks', 'Start', { containerId: c.id, execId });
    } catch (e) {
      await client.call('Tasks', 'DeleteProcess', { containerId: c.id, execId }).catch(() => undefined);
      throw startErr(e);
    }
    return 0;
  }
  const interactive = a.bools.has('interactive');
  const fifos = openFifos({ withStdin: interactive, tty, input: () => ctx.stdin, output: ctx.stdout, errput: ctx.stderr });
  let restore = (): void => undefined;
  const cleanups: Array<() => void> = [];
  let registered = false;
  try {
    try {
      await client.call('Tasks', 'Exec', { containerId: c.id, execId, stdin: fifos.stdin, stdout: fifos.stdout, stderr: fifos.stderr, terminal: tty, spec });
    } catch (e) {
      throw startErr(e);
    }
    registered = true;
    const waited = client.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: c.id, execId });
    waited.catch(() => undefined);
    if (tty) {
      const resize = (): void => {
        const cols = ctx.stdout.columns ?? 0;
        const rows = ctx.stdout.rows ?? 0;
        if (cols > 0 && rows > 0) client.call('Tasks', 'ResizePty', { containerId: c.id, execId, width: cols, height: rows }).catch(() => undefined);
      };
      process.on('SIGWINCH', resize);
      cleanups.push(() => process.off('SIGWINCH', resize));
      if (interactive) restore = rawTerminal(ctx.stdin);
      try {
        await client.call('Tasks', 'Start', { containerId: c.id, execId });
      } catch (e) {
        throw startErr(e);
      }
      resize();
    } else {
      // As ctr's task exec: signals go to the process, so tsctl ends with it and cleans up (its fifo
      // dir, the exec record) instead of dying with them left behind.
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
        const fwd = (): void => {
          client.call('Tasks', 'Kill', { containerId: c.id, execId, signal: signalNumber(sig), all: false }).catch(() => undefined);
        };
        process.on(sig, fwd);
        cleanups.push(() => process.off(sig, fwd));
      }
      try {
        await client.call('Tasks', 'Start', { containerId: c.id, execId });
      } catch (e) {
        throw startErr(e);
      }
    }
    // the shim opens an exec's fifos when it starts the process: read them only now
    const output = fifos.attach();
    const { exitStatus } = await waited;
    await Promise.race([output, new Promise((res) => setTimeout(res, 2000).unref())]);
    return exitStatus;
  } finally {
    restore();
    for (const f of cleanups) f();
    fifos.close();
    if (interactive) ctx.stdin.pause();
    if (registered) await client.call('Tasks', 'DeleteProcess', { containerId: c.id, execId }).catch(() => undefined);
  }
}
