/*
 * docker-style argument parsing: options before the first operand (`run [OPTIONS] IMAGE [CMD…]`
 * stops at IMAGE, so the container's own flags stay its own), `--opt=v`, `--opt v`, `-e v`,
 * `-ev`, grouped short booleans (`-it`, `-dit`), `--` ending the options.
 */
import { TsrunError } from '../../spec/errors';

/** One option of a command. */
export interface OptionDef {
  readonly name: string;
  readonly short?: string;
  /** bool: a switch; string: the last one wins; list: every occurrence */
  readonly kind: 'bool' | 'string' | 'list';
  readonly help: string;
}

/** Parsed arguments: option values by name and the operands. */
export interface Parsed {
  readonly bools: ReadonlySet<string>;
  readonly strings: ReadonlyMap<string, string>;
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly operands: readonly string[];
}

/** Parse `argv` against `defs`; with `stopAtOperand`, everything from the first operand on is operands. */
export function parseArgs(argv: readonly string[], defs: readonly OptionDef[], stopAtOperand: boolean): Parsed {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const byShort = new Map(defs.filter((d) => d.short !== undefined).map((d) => [d.short!, d]));
  const bools = new Set<string>();
  const strings = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const operands: string[] = [];
  const set = (d: OptionDef, value: string | undefined): void => {
    if (d.kind === 'bool') {
      if (value === undefined || value === 'true') bools.add(d.name);
      else if (value === 'false') bools.delete(d.name);
      else throw new TsrunError('InvalidArgument', `invalid argument ${JSON.stringify(value)} for "--${d.name}" flag: want true or false`);
      return;
    }
    if (value === undefined) throw new TsrunError('InvalidArgument', `flag needs an argument: --${d.name}`);
    if (d.kind === 'string') strings.set(d.name, value);
    else lists.set(d.name, [...(lists.get(d.name) ?? []), value]);
  };
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    i++;
    if (a === '--') {
      operands.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const d = byName.get(name);
      if (d === undefined) throw new TsrunError('InvalidArgument', `unknown flag: --${name}`);
      if (eq >= 0) set(d, a.slice(eq + 1));
      else if (d.kind === 'bool') set(d, undefined);
      else {
        if (i >= argv.length) throw new TsrunError('InvalidArgument', `flag needs an argument: --${name}`);
        set(d, argv[i]!);
        i++;
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const ch = a[k]!;
        const d = byShort.get(ch);
        if (d === undefined) throw new TsrunError('InvalidArgument', `unknown shorthand flag: '${ch}' in ${a}`);
        if (d.kind === 'bool') {
          set(d, undefined);
          continue;
        }
        let v = a.slice(k + 1);
        if (v.startsWith('=')) v = v.slice(1);
        if (v === '') {
          if (i >= argv.length) throw new TsrunError('InvalidArgument', `flag needs an argument: '${ch}' in -${ch}`);
          v = argv[i]!;
          i++;
        }
        set(d, v);
        break;
      }
      continue;
    }
    operands.push(a);
    if (stopAtOperand) {
      operands.push(...argv.slice(i));
      break;
    }
  }
  return { bools, strings, lists, operands };
}

/** Usage text of a command's options. */
export function optionsHelp(defs: readonly OptionDef[]): string {
  return defs
    .map((d) => {
      const flag = `${d.short !== undefined ? `-${d.short}, ` : '    '}--${d.name}${d.kind === 'bool' ? '' : ' value'}`;
      return `  ${flag.padEnd(28)} ${d.help}`;
    })
    .join('\n');
}
