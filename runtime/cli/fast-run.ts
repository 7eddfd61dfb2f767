/*
 * Running a command line the fast path understood (fast-args.ts), shared by the full CLI
 * (main.ts) and the lifecycle bundle (entry-lifecycle.ts, which has no yargs, zod or create).
 * The verbs come as a table, so each bundle carries only the commands it lists; they get the
 * same arguments the yargs handlers pass (defaults included), and failures are reported the way
 * main.ts reports every failure.
 */
import { TsrunError } from '../../spec/errors';
import type { CommandContext } from '../commands/context';
import { defaultRoot, type GlobalArgs } from './argv';
import type { FastInvocation, FastVerb } from './fast-args';
import { createLogger, type Logger } from './log';

/** One fast-path verb: run it with the context and the parsed command line; resolves to the exit status. */
export type FastCommand = (ctx: CommandContext, f: FastInvocation) => number | Promise<number>;

/** The fast-path verbs a bundle carries. */
export type FastCommands = Readonly<Partial<Record<FastVerb, FastCommand>>>;

/** Where a command's output and messages go. */
export interface CliOutput {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

/** The verbs engines call on a container that exists: no spec parsing, no plan, no yargs. */
export const LIFECYCLE_COMMANDS: FastCommands = {
  start: async (ctx, f) => (await import('../commands/start')).start(ctx, f.positionals[0]!),
  state: async (ctx, f) => (await import('../commands/state')).state(ctx, f.positionals[0]!),
  kill: async (ctx, f) => (await import('../commands/kill')).kill(ctx, f.positionals[0]!, f.positionals[1] ?? 'SIGTERM', f.flags.has('all')),
  delete: async (ctx, f) => (await import('../commands/delete')).del(ctx, f.positionals[0]!, f.flags.has('force')),
};

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

/** The global flags of a fast-path command line, with main.ts's defaults. */
export function globalArgsOf(f: FastInvocation): GlobalArgs {
  return {
    root: f.strings['root'] ?? defaultRoot(),
    'log-format': f.strings['log-format'] ?? 'text',
    debug: f.flags.has('debug'),
    'systemd-cgroup': f.flags.has('systemd-cgroup'),
    ...(f.strings['log'] === undefined ? {} : { log: f.strings['log'] }),
  };
}

/**
 * Run `command` for a fast-path command line, building the context first as the yargs handlers
 * do, so a bad --log-format is reported before anything else; resolves to the exit status.
 */
export async function runFast(f: FastInvocation, command: FastCommand, out: CliOutput): Promise<number> {
  let log: Logger = createLogger({ format: 'text', debug: false }, out.stderr);
  try {
    const ctx = commandContext(globalArgsOf(f), out);
    log = ctx.log;
    return await command(ctx, f);
  } catch (err) {
    return reportError(log, err, 1);
  }
}
