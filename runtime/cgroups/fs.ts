/*
 * The file operations the cgroup drivers make, behind one small interface so tests can run
 * them against a temp tree and inject the kernel's answers (EBUSY on rmdir, FREEZING, EINVAL).
 * Errors come back as TsrunErrors naming the path and, for writes, the value:
 *   write /sys/fs/cgroup/pids/x/pids.max ("1"): permission denied
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { wrapSystemError } from '../../spec/errors';

/** The raw operations; implementations throw Node-style errors carrying `code` (ENOENT, EBUSY…). */
export interface CgroupFs {
  read(file: string): string;
  /** Write without creating: a cgroup file that does not exist is ENOENT, as on cgroupfs. */
  write(file: string, value: string): void;
  exists(file: string): boolean;
  /** mkdir -p. */
  mkdir(dir: string): void;
  /** Remove one (empty, on cgroupfs: process-free and child-free) cgroup directory. */
  rmdir(dir: string): void;
  /** The entries of `dir`: files are cgroup interface files, directories are child cgroups. */
  list(dir: string): { readonly name: string; readonly isDir: boolean }[];
}

/** The real file system. */
export const nodeCgroupFs: CgroupFs = {
  read: (file) => fs.readFileSync(file, 'utf8'),
  write: (file, value) => {
    // No O_CREAT: on cgroupfs the kernel answers for a missing file, in a temp tree we must.
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
    try {
      fs.writeSync(fd, value);
    } finally {
      fs.closeSync(fd);
    }
  },
  exists: (file) => fs.existsSync(file),
  mkdir: (dir) => {
    fs.mkdirSync(dir, { recursive: true });
  },
  rmdir: (dir) => fs.rmdirSync(dir),
  list: (dir) => fs.readdirSync(dir, { withFileTypes: true }).map((d) => ({ name: d.name, isDir: d.isDirectory() })),
};

/** Block the thread for `ms` milliseconds (the driver verbs are synchronous, like the CLI). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The errno code of a Node error, if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Read `<dir>/<file>`, trimmed, or throw "read <path>: <why>". */
export function readFile(cfs: CgroupFs, dir: string, file: string): string {
  const p = path.join(dir, file);
  try {
    return cfs.read(p).trim();
  } catch (err) {
    throw wrapSystemError(`read ${p}`, err);
  }
}

/** Read `<dir>/<file>`, or undefined when it does not exist. */
export function readIfExists(cfs: CgroupFs, dir: string, file: string): string | undefined {
  const p = path.join(dir, file);
  try {
    return cfs.read(p).trim();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw wrapSystemError(`read ${p}`, err);
  }
}

/** Write `value` to `<dir>/<file>`, or throw `write <path> ("<value>"): <why>`. */
export function writeFile(cfs: CgroupFs, dir: string, file: string, value: string): void {
  const p = path.join(dir, file);
  try {
    cfs.write(p, value);
  } catch (err) {
    throw wrapSystemError(`write ${p} (${JSON.stringify(value)})`, err);
  }
}

/** The pids listed in `<dir>/cgroup.procs`; [] when the cgroup is gone. */
export function procsOf(cfs: CgroupFs, dir: string): number[] {
  const text = readIfExists(cfs, dir, 'cgroup.procs') ?? '';
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l.trim()));
}

/** `dir` and every cgroup below it, parents first. */
export function cgroupTree(cfs: CgroupFs, dir: string): string[] {
  const out = [dir];
  let names: string[];
  try {
    names = cfs.list(dir).filter((e) => e.isDir).map((e) => e.name);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw wrapSystemError(`list ${dir}`, err);
  }
  for (const n of names.sort()) out.push(...cgroupTree(cfs, path.join(dir, n)));
  return out;
}

/** Every pid in `dir` and its descendants, sorted, without duplicates. */
export function pidsInTree(cfs: CgroupFs, dir: string): number[] {
  const all = new Set<number>();
  for (const d of cgroupTree(cfs, dir)) for (const p of procsOf(cfs, d)) all.add(p);
  return [...all].sort((a, b) => a - b);
}
