/*
 * argv → command. With entry.ts, the only code that prints, writes the --log file, or sets the
 * exit status. Errors become: the plain message on stderr, one line in the --log file, exit
 * status 1. The verbs engines call per container take the fast path (fast-args.ts) when their
 * command line is plain; everything else, and every usage error, goes through yargs, which is
 * loaded only then.
 */
import type { Argv } from 'yargs';
import { TsrunError } from '../../spec/errors';
import { parseFast, type FastInvocation } from './fast-args';
import { createLogger, type Logger } from './log';
import type { CommandContext } from '../commands/context';

declare const TSRUN_COMMIT: string;

/** tsrun's version, printed by --version. */
export const VERSION = '0.1.0';
/** The runtime-spec version tsrun implements. */
export const SPEC_VERSION = '1.2.0';

interface GlobalArgs {
  root: string;
  log?: string;
  'log-format': string;
  debug: boolean;
  'systemd-cgroup': boolean;
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
  // runc exits 255 when exec fails (engines tell that from the process's own status).
  let execFailureStatus = 1;

  const context = (a: GlobalArgs): CommandContext => {
    const format = a['log-format'];
    if (format !== 'text' && format !== 'json') throw new TsrunError('InvalidArgument', `invalid --log-format ${JSON.stringify(format)}: use text or json`);
    log = createLogger({ file: a.log, format, debug: a.debug }, stderr);
    return { root: a.root, log, systemdCgroup: a['systemd-cgroup'], out: stdout };
  };
  const act = (fn: () => number | Promise<number>): void => {
    pending = Promise.resolve().then(fn);
  };

