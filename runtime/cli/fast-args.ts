/*
 * The fast path for the verbs engines call on every container (create, run, start, state,
 * kill, delete): a plain argv parser for the command lines yargs would accept without comment,
 * so the common case never builds the yargs parser (about 40 ms of tsrun's start-up, most of
 * it yargs laying out help text it does not print). It understands only exact flag names and
 * their runc short aliases; anything else — --help, an unknown or repeated flag, `--`, a
 * boolean with a value, a value that looks like a flag, a wrong number of positionals —
 * returns undefined, and the full yargs parser in main.ts takes the line and its messages.
 */

/** Verbs with a fast path. */
export type FastVerb = 'create' | 'run' | 'start' | 'state' | 'kill' | 'delete';

/** A command line the fast path understood. */
export interface FastInvocation {
  readonly verb: FastVerb;
  /** Positionals after the verb: the container id, then kill's signal. */
  readonly positionals: readonly string[];
  /** String options by long name (global ones included), without the leading dashes. */
  readonly strings: Readonly<Record<string, string>>;
  /** Boolean flags that were given, by long name. */
  readonly flags: ReadonlySet<string>;
}

interface VerbShape {
  readonly positionals: readonly [min: number, max: number];
  /** Long name → short alias ('' for none). */
  readonly strings: Readonly<Record<string, string>>;
  readonly booleans: Readonly<Record<string, string>>;
}

const GLOBAL_STRINGS: Readonly<Record<string, string>> = { root: '', log: '', 'log-format': '', criu: '' };
const GLOBAL_BOOLEANS: Readonly<Record<string, string>> = { debug: '', 'systemd-cgroup': '' };

const CREATE_STRINGS = { bundle: 'b', 'pid-file': '', 'preserve-fds': '', 'console-socket': '' };
const CREATE_BOOLEANS = { 'no-pivot': '', 'no-new-keyring': '' };

/** The flags main.ts declares for these verbs, and nothing more. */
const SHAPES: Readonly<Record<FastVerb, VerbShape>> = {
  create: { positionals: [1, 1], strings: CREATE_STRINGS, booleans: CREATE_BOOLEANS },
  run: { positionals: [1, 1], strings: CREATE_STRINGS, booleans: { ...CREATE_BOOLEANS, detach: 'd', keep: '' } },
  start: { positionals: [1, 1], strings: {}, booleans: {} },
  state: { positionals: [1, 1], strings: {}, booleans: {} },
  kill: { positionals: [1, 2], strings: {}, booleans: { all: 'a' } },
  delete: { positionals: [1, 1], strings: {}, booleans: { force: 'f' } },
};

function isFastVerb(v: string): v is FastVerb {
  return Object.prototype.hasOwnProperty.call(SHAPES, v);
}

/** Long name of `token` ("--name" or "-x") among `names`, or undefined. */
function nameOf(token: string, names: Readonly<Record<string, string>>): string | undefined {
  for (const [long, short] of Object.entries(names)) {
    if (token === `--${long}` || (short !== '' && token === `-${short}`)) return long;
  }
  return undefined;
}

/** Parse normalized argv (normalizeArgv) for the fast path; undefined hands it to yargs. */
export function parseFast(args: readonly string[]): FastInvocation | undefined {
  let verb: FastVerb | undefined;
  const positionals: string[] = [];
  const strings: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    if (!token.startsWith('-')) {
      if (verb !== undefined) positionals.push(token);
      else if (isFastVerb(token)) verb = token;
      else return undefined;
      continue;
    }
    const shape = verb === undefined ? undefined : SHAPES[verb];
    const eq = token.indexOf('=');
    const flag = eq > 0 && token.startsWith('--') ? token.slice(0, eq) : token;
    const stringName = nameOf(flag, GLOBAL_STRINGS) ?? (shape ? nameOf(flag, shape.strings) : undefined);
    if (stringName !== undefined) {
      if (Object.prototype.hasOwnProperty.call(strings, stringName)) return undefined;
      const value = flag === token ? args[++i] : token.slice(eq + 1);
      if (value === undefined || (flag === token && value.startsWith('-'))) return undefined;
      if (stringName === 'preserve-fds' && !/^\d+$/.test(value)) return undefined;
      strings[stringName] = value;
      continue;
    }
    const booleanName = flag === token ? (nameOf(token, GLOBAL_BOOLEANS) ?? (shape ? nameOf(token, shape.booleans) : undefined)) : undefined;
    if (booleanName === undefined || flags.has(booleanName)) return undefined;
    flags.add(booleanName);
  }
  if (verb === undefined) return undefined;
  const [min, max] = SHAPES[verb].positionals;
  if (positionals.length < min || positionals.length > max) return undefined;
  return { verb, positionals, strings, flags };
}
