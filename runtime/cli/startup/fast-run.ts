/*
 * Running a command, shared by the yargs path (main.ts), the full bundle's fast path and the
 * lifecycle bundle (entry-lifecycle.ts, which has no yargs, zod or create). A command is a
 * handler of the parsed arguments (the record yargs makes, which the fast parser makes too), so
 * each verb is run by one function whichever parser read its command line. The handlers come as
 * tables, so each bundle carries only the commands it lists.
 */
import { TsrunError } from '../../../spec/errors';
import type { CommandContext } from '../../commands/context';
import type { GlobalArgs } from '../argv';
import { createLogger, type Logger } from '../log';
import type { FastInvocation } from './fast-args';

/** Parsed arguments: positionals and flags by long name (yargs's record, or the fast parser's). */
export type ParsedArgs = Readonly<Record<string, unknown>>;

/** One verb's handler; resolves to the exit status. */
export type Command = (ctx: CommandContext, a: ParsedArgs) => number | Promise<number>;

/** Handlers by verb. */
export type Commands = Readonly<Record<string, Command>>;

/** Where a command's output and messages go. */
export interface CliOutput {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

const id = (a: ParsedArgs): string => String(a['container-id']);

/** The verbs engines call on a container that exists (verbs.ts: fast 'lifecycle'): no spec parsing, no plan, no yargs. */
export const LIFECYCLE_COMMANDS: Commands = {
  start: async (ctx, a) => (await import('../../commands/start')).start(ctx, id(a)),
  state: async (ctx, a) => (await import('../../commands/state')).state(ctx, id(a)),
  kill: async (ctx, a) => (await import('../../commands/kill')).kill(ctx, id(a), String(a['signal']), a['all'] === true),
  delete: async (ctx, a) => (await import('../../commands/delete')).del(ctx, id(a), a['force'] === true),
};

/** The global flags of parsed arguments. */
export function globalArgsOf(a: ParsedArgs): GlobalArgs {
  return {
    root: String(a['root']),
    'log-format': String(a['log-format']),
    debug: a['debug'] === true,
    'systemd-cgroup': a['systemd-cgroup'] === true,
    ...(a['log'] === undefined ? {} : { log: String(a['log']) }),
  };
}

/** The command context for the global flags; InvalidArgument for a bad --log-format. */
export function commandContext(a: GlobalArgs, out: CliOutput): CommandContext {
  const format = a['log-format'];
  if (format !== 'text' && format !== 'json') throw new TsrunError('InvalidArgument', `invalid --log-format ${JSON.stringify(format)}: use text or json`);
  const log = createLogger({ file: a.log, format, debug: a.debug }, out.stderr);
  return { root: a.root, log, systemdCgroup: a['systemd-cgroup'], out: out.stdout };
}

/** Print and log a failure the way every verb does; returns the exit status. */
export function reportError(log: Logger, err: unknown, failureStatus: number): number {
  const e = err instanceof TsrunError ? err : new TsrunError('Internal', err instanceof Error ? err.message : String(err), { cause: err });
  log.error(e.fullMessage());
  if (e.code === 'InvalidArgument' && /Unknown argument|Not enough non-option|Missing required/.test(e.message)) log.error('see tsrun --help');
  return failureStatus;
}

/**
 * Run `command` for a fast-path command line, building the context first as the yargs handlers
 * do, so a bad --log-format is reported before anything else; resolves to the exit status.
 */
export async function runFast(f: FastInvocation, command: Command, out: CliOutput): Promise<number> {
  let log: Logger = createLogger({ format: 'text', debug: false }, out.stderr);
  try {
    const ctx = commandContext(globalArgsOf(f.args), out);
    log = ctx.log;
    return await command(ctx, f.args);
  } catch (err) {
    return reportError(log, err, 1);
  }
}
