/*
 * Where and why JSON text is malformed, as one lower-case line. JSON.parse in Node 20 says
 * `Unexpected token '}', "<the whole text>" is not valid JSON` (multi-line, no offset) for many
 * errors, which is useless in a log line; this scanner runs only after JSON.parse has failed and
 * re-reads the text by the RFC 8259 grammar to find the first bad character.
 */
import { TsrunError } from './errors';

/** A JSON syntax error: what is wrong and where (1-based line and column). */
export interface JsonSyntaxError {
  readonly reason: string;
  readonly line: number;
  readonly column: number;
}

/** Find the first syntax error in `text`, or undefined if it is valid JSON. */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  let stop: { offset: number; reason: string } | undefined;
  // Unwinds the recursive descent; caught below and never seen by callers.
  const fail: (reason: string, at?: number) => never = (reason, at = i) => {
    stop = { offset: at, reason };
    throw new TsrunError('InvalidArgument', reason);
  };
  const describe = (at: number): string =>
    at >= text.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[at])}`;
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const expect = (literal: string): void => {
    for (const ch of literal) {
      if (text[i] !== ch) fail(describe(i));
      i++;
    }
  };
  const digits = (): void => {
    if (!/[0-9]/.test(text[i] ?? '')) fail(i >= text.length ? 'unexpected end of input' : `invalid number`);
    while (/[0-9]/.test(text[i] ?? '')) i++;
  };
  const number = (): void => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') {
      i++;
      digits();
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
  };
  const string = (): void => {
    const start = i;
    i++;
    for (;;) {
      const ch = text[i];
      if (ch === undefined) fail('unterminated string', start);
      if (ch === '"') break;
      if (ch === '\\') {
        const esc = text[i + 1];
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('invalid \\u escape in string');
          i += 6;
          continue;
        }
        if (esc === undefined || !'"\\/bfnrt'.includes(esc)) fail('invalid escape in string');
        i += 2;
        continue;
      }
      if (ch < ' ') fail('control character in string');
      i++;
    }
    i++;
  };
  const value = (): void => {
    skipSpace();
    const ch = text[i];
    if (ch === '{') {
      i++;
      skipSpace();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        skipSpace();
        if (text[i] !== '"') fail(`${describe(i)}, expected a property name in double quotes`);
        string();
        skipSpace();
        if (text[i] !== ':') fail(`${describe(i)}, expected ":"`);
        i++;
        value();
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`${describe(i)}, expected "," or "}"`);
      }
    }
    if (ch === '[') {
      i++;
      skipSpace();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`${describe(i)}, expected "," or "]"`);
      }
    }
    if (ch === '"') return string();
    if (ch === 't') return expect('true');
    if (ch === 'f') return expect('false');
    if (ch === 'n') return expect('null');
    if (ch === '-' || /[0-9]/.test(ch ?? '')) return number();
    fail(ch === undefined ? 'unexpected end of input' : `${describe(i)}, expected a value`);
  };
  try {
    value();
    skipSpace();
    if (i < text.length) fail(`${describe(i)} after the end of the document`);
    return undefined;
  } catch {
    // Anything but a recorded stop is the scanner's own failure, e.g. a stack overflow on very
    // deeply nested input: report nothing, and the caller falls back to JSON.parse's message.
    if (stop === undefined) return undefined;
    const head = text.slice(0, stop.offset);
    return { reason: stop.reason, line: head.split('\n').length, column: stop.offset - head.lastIndexOf('\n') };
  }
}
