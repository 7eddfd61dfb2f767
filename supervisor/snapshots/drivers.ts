/*
 * The two snapshotters' on-disk halves. Each snapshot is a numbered directory (the metadata row's
 * id) under <root>/snapshots/<name>/snapshots/<id>:
 *
 *   overlayfs  fs/ (the layer's files; the upper dir while active) and work/ (active only). Mounts are
 *              what containerd's overlayfs snapshotter returns: no parent → one bind (rw, or ro for a
 *              view); a view of one parent → a ro bind of that parent's fs; otherwise an overlay with
 *              lowerdir = the parents' fs, nearest first, plus upperdir/workdir when active.
 *   native     fs/ holds a full copy: Prepare/View copy the parent's fs (cp -a, reflinks where the
 *              filesystem has them); mounts are one bind. For hosts where overlay can't be mounted.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { setTopDir } from '../diff/syscalls';
import type { SnapshotKind } from '../store/images';

/** containerd.types.Mount */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** A snapshotter's disk operations; the metadata is kept by snapshots/local.ts. */
export interface SnapshotDriver {
  readonly name: string;
  /** <root>/snapshots/<name>/snapshots */
  readonly dir: string;
  /** make the directories of snapshot `id`; `parents` are the parent chain's ids, nearest first */
  create(id: number, kind: SnapshotKind, parents: readonly number[]): void;
  mounts(id: number, kind: SnapshotKind, parents: readonly number[]): Mount[];
  /** the directory holding the snapshot's own files (usage, diff) */
  fsPath(id: number): string;
  remove(id: number): void;
  /** ids that have a directory */
  ids(): number[];
}

/** Bytes and inodes used under `dir` (hard links counted once), as containerd's fs.DiskUsage. */
export function diskUsage(dir: string): { size: number; inodes: number } {
  const seen = new Set<string>();
  let size = 0;
  const walk = (p: string): void => {
    const st = fs.lstatSync(p, { bigint: false });
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      size += st.blocks * 512;
    }
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  if (fs.existsSync(dir)) walk(dir);
  return { size, inodes: seen.size };
}

function removeDir(dir: string): void {
  // a layer may hold read-only directories (chmod 0555) and immutable-looking entries: make them writable first
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
}

function baseDriver(root: string, name: string): { dir: string; spread(): void; fsPath(id: number): string; remove(id: number): void; ids(): number[] } {
  const dir = path.join(root, 'snapshots', name, 'snapshots');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  let spreadDone = false;
  return {
    dir,
    /**
     * Before the first snapshot: snapshot directories are spread over the file system's block
     * groups (setTopDir). Without a journal, ext4 skips every inode freed in the last seconds when
     * it allocates one, reading its inode block each time; an unpack right after an `rmi` or a
     * removed container (whose directories sat in the same group as their parent's) paid that for
     * every file it made, most of a small layer's apply. The call loads koffi, which the unpack's
     * whiteouts and xattrs and tsrund's rootfs mounts load anyway; it is made once, on first use.
     */
    spread() {
      if (spreadDone) return;
      spreadDone = true;
      try {
        setTopDir(dir);
      } catch {
        // a hint to the allocator: without it snapshots work the same
      }
    },
    fsPath: (id) => path.join(dir, String(id), 'fs'),
    remove: (id) => removeDir(path.join(dir, String(id))),
    ids: () => fs.readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number),
  };
}

/** containerd's overlayfs snapshotter layout and mounts. */
export function overlayDriver(root: string): SnapshotDriver {
  const b = baseDriver(root, 'overlayfs');
  // containerd turns the index feature off when the kernel has the knob (it breaks on layers shared by hard links)
  const base = fs.existsSync('/sys/module/overlay/parameters/index') ? ['index=off'] : [];
  return {
    name: 'overlayfs',
    ...b,
    create(id, kind) {
      b.spread();
      const d = path.join(b.dir, String(id));
      fs.mkdirSync(path.join(d, 'fs'), { recursive: true, mode: 0o755 });
      if (kind === 'active') fs.mkdirSync(path.join(d, 'work'), { mode: 0o700 });
    },
    mounts(id, kind, parents) {
      if (parents.length === 0) return [{ type: 'bind', source: b.fsPath(id), target: '', options: [kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
      if (kind !== 'active' && parents.length === 1) return [{ type: 'bind', source: b.fsPath(parents[0]!), target: '', options: ['ro', 'rbind'] }];
      const options = [...base];
      if (kind === 'active') options.push(`workdir=${path.join(b.dir, String(id), 'work')}`, `upperdir=${b.fsPath(id)}`);
      options.push(`lowerdir=${parents.map((p) => b.fsPath(p)).join(':')}`);
      return [{ type: 'overlay', source: 'overlay', target: '', options }];
    },
  };
}

/** The copying fallback: every snapshot a full directory. */
export function nativeDriver(root: string): SnapshotDriver {
  const b = baseDriver(root, 'native');
  return {
    name: 'native',
    ...b,
    create(id, _kind, parents) {
      b.spread();
      const dst = b.fsPath(id);
      fs.mkdirSync(dst, { recursive: true, mode: 0o755 });
      if (parents.length === 0) return;
      const r = spawnSync('cp', ['-a', '--reflink=auto', `${b.fsPath(parents[0]!)}/.`, `${dst}/`], { encoding: 'utf8' });
      if (r.status !== 0) {
        removeDir(path.dirname(dst));
        throw new TsrunError('Internal', `native snapshot ${id}: copy of parent ${parents[0]} failed: ${(r.stderr || r.error?.message || '').trim()}`);
      }
    },
    mounts: (id, kind) => [{ type: 'bind', source: b.fsPath(id), target: '', options: [kind === 'view' ? 'ro' : 'rw', 'rbind'] }],
  };
}

/** Why an overlay with two lower dirs can't be mounted under `root`, or undefined when it can. */
export function overlayProblem(root: string): string | undefined {
  const dir = path.join(root, 'snapshots', 'overlayfs');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const t = fs.mkdtempSync(path.join(dir, 'check-'));
  try {
    for (const d of ['l1', 'l2', 'u', 'w', 'm']) fs.mkdirSync(path.join(t, d));
    const opts = `lowerdir=${t}/l1:${t}/l2,upperdir=${t}/u,workdir=${t}/w`;
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, path.join(t, 'm')], { encoding: 'utf8' });
    if (r.status !== 0) return (r.stderr || r.error?.message || `mount exited ${String(r.status)}`).trim();
    spawnSync('umount', [path.join(t, 'm')]);
    return undefined;
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}
