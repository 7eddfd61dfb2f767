/*
 * tsctl: a docker-like command line over tsrund's gRPC API (docs/tsctl.md).
 *
 *   tsctl [--host unix://PATH] [--namespace NS] COMMAND [OPTIONS] [ARGS…]
 *
 * Socket: --host, else $TSCTL_HOST, else /run/tsrund/tsrund.sock. Namespace: --namespace, else
 * $TSCTL_NAMESPACE, else "tsctl". Errors are one line `tsctl: …` on stderr; exit codes in
 * context.ts. This is the only tsctl file that exits; startup/entry.ts calls runCli.
 */
import { TsrunError } from '../../spec/errors';
import { RpcError } from '../client';
import { connectTsrundH2 } from './h2-client';
import { parseArgs, type OptionDef } from './args';
import { exitCodeOf, usage, type Ctx } from './context';
import { exec } from './commands/exec';
import { images, rmi, tag } from './commands/images';
import { kill, pause, restart, rm, start, stop, unpause, wait } from './commands/lifecycle';
import { logs } from './commands/logs';
import { network, port } from './commands/network';
import { events, stats, top, update } from './commands/observe';
import { inspect, ps } from './commands/ps';
import { pull, push } from './commands/pull';
import { load, save } from './commands/save';
import { history, image } from './commands/image';
import { create, run } from './commands/run';
import { volume } from './commands/volume';
import { cp } from './commands/cp';
import { diff } from './commands/diff';
import { exportContainer } from './commands/export';
import { commit } from './commands/commit';
import { build } from './commands/build';

type Command = (ctx: Ctx, argv: readonly string[]) => Promise<number>;

const COMMANDS: Record<string, { fn: Command; help: string }> = {
  run: { fn: run, help: 'create and start a container from a rootfs or bundle directory' },
  create: { fn: create, help: 'create a container without starting it' },
  start: { fn: start, help: 'start stopped containers' },
  stop: { fn: stop, help: 'stop containers (SIGTERM, then SIGKILL after -t seconds)' },
  restart: { fn: restart, help: 'stop and start containers' },
  kill: { fn: kill, help: 'signal containers (default SIGKILL)' },
  rm: { fn: rm, help: 'remove containers' },
  pause: { fn: pause, help: 'freeze every process of containers' },
  unpause: { fn: unpause, help: 'thaw containers' },
  wait: { fn: wait, help: 'wait for containers to stop, print their exit codes' },
  ps: { fn: ps, help: 'list containers' },
  logs: { fn: logs, help: 'print a container\'s output (json-file log)' },
  exec: { fn: exec, help: 'run a command in a running container' },
  top: { fn: top, help: 'list a container\'s processes' },
  stats: { fn: stats, help: 'CPU, memory and process counts' },
  inspect: { fn: inspect, help: 'low-level information as JSON' },
  events: { fn: events, help: 'stream events' },
  update: { fn: update, help: 'change resource limits and the restart policy' },
  images: { fn: images, help: 'list images' },
  rmi: { fn: rmi, help: 'remove images' },
  tag: { fn: tag, help: 'give an image another name' },
  pull: { fn: pull, help: 'download an image from a registry (and unpack it)' },
  push: { fn: push, help: 'upload an image to a registry' },
  save: { fn: save, help: 'write images to a docker-archive (tar)' },
  load: { fn: load, help: 'load images from a docker-archive or OCI archive' },
  history: { fn: history, help: 'show the history of an image' },
  image: { fn: image, help: 'manage images (inspect, history, prune, ls, rm, tag, pull, push, save, load)' },
  volume: { fn: volume, help: 'manage volumes (create, ls, inspect, rm, prune)' },
  network: { fn: network, help: 'manage networks (create, ls, inspect, rm, prune, connect, disconnect)' },
  port: { fn: port, help: 'list a container\'s published ports' },
  diff: { fn: diff, help: 'list the files a container added (A), changed (C) and deleted (D)' },
  cp: { fn: cp, help: 'copy files between a container and the host (or a tar on stdin/stdout)' },
  export: { fn: exportContainer, help: 'write a container\'s file system as a tar archive' },
  commit: { fn: commit, help: 'create a new image from a container\'s changes' },
  build: { fn: build, help: 'build an image from a Dockerfile' },
  version: { fn: version, help: 'print the versions of tsctl and tsrund' },
};

