/*
 * tsrun's command line, defined once: every verb with its positionals and flags, and the global
 * flags. Three parsers are derived from this table, so they cannot disagree:
 *
 *   main.ts                 the yargs parser (help, usage errors, every verb)
 *   startup/fast-args.ts    the fast parser for the verbs marked `fast`, which skips yargs
 *   startup/launcher.sh     the launcher's list of lifecycle verbs and of global flags that take
 *                           a value (filled in when bin/tsrun is written; startup/launcher.ts)
 *
 * test/unit/runtime/cli/verbs.test.ts checks that yargs and the fast parser read every fast
 * command line alike, and that the launcher picks the bundle the fast parser would.
 *
 * No code runs here at load beyond building the table: the snapshot holds it as data.
 */

/** One flag. `strings` is repeatable, one value per flag (runc's -e, -g, --cap). */
export interface FlagDef {
  readonly type: 'string' | 'boolean' | 'number' | 'strings';
  /** A one-letter short form. */
  readonly alias?: string;
  /** The value when the flag is absent (booleans: false, strings: []); a function is called per parse. */
  readonly default?: string | number | (() => string);
  readonly describe?: string;
  readonly choices?: readonly string[];
  /** Accepted but left out of --help. */
  readonly hidden?: boolean;
}

/** One positional. */
export interface PositionalDef {
  readonly name: string;
  readonly required: boolean;
  /** Takes the rest of the positionals (`[command..]`). */
  readonly variadic?: boolean;
  readonly default?: string;
}

/** One verb. */
export interface VerbDef {
  readonly describe: string;
  readonly aliases?: readonly string[];
  readonly positionals: readonly PositionalDef[];
  readonly flags: Readonly<Record<string, FlagDef>>;
  /**
   * The fast path takes plain command lines of this verb, without yargs: `lifecycle` verbs are
   * also in the lifecycle bundle (the launcher sends them there), `full` ones only in the full CLI.
   */
  readonly fast?: 'lifecycle' | 'full';
  /** Unknown flags are positionals (ps passes its own to ps(1)). */
  readonly unknownOptionsAsArgs?: boolean;
  /** The exit status of a failure (runc exits 255 when exec fails). */
  readonly failureStatus?: number;
}

/**
 * /run/tsrun for root; a non-root user's own $XDG_RUNTIME_DIR/tsrun (as runc does), or
 * /tmp/tsrun-<uid> when it is unset or empty (podman sets it to "").
 */
export function defaultRoot(uid = process.geteuid?.() ?? 0, xdg = process.env['XDG_RUNTIME_DIR']): string {
  if (uid === 0) return '/run/tsrun';
  return xdg ? `${xdg}/tsrun` : `/tmp/tsrun-${uid}`;
}

/** The flags every verb takes. */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagDef>> = {
  root: { type: 'string', default: () => defaultRoot(), describe: 'root directory for container state' },
  log: { type: 'string', describe: 'append errors (and --debug output) to this file' },
  'log-format': { type: 'string', default: 'text', describe: 'log file format: text or json' },
  debug: { type: 'boolean', describe: 'log debug output' },
  'systemd-cgroup': { type: 'boolean', describe: 'use the systemd cgroup driver (needs systemd)' },
  criu: { type: 'string', describe: 'accepted for runc compatibility; checkpointing is not supported', hidden: true },
};

/**
 * runc's global flags that tsrun accepts and drops before parsing (argv.ts): `--rootless
 * true|false|auto`, since tsrun decides from its effective uid.
 */
export const DROPPED_GLOBAL_VALUE_FLAGS: readonly string[] = ['rootless'];

const ID: PositionalDef = { name: 'container-id', required: true };

const CREATE_FLAGS: Readonly<Record<string, FlagDef>> = {
  bundle: { type: 'string', alias: 'b', default: '.', describe: 'path to the bundle directory' },
  'pid-file': { type: 'string', describe: "file to write the init process's pid to" },
  'no-pivot': { type: 'boolean', describe: 'use MS_MOVE and chroot instead of pivot_root' },
  'no-new-keyring': { type: 'boolean', describe: 'do not create a new session keyring' },
  'preserve-fds': { type: 'number', default: 0, describe: 'pass N extra fds (3..3+N-1) to the container' },
  'console-socket': { type: 'string', describe: 'unix socket that receives the pty master of process.terminal' },
};

const UPDATE_VALUES = ['blkio-weight', 'cpu-period', 'cpu-quota', 'cpu-share', 'cpu-rt-period', 'cpu-rt-runtime', 'cpuset-cpus', 'cpuset-mems', 'memory', 'memory-reservation', 'memory-swap', 'kernel-memory', 'kernel-memory-tcp', 'pids-limit'];

