/*
 * COPY and ADD into a mounted step snapshot, with docker's classic-builder rules:
 *
 *   dest        relative to WORKDIR; ends with / (or is a directory in the image) → sources go
 *               inside it; several sources (or a glob) need a / at the end
 *   directory   its contents are copied, not the directory itself
 *   file        to dest (or dest/<name>); symlinks as symlinks, modes and mtimes kept
 *   owner       --chown=user[:group] (names from the image's /etc/passwd and /etc/group), else 0:0
 *   ADD tar     a local tar or gzip tar is extracted into dest with the layer code (no "..", no
 *               writing through symlinks: supervisor/diff/); ADD of a URL is refused
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { TsrunError } from '../../spec/errors';
import { applyLayer } from '../diff/index';
import { resolveInRoot } from '../volumes/copy-up';
import { resolveUser } from '../tsctl/spec';
import { copyEntry, fixDirTimes, mkdirAllIn, walkSource, type Owner, type Source, type SourceEntry, type SourceRoot } from './context';

/** One COPY/ADD, its sources resolved. */
export interface CopyPlan {
  readonly cmd: 'COPY' | 'ADD';
  readonly root: SourceRoot;
  readonly sources: ReadonlyArray<{ source: Source; entries: readonly SourceEntry[]; tar: 'tar' | 'gzip' | undefined }>;
  /** absolute destination in the image, trailing / kept */
  readonly dest: string;
  readonly chown: string | undefined;
}

/** Is the file a tar (plain or gzip-compressed)? Judged by content, as docker does. */
export function tarKind(file: string): 'tar' | 'gzip' | undefined {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(512);
    const n = fs.readSync(fd, head, 0, 512, 0);
    const isTar = (b: Buffer): boolean => b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar';
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
      // the first 512 bytes of the decompressed stream are enough to see the tar magic
      const big = Buffer.alloc(64 * 1024);
      const m = fs.readSync(fd, big, 0, big.length, 0);
      try {
        const out = zlib.gunzipSync(big.subarray(0, m), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        return isTar(out) ? 'gzip' : undefined;
      } catch {
        return undefined;
      }
    }
    return isTar(head.subarray(0, n)) ? 'tar' : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Copy the plan into `rootfs` (a mounted, private snapshot). */
export async function copyInto(rootfs: string, plan: CopyPlan): Promise<void> {
  let owner: Owner = { uid: 0, gid: 0 };
  if (plan.chown !== undefined) {
    const u = resolveUser(rootfs, plan.chown);
    owner = { uid: u.uid, gid: u.gid };
  }
  const destIsDir = plan.dest.endsWith('/');
  const destClean = path.posix.normalize(plan.dest);
  const multi = plan.sources.length > 1;
  if (multi && !destIsDir) throw new TsrunError('InvalidArgument', `When using ${plan.cmd} with more than one source file, the destination must be a directory and end with a /`);
  for (const { source, entries, tar } of plan.sources) {
    if (tar !== undefined) {
      const dir = mkdirAllIn(rootfs, destClean, undefined);
      const input = fs.createReadStream(source.host);
      try {
        await applyLayer(input, dir, { mediaType: tar === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', whiteouts: 'apply' });
      } catch (e) {
        throw new TsrunError('InvalidArgument', `ADD ${source.given}: extract into ${destClean}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      } finally {
        input.destroy();
      }
      continue;
    }
    const done: Array<{ e: SourceEntry; to: string }> = [];
    if (source.st.isDirectory()) {
      const dir = mkdirAllIn(rootfs, destClean, owner);
      for (const e of entries) {
        const to = path.join(dir, e.rel);
        copyEntry(e, to, owner);
        done.push({ e, to });
      }
    } else {
      const existing = fs.lstatSync(resolveInRoot(rootfs, destClean), { throwIfNoEntry: false });
      const into = destIsDir || existing?.isDirectory() === true;
      const ctrPath = into ? path.posix.join(destClean, path.posix.basename(source.given)) : destClean;
      const parent = mkdirAllIn(rootfs, path.posix.dirname(ctrPath), undefined);
      const to = path.join(parent, path.posix.basename(ctrPath));
      copyEntry(entries[0]!, to, owner);
    }
    fixDirTimes(done);
  }
}

/** Resolve what each source copies (walked and checked for tars). */
export function planSources(root: SourceRoot, sources: readonly Source[], cmd: 'COPY' | 'ADD'): CopyPlan['sources'] {
  return sources.map((source) => ({
    source,
    entries: walkSource(root, source),
    tar: cmd === 'ADD' && root.isContext && source.st.isFile() ? tarKind(source.host) : undefined,
  }));
}
