/*
 * docker's variable substitution and word splitting (moby/buildkit frontend/dockerfile/shell/lex.go):
 *
 *   $NAME ${NAME}            the value, or "" when unset
 *   ${NAME:-word} ${NAME-word}   word when unset or empty (:-) / unset (-)
 *   ${NAME:+word} ${NAME+word}   word when set and not empty (:+) / set (+), else ""
 *   ${NAME:?msg}  ${NAME?msg}    an error naming NAME and msg when unset or empty / unset
 *   'single'                 literal; "double": $ expanded, escape only before " $ and itself
 *   ESC x                    x literally (ESC is \ or the `# escape=` character)
 *
 * Words split on unquoted blanks; quotes are removed. Pure.
 */
import { TsrunError } from '../../spec/errors';

/** Variables for substitution (undefined: unset). */
export type Vars = ReadonlyMap<string, string>;

class Lexer {
  private i = 0;

  constructor(
    private readonly s: string,
    private readonly vars: Vars,
    private readonly esc: string,
  ) {}

  /** words split on unquoted blanks (split false: one word, blanks kept) */
  run(split: boolean, stop?: string): string[] {
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (stop !== undefined && c === stop) break;
      if (split && /\s/.test(c)) {
        if (inWord) words.push(cur);
        cur = '';
        inWord = false;
        this.i++;
        continue;
      }
      inWord = true;
      if (c === this.esc) {
        this.i++;
        if (this.i < s.length) cur += s[this.i++]!;
        else cur += c;
      } else if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new TsrunError('InvalidArgument', `unexpected end of statement while looking for matching single-quote in ${JSON.stringify(s)}`);
        cur += s.slice(this.i + 1, end);
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        cur += this.doubleQuoted();
      } else if (c === '$') {
        cur += this.dollar();
      } else {
        cur += c;
        this.i++;
      }
    }
    if (inWord || !split) words.push(cur);
    return words;
  }

  private doubleQuoted(): string {
    const s = this.s;
    let out = '';
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === this.esc) {
        const n = s[this.i + 1];
        if (n === '"' || n === '$' || n === this.esc) {
          out += n;
          this.i += 2;
        } else {
          out += c;
          this.i++;
        }
      } else if (c === '$') out += this.dollar();
      else {
        out += c;
        this.i++;
      }
    }
    throw new TsrunError('InvalidArgument', `unexpected end of statement while looking for matching double-quote in ${JSON.stringify(s)}`);
  }

  private name(): string {
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]/.exec(this.s.slice(this.i));
    const n = m?.[0] ?? '';
    this.i += n.length;
    return n;
  }

  private dollar(): string {
    this.i++; // $
    const s = this.s;
    if (s[this.i] !== '{') {
      const n = this.name();
      return n === '' ? '$' : (this.vars.get(n) ?? '');
    }
    this.i++; // {
    const n = this.name();
    if (n === '') throw new TsrunError('InvalidArgument', `bad substitution in ${JSON.stringify(s)}: missing a name after \${`);
    if (s[this.i] === '}') {
      this.i++;
      return this.vars.get(n) ?? '';
    }
    if (this.i >= s.length) throw new TsrunError('InvalidArgument', `bad substitution in ${JSON.stringify(s)}: missing '}'`);
    const colon = s[this.i] === ':';
    if (colon) this.i++;
    const op = s[this.i];
    if (op !== '-' && op !== '+' && op !== '?') throw new TsrunError('InvalidArgument', `unsupported modifier (${colon ? ':' : ''}${op ?? 'end'}) in substitution ${JSON.stringify(s)}`);
    this.i++;
    const word = this.run(false, '}')[0] ?? '';
    if (s[this.i] !== '}') throw new TsrunError('InvalidArgument', `bad substitution in ${JSON.stringify(s)}: missing '}'`);
    this.i++;
    const v = this.vars.get(n);
    const set = colon ? v !== undefined && v !== '' : v !== undefined;
    switch (op) {
      case '-':
        return set ? v! : word;
      case '+':
        return set ? word : '';
      default:
        if (!set) throw new TsrunError('InvalidArgument', `${n}: ${word === '' ? 'is not allowed to be unset' : word}`);
        return v!;
    }
  }
}

/** Substitute and unquote one word (blanks kept). */
export function processWord(text: string, vars: Vars, escape = '\\'): string {
  return new Lexer(text, vars, escape).run(false)[0] ?? '';
}

/** Substitute, unquote and split on unquoted blanks. */
export function processWords(text: string, vars: Vars, escape = '\\'): string[] {
  return new Lexer(text, vars, escape).run(true);
}

/** Split on unquoted blanks keeping quotes and escapes (for KEY=VALUE lists processed per word). */
export function splitRaw(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === '' && /\s/.test(c)) {
      if (cur !== '') words.push(cur);
      cur = '';
      continue;
    }
    if (c === escape && quote !== "'" && i + 1 < text.length) {
      cur += c + text[++i]!;
      continue;
    }
    if (quote === '' && (c === '"' || c === "'")) quote = c;
    else if (c === quote) quote = '';
    cur += c;
  }
  if (quote !== '') throw new TsrunError('InvalidArgument', `unmatched ${quote} in ${JSON.stringify(text)}`);
  if (cur !== '') words.push(cur);
  return words;
}

/**
 * KEY=VALUE pairs of ENV, LABEL and ARG-like lists, substituted; the legacy `ENV KEY rest of line`
 * form when the first word has no '='.
 */
export function keyValues(text: string, vars: Vars, escape: string, what: string): Array<[string, string]> {
  const words = splitRaw(text, escape);
  if (words.length === 0) throw new TsrunError('InvalidArgument', `${what} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const key = processWord(words[0]!, vars, escape);
    const rest = text.trim().slice(words[0]!.length).trim();
    if (rest === '') throw new TsrunError('InvalidArgument', `${what} must have two arguments`);
    return [[key, processWord(rest, vars, escape)]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new TsrunError('InvalidArgument', `${what} names can not be blank: ${JSON.stringify(w)} is not KEY=VALUE`);
    return [processWord(w.slice(0, eq), vars, escape), processWord(w.slice(eq + 1), vars, escape)];
  });
}
