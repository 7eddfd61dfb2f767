/*
 * `tsctl inspect --format`: the part of Go's text/template that docker users write.
 *
 *   text {{.Field.Sub}} text        fields of the inspect object; a missing one prints <no value>
 *   {{json .State}}  {{json .}}     the value as JSON
 *   {{index .Config.Labels "k"}}   a map entry or list element (number)
 *   {{len .Mounts}}  {{join .Args ","}}  {{upper .Name}}  {{lower .Name}}
 *   {{if .State.Running}}a{{else}}b{{end}}   {{range .Mounts}}{{.Source}} {{end}}
 *   {{- and -}}                     trim the white space before / after the action
 *
 * Values print as Go's %v does: strings as they are, lists as [a b], maps as map[k:v] (keys
 * sorted), null as <nil>. Anything else ($variables, pipes, with, comparisons) is an error that
 * names it, not a silent empty line.
 */
import { TsrunError } from '../../spec/errors';

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'value'; expr: Expr }
  | { kind: 'if'; cond: Expr; then: Node[]; else: Node[] }
  | { kind: 'range'; over: Expr; body: Node[]; else: Node[] };

type Arg = { kind: 'field'; path: string[] } | { kind: 'string'; value: string } | { kind: 'number'; value: number };
type Expr = { fn: string | undefined; args: Arg[] };

const NO_VALUE = Symbol('no value');
const FUNCS = new Set(['json', 'index', 'len', 'join', 'upper', 'lower']);

function fail(what: string): never {
  throw new TsrunError('InvalidArgument', `template: ${what}`);
}

/** Split `{{ … }}` actions from text, applying the trim markers. */
function lex(src: string): Array<{ text: string } | { action: string }> {
  const out: Array<{ text: string } | { action: string }> = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    const close = src.indexOf('}}', open + 2);
    if (close < 0) fail(`unclosed action at offset ${open}`);
    let inner = src.slice(open + 2, close);
    if (inner.startsWith('- ')) {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(2);
    }
    let trimAfter = false;
    if (inner.endsWith(' -')) {
      trimAfter = true;
      inner = inner.slice(0, -2);
    }
    if (text !== '') out.push({ text });
    out.push({ action: inner.trim() });
    i = close + 2;
    if (trimAfter) while (i < src.length && /\s/.test(src[i]!)) i++;
  }
  return out;
}

function words(action: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(action); m !== null; m = re.exec(action)) out.push(m[1] !== undefined ? JSON.stringify(JSON.parse(`"${m[1]}"`)) : m[2]!);
  return out;
}

function parseArg(w: string): Arg {
  if (w.startsWith('"')) return { kind: 'string', value: JSON.parse(w) as string };
  if (/^-?\d+$/.test(w)) return { kind: 'number', value: Number(w) };
  if (w === '.') return { kind: 'field', path: [] };
  if (/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(w)) return { kind: 'field', path: w.slice(1).split('.') };
  return fail(`unsupported operand ${w} (fields like .State.Pid, "strings" and numbers are)`);
}

function parseExpr(action: string): Expr {
  const ws = words(action);
  if (ws.length === 0) fail('empty action {{}}');
  if (ws.includes('|')) fail(`pipelines are not supported: {{${action}}}`);
  const [head, ...rest] = ws as [string, ...string[]];
  if (FUNCS.has(head)) {
    if (rest.length === 0) fail(`${head} needs an argument`);
    return { fn: head, args: rest.map(parseArg) };
  }
  if (rest.length > 0 || !(head === '.' || head.startsWith('.'))) fail(`unsupported action {{${action}}}: want a field, or one of ${[...FUNCS].join(', ')}, if, range`);
  return { fn: undefined, args: [parseArg(head)] };
}

