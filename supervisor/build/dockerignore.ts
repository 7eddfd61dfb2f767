/*
 * .dockerignore, docker's rules (moby/patternmatcher):
 *
 *   # comment, blank lines    skipped
 *   pattern                   Go's filepath.Match syntax (* ? [a-z] \x) on the cleaned path, relative
 *                             to the context root (a leading / is dropped); ** matches any number of
 *                             directories
 *   !pattern                  an exception: re-includes what earlier patterns excluded
 *
 * The last pattern that matches a path or one of its parent directories decides. Pure.
 */
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';

/** One compiled pattern. */
interface Pattern {
  readonly re: RegExp;
  readonly exclusion: boolean;
  readonly text: string;
}

/** A compiled .dockerignore. */
export interface IgnoreRules {
  readonly patterns: readonly Pattern[];
}

function toRegex(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        i++;
        // "**/" matches zero or more directories; a trailing "**" everything below
        if (p[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) throw new TsrunError('InvalidArgument', `.dockerignore pattern ${JSON.stringify(p)}: syntax error in pattern (unclosed [)`);
      let cls = p.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < p.length) {
      re += p[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Compile a .dockerignore's text. */
export function parseDockerignore(text: string): IgnoreRules {
  const patterns: Pattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let exclusion = false;
    if (line.startsWith('!')) {
      exclusion = true;
      line = line.slice(1).trim();
    }
    let cleaned = path.posix.normalize(line);
    cleaned = cleaned.replace(/^\/+/, '').replace(/\/+$/, '');
    if (cleaned === '' || cleaned === '.') continue;
    patterns.push({ re: toRegex(cleaned), exclusion, text: raw.trim() });
  }
  return { patterns };
}

/** Is `rel` (a '/'-separated path relative to the context root) excluded? */
export function isIgnored(rules: IgnoreRules, rel: string): boolean {
  const parts = rel.split('/').filter((s) => s !== '' && s !== '.');
  const candidates: string[] = [];
  for (let i = 1; i <= parts.length; i++) candidates.push(parts.slice(0, i).join('/'));
  let ignored = false;
  for (const p of rules.patterns) {
    // a pattern matching a parent directory matches everything under it
    if (candidates.some((c) => p.re.test(c))) ignored = !p.exclusion;
  }
  return ignored;
}
