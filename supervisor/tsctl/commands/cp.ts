/*
 * `tsctl cp [-a] [-L] [-q] CONTAINER:SRC DEST|-` and `tsctl cp [-a] [-L] [-q] SRC|- CONTAINER:DEST`,
 * docker's rules (docs/tsctl.md):
 *
 *   SRC file   DEST a directory → DEST/basename(SRC); a file or missing → DEST (its parent must
 *              exist; "DEST/" missing is an error)
 *   SRC dir    DEST a directory → DEST/basename(SRC), or with SRC/. its contents into DEST;
 *              missing → made as the copy; a file → an error
 *   -          out: a tar of SRC on stdout; in: a tar from stdin unpacked into the directory DEST
 *   owners     copied in: root (0:0) unless -a; copied out: the caller's unless -a
 *   -L         follow SRC when it is a symlink (inside the container: resolved in its root)
 *
 * Container paths are resolved inside the container's root and its mounts (supervisor/volumes/container-paths.ts:
 * ".." stops at the root, absolute link targets restart from it, a path inside a volume or bind
 * mount reaches its host directory as docker's cp does), so no symlink in the container makes
 * tsctl read or write a host file; the copy itself goes through the layer code, which never
 * writes through a symlink. The container is paused meanwhile (container-fs.ts). A directory
 * copied out holds what its own file system has: a volume mounted deeper inside it is not
 * descended into (copy that path on its own).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { once } from 'node:events';
import { TsrunError } from '../../../spec/errors';
import { lstatOrUndefined } from '../../diff/changes';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { withContainerRoot } from '../container-fs';
import { pathMounts, resolveInContainer } from '../../volumes/container-paths';
import { bytesDecimal } from '../format';
import { findContainer, type ContainerInfo } from '../model';
import { extractTar, tarPath, type Owner } from '../archive';

/** One cp operand: a host path or CONTAINER:PATH. */
export type Side = { kind: 'host'; path: string } | { kind: 'container'; ref: string; path: string };

/** docker's splitCpArg: a path starting with / or . is local even with a colon in it. */
export function side(arg: string): Side {
  if (arg.startsWith('/') || arg.startsWith('.') || !arg.includes(':')) return { kind: 'host', path: arg };
  const i = arg.indexOf(':');
  return { kind: 'container', ref: arg.slice(0, i), path: arg.slice(i + 1) };
}

/** A container path made absolute (docker reads a relative one from the root). */
function absInContainer(p: string): string {
  return path.posix.join('/', p);
}

const endsWithDot = (p: string): boolean => p === '.' || p.endsWith('/.');
const endsWithSlash = (p: string): boolean => p.endsWith('/');

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** What to copy: the resolved source, whether it is a directory, and the name the copy gets. */
interface Source {
  abs: string;
  isDir: boolean;
  /** basename of SRC; "" for SRC/. (contents only) */
  name: string;
}

/** Where a copy lands: the directory to unpack into and the top entry's name there ("" = contents). */
interface Target {
  readonly dir: string;
  readonly name: string;
}

/** docker's destination rules for `src` going to `dest` (an absolute host path, `shown` in errors). */
function targetFor(src: Source, dest: string, shown: string, destGivenWithSlash: boolean): Target {
  const st = statOrUndefined(dest);
  if (st?.isDirectory() === true) return { dir: dest, name: src.name };
  if (st !== undefined && src.isDir) throw new TsrunError('InvalidArgument', `cannot copy a directory to a file: ${shown}`);
  if (st === undefined && destGivenWithSlash) throw new TsrunError('NotFound', `no such directory: ${shown}`);
  const parent = path.dirname(dest);
  if (statOrUndefined(parent)?.isDirectory() !== true) throw new TsrunError('NotFound', `no such directory: ${path.dirname(shown)} (the parent of ${shown})`);
  return { dir: parent, name: path.basename(dest) };
}

/** docker refuses to replace a directory with a non-directory and the other way round. */
function checkOverwrite(src: Source, t: Target, shown: string): void {
  if (t.name === '') return;
  const existing = lstatOrUndefined(path.join(t.dir, t.name));
  if (existing === undefined) return;
  if (existing.isDirectory() && !src.isDir) throw new TsrunError('InvalidArgument', `cannot overwrite directory ${shown} with non-directory`);
  if (!existing.isDirectory() && src.isDir) throw new TsrunError('InvalidArgument', `cannot overwrite non-directory ${shown} with directory`);
}

function sizeOf(abs: string): number {
  const st = fs.lstatSync(abs);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let n = 0;
  for (const e of fs.readdirSync(abs)) n += sizeOf(path.join(abs, e));
  return n;
}