/** Every verb, in the order --help lists them. */
export const VERBS: Readonly<Record<string, VerbDef>> = {
  create: { describe: 'create a container from a bundle', positionals: [ID], flags: CREATE_FLAGS, fast: 'full' },
  run: {
    describe: 'create and start a container',
    positionals: [ID],
    flags: {
      ...CREATE_FLAGS,
      detach: { type: 'boolean', alias: 'd', describe: 'do not wait for the container to exit' },
      keep: { type: 'boolean', describe: 'do not delete the container after it exits' },
    },
    fast: 'full',
  },
  start: { describe: 'start a created container', positionals: [ID], flags: {}, fast: 'lifecycle' },
  state: { describe: 'print the state of a container', positionals: [ID], flags: {}, fast: 'lifecycle' },
  kill: {
    describe: 'send a signal to the container init (default SIGTERM)',
    positionals: [ID, { name: 'signal', required: false, default: 'SIGTERM' }],
    flags: { all: { type: 'boolean', alias: 'a', describe: 'signal every process of the container' } },
    fast: 'lifecycle',
  },
  delete: {
    describe: 'delete a stopped container',
    positionals: [ID],
    flags: { force: { type: 'boolean', alias: 'f', describe: 'kill the container first if it still runs' } },
    fast: 'lifecycle',
  },
  list: {
    describe: 'list containers',
    aliases: ['ls'],
    positionals: [],
    flags: {
      format: { type: 'string', alias: 'f', choices: ['table', 'json'], default: 'table' },
      quiet: { type: 'boolean', alias: 'q', describe: 'print only ids' },
    },
  },
  exec: {
    describe: 'run a process in a running container',
    positionals: [ID, { name: 'command', required: false, variadic: true }],
    flags: {
      process: { type: 'string', alias: 'p', describe: 'process.json to run' },
      detach: { type: 'boolean', alias: 'd', describe: 'do not wait for the process' },
      'pid-file': { type: 'string', describe: "file to write the process's pid to" },
      'preserve-fds': { type: 'number', default: 0 },
      cwd: { type: 'string' },
      env: { type: 'strings', alias: 'e' },
      user: { type: 'string', alias: 'u', describe: 'UID[:GID]' },
      'additional-gids': { type: 'strings', alias: 'g' },
      cap: { type: 'strings', alias: 'c' },
      'no-new-privs': { type: 'boolean' },
      tty: { type: 'boolean', alias: 't' },
      'console-socket': { type: 'string' },
    },
    failureStatus: 255,
  },
  pause: { describe: 'freeze every process of a running container', positionals: [ID], flags: {} },
  resume: { describe: 'thaw a paused container', positionals: [ID], flags: {} },
  ps: {
    describe: "list the container's processes (host ps, or --format json for pids)",
    positionals: [ID, { name: 'ps-args', required: false, variadic: true }],
    flags: { format: { type: 'string', alias: 'f', choices: ['table', 'json'], default: 'table' } },
    unknownOptionsAsArgs: true,
  },
  events: {
    describe: 'print resource usage (and OOM kills) of a container',
    positionals: [ID],
    flags: {
      stats: { type: 'boolean', describe: 'print the stats once and exit' },
      interval: { type: 'string', default: '5s', describe: 'how often to print stats' },
    },
  },
  update: {
    describe: "change a container's resource limits",
    positionals: [ID],
    flags: {
      resources: { type: 'string', alias: 'r', describe: 'LinuxResources JSON file, or - for stdin' },
      ...Object.fromEntries(UPDATE_VALUES.map((f) => [f, { type: 'string' } as const])),
    },
  },
  features: { describe: 'print what this runtime supports on this host (JSON)', positionals: [], flags: {} },
  spec: {
    describe: 'write a default config.json',
    positionals: [],
    flags: {
      bundle: { type: 'string', alias: 'b', default: '.', describe: 'where to write config.json' },
      rootless: { type: 'boolean', describe: 'a config for running as a non-root user' },
    },
  },
};

/** Verbs the fast path takes. */
export function fastVerbs(which?: 'lifecycle' | 'full'): string[] {
  return Object.keys(VERBS).filter((v) => (which === undefined ? VERBS[v]!.fast !== undefined : VERBS[v]!.fast === which));
}

/** Does the flag take a value (as opposed to a boolean)? */
export function takesValue(f: FlagDef): boolean {
  return f.type !== 'boolean';
}

/** The global flags that take a separate value, with their dashes: the launcher and argv.ts skip their values. */
export function globalValueFlags(): string[] {
  return [...Object.keys(GLOBAL_FLAGS).filter((n) => takesValue(GLOBAL_FLAGS[n]!)), ...DROPPED_GLOBAL_VALUE_FLAGS].map((n) => `--${n}`);
}

/** A verb's flags that take a separate value, long and short forms, with their dashes. */
export function valueFlagsOf(verb: string): string[] {
  const out: string[] = [];
  for (const [n, f] of Object.entries(VERBS[verb]?.flags ?? {})) {
    if (!takesValue(f)) continue;
    out.push(`--${n}`);
    if (f.alias !== undefined) out.push(`-${f.alias}`);
  }
  return out;
}

/** The yargs command string of a verb: `kill <container-id> [signal]`. */
export function commandString(verb: string): string {
  const v = VERBS[verb]!;
  const pos = v.positionals.map((p) => (p.required ? `<${p.name}>` : `[${p.name}${p.variadic ? '..' : ''}]`));
  return [verb, ...pos].join(' ');
}

/** The value a flag has when it is absent, as yargs and the fast parser both give it. */
export function defaultOf(f: FlagDef): unknown {
  if (typeof f.default === 'function') return f.default();
  if (f.default !== undefined) return f.default;
  if (f.type === 'boolean') return false;
  if (f.type === 'strings') return [];
  return undefined;
}
