/*
 * The fast path's parser, for the verbs engines call on every container (those marked `fast` in
 * verbs.ts): a plain argv parser for the command lines yargs would accept without comment, so
 * the common case never builds the yargs parser, most of whose start-up is laying out help text
 * it does not print. Its flags are the table's. It understands only exact flag names and their
 * short aliases; anything else — --help, an unknown or repeated flag, `--`, a boolean with a
 * value, a value that looks like a flag, a number that is not a count, a wrong number of
 * positionals — returns undefined, and the yargs parser in main.ts takes the line and its messages.
 */
import { GLOBAL_FLAGS, VERBS, defaultOf, type FlagDef, type VerbDef } from '../verbs';

/** A command line the fast path understood. */
export interface FastInvocation {
  readonly verb: string;
  /**
   * Every positional and flag by long name, absent ones with their defaults: the record yargs
   * hands a command's handler for the same command line.
   */
  readonly args: Readonly<Record<string, unknown>>;
}

/** The long name of `token` ("--name" or "-x") among `flags`, or undefined. */
function nameOf(token: string, flags: Readonly<Record<string, FlagDef>>): string | undefined {
  for (const [long, f] of Object.entries(flags)) {
    if (token === `--${long}` || (f.alias !== undefined && token === `-${f.alias}`)) return long;
  }
  return undefined;
}

function fastVerb(v: string): VerbDef | undefined {
  const def = Object.prototype.hasOwnProperty.call(VERBS, v) ? VERBS[v] : undefined;
  return def?.fast !== undefined ? def : undefined;
}

/** Parse normalized argv (normalizeArgv) for the fast path; undefined hands it to yargs. */
export function parseFast(args: readonly string[]): FastInvocation | undefined {
  let verb: string | undefined;
  let def: VerbDef | undefined;
  const positionals: string[] = [];
  const given: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    if (!token.startsWith('-')) {
      if (def !== undefined) positionals.push(token);
      else if ((def = fastVerb(token)) !== undefined) verb = token;
      else return undefined;
      continue;
    }
    const eq = token.indexOf('=');
    const flag = eq > 0 && token.startsWith('--') ? token.slice(0, eq) : token;
    let name = nameOf(flag, GLOBAL_FLAGS);
    let f = name === undefined ? undefined : GLOBAL_FLAGS[name];
    if (name === undefined && def !== undefined) {
      name = nameOf(flag, def.flags);
      f = name === undefined ? undefined : def.flags[name];
    }
    if (name === undefined || f === undefined || Object.prototype.hasOwnProperty.call(given, name)) return undefined;
    if (f.type === 'boolean') {
      if (flag !== token) return undefined;
      given[name] = true;
      continue;
    }
    // A repeatable flag would need yargs's array handling: none of the fast verbs has one.
    if (f.type === 'strings') return undefined;
    const value = flag === token ? args[++i] : token.slice(eq + 1);
    if (value === undefined || (flag === token && value.startsWith('-'))) return undefined;
    if (f.choices !== undefined && !f.choices.includes(value)) return undefined;
    if (f.type === 'number') {
      if (!/^\d+$/.test(value)) return undefined;
      given[name] = Number(value);
    } else given[name] = value;
  }
  if (verb === undefined || def === undefined) return undefined;
  const required = def.positionals.filter((p) => p.required).length;
  if (positionals.length < required || positionals.length > def.positionals.length || def.positionals.some((p) => p.variadic)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [n, f] of [...Object.entries(GLOBAL_FLAGS), ...Object.entries(def.flags)]) {
    const v = Object.prototype.hasOwnProperty.call(given, n) ? given[n] : defaultOf(f);
    if (v !== undefined) out[n] = v;
  }
  def.positionals.forEach((p, i) => {
    const v = positionals[i] ?? p.default;
    if (v !== undefined) out[p.name] = v;
  });
  return { verb, args: out };
}