  const createFlags = <T>(y: Argv<T>) =>
    y
      .positional('container-id', { type: 'string', demandOption: true, describe: 'the container id' })
      .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'path to the bundle directory' })
      .option('pid-file', { type: 'string', describe: "file to write the init process's pid to" })
      .option('no-pivot', { type: 'boolean', default: false, describe: 'use MS_MOVE and chroot instead of pivot_root' })
      .option('no-new-keyring', { type: 'boolean', default: false, describe: 'do not create a new session keyring' })
      .option('preserve-fds', { type: 'number', default: 0, describe: 'pass N extra fds (3..3+N-1) to the container' })
      .option('console-socket', { type: 'string', describe: 'unix socket that receives the pty master of process.terminal' });

  const args = normalizeArgv(argv);
  const fast = parseFast(args);
  if (fast !== undefined) {
    try {
      return await runFast(fast, context);
    } catch (err) {
      return reportError(log, err, execFailureStatus);
    }
  }
  const { default: yargs } = await import('yargs');
  const parser = yargs(args)
    .scriptName('tsrun')
    .usage('tsrun [global options] <command> [command options] <container-id>')
    .strict()
    .exitProcess(false)
    // runc's flags start with "no-" (--no-pivot, --no-new-keyring): they are names, not negations.
    .parserConfiguration({ 'boolean-negation': false })
    .version(false)
    .help('help')
    .alias('help', 'h')
    .option('root', { type: 'string', default: defaultRoot(), describe: 'root directory for container state', global: true })
    .option('log', { type: 'string', describe: 'append errors (and --debug output) to this file', global: true })
    .option('log-format', { type: 'string', default: 'text', describe: 'log file format: text or json', global: true })
    .option('debug', { type: 'boolean', default: false, describe: 'log debug output', global: true })
    .option('systemd-cgroup', { type: 'boolean', default: false, describe: 'use the systemd cgroup driver (needs systemd)', global: true })
    .option('criu', { type: 'string', describe: 'accepted for runc compatibility; checkpointing is not supported', global: true, hidden: true })
    .option('version', { alias: 'v', type: 'boolean', describe: 'print the version' })
    .command('create <container-id>', 'create a container from a bundle', (y) => createFlags(y), (a) => {
      act(async () => (await import('../commands/create')).create(context(a as unknown as GlobalArgs), createArgs(a)));
    })
    .command('run <container-id>', 'create and start a container', (y) =>
      createFlags(y)
        .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'do not wait for the container to exit' })
        .option('keep', { type: 'boolean', default: false, describe: 'do not delete the container after it exits' }),
      (a) => {
        act(async () => (await import('../commands/run')).run(context(a as unknown as GlobalArgs), { ...createArgs(a), detach: a.detach, keep: a.keep }));
      })
    .command('start <container-id>', 'start a created container', (y) => y.positional('container-id', { type: 'string', demandOption: true }), (a) => {
      act(async () => (await import('../commands/start')).start(context(a as unknown as GlobalArgs), a['container-id']));
    })
    .command('state <container-id>', 'print the state of a container', (y) => y.positional('container-id', { type: 'string', demandOption: true }), (a) => {
      act(async () => (await import('../commands/state')).state(context(a as unknown as GlobalArgs), a['container-id']));
    })
    .command('kill <container-id> [signal]', 'send a signal to the container init (default SIGTERM)', (y) =>
      y.positional('container-id', { type: 'string', demandOption: true })
        .positional('signal', { type: 'string', default: 'SIGTERM' })
        .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'signal every process of the container' }),
      (a) => {
        act(async () => (await import('../commands/kill')).kill(context(a as unknown as GlobalArgs), a['container-id'], String(a.signal), a.all));
      })
    .command('delete <container-id>', 'delete a stopped container', (y) =>
      y.positional('container-id', { type: 'string', demandOption: true })
        .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'kill the container first if it still runs' }),
      (a) => {
        act(async () => (await import('../commands/delete')).del(context(a as unknown as GlobalArgs), a['container-id'], a.force));
      })
    .command(['list', 'ls'], 'list containers', (y) =>
      y.option('format', { alias: 'f', choices: ['table', 'json'] as const, default: 'table' as const })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print only ids' }),
      (a) => {
        act(async () => (await import('../commands/list')).list(context(a as unknown as GlobalArgs), a.format, a.quiet));
      })
    .command('exec <container-id> [command..]', 'run a process in a running container', (y) =>
      y.positional('container-id', { type: 'string', demandOption: true })
        .positional('command', { type: 'string', array: true, default: [] as string[] })
        .option('process', { alias: 'p', type: 'string', describe: 'process.json to run' })
        .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'do not wait for the process' })
        .option('pid-file', { type: 'string', describe: "file to write the process's pid to" })
        .option('preserve-fds', { type: 'number', default: 0 })
        .option('cwd', { type: 'string' })
        .option('env', { alias: 'e', type: 'string', array: true, default: [] as string[] })
        .option('user', { alias: 'u', type: 'string', describe: 'UID[:GID]' })
        .option('additional-gids', { alias: 'g', type: 'string', array: true, default: [] as string[] })
        .option('cap', { alias: 'c', type: 'string', array: true, default: [] as string[] })
        .option('no-new-privs', { type: 'boolean', default: false })
        .option('tty', { alias: 't', type: 'boolean', default: false })
        .option('console-socket', { type: 'string' })
        // normalizeArgv puts "--" after the container id: the command's own flags are its own.
        ,
      (a) => {
        execFailureStatus = 255;
        act(async () =>
          (await import('../commands/exec')).exec(context(a as unknown as GlobalArgs), {
            id: a['container-id'],
            command: [...(a.command ?? []).map(String), ...((a as unknown as { _: unknown[] })._.slice(1).map(String)), ...((a as unknown as { '--'?: unknown[] })['--'] ?? []).map(String)],
            processFile: a.process,
            detach: a.detach,
            pidFile: a['pid-file'],
            preserveFds: preserveFds(a['preserve-fds']),
            cwd: a.cwd,
            env: a.env.map(String),
            user: a.user,
            additionalGids: a['additional-gids'].map(String),
            caps: a.cap.map(String),
            noNewPrivs: a['no-new-privs'],
            tty: a.tty,
            consoleSocket: a['console-socket'],
          }));
      })
    .command('pause <container-id>', 'freeze every process of a running container', (y) => y.positional('container-id', { type: 'string', demandOption: true }), (a) => {
      act(async () => (await import('../commands/pause')).pause(context(a as unknown as GlobalArgs), a['container-id']));
    })
    .command('resume <container-id>', 'thaw a paused container', (y) => y.positional('container-id', { type: 'string', demandOption: true }), (a) => {
      act(async () => (await import('../commands/pause')).resume(context(a as unknown as GlobalArgs), a['container-id']));
    })
    .command('ps <container-id> [ps-args..]', "list the container's processes (host ps, or --format json for pids)", (y) =>
      y.positional('container-id', { type: 'string', demandOption: true })
        .positional('ps-args', { type: 'string', array: true, default: [] as string[] })
        .option('format', { alias: 'f', choices: ['table', 'json'] as const, default: 'table' as const })
        .parserConfiguration({ 'unknown-options-as-args': true }),
      (a) => {
        act(async () => (await import('../commands/ps')).ps(context(a as unknown as GlobalArgs), a['container-id'], a.format, (a['ps-args'] ?? []).map(String)));
      })
    .command('events <container-id>', 'print resource usage (and OOM kills) of a container', (y) =>
      y.positional('container-id', { type: 'string', demandOption: true })
        .option('stats', { type: 'boolean', default: false, describe: 'print the stats once and exit' })
        .option('interval', { type: 'string', default: '5s', describe: 'how often to print stats' }),
      (a) => {
        act(async () => (await import('../commands/events')).events(context(a as unknown as GlobalArgs), a['container-id'], a.stats, a.interval));
      })
    .command('update <container-id>', "change a container's resource limits", (y) =>
      y.positional('container-id', { type: 'string', demandOption: true })
        .option('resources', { alias: 'r', type: 'string', describe: 'LinuxResources JSON file, or - for stdin' })
        .option('blkio-weight', { type: 'string' })
        .option('cpu-period', { type: 'string' })
        .option('cpu-quota', { type: 'string' })
        .option('cpu-share', { type: 'string' })
        .option('cpu-rt-period', { type: 'string' })
        .option('cpu-rt-runtime', { type: 'string' })
        .option('cpuset-cpus', { type: 'string' })
        .option('cpuset-mems', { type: 'string' })
        .option('memory', { type: 'string' })
        .option('memory-reservation', { type: 'string' })
        .option('memory-swap', { type: 'string' })
        .option('kernel-memory', { type: 'string' })
        .option('kernel-memory-tcp', { type: 'string' })
        .option('pids-limit', { type: 'string' }),
      (a) => {
        act(async () =>
          (await import('../commands/update')).update(context(a as unknown as GlobalArgs), a['container-id'], a.resources, {
            blkioWeight: a['blkio-weight'], cpuPeriod: a['cpu-period'], cpuQuota: a['cpu-quota'], cpuShare: a['cpu-share'],
            cpuRtPeriod: a['cpu-rt-period'], cpuRtRuntime: a['cpu-rt-runtime'], cpusetCpus: a['cpuset-cpus'], cpusetMems: a['cpuset-mems'],
            memory: a.memory, memoryReservation: a['memory-reservation'], memorySwap: a['memory-swap'],
            kernelMemory: a['kernel-memory'], kernelMemoryTcp: a['kernel-memory-tcp'], pidsLimit: a['pids-limit'],
          }, () => require('node:fs').readFileSync(0, 'utf8') as string));
      })
    .command('features', 'print what this runtime supports on this host (JSON)', (y) => y, (a) => {
      act(async () => (await import('../commands/features')).features(context(a as unknown as GlobalArgs), VERSION));
    })
    .command('spec', 'write a default config.json', (y) =>
      y.option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'where to write config.json' })
        .option('rootless', { type: 'boolean', default: false, describe: 'a config for running as a non-root user' }),
      (a) => {
        act(async () => (await import('../commands/spec')).spec(context(a as unknown as GlobalArgs), a.bundle, a.rootless));
      })
    .fail((msg, err) => {
      throw err ?? new TsrunError('InvalidArgument', msg);
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
    return reportError(log, err, execFailureStatus);
  }
  return status;
}

