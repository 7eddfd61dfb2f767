/*
 * The command line before any parser sees it (runc's quirks that yargs and the fast path would
 * read differently), and the option values every parser shares. No yargs here: the lifecycle
 * bundle (startup/entry-lifecycle.ts) uses this file without carrying yargs.
 */
import { TsrunError } from '../../spec/errors';
import { checkCallerFds } from './caller-fds';
import { callerFdsFromLauncher } from './startup/env';
import { globalValueFlags, valueFlagsOf } from './verbs';

export { defaultRoot } from './verbs';

/** The global flags, with the names and defaults verbs.ts declares. */
export interface GlobalArgs {
  root: string;
  log?: string;
  'log-format': string;
  debug: boolean;
  'systemd-cgroup': boolean;
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

/** exec flags that take a separate value (verbs.ts). */
const EXEC_VALUE_FLAGS = new Set(valueFlagsOf('exec'));
/** Global flags that take a separate value, runc's dropped --rootless included. */
const GLOBAL_VALUE_FLAGS = new Set(globalValueFlags());

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
    if (GLOBAL_VALUE_FLAGS.has(a) && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return [...out, ...argv.slice(i)];
}

/** create's and run's options from parsed flags (yargs's or the fast path's, same names). */
export function createArgs(a: Record<string, unknown>) {
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

/** --preserve-fds as a count; InvalidArgument for anything else. */
export function preserveFds(v: unknown): number {
  const n = Number(v ?? 0);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new TsrunError('InvalidArgument', `invalid --preserve-fds ${String(v)}: want a count >= 0`);
  if (n > 0) checkCallerFds(n, callerFdsFromLauncher());
  return n;
}
