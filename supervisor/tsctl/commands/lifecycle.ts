/*
 * start, stop, restart, kill, rm, pause, unpause, wait: one or more containers each; every
 * container is tried, the first failure decides the exit code (1), like docker.
 */
import { TsrunError } from '../../../spec/errors';
import { RpcError } from '../../client';
import { COUNT_LABEL, STATE_LABEL, STOPPED_LABEL } from '../../restart/policy';
import { parseArgs, type OptionDef } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { findContainer, hasTask, setLabels, type ContainerInfo } from '../model';
import type { Mount } from '../../../spec';
import { removeAnonymousVolumes } from '../mounts';
import { STOP_SIGNAL_LABEL } from '../image-run';
import { isNotFound, removeContainer, signalNumber, startDetached, stopContainer } from '../task';

type Each = (ctx: Ctx, c: ContainerInfo, ref: string) => Promise<void>;

async function forEach(ctx: Ctx, what: string, refs: readonly string[], fn: Each, print = true): Promise<number> {
  if (refs.length === 0) throw usage(`"${what}" requires at least 1 argument`);
  let status = 0;
  for (const ref of refs) {
    try {
      const c = await findContainer(ctx.client, ref);
      await fn(ctx, c, ref);
      if (print) ctx.out(ref);
    } catch (e) {
      ctx.warn(`tsctl: ${e instanceof RpcError ? e.details : e instanceof Error ? e.message : String(e)}`);
      status = 1;
    }
  }
  return status;
}

const failed = (msg: string): TsrunError => withExit(new TsrunError('FailedPrecondition', msg), 1);

/** `tsctl start CONTAINER…` (detached; output in the log). */
export function start(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [], false);
  return forEach(ctx, 'start', a.operands, async (ctx, c) => {
    if (c.state === 'running' || c.state === 'restarting') return;
    if (c.state === 'paused') throw failed(`cannot start a paused container, try unpause instead`);
    // a manual start begins again: no manual stop, a new restart count (docker resets it too)
    await setLabels(ctx.client, c.id, { [STOPPED_LABEL]: undefined, [COUNT_LABEL]: undefined, [STATE_LABEL]: undefined });
    await startDetached(ctx.client, c.id);
  });
}

const STOP_OPTIONS: readonly OptionDef[] = [
  { name: 'time', short: 't', kind: 'string', help: 'seconds to wait before SIGKILL (default 10)' },
  { name: 'signal', short: 's', kind: 'string', help: 'signal to stop with (default SIGTERM)' },
];

function grace(text: string | undefined): number {
  if (text === undefined) return 10;
  const n = Number(text);
  if (!Number.isInteger(n)) throw usage(`invalid argument ${JSON.stringify(text)} for "-t, --time" flag`);
  return n;
}

/** `tsctl stop [-t N] CONTAINER…` */
export function stop(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, STOP_OPTIONS, false);
  const t = grace(a.strings.get('time'));
  const given = a.strings.get('signal');
  const sig = signalNumber(given ?? 'TERM');
  // the image's STOPSIGNAL unless -s says otherwise
  return forEach(ctx, 'stop', a.operands, (ctx, c) => stopContainer(ctx.client, c, t, given === undefined && c.labels[STOP_SIGNAL_LABEL] !== undefined ? signalNumber(c.labels[STOP_SIGNAL_LABEL]) : sig));
}

/** `tsctl restart [-t N] CONTAINER…` */
export function restart(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, STOP_OPTIONS, false);
  const t = grace(a.strings.get('time'));
  return forEach(ctx, 'restart', a.operands, async (ctx, c) => {
    await stopContainer(ctx.client, c, t);
    await setLabels(ctx.client, c.id, { [STOPPED_LABEL]: undefined, [STATE_LABEL]: undefined });
    await startDetached(ctx.client, c.id);
  });
}

/** `tsctl kill [-s SIG] CONTAINER…` */
export function kill(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'signal', short: 's', kind: 'string', help: 'signal (default KILL)' }], false);
  const sig = signalNumber(a.strings.get('signal') ?? 'KILL');
  return forEach(ctx, 'kill', a.operands, async (ctx, c) => {
    if (c.state !== 'running' && c.state !== 'paused') throw failed(`Cannot kill container: ${c.id.slice(0, 12)}: Container ${c.id} is not running`);
    // signals that end a container count as a manual stop for the restart policy
    if ([9, 15, 2, 3].includes(sig)) await setLabels(ctx.client, c.id, { [STOPPED_LABEL]: 'true' });
    try {
      await ctx.client.call('Tasks', 'Kill', { containerId: c.id, signal: sig, all: sig === 9 });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  });
}

/** `tsctl rm [-f] CONTAINER…` */
export function rm(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'force', short: 'f', kind: 'bool', help: 'kill a running container first' }, { name: 'volumes', short: 'v', kind: 'bool', help: 'remove the anonymous volumes of the container too' }], false);
  const force = a.bools.has('force');
  return forEach(ctx, 'rm', a.operands, async (ctx, c) => {
    if (c.state === 'running' || c.state === 'paused' || c.state === 'restarting') {
      if (!force) {
        throw failed(`You cannot remove a ${c.state} container ${c.id}. Stop the container before attempting removal or force remove`);
      }
      await stopContainer(ctx.client, c, 0, 9);
    }
    // A restart policy may bring the task back between our stop and our delete; tsrund gives up
    // restarting once it sees the manually-stopped label, so a second round settles it.
    for (let attempt = 1; ; attempt++) {
      try {
        await removeContainer(ctx.client, c);
        if (a.bools.has('volumes')) await removeAnonymousVolumes(ctx.client, (c.spec['mounts'] ?? []) as Mount[]);
        return;
      } catch (e) {
        if (!force || attempt >= 3) throw e;
        await stopContainer(ctx.client, { ...c, state: 'running' }, 0, 9);
      }
    }
  });
}

/** `tsctl pause CONTAINER…` */
export function pause(ctx: Ctx, argv: readonly string[]): Promise<number> {
  return forEach(ctx, 'pause', parseArgs(argv, [], false).operands, async (ctx, c) => {
    if (c.state === 'paused') throw failed(`Container ${c.id} is already paused`);
    if (c.state !== 'running') throw failed(`Container ${c.id} is not running`);
    await ctx.client.call('Tasks', 'Pause', { containerId: c.id });
  });
}

/** `tsctl unpause CONTAINER…` */
export function unpause(ctx: Ctx, argv: readonly string[]): Promise<number> {
  return forEach(ctx, 'unpause', parseArgs(argv, [], false).operands, async (ctx, c) => {
    if (c.state !== 'paused') throw failed(`Container ${c.id} is not paused`);
    await ctx.client.call('Tasks', 'Resume', { containerId: c.id });
  });
}

/** `tsctl wait CONTAINER…`: prints each exit code (exit status 0, as docker's). */
export function wait(ctx: Ctx, argv: readonly string[]): Promise<number> {
  return forEach(
    ctx,
    'wait',
    parseArgs(argv, [], false).operands,
    async (ctx, c) => {
      if (c.state === 'created') throw failed(`container ${c.id.slice(0, 12)} has not been started`);
      if (c.state === 'exited' && !(await hasTask(ctx.client, c.id))) {
        ctx.out(String(c.exitCode)); // its task is gone: the exit on record
        return;
      }
      const { exitStatus } = await ctx.client.call<{ exitStatus: number }>('Tasks', 'Wait', { containerId: c.id });
      ctx.out(String(exitStatus));
    },
    false,
  );
}