/** Print and log a failure the way every verb does; returns the exit status. */
function reportError(log: Logger, err: unknown, failureStatus: number): number {
  const e = err instanceof TsrunError ? err : new TsrunError('Internal', err instanceof Error ? err.message : String(err), { cause: err });
  log.error(e.fullMessage());
  if (e.code === 'InvalidArgument' && /Unknown argument|Not enough non-option|Missing required/.test(e.message)) log.error('see tsrun --help');
  return failureStatus;
}

/**
 * Run a fast-path command with the same arguments the yargs handlers pass (defaults included),
 * building the context first as they do, so a bad --log-format is reported before anything else.
 */
async function runFast(f: FastInvocation, context: (a: GlobalArgs) => CommandContext): Promise<number> {
  const g: GlobalArgs = {
    root: f.strings['root'] ?? defaultRoot(),
    'log-format': f.strings['log-format'] ?? 'text',
    debug: f.flags.has('debug'),
    'systemd-cgroup': f.flags.has('systemd-cgroup'),
    ...(f.strings['log'] === undefined ? {} : { log: f.strings['log'] }),
  };
  const id = f.positionals[0]!;
  const creating = (): Record<string, unknown> => ({
    'container-id': id,
    bundle: f.strings['bundle'] ?? '.',
    'pid-file': f.strings['pid-file'],
    'no-pivot': f.flags.has('no-pivot'),
    'no-new-keyring': f.flags.has('no-new-keyring'),
    'preserve-fds': Number(f.strings['preserve-fds'] ?? 0),
    'console-socket': f.strings['console-socket'],
  });
  switch (f.verb) {
    case 'create': {
      const ctx = context(g);
      return (await import('../commands/create')).create(ctx, createArgs(creating()));
    }
    case 'run': {
      const ctx = context(g);
      return (await import('../commands/run')).run(ctx, { ...createArgs(creating()), detach: f.flags.has('detach'), keep: f.flags.has('keep') });
    }
    case 'start': {
      const ctx = context(g);
      return (await import('../commands/start')).start(ctx, id);
    }
    case 'state': {
      const ctx = context(g);
      return (await import('../commands/state')).state(ctx, id);
    }
    case 'kill': {
      const ctx = context(g);
      return (await import('../commands/kill')).kill(ctx, id, f.positionals[1] ?? 'SIGTERM', f.flags.has('all'));
    }
    case 'delete': {
      const ctx = context(g);
      return (await import('../commands/delete')).del(ctx, id, f.flags.has('force'));
    }
    default: {
      const never: never = f.verb;
      throw new TsrunError('Internal', `fast path: unhandled verb ${String(never)}`);
    }
  }
}

