/**
 * A tiny line protocol for shell scripts that report facts from inside a container:
 *
 *   @@key value            one value (repeatable: values accumulate in order)
 *   @@begin key            a block; every following line until @@end is one value
 *   @@end
 *
 * Lines outside the protocol are ignored, so stray output never breaks parsing.
 */

/** Facts by key, values in the order printed. */
export type Facts = ReadonlyMap<string, readonly string[]>;

/** Parse `@@` lines from a container's stdout. */
export function parseFacts(text: string): Facts {
  const facts = new Map<string, string[]>();
  const add = (k: string, v: string): void => {
    const list = facts.get(k);
    if (list === undefined) facts.set(k, [v]);
    else list.push(v);
  };
  let block: { key: string; lines: string[] } | undefined;
  for (const line of text.split('\n')) {
    if (block !== undefined) {
      if (line === '@@end') {
        add(block.key, block.lines.join('\n'));
        block = undefined;
      } else {
        block.lines.push(line);
      }
      continue;
    }
    const m = /^@@(\S+)(?: (.*))?$/.exec(line);
    if (m === null) continue;
    const key = m[1] ?? '';
    const rest = m[2] ?? '';
    if (key === 'begin') block = { key: rest, lines: [] };
    else add(key, rest);
  }
  return facts;
}

/** The first value of `key`, or undefined. */
export function fact(f: Facts, key: string): string | undefined {
  return f.get(key)?.[0];
}

/** All values of `key` (empty when absent). */
export function factsOf(f: Facts, key: string): readonly string[] {
  return f.get(key) ?? [];
}

/** Shell lines that print `cmd`'s output as a block named `key`. */
export function block(key: string, cmd: string): string {
  return `echo "@@begin ${key}"; ${cmd}; echo; echo "@@end"`;
}
