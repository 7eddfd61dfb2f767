/*
 * argv → command. With the other files of runtime/cli, the only code that prints, writes the
 * --log file, or sets the exit status. Errors become: the plain message on stderr, one line in
 * the --log file, exit status 1. The verbs and flags are verbs.ts's. The verbs engines call per
 * container take the fast path (startup/fast-args.ts) when their command line is plain;
 * everything else, and every usage error, goes through yargs, which is loaded only then. How a
 * command line gets here at all is startup/README.md.
 */
import { readFileSync } from 'node:fs';
import type { Argv, Options } from 'yargs';
import { TsrunError } from '../../spec/errors';
import { createArgs, normalizeArgv, preserveFds, type GlobalArgs } from './argv';
import { parseFast } from './startup/fast-args';
import { LIFECYCLE_COMMANDS, commandContext, globalArgsOf, reportError, runFast, type Commands, type ParsedArgs } from './startup/fast-run';
import { GLOBAL_FLAGS, VERBS, commandString, defaultOf, type FlagDef } from './verbs';
import { createLogger, type Logger } from './log';
import type { CommandContext } from '../commands/context';

export { normalizeArgv, stripGlobalRootless } from './argv';
export { defaultRoot } from './verbs';

declare const TSRUN_COMMIT: string;

/** tsrun's version, printed by --version. */
export const VERSION = '0.1.0';
/** The runtime-spec version tsrun implements. */
export const SPEC_VERSION = '1.2.0';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const opt = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));

/**
 * Every verb's handler, by the name verbs.ts gives it: the lifecycle bundle's four and the rest.
 * Each takes the parsed arguments, whichever parser made them.
 */
const COMMANDS: Commands = {
  ...LIFECYCLE_COMMANDS,
  create: async (ctx, a) => (await import('../commands/create')).create(ctx, createArgs(a)),
  run: async (ctx, a) => (await import('../commands/run')).run(ctx, { ...createArgs(a), detach: a['detach'] === true, keep: a['keep'] === true }),
  list: async (ctx, a) => (await import('../commands/list')).list(ctx, a['format'] === 'json' ? 'json' : 'table', a['quiet'] === true),
  exec: async (ctx, a) =>
    (await import('../commands/exec')).exec(ctx, {
      id: String(a['container-id']),
      // normalizeArgv puts "--" after the container id: the command's own flags are its own.
      command: [...list(a['command']), ...list(a['_']).slice(1), ...list(a['--'])],
      processFile: opt(a['process']),
      detach: a['detach'] === true,
      pidFile: opt(a['pid-file']),
      preserveFds: preserveFds(a['preserve-fds']),
      cwd: opt(a['cwd']),
      env: list(a['env']),
      user: opt(a['user']),
      additionalGids: list(a['additional-gids']),
      caps: list(a['cap']),
      noNewPrivs: a['no-new-privs'] === true,
      tty: a['tty'] === true,
      consoleSocket: opt(a['console-socket']),
    }),
  pause: async (ctx, a) => (await import('../commands/pause')).pause(ctx, String(a['container-id'])),
  resume: async (ctx, a) => (await import('../commands/pause')).resume(ctx, String(a['container-id'])),
  ps: async (ctx, a) => (await import('../commands/ps')).ps(ctx, String(a['container-id']), a['format'] === 'json' ? 'json' : 'table', list(a['ps-args'])),
  events: async (ctx, a) => (await import('../commands/events')).events(ctx, String(a['container-id']), a['stats'] === true, String(a['interval'])),
  update: async (ctx, a) =>
    (await import('../commands/update')).update(ctx, String(a['container-id']), opt(a['resources']), {
      blkioWeight: opt(a['blkio-weight']), cpuPeriod: opt(a['cpu-period']), cpuQuota: opt(a['cpu-quota']), cpuShare: opt(a['cpu-share']),
      cpuRtPeriod: opt(a['cpu-rt-period']), cpuRtRuntime: opt(a['cpu-rt-runtime']), cpusetCpus: opt(a['cpuset-cpus']), cpusetMems: opt(a['cpuset-mems']),
      memory: opt(a['memory']), memoryReservation: opt(a['memory-reservation']), memorySwap: opt(a['memory-swap']),
      kernelMemory: opt(a['kernel-memory']), kernelMemoryTcp: opt(a['kernel-memory-tcp']), pidsLimit: opt(a['pids-limit']),
    }, () => readFileSync(0, 'utf8')),
  features: async (ctx) => (await import('../commands/features')).features(ctx, VERSION),
  spec: async (ctx, a) => (await import('../commands/spec')).spec(ctx, String(a['bundle']), a['rootless'] === true),
};