/** Parse a template. */
export function parseTemplate(src: string): Node[] {
  const tokens = lex(src);
  let pos = 0;
  const block = (closers: readonly string[]): { nodes: Node[]; closer: string | undefined } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const tok = tokens[pos++]!;
      if ('text' in tok) {
        nodes.push({ kind: 'text', text: tok.text });
        continue;
      }
      const a = tok.action;
      const keyword = a.split(/\s+/)[0]!;
      if (closers.includes(keyword)) return { nodes, closer: keyword };
      if (keyword === 'if' || keyword === 'range') {
        const expr = parseExpr(a.slice(keyword.length));
        const body = block(['else', 'end']);
        const alt = body.closer === 'else' ? block(['end']) : { nodes: [], closer: body.closer };
        if (alt.closer !== 'end') fail(`{{${keyword}}} without {{end}}`);
        nodes.push(keyword === 'if' ? { kind: 'if', cond: expr, then: body.nodes, else: alt.nodes } : { kind: 'range', over: expr, body: body.nodes, else: alt.nodes });
        continue;
      }
      if (keyword === 'end' || keyword === 'else') fail(`unexpected {{${keyword}}}`);
      if (keyword.startsWith('$') || ['with', 'define', 'template', 'block'].includes(keyword)) fail(`{{${keyword}}} is not supported`);
      nodes.push({ kind: 'value', expr: parseExpr(a) });
    }
    return { nodes, closer: undefined };
  };
  const top = block([]);
  return top.nodes;
}

function field(dot: unknown, p: readonly string[]): unknown {
  let v: unknown = dot;
  for (const k of p) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !(k in (v as object))) return NO_VALUE;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function argValue(a: Arg, dot: unknown): unknown {
  return a.kind === 'field' ? field(dot, a.path) : a.value;
}

function evaluate(e: Expr, dot: unknown): unknown {
  const vals = e.args.map((a) => argValue(a, dot));
  switch (e.fn) {
    case undefined:
      return vals[0];
    case 'json':
      return JSON.stringify(vals[0] === NO_VALUE ? null : vals[0]);
    case 'len': {
      const v = vals[0];
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (v !== null && typeof v === 'object') return Object.keys(v).length;
      return fail(`len of ${show(v)}`);
    }
    case 'index': {
      let v = vals[0];
      for (const k of vals.slice(1)) {
        if (Array.isArray(v) && typeof k === 'number') {
          if (k < 0 || k >= v.length) fail(`index ${k} out of range (${v.length} elements)`);
          v = v[k];
        } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof k === 'string') {
          v = k in v ? (v as Record<string, unknown>)[k] : NO_VALUE;
        } else {
          fail(`cannot index ${show(v)} with ${show(k)}`);
        }
      }
      return v;
    }
    case 'join':
      if (!Array.isArray(vals[0]) || typeof vals[1] !== 'string') fail('join wants a list and a "separator"');
      return (vals[0] as unknown[]).map(show).join(vals[1] as string);
    case 'upper':
      return show(vals[0]).toUpperCase();
    case 'lower':
      return show(vals[0]).toLowerCase();
    default:
      return fail(`unknown function ${e.fn}`);
  }
}

/** A value as Go's %v prints it. */
function show(v: unknown): string {
  if (v === NO_VALUE) return '<no value>';
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `map[${keys.map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

/** Go's truth: false, 0, "", nil, empty lists and maps are false. */
function truthy(v: unknown): boolean {
  if (v === NO_VALUE || v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function run(nodes: readonly Node[], dot: unknown, out: string[]): void {
  for (const n of nodes) {
    switch (n.kind) {
      case 'text':
        out.push(n.text);
        break;
      case 'value':
        out.push(show(evaluate(n.expr, dot)));
        break;
      case 'if':
        run(truthy(evaluate(n.cond, dot)) ? n.then : n.else, dot, out);
        break;
      case 'range': {
        const v = evaluate(n.over, dot);
        const items = Array.isArray(v) ? v : v !== null && typeof v === 'object' ? Object.keys(v).sort().map((k) => (v as Record<string, unknown>)[k]) : [];
        if (items.length === 0) run(n.else, dot, out);
        for (const item of items) run(n.body, item, out);
        break;
      }
    }
  }
}

/** Render a parsed template over one value. */
export function renderTemplate(t: readonly Node[], dot: unknown): string {
  const out: string[] = [];
  run(t, dot, out);
  return out.join('');
}
