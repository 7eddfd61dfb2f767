/*
 * Small text helpers shared by the schema, the parser and the validator so that every message
 * names fields and values the same way.
 */

/** The JSON kind of a value as a message shows it: "string", "number", "array", "null", … */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return typeof value;
}

/** The message for a value of the wrong type: "expected X, got Y", or "missing, expected X". */
export function expectedGot(expected: string, input: unknown): string {
  return input === undefined ? `missing, expected ${expected}` : `expected ${expected}, got ${jsonKind(input)}`;
}

/** A value quoted for a message, shortened so a huge string cannot flood a log line. */
export function quote(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A JSON path as `linux.namespaces[2].type`; odd keys (sysctl names) as `sysctl["net.x"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}