/**
 * argv as yargs should see it: runc's global --rootless dropped, and `--resources -` (docker's
 * `update --resources - ID`, stdin) joined into `--resources=-`, since yargs takes a lone "-"
 * for a positional.
 */
export function normalizeArgv(argv: readonly string[]): string[] {
  const args: string[] = [];
  for (const a of stripGlobalRootless(argv)) {
    const prev = args[args.length - 1];
    if (a === '-' && (prev === '--resources' || prev === '-r')) args[args.length - 1] = '--resources=-';
    else args.push(a);
  }
  return separateExecCommand(args);
}

/** exec flags that take a separate value (runc's). */
const EXEC_VALUE_FLAGS = new Set(['--process', '-p', '--pid-file', '--preserve-fds', '--cwd', '--env', '-e', '--user', '-u', '--additional-gids', '-g', '--cap', '-c', '--console-socket', '--process-label', '--apparmor', '--cgroup']);
const GLOBAL_VALUE_FLAGS = new Set(['--root', '--log', '--log-format', '--criu']);

/** In `exec [flags] ID COMMAND...`, put "--" after ID so COMMAND's own flags (sh -c) stay its own. */
function separateExecCommand(args: string[]): string[] {
  let i = 0;
  while (i < args.length && args[i]!.startsWith('-')) i += GLOBAL_VALUE_FLAGS.has(args[i]!) ? 2 : 1;
  if (args[i] !== 'exec') return args;
  for (i++; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args;
    if (a.startsWith('-')) {
      if (EXEC_VALUE_FLAGS.has(a)) i++;
      continue;
    }
    // a is the container id.
    return args[i + 1] === '--' || i + 1 >= args.length ? args : [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
  }
  return args;
}

/**
 * runc's global `--rootless true|false|auto` (containerd may pass it before the subcommand) is
 * accepted and dropped: tsrun decides from its effective uid. `spec --rootless` is unaffected.
 */
export function stripGlobalRootless(argv: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) break;
    if (a.startsWith('--rootless=')) continue;
    if (a === '--rootless' && ['true', 'false', 'auto'].includes(argv[i + 1] ?? '')) {
      i++;
      continue;
    }
    out.push(a);
    // Global flags that take a separate value: keep the value with them.
    if (['--root', '--log', '--log-format', '--criu'].includes(a) && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return [...out, ...argv.slice(i)];
}

/**
 * /run/tsrun for root; a non-root user's own $XDG_RUNTIME_DIR/tsrun (as runc does), or
 * /tmp/tsrun-<uid> when it is unset or empty (podman sets it to "").
 */
export function defaultRoot(uid = process.geteuid?.() ?? 0, xdg = process.env['XDG_RUNTIME_DIR']): string {
  if (uid === 0) return '/run/tsrun';
  return xdg ? `${xdg}/tsrun` : `/tmp/tsrun-${uid}`;
}

/** create's and run's options from parsed flags (yargs's or the fast path's, same names). */
function createArgs(a: Record<string, unknown>) {
  return {
    id: String(a['container-id']),
    bundle: String(a['bundle']),
    pidFile: a['pid-file'] === undefined ? undefined : String(a['pid-file']),
    noPivot: Boolean(a['no-pivot']),
    noNewKeyring: Boolean(a['no-new-keyring']),
    preserveFds: preserveFds(a['preserve-fds']),
    consoleSocket: a['console-socket'] === undefined ? undefined : String(a['console-socket']),
  };
}

function preserveFds(v: unknown): number {
  const n = Number(v ?? 0);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new TsrunError('InvalidArgument', `invalid --preserve-fds ${String(v)}: want a count >= 0`);
  return n;
}
