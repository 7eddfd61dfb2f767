/*
 * overlayChanges: what a container changed, from its overlay upper dir against the lower layers,
 * as `docker diff` lists it (A added, C changed, D deleted). The walk is writeDiff's overlay walk
 * (write.ts) reading metadata only:
 *
 *   upper entry, a 0:0 char device      D, when the lower view has the name (else nothing)
 *   upper entry, not in the lower view  A (and a directory's whole subtree is A)
 *   upper entry, in the lower view      C; a directory only when its mode, owner or mtime differ
 *   opaque directory (trusted.overlay.opaque=y)
 *                                       D for every name the lower view had there and upper lacks
 *   A or D below a directory            the directory is C (docker's rule: its listing changed)
 *
 * The lower view of a path is the first lower (top down) that has it, unless a whiteout or an
 * opaque parent in a higher lower hides it. The walk lstat()s and recurses only into real
 * directories, so a symlink in upper is reported, never followed. Output is sorted by path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { wrapSystemError } from '../../spec/errors';
import { lgetxattr } from './syscalls';

/** One change: docker's kind letter and the absolute path inside the container. */
export interface FsChange {
  kind: 'A' | 'C' | 'D';
  path: string;
}

const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** lstat, or undefined when the path (or a parent of it) does not exist. */
export function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

const isWhiteout = (st: fs.Stats): boolean => st.isCharacterDevice() && st.rdev === 0;
const isOpaque = (p: string): boolean => lgetxattr(p, OPAQUE_XATTR)?.toString() === 'y';

/**
 * Whether layer `l` hides every layer below it at `parts`: an ancestor of the path there is not a
 * directory (a file or a whiteout) or is an opaque directory.
 */
function hidesBelow(l: string, parts: readonly string[]): boolean {
  for (let i = 1; i < parts.length; i++) {
    const dir = path.join(l, ...parts.slice(0, i));
    const st = lstatOrUndefined(dir);
    if (st === undefined) return false;
    if (!st.isDirectory() || isOpaque(dir)) return true;
  }
  return false;
}

/** The lower layers' entry at `rel` as the overlay would show it, or undefined. */
function lowerEntry(lowers: readonly string[], rel: string): { abs: string; st: fs.Stats } | undefined {
  const parts = rel.split('/');
  for (const l of lowers) {
    const abs = path.join(l, rel);
    const st = lstatOrUndefined(abs);
    if (st !== undefined) return isWhiteout(st) ? undefined : { abs, st };
    if (hidesBelow(l, parts)) return undefined;
  }
  return undefined;
}

/** The names the lower view has in directory `rel`. */
function lowerNames(lowers: readonly string[], rel: string): Set<string> {
  const seen = new Set<string>();
  const hidden = new Set<string>();
  const parts = rel.split('/');
  for (const l of lowers) {
    const dir = path.join(l, rel);
    const st = lstatOrUndefined(dir);
    if (st === undefined) {
      if (hidesBelow(l, parts)) break;
      continue;
    }
    if (!st.isDirectory()) break;
    for (const name of fs.readdirSync(dir)) {
      if (seen.has(name) || hidden.has(name)) continue;
      const cst = lstatOrUndefined(path.join(dir, name));
      if (cst !== undefined && isWhiteout(cst)) hidden.add(name);
      else seen.add(name);
    }
    if (isOpaque(dir) || hidesBelow(l, parts)) break;
  }
  return seen;
}

function dirChanged(a: fs.Stats, b: fs.Stats): boolean {
  return a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || Math.trunc(a.mtimeMs / 1000) !== Math.trunc(b.mtimeMs / 1000);
}

/** The changes of an overlay snapshot: `upper` is its upper dir, `lowers` its parents top down. */
export function overlayChanges(upper: string, lowers: readonly string[]): FsChange[] {
  const byPath = new Map<string, FsChange['kind']>();
  const note = (rel: string, kind: FsChange['kind']): void => {
    byPath.set(`/${rel}`, kind);
    const parent = path.posix.dirname(rel);
    if ((kind === 'A' || kind === 'D') && parent !== '.' && !byPath.has(`/${parent}`)) byPath.set(`/${parent}`, 'C');
  };
  const added = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(upper, rel))) {
      const r = `${rel}/${name}`;
      const st = fs.lstatSync(path.join(upper, r));
      if (isWhiteout(st)) continue;
      byPath.set(`/${r}`, 'A');
      if (st.isDirectory()) added(r);
    }
  };
  const walk = (rel: string): void => {
    const names = fs.readdirSync(rel === '' ? upper : path.join(upper, rel));
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(upper, r);
      const st = fs.lstatSync(abs);
      const lower = lowerEntry(lowers, r);
      if (isWhiteout(st)) {
        if (lower !== undefined) note(r, 'D');
        continue;
      }
      if (lower === undefined || lower.st.isDirectory() !== st.isDirectory()) {
        note(r, 'A');
        if (st.isDirectory()) added(r);
        continue;
      }
      if (!st.isDirectory()) {
        note(r, 'C');
        continue;
      }
      if (dirChanged(lower.st, st)) note(r, 'C');
      if (isOpaque(abs)) {
        const here = new Set(fs.readdirSync(abs));
        for (const gone of lowerNames(lowers, r)) if (!here.has(gone)) note(`${r}/${gone}`, 'D');
      }
      walk(r);
    }
  };
  try {
    walk('');
  } catch (e) {
    throw wrapSystemError(`changes of ${upper}`, e);
  }
  return [...byPath]
    .map(([p, kind]) => ({ kind, path: p }))
    .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}