/** A flag of verbs.ts as yargs declares it. */
function yargsOption(f: FlagDef, global: boolean): Options {
  const o: Options = { type: f.type === 'strings' ? 'string' : f.type };
  if (f.type === 'strings') {
    // One value per flag, as runc's repeatable flags take: a greedy array would swallow the
    // container id that follows (`exec -g 5 ID cmd`).
    o.array = true;
    o.nargs = 1;
  }
  const d = defaultOf(f);
  if (d !== undefined) o.default = d;
  if (f.alias !== undefined) o.alias = f.alias;
  if (f.describe !== undefined) o.describe = f.describe;
  if (f.choices !== undefined) o.choices = [...f.choices];
  if (f.hidden === true) o.hidden = true;
  if (global) o.global = true;
  return o;
}

/**
 * The yargs parser of `args`, built from verbs.ts; a command line it accepts calls `onCommand`
 * with the verb and yargs's record of its arguments.
 */
export function buildParser(yargs: typeof import('yargs').default, args: string[], onCommand: (verb: string, a: ParsedArgs) => void): Argv {
  let parser = yargs(args)
    .scriptName('tsrun')
    .usage('tsrun [global options] <command> [command options] <container-id>')
    .strict()
    .exitProcess(false)
    // runc's flags start with "no-" (--no-pivot, --no-new-keyring): they are names, not negations.
    .parserConfiguration({ 'boolean-negation': false })
    .version(false)
    .help('help')
    .alias('help', 'h')
    .option('version', { alias: 'v', type: 'boolean', describe: 'print the version' });
  for (const [name, f] of Object.entries(GLOBAL_FLAGS)) parser = parser.option(name, yargsOption(f, true));
  for (const [verb, def] of Object.entries(VERBS)) {
    parser = parser.command(
      [commandString(verb), ...(def.aliases ?? [])],
      def.describe,
      (y) => {
        let c = y;
        for (const p of def.positionals) {
          c = c.positional(p.name, { type: 'string', demandOption: p.required, ...(p.variadic ? { array: true, default: [] } : {}), ...(p.default !== undefined ? { default: p.default } : {}) });
        }
        for (const [name, f] of Object.entries(def.flags)) c = c.option(name, yargsOption(f, false));
        return def.unknownOptionsAsArgs === true ? c.parserConfiguration({ 'unknown-options-as-args': true }) : c;
      },
      (a) => onCommand(verb, a),
    );
  }
  return parser.fail((msg, err) => {
    throw err ?? new TsrunError('InvalidArgument', msg);
  });
}

function versionText(): string {
  const commit = typeof TSRUN_COMMIT === 'string' ? TSRUN_COMMIT : 'unknown';
  return `tsrun version ${VERSION}\ncommit: ${commit}\nspec: ${SPEC_VERSION}\nnode: ${process.version}\n`;
}

/** Parse argv and run the command; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const stdout = (s: string): void => void process.stdout.write(s);
  const stderr = (s: string): void => void process.stderr.write(s);
  let log: Logger = createLogger({ format: 'text', debug: false }, stderr);
  let status = 0;
  let pending: Promise<number> | undefined;
  // A verb's own failure status (verbs.ts: runc exits 255 when exec fails).
  let failureStatus = 1;

  const context = (a: GlobalArgs): CommandContext => {
    const ctx = commandContext(a, { stdout, stderr });
    log = ctx.log;
    return ctx;
  };
  const act = (fn: () => number | Promise<number>): void => {
    pending = Promise.resolve().then(fn);
  };

  const args = normalizeArgv(argv);
  const fast = parseFast(args);
  const command = fast === undefined ? undefined : COMMANDS[fast.verb];
  if (fast !== undefined && command !== undefined) return runFast(fast, command, { stdout, stderr });
  const { default: yargs } = await import('yargs');
  const parser = buildParser(yargs, args, (verb, a) => {
    failureStatus = VERBS[verb]?.failureStatus ?? 1;
    act(() => COMMANDS[verb]!(context(globalArgsOf(a)), a));
  });

  try {
    const parsed = await parser.parseAsync();
    if (parsed['version'] === true) {
      stdout(versionText());
      return 0;
    }
    if (pending === undefined) {
      if (parsed['help'] === true) return 0;
      throw new TsrunError('InvalidArgument', 'no command given (see tsrun --help)');
    }
    status = await pending;
  } catch (err) {
    return reportError(log, err, failureStatus);
  }
  return status;
}

