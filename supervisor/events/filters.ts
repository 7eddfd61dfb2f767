/*
 * containerd's filter language, as Events.Subscribe, Containers.List, Leases.List and
 * Tasks.Metrics take it:
 *
 *   filter    := selector ( "," selector )*          all selectors must match (and)
 *   selector  := fieldpath [ op value ]              no op: the field is present and not empty
 *   fieldpath := field ( "." field )*                e.g. topic, namespace, event.container_id, labels."a.b"
 *   op        := "==" | "!=" | "~="                  "~=" is a regular expression match
 *   value     := "quoted" | bare                      bare runs to the next "," (so /tasks/ is a bare regexp)
 *
 * A list of filters matches when any of them matches (or); an empty list matches everything.
 * What a field path means is the caller's business: it passes an adaptor from path to value.
 */
import { errors } from '../errors';

type Op = '==' | '!=' | '~=' | 'present';

interface Selector {
  readonly path: readonly string[];
  readonly op: Op;
  readonly value: string;
  readonly re?: RegExp;
}

/** Looks a field path up on the thing being filtered; undefined when it has no such field. */
export type FieldAdaptor = (path: readonly string[]) => string | undefined;

/** A compiled list of filters. */
export type Filter = (adaptor: FieldAdaptor) => boolean;

function unquote(s: string, i: number, quote: string): [string, number] {
  let out = '';
  let j = i + 1;
  while (j < s.length && s[j] !== quote) {
    if (s[j] === '\\' && j + 1 < s.length) {
      const c = s[j + 1]!;
      out += c === 'n' ? '\n' : c === 't' ? '\t' : c;
      j += 2;
    } else {
      out += s[j];
      j += 1;
    }
  }
  if (j >= s.length) throw errors.invalid(`parse error: unterminated quoted string in ${JSON.stringify(s)}`);
  return [out, j + 1];
}

function parseOne(text: string): Selector[] {
  const selectors: Selector[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const bad = (why: string): never => {
    throw errors.invalid(`parse error: ${why} in ${JSON.stringify(text)}`);
  };
  while (i <= text.length) {
    skipSpace();
    const path: string[] = [];
    for (;;) {
      skipSpace();
      if (text[i] === '"') {
        const [v, next] = unquote(text, i, '"');
        path.push(v);
        i = next;
      } else {
        const m = /^[A-Za-z0-9_\-/]+/.exec(text.slice(i));
        if (m === null) bad(`expected a field name at ${i}`);
        path.push(m![0]);
        i += m![0].length;
      }
      if (text[i] === '.') {
        i++;
        continue;
      }
      break;
    }
    skipSpace();
    const two = text.slice(i, i + 2);
    let op: Op = 'present';
    let value = '';
    if (two === '==' || two === '!=' || two === '~=') {
      op = two;
      i += 2;
      skipSpace();
      if (text[i] === '"') {
        const [v, next] = unquote(text, i, text[i]!);
        value = v;
        i = next;
      } else {
        const m = /^[^,]*/.exec(text.slice(i))!;
        value = m[0].trim();
        i += m[0].length;
        if (value === '') bad('expected a value');
      }
    }
    let re: RegExp | undefined;
    if (op === '~=') {
      try {
        re = new RegExp(value);
      } catch {
        bad(`bad regular expression ${JSON.stringify(value)}`);
      }
    }
    selectors.push(re === undefined ? { path, op, value } : { path, op, value, re });
    skipSpace();
    if (i >= text.length) break;
    if (text[i] !== ',') bad(`unexpected ${JSON.stringify(text[i])} at ${i}`);
    i++;
  }
  return selectors;
}

function matches(s: Selector, adaptor: FieldAdaptor): boolean {
  const v = adaptor(s.path);
  switch (s.op) {
    case 'present':
      return v !== undefined && v !== '';
    case '==':
      return v === s.value;
    case '!=':
      return v !== s.value;
    case '~=':
      return v !== undefined && s.re!.test(v);
    default: {
      const never: never = s.op;
      return never;
    }
  }
}

/** Compile filter strings (or between them, and within one); throws InvalidArgument on a syntax error. */
export function parseFilters(filters: readonly string[]): Filter {
  const parsed = filters.filter((f) => f.trim() !== '').map(parseOne);
  if (parsed.length === 0) return () => true;
  return (adaptor) => parsed.some((sels) => sels.every((s) => matches(s, adaptor)));
}

/** An adaptor over a plain object: path components index nested objects; `labels.<rest>` joins the rest as one key. */
export function objectAdaptor(obj: Record<string, unknown>): FieldAdaptor {
  return (path) => {
    let cur: unknown = obj;
    for (let k = 0; k < path.length; k++) {
      if (cur === null || typeof cur !== 'object') return undefined;
      const rec = cur as Record<string, unknown>;
      const key = path[k]!;
      if (key === 'labels' || key === 'annotations') {
        const labels = rec[key] as Record<string, string> | undefined;
        if (k === path.length - 1) return labels === undefined ? undefined : Object.keys(labels).length > 0 ? 'x' : '';
        return labels?.[path.slice(k + 1).join('.')];
      }
      cur = rec[key] ?? rec[snakeToCamel(key)];
    }
    if (cur === undefined || cur === null) return undefined;
    if (typeof cur === 'string') return cur;
    if (typeof cur === 'number' || typeof cur === 'boolean' || typeof cur === 'bigint') return String(cur);
    return undefined;
  };
}

function snakeToCamel(s: string): string {
  return s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}