async function copyOut(ctx: Ctx, c: ContainerInfo, srcPath: string, dest: string, o: { archive: boolean; follow: boolean }): Promise<number> {
  const p = absInContainer(srcPath);
  return withContainerRoot(ctx, c, async (root) => {
    // without -L the last component is not followed (a symlink is copied as one); its parents are,
    // inside the root
    const whole = o.follow || endsWithDot(srcPath) || endsWithSlash(srcPath) || p === '/';
    const abs = resolveInContainer(root, pathMounts(root, c.spec), p, !whole).host;
    const st = lstatOrUndefined(abs);
    if (st === undefined) throw new TsrunError('NotFound', `Could not find the file ${p} in container ${c.name}`);
    if (endsWithSlash(srcPath) && !st.isDirectory()) throw new TsrunError('InvalidArgument', `${p}: not a directory`);
    const src: Source = { abs, isDir: st.isDirectory(), name: endsWithDot(srcPath) || abs === root ? '' : path.posix.basename(p) };
    if (dest === '-') {
      if (ctx.stdout.isTTY) throw usage('cowardly refusing to write a tar archive to a terminal: redirect stdout');
      const tar = tarPath(abs, src.name, undefined);
      for await (const chunk of tar) if (!ctx.stdout.write(chunk as Buffer)) await once(ctx.stdout, 'drain');
      return 0;
    }
    const hostDest = path.resolve(dest);
    const t = targetFor(src, hostDest, dest, endsWithSlash(dest));
    checkOverwrite(src, t, dest);
    const owner: Owner = o.archive ? undefined : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    await extractTar(tarPath(abs, t.name, owner), t.dir, owner);
    if (ctx.stderr.isTTY) ctx.warn(`Successfully copied ${bytesDecimal(sizeOf(abs))} to ${dest}`);
    return 0;
  });
}

async function copyIn(ctx: Ctx, srcArg: string, c: ContainerInfo, destPath: string, o: { archive: boolean; follow: boolean }): Promise<number> {
  let src: Source | undefined;
  if (srcArg !== '-') {
    const hostSrc = path.resolve(srcArg);
    const follow = o.follow || endsWithDot(srcArg) || endsWithSlash(srcArg);
    const abs = follow && statOrUndefined(hostSrc) !== undefined ? fs.realpathSync(hostSrc) : hostSrc;
    const st = lstatOrUndefined(abs);
    if (st === undefined) throw new TsrunError('NotFound', `lstat ${hostSrc}: no such file or directory`);
    if (endsWithSlash(srcArg) && !st.isDirectory()) throw new TsrunError('InvalidArgument', `${srcArg}: not a directory`);
    src = { abs, isDir: st.isDirectory(), name: endsWithDot(srcArg) ? '' : path.basename(hostSrc) };
  } else if (ctx.stdin.isTTY) {
    throw usage('cp: a tar archive is read from stdin, but stdin is a terminal');
  }
  const p = absInContainer(destPath);
  const owner: Owner = o.archive ? undefined : { uid: 0, gid: 0 };
  return withContainerRoot(ctx, c, async (root) => {
    // DEST is resolved whole inside the container: a symlink there (even the last component) is
    // followed as the container would, never out of its root and its mounts
    const r = resolveInContainer(root, pathMounts(root, c.spec), p);
    const dest = r.host;
    const shown = `${c.name}:${p}`;
    // docker's rules: the read-only root refuses, a writable volume under it still takes the copy
    if (r.mount === undefined && (c.spec as { root?: { readonly?: boolean } }).root?.readonly === true) {
      throw new TsrunError('FailedPrecondition', `container rootfs is marked read-only: cannot copy to ${shown}`);
    }
    if (r.mount?.readonly === true) throw new TsrunError('FailedPrecondition', `mounted volume is marked read-only: cannot copy to ${shown}`);
    if (src === undefined) {
      if (statOrUndefined(dest)?.isDirectory() !== true) throw new TsrunError('InvalidArgument', `destination "${shown}" must be a directory`);
      await extractTar(ctx.stdin, dest, owner);
      return 0;
    }
    const t = targetFor(src, dest, shown, endsWithSlash(destPath));
    const source = r.mount?.source;
    if (source !== undefined && t.dir !== source && !t.dir.startsWith(`${source}/`)) {
      // a file bind-mounted on DEST: replacing it would write beside the mount's source on the host
      throw new TsrunError('FailedPrecondition', `${shown} is a file mount point; copy into a directory instead`);
    }
    checkOverwrite(src, t, shown);
    await extractTar(tarPath(src.abs, t.name, owner), t.dir, owner);
    if (ctx.stderr.isTTY) ctx.warn(`Successfully copied ${bytesDecimal(sizeOf(src.abs))} to ${shown}`);
    return 0;
  });
}

/** `tsctl cp` */
export async function cp(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'archive', short: 'a', kind: 'bool', help: 'keep uid/gid' },
      { name: 'follow-link', short: 'L', kind: 'bool', help: 'follow a symlink in SRC' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'no progress line' },
    ],
    false,
  );
  if (a.operands.length !== 2) throw usage('"cp" requires exactly 2 arguments: CONTAINER:SRC DEST or SRC CONTAINER:DEST');
  const [from, to] = [side(a.operands[0]!), side(a.operands[1]!)];
  const o = { archive: a.bools.has('archive'), follow: a.bools.has('follow-link') };
  if (from.kind === 'container' && to.kind === 'container') throw usage('copying between containers is not supported');
  if (from.kind === 'host' && to.kind === 'host') throw usage('must specify at least one container source');
  const quietCtx: Ctx = a.bools.has('quiet') ? { ...ctx, warn: () => undefined } : ctx;
  if (from.kind === 'container') {
    if (from.path === '') throw usage(`"${a.operands[0]!}": no path in the container`);
    return copyOut(quietCtx, await findContainer(ctx.client, from.ref), from.path, (to as { path: string }).path, o);
  }
  const dest = to as { ref: string; path: string };
  if (dest.path === '') throw usage(`"${a.operands[1]!}": no path in the container`);
  return copyIn(quietCtx, from.path, await findContainer(ctx.client, dest.ref), dest.path, o);
}
