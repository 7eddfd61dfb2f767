/*
 * argv → command. With the other files of runtime/cli, the only code that prints, writes the
 * --log file, or sets the exit status. Errors become: the plain message on stderr, one line in
 * the --log file, exit status 1. The verbs engines call per container take the fast path
 * (fast-args.ts, fast-run.ts) when their command line is plain; everything else, and every usage
 * error, goes through yargs, which is loaded only then. start, state, kill and delete usually
 * arrive through the lifecycle bundle instead (entry-lifecycle.ts), which runs the same fast path.
 */
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { TsrunError } from '../../spec/errors';
import { createArgs, defaultRoot, normalizeArgv, preserveFds, type GlobalArgs } from './argv';
import { parseFast, type FastInvocation } from './fast-args';
import { LIFECYCLE_COMMANDS, commandContext, reportError, runFast, type FastCommands } from './fast-run';
import { createLogger, type Logger } from './log';
import type { CommandContext } from '../commands/context';

export { defaultRoot, normalizeArgv, stripGlobalRootless } from './argv';

declare const TSRUN_COMMIT: string;

/** tsrun's version, printed by --version. */
export const VERSION = '0.1.0';
/** The runtime-spec version tsrun implements. */
export const SPEC_VERSION = '1.2.0';

/** create's and run's options from a fast-path command line (the same names as the yargs flags). */
function creating(f: FastInvocation): Record<string, unknown> {
  return {
    'container-id': f.positionals[0]!,
    bundle: f.strings['bundle'] ?? '.',
    'pid-file': f.strings['pid-file'],
    'no-pivot': f.flags.has('no-pivot'),
    'no-new-keyring': f.flags.has('no-new-keyring'),
    'preserve-fds': Number(f.strings['preserve-fds'] ?? 0),
    'console-socket': f.strings['console-socket'],
  };
}

/** Every fast-path verb; the lifecycle bundle carries only LIFECYCLE_COMMANDS. */
const FAST_COMMANDS: FastCommands = {
  ...LIFECYCLE_COMMANDS,
  create: async (ctx, f) => (await import('../commands/create')).create(ctx, createArgs(creating(f))),
  run: async (ctx, f) => (await import('../commands/run')).run(ctx, { ...createArgs(creating(f)), detach: f.flags.has('detach'), keep: f.flags.has('keep') }),
};

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
    const ctx = commandContext(a, { stdout, stderr });
    log = ctx.log;
    return ctx;
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
  const command = fast === undefined ? undefined : FAST_COMMANDS[fast.verb];
  if (fast !== undefined && command !== undefined) return runFast(fast, command, { stdout, stderr });
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
        // One value per flag, as runc's repeatable flags take: a greedy array would swallow the
        // container id that follows (`exec -g 5 ID cmd`).
        .option('env', { alias: 'e', type: 'string', array: true, nargs: 1, default: [] as string[] })
        .option('user', { alias: 'u', type: 'string', describe: 'UID[:GID]' })
        .option('additional-gids', { alias: 'g', type: 'string', array: true, nargs: 1, default: [] as string[] })
        .option('cap', { alias: 'c', type: 'string', array: true, nargs: 1, default: [] as string[] })
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
          }, () => readFileSync(0, 'utf8')));
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

