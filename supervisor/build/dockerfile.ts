/*
 * Dockerfile → instructions, as docker's parser (moby/buildkit frontend/dockerfile/parser) reads it:
 *
 *   # escape=`        parser directives: `# key=value` lines before anything else (escape, syntax)
 *   # comment         a line whose first non-blank is '#' (also inside a continuation)
 *   RUN a \           a line ending in the escape character continues on the next; blank lines
 *       b             inside a continuation are skipped
 *   CMD ["a", "b"]    JSON (exec) form when the arguments parse as a JSON array of strings
 *   COPY --from=x …   leading --name=value flags (COPY, ADD, FROM, RUN)
 *   ONBUILD RUN …     the nested instruction is parsed as one
 *
 * Pure: no file system; line numbers are 1-based and name the instruction's first line.
 */
import { TsrunError } from '../../spec/errors';

/** One instruction. */
export interface Instruction {
  /** upper case: RUN, COPY, … */
  readonly cmd: string;
  /** the arguments after the flags, continuations joined (escape + newline removed) */
  readonly args: string;
  /** the arguments as a JSON array when written in that form */
  readonly json: readonly string[] | undefined;
  /** --name=value flags before the arguments */
  readonly flags: ReadonlyMap<string, string>;
  /** the instruction as written (continuations joined), for messages and history */
  readonly original: string;
  readonly line: number;
  /** ONBUILD's instruction */
  readonly inner?: Instruction;
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  readonly escape: string;
  readonly instructions: readonly Instruction[];
}

/** Instructions docker knows. */
export const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);
const JSON_FORMS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME']);
const FLAGGED = new Set(['COPY', 'ADD', 'FROM', 'RUN', 'HEALTHCHECK']);

/** A Dockerfile error naming the line. */
export function lineError(line: number, what: string): TsrunError {
  return new TsrunError('InvalidArgument', `Dockerfile line ${line}: ${what}`);
}

/** The arguments as a JSON array of strings, or undefined when they are not one. */
export function jsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

function splitFlags(cmd: string, rest: string, line: number): { flags: Map<string, string>; args: string } {
  const flags = new Map<string, string>();
  if (!FLAGGED.has(cmd)) return { flags, args: rest };
  let r = rest;
  for (;;) {
    const m = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(r);
    if (m === null) break;
    if (m[2] === undefined) {
      if (m[1] === 'link' || m[1] === 'no-cache') {
        flags.set(m[1], 'true');
        r = r.slice(m[0].length);
        continue;
      }
      throw lineError(line, `${cmd} flag --${m[1]} needs a value (--${m[1]}=VALUE)`);
    }
    flags.set(m[1]!, m[2]);
    r = r.slice(m[0].length);
  }
  return { flags, args: r };
}

function parseInstruction(text: string, line: number, nested: boolean): Instruction {
  const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(text);
  if (m === null) throw lineError(line, 'empty instruction');
  const cmd = m[1]!.toUpperCase();
  if (!KNOWN.has(cmd)) throw lineError(line, `unknown instruction: ${m[1]!}`);
  const rest = m[2]!.trim();
  if (cmd === 'ONBUILD') {
    if (nested) throw lineError(line, 'ONBUILD ONBUILD is not allowed');
    if (rest === '') throw lineError(line, 'ONBUILD requires an instruction');
    const inner = parseInstruction(rest, line, true);
    if (inner.cmd === 'FROM' || inner.cmd === 'MAINTAINER') throw lineError(line, `${inner.cmd} isn't allowed as an ONBUILD trigger`);
    return { cmd, args: rest, json: undefined, flags: new Map(), original: text.trim(), line, inner };
  }
  const { flags, args } = splitFlags(cmd, rest, line);
  const json = JSON_FORMS.has(cmd) ? jsonArray(args) : undefined;
  return { cmd, args, json, flags, original: text.trim(), line };
}

/** Parse a Dockerfile's text. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let escape = '\\';
  let i = 0;
  // parser directives: only at the very top, before any other line (comments included)
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const d = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/.exec(lines[i]!);
    if (d === null) break;
    const key = d[1]!.toLowerCase();
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break;
    if (seen.has(key)) throw lineError(i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (d[2] !== '\\' && d[2] !== '`') throw lineError(i + 1, `invalid escape token '${d[2]!}' does not match ${'`'} or \\`);
      escape = d[2]!;
    }
  }
  const out: Instruction[] = [];
  const continued = (l: string): boolean => l.trimEnd().endsWith(escape);
  while (i < lines.length) {
    const raw = lines[i]!;
    const start = i + 1;
    i++;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    let text = '';
    let cur = raw;
    for (;;) {
      if (continued(cur)) {
        text += cur.trimEnd().slice(0, -1);
        // the next line that is neither blank nor a comment continues this one
        while (i < lines.length && (lines[i]!.trim() === '' || lines[i]!.trimStart().startsWith('#'))) i++;
        if (i >= lines.length) break;
        cur = lines[i]!;
        i++;
        continue;
      }
      text += cur;
      break;
    }
    out.push(parseInstruction(text, start, false));
  }
  return { escape, instructions: out };
}