const GLOBAL: readonly OptionDef[] = [
  { name: 'host', short: 'H', kind: 'string', help: 'tsrund socket (unix://PATH)' },
  { name: 'namespace', short: 'n', kind: 'string', help: 'namespace (default tsctl)' },
  { name: 'help', kind: 'bool', help: 'show this help' },
  { name: 'version', short: 'v', kind: 'bool', help: 'print the version' },
];

function help(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length)) + 3;
  return [
    'Usage: tsctl [--host unix://PATH] [--namespace NS] COMMAND [OPTIONS] [ARGS...]',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(w)}${COMMANDS[n]!.help}`),
  ].join('\n');
}

declare const TSRUN_COMMIT: string | undefined;

const CLIENT_VERSION = `tsctl version 0.1.0 (${typeof TSRUN_COMMIT === 'string' ? TSRUN_COMMIT : 'dev'})`;

/** `tsctl version`: tsctl's version, then tsrund's (Version.Version), as `docker version` prints both. */
async function version(ctx: Ctx, argv: readonly string[]): Promise<number> {
  if (argv.length > 0) throw usage(`"tsctl version" accepts no arguments, got ${JSON.stringify(argv[0])}`);
  ctx.out(`Client: ${CLIENT_VERSION}`);
  const v = await ctx.client.call<{ version: string; revision: string }>('Version', 'Version', {}, { namespace: '' });
  ctx.out(`Server: tsrund version ${v.version}${v.revision !== '' ? ` (${v.revision})` : ''}`);
  return 0;
}

/** Run tsctl with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const cmdAt = argv.findIndex((a, i) => !a.startsWith('-') && !['--host', '-H', '--namespace', '-n'].includes(argv[i - 1] ?? ''));
  const globals = parseArgs(cmdAt < 0 ? argv : argv.slice(0, cmdAt), GLOBAL, false);
  if (globals.bools.has('version')) {
    process.stdout.write(`${CLIENT_VERSION}\n`);
    return 0;
  }
  const name = cmdAt < 0 ? undefined : argv[cmdAt];
  if (name === undefined || globals.bools.has('help') || name === 'help') {
    process.stdout.write(`${help()}\n`);
    return name === undefined && !globals.bools.has('help') ? 125 : 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) throw usage(`'${name}' is not a tsctl command. See 'tsctl --help'`);
  const host = globals.strings.get('host') ?? process.env['TSCTL_HOST'] ?? 'unix:///run/tsrund/tsrund.sock';
  if (!host.startsWith('unix://') && !host.startsWith('/')) throw usage(`--host ${JSON.stringify(host)}: want unix://PATH`);
  const socket = host.replace(/^unix:\/\//, '');
  const namespace = globals.strings.get('namespace') ?? process.env['TSCTL_NAMESPACE'] ?? 'tsctl';
  const client = connectTsrundH2(socket, { namespace });
  const ctx: Ctx = {
    client,
    namespace,
    // a getter: node opens its stdin stream on first access, which most commands never make
    get stdin() {
      return process.stdin;
    },
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    warn: (line) => process.stderr.write(`${line}\n`),
  };
  try {
    return await cmd.fn(ctx, argv.slice(cmdAt + 1));
  } finally {
    client.close();
  }
}

function describe(e: unknown): string {
  if (e instanceof RpcError) {
    if (e.code === 14) return `cannot connect to tsrund: ${e.details}. Is tsrund running?`;
    return e.details;
  }
  if (e instanceof TsrunError) return e.fullMessage();
  return e instanceof Error ? e.message : String(e);
}

function exitFor(e: unknown, command: string | undefined): number {
  const marked = exitCodeOf(e);
  if (marked !== undefined) return marked;
  if (e instanceof TsrunError && e.code === 'InvalidArgument') return 125;
  if (e instanceof RpcError && e.code === 14) return 125;
  if (command === 'run' || command === 'create') return 125;
  if (e instanceof TsrunError && e.code === 'NotFound') return 1;
  return e instanceof RpcError ? 1 : 125;
}

function flushAndExit(code: number): void {
  // let stdout drain (a pipe may be slow) before exiting
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

/** Run the command line `argv`, print an error as `tsctl: …` and exit (the bin's entry, startup/entry.ts). */
export function runCli(argv: readonly string[]): void {
  main(argv).then(
    (code) => flushAndExit(code),
    (e: unknown) => {
      const command = argv.find((a) => Object.hasOwn(COMMANDS, a));
      process.stderr.write(`tsctl: ${describe(e)}\n`);
      flushAndExit(exitFor(e, command));
    },
  );
}
